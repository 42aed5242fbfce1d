"""The key setting's format, the sealed-value format, and what every error says (never a key or a plaintext)."""

from __future__ import annotations

import base64
import pickle

import pytest

from tether.auth import Keyring, generate_key_setting, parse_keyring
from tether.auth._vault_cipher import NONCE_BYTES, SealedField, key_id_of, seal, unseal
from tether.errors import (
    ConfigurationError,
    DecryptionFailed,
    MalformedSecretKey,
    UnknownKeyId,
    VaultError,
)

HERE = SealedField(integration="github", connection_id="user-1", field="access_token")


def _key(byte: int, length: int = 32) -> str:
    return base64.b64encode(bytes([byte]) * length).decode()


def test_setting_lists_keys_newest_first_in_standard_or_urlsafe_base64_with_or_without_padding() -> None:
    """The first pair encrypts; every pair decrypts; whitespace and newlines between pairs are ignored."""
    urlsafe = base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode().rstrip("=")
    keyring = parse_keyring(f" new:{_key(1)} ,\n mid:{urlsafe}\nold:{_key(3).rstrip('=')}\n")
    assert keyring.key_ids == ("new", "mid", "old")
    assert keyring.current_id == "new"
    assert all(keyring.cipher(key_id) is not None for key_id in keyring.key_ids)
    assert keyring.cipher("absent") is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "holds no key"),
        (" , \n", "holds no key"),
        (_key(1), "not KID:BASE64KEY"),
        ("a:", "not KID:BASE64KEY"),
        (f":{_key(1)}", "not KID:BASE64KEY"),
        ("a:not*base64", "not valid base64"),
        (f"a:{_key(1, 16)}", "16 bytes; AES-256 needs 32"),
        (f"a:{_key(1)},a:{_key(2)}", "appears twice"),
        (f"bad id:{_key(1)}", "invalid key id"),
    ],
)
def test_a_malformed_setting_is_a_typed_error_that_says_what_to_do(setting: str, message: str) -> None:
    """Every malformed setting raises MalformedSecretKey (a VaultError and a ConfigurationError) with advice."""
    with pytest.raises(MalformedSecretKey, match=message) as caught:
        parse_keyring(setting)
    assert isinstance(caught.value, VaultError)
    assert isinstance(caught.value, ConfigurationError)
    assert "tether keys generate" in str(caught.value)


def test_a_malformed_setting_error_never_contains_key_material() -> None:
    """A key of the wrong length is named by its id; its base64 text appears nowhere in the error."""
    short = _key(7, 31)
    with pytest.raises(MalformedSecretKey) as caught:
        parse_keyring(f"good:{_key(1)},bad:{short}")
    assert "'bad'" in str(caught.value)
    assert short not in str(caught.value)
    assert short not in repr(caught.value)
    assert _key(1) not in str(caught.value)


def test_keyring_repr_shows_ids_only_and_it_refuses_to_be_pickled() -> None:
    """A keyring printed or logged shows key ids; pickling (e.g. to a subprocess) is refused outright."""
    setting = generate_key_setting("k1")
    keyring = parse_keyring(setting)
    assert repr(keyring) == "Keyring(key_ids=('k1',))"
    assert setting.split(":", 1)[1] not in repr(keyring)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(keyring)


def test_generated_settings_parse_and_differ() -> None:
    """`generate_key_setting` gives a valid pair with 32 fresh random bytes each time."""
    first, second = generate_key_setting("x"), generate_key_setting("x")
    assert first != second
    assert len(base64.b64decode(first.split(":", 1)[1])) == 32
    assert parse_keyring(first).current_id == "x"
    with pytest.raises(MalformedSecretKey):
        generate_key_setting("no spaces")


def test_seal_round_trips_with_a_fresh_nonce_and_the_key_id_in_front() -> None:
    """Sealing twice gives different ciphertexts (fresh 96-bit nonce); both open; the key id is readable."""
    keyring = Keyring([("k1", bytes(32))])
    first, second = seal(keyring, "tok-é", HERE), seal(keyring, "tok-é", HERE)
    assert first != second
    assert first.startswith("v1:k1:")
    assert key_id_of(first) == "k1"
    assert key_id_of("plain") is None
    raw = base64.urlsafe_b64decode(first.split(":", 2)[2] + "==")
    assert len(raw) == NONCE_BYTES + len("tok-é".encode()) + 16
    assert unseal(keyring, first, HERE) == unseal(keyring, second, HERE) == "tok-é"
    assert "tok" not in first


@pytest.mark.parametrize(
    "elsewhere",
    [
        SealedField(integration="github", connection_id="user-2", field="access_token"),
        SealedField(integration="gitlab", connection_id="user-1", field="access_token"),
        SealedField(integration="github", connection_id="user-1", field="refresh_token"),
    ],
)
def test_a_ciphertext_opened_for_another_row_or_field_fails(elsewhere: SealedField) -> None:
    """The row identity and field name are associated data: another place fails authentication."""
    keyring = Keyring([("k1", bytes(32))])
    sealed = seal(keyring, "secret-token-value", HERE)
    with pytest.raises(DecryptionFailed, match="copied from another connection or field") as caught:
        unseal(keyring, sealed, elsewhere)
    assert "secret-token-value" not in str(caught.value)
    assert sealed.split(":", 2)[2] not in str(caught.value)


def test_tampered_truncated_or_foreign_values_fail_with_decryption_failed() -> None:
    """One flipped character, a cut tag, bad base64, a value in no known format: all DecryptionFailed."""
    keyring = Keyring([("k1", bytes(32))])
    sealed = seal(keyring, "secret-token-value", HERE)
    prefix, body = sealed.rsplit(":", 1)
    flipped = body[:5] + ("A" if body[5] != "A" else "B") + body[6:]
    for bad in (f"{prefix}:{flipped}", f"{prefix}:{body[:20]}", f"{prefix}:@@@@", "secret-token-value", "v2:k1:xx"):
        with pytest.raises(DecryptionFailed):
            unseal(keyring, bad, HERE)


def test_a_value_under_an_unconfigured_key_id_says_which_key_is_missing() -> None:
    """UnknownKeyId names the missing id and the configured ones, and says to add the key back."""
    sealed = seal(Keyring([("old", bytes(32))]), "secret-token-value", HERE)
    with pytest.raises(UnknownKeyId, match="'old', which is not configured") as caught:
        unseal(Keyring([("new", bytes([1]) * 32)]), sealed, HERE)
    assert caught.value.key_id == "old"
    assert "configured: new" in str(caught.value)
    assert "Add the key with that id back" in str(caught.value)


def test_the_same_key_id_naming_a_different_key_fails_authentication() -> None:
    """A key id reused for other key bytes is caught, not decrypted into garbage."""
    sealed = seal(Keyring([("k1", bytes(32))]), "secret-token-value", HERE)
    with pytest.raises(DecryptionFailed, match="now names a different key"):
        unseal(Keyring([("k1", bytes([9]) * 32)]), sealed, HERE)
