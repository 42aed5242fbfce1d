"""Pending authorizations: the ``state`` an authorization URL carries, and what it stands for until the callback.

``state`` (RFC 6749 §10.12) is 256 random bits, **single-use** (``take`` removes it in the same step that reads
it, so a replayed callback finds nothing), **bound to the initiating session** (the caller's browser session id:
a callback arriving in another session is refused) and **expiring** (10 minutes by default). The record also
keeps the PKCE verifier, the OIDC nonce and where the tokens go (integration, connection id), so the callback
needs nothing but the query string and the session.

A :class:`StateStore` is a small seam: :class:`MemoryStateStore` for one process, and
:class:`tether.auth.SQLStateStore` on the vault's database for several processes (a gateway behind a load
balancer). Stores look records up by the SHA-256 of ``state``, so a database dump does not reveal live states.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["MemoryStateStore", "PendingAuthorization", "StateStore", "state_key"]


def state_key(value: str) -> str:
    """The key a store files ``state`` (or a session id) under: its SHA-256, hex."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingAuthorization:
    """An authorization URL handed out and not yet completed.

    ``session_hash`` is :func:`state_key` of the caller's session id the flow was started from (the session id
    itself is not kept); ``expires_at`` Unix time. ``state``, ``code_verifier`` and ``nonce`` are secrets of the
    flow and never in a repr.
    """

    state: str = field(repr=False)
    session_hash: str = field(repr=False)
    integration: str
    connection_id: str
    redirect_uri: str
    code_verifier: str = field(repr=False)
    nonce: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    created_at: float
    expires_at: float


@runtime_checkable
class StateStore(Protocol):
    """Where pending authorizations wait for their callback."""

    def put(self, pending: PendingAuthorization) -> None:
        """Remember ``pending`` until taken or expired."""
        ...

    def take(self, state: str, *, now: float) -> PendingAuthorization | None:
        """Remove and return the record for ``state`` (expired or not: the caller says which); ``None`` if unknown.

        Atomic: of two concurrent takes of one state, one gets the record. Records expired before ``now`` may be
        purged meanwhile.
        """
        ...


class MemoryStateStore:
    """A :class:`StateStore` in this process's memory; thread-safe. Pending flows are lost on restart."""

    __slots__ = ("_lock", "_records")

    def __init__(self) -> None:
        self._records: dict[str, PendingAuthorization] = {}
        self._lock = threading.Lock()

    def put(self, pending: PendingAuthorization) -> None:
        """Remember ``pending``."""
        with self._lock:
            self._records[state_key(pending.state)] = pending

    def take(self, state: str, *, now: float) -> PendingAuthorization | None:
        """Remove and return the record for ``state``, purging expired ones."""
        with self._lock:
            found = self._records.pop(state_key(state), None)
            for key in [key for key, record in self._records.items() if record.expires_at < now]:
                del self._records[key]
        return found

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"MemoryStateStore(pending={len(self._records)})"
