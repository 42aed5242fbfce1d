"""The test upstream's admin API: scripting a running server over HTTP, under ``/__upstream__/``.

The endpoints and their JSON are documented in :mod:`tether.testing.upstream`. :func:`admin_reply` answers one
admin call: it checks a JSON spec field by field (an invalid one gets 400 with a message naming the field),
applies it through the scripting methods of :class:`~tether.testing.upstream.Upstream`, or lists the recorded
requests as JSON. :func:`apply_routes` scripts the routes of a ``--routes`` file, which holds route specs in the
same form.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar, cast

from tether.testing._http11 import Request
from tether.testing._model import Fault, Recorded, Reply
from tether.testing._scripts import ADMIN_PREFIX, QUOTA_REPLY, Style, error_reply

if TYPE_CHECKING:  # only for annotations: the server module imports this one
    from tether.testing.upstream import Upstream

__all__ = ["admin_reply", "apply_routes"]

_T = TypeVar("_T")

_ADMIN_METHODS: dict[str, str] = {
    "collection": "POST",
    "count": "GET",
    "quota": "POST",
    "requests": "GET",
    "reset": "POST",
    "routes": "POST",
}
_KIND_NAMES: dict[type[object], str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


class _SpecError(ValueError):
    """An admin API payload or ``--routes`` entry that does not describe a valid script."""


# -- endpoints --------------------------------------------------------------------------------------------------


def admin_reply(upstream: Upstream, request: Request) -> Reply:
    """Serve one admin API call to ``upstream`` (the call is not recorded) and return the reply."""
    try:
        return _dispatch(upstream, request)
    except _SpecError as error:
        return error_reply(400, str(error))


def apply_routes(upstream: Upstream, text: str) -> None:
    """Script the routes of a ``--routes`` file's ``text``; raise ``ValueError`` if it is not a valid one."""
    specs = _typed(json.loads(text), list, "the routes file")
    for index, spec in enumerate(specs):
        _apply_route(upstream, spec, f"routes[{index}]")


def _dispatch(upstream: Upstream, request: Request) -> Reply:
    endpoint = request.path[len(ADMIN_PREFIX) :]
    method = _ADMIN_METHODS.get(endpoint)
    if method is None:
        return error_reply(404, f"unknown admin endpoint {request.path!r}; try {sorted(_ADMIN_METHODS)}")
    if request.method != method:
        return Reply(
            status=405,
            json={"error": f"{request.path} accepts {method} only"},
            headers={"Allow": method},
        )
    if endpoint == "requests":
        return Reply(json=[_recorded_to_json(recorded) for recorded in upstream.requests])
    if endpoint == "count":
        paths = request.query.get("path")
        count = len(upstream.requests_for(paths[0]) if paths else upstream.requests)
        return Reply(json={"count": count})
    if endpoint == "reset":
        upstream.reset()
    else:
        spec = _load_json(request.body)
        if endpoint == "routes":
            _apply_route(upstream, spec)
        elif endpoint == "quota":
            _apply_quota(upstream, spec)
        else:
            _apply_collection(upstream, spec)
    return Reply(status=204)


def _apply_route(upstream: Upstream, spec: object, what: str = "route") -> None:
    """Script a route from its admin JSON form (also the form of a ``--routes`` file's entries)."""
    obj = _object(spec, what, required=("method", "path"), optional=("replies", "repeat_last"))
    replies = _typed(obj.get("replies", []), list, f"{what}.replies")
    parsed = [_reply_from_json(item, f"{what}.replies[{i}]") for i, item in enumerate(replies)]
    method = _typed(obj["method"], str, f"{what}.method")
    path = _typed(obj["path"], str, f"{what}.path")
    repeat_last = _typed(obj.get("repeat_last", True), bool, f"{what}.repeat_last")
    with _as_spec_error(what):
        upstream.route(method, path, *parsed, repeat_last=repeat_last)


def _apply_quota(upstream: Upstream, spec: object) -> None:
    obj = _object(spec, "quota", required=("method", "path", "limit", "window"), optional=("reply",))
    reply = _reply_from_json(obj["reply"], "quota.reply") if "reply" in obj else QUOTA_REPLY
    method = _typed(obj["method"], str, "quota.method")
    path = _typed(obj["path"], str, "quota.path")
    limit = _typed(obj["limit"], int, "quota.limit")
    window = _number(obj["window"], "quota.window")
    with _as_spec_error("quota"):
        upstream.quota(method, path, limit=limit, window=window, reply=reply)


def _apply_collection(upstream: Upstream, spec: object) -> None:
    obj = _object(spec, "collection", required=("path", "items", "style"), optional=("page_size",))
    path = _typed(obj["path"], str, "collection.path")
    items = _typed(obj["items"], list, "collection.items")
    style = _typed(obj["style"], str, "collection.style")
    page_size = _typed(obj.get("page_size", 10), int, "collection.page_size")
    with _as_spec_error("collection"):
        upstream.collection(path, items, style=cast(Style, style), page_size=page_size)  # checked there


def _recorded_to_json(recorded: Recorded) -> dict[str, object]:
    return {
        "method": recorded.method,
        "path": recorded.path,
        "query": recorded.query,
        "headers": [list(pair) for pair in recorded.headers],
        "body": recorded.body.decode("latin-1"),
        "received_at": recorded.received_at,
    }


# -- spec validation --------------------------------------------------------------------------------------------


def _load_json(body: bytes) -> object:
    try:
        return cast(object, json.loads(body))
    except (ValueError, RecursionError) as error:
        raise _SpecError(f"the request body is not valid JSON: {error}") from None


def _typed(value: object, kind: type[_T], what: str) -> _T:
    """Return ``value`` if it is a ``kind`` (an int is never a bool here); raise a clear error otherwise."""
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise _SpecError(f"{what} must be {_KIND_NAMES[kind]}, not {_KIND_NAMES.get(type(value), 'that')}")


def _number(value: object, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _SpecError(f"{what} must be a number, not {_KIND_NAMES.get(type(value), 'that')}")


def _object(spec: object, what: str, *, required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, object]:
    """Check that ``spec`` is a JSON object with all ``required`` fields and no unknown ones."""
    obj: dict[str, object] = _typed(spec, dict, what)
    missing = [name for name in required if name not in obj]
    if missing:
        raise _SpecError(f"{what} is missing {', '.join(missing)}")
    unknown = sorted(obj.keys() - {*required, *optional})
    if unknown:
        raise _SpecError(
            f"{what} has unknown field(s) {', '.join(unknown)}; expected {', '.join((*required, *optional))}"
        )
    return obj


def _reply_from_json(spec: object, what: str) -> Reply:
    fields = ("status", "json", "body", "headers", "latency", "fault")
    obj = _object(spec, what, required=(), optional=fields)
    headers = _typed(obj.get("headers", {}), dict, f"{what}.headers")
    for name, value in headers.items():
        _typed(value, str, f"{what}.headers[{name!r}]")
    status = _typed(obj.get("status", 200), int, f"{what}.status")
    body = _typed(obj.get("body", ""), str, f"{what}.body")
    latency = _number(obj.get("latency", 0), f"{what}.latency")
    with _as_spec_error(what):
        return Reply(
            status=status,
            body=body,
            json=obj.get("json"),
            headers=headers,
            latency=latency,
            fault=cast(Fault | None, obj.get("fault")),  # checked by Reply
        )


@contextlib.contextmanager
def _as_spec_error(what: str) -> Iterator[None]:
    """Report a ``ValueError``/``TypeError`` from the scripting API as an invalid ``what``."""
    try:
        yield
    except _SpecError:
        raise
    except (TypeError, ValueError) as error:
        raise _SpecError(f"invalid {what}: {error}") from error
