"""The Lua scripts behind the Redis backend, each one whole decision run atomically by Redis.

The sources live beside this module in ``lua/``: each script is a shared prelude (the clock, number formatting,
key lifetimes), the circuit scripts' common part where it applies, then its own body. A :class:`Script` carries
its source and SHA1 digest, so a shell runs it with ``EVALSHA`` and sends the source (``EVAL``, which also caches
it on the server) only when the server answers ``NOSCRIPT`` after a restart or ``SCRIPT FLUSH``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "BUDGET_SETTLE",
    "BUDGET_SNAPSHOT",
    "CIRCUIT_ACQUIRE",
    "CIRCUIT_RECORD",
    "CIRCUIT_RELEASE",
    "CIRCUIT_SNAPSHOT",
    "LIMITER_LEARN",
    "LIMITER_RESERVE",
    "Script",
]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script: its ``name`` (for messages), ``source`` and ``sha`` (the SHA1 of the source, hex)."""

    name: str
    source: str
    sha: str

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:12]}>"


def _script(name: str, *parts: str) -> Script:
    folder = resources.files("tether.state") / "lua"
    source = "\n".join(folder.joinpath(f"{part}.lua").read_text("utf-8") for part in (*parts, name))
    return Script(name, source, hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest())


LIMITER_RESERVE = _script("limiter_reserve", "_prelude")
LIMITER_LEARN = _script("limiter_learn", "_prelude")
BUDGET_SETTLE = _script("budget_settle", "_prelude")
BUDGET_SNAPSHOT = _script("budget_snapshot", "_prelude")
CIRCUIT_ACQUIRE = _script("circuit_acquire", "_prelude", "_circuit")
CIRCUIT_RECORD = _script("circuit_record", "_prelude", "_circuit")
CIRCUIT_RELEASE = _script("circuit_release", "_prelude", "_circuit")
CIRCUIT_SNAPSHOT = _script("circuit_snapshot", "_prelude", "_circuit")
