"""The co-browsing session's lifecycle and the relay's checks (pure)."""

from __future__ import annotations

import pytest

from contact_center.domain.cobrowse import (
    MAX_CHUNK_CHARS, MAX_PARTS, CobrowseError, CobrowseSession, CobrowseState, EndReason, event_piece, pointer,
    valid_session_id,
)


def _session(now: float = 100.0) -> CobrowseSession:
    return CobrowseSession(id="s" * 24, conversation_id=7, customer_id=3, agent_id=2, agent_name="Alice",
                           state=CobrowseState.PENDING, requested_at=now, consent_deadline=now + 60)


def test_consent_in_time_makes_it_live_once() -> None:
    live = _session().accept(120.0)
    assert live.state is CobrowseState.LIVE and live.started_at == 120.0
    with pytest.raises(CobrowseError) as exc:
        live.accept(121.0)
    assert exc.value.code == "conflict"


def test_consent_after_the_deadline_is_refused() -> None:
    with pytest.raises(CobrowseError) as exc:
        _session().accept(160.5)
    assert exc.value.code == "conflict"


def test_a_session_ends_once_with_its_reason() -> None:
    ended = _session().accept(110.0).end(130.0, EndReason.CUSTOMER_ENDED)
    assert ended.state is CobrowseState.ENDED and ended.end_reason is EndReason.CUSTOMER_ENDED
    assert ended.public()["end_reason"] == "customer_ended"
    with pytest.raises(CobrowseError):
        ended.end(131.0, EndReason.AGENT_ENDED)


@pytest.mark.parametrize("raw", [None, 12, "short", "x" * 65, "has space in it!!!!!", "ab/cdefghijklmnopq"])
def test_session_ids_are_checked(raw: object) -> None:
    with pytest.raises(CobrowseError):
        valid_session_id(raw)
    assert valid_session_id("Ab-_" * 5) == "Ab-_" * 5


def test_event_pieces() -> None:
    piece = event_piece({"seq": 3, "part": 1, "parts": 2, "data": "[]"})
    assert piece.relayed() == {"seq": 3, "part": 1, "parts": 2, "data": "[]"}
    assert event_piece({"seq": 0, "data": "x"}).parts == 1
    for bad, code in (
        ({"data": "x"}, "bad_request"),
        ({"seq": True, "data": "x"}, "bad_request"),
        ({"seq": -1, "data": "x"}, "bad_request"),
        ({"seq": 1, "part": 2, "parts": 2, "data": "x"}, "bad_request"),
        ({"seq": 1, "parts": MAX_PARTS + 1, "data": "x"}, "bad_request"),
        ({"seq": 1, "data": ""}, "bad_request"),
        ({"seq": 1, "data": ["x"]}, "bad_request"),
        ({"seq": 1, "data": "x" * (MAX_CHUNK_CHARS + 1)}, "too_large"),
    ):
        with pytest.raises(CobrowseError) as exc:
            event_piece(bad)
        assert exc.value.code == code, bad


def test_pointer() -> None:
    assert pointer({"x": 10, "y": 20.26, "highlight": True}) == {"x": 10.0, "y": 20.3, "highlight": True, "hide": False}
    assert pointer({"x": 1, "y": 1, "highlight": "yes"})["highlight"] is False
    for bad in ({"x": "1", "y": 1}, {"x": 1}, {"x": True, "y": 1}, {"x": 1, "y": 10**9}):
        with pytest.raises(CobrowseError):
            pointer(bad)


def test_the_replay_frame_loads_assets_only_from_this_hub_and_the_shops_origins() -> None:
    """A customer who edits their page must not make the agent's browser fetch a URL of theirs: the replay frame's
    img-src and font-src are this hub, the widget's shops (ALLOWED_ORIGINS) and COBROWSE_ASSET_ORIGINS only."""
    from contact_center.cobrowse import asset_origins, frame_csp

    origins = asset_origins(("https://shop.example", "javascript:alert(1)", "*"),
                            {"COBROWSE_ASSET_ORIGINS": "https://cdn.shop.example:8443, https://img.shop.example/"})
    assert origins == ("https://shop.example", "https://cdn.shop.example:8443", "https://img.shop.example")
    policy = dict(part.strip().split(" ", 1) for part in frame_csp(origins).split(";"))
    assert policy["img-src"] == "'self' https://shop.example https://cdn.shop.example:8443 https://img.shop.example data: blob:"
    assert policy["font-src"] == policy["img-src"]
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'none'" and policy["default-src"] == "'none'"
    assert "*" not in frame_csp(asset_origins((), {})).replace("'self'", "")


# ---------------------------------------------------------------------- a call's code
from contact_center.domain.cobrowse import (  # noqa: E402
    CODE_SECONDS, ControlState, format_code, normalise_code,
)


def test_a_code_is_six_digits_with_its_leading_zeros() -> None:
    assert format_code(0) == "000000" and format_code(42) == "000042" and format_code(999_999) == "999999"
    for bad in (-1, 1_000_000, True):
        with pytest.raises(ValueError):
            format_code(bad)


def test_what_the_caller_types_is_read_as_six_digits() -> None:
    assert normalise_code("123456") == "123456"
    assert normalise_code(" 123 456 ") == "123456" and normalise_code("123-456") == "123456"
    for bad in ("12345", "1234567", "12345a", "", None, 123456, "１２３４５６", "123 45"):
        with pytest.raises(CobrowseError) as exc:
            normalise_code(bad)
        assert exc.value.code == "bad_request", bad


# A code's single use, its expiry and the wrong-try locks are the shared store's (tests/contract/test_cobrowse_store.py,
# on memory and Redis) and the relay's (tests/integration/test_cobrowse_call.py, test_cobrowse_two_nodes.py).


def test_a_call_session_joins_with_the_code_and_shows_the_customer_nothing_of_the_call() -> None:
    pending = CobrowseSession(id="s" * 24, conversation_id=7, customer_id=3, agent_id=2, agent_name="Alice",
                              state=CobrowseState.PENDING, requested_at=0.0, consent_deadline=CODE_SECONDS, via_code=True)
    live = pending.join(10.0, "visitor_abc")
    assert live.state is CobrowseState.LIVE and live.linked_visitor == "visitor_abc"
    assert "conversation_id" not in live.for_customer() and live.public()["conversation_id"] == 7
    assert _session().accept(101.0).for_customer()["conversation_id"] == 7  # a chat's widget knows its chat
    with pytest.raises(CobrowseError):
        _session().join(101.0, "v")  # a chat's session is not joined with a code


def test_control_is_a_second_consent_on_a_live_session() -> None:
    with pytest.raises(CobrowseError):
        _session().ask_control()  # not live
    live = _session().accept(101.0)
    with pytest.raises(CobrowseError):
        live.answer_control(True)  # not asked
    asked = live.ask_control()
    assert asked.control is ControlState.REQUESTED
    assert asked.answer_control(False).control is ControlState.OFF
    granted = asked.answer_control(True)
    assert granted.control is ControlState.GRANTED and granted.ask_control() is granted
    assert granted.revoke_control().control is ControlState.OFF


def test_control_actions_are_checked_before_they_are_relayed() -> None:
    from contact_center.domain.cobrowse import control_action

    assert control_action({"action": "click", "target": 5, "id": 2}) == {"action": "click", "target": 5, "id": 2}
    assert control_action({"action": "fill", "target": 5, "value": "Main St"}) == {"action": "fill", "target": 5, "value": "Main St"}
    assert control_action({"action": "scroll", "x": 0, "y": 480.4}) == {"action": "scroll", "x": 0, "y": 480}
    for bad in ({"action": "eval", "target": 1}, {"action": "click", "target": 0}, {"action": "click", "target": "#buy"},
                {"action": "fill", "target": 1}, {"action": "fill", "target": 1, "value": "x" * 501},
                {"action": "scroll", "x": 1}, {"action": "click", "target": 1, "id": -1}):
        with pytest.raises(CobrowseError) as exc:
            control_action(bad)
        assert exc.value.code == "bad_request", bad


def test_a_session_survives_its_stored_form() -> None:
    """The shared store keeps a session as JSON and compares it as text: the round trip is exact (times too)."""
    import json

    from contact_center.domain.cobrowse import ControlState

    pending = CobrowseSession(id="x" * 24, conversation_id=3, customer_id=4, agent_id=5, agent_name="Alice",
                              state=CobrowseState.PENDING, requested_at=1700000000.123456, consent_deadline=1700000600.654321,
                              via_code=True, code="012345", code_expires_at=1700000600.654321)
    live = pending.join(1700000001.5, "visitor_1")
    ended = live.ask_control().answer_control(True).end(1700000009.25, EndReason.CUSTOMER_LEFT)
    for s in (pending, live, ended):
        back = CobrowseSession.from_record(json.loads(json.dumps(s.record())))
        assert back == s and json.dumps(back.record(), sort_keys=True) == json.dumps(s.record(), sort_keys=True)
    assert live.code is None and live.code_expires_at is None  # a used code is not kept
    assert ended.control is ControlState.GRANTED and "code" not in ended.public()
