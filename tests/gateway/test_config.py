"""Gateway config: each mistake is a ConfigurationError naming the source and field, never a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ConfigurationError
from tether.gateway import GatewaySettings, Integration, WebhookSource, load_config


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


# -- [gateway] environment and [integrations.NAME] ---------------------------------------------------------------

GITHUB = """
[integrations.github]
client_id = "Iv1.abc"
client_secret = "TOPSECRET"
scopes = ["repo", "read:user"]
authorize_url = "https://github.com/login/oauth/authorize"
token_url = "https://github.com/login/oauth/access_token"
"""


def test_integrations(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[gateway]\nenvironment = "production"\n'
        + GITHUB
        + """
[integrations.google]
client_id = "123.apps.googleusercontent.com"
client_secret_env = "GOOGLE_SECRET"
scopes = []
issuer = "https://accounts.google.com"
revocation_url = "https://oauth2.googleapis.com/revoke"
redirect_uri = "https://gw.example.com/oauth/callback"
test_url = "https://openidconnect.googleapis.com/v1/userinfo?alt=json"

[integrations.local]
client_id = "c"
client_secret = "s"
authorize_url = "http://127.0.0.1:9000/authorize"
token_url = "http://localhost:9000/token"
""",
    )
    settings = load_config(path)
    assert settings.environment == "production"
    assert settings.integration("github") == Integration(
        name="github",
        client_id="Iv1.abc",
        client_secret="TOPSECRET",
        scopes=("repo", "read:user"),
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",
    )
    google = settings.integration("google")
    assert google is not None
    assert (google.issuer, google.client_secret, google.client_secret_env) == (
        "https://accounts.google.com",
        "",
        "GOOGLE_SECRET",
    )
    assert google.scopes == ()
    assert google.revocation_url == "https://oauth2.googleapis.com/revoke"
    assert google.redirect_uri == "https://gw.example.com/oauth/callback"
    assert google.test_url == "https://openidconnect.googleapis.com/v1/userinfo?alt=json"
    assert google.authorize_url is None
    local = settings.integration("local")
    assert local is not None
    assert local.token_url == "http://localhost:9000/token"
    assert settings.integration("absent") is None
    assert "TOPSECRET" not in repr(settings)
    assert "TOPSECRET" not in repr(settings.integration("github"))


def test_environment_defaults_to_development(tmp_path: Path) -> None:
    settings = load_config(_write(tmp_path, GITHUB))
    assert settings.environment == "development"
    github = settings.integration("github")
    assert github is not None
    assert github.scopes == ("repo", "read:user")


def test_resolve_reads_client_secret_env_tether_env_and_admin_token(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[integrations.g]\nclient_id = "c"\nclient_secret_env = "G_SECRET"\nissuer = "https://id.example.com"\n',
    )
    settings = load_config(path)
    assert settings.environment == "development"
    assert settings.admin_token is None
    resolved = settings.resolve_secrets(
        {"G_SECRET": "client-TOPSECRET", "TETHER_ENV": "production", "TETHER_ADMIN_TOKEN": "admin-TOPSECRET"}
    )
    integration = resolved.integration("g")
    assert integration is not None
    assert integration.client_secret == "client-TOPSECRET"
    assert resolved.environment == "production"
    assert resolved.admin_token == "admin-TOPSECRET"
    assert "TOPSECRET" not in repr(resolved)
    # Unset or empty TETHER_ENV and TETHER_ADMIN_TOKEN leave the file's values.
    kept = settings.resolve_secrets({"G_SECRET": "x", "TETHER_ENV": "", "TETHER_ADMIN_TOKEN": ""})
    assert (kept.environment, kept.admin_token) == ("development", None)


def test_tether_env_overrides_the_file(tmp_path: Path) -> None:
    settings = load_config(_write(tmp_path, '[gateway]\nenvironment = "production"\n'))
    assert settings.resolve_secrets({"TETHER_ENV": "development"}).environment == "development"
    with pytest.raises(ConfigurationError, match=r"TETHER_ENV must be one of \['development', 'production'\]"):
        settings.resolve_secrets({"TETHER_ENV": "prod"})


@pytest.mark.parametrize("environ", [{}, {"G_SECRET": ""}])
def test_missing_client_secret_env_names_the_variable(tmp_path: Path, environ: dict[str, str]) -> None:
    path = _write(
        tmp_path,
        '[integrations.g]\nclient_id = "c"\nclient_secret_env = "G_SECRET"\nissuer = "https://id.example.com"\n',
    )
    with pytest.raises(ConfigurationError, match=r"integration 'g'.*G_SECRET.*client_secret_env"):
        load_config(path).resolve_secrets(environ)


_ENDPOINTS = 'authorize_url = "https://p.example/a"\ntoken_url = "https://p.example/t"\n'
_BASE = '[integrations.p]\nclient_id = "c"\nclient_secret = "TOPSECRET"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[gateway]\nenvironment = "prod"\n', r"\[gateway\] field 'environment' must be one of .*not 'prod'"),
        ("[gateway]\nenvironment = 1\n", r"\[gateway\] field 'environment' must be one of .*not an integer"),
        ("integrations = 1\n", r"\[integrations\] must be a table"),
        ("[integrations]\np = 1\n", r"integration 'p'.*must be a table"),
        ('[integrations."a/b"]\nclient_id = "c"\nclient_secret = "TOPSECRET"\n' + _ENDPOINTS, r"'a/b'.*name"),
        (_BASE + _ENDPOINTS + 'client_secert = "TOPSECRET"\n', r"'p'.*unknown field 'client_secert'; known: \["),
        ('[integrations.p]\nclient_secret = "TOPSECRET"\n' + _ENDPOINTS, r"'p'.*'client_id' is missing"),
        ('[integrations.p]\nclient_id = ""\nclient_secret = "TOPSECRET"\n' + _ENDPOINTS, r"'client_id' must be"),
        ('[integrations.p]\nclient_id = "c"\n' + _ENDPOINTS, r"'p'.*no client secret"),
        (_BASE + 'client_secret_env = "X"\n' + _ENDPOINTS, r"'client_secret' and 'client_secret_env' both given"),
        ('[integrations.p]\nclient_id = "c"\nclient_secret = 42\n' + _ENDPOINTS, r"'client_secret' must be a non-"),
        ('[integrations.p]\nclient_id = "c"\nclient_secret_env = ""\n' + _ENDPOINTS, r"'client_secret_env' must"),
        (_BASE, r"'p'.*no provider endpoints; set 'issuer'"),
        (_BASE + 'authorize_url = "https://p.example/a"\n', r"'p'.*field 'token_url' is missing"),
        (_BASE + 'token_url = "https://p.example/t"\n', r"'p'.*field 'authorize_url' is missing"),
        (_BASE + _ENDPOINTS + 'issuer = "https://p.example"\n', r"'issuer'.*both given; set only one style"),
        (_BASE + 'issuer = "https://p.example"\ntoken_url = "https://p.example/t"\n', r"both given"),
        (_BASE + 'issuer = "http://p.example"\n', r"'issuer' must use https://"),
        (_BASE + 'issuer = "https://p.example?x=1"\n', r"'issuer' must not have a query"),
        (_BASE + 'issuer = "p.example"\n', r"'issuer' must be an absolute https:// URL"),
        (_BASE + 'issuer = "ftp://p.example"\n', r"'issuer' must be an absolute https:// URL"),
        (_BASE + "issuer = 7\n", r"'issuer' must be a non-empty string"),
        (_BASE + 'authorize_url = "http://p.example/a"\ntoken_url = "https://p.example/t"\n', r"'authorize_url'"),
        (_BASE + 'authorize_url = "https://p.example/a"\ntoken_url = "/token"\n', r"'token_url' must be an absolute"),
        (_BASE + 'authorize_url = "https://p.example/a#f"\ntoken_url = "https://p.example/t"\n', r"fragment"),
        (
            _BASE + 'authorize_url = "https://p.example/a"\ntoken_url = "https://u:TOPSECRET@p.example/t"\n',
            r"'token_url' must not carry credentials",
        ),
        (_BASE + 'authorize_url = "https://p.example:99999/a"\ntoken_url = "https://p.example/t"\n', r"not a valid"),
        (_BASE + _ENDPOINTS + 'revocation_url = "http://10.0.0.1/r"\n', r"'revocation_url' must use https://"),
        (_BASE + _ENDPOINTS + 'redirect_uri = "/oauth/callback"\n', r"'redirect_uri' must be an absolute"),
        (_BASE + _ENDPOINTS + 'test_url = "http://api.example/me"\n', r"'test_url' must use https://"),
        (_BASE + _ENDPOINTS + 'test_url = "/me"\n', r"'test_url' must be an absolute"),
        (_BASE + _ENDPOINTS + 'test_url = "https://u:TOPSECRET@api.example/me"\n', r"'test_url' must not carry"),
        (_BASE + _ENDPOINTS + 'scopes = "repo"\n', r"'scopes' must be an array of strings, not a string"),
        (_BASE + _ENDPOINTS + 'scopes = ["repo", 1]\n', r"'scopes' must hold non-empty strings.*not an integer"),
        (_BASE + _ENDPOINTS + 'scopes = ["a b"]\n', r"'scopes' must hold non-empty strings without spaces"),
        (_BASE + _ENDPOINTS + 'scopes = [""]\n', r"'scopes' must hold non-empty strings"),
    ],
)
def test_integration_and_environment_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_config(path)
    assert "TOPSECRET" not in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "app.localhost"])
def test_http_is_accepted_on_loopback_hosts(tmp_path: Path, host: str) -> None:
    text = _BASE + f'authorize_url = "http://{host}:8000/a"\ntoken_url = "http://{host}/t"\n'
    integration = load_config(_write(tmp_path, text)).integration("p")
    assert integration is not None
    assert integration.authorize_url == f"http://{host}:8000/a"
