"""Where the vault's keys come from at start-up: configured keys always; a generated key file only in development.

The rule (:func:`load_keyring`), in order:

1. ``TETHER_SECRET_KEY`` set: parse it (:mod:`tether.auth._vault_keys`); a malformed value is an error, never
   ignored.
2. ``TETHER_SECRET_KEY_FILE`` set: read that file (same format); a missing or unreadable file is an error.
3. **production**: refuse to start (:class:`tether.errors.SecretKeyRequired`). A stray development key file is
   not picked up: production keys are configured on purpose.
4. **development**: use the key file given as ``key_file`` (the gateway passes ``./tether.key``), creating it
   with a fresh key (mode 0600, linked into place complete, so two processes starting at once agree on one) and
   logging a WARNING that says where and why, every start-up it is used.

There is no branch that stores tokens unencrypted. The function reads only its arguments and the file system, so
tests drive it with a temporary folder and a plain dict for the environment.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tether.auth._vault_keys import Keyring, generate_key_setting, parse_keyring
from tether.errors import MalformedSecretKey, SecretKeyRequired

__all__ = ["DEFAULT_KEY_FILE", "KEY_FILE_ENV", "SECRET_KEY_ENV", "Environment", "load_keyring"]

SECRET_KEY_ENV = "TETHER_SECRET_KEY"  # noqa: S105 the variable's name, not a secret
KEY_FILE_ENV = "TETHER_SECRET_KEY_FILE"
DEFAULT_KEY_FILE = Path("tether.key")
"""The development key file, relative to the working folder (next to ``tether.db``)."""

Environment = Literal["development", "production"]

logger = logging.getLogger("tether.vault")


def _read_key_file(path: Path, origin: str) -> Keyring:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretKeyRequired(f"The key file {str(path)!r} named by {origin} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyRequired(f"Cannot read the key file {str(path)!r} ({origin}): {type(exc).__name__}") from None
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "The key file %s is accessible to other users (mode %o); restrict it with: chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )
    try:
        return parse_keyring(text)
    except MalformedSecretKey as exc:
        raise MalformedSecretKey(f"{exc.summary} (in the key file {str(path)!r})") from None


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` atomically: complete and mode 0600, or ``FileExistsError`` if it appeared."""
    setting = generate_key_setting(f"dev-{datetime.now(UTC):%Y%m%d}")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(setting + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(staging, path)  # never replaces: a key another process created first wins
    finally:
        staging.unlink(missing_ok=True)


def load_keyring(
    *, environment: Environment, environ: Mapping[str, str], key_file: Path = DEFAULT_KEY_FILE, create: bool = True
) -> Keyring:
    """The keys the vault uses, by the rule in this module's docstring.

    ``environ`` is where ``TETHER_SECRET_KEY``/``TETHER_SECRET_KEY_FILE`` are looked up (``os.environ`` in the
    gateway). ``create=False`` (for commands such as ``tether keys rotate``) uses an existing development key
    file but never makes one. Raises :class:`SecretKeyRequired` or :class:`MalformedSecretKey`.
    """
    setting = environ.get(SECRET_KEY_ENV, "").strip()
    if setting:
        return parse_keyring(setting)
    named = environ.get(KEY_FILE_ENV, "").strip()
    if named:
        return _read_key_file(Path(named), KEY_FILE_ENV)
    if environment == "production":
        raise SecretKeyRequired(
            f"No encryption key is configured and production settings are in force: set {SECRET_KEY_ENV} or "
            f"{KEY_FILE_ENV}; tether refuses to start rather than store tokens without a key you manage"
        )
    if key_file.exists():
        keyring = _read_key_file(key_file, "the development default")
        logger.warning(
            "DEVELOPMENT KEY IN USE: tokens are encrypted with the generated key in %s because %s is not set. "
            "Anyone who can read that file can read the stored tokens; set %s for real deployments.",
            key_file,
            SECRET_KEY_ENV,
            SECRET_KEY_ENV,
        )
        return keyring
    if not create:
        raise SecretKeyRequired(f"No encryption key is configured ({SECRET_KEY_ENV} is not set, no {key_file})")
    try:
        _create_key_file(key_file)
    except FileExistsError:  # another process created it first: use theirs
        pass
    except OSError as exc:
        raise SecretKeyRequired(f"Cannot create the development key file {str(key_file)!r}: {exc.strerror}") from None
    logger.warning(
        "DEVELOPMENT KEY CREATED: %s is not set, so tether generated an encryption key in %s (mode 0600) to "
        "encrypt stored tokens. Keep that file: without it the stored tokens cannot be read. For production, "
        "set %s and start with production settings, which refuse to run without it.",
        SECRET_KEY_ENV,
        key_file,
        SECRET_KEY_ENV,
    )
    return _read_key_file(key_file, "the development default")
