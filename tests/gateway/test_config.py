"""Gateway config: each mistake is a ConfigurationError naming the source and field, never a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ConfigurationError
from tether.gateway import GatewaySettings, WebhookSource, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(text)
    return path


def test_full_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[gateway]
database = "state.db"

[webhooks.sources.gh]
scheme = "github"
secret = "s3cret"

[webhooks.sources.tw]
scheme = "Twilio"
secrets = ["new", "old"]
url = "https://example.com/webhooks/tw"

[webhooks.sources.stripe]
scheme = "stripe"
secret_env = "STRIPE_SECRET"
""",
    )
    settings = load_config(path)
    assert settings.database == Path("state.db")
    assert settings.source("gh") == WebhookSource(name="gh", scheme="github", secrets=("s3cret",))
    assert settings.source("tw") == WebhookSource(
        name="tw", scheme="twilio", secrets=("new", "old"), url="https://example.com/webhooks/tw"
    )
    stripe = settings.source("stripe")
    assert stripe is not None
    assert stripe.secrets == ()
    assert stripe.secret_env == "STRIPE_SECRET"
    assert "s3cret" not in repr(settings)


def test_secret_env_is_read_at_resolve(tmp_path: Path) -> None:
    settings = load_config(_write(tmp_path, '[webhooks.sources.s]\nscheme = "stripe"\nsecret_env = "WH_SECRET"\n'))
    resolved = settings.resolve_secrets({"WH_SECRET": "whsec_value"})
    source = resolved.source("s")
    assert source is not None
    assert source.secrets == ("whsec_value",)
    assert "whsec_value" not in repr(resolved)


@pytest.mark.parametrize("environ", [{}, {"WH_SECRET": ""}])
def test_missing_secret_env_names_the_variable(tmp_path: Path, environ: dict[str, str]) -> None:
    settings = load_config(_write(tmp_path, '[webhooks.sources.s]\nscheme = "stripe"\nsecret_env = "WH_SECRET"\n'))
    with pytest.raises(ConfigurationError, match=r"'s'.*WH_SECRET"):
        settings.resolve_secrets(environ)


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config() == GatewaySettings()


def test_tether_toml_in_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, '[webhooks.sources.gh]\nscheme = "github"\nsecret = "x"\n')
    assert load_config().source("gh") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[webhooks.sources.gh]\nscheme = "nope"\nsecret = "TOPSECRET"\n', r"'gh'.*unknown scheme 'nope'.*'scheme'"),
        ('[webhooks.sources.gh]\nsecret = "TOPSECRET"\n', r"'gh'.*'scheme' is missing"),
        ('[webhooks.sources.gh]\nscheme = "github"\n', r"'gh'.*no secret"),
        (
            '[webhooks.sources.gh]\nscheme = "github"\nsecret = "TOPSECRET"\nsecret_env = "X"\n',
            r"'gh'.*'secret' and 'secret_env' both given",
        ),
        ('[webhooks.sources.gh]\nscheme = 3\nsecret = "TOPSECRET"\n', r"'gh'.*'scheme' must be a non-empty string"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecret = 42\n', r"'gh'.*'secret' must be a non-empty string"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecret = ""\n', r"'gh'.*'secret' must be a non-empty string"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecrets = "TOPSECRET"\n', r"'gh'.*'secrets' must be"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecrets = []\n', r"'gh'.*'secrets' must be"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecrets = ["TOPSECRET", 1]\n', r"'gh'.*'secrets' must hold"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecret_env = 1\n', r"'gh'.*'secret_env' must be"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecret = "TOPSECRET"\nurl = 1\n', r"'gh'.*'url' must be"),
        ('[webhooks.sources.gh]\nscheme = "github"\nsecert = "TOPSECRET"\n', r"'gh'.*unknown field 'secert'"),
        ('[webhooks.sources."a/b"]\nscheme = "github"\nsecret = "TOPSECRET"\n', r"'a/b'.*source name"),
        ("[webhooks]\nsources = 1\n", r"\[webhooks.sources\] must be a table"),
        ("webhooks = 1\n", r"\[webhooks\] must be a table"),
        ("[webhooks.sources]\ngh = 1\n", r"'gh'.*must be a table"),
        ("[gateway]\ndatabase = 1\n", r"\[gateway\].*'database' must be"),
        ('[gateway]\ndatabse = "x.db"\n', r"\[gateway\].*unknown field 'databse'"),
        ("[gateway\n", r"not valid TOML"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_config(path)
    assert "TOPSECRET" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_config(tmp_path / "absent.toml")
