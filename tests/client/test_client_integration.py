"""The clients against the real fault-injecting upstream on loopback: every scenario runs on the aiohttp async
client, the httpx async client and the httpx sync client (see conftest.py).

Waits between attempts use a FakeClock (tether's "waits off" test mode) unless a test measures real waiting.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

import tether
from tether import Policy, RetryBudget
from tether.errors import (
    ConnectError,
    DeadlineExceeded,
    NotFound,
    ReadError,
    RetryAfterTooLong,
    RetryBudgetExhausted,
    ServerError,
    TransportTimeout,
)
from tether.events import CircuitChanged, Event, RetryScheduled
from tether.testing import FakeClock, Reply, Upstream

pytestmark = pytest.mark.integration

FAST = Policy(budget=None)


def test_get_json(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/v1/me", Reply(json={"id": 7}, headers={"X-Trace": "t1"}))
    api = make_client(upstream.url + "/v1", headers={"X-Team": "core"})
    response = api.get("/me", params={"expand": "team"})
    assert response.status_code == 200
    assert response.json() == {"id": 7}
    assert response.headers["x-trace"] == "t1"
    (seen,) = upstream.requests_for("/v1/me")
    assert seen.query == {"expand": ["team"]}
    assert seen.header("X-Team") == "core"
    assert (seen.header("User-Agent") or "").startswith("tether/")


def test_post_json_body_arrives_intact(upstream: Upstream, make_client: Any) -> None:
    upstream.route("POST", "/v1/charges", Reply(status=201, json={"id": "ch_1"}))
    api = make_client(upstream.url)
    assert api.post("/v1/charges", json={"amount": 500, "note": "é"}).status_code == 201
    (seen,) = upstream.requests_for("/v1/charges")
    assert seen.body == '{"amount":500,"note":"é"}'.encode()
    assert seen.header("Content-Type") == "application/json"


def test_retries_5xx_then_succeeds(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/flaky", Reply(status=503), Reply(status=502), Reply(json={"ok": True}))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=FAST)
    assert api.get("/flaky").json() == {"ok": True}
    assert len(upstream.requests_for("/flaky")) == 3
    assert len(clock.sleeps) == 2


def test_gives_up_with_typed_error_after_retries(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=500, json={"error": "boom"}))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST.replace(retries=2))
    with pytest.raises(ServerError) as caught:
        api.get("/down")
    assert caught.value.attempts == 3
    assert "boom" in caught.value.body_excerpt
    assert len(upstream.requests_for("/down")) == 3


def test_404_is_not_retried(upstream: Upstream, make_client: Any) -> None:
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    with pytest.raises(NotFound):
        api.get("/missing")
    assert len(upstream.requests_for("/missing")) == 1


def test_post_is_retried_with_one_stable_idempotency_key(upstream: Upstream, make_client: Any) -> None:
    upstream.route("POST", "/pay", Reply(status=503), Reply(status=500), Reply(status=201))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    assert api.post("/pay", json={"amount": 1}).status_code == 201
    keys = [r.header("Idempotency-Key") for r in upstream.requests_for("/pay")]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1


def test_post_without_key_is_not_retried(upstream: Upstream, make_client: Any) -> None:
    upstream.route("POST", "/pay", Reply(status=503), Reply(status=201))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST.replace(idempotency=None))
    with pytest.raises(ServerError):
        api.post("/pay", json={})
    (only,) = upstream.requests_for("/pay")
    assert only.header("Idempotency-Key") is None


def test_configured_key_header(upstream: Upstream, make_client: Any) -> None:
    upstream.route("POST", "/pay", Reply(status=503), Reply(status=201))
    policy = FAST.replace(idempotency=tether.Idempotency(header="X-Idem"))
    api = make_client(upstream.url, clock=FakeClock(), policy=policy)
    api.post("/pay")
    keys = [r.header("X-Idem") for r in upstream.requests_for("/pay")]
    assert keys[0] and keys[0] == keys[1]


def test_retry_after_is_honoured(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/limited", Reply(status=429, headers={"Retry-After": "3"}), Reply(json={}))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=FAST)
    api.get("/limited")
    assert clock.sleeps == [3.0]


def test_retry_after_too_long_raises_without_waiting(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/limited", Reply(status=429, headers={"Retry-After": "3600"}))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=FAST)
    with pytest.raises(RetryAfterTooLong) as caught:
        api.get("/limited")
    assert caught.value.retry_after == 3600
    assert clock.sleeps == []
    assert len(upstream.requests_for("/limited")) == 1


def test_quota_real_wait_is_never_earlier_than_retry_after(upstream: Upstream, make_client: Any) -> None:
    """Real time: a 429 from the quota says Retry-After: 1; the retry must arrive no earlier."""
    upstream.quota("GET", "/q", limit=1, window=1.0)
    api = make_client(upstream.url, policy=FAST.replace(learn_rate_limits=False))
    api.get("/q")
    api.get("/q")  # 429 with Retry-After, then success after the wait
    seen = upstream.requests_for("/q")
    assert len(seen) == 3
    assert seen[2].received_at - seen[1].received_at >= 1.0 - 0.01


def test_learned_quota_paces_calls_so_the_provider_never_answers_429(upstream: Upstream, make_client: Any) -> None:
    """Real time: the quota's headers say how many calls remain until the reset; tether spreads its calls and
    waits for the reset instead of spending the quota and collecting 429s."""
    upstream.quota("GET", "/q", limit=3, window=1.0)
    api = make_client(upstream.url, policy=FAST)
    started = time.monotonic()
    statuses = [api.get("/q").status_code for _ in range(7)]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 7
    seen = upstream.requests_for("/q")
    assert len(seen) == 7  # not one 429 (a 429 would be retried: an eighth request)
    assert elapsed >= 1.0  # seven calls at three per second take more than two windows' worth of waiting


@pytest.mark.parametrize("fault", ["reset", "close", "truncate"])
def test_broken_connections_are_retried_for_get(upstream: Upstream, make_client: Any, fault: str) -> None:
    upstream.route("GET", "/fragile", Reply(fault=fault, json={"x": 1}), Reply(json={"ok": 1}))  # type: ignore[arg-type]
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    assert api.get("/fragile").json() == {"ok": 1}
    assert len(upstream.requests_for("/fragile")) == 2


def test_reset_on_keyless_post_is_not_retried(upstream: Upstream, make_client: Any) -> None:
    upstream.route("POST", "/fragile", Reply(fault="reset"), Reply(status=201))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST.replace(idempotency=None))
    with pytest.raises(ReadError) as caught:
        api.post("/fragile")
    assert caught.value.attempts == 1
    assert len(upstream.requests_for("/fragile")) == 1


def test_hang_times_out_and_the_deadline_holds_in_real_time(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/hang", Reply(fault="hang"))
    api = make_client(upstream.url, policy=FAST.replace(deadline=1.0, attempt_timeout=0.3, retries=10))
    started = time.monotonic()
    with pytest.raises((DeadlineExceeded, TransportTimeout)):
        api.get("/hang")
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.5, elapsed
    assert len(upstream.requests_for("/hang")) >= 2


def test_connect_error_after_retries(make_client: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = make_client(f"http://127.0.0.1:{port}", clock=FakeClock(), policy=FAST)
    with pytest.raises(ConnectError) as caught:
        api.get("/")
    assert caught.value.attempts == 4


def test_retry_budget_suppresses_retries_across_calls(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    budget = RetryBudget(ratio=0, burst=2, min_per_second=0)
    api = make_client(upstream.url, clock=FakeClock(), policy=Policy(budget=budget))
    with pytest.raises(RetryBudgetExhausted) as caught:
        api.get("/down")
    assert isinstance(caught.value.__cause__, ServerError)
    assert caught.value.attempts == 3  # 1 + the 2 retries the burst allowed
    with pytest.raises(RetryBudgetExhausted):
        api.get("/down")
    assert len(upstream.requests_for("/down")) == 4  # the second call got no retry at all
    assert api.budget.snapshot().suppressed == 2


def test_per_call_policy_override(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    response = api.get("/down", policy=FAST.replace(retries=0, raise_for_status=False))
    assert response.status_code == 503
    assert len(upstream.requests_for("/down")) == 1


def test_auth_bearer_and_query_key(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/me", Reply(json={}))
    make_client(upstream.url, auth=tether.Bearer("tok_1")).get("/me")
    make_client(upstream.url, auth=tether.APIKey("k_2", in_="query", name="key")).get("/me")
    make_client(upstream.url, auth=tether.Basic("u", "p")).get("/me")
    first, second, third = upstream.requests_for("/me")
    assert first.header("Authorization") == "Bearer tok_1"
    assert second.query["key"] == ["k_2"]
    assert third.header("Authorization") == "Basic dTpw"


def test_hooks_and_logs_without_secrets(upstream: Upstream, make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    upstream.route("GET", "/flaky", Reply(status=503), Reply(json={}))
    events: list[Event] = []
    api = make_client(
        upstream.url,
        clock=FakeClock(),
        policy=FAST,
        hooks=[events.append],
        auth=tether.APIKey("sk_live_Q", in_="query"),
    )
    api.get("/flaky", headers={"Cookie": "session=sk_live_C"})
    assert [e.name for e in events] == ["attempt.started", "retry.scheduled", "attempt.started", "call.completed"]
    assert isinstance(events[1], RetryScheduled) and events[1].reason == "status 503"
    assert "attempt 2" in caplog.text
    assert "sk_live" not in caplog.text


@pytest.mark.parametrize(
    ("style", "paginator"),
    [
        ("link", tether.LinkHeader()),
        ("cursor", tether.Cursor(param="cursor", cursor_path="meta.next_cursor", items_path="data")),
        ("page", tether.PageNumber(items_path="results", total_pages_path="total_pages")),
        ("offset", tether.Offset(limit=4, items_path="items", total_path="total")),
        ("next_url", tether.NextURL(next_path="next", items_path="results")),
    ],
)
def test_paginate_every_style(upstream: Upstream, make_client: Any, style: str, paginator: Any) -> None:
    items = [{"id": n} for n in range(23)]
    upstream.collection("/items", items, style=style, page_size=4)  # type: ignore[arg-type]
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    assert api.paginate("/items", paginator) == items
    assert api.paginate("/items", paginator, max_items=6) == items[:6]
    assert len(api.paginate("/items", paginator, max_pages=2)) == 8


def test_each_page_goes_through_the_pipeline(upstream: Upstream, make_client: Any) -> None:
    upstream.collection("/items", [{"id": n} for n in range(10)], style="next_url", page_size=5)
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST, auth=tether.Bearer("t"))
    assert len(api.paginate("/items", tether.NextURL())) == 10
    assert all(r.header("Authorization") == "Bearer t" for r in upstream.requests_for("/items"))


def test_send_applies_auth_to_a_hand_built_request(upstream: Upstream, make_client: Any) -> None:
    """Static header auth is folded into the client's base headers; a request built by hand must still carry it."""
    upstream.route("GET", "/me", Reply(json={}))
    api = make_client(upstream.url, auth=tether.Bearer("tok_9"))
    api.send(tether.Request("GET", upstream.url + "/me"))
    api.get("/me", headers={"Authorization": "Bearer per-call"})
    by_hand, per_call = upstream.requests_for("/me")
    assert by_hand.header("Authorization") == "Bearer tok_9"
    assert per_call.header("Authorization") == "Bearer per-call"


# --- redirects (followed by the call flow, the same for every transport) ---------------------------------------


def test_same_origin_redirect_is_followed_with_credentials(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/old", Reply(status=301, headers={"Location": "/new?x=1"}))
    upstream.route("GET", "/new", Reply(json={"moved": True}))
    api = make_client(upstream.url, auth=tether.Bearer("tok-123"), clock=FakeClock(), policy=FAST)
    response = api.get("/old")
    assert response.json() == {"moved": True}
    assert response.request is not None and response.request.url.endswith("/new?x=1")
    (landed,) = upstream.requests_for("/new")
    assert dict(landed.headers)["Authorization"] == "Bearer tok-123"
    assert landed.query == {"x": ["1"]}


def test_307_repeats_the_post_with_its_body_and_key_and_303_turns_it_into_a_get(
    upstream: Upstream, make_client: Any
) -> None:
    upstream.route("POST", "/submit", Reply(status=307, headers={"Location": "/submit-here"}))
    upstream.route("POST", "/submit-here", Reply(status=303, headers={"Location": "/receipt"}))
    upstream.route("GET", "/receipt", Reply(json={"done": True}))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    assert api.post("/submit", json={"n": 1}).json() == {"done": True}
    (first,) = upstream.requests_for("/submit")
    (second,) = upstream.requests_for("/submit-here")
    (third,) = upstream.requests_for("/receipt")
    assert second.method == "POST" and second.body == first.body == b'{"n":1}'
    assert dict(second.headers)["Idempotency-Key"] == dict(first.headers)["Idempotency-Key"]
    assert third.method == "GET" and third.body == b""
    assert "Content-Type" not in dict(third.headers)


def test_max_redirects_zero_returns_the_redirect(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/old", Reply(status=302, headers={"Location": "/new"}))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST.replace(max_redirects=0))
    response = api.get("/old")
    assert response.status_code == 302
    assert response.headers["location"] == "/new"
    assert upstream.requests_for("/new") == []


def test_a_redirect_loop_is_a_read_error_after_max_redirects(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/loop", Reply(status=302, headers={"Location": "/loop"}))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST.replace(max_redirects=3))
    with pytest.raises(ReadError, match="more than 3 redirects") as caught:
        api.get("/loop")
    assert caught.value.attempts == 4
    assert len(upstream.requests_for("/loop")) == 4


def test_a_redirect_target_failing_is_retried_there(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/old", Reply(status=302, headers={"Location": "/flaky"}))
    upstream.route("GET", "/flaky", Reply(status=503), Reply(json={"ok": 1}))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    assert api.get("/old").json() == {"ok": 1}
    assert len(upstream.requests_for("/old")) == 1
    assert len(upstream.requests_for("/flaky")) == 2


# --- no hidden state, environment proxies, connect timeouts ---------------------------------------------------


def test_no_cookie_is_kept_between_calls(upstream: Upstream, make_client: Any) -> None:
    """A Set-Cookie from one call never rides along on the next: a request carries exactly its own headers."""
    upstream.route("GET", "/login", Reply(json={}, headers={"Set-Cookie": "sid=abc; Path=/"}))
    upstream.route("GET", "/me", Reply(json={}))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST)
    api.get("/login")
    api.get("/me")
    api.get("/me", headers={"X-Extra": "1"})
    for seen in upstream.requests_for("/me"):
        assert "cookie" not in {name.lower() for name, _ in seen.headers}


def test_the_sync_client_honours_http_proxy_from_the_environment(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Upstream stands in for the proxy: a request for an unresolvable host arrives there."""
    monkeypatch.setenv("HTTP_PROXY", upstream.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream.route("GET", "/via-proxy", Reply(json={"proxied": True}))
    with tether.Client(clock=FakeClock(), policy=FAST) as api:
        assert api.get("http://example.invalid/via-proxy").json() == {"proxied": True}


def test_a_connection_that_cannot_be_made_in_time_is_a_connect_timeout(make_client: Any) -> None:
    """A listener whose accept queue is full leaves connects hanging: ConnectTimeout, and since nothing was sent,
    even a POST without an idempotency key is retried."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler: list[socket.socket] = []
    try:
        while True:  # fill the accept queue until a connect hangs
            sock = socket.socket()
            sock.settimeout(0.3)
            try:
                sock.connect(("127.0.0.1", port))
            except TimeoutError:
                sock.close()
                break
            filler.append(sock)
        policy = FAST.replace(retries=1, attempt_timeout=0.3, deadline=None, idempotency=None)
        api = make_client(f"http://127.0.0.1:{port}", policy=policy)
        with pytest.raises(tether.ConnectTimeout) as caught:
            api.post("/", content=b"x")
        assert caught.value.attempts == 2
    finally:
        for sock in filler:
            sock.close()
        listener.close()


# --- circuit breaker (on by default; a small min_calls here) ---------------------------------------------------

BREAKER = tether.CircuitBreaker(min_calls=4, open_for=5.0, max_open_for=60.0)
NO_RETRY = FAST.replace(retries=0, breaker=BREAKER)


def _fail_four(api: Any) -> None:
    for _ in range(4):
        with pytest.raises(ServerError):
            api.get("/down")


def test_circuit_opens_after_failures_and_fails_fast_without_calling(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    seen: list[Event] = []
    api = make_client(upstream.url, clock=FakeClock(), policy=NO_RETRY, hooks=[seen.append])
    _fail_four(api)
    with pytest.raises(tether.CircuitOpen) as caught:
        api.get("/down")
    assert caught.value.retry_after == pytest.approx(5.0, abs=0.01)
    assert caught.value.key == upstream.url.rstrip("/")
    assert caught.value.attempts == 0
    assert len(upstream.requests_for("/down")) == 4  # the fifth call never left
    (state,) = api.client.circuits().values()
    assert state.phase == "open"
    changes = [e for e in seen if isinstance(e, CircuitChanged)]
    assert [e.phase for e in changes] == ["open"]


def test_a_successful_probe_closes_the_circuit(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=NO_RETRY)
    _fail_four(api)
    clock.advance(5.0)
    upstream.route("GET", "/down", Reply(json={"back": True}))
    assert api.get("/down").json() == {"back": True}  # the probe
    assert [s.phase for s in api.client.circuits().values()] == ["closed"]
    assert api.get("/down").status_code == 200


def test_a_failed_probe_reopens_for_twice_as_long(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=NO_RETRY)
    _fail_four(api)
    clock.advance(5.0)
    with pytest.raises(ServerError):
        api.get("/down")  # the probe fails
    with pytest.raises(tether.CircuitOpen) as caught:
        api.get("/down")
    assert caught.value.retry_after == pytest.approx(10.0, abs=0.01)


def test_a_retry_meeting_an_open_circuit_chains_the_last_failure(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    api = make_client(upstream.url, clock=FakeClock(), policy=FAST.replace(retries=5, breaker=BREAKER))
    with pytest.raises(tether.CircuitOpen) as caught:
        api.get("/down")  # four failing attempts open the circuit; the fifth is refused
    assert isinstance(caught.value.last_error, ServerError)
    assert caught.value.__cause__ is caught.value.last_error
    assert caught.value.attempts == 4
    assert len(upstream.requests_for("/down")) == 4


def test_client_errors_do_not_open_the_circuit(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/missing", Reply(status=404))
    api = make_client(upstream.url, clock=FakeClock(), policy=NO_RETRY)
    for _ in range(10):
        with pytest.raises(tether.NotFound):
            api.get("/missing")
    assert [s.phase for s in api.client.circuits().values()] == ["closed"]


def test_a_hanging_probe_is_cut_by_its_timeout_and_counts_as_a_failure(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=NO_RETRY.replace(attempt_timeout=0.3))
    _fail_four(api)
    clock.advance(5.0)
    upstream.route("GET", "/down", Reply(fault="hang"))
    with pytest.raises(tether.TransportTimeout):
        api.get("/down")  # the probe hangs; the real 0.3 s attempt timeout ends it
    with pytest.raises(tether.CircuitOpen):
        api.get("/down")


def test_each_host_has_its_own_circuit(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/down", Reply(status=503))
    with Upstream().running() as healthy:
        healthy.route("GET", "/up", Reply(json={"ok": 1}))
        api = make_client("", clock=FakeClock(), policy=NO_RETRY)
        for _ in range(4):
            with pytest.raises(ServerError):
                api.get(f"{upstream.url}/down")
        with pytest.raises(tether.CircuitOpen):
            api.get(f"{upstream.url}/down")
        assert api.get(f"{healthy.url}/up").json() == {"ok": 1}


# --- declared rate limits ---------------------------------------------------------------------------------------


def test_declared_rate_limit_spaces_calls_on_the_clock(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/quota", Reply(json={}))
    clock = FakeClock()
    api = make_client(upstream.url, clock=clock, policy=FAST.replace(rate_limits=(tether.RateLimit(2, per=1.0),)))
    started = clock.monotonic()
    for _ in range(5):
        api.get("/quota")
    assert len(upstream.requests_for("/quota")) == 5
    assert clock.monotonic() - started == pytest.approx(1.5)  # 2 at once, then one every 0.5 s


def test_a_call_that_would_wait_past_its_deadline_is_rate_limited_at_once(upstream: Upstream, make_client: Any) -> None:
    upstream.route("GET", "/quota", Reply(json={}))
    clock = FakeClock()
    policy = FAST.replace(deadline=1.0, rate_limits=(tether.RateLimit(1, per=10.0),))
    api = make_client(upstream.url, clock=clock, policy=policy)
    api.get("/quota")
    before = clock.monotonic()
    with pytest.raises(tether.RateLimited) as caught:
        api.get("/quota")
    assert caught.value.retry_after == pytest.approx(10.0)
    assert caught.value.response is None  # refused by tether, not by the server
    assert caught.value.attempts == 0
    assert clock.monotonic() == before  # no sleep
    assert len(upstream.requests_for("/quota")) == 1
