"""The channel vocabulary of the pure core: delivery statuses only move forward, buttons as numbered choices, SMS segments."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contact_center.channels import KNOWN, ChannelRegistry
from contact_center.domain.channels import (
    DeliveryStatus,
    UnknownChannel,
    delivery_status,
    moves_forward,
    numbered_choices,
    pick_choice,
    sms_segments,
)

S = DeliveryStatus


def test_a_late_sent_never_overwrites_delivered() -> None:
    assert moves_forward(S.QUEUED, S.SENT)
    assert moves_forward(S.SENT, S.DELIVERED)
    assert not moves_forward(S.DELIVERED, S.SENT)
    assert not moves_forward(S.DELIVERED, S.QUEUED)
    assert moves_forward(S.DELIVERED, S.READ)
    assert moves_forward(S.SENT, S.READ)  # callbacks arrive in any order: read may jump over delivered


def test_failures_are_final_and_never_follow_delivery() -> None:
    assert moves_forward(S.QUEUED, S.FAILED)
    assert moves_forward(S.SENT, S.UNDELIVERED)
    assert not moves_forward(S.FAILED, S.DELIVERED)
    assert not moves_forward(S.UNDELIVERED, S.READ)
    assert not moves_forward(S.DELIVERED, S.FAILED)
    assert moves_forward(None, S.QUEUED)


@given(st.lists(st.sampled_from(list(S)), min_size=1, max_size=12))
def test_any_order_of_callbacks_ends_at_the_furthest_status(arrivals: list[DeliveryStatus]) -> None:
    current: DeliveryStatus | None = None
    history = []
    for status in arrivals:
        if moves_forward(current, status):
            current = status
            history.append(status)
    ranks = {S.QUEUED: 0, S.SENT: 1, S.DELIVERED: 2, S.UNDELIVERED: 2, S.FAILED: 2, S.READ: 3}
    assert [ranks[h] for h in history] == sorted(ranks[h] for h in history)  # never backwards
    assert len(set(history)) == len(history)  # never the same twice


def test_twilio_status_words() -> None:
    assert delivery_status("accepted") is S.QUEUED
    assert delivery_status("sending") is S.QUEUED
    assert delivery_status("Delivered") is S.DELIVERED
    assert delivery_status("canceled") is S.FAILED
    assert delivery_status("receiving") is None
    assert delivery_status(7) is None  # type: ignore[arg-type]


def test_buttons_become_numbered_choices_and_a_number_picks_one() -> None:
    text = numbered_choices("Which size?", ["S", "M", "L"])
    assert text == "Which size?\n1. S\n2. M\n3. L\nReply 1, 2 or 3."
    assert numbered_choices("Sure?", ["Yes"]).endswith("Reply 1.")
    assert numbered_choices("Plain", []) == "Plain"
    assert pick_choice("2", 3) == 1
    assert pick_choice(" 3. ", 3) == 2
    assert pick_choice("4", 3) is None
    assert pick_choice("0", 3) is None
    assert pick_choice("two", 3) is None
    assert pick_choice("12345", 3) is None


def test_sms_segments() -> None:
    assert sms_segments("a" * 160) == (1, "GSM-7")
    assert sms_segments("a" * 161) == (2, "GSM-7")
    assert sms_segments("a" * 306) == (2, "GSM-7")
    assert sms_segments("a" * 307) == (3, "GSM-7")
    assert sms_segments("€" * 80) == (1, "GSM-7")  # extended characters take two units
    assert sms_segments("€" * 81) == (2, "GSM-7")
    assert sms_segments("ok 😀") == (1, "UCS-2")
    assert sms_segments("好" * 70) == (1, "UCS-2")
    assert sms_segments("好" * 71) == (2, "UCS-2")


def test_the_registry_is_data_and_refuses_unknown_channels() -> None:
    registry = ChannelRegistry()
    for spec in KNOWN:
        registry.register(spec)
    registry.with_defaults(bot_channels=["sms"], default_queues={"sms": "support"})
    assert registry.spec("sms").bot_first and not registry.spec("chat").bot_first
    assert registry.spec("sms").default_queue == "support"
    assert [s.name for s in registry.live()] == ["chat"]
    assert registry.adapter("sms") is None
    try:
        registry.spec("fax")
    except UnknownChannel as exc:
        assert "fax" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("an unknown channel must be refused")
    described = {d["name"]: d for d in registry.describe()}
    assert described["sms"]["segments"] is True and described["whatsapp"]["reply_window_seconds"] == 86400
