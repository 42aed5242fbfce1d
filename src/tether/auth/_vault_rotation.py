"""Key rotation: re-encrypt every connection under the newest key, in bounded batches, resumably.

Each batch is one transaction that reads up to ``batch_size`` rows whose ``key_id`` is not the newest, re-seals
their tokens and writes them back; an interrupted run loses at most its open batch, and the next run simply finds
fewer rows to do, because rows already under the newest key are never selected. Nothing is kept between runs
but the rows themselves, which is what makes it safe to stop (Ctrl-C, a deploy) and re-run at any point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tether.auth._vault_storage import SealedRow, SealedTokens, SQLConnectionRows

__all__ = ["RotationReport", "rotate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RotationReport:
    """How a rotation run went (also passed to the progress callback after each committed batch).

    ``rotated``: rows this run re-encrypted. ``current``: rows under the newest key now (rotated ones included).
    ``remaining``: rows still under an older key (0 once done). ``batches``: transactions committed.
    ``by_key``: row counts per key id now.
    """

    key_id: str
    rotated: int
    current: int
    remaining: int
    batches: int
    by_key: dict[str, int]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "key_id": self.key_id,
            "rotated": self.rotated,
            "current": self.current,
            "remaining": self.remaining,
            "batches": self.batches,
            "by_key": dict(sorted(self.by_key.items())),
        }


def _report(rows: SQLConnectionRows, key_id: str, rotated: int, batches: int) -> RotationReport:
    by_key = rows.count_by_key()
    current = by_key.get(key_id, 0)
    return RotationReport(
        key_id=key_id,
        rotated=rotated,
        current=current,
        remaining=sum(by_key.values()) - current,
        batches=batches,
        by_key=by_key,
    )


def rotate(
    rows: SQLConnectionRows,
    *,
    key_id: str,
    reseal: Callable[[SealedRow], SealedTokens],
    batch_size: int,
    progress: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Re-seal every row not under ``key_id``, ``batch_size`` rows per transaction, until none is left.

    ``reseal`` raising (a row under a key no longer configured, a tampered row) rolls back only the open batch
    and propagates; batches already committed stay done.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    rotated = batches = 0
    while True:
        done = rows.reseal_batch(key_id=key_id, limit=batch_size, reseal=reseal)
        if done == 0:
            return _report(rows, key_id, rotated, batches)
        rotated += done
        batches += 1
        if progress is not None:
            progress(_report(rows, key_id, rotated, batches))
