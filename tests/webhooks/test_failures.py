"""Every way a delivery can fail verification raises its own error, says what to check, and never leaks a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.errors import (
    ConfigurationError,
    MalformedSignatureHeader,
    MissingSignatureHeader,
    SignatureMismatch,
    TetherError,
    TimestampOutsideTolerance,
    WebhookVerificationError,
)
from tether.webhooks import GenericHMAC, verify

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}'
T = 1_700_000_000


def stripe_header(secret: str = SECRET, t: int = T, body: bytes = BODY) -> str:
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"


def slack_headers(secret: str = SECRET, t: int = T, body: bytes = BODY) -> dict[str, str]:
    signature = hmac.new(secret.encode(), f"v0:{t}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(t), "X-Slack-Signature": f"v0={signature}"}


def test_the_errors_form_one_tree() -> None:
    """Callers catch every verification failure with one class, under TetherError."""
    for cls in (MissingSignatureHeader, MalformedSignatureHeader, SignatureMismatch, TimestampOutsideTolerance):
        assert issubclass(cls, WebhookVerificationError)
    assert issubclass(WebhookVerificationError, TetherError)


def test_rotation_any_secret_may_match() -> None:
    """A list of secrets verifies a delivery signed with any of them (the second here)."""
    event = verify(
        "stripe", secret=["whsec_old", SECRET], headers={"Stripe-Signature": stripe_header()}, body=BODY, now=T
    )
    assert event.id == "evt_1"
    verify("slack", secret=["old", SECRET], headers=slack_headers(), body=BODY, now=T)


def test_stripe_several_v1_values_any_may_match() -> None:
    """Stripe sends one v1 per active secret while rolling; any may match."""
    other = stripe_header("whsec_other").split(",")[1]
    verify("stripe", secret=SECRET, headers={"Stripe-Signature": f"{other},{stripe_header()}"}, body=BODY, now=T)


def test_stripe_vs_standard_secret_trap() -> None:
    """Stripe keys HMAC with the whsec_ string itself; Standard Webhooks base64-decodes what follows whsec_."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    as_is = hmac.new(secret.encode(), f"msg_1.{T}.".encode() + BODY, hashlib.sha256).digest()
    std_headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(T),
        "webhook-signature": "v1," + base64.b64encode(as_is).decode(),
    }
    with pytest.raises(SignatureMismatch):
        verify("standard", secret=secret, headers=std_headers, body=BODY, now=T)
    decoded = base64.b64decode(secret.removeprefix("whsec_"))
    signature = hmac.new(decoded, f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureMismatch):  # and the decoded key is not what Stripe uses
        verify("stripe", secret=secret, headers={"Stripe-Signature": f"t={T},v1={signature}"}, body=BODY, now=T)
    verify("stripe", secret=secret, headers={"Stripe-Signature": stripe_header(secret)}, body=BODY, now=T)


def test_secrets_never_appear_in_errors() -> None:
    """Neither the secret nor the expected signature is in the message or repr."""
    expected = stripe_header().split("v1=")[1]
    with pytest.raises(SignatureMismatch) as caught:
        verify("stripe", secret=SECRET, headers={"Stripe-Signature": stripe_header("whsec_wrong")}, body=BODY, now=T)
    for text in (str(caught.value), repr(caught.value)):
        assert SECRET not in text
        assert expected not in text
        assert "Stripe-Signature" in text


@pytest.mark.parametrize(
    ("headers", "error", "mentions"),
    [
        ({}, MissingSignatureHeader, "Stripe-Signature"),
        ({"Stripe-Signature": ""}, MissingSignatureHeader, "Stripe-Signature"),
        ({"Stripe-Signature": "v1=abcd"}, MalformedSignatureHeader, "t=<unix time>"),
        ({"Stripe-Signature": f"t={T}"}, MalformedSignatureHeader, "v1="),
        ({"Stripe-Signature": f"t={T},v1=zz"}, MalformedSignatureHeader, "v1="),
        ({"Stripe-Signature": f"t={T},t={T},v1=ab"}, MalformedSignatureHeader, "exactly one t="),
        ({"Stripe-Signature": "t=soon,v1=ab"}, MalformedSignatureHeader, "Unix time"),
        ({"Stripe-Signature": f"t={T},v1={'ab' * 32}"}, SignatureMismatch, "secret"),
    ],
)
def test_stripe_each_failure_is_distinct(
    headers: dict[str, str], error: type[WebhookVerificationError], mentions: str
) -> None:
    """Missing, malformed and mismatching headers raise their own class, naming what to check."""
    with pytest.raises(error) as caught:
        verify("stripe", secret=SECRET, headers=headers, body=BODY, now=T)
    assert type(caught.value) is error
    assert mentions in str(caught.value)


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_tolerance_edge_is_accepted(skew: int) -> None:
    """Exactly the tolerance away (past or future) verifies."""
    verify("stripe", secret=SECRET, headers={"Stripe-Signature": stripe_header()}, body=BODY, now=T + skew)
    verify("slack", secret=SECRET, headers=slack_headers(), body=BODY, now=T + skew)


@pytest.mark.parametrize(("skew", "words"), [(301, "301 s old"), (-301, "301 s in the future")])
def test_beyond_tolerance_is_refused(skew: int, words: str) -> None:
    """One second beyond the tolerance, either way, raises TimestampOutsideTolerance with the numbers."""
    for scheme, headers in (("stripe", {"Stripe-Signature": stripe_header()}), ("slack", slack_headers())):
        with pytest.raises(TimestampOutsideTolerance) as caught:
            verify(scheme, secret=SECRET, headers=headers, body=BODY, now=T + skew)
        assert words in str(caught.value)
        assert (caught.value.timestamp, caught.value.tolerance) == (T, 300)


def test_tolerance_is_configurable() -> None:
    """tolerance= widens or narrows the window."""
    headers = {"Stripe-Signature": stripe_header()}
    verify("stripe", secret=SECRET, headers=headers, body=BODY, now=T + 900, tolerance=900)
    with pytest.raises(TimestampOutsideTolerance):
        verify("stripe", secret=SECRET, headers=headers, body=BODY, now=T + 11, tolerance=10)


def test_standard_webhooks_failures() -> None:
    """Missing id/timestamp/signature, bad versions and stale timestamps on Standard Webhooks."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    good = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    for name in good:
        with pytest.raises(MissingSignatureHeader, match=name):
            verify("standard", secret=secret, headers={k: v for k, v in good.items() if k != name}, body=body)
    for bad in ("v2,abcd", "g0hM9SsE", "v1,", "v1,not base64!"):
        with pytest.raises(MalformedSignatureHeader):
            verify("standard", secret=secret, headers={**good, "webhook-signature": bad}, body=body, now=1614265330)
    with pytest.raises(SignatureMismatch):
        verify("standard", secret=secret, headers=good, body=body + b" ", now=1614265330)
    with pytest.raises(TimestampOutsideTolerance):
        verify("standard", secret=secret, headers=good, body=body, now=1614265330 + 301)
    with pytest.raises(ConfigurationError, match="base64"):
        verify("standard", secret="whsec_!!!", headers=good, body=body, now=1614265330)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        verify("standard", secret="whpk_AAAA", headers={**good, "webhook-signature": "v1a," + "A" * 88}, body=body)


def test_url_schemes_need_a_url() -> None:
    """Twilio and Square sign the URL: a missing url= is a configuration error that says so."""
    for scheme, header in (("twilio", "X-Twilio-Signature"), ("square", "x-square-hmacsha256-signature")):
        with pytest.raises(ConfigurationError, match="url="):
            verify(scheme, secret=SECRET, headers={header: "AAAA"}, body=BODY)


def test_twilio_body_sha256_must_match_the_body() -> None:
    """A valid URL signature with a body that does not hash to bodySHA256 is refused."""
    url = "https://example.com/sms?bodySHA256=93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"
    headers = {"X-Twilio-Signature": "pampnf0XBgYaQgiAzHhOwoP7gcI="}
    verify("twilio", secret="12345", headers=headers, body=b'{"hello":"world"}', url=url)
    with pytest.raises(SignatureMismatch, match="bodySHA256"):
        verify("twilio", secret="12345", headers=headers, body=b'{"hello":"WORLD"}', url=url)
    with pytest.raises(SignatureMismatch, match="public URL"):
        verify("twilio", secret="12345", headers=headers, body=b'{"hello":"world"}', url=url.replace("https", "http"))


@pytest.mark.parametrize(
    "value",
    [
        "t=" + "9" * 100_000,  # huge
        "t=1700000000,v1=ünïcödé",  # non-ASCII
        "t=1700000000,,,,,v1=,,",  # duplicated commas, empty values
        "   ",  # blank
        ",".join(["v1=ab"] * 1000),  # many items
        "t=" + "\u0661" * 10 + ",v1=ab",  # ARABIC-INDIC DIGIT ONE: str.isdigit() says yes, we say no
        "t=1700000000\x00,v1=ab",  # control character
        "=,=,=",
    ],
)
def test_hostile_stripe_headers_raise_clear_errors(value: str) -> None:
    """Garbled headers raise a verification error, never a crash."""
    with pytest.raises(WebhookVerificationError):
        verify("stripe", secret=SECRET, headers={"Stripe-Signature": value}, body=BODY, now=T)


@pytest.mark.parametrize("scheme", ["github", "shopify", "slack", "zoom", "standard", "svix", "stripe"])
@pytest.mark.parametrize(
    "value", ["", "x" * 20_000, "sha256=" + "é" * 64, "v0=", "v1,====", "sha256=zz", "=" * 9, "v1 , v1a ,", b"\xff\xfe"]
)
def test_hostile_headers_every_scheme(scheme: str, value: str | bytes) -> None:
    """Every signature-ish header set to garbage raises a WebhookVerificationError for every scheme."""
    names = [
        "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256", "X-Slack-Signature", "x-zm-signature", "Stripe-Signature",
        "webhook-signature", "svix-signature", "webhook-id", "svix-id",
    ]  # fmt: skip
    headers: list[tuple[str, str | bytes]] = [(name, value) for name in names]
    headers += [("X-Slack-Request-Timestamp", str(T)), ("x-zm-request-timestamp", str(T))]
    headers += [("webhook-timestamp", str(T)), ("svix-timestamp", str(T))]
    with pytest.raises(WebhookVerificationError):
        verify(scheme, secret=SECRET, headers=headers, body=BODY, now=T)


def test_headers_are_case_insensitive_and_accept_pairs_and_bytes() -> None:
    """Any casing, mappings or (bytes) pairs as an ASGI server gives them."""
    value = stripe_header()
    verify("stripe", secret=SECRET, headers={"stripe-signature": value}, body=BODY, now=T)
    verify("stripe", secret=SECRET, headers=[(b"STRIPE-SIGNATURE", value.encode())], body=BODY, now=T)
    verify("stripe", secret=SECRET, headers=[("Stripe-Signature", value)] * 2, body=BODY, now=T)  # identical repeat


def test_duplicated_header_with_different_values_is_malformed() -> None:
    """Two different values for one signature header are ambiguous and refused."""
    headers = [("Stripe-Signature", stripe_header()), ("stripe-signature", stripe_header("other"))]
    with pytest.raises(MalformedSignatureHeader, match="2 times"):
        verify("stripe", secret=SECRET, headers=headers, body=BODY, now=T)


def test_non_utf8_and_non_json_bodies() -> None:
    """Non-UTF-8 bytes verify by their exact bytes; payload is None when the body is not JSON."""
    body = b"\xff\xfe{not json"
    event = verify("stripe", secret=SECRET, headers={"Stripe-Signature": stripe_header(body=body)}, body=body, now=T)
    assert event.payload is None
    assert event.raw == body
    deep = b"[" * 100_000 + b"]" * 100_000
    event = verify("stripe", secret=SECRET, headers={"Stripe-Signature": stripe_header(body=deep)}, body=deep, now=T)
    assert event.payload is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheme": "paypal"}, "Unknown webhook scheme"),
        ({"secret": []}, "at least one secret"),
        ({"secret": ""}, "non-empty"),
        ({"body": "text"}, "raw request body as bytes"),
        ({"tolerance": -1}, "tolerance"),
    ],
)
def test_calls_that_cannot_work_are_configuration_errors(kwargs: dict[str, object], match: str) -> None:
    """Programming mistakes are ConfigurationError (a ValueError), not verification failures."""
    call: dict[str, object] = {"scheme": "stripe", "secret": SECRET, "headers": {}, "body": BODY, "now": T}
    call.update(kwargs)
    with pytest.raises(ConfigurationError, match=match):
        verify(**call)  # type: ignore[arg-type]


def test_generic_hmac_configuration_is_checked() -> None:
    """A GenericHMAC that cannot work fails when built, naming the option."""
    with pytest.raises(ConfigurationError, match="timestamp_header"):
        GenericHMAC(header="X-Sig", signed="timestamp.body")
    with pytest.raises(ConfigurationError, match="unknown field"):
        GenericHMAC(header="X-Sig", signed="{nonce}.{body}")
    with pytest.raises(ConfigurationError, match="algorithm"):
        GenericHMAC(header="X-Sig", algorithm="md5")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="body"):
        GenericHMAC(header="X-Sig", signed="{url}")


def test_generic_hmac_several_signatures_with_separator() -> None:
    """With separator=, any of several signatures in the header may match."""
    good = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    scheme = GenericHMAC(header="X-Sig", separator=",")
    verify(scheme, secret=SECRET, headers={"X-Sig": f"{'ab' * 32}, {good}"}, body=BODY)
    with pytest.raises(MalformedSignatureHeader, match="at most"):
        verify(scheme, secret=SECRET, headers={"X-Sig": ",".join([good] * 17)}, body=BODY)


@given(st.binary(max_size=256), st.data())
def test_random_tampering_never_verifies(body: bytes, data: st.DataObject) -> None:
    """Any change to the signed body (flip, insert, delete) fails, for a hex and a base64 scheme."""
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        tampered = data.draw(
            st.sampled_from(
                [
                    body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :],
                    body[:index] + body[index + 1 :],
                    body[:index] + bytes([flip]) + body[index:],
                ]
            )
        )
    else:
        tampered = data.draw(st.binary(min_size=1, max_size=8))
    assert tampered != body
    headers = {"Stripe-Signature": stripe_header(body=body)}
    verify("stripe", secret=SECRET, headers=headers, body=body, now=T)
    with pytest.raises(SignatureMismatch):
        verify("stripe", secret=SECRET, headers=headers, body=tampered, now=T)
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    with pytest.raises(SignatureMismatch):
        verify("shopify", secret=SECRET, headers={"X-Shopify-Hmac-Sha256": signature}, body=tampered)
