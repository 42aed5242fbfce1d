"""The Redis commands as pure values: what each operation sends, and how each reply is read."""

from __future__ import annotations

import hashlib
import math

import pytest

from tether.errors import ConfigurationError
from tether.policies import CLOSED_ADMISSION, Admitted, CircuitBreaker, RateLimit, Refused, RetryBudget
from tether.state import CLOSED, Admission, MemoryState, RedisCommands
from tether.state import _scripts as scripts
from tether.state._commands import MalformedReply, interpret

BREAKER = CircuitBreaker(min_calls=3, window=10.0, buckets=5, slow_call=2.0, slow_ratio=0.5)
BUDGET = RetryBudget(ratio=0.5, burst=3, min_per_second=0.0)


def test_keys_are_namespaced_digests_that_never_show_the_callers_key() -> None:
    commands = RedisCommands(prefix="app:")
    key = "GET https://hooks.example.com/services/T000/B000/s3cr3tT0ken"
    redis_key = commands.reserve(key, (), 0.0).keys[0]
    assert redis_key.startswith("app:limiter:")
    assert "s3cr3t" not in redis_key
    assert commands.acquire(key, BREAKER, 0.0).keys[0].startswith("app:circuit:")
    assert commands.try_spend(key, BUDGET, 0.0).keys[0].startswith("app:budget:")
    assert commands.redis_key("limiter", "a") != commands.redis_key("limiter", "b")
    assert RedisCommands().redis_key("limiter", "\udcff odd").startswith("tether:limiter:")  # never raises


def test_reserve_sends_each_quota_by_name_with_exact_numbers() -> None:
    limits = (RateLimit(50, burst=5), RateLimit(1000, per=3600))
    command = RedisCommands().reserve("k", limits, 12.5, max_wait=0.25)
    assert command.script is scripts.LIMITER_RESERVE
    assert command.args == (
        "",  # the server's clock
        "0.25",
        "50/1.0/5",
        repr(limits[0].interval),
        repr(limits[0].tolerance),
        "1000/3600/1000",
        repr(limits[1].interval),
        repr(limits[1].tolerance),
    )
    assert RedisCommands().reserve("k", (), 0.0).args[1] == "inf"
    assert RedisCommands(server_time=False).reserve("k", (), 12.5).args[0] == "12.5"


def test_replies_are_read_as_bytes_or_text() -> None:
    command = RedisCommands().reserve("k", (), 0.0)
    assert interpret(command, b"0.20000000000000001") == 0.2
    assert interpret(command, "0") == 0.0


@pytest.mark.parametrize(
    "reply",
    [None, b"OK", [b"0.1"], True, {"a": 1}],
)
def test_a_reply_of_the_wrong_shape_is_malformed(reply: object) -> None:
    with pytest.raises(MalformedReply):
        interpret(RedisCommands().reserve("k", (), 0.0), reply)


def test_an_admission_converts_server_times_to_the_callers_clock() -> None:
    command = RedisCommands().acquire("h", BREAKER, 100.0)  # the caller's clock reads 100 ...
    server = b"1700000000.5"  # ... when the server's reads this
    assert interpret(command, [b"admit", b"", b"closed", 0, server]) is CLOSED
    refused = interpret(command, [b"refuse", b"1700000003.5", b"open", 0, server])
    assert isinstance(refused.permit, Refused)
    assert refused.permit.retry_at == pytest.approx(103.0)
    assert refused.phase == "open"
    assert not refused.changed
    probe = interpret(command, [b"probe", b"1700000000.5", b"half_open", 1, server])
    assert probe == Admission(Admitted(probe=True, issued=1700000000.5), "half_open", changed=True)  # server clock


@pytest.mark.parametrize(
    "reply",
    [
        [b"admit", b"", b"open", 0, b"1"],  # a plain admission from a circuit that is not closed
        [b"maybe", b"1", b"open", 0, b"1"],
        [b"refuse", b"1", b"ajar", 0, b"1"],
        [b"refuse", b"1", b"open", 0],
        [b"refuse", b"x", b"open", 0, b"1"],
        [b"refuse", b"1", b"open", b"0", b"1"],
    ],
)
def test_a_malformed_admission_is_refused(reply: object) -> None:
    with pytest.raises(MalformedReply):
        interpret(RedisCommands().acquire("h", BREAKER, 0.0), reply)


def test_record_sends_the_permit_and_whether_the_call_was_slow() -> None:
    commands = RedisCommands()
    probe = Admitted(probe=True, issued=1700000000.25)
    args = commands.record("h", BREAKER, probe, 5.0, failed=False, duration=2.0).args
    assert args[10:] == ("1", "1700000000.25", "0", "1", "3", "0.5", "0.5")
    args = commands.record("h", CircuitBreaker(), CLOSED_ADMISSION, 5.0, failed=True, duration=9.0).args
    assert args[10:] == ("0", "-inf", "1", "0", "20", "0.5", "")  # no slow_call: never slow, no slow ratio
    command = commands.record("h", BREAKER, CLOSED_ADMISSION, 5.0, failed=True, duration=0.0)
    assert interpret(command, [1, b"open"]) == "open"
    assert interpret(command, [0, b""]) is None


def test_circuit_settings_travel_with_every_circuit_command() -> None:
    args = RedisCommands(idle_ttl=60).acquire("h", BREAKER, 0.0).args
    assert args == ("", "5/2.0", "5", "2.0", "1", "30.0", "5.0", "2.0", "120.0", "60.0")


def test_a_circuit_snapshot_converts_open_until() -> None:
    command = RedisCommands().circuit_snapshot("h", BREAKER, 50.0)
    snapshot = interpret(command, [b"open", 20, 12, 0, 2, b"1000.5", b"1000"])
    assert (snapshot.phase, snapshot.calls, snapshot.failures, snapshot.trips) == ("open", 20, 12, 2)
    assert snapshot.open_until == pytest.approx(50.5)
    assert interpret(command, [b"closed", 0, 0, 0, 0, b"", b"1000"]).open_until is None


def test_deposits_are_batched_and_ride_with_the_next_spend() -> None:
    commands = RedisCommands(deposit_interval=1.0)
    first = commands.record_request("c", BUDGET, 10.0)
    assert first is not None
    assert first.args[1] == "1"  # the first deposit goes at once
    assert first.args[-1] == "0"  # deposit only
    assert commands.record_request("c", BUDGET, 10.2) is None
    assert commands.record_request("c", BUDGET, 10.4) is None
    snapshot = interpret(commands.budget_snapshot("c", BUDGET, 10.5), [b"1.5", 1, 0, 0])
    assert (snapshot.tokens, snapshot.requests) == (2.5, 3)  # the two deposits not sent yet are counted
    spend = commands.try_spend("c", BUDGET, 10.5)
    assert (spend.args[1], spend.args[-1]) == ("2", "1")
    assert interpret(spend, 1) is True
    assert interpret(spend, 0) is False
    later = commands.record_request("c", BUDGET, 11.6)  # a second after the last command: sent on its own
    assert later is not None
    assert later.args[1] == "1"


def test_every_deposit_is_sent_with_no_interval() -> None:
    commands = RedisCommands(deposit_interval=0)
    assert all(commands.record_request("c", BUDGET, 1.0) is not None for _ in range(3))


def test_local_answers_come_from_the_local_state() -> None:
    local = MemoryState()
    commands = RedisCommands(local=local, deposit_interval=10)
    limits = (RateLimit(1, burst=1),)
    assert commands.reserve("k", limits, 0.0).local() == 0.0
    assert commands.reserve("k", limits, 0.0).local() == 1.0
    for _ in range(3):
        commands.record_request("c", BUDGET, 0.0)  # the first is sent, two wait for the next command
    spend = commands.try_spend("c", BUDGET, 0.0)
    assert spend.local() is True  # its two deposits are made locally, then the spend
    assert local.budget_snapshot("c", BUDGET, 0.0).requests == 2
    assert commands.acquire("h", BREAKER, 0.0).local() is CLOSED


def test_scripts_are_hashed_and_share_the_prelude() -> None:
    for script in (scripts.LIMITER_RESERVE, scripts.CIRCUIT_RECORD, scripts.BUDGET_SETTLE):
        assert script.sha == hashlib.sha1(script.source.encode(), usedforsecurity=False).hexdigest()
        assert "local function clock()" in script.source
    assert "local function trip(" in scripts.CIRCUIT_ACQUIRE.source
    assert repr(scripts.CIRCUIT_RECORD).startswith("<Script circuit_record ")


@pytest.mark.parametrize(
    "options",
    [{"prefix": 1}, {"idle_ttl": 0}, {"idle_ttl": math.inf}, {"deposit_interval": -1}, {"deposit_interval": math.nan}],
)
def test_settings_are_checked(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RedisCommands(**options)  # type: ignore[arg-type]
