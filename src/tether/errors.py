"""Every exception tether raises, in one shallow tree a caller can catch by meaning.

::

    TetherError
    ├── TransportError                 the request did not get an HTTP response
    │   ├── ConnectError               could not connect (never sent: safe to retry for any method)
    │   │   └── ConnectTimeout         ... because connecting timed out (also a TransportTimeout)
    │   ├── ReadError                  connection reset / closed / body truncated after sending
    │   ├── ResponseTooLarge           the body exceeded the client's max_response_bytes (not retried)
    │   └── TransportTimeout           one attempt timed out (also a builtin TimeoutError)
    ├── DeadlineExceeded               the call's total time budget ran out (also a builtin TimeoutError)
    ├── HTTPStatusError                the server answered 4xx/5xx
    │   ├── ClientError                4xx not listed below
    │   │   ├── BadRequest 400 · Unauthorized 401 · Forbidden 403 · NotFound 404
    │   │   ├── Conflict 409 · Unprocessable 422
    │   │   └── RateLimited 429        carries ``retry_after``
    │   └── ServerError                5xx
    ├── RetryBudgetExhausted           a retry was suppressed: retries already add their share of traffic
    ├── RetryAfterTooLong              the server asked to wait longer than the deadline or cap allows
    ├── CircuitOpen                    the provider kept failing: calls fail fast until a probe succeeds
    ├── BulkheadFull                   too many calls in flight to one provider: the line was full or too slow
    ├── SharedStateUnavailable         the shared limiter/budget/circuit state (Redis) is unreachable (fail closed)
    ├── PaginationError                a paginated response could not be followed
    ├── ConfigurationError             tether was set up in a way that cannot work (also a ValueError)
    ├── VaultError                     the credentials vault could not store or read a connection
    │   ├── MalformedSecretKey         TETHER_SECRET_KEY (or the key file) is not in the documented format
    │   │                              (also a ConfigurationError)
    │   ├── SecretKeyRequired          no key is configured where one is required (also a ConfigurationError)
    │   ├── UnknownKeyId               a ciphertext was sealed with a key id that is not configured
    │   ├── DecryptionFailed           a ciphertext failed authentication: tampered, moved to another row or
    │   │                              field, or its key id now names a different key
    │   ├── ConnectionNotFound         no connection has that id for that integration (also a LookupError)
    │   └── StaleConnection            a compare-and-swap lost: another writer changed the connection first
    ├── OAuthError                     an OAuth 2.0 / OIDC step failed; ``error`` holds the RFC 6749 code if any
    │   ├── InvalidGrant               the code, refresh token or assertion is invalid, expired or revoked
    │   ├── InvalidClient              the provider did not accept the client id / secret / assertion
    │   ├── InvalidScope               a requested scope is unknown or not allowed for this client
    │   ├── UnauthorizedClient         this client may not use that grant type
    │   ├── AccessDenied               the person (or the provider) refused consent
    │   ├── InvalidState               the callback's ``state`` is unknown, replayed, expired or from another session
    │   ├── IDTokenInvalid             an OIDC ID token failed validation (signature, issuer, audience, expiry, nonce)
    │   ├── DiscoveryFailed            the provider's metadata could not be fetched or is unusable
    │   └── NeedsReauth                the connection's grant is dead: a person must connect the account again
    └── WebhookVerificationError       an incoming webhook failed verification: answer 401, do not process it
        ├── MissingSignatureHeader     a header the scheme needs is absent or empty
        ├── MalformedSignatureHeader   a header is present but not in the scheme's format
        ├── SignatureMismatch          no signature matches any configured secret
        └── TimestampOutsideTolerance  the signature is valid but its timestamp is too old or too far ahead

Vault errors name the connection, the field and the key id involved, never a key or a token.

Every call error carries ``method``, ``url`` (redacted), ``attempts`` and ``elapsed`` seconds; HTTP errors add
``status_code``, ``headers`` (redacted), a bounded, redacted ``body_excerpt`` and the ``response``. Messages
say what happened and what to do. No secret appears in a message or a ``repr``: URLs, headers and bodies are
redacted by :mod:`tether._redaction` before they are stored here.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from tether._redaction import redact_headers, redact_text, redact_url
from tether._retry_after import parse_retry_after

if TYPE_CHECKING:
    from tether._models import Response

__all__ = [
    "AccessDenied",
    "BadRequest",
    "BulkheadFull",
    "ClientError",
    "ConfigurationError",
    "Conflict",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionNotFound",
    "DeadlineExceeded",
    "DecryptionFailed",
    "DiscoveryFailed",
    "Forbidden",
    "HTTPStatusError",
    "IDTokenInvalid",
    "InvalidClient",
    "InvalidGrant",
    "InvalidScope",
    "InvalidState",
    "MalformedSecretKey",
    "MalformedSignatureHeader",
    "MissingSignatureHeader",
    "NeedsReauth",
    "NotFound",
    "OAuthError",
    "PaginationError",
    "RateLimited",
    "ReadError",
    "RetryAfterTooLong",
    "RetryBudgetExhausted",
    "SecretKeyRequired",
    "ServerError",
    "SharedStateUnavailable",
    "SignatureMismatch",
    "StaleConnection",
    "TetherError",
    "TimestampOutsideTolerance",
    "TransportError",
    "TransportTimeout",
    "Unauthorized",
    "UnauthorizedClient",
    "UnknownKeyId",
    "Unprocessable",
    "VaultError",
    "WebhookVerificationError",
    "error_for_response",
]

BODY_EXCERPT_LIMIT = 1024
"""The most bytes of a response body an HTTP error keeps (before redaction)."""


class TetherError(Exception):
    """Base of every tether exception.

    ``summary`` says what happened, ``advice`` what to do about it; ``str()`` joins them with the call's
    context, which the pipeline fills in as it learns it (attempts and elapsed time are known only at the end).
    """

    advice: ClassVar[str] = ""

    def __init__(
        self,
        summary: str,
        *,
        method: str | None = None,
        url: str | None = None,
        attempts: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.method = method
        self.url = redact_url(url) if url is not None else None
        self.attempts = attempts
        self.elapsed = elapsed

    def _context(self) -> str:
        parts = []
        if self.method is not None and self.url is not None:
            parts.append(f"{self.method} {self.url}")
        if self.attempts:
            noun = "attempt" if self.attempts == 1 else "attempts"
            parts.append(f"{self.attempts} {noun} in {self.elapsed:.2f} s")
        return f" [{'; '.join(parts)}]" if parts else ""

    def __str__(self) -> str:
        advice = f" {self.advice}" if self.advice else ""
        return f"{self.summary}{self._context()}.{advice}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class TransportError(TetherError):
    """The request got no HTTP response: the connection failed, broke or timed out."""

    advice = "The network or the server is unreachable; tether retries this for you within the deadline."


class ConnectError(TransportError):
    """No connection could be made; the request was never sent."""

    advice = "Check the host, port and TLS settings, and that the service is up."


class ReadError(TransportError):
    """The connection failed after the request was sent (reset, closed early, truncated body)."""

    advice = "The server or a proxy dropped the connection mid-exchange; the request may have been processed."


class ResponseTooLarge(TransportError):
    """The response body was larger than the client accepts (``max_response_bytes``); reading it stopped there."""

    advice = "If a body this large is expected, raise the client's max_response_bytes; tether does not retry this."


class TransportTimeout(TransportError, builtins.TimeoutError):
    """One attempt took longer than its timeout."""

    advice = "Raise the policy's attempt_timeout if the provider is legitimately slow."


class ConnectTimeout(ConnectError, TransportTimeout):
    """Connecting took longer than the attempt's timeout; the request was never sent."""

    advice = "The host did not accept a connection in time: check that it is reachable and up."


class DeadlineExceeded(TetherError, builtins.TimeoutError):
    """The call's total time budget (all attempts and waits) ran out; ``last_error`` is what failed last."""

    advice = "Raise the policy's deadline, or treat the provider as unavailable for now."

    def __init__(self, summary: str, *, last_error: BaseException | None = None, **context: object) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.last_error = last_error


class HTTPStatusError(TetherError):
    """The server answered with an error status."""

    def __init__(
        self,
        summary: str,
        *,
        status_code: int,
        headers: list[tuple[str, str]],
        body_excerpt: str,
        response: Response | None = None,
        method: str | None = None,
        url: str | None = None,
        attempts: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        super().__init__(summary, method=method, url=url, attempts=attempts, elapsed=elapsed)
        self.status_code = status_code
        self.headers = redact_headers(headers)
        self.body_excerpt = body_excerpt
        self.response = response

    def __str__(self) -> str:
        text = super().__str__()
        if self.body_excerpt:
            text += f" Response body: {self.body_excerpt}"
        return text


class ClientError(HTTPStatusError):
    """A 4xx answer: the request itself is at fault and repeating it unchanged will not help."""

    advice = "Fix the request; repeating it unchanged will fail the same way."


class BadRequest(ClientError):
    """400: the provider rejected the request's syntax or parameters."""

    advice = "The provider rejected the parameters or body; the response body usually says which."


class Unauthorized(ClientError):
    """401: credentials missing, wrong, expired or revoked."""

    advice = "Check the credentials the client sends: the token or key may be missing, wrong, expired or revoked."


class Forbidden(ClientError):
    """403: the credentials are valid but not allowed to do this."""

    advice = "The credentials lack a permission or scope this call needs, or the account is restricted."


class NotFound(ClientError):
    """404: no such resource (or it is hidden from these credentials)."""

    advice = "Check the path and the resource id; some providers answer 404 for resources you may not see."


class Conflict(ClientError):
    """409: the request conflicts with the resource's state (or an idempotency key was reused)."""

    advice = "Re-read the resource's state; if an idempotency key was reused with another body, use a new key."


class Unprocessable(ClientError):
    """422: the body was well-formed but failed the provider's validation."""

    advice = "The provider's validation failed; the response body lists the fields at fault."


class RateLimited(ClientError):
    """429: too many requests. ``retry_after`` is the server's requested wait in seconds, when it gave one."""

    advice = "Slow down: lower the request rate or declare the provider's quota in the policy."

    def __init__(self, summary: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(summary, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(HTTPStatusError):
    """A 5xx answer: the provider failed; retrying later may succeed."""

    advice = "The provider is failing; tether retried within the policy. Check the provider's status page."


class RetryBudgetExhausted(TetherError):
    """A retry was suppressed because retries already add the budget's share of traffic.

    The original failure is chained as ``__cause__`` and kept as ``last_error``.
    """

    advice = (
        "The upstream is failing broadly and retrying would multiply the load; the budget refills as "
        "calls succeed. Tune Policy(budget=...) only if retries are known to be cheap for this provider."
    )

    def __init__(self, summary: str, *, last_error: BaseException | None = None, **context: object) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.last_error = last_error


class CircuitOpen(TetherError):
    """The circuit for ``key`` is open: calls fail fast.

    ``retry_after`` is the wait, in seconds, until it lets a probe through; ``last_error`` the failure of this
    call's previous attempt, if it had one.
    """

    advice = (
        "The provider has been failing, so tether stopped calling it for a while. Serve a fallback or try again "
        "after retry_after seconds; the circuit closes by itself once a probe call succeeds."
    )

    def __init__(
        self,
        summary: str,
        *,
        key: str = "",
        retry_after: float = 0.0,
        last_error: BaseException | None = None,
        **context: object,
    ) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.key = key
        self.retry_after = retry_after
        self.last_error = last_error


class BulkheadFull(TetherError):
    """The bulkhead for ``key`` turned the call away before sending it.

    ``max_concurrent`` requests were already in flight there and either the line of waiting calls was full, or
    this call waited in it longer than the bulkhead's ``max_wait`` (``waited`` seconds). Never retried by tether.
    """

    advice = (
        "More calls to this provider are in flight than the bulkhead allows: shed or slow down the load, or raise "
        "Bulkhead(max_concurrent=..., max_queue=..., max_wait=...) if the provider can take more."
    )

    def __init__(
        self,
        summary: str,
        *,
        key: str = "",
        waited: float = 0.0,
        last_error: BaseException | None = None,
        **context: object,
    ) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.key = key
        self.waited = waited
        self.last_error = last_error


class SharedStateUnavailable(TetherError):
    """The shared limiter, budget and circuit state (Redis) could not be reached, and it is set to fail closed.

    No request was sent for the decision that failed: with ``on_unavailable="closed"`` a call that cannot consult
    the shared quota, circuit or retry budget before sending is refused rather than risk exceeding a quota other
    processes count on. (What follows a response, recording it in the circuit or learning the quota it announced,
    never discards the response: the call returns it and a warning is logged.) An attempt may have been made
    before: a retry refused this way keeps the failure it was retrying as ``last_error``, also chained as
    ``__cause__``.
    """

    advice = (
        "Check that Redis is up and reachable from this process; calls resume by themselves once it answers. "
        "To keep calling on each process's own state during an outage, use on_unavailable='open'."
    )

    def __init__(self, summary: str, *, last_error: BaseException | None = None, **context: object) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.last_error = last_error


class RetryAfterTooLong(TetherError):
    """The server asked to wait longer than the call may: ``retry_after`` is the server's delay in seconds."""

    advice = "Try again after the server's delay, or allow a longer deadline or max_retry_after in the policy."

    def __init__(
        self, summary: str, *, retry_after: float, last_error: BaseException | None = None, **context: object
    ) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.last_error = last_error


class PaginationError(TetherError):
    """A paginated response could not be followed (unexpected shape, or a cursor that repeats)."""

    advice = "Check the paginator's paths against a real response from the provider."


class ConfigurationError(TetherError, ValueError):
    """tether was configured in a way that cannot work; the message names the option."""


class VaultError(TetherError):
    """The credentials vault could not store or read a connection; the subclass says why.

    Messages name the connection (integration and id), the field and the key id, never key material or a token.
    """


class MalformedSecretKey(VaultError, ConfigurationError):
    """The key setting (``TETHER_SECRET_KEY`` or a key file) is not ``KID:BASE64KEY[,KID:BASE64KEY...]``."""

    advice = (
        "Set TETHER_SECRET_KEY to comma-separated KID:KEY pairs, newest first, where KID is 1-64 letters, digits, "
        "'_', '-' or '.' and KEY is 32 random bytes in base64; `tether keys generate` prints one."
    )


class SecretKeyRequired(VaultError, ConfigurationError):
    """No encryption key is configured where one is required (production settings, or a command that needs it)."""

    advice = (
        "Set TETHER_SECRET_KEY (or TETHER_SECRET_KEY_FILE naming a file that holds it); `tether keys generate` "
        "prints a new key. tether never stores tokens unencrypted."
    )


class UnknownKeyId(VaultError):
    """A stored ciphertext names a key id that the configured keys do not include."""

    advice = (
        "Add the key with that id back to TETHER_SECRET_KEY (after the newest key) and run `tether keys rotate`; "
        "remove an old key only once rotation reports no rows left under it."
    )

    def __init__(self, summary: str, *, key_id: str, **context: object) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.key_id = key_id


class DecryptionFailed(VaultError):
    """A ciphertext failed authentication, so nothing of it was returned.

    It was altered, copied from another connection or field (the row's identity is bound into every ciphertext),
    or the configured key for its key id is not the key it was sealed with.
    """

    advice = (
        "Check that TETHER_SECRET_KEY maps this key id to the same key as when the token was stored; if it does, "
        "the row was altered or copied from elsewhere: reconnect the account to store fresh tokens."
    )


class ConnectionNotFound(VaultError, LookupError):
    """No connection is stored under that id for that integration."""

    advice = "Check the integration name and the connection id, or connect the account first."


class StaleConnection(VaultError):
    """A compare-and-swap write lost: the connection changed (or the refresh right moved) since it was read.

    ``current_version`` is the version now stored (``None`` when the connection was deleted).
    """

    advice = "Another writer got there first; re-read the connection and use what it stored instead of retrying."

    def __init__(self, summary: str, *, current_version: int | None = None, **context: object) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.current_version = current_version


class OAuthError(TetherError):
    """An OAuth 2.0 or OpenID Connect step failed.

    ``error`` is the RFC 6749 §5.2 / §4.1.2.1 error code the provider sent (``invalid_grant``, ...), or ``None``
    when tether itself refused; ``description`` is the provider's ``error_description``, redacted and bounded.
    ``status_code`` is the token endpoint's HTTP status, when there was one. Never holds a token or a secret.
    """

    advice: ClassVar[str] = "Check the integration's client id, secret, URLs and scopes against the provider's console."

    def __init__(
        self,
        summary: str,
        *,
        error: str | None = None,
        description: str | None = None,
        status_code: int | None = None,
        **context: object,
    ) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.error = error
        self.description = redact_text(description)[:300] if description else None
        self.status_code = status_code


class InvalidGrant(OAuthError):
    """The authorization code, refresh token or assertion was refused (``invalid_grant``)."""

    advice = (
        "The grant is invalid, expired or revoked: for a refresh token, the account must be connected again; for "
        "an authorization code, start the flow again (codes are single-use and short-lived)."
    )


class InvalidClient(OAuthError):
    """The provider did not authenticate the client (``invalid_client``)."""

    advice = (
        "Check client_id and client_secret (or the signing key of the client assertion) and the client "
        "authentication method the provider expects (client_secret_basic or client_secret_post)."
    )


class InvalidScope(OAuthError):
    """A requested scope is unknown, malformed or beyond what the client may ask (``invalid_scope``)."""

    advice = "Request only scopes the provider documents and the app registration allows."


class UnauthorizedClient(OAuthError):
    """The client may not use this grant type (``unauthorized_client`` or ``unsupported_grant_type``)."""

    advice = "Enable this grant type for the app in the provider's console, or use another flow."


class AccessDenied(OAuthError):
    """The resource owner or the provider refused the authorization request (``access_denied``)."""

    advice = "The person declined (or may not grant) the requested access; offer to connect again."


class InvalidState(OAuthError):
    """An authorization callback's ``state`` is unknown (forged), already used, expired, or from another session."""

    advice = (
        "Do not exchange the code. Start the connection again from the same browser session, and finish it within "
        "the state's lifetime (10 minutes by default)."
    )


class IDTokenInvalid(OAuthError):
    """An OpenID Connect ID token failed validation; nothing it claims was used."""

    advice = (
        "Check the integration's issuer and client_id; if the provider rotated its signing keys, tether re-fetched "
        "its JWKS once. A token that still fails may have been tampered with or replayed."
    )


class DiscoveryFailed(OAuthError):
    """The provider's metadata (``/.well-known/...``) could not be fetched, parsed, or does not match its issuer."""

    advice = "Check the issuer URL, or configure authorize_url and token_url explicitly."


class NeedsReauth(OAuthError):
    """The connection's grant is confirmed dead (status ``needs_reauth``): tether will not refresh it again."""

    advice = "Ask the account's owner to connect again; the stored tokens cannot be refreshed."


_STATUS_CLASSES: dict[int, type[HTTPStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
}


def _excerpt(content: bytes) -> str:
    # Cut, then redact: the patterns also match a value the cut left unterminated, so no secret straddles the cut.
    text = redact_text(content[:BODY_EXCERPT_LIMIT].decode("utf-8", errors="replace"))
    if len(content) > BODY_EXCERPT_LIMIT:
        text += f"… ({len(content)} bytes in all)"
    return text


def error_for_response(
    response: Response, *, attempts: int = 1, elapsed: float = 0.0, now: Callable[[], float] | None = None
) -> HTTPStatusError:
    """Build the typed error for an error ``response`` (status ≥ 400).

    ``now`` gives wall-clock seconds for reading an HTTP-date ``Retry-After`` (default :func:`time.time`).
    """
    status = response.status_code
    request = response.request
    cls = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else ClientError)
    reason = redact_text(response.reason_phrase.encode("utf-8", "replace").decode("utf-8"))[:100]
    summary = f"{status} {reason}".rstrip() if reason else str(status)
    common: dict[str, object] = {
        "status_code": status,
        "headers": list(response.headers.items()),
        "body_excerpt": _excerpt(response.content),
        "response": response,
        "method": request.method if request is not None else None,
        "url": request.url if request is not None else None,
        "attempts": attempts,
        "elapsed": elapsed,
    }
    if cls is RateLimited:
        import time

        raw = response.headers.get("retry-after")
        wall = now() if now is not None else time.time()
        retry_after = parse_retry_after(raw, wall) if raw is not None else None
        if retry_after is not None:
            summary += f": retry after {retry_after:g} s"
        return RateLimited(summary, retry_after=retry_after, **common)
    return cls(summary, **common)  # type: ignore[arg-type]


class WebhookVerificationError(TetherError):
    """An incoming webhook failed verification; answer 401 and do not process it.

    ``scheme`` names the signature scheme, ``header`` the header at fault when one is. Neither the secret nor the
    signature tether expected ever appears in the message.
    """

    advice = "Do not process this delivery; answer 401 so a genuine provider retries."

    def __init__(self, summary: str, *, scheme: str = "", header: str | None = None, **context: object) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.scheme = scheme
        self.header = header


class MissingSignatureHeader(WebhookVerificationError):
    """A header the scheme needs (signature, timestamp or id) is absent or empty."""

    advice = (
        "Check that the endpoint is configured with the right scheme, that the provider signs this endpoint, "
        "and that no proxy strips the header."
    )


class MalformedSignatureHeader(WebhookVerificationError):
    """A header the scheme needs is present but not in the scheme's format (encoding, size, characters)."""

    advice = "Check that the scheme matches the provider that sends to this endpoint; the header cannot be read."


class SignatureMismatch(WebhookVerificationError):
    """No signature in the request matches any configured secret."""

    advice = (
        "Check the secret (the endpoint's signing secret, not an API key), that the body is the exact raw bytes "
        "received (not re-serialised JSON), and for URL-signed schemes that the URL is the public one the "
        "provider called."
    )


class TimestampOutsideTolerance(WebhookVerificationError):
    """The signature is valid but its timestamp is further from now than the tolerance allows (a replay or skew).

    ``timestamp`` is the signed Unix time, ``now`` the verifier's time and ``tolerance`` the allowed seconds.
    """

    advice = (
        "Check this server's clock (NTP); an old timestamp may be a replayed delivery. Raise the tolerance only "
        "if deliveries are legitimately delayed."
    )

    def __init__(
        self, summary: str, *, timestamp: int = 0, now: float = 0.0, tolerance: float = 0.0, **context: object
    ) -> None:
        super().__init__(summary, **context)  # type: ignore[arg-type]
        self.timestamp = timestamp
        self.now = now
        self.tolerance = tolerance
