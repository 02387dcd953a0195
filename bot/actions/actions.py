"""Custom actions of the ordering bot (rasa-sdk 3.6): the order form, tracking, cancelling, catalogue answers,
handoff to a person and back. Every price, stock figure, delivery date and order comes from the hub's API.

The hub identifies the customer in the metadata of each REST webhook message:
``{"customer_id": 42, "conversation_id": 7, "channel": "chat"}``; ``action_session_start`` copies it into the
``customer_id`` and ``conversation_id`` slots, and every action also reads the latest message's metadata.
"""

from __future__ import annotations

import abc

import logging
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .cross_sell import maybe_cross_sell
from .hub import HubClient, HubRejected, HubUnavailable
from .shop import (
    CANCELLABLE,
    DRAFT_SLOTS,
    ENTITY_SLOTS,
    FREE_SHIPPING_FROM_MINOR,
    MAX_QUANTITY,
    OPEN_STATUSES,
    OPTION_SLOTS,
    SHIPPING_FEE_MINOR,
    SLOT_OPTIONS,
    STATUS_PHRASES,
    TRANSIT_BUSINESS_DAYS,
    Product,
    describe_lines,
    draft_from_slots,
    fallback_streak,
    format_date,
    format_money,
    handoff_payload,
    idempotency_key,
    is_correction,
    looks_like_address,
    match_option,
    narrow_by_options,
    option_label,
    order_request,
    parse_contact,
    parse_quantity,
    required_slots,
    resolve_product,
    slot_for_field,
)

log = logging.getLogger(__name__)

HANDOFF_TEXTS = {
    "customer_request": "Of course. I'm passing you to a colleague now; they can see our conversation and your "
                        "order so far, so you won't need to repeat anything.",
    "fallback": "Sorry, I still don't understand. I'm passing you to a colleague who can help; they can see our "
                "conversation, so you won't need to repeat anything.",
    "repeated_invalid_answer": "Let me get a colleague to help with this. They can see everything we've "
                               "discussed so far.",
    "hub_unavailable": "Sorry, I can't reach our order system right now. I'm passing you to a colleague who will "
                       "take it from here; they can see our conversation and your order so far.",
    "order_rejected": "Sorry, I couldn't place the order: {detail}. I'm passing you to a colleague who can sort "
                      "it out; they can see your order so far.",
    "identity_check": "To change an order I need to be sure it's yours, so I'm passing you to a colleague who can "
                      "check. They can see our conversation.",
}
DRAFT_RESET = [*DRAFT_SLOTS, "confirm_order", "product_candidates"]


# --------------------------------------------------------------------------- helpers


def metadata(tracker: Tracker) -> Dict[str, Any]:
    """What the hub sent with the conversation: first the session's, then the latest message's (newer wins)."""
    md: Dict[str, Any] = {}
    session = tracker.get_slot("session_started_metadata")
    if isinstance(session, dict):
        md.update(session)
    latest = (tracker.latest_message or {}).get("metadata")
    if isinstance(latest, dict):
        md.update(latest)
    return md


def customer_of(tracker: Tracker) -> Any:
    md = metadata(tracker)
    return md.get("customer_id") if md.get("customer_id") is not None else tracker.get_slot("customer_id")


def conversation_of(tracker: Tracker) -> Any:
    md = metadata(tracker)
    return md.get("conversation_id") if md.get("conversation_id") is not None else tracker.get_slot("conversation_id")


def identity_events(tracker: Tracker) -> List[EventType]:
    """Keep the customer_id / conversation_id slots in step with the hub's metadata."""
    md = metadata(tracker)
    return [SlotSet(k, md[k]) for k in ("customer_id", "conversation_id")
            if md.get(k) is not None and md.get(k) != tracker.get_slot(k)]


def latest_intent(tracker: Tracker) -> Optional[str]:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def latest_entities(tracker: Tracker, name: str) -> List[str]:
    return [str(e.get("value")) for e in (tracker.latest_message or {}).get("entities") or []
            if e.get("entity") == name and e.get("value") is not None]


def order_number(value: Any) -> Optional[int]:
    if value is None:
        return None
    digits = re.sub(r"\D", "", str(value))
    return int(digits) if digits and len(digits) <= 12 else None


def same_customer(a: Any, b: Any) -> bool:
    return a is not None and b is not None and str(a) == str(b)


async def load_catalogue(hub: HubClient) -> List[Product]:
    return [Product.from_api(p) for p in await hub.products()]


async def find_product(hub: HubClient, sku: Optional[str]) -> Optional[Product]:
    if not sku:
        return None
    for p in await load_catalogue(hub):
        if p.sku == sku:
            return p
    return None


async def handoff(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    reason: str,
    *,
    hub: Optional[HubClient] = None,
    detail: Optional[str] = None,
    slots: Optional[Dict[str, Any]] = None,
) -> List[EventType]:
    """Tell the customer a person takes over, and give the hub what the agent needs (the custom JSON)."""
    current = dict(tracker.slots)
    current.update(slots or {})
    current.setdefault("customer_id", customer_of(tracker))
    current.setdefault("conversation_id", conversation_of(tracker))
    if current.get("customer_id") is None:
        current["customer_id"] = customer_of(tracker)
    if current.get("conversation_id") is None:
        current["conversation_id"] = conversation_of(tracker)
    product = None
    if hub is not None and current.get("product"):
        try:
            product = await find_product(hub, current["product"])
        except (HubUnavailable, HubRejected):
            product = None
    has_draft = any(current.get(s) is not None for s in DRAFT_SLOTS)
    draft = draft_from_slots(current, product) if has_draft else None
    text = HANDOFF_TEXTS.get(reason, HANDOFF_TEXTS["customer_request"]).format(detail=detail or "")
    payload = handoff_payload(
        reason=reason, message=text, events=tracker.events, slots=current, latest_message=tracker.latest_message,
        active_loop=(tracker.active_loop or {}).get("name"), draft=draft, detail=detail,
    )
    dispatcher.utter_message(text=text, json_message=payload)
    return [SlotSet("handed_off", True), SlotSet("failed_attempts", 0)]


class HubAction(Action, abc.ABC):
    """An action that talks to the hub; if the hub fails, the customer is handed to a person.

    Abstract, so that the action server (which registers every concrete ``Action`` subclass it finds)
    skips it.
    """

    @abc.abstractmethod
    def name(self) -> Text:  # pragma: no cover - every subclass names itself
        raise NotImplementedError

    @abc.abstractmethod
    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        raise NotImplementedError

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        hub = HubClient()
        try:
            events = await self.act(dispatcher, tracker, domain, hub)
        except HubUnavailable as exc:
            log.warning("%s: the hub failed: %s", self.name(), exc)
            events = await handoff(dispatcher, tracker, "hub_unavailable", detail=str(exc))
        return identity_events(tracker) + events


# --------------------------------------------------------------------------- session start


class ActionSessionStart(Action):
    """Start a session, carrying the hub's customer and conversation ids (metadata) into slots."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        for key in ("customer_id", "conversation_id", "orders_placed", "last_order_id"):
            value = tracker.get_slot(key)
            if value is not None:
                events.append(SlotSet(key, value))
        md = tracker.get_slot("session_started_metadata") or {}
        if isinstance(md, dict):
            for key in ("customer_id", "conversation_id"):
                if md.get(key) is not None:
                    events.append(SlotSet(key, md[key]))
        events.append(ActionExecuted("action_listen"))
        return events


# --------------------------------------------------------------------------- the order form


def _previous_value(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the customer's latest message."""
    events = tracker.events
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=len(events))
    for e in reversed(events[:last_user]):
        if e.get("event") == "slot" and e.get("name") == slot:
            return e.get("value")
    return None


_ADDRESS_LEAD = re.compile(r"^\s*(?:please\s+)?(?:deliver(?: it)? to|ship(?: it)? to|send(?: it)? to|my address is|"
                           r"the address is|address:?|it's|it is|to)\s+", re.I)
_FIELD_TEXT = {
    "phone": "That phone number doesn't look right ({reason}).",
    "email": "That email address doesn't look right ({reason}).",
    "contact": "I need a phone number or an email address ({reason}).",
}


def _split_spilled_product(value: str, catalogue: List[Product]) -> Optional[tuple[str, str]]:
    """An option value that ends with a product's name ("red t-shirts"): (the option, the product), else None.

    The entity extractor sometimes tags an option and the product after it as one span; the words at the
    end that name a product are the product, the words before them the option.
    """
    words = value.split()
    for i in range(1, len(words)):
        head, tail = " ".join(words[:i]), " ".join(words[i:])
        res = resolve_product(tail, catalogue)
        if res.sku or res.candidates:
            return head, tail
    return None


class ValidateOrderForm(FormValidationAction):
    """Validates every slot of order_form against the catalogue and the hub's order rules.

    Local checks first (the product resolves to a SKU, options are the product's own, the quantity is a
    number from 1 to 100, the address and contact have the right shape), then the hub decides: the draft is
    sent to POST /api/orders/quote and every field error it returns clears the slot it is about (sold out,
    not enough stock, a phone number that is not valid for the shop's region, ...).

    The slots to ask depend on the product (a mug has no size): ``requested_slot`` is set here.
    """

    def name(self) -> Text:
        return "validate_order_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        hub = HubClient()
        try:
            return await self._validate(dispatcher, tracker, hub)
        except HubUnavailable as exc:
            log.warning("validate_order_form: the hub failed: %s", exc)
            events = await handoff(dispatcher, tracker, "hub_unavailable", detail=str(exc))
            nxt = next((s for s in ("product", "quantity", "delivery_address", "contact")
                        if tracker.get_slot(s) is None), "confirm_order")
            return events + [SlotSet("requested_slot", tracker.get_slot("requested_slot") or nxt)]

    async def _validate(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        slots: Dict[str, Any] = dict(tracker.slots)
        extracted = {k: v for k, v in tracker.slots_to_validate().items() if k in slots and k in (
            *DRAFT_SLOTS, "confirm_order")}
        cand = dict(extracted)
        requested = slots.get("requested_slot")
        message = tracker.latest_message or {}
        text = (message.get("text") or "").strip()
        intent = latest_intent(tracker)
        entity_slots = {ENTITY_SLOTS[e.get("entity")] for e in message.get("entities") or []
                        if e.get("entity") in ENTITY_SLOTS}
        changes: Dict[str, Any] = {}
        notes: List[str] = []

        def put(slot: str, value: Any) -> None:
            slots[slot] = value
            changes[slot] = value

        catalogue = await load_catalogue(hub)
        by_sku = {p.sku: p for p in catalogue}
        product: Optional[Product] = by_sku.get(slots.get("product") or "")
        product_changed = False

        # A correction ("make that three") answers no question: the free text it also filled is dropped.
        if requested in cand and cand[requested] == text and (entity_slots - {requested}) and is_correction(text):
            put(requested, _previous_value(tracker, requested))
            cand.pop(requested)

        # --- an option that swallowed the product ("red t-shirts" tagged as one colour): split it ---
        if "product" not in cand and slots.get("product") is None:
            for slot in ("color", "size"):
                spilled = _split_spilled_product(str(cand.get(slot) or ""), catalogue)
                if spilled is not None:
                    option_text, product_text = spilled
                    put(slot, option_text)
                    cand[slot] = option_text
                    put("product", product_text)
                    cand["product"] = product_text
                    break

        # --- product ---
        if "product" in cand and slots.get("product") is not None:
            raw = str(slots["product"])
            res = resolve_product(raw, catalogue, text=None if raw == text else text,
                                  candidates=slots.get("product_candidates"))
            sku = res.sku
            if not sku and res.candidates:
                chosen = {s: slots.get(s) for s in ("size", "color")}
                narrowed = narrow_by_options(res.candidates, catalogue, chosen) if any(chosen.values()) else []
                if len(narrowed) == 1:
                    sku = narrowed[0]
                else:
                    pool = narrowed or list(res.candidates)
                    in_stock = [s for s in pool if by_sku[s].stock > 0]
                    put("product", None)
                    put("product_candidates", (in_stock or pool)[:10])
                    product = None
            if sku:
                fresh = await hub.product(sku)
                p = Product.from_api(fresh) if fresh else None
                if p is None:
                    put("product", None)
                    notes.append("Sorry, that product isn't in our shop any more.")
                    product = None
                elif p.stock <= 0:
                    alternatives = [q.sku for q in catalogue if q.category == p.category and q.stock > 0 and q.sku != p.sku]
                    notes.append(f"Sorry, the {p.name} is sold out at the moment."
                                 + (" Perhaps one of these instead?" if alternatives else ""))
                    put("product", None)
                    put("product_candidates", alternatives[:10] or None)
                    product = None
                else:
                    product_changed = product is None or product.sku != p.sku
                    product = p
                    by_sku[p.sku] = p
                    put("product", p.sku)
                    if slots.get("product_candidates"):
                        put("product_candidates", None)
            elif not res.candidates:
                put("product", None)
                product = None
                shown = raw if len(raw) <= 60 else raw[:57] + "..."
                notes.append(f"Sorry, I couldn't find \u201c{shown}\u201d in our shop.")

        # --- a number meant for a numeric option (shoe size 42, waist 32) is not a quantity ---
        if product and requested in SLOT_OPTIONS and "quantity" in cand and SLOT_OPTIONS[requested] in product.options:
            q = parse_quantity(cand["quantity"])
            choices = product.options[SLOT_OPTIONS[requested]]
            if q is not None and str(q) in choices:
                put(requested, str(q))
                cand[requested] = str(q)
                put("quantity", _previous_value(tracker, "quantity"))
                cand.pop("quantity")

        # --- options: only those the product has, in the catalogue's spelling ---
        if product:
            for option, slot in OPTION_SLOTS.items():
                raw_value = slots.get(slot)
                if raw_value is None:
                    continue
                if option not in product.options:
                    put(slot, None)
                    continue
                if slot not in cand and not product_changed and raw_value in product.options[option]:
                    continue
                matched = match_option(option, product.options[option], str(raw_value))
                if matched is None and slot != requested and raw_value == text:
                    put(slot, None)  # free text meant for another question
                elif matched is None:
                    put(slot, None)
                    notes.append(f"Sorry, the {product.name} doesn't come in \u201c{raw_value}\u201d.")
                elif matched != raw_value or slot in cand:
                    put(slot, matched)

        # --- quantity ---
        if "quantity" in cand and slots.get("quantity") is not None:
            q = parse_quantity(slots["quantity"])
            if q is None:
                put("quantity", None)
                notes.append(f"Please give the quantity as a number from 1 to {MAX_QUANTITY}.")
            elif not 1 <= q <= MAX_QUANTITY:
                put("quantity", None)
                notes.append(f"I can take from 1 to {MAX_QUANTITY} of one product per order.")
            else:
                put("quantity", str(q))
        elif (product_changed and slots.get("quantity") is None and intent in ("order_product", "inform")
              and "product" in entity_slots and re.search(r"\b(?:a|an|one|single)\b", text.lower())):
            put("quantity", "1")  # "I'd like a red cap"

        # --- delivery address ---
        if "delivery_address" in cand and slots.get("delivery_address"):
            address = _ADDRESS_LEAD.sub("", str(slots["delivery_address"])).strip()
            if looks_like_address(address):
                put("delivery_address", address)
            else:
                put("delivery_address", None)
                notes.append("I need the full delivery address: street and number, postcode and city.")

        # --- contact: a phone number or an email address ---
        if "contact" in cand and slots.get("contact"):
            parsed = parse_contact(str(slots["contact"])) or parse_contact(text)
            if parsed:
                put("contact", parsed[1])
            else:
                put("contact", None)
                notes.append("I need a phone number or an email address, for example anna@example.com "
                             "or +1 415 555 0134.")

        # --- the hub decides: sold out, not enough stock, option, phone or email not valid ---
        if product and cand:
            body = order_request(slots, product, placeholder_quantity=1, customer_id=customer_of(tracker))
            try:
                await hub.quote(body)
            except HubRejected as exc:
                if exc.status != 422:
                    raise HubUnavailable(f"quote refused: {exc}") from exc
                for f in exc.fields:
                    slot = slot_for_field(str(f.get("field", "")), slots)
                    if slot is None or slots.get(slot) is None:
                        continue
                    reason = str(f.get("reason", "")).strip()
                    put(slot, None)
                    if slot == "product":
                        product = None
                        notes.append(f"Sorry, {reason}.")
                    elif slot == "quantity":
                        notes.append(f"Sorry, {reason}.")
                    elif slot == "contact":
                        field_name = str(f.get("field"))
                        notes.append(_FIELD_TEXT.get(field_name, "{reason}").format(reason=reason))
                    else:
                        notes.append(f"Sorry: {reason}.")

        # --- the summary was answered ---
        if "confirm_order" in cand:
            if slots.get("confirm_order") is not True:
                put("confirm_order", None)  # "no": the summary question asks what to change
            elif any(k != "confirm_order" for k in changes):
                put("confirm_order", None)
        elif slots.get("confirm_order") is True and changes:
            put("confirm_order", None)

        events: List[EventType] = []
        # --- answers that do not fit, twice (NLU fallback) or three times in a row: a person takes over ---
        if requested and requested in cand and requested != "confirm_order":
            if slots.get(requested) is None:
                failed = int(slots.get("failed_attempts") or 0) + 1
                if (intent == "nlu_fallback" and fallback_streak(tracker.events) >= 2) or failed >= 3:
                    for note in dict.fromkeys(notes):
                        dispatcher.utter_message(text=note)
                    notes = []
                    reason = "fallback" if intent == "nlu_fallback" else "repeated_invalid_answer"
                    events += await handoff(dispatcher, tracker, reason, hub=hub, slots=slots)
                    changes.pop("failed_attempts", None)
                else:
                    put("failed_attempts", failed)
            elif slots.get("failed_attempts"):
                put("failed_attempts", 0)

        for note in dict.fromkeys(notes):
            dispatcher.utter_message(text=note)
        nxt = next((s for s in required_slots(product) if slots.get(s) is None), None)
        return [SlotSet(k, v) for k, v in changes.items()] + events + [SlotSet("requested_slot", nxt)]


# --------------------------------------------------------------------------- asking for the next slot


class AskAction(HubAction):
    """Asks for one slot of order_form (silent while a person has the conversation)."""

    slot: str = ""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        if tracker.get_slot("handed_off"):
            return []
        return await self.ask(dispatcher, tracker, hub)

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        raise NotImplementedError


class ActionAskProduct(AskAction):
    slot = "product"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        catalogue = await load_catalogue(hub)
        by_sku = {p.sku: p for p in catalogue}
        candidates = [by_sku[s] for s in tracker.get_slot("product_candidates") or [] if s in by_sku]
        if candidates:
            buttons = [{"title": f"{p.name} ({p.price})", "payload": f'/inform{{"product":"{p.sku}"}}'}
                       for p in candidates]
            dispatcher.utter_message(text="Which one would you like?", buttons=buttons)
        else:
            categories = sorted({p.category for p in catalogue})
            dispatcher.utter_message(
                text="What would you like to order? We have " + ", ".join(categories[:-1])
                     + f" and {categories[-1]}." if len(categories) > 1 else "What would you like to order?")
        return []


class _AskOption(AskAction):
    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        option = SLOT_OPTIONS[self.slot]
        product = await find_product(hub, tracker.get_slot("product"))
        if product is None or option not in product.options:
            dispatcher.utter_message(text=f"Which {option_label(option)} would you like?")
            return []
        choices = product.options[option]
        label = {"waist": "waist size (inches)", "length": "leg length (inches)"}.get(option, option_label(option))
        buttons = [{"title": c, "payload": f'/inform{{"{self.slot}":"{c}"}}'} for c in choices]
        dispatcher.utter_message(text=f"Which {label} would you like for the {product.name}? "
                                      + ", ".join(choices) + ".", buttons=buttons)
        return []


class ActionAskSize(_AskOption):
    slot = "size"


class ActionAskColor(_AskOption):
    slot = "color"


class ActionAskWaist(_AskOption):
    slot = "waist"


class ActionAskLength(_AskOption):
    slot = "length"


class ActionAskPhoneModel(_AskOption):
    slot = "phone_model"


class ActionAskRuling(_AskOption):
    slot = "ruling"


class ActionAskQuantity(AskAction):
    slot = "quantity"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        product = await find_product(hub, tracker.get_slot("product"))
        name = product.name if product else "of it"
        buttons = [{"title": str(n), "payload": f'/inform{{"quantity":"{n}"}}'} for n in (1, 2, 3)]
        dispatcher.utter_message(text=f"How many {name} would you like?", buttons=buttons)
        return []


class ActionAskDeliveryAddress(AskAction):
    slot = "delivery_address"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        dispatcher.utter_message(text="What's the delivery address? Street and number, postcode and city, please.")
        return []


class ActionAskContact(AskAction):
    slot = "contact"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        dispatcher.utter_message(text="What phone number or email address should we use for updates about this order?")
        return []


class ActionAskConfirmOrder(AskAction):
    """The summary: lines, total and estimated delivery from POST /api/orders/quote, then "shall I place it?"."""

    slot = "confirm_order"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        if latest_intent(tracker) == "deny":
            dispatcher.utter_message(
                text="No problem. What would you like to change? For example \u201cmake that three\u201d or "
                     "\u201cin blue\u201d. Or say \u201cstop\u201d to drop the order.")
            return []
        product = await find_product(hub, tracker.get_slot("product"))
        if product is None:
            dispatcher.utter_message(text="Which product would you like?")
            return []
        body = order_request(tracker.slots, product, customer_id=customer_of(tracker))
        try:
            q = await hub.quote(body)
        except HubRejected as exc:
            reasons = "; ".join(f.get("reason", "") for f in exc.fields) or exc.message
            dispatcher.utter_message(text=f"Something in the order needs changing: {reasons}. What should I change?")
            return []
        currency = product.currency
        lines = describe_lines(q["lines"], currency)
        shipping = ("free shipping" if q["shipping_minor"] == 0
                    else f"shipping {format_money(q['shipping_minor'], currency)}")
        contact = tracker.get_slot("contact")
        text = ("Here is your order:\n" + "\n".join(f"- {line}" for line in lines)
                + f"\nSubtotal {format_money(q['subtotal_minor'], currency)}, {shipping}, "
                  f"total {format_money(q['total_minor'], currency)}."
                + f"\nDelivery to {tracker.get_slot('delivery_address')}, updates to {contact}."
                + f"\nEstimated delivery: {format_date(q['estimated_delivery'])}."
                + "\nShall I place the order?")
        dispatcher.utter_message(text=text, buttons=[{"title": "Yes, place it", "payload": "/affirm"},
                                                     {"title": "No, change something", "payload": "/deny"}])
        return []


class ActionPlaceOrder(HubAction):
    """Places the confirmed order (POST /api/orders, idempotent) and gives the customer its number."""

    def name(self) -> Text:
        return "action_place_order"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        if tracker.get_slot("confirm_order") is not True:
            return []
        product = await find_product(hub, tracker.get_slot("product"))
        if product is None:
            return await handoff(dispatcher, tracker, "order_rejected", hub=hub, detail="the product is unknown")
        conversation = conversation_of(tracker)
        channel = str(metadata(tracker).get("channel") or "chat")
        body = order_request(
            tracker.slots, product, customer_id=customer_of(tracker), channel=channel,
            notes=f"Placed by the chat bot (conversation {conversation})" if conversation is not None
            else "Placed by the chat bot",
        )
        placed = tracker.get_slot("orders_placed") or 0
        key = idempotency_key(tracker.sender_id, conversation, placed, body)
        try:
            order, replayed = await hub.place_order(body, key)
        except HubRejected as exc:
            reasons = "; ".join(f.get("reason", "") for f in exc.fields) or exc.message
            return await handoff(dispatcher, tracker, "order_rejected", hub=hub, detail=reasons)
        order_id = order["id"]
        dispatcher.utter_message(
            text=f"Done! Your order number is {order_id}. Total {format_money(order['total_minor'], order['currency'])}; "
                 f"it should arrive by {format_date(order.get('promised_date'))}. "
                 f"You can ask me \u201cwhere is my order {order_id}\u201d at any time.",
            json_message={"order_placed": {"order_id": order_id, "total_minor": order["total_minor"],
                                           "currency": order["currency"], "replayed": replayed}},
        )
        # issue 18: after the first order of the conversation, the top association once (where the shop allows it)
        offer = None if replayed else await maybe_cross_sell(
            hub, customer_id=order.get("customer_id"), ordered_skus=[product.sku], product_name=product.name,
            channel=channel, conversation_id=conversation, first_order=not placed,
        )
        if offer is not None:
            dispatcher.utter_message(text=offer["text"], json_message={"cross_sell": {"sku": offer["sku"], "title": offer["title"]}})
        events: List[EventType] = [SlotSet(s, None) for s in DRAFT_RESET]
        events += [SlotSet("failed_attempts", 0), SlotSet("last_order_id", str(order_id)),
                   SlotSet("order_id", str(order_id)), SlotSet("orders_placed", float(placed) + (0 if replayed else 1))]
        return events


class ActionDropOrder(Action):
    """The customer stopped: the draft is dropped, nothing is placed."""

    def name(self) -> Text:
        return "action_drop_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        had_draft = any(tracker.get_slot(s) is not None for s in DRAFT_SLOTS)
        if had_draft:
            dispatcher.utter_message(text="Okay, I've dropped that order; nothing was placed. "
                                          "Anything else I can help with?")
        else:
            dispatcher.utter_message(text="Okay. Is there anything else I can help you with?")
        return [SlotSet(s, None) for s in DRAFT_RESET] + [SlotSet("failed_attempts", 0)]


# --------------------------------------------------------------------------- orders already placed


def _describe_order(order: Dict[str, Any], *, private: bool) -> str:
    status = str(order.get("status"))
    text = f"Order {order['id']} {STATUS_PHRASES.get(status, 'is ' + status)}"
    if private and order.get("lines"):
        items = ", ".join(f"{li['quantity']} x {li['name']}" for li in order["lines"][:4])
        text += f" ({items}; total {format_money(order['total_minor'], order['currency'])})"
    text += "."
    if status in OPEN_STATUSES and order.get("promised_date"):
        text += f" Expected delivery: {format_date(order['promised_date'])}."
        if order.get("overdue"):
            text += " It is running late, sorry about that; our team has been alerted."
        elif order.get("at_risk"):
            text += " It may arrive a little late."
    return text


class ActionTrackOrder(HubAction):
    """Where an order is: by its number, or the customer's latest order (customer from the hub's metadata)."""

    def name(self) -> Text:
        return "action_track_order"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        customer = customer_of(tracker)
        given = next((order_number(v) for v in latest_entities(tracker, "order_id")), None)
        oid = given or order_number(tracker.get_slot("last_order_id"))
        if oid is None and customer is not None:
            orders = await hub.orders_of(customer_id=customer, limit=5)
            if not orders:
                dispatcher.utter_message(text="I can't see any orders on your account yet.")
                return []
            oid = orders[0]["id"]
            others = [o for o in orders[1:] if o.get("status") in OPEN_STATUSES]
            order = await hub.order(oid)
            if order is None:
                dispatcher.utter_message(text="Sorry, I can't find your latest order right now.")
                return []
            text = "Your latest order: " + _describe_order(order, private=True)
            if others:
                text += " You also have " + ", ".join(f"order {o['id']} ({o['status']})" for o in others) + " open."
            dispatcher.utter_message(text=text)
            return [SlotSet("order_id", str(oid))]
        if oid is None:
            oid = order_number(tracker.get_slot("order_id"))
        if oid is None:
            dispatcher.utter_message(text="Which order? Please tell me the order number; it's in your "
                                          "confirmation email (for example \u201cwhere is order 1234\u201d).")
            return []
        order = await hub.order(oid)
        mine = order is not None and (same_customer(order.get("customer_id"), customer)
                                      or str(oid) == str(tracker.get_slot("last_order_id")))
        if order is None or (customer is not None and not mine):
            dispatcher.utter_message(text=f"I can't find an order with the number {oid}. Could you check the number?")
            return [SlotSet("order_id", None)]
        dispatcher.utter_message(text=_describe_order(order, private=mine))
        return [SlotSet("order_id", str(oid))]


class ActionPrepareCancel(HubAction):
    """Finds the order to cancel, checks it is the customer's and can still be cancelled, and asks to confirm."""

    def name(self) -> Text:
        return "action_prepare_cancel"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        events = await self._prepare(dispatcher, tracker, hub)
        # the rules rely on it: every outcome sets cancel_order_id (the order to confirm, or null)
        if not any(e.get("event") == "slot" and e.get("name") == "cancel_order_id" for e in events):
            events.append(SlotSet("cancel_order_id", None))
        return events

    async def _prepare(self, dispatcher: CollectingDispatcher, tracker: Tracker, hub: HubClient) -> List[EventType]:
        customer = customer_of(tracker)
        oid = next((order_number(v) for v in latest_entities(tracker, "order_id")), None)
        oid = oid or order_number(tracker.get_slot("order_id")) or order_number(tracker.get_slot("last_order_id"))
        if oid is None and customer is not None:
            orders = await hub.orders_of(customer_id=customer, limit=10)
            open_ones = [o for o in orders if o.get("status") in CANCELLABLE]
            chosen = open_ones[0] if open_ones else (orders[0] if orders else None)
            oid = chosen["id"] if chosen else None
            if oid is None:
                dispatcher.utter_message(text="I can't see any orders on your account.")
                return []
        if oid is None:
            dispatcher.utter_message(text="Which order would you like to cancel? Please tell me the order number.")
            return []
        order = await hub.order(oid)
        mine = order is not None and (same_customer(order.get("customer_id"), customer)
                                      or str(oid) == str(tracker.get_slot("last_order_id")))
        if order is None or (customer is not None and not mine):
            dispatcher.utter_message(text=f"I can't find an order with the number {oid}. Could you check the number?")
            return [SlotSet("order_id", None)]
        if not mine:
            return await handoff(dispatcher, tracker, "identity_check", hub=hub,
                                 slots={"order_id": str(oid)}) + [SlotSet("order_id", str(oid))]
        status = str(order.get("status"))
        if status not in CANCELLABLE:
            text = f"Order {oid} {STATUS_PHRASES.get(status, 'is ' + status)}, so it can't be cancelled any more."
            if status in ("shipped", "delivered"):
                text += " Once it has arrived you can send it back within 30 days for a refund."
            dispatcher.utter_message(text=text)
            return [SlotSet("order_id", str(oid))]
        lines = "; ".join(describe_lines(order.get("lines") or [], order.get("currency", "EUR")))
        dispatcher.utter_message(
            text=f"Order {oid}: {lines}. Total {format_money(order['total_minor'], order['currency'])}. "
                 "Shall I cancel it?",
            buttons=[{"title": "Yes, cancel it", "payload": "/affirm"}, {"title": "No, keep it", "payload": "/deny"}],
        )
        return [SlotSet("order_id", str(oid)), SlotSet("cancel_order_id", str(oid))]


class ActionCancelOrder(HubAction):
    """Cancels the confirmed order through the hub (which refuses once it has shipped)."""

    def name(self) -> Text:
        return "action_cancel_order"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        oid = order_number(tracker.get_slot("cancel_order_id"))
        if oid is None:
            dispatcher.utter_message(text="Which order would you like to cancel? Please tell me the order number.")
            return []
        try:
            await hub.cancel(oid, reason="cancelled by the customer in the chat")
        except HubRejected as exc:
            if exc.status == 409:
                current = str(exc.body.get("current") or "")
                why = STATUS_PHRASES.get(current, "has moved on")
                dispatcher.utter_message(text=f"Sorry, order {oid} can't be cancelled any more: it {why}.")
            elif exc.status == 404:
                dispatcher.utter_message(text=f"I can't find an order with the number {oid}.")
            else:
                dispatcher.utter_message(text=f"Sorry, I couldn't cancel order {oid}: {exc.message}.")
            return [SlotSet("cancel_order_id", None)]
        dispatcher.utter_message(text=f"Order {oid} is cancelled. If you already paid, the refund reaches your "
                                      "payment method within 5 business days.")
        return [SlotSet("cancel_order_id", None)]


class ActionKeepOrder(Action):
    def name(self) -> Text:
        return "action_keep_order"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        oid = tracker.get_slot("cancel_order_id")
        dispatcher.utter_message(text=f"Okay, order {oid} stays as it is." if oid else "Okay, nothing was changed.")
        return [SlotSet("cancel_order_id", None)]


# --------------------------------------------------------------------------- catalogue questions


class ActionProductInfo(HubAction):
    """Price, stock and delivery time of a product (or a category), from the hub's catalogue."""

    def name(self) -> Text:
        return "action_product_info"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        intent = latest_intent(tracker)
        catalogue = await load_catalogue(hub)
        by_sku = {p.sku: p for p in catalogue}
        mentioned = latest_entities(tracker, "product")
        res = resolve_product(mentioned[0], catalogue) if mentioned else None
        if (res is None or not res.found) and tracker.get_slot("product") in by_sku:
            res = resolve_product(tracker.get_slot("product"), catalogue)
        if res is None or not res.found:
            dispatcher.utter_message(text=self._general(intent, catalogue))
            return []
        if res.sku is None:
            dispatcher.utter_message(text=self._category(intent, [by_sku[s] for s in res.candidates], res.category))
            return []
        fresh = await hub.product(res.sku)
        p = Product.from_api(fresh) if fresh else by_sku[res.sku]
        if intent == "ask_stock":
            text = self._stock(p, tracker, catalogue)
        elif intent == "ask_delivery_time":
            text = await self._delivery(p, hub)
        else:
            text = self._price(p)
        dispatcher.utter_message(text=text)
        return []

    @staticmethod
    def _general(intent: Optional[str], catalogue: List[Product]) -> str:
        if intent == "ask_delivery_time":
            leads = [p.lead_time_days for p in catalogue]
            return (f"Our warehouse needs {min(leads)} to {max(leads)} business days depending on the product, "
                    f"then the carrier {TRANSIT_BUSINESS_DAYS} more. Shipping is free from "
                    f"{format_money(FREE_SHIPPING_FROM_MINOR)}, otherwise {format_money(SHIPPING_FEE_MINOR)}. "
                    "Tell me the product and I'll give you a date.")
        if intent == "ask_stock":
            return "Which product should I check?"
        cheapest = min(catalogue, key=lambda p: p.price_minor)
        return (f"Our prices start at {cheapest.price} ({cheapest.name}). Shipping is free from "
                f"{format_money(FREE_SHIPPING_FROM_MINOR)}, otherwise {format_money(SHIPPING_FEE_MINOR)}. "
                "Which product would you like the price of?")

    @staticmethod
    def _category(intent: Optional[str], items: List[Product], category: Optional[str]) -> str:
        name = category or "products"
        if intent == "ask_stock":
            sold_out = [p.name for p in items if p.stock <= 0]
            text = f"Our {name}: " + ", ".join(f"{p.name} ({'in stock' if p.stock > 0 else 'sold out'})" for p in items) + "."
            return text if sold_out else f"All our {name} are in stock: " + ", ".join(p.name for p in items) + "."
        if intent == "ask_delivery_time":
            leads = [p.lead_time_days for p in items]
            return (f"Our {name} leave the warehouse within {min(leads)} to {max(leads)} business days, then the "
                    f"carrier needs {TRANSIT_BUSINESS_DAYS} more. Which one are you interested in?")
        cheap = min(items, key=lambda p: p.price_minor)
        dear = max(items, key=lambda p: p.price_minor)
        listing = "; ".join(f"{p.name} {p.price}" for p in items[:8])
        return f"Our {name} cost from {cheap.price} to {dear.price}: {listing}."

    @staticmethod
    def _price(p: Product) -> str:
        text = f"The {p.name} costs {p.price}."
        opts = [f"{option_label(k)}s {', '.join(v)}" if k != "color" else f"colours {', '.join(v)}"
                for k, v in p.options.items()]
        if opts:
            text += " It comes in " + "; ".join(opts) + "."
        if p.price_minor < FREE_SHIPPING_FROM_MINOR:
            text += (f" Shipping is {format_money(SHIPPING_FEE_MINOR)}, free on orders from "
                     f"{format_money(FREE_SHIPPING_FROM_MINOR)}.")
        return text

    @staticmethod
    def _stock(p: Product, tracker: Tracker, catalogue: List[Product]) -> str:
        if p.stock <= 0:
            alts = [q.name for q in catalogue if q.category == p.category and q.stock > 0 and q.sku != p.sku][:3]
            return f"Sorry, the {p.name} is sold out at the moment." + (
                f" In stock instead: {', '.join(alts)}." if alts else "")
        text = f"Yes, the {p.name} is in stock" + (f", but only {p.stock} left." if p.stock <= 10 else ".")
        for slot in ("color", "size"):
            for raw in latest_entities(tracker, slot):
                option = SLOT_OPTIONS[slot]
                choices = p.options.get(option)
                if not choices:
                    continue
                if match_option(option, choices, raw):
                    text += f" It comes in {match_option(option, choices, raw)}."
                else:
                    text += f" It doesn't come in {raw}, only in {', '.join(choices)}."
        return text

    @staticmethod
    async def _delivery(p: Product, hub: HubClient) -> str:
        body = {"lines": [{"sku": p.sku, "quantity": 1, "options": {k: v[0] for k, v in p.options.items()}}],
                "delivery_address": "(estimate)", "email": "estimate@example.com"}
        try:
            q = await hub.quote(body)
        except HubRejected:
            return (f"The {p.name} leaves our warehouse within {p.lead_time_days} business days, and the carrier "
                    f"needs {TRANSIT_BUSINESS_DAYS} more." + (" It is sold out right now, though." if p.stock <= 0 else ""))
        return (f"The {p.name} leaves our warehouse within {p.lead_time_days} business days and the carrier needs "
                f"{TRANSIT_BUSINESS_DAYS} more: ordered today, it should arrive by {format_date(q['estimated_delivery'])}.")


# --------------------------------------------------------------------------- handoff and back


class ActionHandoff(HubAction):
    """The customer asked for a person."""

    def name(self) -> Text:
        return "action_handoff"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        return await handoff(dispatcher, tracker, "customer_request", hub=hub)


class ActionFallback(HubAction):
    """Not understood: ask to rephrase the first time, hand over to a person the second time in a row."""

    def name(self) -> Text:
        return "action_fallback"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict,
                  hub: HubClient) -> List[EventType]:
        if fallback_streak(tracker.events) >= 2:
            return await handoff(dispatcher, tracker, "fallback", hub=hub)
        dispatcher.utter_message(text="Sorry, I didn't quite get that. Could you say it another way? I can take an "
                                      "order, track or cancel one, and answer questions about products, delivery and "
                                      "returns. Say \u201cagent\u201d to talk to a person.")
        return []


class ActionResumeBot(Action):
    """An agent handed the conversation back (the hub sends "/resume_bot"): an open order form carries on."""

    def name(self) -> Text:
        return "action_resume_bot"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        if (tracker.active_loop or {}).get("name") == "order_form":
            dispatcher.utter_message(text="Thanks for waiting. Let's finish your order.")
        else:
            dispatcher.utter_message(text="Thanks for waiting, I'm back. Is there anything else I can help you with?")
        return identity_events(tracker) + [SlotSet("handed_off", False), SlotSet("failed_attempts", 0)]
