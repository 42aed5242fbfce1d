"""Testing aids, public for tether's users too: a fault-injecting upstream server and a fake clock.

``Upstream``, ``Reply`` and ``Recorded`` are imported on first use, so ``python -m tether.testing.upstream``
does not find its own module already imported (which makes ``runpy`` warn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.testing.clock import FakeClock

if TYPE_CHECKING:
    from tether.testing.upstream import Recorded, Reply, Upstream

__all__ = ["FakeClock", "Recorded", "Reply", "Upstream"]

_LAZY = frozenset({"Recorded", "Reply", "Upstream"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from tether.testing import upstream

        return getattr(upstream, name)
    raise AttributeError(f"module 'tether.testing' has no attribute {name!r}")
