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
