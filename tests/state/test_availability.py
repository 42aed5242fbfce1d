"""What a shared backend does while Redis does not answer: pure bookkeeping driven with plain numbers."""

from __future__ import annotations

import logging
import math

import pytest

from tether.errors import ConfigurationError, TetherError
from tether.policies import RateLimit
from tether.state import RedisCommands, SharedStateStats, SharedStateUnavailable
from tether.state._availability import Availability

LIMITS = (RateLimit(1, burst=1),)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tether.state" and r.levelno == logging.WARNING]


def test_an_outage_is_logged_once_and_redis_is_retried_one_command_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    availability = Availability("open", retry_interval=1.0, where="127.0.0.1:6379 db 0")
    commands = RedisCommands()
    assert availability.should_try(10.0)
    availability.failed(10.0, ConnectionRefusedError(111, "Connection refused"))
    availability.failed(10.0, ConnectionRefusedError(111, "Connection refused"))  # a concurrent command
    assert [availability.should_try(t) for t in (10.5, 10.9)] == [False, False]
    assert [availability.should_try(11.0), availability.should_try(11.0)] == [True, False]  # one retry at a time
    availability.failed(11.0, TimeoutError("timed out"))
    assert availability.fall_back(commands.reserve("k", LIMITS, 11.0)) == 0.0
    assert availability.fall_back(commands.reserve("k", LIMITS, 11.0)) == 1.0  # the local limiter's answer
    assert availability.stats() == SharedStateStats(available=False, outages=1, failures=3, fallbacks=2)
    [warning] = _warnings(caplog)
    assert "127.0.0.1:6379" in warning.getMessage()
    assert "ConnectionRefusedError" in warning.getMessage()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tether.state"):
        availability.succeeded(10.5)  # sent before the latest failure (11.0): the outage goes on
        assert not availability.stats().available
        availability.succeeded(12.0)  # the next retry got its answer: the outage is over
    assert availability.stats().available
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert availability.should_try(12.1)
    availability.failed(20.0, ConnectionResetError())
    assert len(_warnings(caplog)) == 1  # a new outage, a new warning
    assert availability.stats().outages == 2


def test_only_an_answer_to_a_command_sent_after_the_latest_failure_ends_an_outage() -> None:
    availability = Availability("open", retry_interval=1.0, where="redis")
    availability.failed(10.0, ConnectionResetError())
    availability.succeeded(9.9)  # sent before the outage began
    availability.failed(10.4, TimeoutError())  # an overloaded server: some commands fail ...
    availability.succeeded(10.2)  # ... while older ones still get through
    assert not availability.stats().available
    availability.succeeded(10.4)
    assert availability.stats() == SharedStateStats(available=True, outages=1, failures=2, fallbacks=0)


def test_failing_closed_raises_a_tether_error_that_names_the_server_but_no_secret() -> None:
    availability = Availability("closed", retry_interval=1.0, where="10.0.0.7:6379 db 2")
    availability.failed(1.0, ConnectionError("Error connecting: AUTH password=hunter2 rejected"))
    with pytest.raises(SharedStateUnavailable) as caught:
        availability.fall_back(RedisCommands().reserve("k", LIMITS, 1.0))
    assert isinstance(caught.value, TetherError)
    message = str(caught.value)
    assert "10.0.0.7:6379" in message
    assert "hunter2" not in message
    assert "limiter reserve" in message
    assert "on_unavailable='open'" in message
    assert availability.stats().fallbacks == 0


@pytest.mark.parametrize(("mode", "interval"), [("ajar", 1.0), ("open", -1.0), ("open", math.inf)])
def test_settings_are_checked(mode: str, interval: float) -> None:
    with pytest.raises(ConfigurationError):
        Availability(mode, interval, "redis")  # type: ignore[arg-type]
