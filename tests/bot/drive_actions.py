"""Runs the bot's real action classes in-process, turn by turn, the way Rasa's order form calls them.

Run with the Rasa environment's interpreter (``.venv-rasa/bin/python tests/bot/drive_actions.py SCENARIO``)
and HUB_URL / HUB_SERVICE_TOKEN pointing at a running hub. It prints one JSON document: what every step
returned (slots set, messages, custom payloads). The pytest side (tests/bot/test_actions_hub.py) starts the
hub, runs this, and checks the order in the hub's database.

Rasa's own part is simulated faithfully where the actions depend on it: the slot values the slot mappings
extract from a message are appended as ``slot`` events after the ``user`` event (that is what
``tracker.slots_to_validate()`` reads), ``requested_slot`` and the active loop are kept as Rasa keeps them,
and each action's ``SlotSet`` events are applied to the tracker before the next call.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bot"))

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402

from actions import actions as A  # noqa: E402
from actions.hub import close_sessions  # noqa: E402


class Conversation:
    """A tracker that evolves like Rasa's: slots, events, the active loop."""

    def __init__(self, sender: str, metadata: dict[str, Any]) -> None:
        self.sender = sender
        self.metadata = metadata
        self.slots: dict[str, Any] = {"failed_attempts": 0.0, "orders_placed": 0.0, "handed_off": False,
                                      "session_started_metadata": metadata}
        self.events: list[dict[str, Any]] = []
        self.latest: dict[str, Any] = {}
        self.active_loop: dict[str, Any] = {}
        self.log: list[dict[str, Any]] = []

    def user(self, text: str, intent: str, entities: dict[str, str] | None = None,
             extracted: dict[str, Any] | None = None) -> None:
        """A customer message: NLU result plus what the slot mappings extract from it."""
        ents = [{"entity": k, "value": v} for k, v in (entities or {}).items()]
        self.latest = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": ents,
                       "metadata": self.metadata}
        self.events.append({"event": "user", "text": text, "parse_data": self.latest, "metadata": self.metadata})
        for k, v in (extracted or {}).items():
            self.slots[k] = v
            self.events.append({"event": "slot", "name": k, "value": v})

    def tracker(self) -> Tracker:
        return Tracker(self.sender, dict(self.slots), dict(self.latest), list(self.events), False, None,
                       dict(self.active_loop), "action_listen")

    async def run(self, action: Any, label: str | None = None) -> dict[str, Any]:
        dispatcher = CollectingDispatcher()
        events = await action.run(dispatcher, self.tracker(), {})
        for e in events:
            if e.get("event") == "slot":
                self.slots[e["name"]] = e["value"]
            self.events.append(e)
        for m in dispatcher.messages:
            if m.get("text"):
                self.events.append({"event": "bot", "text": m["text"]})
        step = {"action": label or action.name(), "events": events, "messages": dispatcher.messages,
                "slots": dict(self.slots)}
        self.log.append(step)
        return step


async def order_with_correction(customer_id: int) -> dict[str, Any]:
    """Two large red t-shirts in one message, "make that three", address, email, summary, yes, place; then a retry."""
    c = Conversation("web-visitor-1", {"customer_id": customer_id, "conversation_id": 9001, "channel": "chat"})
    validate, ask_confirm, place = A.ValidateOrderForm(), A.ActionAskConfirmOrder(), A.ActionPlaceOrder()
    await c.run(A.ActionSessionStart())
    c.active_loop = {"name": "order_form"}
    c.user("I'd like two large red t-shirts", "order_product",
           {"quantity": "2", "size": "L", "color": "red", "product": "t-shirts"},
           {"quantity": "2", "size": "L", "color": "red", "product": "t-shirts"})
    await c.run(validate, "validate (two large red t-shirts)")
    c.user("make that three", "inform", {"quantity": "3"},
           {"quantity": "3", "delivery_address": "make that three"})
    await c.run(validate, "validate (make that three)")
    c.user("12 Oak Street, Boston MA 02110", "inform", {}, {"delivery_address": "12 Oak Street, Boston MA 02110"})
    await c.run(validate, "validate (address)")
    c.user("it's not-an-email@", "inform", {}, {"contact": "it's not-an-email@"})
    await c.run(validate, "validate (bad contact)")
    c.user("call me on 1234 5678", "inform", {"phone": "1234 5678"}, {"contact": "1234 5678"})
    await c.run(validate, "validate (phone the hub refuses)")
    c.user("anna.bot@example.com", "inform", {"email": "anna.bot@example.com"}, {"contact": "anna.bot@example.com"})
    await c.run(validate, "validate (email)")
    await c.run(ask_confirm)
    c.user("yes", "affirm", {}, {"confirm_order": True})
    await c.run(validate, "validate (yes)")
    c.active_loop = {}
    placed = await c.run(place)
    # the same confirmation delivered twice (a retry of the action call): the hub must not place a second order
    c.slots.update({k: v for k, v in c.log[-2]["slots"].items()})
    c.slots["orders_placed"] = 0.0
    retry = await c.run(place, "action_place_order (retry)")
    return {"log": c.log, "placed": placed, "retry": retry}


async def track_and_cancel(customer_id: int, order_id: int) -> dict[str, Any]:
    """"Where is my order" (the customer's latest), then cancel it: asked, confirmed, cancelled by the hub."""
    c = Conversation("web-visitor-3", {"customer_id": customer_id, "conversation_id": 9003})
    c.user("where is my order", "track_order")
    await c.run(A.ActionTrackOrder())
    c.user(f"please cancel order {order_id}", "cancel_order", {"order_id": str(order_id)}, {"order_id": str(order_id)})
    await c.run(A.ActionPrepareCancel())
    c.user("yes", "affirm")
    await c.run(A.ActionCancelOrder())
    c.user(f"cancel order {order_id} again", "cancel_order", {"order_id": str(order_id)}, {"order_id": str(order_id)})
    await c.run(A.ActionPrepareCancel(), "action_prepare_cancel (already cancelled)")
    c.user("where is order 1", "track_order", {"order_id": "1"}, {"order_id": "1"})
    await c.run(A.ActionTrackOrder(), "action_track_order (someone else's order)")
    return {"log": c.log}


async def not_enough_stock(sku: str, stock: int) -> dict[str, Any]:
    """More than the hub has: the hub's reason is told, the quantity is asked again."""
    c = Conversation("web-visitor-4", {"conversation_id": 9004})
    c.active_loop = {"name": "order_form"}
    c.slots["requested_slot"] = "product"
    c.user(f"I want {stock + 1} of {sku}", "order_product", {"product": sku, "quantity": str(stock + 1)},
           {"product": sku, "quantity": str(stock + 1)})
    step = await c.run(A.ValidateOrderForm(), "validate (too many)")
    return {"log": c.log, "step": step}


async def handoff_when_hub_down() -> dict[str, Any]:
    """The hub is unreachable: the order form hands the customer to a person with the draft."""
    c = Conversation("web-visitor-2", {"customer_id": None, "conversation_id": 9002})
    c.active_loop = {"name": "order_form"}
    c.slots["requested_slot"] = "product"
    c.user("a zip hoodie please", "order_product", {"product": "HOD-ZIP"}, {"product": "HOD-ZIP"})
    step = await c.run(A.ValidateOrderForm(), "validate (hub down)")
    return {"log": c.log, "step": step}


SCENARIOS = {"order_with_correction": order_with_correction, "track_and_cancel": track_and_cancel,
             "not_enough_stock": not_enough_stock, "handoff_when_hub_down": handoff_when_hub_down}


def main() -> None:
    name = sys.argv[1]
    args = [int(a) if a.isdigit() else a for a in sys.argv[2:]]
    async def go() -> Any:
        try:
            return await SCENARIOS[name](*args)
        finally:
            await close_sessions()

    result = asyncio.run(go())
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
