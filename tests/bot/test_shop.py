"""The bot's pure shop logic (bot/actions/shop.py): quantities, options, contacts, handoff payload, keys."""

from __future__ import annotations

from tests.bot.helpers import BOT, load_module

shop = load_module("bot_shop", BOT / "actions" / "shop.py")

SIZES = ["XS", "S", "M", "L", "XL", "XXL"]


def test_quantities_in_digits_and_words() -> None:
    assert shop.parse_quantity("3") == 3
    assert shop.parse_quantity("three") == 3
    assert shop.parse_quantity("make that three") == 3
    assert shop.parse_quantity("a couple") == 2
    assert shop.parse_quantity("half a dozen please") == 6
    assert shop.parse_quantity("lots") is None
    assert shop.parse_quantity(None) is None


def test_options_in_the_forms_customers_use() -> None:
    assert shop.match_option("size", SIZES, "large") == "L"
    assert shop.match_option("size", SIZES, "xl") == "XL"
    assert shop.match_option("size", SIZES, "it's medium please") == "M"  # not "S" from "it's"
    assert shop.match_option("size", SIZES, "XXXL") is None
    assert shop.match_option("color", ["black", "grey marl", "navy"], "the grey one") == "grey marl"
    assert shop.match_option("color", ["black", "grey marl", "navy"], "gray marl") == "grey marl"
    assert shop.match_option("color", ["white/red", "white/navy"], "red") is None  # ambiguous, ask
    assert shop.match_option("color", ["black", "navy"], "nvay") == "navy"
    assert shop.match_option("waist", ["28", "30", "32"], "W32 L30") == "32"
    assert shop.match_option("length", ["30", "32", "34"], "32/30") == "30"
    assert shop.match_option("model", ["iPhone 15", "iPhone 15 Pro"], "iphone 15 pro") == "iPhone 15 Pro"
    assert shop.match_option("ruling", ["lined", "dotted", "blank"], "dot grid please") == "dotted"


def test_contacts_and_addresses() -> None:
    assert shop.parse_contact("my email is Anna.S@example.com.") == ("email", "Anna.S@example.com")
    assert shop.parse_contact("call +1 415 555 0134 thanks") == ("phone", "+1 415 555 0134")
    assert shop.parse_contact("no idea") is None
    assert shop.looks_like_address("12 Oak Street, Boston MA 02110")
    assert not shop.looks_like_address("next door")
    assert shop.is_correction("make that three") and shop.is_correction("actually 4")


def test_field_errors_of_the_hub_map_to_slots() -> None:
    given = {"quantity": "3", "size": "L", "contact": "x@y.z", "delivery_address": "1 Main St"}
    assert shop.slot_for_field("lines[0].quantity", given) == "quantity"
    assert shop.slot_for_field("lines[0].quantity", {}) == "product"  # sold out before a quantity was given
    assert shop.slot_for_field("lines[0].options.size", given) == "size"
    assert shop.slot_for_field("lines[0].options.color", given) is None  # "choose a colour": not given yet
    assert shop.slot_for_field("lines[0].sku", given) == "product"
    assert shop.slot_for_field("phone", given) == "contact"
    assert shop.slot_for_field("delivery_address", {}) is None


def test_order_request_and_idempotency_key() -> None:
    product = shop.Product("TSH-CLASSIC", "Classic T-shirt", "t-shirts", 1999, "EUR", 50, 2,
                           {"size": SIZES, "color": ["red"]})
    slots = {"product": "TSH-CLASSIC", "size": "L", "color": "red", "quantity": "3",
             "delivery_address": "12 Oak Street", "contact": "anna@example.com"}
    body = shop.order_request(slots, product, customer_id="42", channel="chat")
    assert body == {"lines": [{"sku": "TSH-CLASSIC", "quantity": 3, "options": {"size": "L", "color": "red"}}],
                    "delivery_address": "12 Oak Street", "email": "anna@example.com", "customer_id": 42,
                    "channel": "chat"}
    key = shop.idempotency_key("visitor-1", 7, 0, body)
    assert key == shop.idempotency_key("visitor-1", 7, 0.0, dict(body))
    assert key != shop.idempotency_key("visitor-1", 7, 1, body)  # a second, deliberate order
    assert key != shop.idempotency_key("visitor-2", 8, 0, body)
    assert len(key) <= 100


def test_handoff_payload_carries_intent_slots_draft_and_transcript() -> None:
    events = [
        {"event": "user", "text": "I want two red t-shirts", "parse_data": {"intent": {"name": "order_product"}}},
        {"event": "bot", "text": "Which size?"},
        {"event": "user", "text": "I want to talk to a person", "parse_data": {"intent": {"name": "human_handoff"}}},
    ]
    slots = {"product": "TSH-CLASSIC", "quantity": "2", "color": "red", "requested_slot": "size",
             "customer_id": 42, "handed_off": False}
    product = shop.Product("TSH-CLASSIC", "Classic T-shirt", "t-shirts", 1999, "EUR", 50, 2,
                           {"size": SIZES, "color": ["red"]})
    draft = shop.draft_from_slots(slots, product)
    payload = shop.handoff_payload(
        reason="customer_request", message="passing you on", events=events, slots=slots,
        latest_message={"intent": {"name": "human_handoff", "confidence": 0.97}}, active_loop="order_form",
        draft=draft)
    assert payload["handoff"] is True and payload["reason"] == "customer_request"
    assert payload["intent"] == "order_product"
    assert payload["latest_intent"] == {"name": "human_handoff", "confidence": 0.97}
    assert payload["slots"]["product"] == "TSH-CLASSIC" and "handed_off" not in payload["slots"]
    assert payload["draft"]["lines"] == [{"sku": "TSH-CLASSIC", "name": "Classic T-shirt", "quantity": 2,
                                          "options": {"color": "red"}, "unit_price_minor": 1999, "currency": "EUR"}]
    assert payload["draft"]["missing"] == ["size", "delivery_address", "contact"]
    assert [m["sender"] for m in payload["transcript"]] == ["customer", "bot", "customer"]


def test_fallback_streak_counts_the_latest_messages_only() -> None:
    fb = {"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    ok = {"event": "user", "parse_data": {"intent": {"name": "greet"}}}
    bot = {"event": "bot", "text": "?"}
    assert shop.fallback_streak([ok, bot, fb]) == 1
    assert shop.fallback_streak([fb, bot, fb, bot]) == 2
    assert shop.fallback_streak([fb, ok, bot]) == 0
