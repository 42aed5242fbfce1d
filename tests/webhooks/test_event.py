"""The verified event object: payload parsed on first read, immutable, compared by value, no body in its repr."""

from __future__ import annotations

import pytest

from tether.webhooks import VerifiedEvent


def test_payload_is_parsed_when_first_read_and_kept() -> None:
    event = VerifiedEvent.from_body(scheme="github", raw=b'{"action": "opened", "n": 1}', id="d-1", type="issues")
    assert event.payload == {"action": "opened", "n": 1}
    assert event.payload is event.payload  # parsed once


def test_fields_read_from_the_payload_are_taken_at_once() -> None:
    event = VerifiedEvent.from_body(
        scheme="stripe", raw=b'{"id": "evt_1", "type": "a.b"}', id_field="id", type_field="type"
    )
    assert (event.id, event.type, event.payload) == ("evt_1", "a.b", {"id": "evt_1", "type": "a.b"})


@pytest.mark.parametrize("raw", [b"token=abc&x=1", b"", b"\xff\xfe", b"[1, 2", b"[" * 100_000])
def test_a_body_that_is_not_json_has_no_payload(raw: bytes) -> None:
    assert VerifiedEvent.from_body(scheme="slack", raw=raw).payload is None


def test_immutable_equal_by_value_and_no_body_in_the_repr() -> None:
    event = VerifiedEvent.from_body(scheme="github", raw=b'{"card": "4242"}', id="d-2")
    with pytest.raises(AttributeError, match="immutable"):
        event.id = "other"
    with pytest.raises(AttributeError, match="immutable"):
        del event.raw
    assert event == VerifiedEvent(scheme="github", id="d-2", payload={"card": "4242"}, raw=b'{"card": "4242"}')
    assert event != VerifiedEvent(scheme="github", id="d-2", payload=None, raw=b'{"card": "4242"}')
    assert "4242" not in repr(event) and "d-2" in repr(event)
