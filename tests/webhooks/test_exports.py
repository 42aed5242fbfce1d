"""The public surface of tether.webhooks is exactly its sorted __all__, and every name has a docstring."""

from __future__ import annotations

import tether.webhooks


def test_all_is_sorted_and_documented() -> None:
    """__all__ is sorted (constants first, as ruff's RUF022 orders it) and each exported name is documented."""
    names = tether.webhooks.__all__
    assert names == sorted(names, key=lambda name: (not name.isupper(), name.lower() if not name.isupper() else name))
    for name in names:
        value = getattr(tether.webhooks, name)
        if callable(value) and not isinstance(value, tether.webhooks.GenericHMAC):
            assert value.__doc__, name
