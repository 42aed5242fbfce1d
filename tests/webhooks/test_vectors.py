"""Known-answer vectors: each scheme reproduces a published example, or a value computed from its documented formula.

"Computed" vectors were produced once, outside tether, with ``hmac``/``hashlib`` from the formula in the provider's
documentation (as summarised in shared/reference/webhook-schemes.md) and pinned here, so a change to tether's
message construction cannot agree with itself.
"""

from __future__ import annotations

import base64

import pytest

from tether.webhooks import GenericHMAC, VerifiedEvent, verify, zoom_url_validation


def test_github_published_example() -> None:
    """GitHub docs, "Validating webhook deliveries" (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries)."""
    event = verify(
        "github",
        secret="It's a Secret to Everybody",
        headers={
            "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-GitHub-Event": "ping",
        },
        body=b"Hello, World!",
    )
    assert event == VerifiedEvent(
        scheme="github",
        id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        type="ping",
        timestamp=None,
        payload=None,
        raw=b"Hello, World!",
    )


SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def test_slack_published_example() -> None:
    """Slack, "Verifying requests from Slack" (https://api.slack.com/authentication/verifying-requests-from-slack)."""
    event = verify(
        "slack",
        secret="8f742231b10e8888abcd99yyyzzz85a5",
        headers={
            "X-Slack-Request-Timestamp": "1531420618",
            "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        },
        body=SLACK_BODY,
        now=1531420618 + 30,
    )
    assert event.timestamp == 1531420618
    assert event.payload is None  # a form body is not JSON
    assert event.raw == SLACK_BODY


TWILIO_PARAMS = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"


def test_twilio_published_example() -> None:
    """twilio-php docs, "Validate Incoming Requests" (docs/usage/validation.rst): token 12345, signature RSOYDt4T...

    (https://twilio-php.readthedocs.io/en/latest/usage/validation.html). The parameters are sent form-encoded in a
    shuffled order to check that tether sorts them by name.
    """
    shuffled = b"To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&From=%2B14158675309&Caller=%2B14158675309"
    for body in (TWILIO_PARAMS, shuffled):
        event = verify(
            "twilio",
            secret="12345",
            headers=[("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
            body=body,
            url="https://mycompany.com/myapp.php?foo=1&bar=2",
        )
        assert event.scheme == "twilio"


def test_twilio_accepts_the_url_with_or_without_the_default_port() -> None:
    """Twilio's SDKs accept the URL with the default port added or removed; proxies report it differently."""
    verify(
        "twilio",
        secret="12345",
        headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        body=TWILIO_PARAMS,
        url="https://mycompany.com:443/myapp.php?foo=1&bar=2",
    )


TWILIO_JSON = b'{"hello":"world"}'
TWILIO_JSON_URL = "https://example.com/sms?bodySHA256=93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"


def test_twilio_json_body_with_body_sha256() -> None:
    """Computed from the documented formula: HMAC-SHA1 over the URL carrying bodySHA256, no params appended."""
    event = verify(
        "twilio",
        secret="12345",
        headers={"X-Twilio-Signature": "pampnf0XBgYaQgiAzHhOwoP7gcI=", "I-Twilio-Idempotency-Token": "tok-1"},
        body=TWILIO_JSON,
        url=TWILIO_JSON_URL,
    )
    assert event.payload == {"hello": "world"}
    assert event.id == "tok-1"


STD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STD_HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
STD_BODY = b'{"test": 2432232314}'


def test_standard_webhooks_published_vector() -> None:
    """Standard Webhooks libraries' "sign function works" test (standard-webhooks/standard-webhooks,
    libraries/python/tests/test_webhooks.py::test_sign_function)."""
    event = verify("standard", secret=STD_SECRET, headers=STD_HEADERS, body=STD_BODY, now=1614265330)
    assert event.id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert event.timestamp == 1614265330
    assert event.payload == {"test": 2432232314}
    # The reference library also accepts the secret without its whsec_ prefix.
    verify("standard", secret=STD_SECRET.removeprefix("whsec_"), headers=STD_HEADERS, body=STD_BODY, now=1614265330)


def test_svix_uses_the_svix_header_prefix() -> None:
    """Same vector with Svix's header names."""
    headers = {name.replace("webhook-", "svix-"): value for name, value in STD_HEADERS.items()}
    event = verify("svix", secret=STD_SECRET, headers=headers, body=STD_BODY, now=1614265330)
    assert event.scheme == "svix"


# Ed25519 key from the fixed seed bytes(range(32)); the signature was produced once with `cryptography`.
STD_PUBLIC_KEY = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
STD_V1A = "v1a,yoUrgEkc12aGqm0n4Sydmdz55xJfTz4AsAgieHFjmkR7LJtqVCZOQYzvvHjI5kAey+r4iaBGxTFRrl2iBQxtDQ=="


def test_standard_webhooks_v1a_ed25519() -> None:
    """Computed from the documented formula: Ed25519 over id.timestamp.body; several entries, space-separated."""
    headers = {**STD_HEADERS, "webhook-signature": f"v1,AAAA {STD_V1A}"}
    event = verify("standard", secret=STD_PUBLIC_KEY, headers=headers, body=STD_BODY, now=1614265330)
    assert event.id == "msg_p5jXN8AQM9LWM0D4loKWxJek"


STRIPE_BODY = b'{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}'
STRIPE_SIG = "67da5088c63e080c71bd2bb0cb5c03d85a8fc6a21ce3aaf484df809654745b92"


def test_stripe_computed_vector() -> None:
    """Computed from the documented formula: hex(HMAC-SHA256("whsec_test_secret", "1700000000." + raw))."""
    event = verify(
        "stripe",
        secret="whsec_test_secret",
        headers={"Stripe-Signature": f"t=1700000000,v1={STRIPE_SIG},v0=ignored"},
        body=STRIPE_BODY,
        now=1700000000,
    )
    assert (event.id, event.type, event.timestamp) == ("evt_1", "payment_intent.succeeded", 1700000000)
    assert "whsec" not in repr(event)


def test_shopify_computed_vector() -> None:
    """Computed from the documented formula: base64(HMAC-SHA256(app secret, raw))."""
    event = verify(
        "shopify",
        secret="shopify-app-secret",
        headers={
            "X-Shopify-Hmac-Sha256": "Nvuuqs0aKhEf37aTkm5TrNolKLqsNI8Zl0Af58LyglE=",
            "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "X-Shopify-Topic": "orders/create",
        },
        body=b'{"id":820982911946154508}',
    )
    assert (event.id, event.type) == ("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders/create")


SQUARE_URL = "https://example.com/webhooks/square"
SQUARE_BODY = b'{"event_id":"ev-1","type":"payment.created"}'


def test_square_computed_vector() -> None:
    """Computed from the documented formula: base64(HMAC-SHA256(signature key, notification URL + raw))."""
    event = verify(
        "square",
        secret="square-signature-key",
        headers={"x-square-hmacsha256-signature": "xRuBsrHv6WBfS1LrbkpFPSun9TlSMfl359tbkCED3V8="},
        body=SQUARE_BODY,
        url=SQUARE_URL,
    )
    assert (event.id, event.type) == ("ev-1", "payment.created")


ZOOM_BODY = b'{"event":"meeting.started","payload":{}}'


def test_zoom_computed_vector() -> None:
    """Computed from the documented formula: "v0=" + hex(HMAC-SHA256(secret token, "v0:" + ts + ":" + raw))."""
    event = verify(
        "zoom",
        secret="zoom-secret-token",
        headers={
            "x-zm-request-timestamp": "1700000000",
            "x-zm-signature": "v0=c79071935bf4fc1bf06006c9850279ce805d8e92fe5458af4ca91eb06e0174f5",
        },
        body=ZOOM_BODY,
        now=1700000100,
    )
    assert (event.type, event.timestamp) == ("meeting.started", 1700000000)


def test_zoom_url_validation_answer() -> None:
    """Computed from the documented formula: encryptedToken = hex(HMAC-SHA256(secret token, plainToken))."""
    assert zoom_url_validation("zoom-secret-token", "qgg8vlvZRS6UYooatFL8Aw") == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3",
    }


@pytest.mark.parametrize(
    ("scheme", "headers"),
    [
        # GitHub's published example again, described as a generic scheme.
        (
            GenericHMAC(header="X-Sig", prefix="sha256=", encoding="hex"),
            {"X-Sig": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
        ),
        (
            GenericHMAC(header="X-Sig", encoding="base64"),
            {
                "X-Sig": base64.b64encode(
                    bytes.fromhex("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
                ).decode()
            },
        ),
    ],
)
def test_generic_hmac_over_the_github_example(scheme: GenericHMAC, headers: dict[str, str]) -> None:
    """GitHub's published example, through GenericHMAC in both encodings."""
    verify(scheme, secret="It's a Secret to Everybody", headers=headers, body=b"Hello, World!")


def test_generic_hmac_timestamp_body_matches_stripe_formula() -> None:
    """The Stripe computed vector, as GenericHMAC(signed="timestamp.body") with separate headers."""
    scheme = GenericHMAC(header="X-Sig", signed="timestamp.body", timestamp_header="X-Ts", name="acme")
    event = verify(
        scheme,
        secret="whsec_test_secret",
        headers={"X-Sig": STRIPE_SIG, "X-Ts": "1700000000"},
        body=STRIPE_BODY,
        now=1700000000,
    )
    assert (event.scheme, event.id, event.timestamp) == ("acme", "evt_1", 1700000000)
