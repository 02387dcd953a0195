"""The pure conversation lifecycle and the agent presence rules."""

from __future__ import annotations

import pytest

from contact_center.domain import presence
from contact_center.domain.conversations import (
    MOVES,
    IllegalMove,
    Move,
    apply,
    absent_long_enough,
    can_abandon,
    departure,
    is_open,
    opening_status,
    plan_inbound,
    sources,
    target,
)

STATES = ("bot", "queued", "assigned", "closed")


@pytest.mark.parametrize("move", list(Move))
@pytest.mark.parametrize("status", STATES)
def test_every_move_is_legal_exactly_from_its_sources(move: Move, status: str) -> None:
    if status in sources(move):
        assert apply(status, move) == target(move)
    else:
        with pytest.raises(IllegalMove):
            apply(status, move)


def test_the_table_says_what_the_hub_promises() -> None:
    assert apply("bot", Move.HAND_OVER) == "queued"
    assert apply("queued", Move.ACCEPT) == "assigned"
    assert apply("assigned", Move.CLOSE) == "closed"
    assert apply("closed", Move.REOPEN) == "queued"
    with pytest.raises(IllegalMove, match="a closed conversation cannot close"):
        apply("closed", Move.CLOSE)
    with pytest.raises(IllegalMove):
        apply("assigned", Move.ABANDON)  # answered: the agent closes it, the customer's absence does not
    assert not any("closed" in sources(m) for m in MOVES if m is not Move.REOPEN)  # closed is final but for a thread
    assert all(is_open(s) for s in ("bot", "queued", "assigned")) and not is_open("closed")


def test_a_new_conversation_goes_to_the_bot_only_when_the_channel_wants_it_and_the_bot_is_ready() -> None:
    assert opening_status(True, True) == "bot"
    assert opening_status(True, False) == "queued"
    assert opening_status(False, True) == "queued"


def test_inbound_plans() -> None:
    new = plan_inbound(None, per_thread=False, bot_first=False, bot_ready=False)
    assert (new.open_new, new.reopen, new.status) == (True, False, "queued")
    same = plan_inbound("assigned", per_thread=False, bot_first=True, bot_ready=True)
    assert (same.open_new, same.reopen, same.status) == (False, False, None)
    thread = plan_inbound("closed", per_thread=True, bot_first=True, bot_ready=True)
    assert (thread.open_new, thread.reopen, thread.status) == (False, True, "queued")  # an answered thread skips the bot
    chat = plan_inbound("closed", per_thread=False, bot_first=True, bot_ready=True)
    assert (chat.open_new, chat.reopen, chat.status) == (True, False, "bot")


def test_only_a_never_answered_waiting_conversation_is_abandoned() -> None:
    assert can_abandon("queued")  # never answered, or back in the queue after an answer
    assert not can_abandon("assigned")
    assert not can_abandon("bot")
    assert departure(ever_answered=False) == ("abandoned", True)
    assert departure(ever_answered=True) == ("customer_left", False)  # handled: never also abandoned
    # gone for the grace period, counted from the last sighting or, without one, from when records hold
    assert absent_long_enough(now=160.0, last_seen=100.0, known_since=0.0, grace=60.0)
    assert not absent_long_enough(now=159.9, last_seen=100.0, known_since=0.0, grace=60.0)
    assert not absent_long_enough(now=160.0, last_seen=None, known_since=120.0, grace=60.0)
    assert absent_long_enough(now=180.0, last_seen=None, known_since=120.0, grace=60.0)
    assert not absent_long_enough(now=170.0, last_seen=50.0, known_since=120.0, grace=60.0)


def test_presence_rules() -> None:
    assert presence.check_choosable("away") == "away"
    for bad in ("wrap_up", "busy", "", None, 3):
        with pytest.raises(presence.NotChoosable):
            presence.check_choosable(bad)
    assert presence.restored_status(None) == "away"
    assert presence.restored_status("busy") == "available"
    assert presence.restored_status("wrap_up") == "wrap_up"
    assert presence.restored_status("offline") == "away"
    assert presence.starts_wrap_up(10, 0, "available")
    assert not presence.starts_wrap_up(10, 1, "available") and not presence.starts_wrap_up(0, 0, "available")
    assert not presence.starts_wrap_up(10, 0, "away")
    assert presence.ends_wrap_up("wrap_up") and not presence.ends_wrap_up("away")
    assert presence.serving(["available", "busy", "away", "wrap_up", "offline"]) == 2
