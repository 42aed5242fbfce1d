"""``tether.auth``'s public surface: sorted, importable, documented; the vault's errors live in ``tether.errors``."""

from __future__ import annotations

import tether.auth
import tether.errors


def test_auth_all_is_sorted_documented_and_importable() -> None:
    """Every exported name exists and callables carry a docstring."""
    assert list(tether.auth.__all__) == sorted(tether.auth.__all__)
    for name in tether.auth.__all__:
        obj = getattr(tether.auth, name)
        if callable(obj):
            assert obj.__doc__, name


def test_vault_errors_form_one_tree() -> None:
    """Each vault failure is its own type under VaultError; key-setting problems are also configuration errors."""
    names = ("MalformedSecretKey", "SecretKeyRequired", "UnknownKeyId", "DecryptionFailed", "ConnectionNotFound")
    for name in (*names, "StaleConnection"):
        assert name in tether.errors.__all__
        assert issubclass(getattr(tether.errors, name), tether.errors.VaultError)
    assert issubclass(tether.errors.MalformedSecretKey, tether.errors.ConfigurationError)
    assert issubclass(tether.errors.SecretKeyRequired, tether.errors.ConfigurationError)
    assert issubclass(tether.errors.ConnectionNotFound, LookupError)
    assert len({getattr(tether.errors, name) for name in names}) == len(names)


def test_import_tether_does_not_load_the_vault_cryptography_or_sqlite() -> None:
    """The vault's names resolve on first use, so ``import tether`` stays light."""
    import subprocess
    import sys

    heavy = ("cryptography", "sqlite3", "psycopg", "tether.auth._vault")
    code = f"import sys, tether, tether.auth; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert tether.auth.Vault.__name__ == "Vault"


def test_import_tether_auth_does_not_load_authlib_or_joserfc() -> None:
    """The OAuth names resolve on first use too: Authlib and joserfc load only when OAuth is used."""
    import subprocess
    import sys

    heavy = ("authlib", "joserfc", "tether.auth._oauth_app", "tether.auth._oauth2")
    code = f"import sys, tether, tether.auth; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert tether.auth.OAuth2.__name__ == "OAuth2"


def test_oauth_errors_form_one_tree() -> None:
    """Each OAuth failure is its own type under OAuthError, exported from tether.errors."""
    names = (
        "InvalidGrant",
        "InvalidClient",
        "InvalidScope",
        "UnauthorizedClient",
        "AccessDenied",
        "InvalidState",
        "IDTokenInvalid",
        "DiscoveryFailed",
        "NeedsReauth",
    )
    for name in names:
        assert name in tether.errors.__all__
        assert issubclass(getattr(tether.errors, name), tether.errors.OAuthError)
    assert "OAuthError" in tether.errors.__all__
