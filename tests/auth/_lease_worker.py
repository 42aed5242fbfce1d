"""A process for the refresh-right race (imported by ``multiprocessing`` spawn children; not a test module).

Each worker opens its own vault on the shared database, waits at the barrier, then performs ``rounds`` refreshes:
it spins on ``try_begin_refresh`` until it holds the right, checks in to a shared counter of holders (recording
the highest count ever seen), reads the refresh token ``rt-N`` it was leased, checks out, and stores ``rt-N+1``.
A second holder at any moment shows as a count of 2; a lost rotation shows as a final token below the total.
"""

from __future__ import annotations

from typing import Any

from tether.auth import TokenSet, Vault, parse_keyring


def race(location: str, key_setting: str, rounds: int, barrier: Any, holders: Any, most: Any, misses: Any) -> None:
    """Refresh ``rounds`` times through the lease (see the module docstring)."""
    with Vault(location, keyring=parse_keyring(key_setting), busy_timeout=30.0) as vault:
        barrier.wait()
        for _ in range(rounds):
            while (lease := vault.try_begin_refresh("user-1", "github", lease=600)) is None:
                with misses.get_lock():
                    misses.value += 1
            with holders.get_lock():
                holders.value += 1
                most.value = max(most.value, holders.value)
            refresh_token = lease.connection.tokens.refresh_token
            assert refresh_token is not None
            number = int(refresh_token.removeprefix("rt-"))
            with holders.get_lock():
                holders.value -= 1  # still leased: nobody can take it before the store below releases it
            vault.store_refreshed(lease, TokenSet(access_token=f"at-{number + 1}", refresh_token=f"rt-{number + 1}"))
