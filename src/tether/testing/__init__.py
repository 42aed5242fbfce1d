"""Testing aids, public for tether's users too: a fault-injecting upstream server and a fake clock."""

from tether.testing.clock import FakeClock
from tether.testing.upstream import Recorded, Reply, Upstream

__all__ = ["FakeClock", "Recorded", "Reply", "Upstream"]
