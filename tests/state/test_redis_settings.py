"""Setting up a Redis backend: checked arguments, no secret in a message or a repr, a clear missing-extra error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tether.errors import ConfigurationError
from tether.state import AsyncRedisState, RedisState


@pytest.mark.parametrize("shell", [RedisState, AsyncRedisState])
@pytest.mark.parametrize(
    "options",
    [{"timeout": 0}, {"timeout": float("inf")}, {"max_connections": 0}, {"on_unavailable": "maybe"}, {"idle_ttl": 0}],
)
def test_settings_are_checked(shell: type[RedisState], options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        shell(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("shell", [RedisState, AsyncRedisState])
def test_a_bad_url_is_a_configuration_error_without_its_password(shell: type[RedisState]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        shell("http://user:hunter2@example.com/")
    assert "hunter2" not in str(caught.value)


def test_the_repr_names_the_server_but_not_its_password() -> None:
    state = RedisState("redis://user:hunter2@10.1.2.3:6380/4", prefix="app:")
    assert repr(state) == "<RedisState 10.1.2.3:6380 db 4 prefix='app:' on_unavailable='open'>"
    state.close()


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    with pytest.raises(ConfigurationError, match=r"tether\[redis\]"):
        RedisState()


def test_importing_the_state_package_does_not_import_redis_py() -> None:
    code = "import sys, tether.state; print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
