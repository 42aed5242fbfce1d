"""The public surface: ``tether.__all__`` is sorted, complete and importable; ``import tether`` stays light."""

import subprocess
import sys

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


def test_import_does_not_pull_in_the_gateway_or_cli() -> None:
    code = "import sys, tether; print(any(m in sys.modules for m in ('uvicorn', 'starlette', 'typer')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
