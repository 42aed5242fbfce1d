"""Several processes racing for the refresh right on one connection: only one holds it at a time, none is lost."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from tests.auth import _lease_worker
from tests.auth.conftest import OpenVault
from tether.auth import TokenSet

WORKERS = 4
ROUNDS = 6


@pytest.mark.integration
def test_processes_racing_for_the_refresh_right_take_turns(
    open_vault: OpenVault, location: str | Path, key_a: str
) -> None:
    """4 spawned processes x 6 refreshes: never two holders at once; every rotation chains onto the previous one.

    Timing-free: a barrier releases the processes together, and a process that misses the lease retries at once.
    """
    vault = open_vault(key_a)
    vault.save("user-1", "github", TokenSet(access_token="at-0", refresh_token="rt-0"))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    holders, most, misses = context.Value("i", 0), context.Value("i", 0), context.Value("q", 0)
    processes = [
        context.Process(target=_lease_worker.race, args=(str(location), key_a, ROUNDS, barrier, holders, most, misses))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * WORKERS
    assert most.value == 1
    final = vault.get("user-1", "github")
    total = WORKERS * ROUNDS
    assert final.tokens.refresh_token == f"rt-{total}"
    assert final.tokens.access_token == f"at-{total}"
    assert final.info.version == 1 + 2 * total  # each refresh: one lease, one store
    print(f"lease misses while another process held it: {misses.value}")
