"""The public surface: ``tether.__all__`` is sorted, complete and importable; ``import tether`` stays light."""

import subprocess
import sys

import pytest

import tether


def test_all_is_sorted_and_every_name_exists() -> None:
    assert list(tether.__all__) == sorted(tether.__all__)
    for name in tether.__all__:
        assert hasattr(tether, name), name


def test_public_names_are_documented() -> None:
    for name in tether.__all__:
        obj = getattr(tether, name)
        if callable(obj) and not name.startswith("_"):
            assert obj.__doc__, f"{name} has no docstring"


def test_import_does_not_pull_in_the_gateway_the_cli_or_the_http_libraries() -> None:
    heavy = ("uvicorn", "starlette", "typer", "aiohttp", "httpx", "httpcore")
    code = f"import sys, tether; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_lazy_transports_resolve_to_the_classes_and_unknown_names_fail() -> None:
    from tether.client._aiohttp import AiohttpTransport
    from tether.client._httpx import HttpxAsyncTransport, HttpxTransport

    assert tether.AiohttpTransport is AiohttpTransport
    assert tether.HttpxTransport is HttpxTransport
    assert tether.client.HttpxAsyncTransport is HttpxAsyncTransport
    for module in (tether, tether.client):
        with pytest.raises(AttributeError, match="NoSuchThing"):
            module.NoSuchThing  # noqa: B018 - the attribute access is the test
