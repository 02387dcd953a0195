"""The bot's shop knowledge without Rasa: products, options, quantities, contacts, money, dates, handoff payloads.

Pure functions (no I/O, no rasa_sdk), so the hub's test suite can exercise them in its own environment.
The alias table they use (``product_aliases.json``) is generated from the catalogue by ``bot/generate_data.py``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

ALIASES: dict[str, Any] = json.loads((Path(__file__).with_name("product_aliases.json")).read_text(encoding="utf-8"))

# catalogue option name -> slot of the order form
OPTION_SLOTS: dict[str, str] = {
    "size": "size",
    "color": "color",
    "waist": "waist",
    "length": "length",
    "model": "phone_model",
    "ruling": "ruling",
}
SLOT_OPTIONS: dict[str, str] = {slot: option for option, slot in OPTION_SLOTS.items()}
OPTION_LABELS: dict[str, str] = {"model": "phone model", "color": "colour", "ruling": "paper"}
# every slot the order form can ask, in the order it asks them
FORM_SLOTS: tuple[str, ...] = (
    "product", *OPTION_SLOTS.values(), "quantity", "delivery_address", "contact", "confirm_order",
)
DRAFT_SLOTS: tuple[str, ...] = ("product", *OPTION_SLOTS.values(), "quantity", "delivery_address", "contact")
# the entity each slot can be filled from (the other option slots are filled by button payloads)
ENTITY_SLOTS: dict[str, str] = {
    "product": "product", "quantity": "quantity", "size": "size", "color": "color",
    "email": "contact", "phone": "contact", "waist": "waist", "length": "length",
    "phone_model": "phone_model", "ruling": "ruling",
}
MAX_QUANTITY = 100  # the hub's MAX_LINE_QUANTITY

_WORD_NUMBERS: dict[str, int] = {
    **{k: int(v) for k, v in ALIASES["numbers"].items()},
    "a": 1, "an": 1, "single": 1, "just one": 1, "a single": 1, "a couple": 2, "a couple of": 2, "couple": 2,
    "a pair": 2, "pair": 2, "a pair of": 2, "thirteen": 13, "fourteen": 14, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "a dozen": 12, "dozen": 12, "half a dozen": 6, "a hundred": 100,
}
_RULING_WORDS = {"ruled": "lined", "lines": "lined", "dots": "dotted", "dot grid": "dotted", "dot": "dotted",
                 "plain": "blank", "empty": "blank", "grid": "squared", "squares": "squared", "graph": "squared"}
_FILLER = re.compile(
    r"^(?:i(?:'d| would)? (?:like|want|meant|mean|take)|i'll (?:take|have)|give me|actually|ok(?:ay)?|"
    r"please|maybe|the|a|an|some|one of the|one|make (?:it|that)|switch to|change (?:it )?to)\b\s*"
)
_TRAILING = re.compile(r"\s*\b(?:please|one|ones|thanks|thank you|instead)$")


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Product:
    """A catalogue entry as the hub's API returns it."""

    sku: str
    name: str
    category: str
    price_minor: int
    currency: str
    stock: int
    lead_time_days: int
    options: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Product":
        return cls(
            sku=str(data["sku"]), name=str(data["name"]), category=str(data.get("category") or ""),
            price_minor=int(data["price_minor"]), currency=str(data.get("currency") or "EUR"),
            stock=int(data.get("stock") or 0), lead_time_days=int(data.get("lead_time_days") or 0),
            options={str(k): [str(x) for x in v] for k, v in (data.get("options") or {}).items()},
        )

    @property
    def price(self) -> str:
        return format_money(self.price_minor, self.currency)


@dataclass(frozen=True)
class Resolution:
    """What a customer's words name: one SKU, several candidates, or nothing."""

    sku: str | None = None
    candidates: tuple[str, ...] = ()
    category: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.sku or self.candidates)


def normalize(text: str) -> str:
    """Lower case, punctuation other than - / ' dropped, spaces collapsed."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^\w\s/'-]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _strip_filler(text: str) -> str:
    prev = None
    while prev != text:
        prev = text
        text = _FILLER.sub("", text).strip()
        text = _TRAILING.sub("", text).strip()
    return text


_STOP = {"the", "a", "an", "one", "please", "with", "and", "in", "of", "for", "i", "want", "like", "to", "it",
         "size", "color", "colour", "pack", "ml", "cm", "l"}


_STOP |= set(ALIASES.get("option_words", ()))


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[\s/-]+", normalize(text)) if len(t) > 1 and t not in _STOP and not t.isdigit()}


def resolve_product(
    value: str | None,
    catalogue: Sequence[Product],
    *,
    text: str | None = None,
    candidates: Sequence[str] | None = None,
) -> Resolution:
    """Find the product the customer means, from an entity value (SKU, synonym) or free text."""
    by_sku = {p.sku: p for p in catalogue}
    categories = {p.category for p in catalogue}
    aliases: dict[str, str] = ALIASES["products"]

    def from_alias(target: str) -> Resolution | None:
        if target.startswith("category:"):
            cat = target.split(":", 1)[1]
            in_cat = tuple(p.sku for p in catalogue if p.category == cat)
            return Resolution(candidates=in_cat, category=cat) if in_cat else None
        return Resolution(sku=target) if target in by_sku else None

    for raw in (value, text):
        if not raw:
            continue
        raw = str(raw).strip()
        if raw.upper() in by_sku:
            return Resolution(sku=raw.upper())
        n = normalize(raw)
        for key in (n, _strip_filler(n)):
            if key in categories:
                return from_alias(f"category:{key}") or Resolution()
            if key in aliases and (res := from_alias(aliases[key])):
                return res
        # typos of a whole name the generated aliases did not foresee
        close = difflib.get_close_matches(_strip_filler(n), list(aliases), n=1, cutoff=0.88)
        if close and (res := from_alias(aliases[close[0]])) and res.sku:
            return res
        # an alias inside a longer phrase ("the wave graphic tee please"): the longest one wins
        padded = f" {n} "
        hits = sorted((k for k in aliases if f" {k} " in padded), key=len, reverse=True)
        if hits and (res := from_alias(aliases[hits[0]])):
            if res.candidates:
                # "clasic t-shirt", "the classic one": the other words pick one of the category
                pool = [by_sku[s] for s in (candidates or res.candidates) if s in by_sku]
                narrowed = _by_tokens(n, pool) or _by_tokens(n, [by_sku[s] for s in res.candidates])
                if narrowed:
                    return Resolution(sku=narrowed)
            return res
        # distinctive words of a name ("the wave one", "the rugged"), first among earlier candidates
        pool = [by_sku[s] for s in candidates or () if s in by_sku]
        for group in (pool, list(catalogue)):
            sku = _by_tokens(n, group)
            if sku:
                return Resolution(sku=sku)
        # typos the generated aliases did not foresee
        close = difflib.get_close_matches(_strip_filler(n), list(aliases), n=1, cutoff=0.82)
        if close and (res := from_alias(aliases[close[0]])):
            return res
    return Resolution()


def _by_tokens(text: str, products: Sequence[Product]) -> str | None:
    """The one product whose distinctive name words the text mentions most, if there is exactly one."""
    if not products:
        return None
    words = _tokens(text)
    if not words:
        return None
    common: dict[str, int] = {}
    for p in products:
        for t in _tokens(p.name):
            common[t] = common.get(t, 0) + 1
    scores: dict[str, int] = {}
    for p in products:
        distinctive = {t for t in _tokens(p.name) if common[t] < len(products) or len(products) == 1}
        score = sum(1 for t in distinctive if t in words or (len(t) >= 4 and difflib.get_close_matches(
            t, list(words), n=1, cutoff=0.8)))
        if score:
            scores[p.sku] = score
    if not scores:
        return None
    best = max(scores.values())
    winners = [s for s, v in scores.items() if v == best]
    return winners[0] if len(winners) == 1 else None


def narrow_by_options(
    skus: Sequence[str], catalogue: Sequence[Product], chosen: Mapping[str, str | None]
) -> list[str]:
    """The candidates that offer every option value the customer already gave (colour, size)."""
    by_sku = {p.sku: p for p in catalogue}
    kept: list[str] = []
    for sku in skus:
        p = by_sku.get(sku)
        if p is None:
            continue
        ok = True
        for slot, raw in chosen.items():
            option = SLOT_OPTIONS.get(slot)
            if raw is None or option is None:
                continue
            choices = p.options.get(option)
            if not choices or match_option(option, choices, str(raw)) is None:
                ok = False
                break
        if ok:
            kept.append(sku)
    return kept


# --------------------------------------------------------------------------- options


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _alias_forms(option: str, choice: str) -> list[str]:
    forms = [choice.lower()]
    table = ALIASES["sizes"] if option == "size" else ALIASES["colors"] if option == "color" else {}
    forms += [alias for alias, target in table.items() if target == choice]
    if option == "ruling":
        forms += [w for w, target in _RULING_WORDS.items() if target == choice]
    return forms


def match_option(option: str, choices: Sequence[str], raw: str) -> str | None:
    """The catalogue's spelling of the option value the customer gave, or None.

    Accepts the value itself in any case, the generated aliases ("large" -> "L", "gray" -> "grey"),
    a value inside a sentence ("the red one please"), a unique partial colour ("grey" -> "grey marl"),
    waist/length numbers ("W32"), phone models without spaces, and small typos.
    """
    if raw is None:
        return None
    text = normalize(str(raw))
    if not text:
        return None
    lowered = {c.lower(): c for c in choices}
    if text in lowered:
        return lowered[text]
    for c in choices:
        if text in _alias_forms(option, c):
            return c
    if option == "model":
        compact = _compact(text)
        hits = sorted((c for c in choices if _compact(c) in compact), key=len, reverse=True)
        if hits:
            return hits[0]
        partial = [c for c in choices if compact and compact in _compact(c)]
        return partial[0] if len(partial) == 1 else None
    if option in ("waist", "length"):
        tagged = re.findall(rf"(?:{'w|waist' if option == 'waist' else 'l|length|leg|inseam'})\s*(\d+)", text)
        tagged += re.findall(rf"(\d+)\s*(?:{'w|waist' if option == 'waist' else 'l|length|leg|inseam'})\b", text)
        numbers = tagged or re.findall(r"\d+", text)
        if not tagged and len(numbers) >= 2 and option == "length":
            numbers = numbers[1:]  # "32/30": waist first, length second
        for n in numbers:
            if n in choices:
                return n
        return None
    # a value or alias inside a sentence, whole words only (no "s" in "it's")
    hits: list[tuple[int, str]] = []
    for c in choices:
        for form in _alias_forms(option, c):
            if re.search(rf"(?<![\w'/-]){re.escape(form)}(?![\w/-])", text):
                hits.append((len(form), c))
    if hits:
        hits.sort(reverse=True)
        longest = [c for n, c in hits if n == hits[0][0]]
        if len(set(longest)) == 1:
            return longest[0]
        return None
    # "grey" for "grey marl" when only one choice contains it
    text = _strip_filler(text) or text
    partial = [c for c in choices if re.search(rf"(?<![\w/]){re.escape(text)}(?![\w/])", c.lower())]
    if len(partial) == 1:
        return partial[0]
    if option not in ("color", "ruling"):  # sizes are codes: "XXXL" is no typo of "XXL"
        return None
    close = difflib.get_close_matches(text, list(lowered), n=1, cutoff=0.72)
    return lowered[close[0]] if close else None


def option_label(option: str) -> str:
    return OPTION_LABELS.get(option, option)


# --------------------------------------------------------------------------- quantities, contacts, addresses


def parse_quantity(raw: Any) -> int | None:
    """A quantity from digits or words ("3", "three", "a couple", "make that 3 please"), or None."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return int(raw) if float(raw).is_integer() else None
    text = normalize(str(raw))
    m = re.search(r"\b\d+\b", text)
    if m:
        return int(m.group())
    best: tuple[int, int] | None = None
    for phrase, value in _WORD_NUMBERS.items():
        for hit in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text):
            # the longest phrase wins ("half a dozen" over "a")
            if best is None or len(phrase) > best[0]:
                best = (len(phrase), value)
            break
    return best[1] if best else None


EMAIL_RE = re.compile(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")


def parse_contact(raw: str | None) -> tuple[str, str] | None:
    """("email", value) or ("phone", value) found in what the customer wrote, not yet checked by the hub."""
    if not raw:
        return None
    text = str(raw).strip()
    m = EMAIL_RE.search(text)
    if m:
        return "email", m.group().strip(".")
    m = PHONE_RE.search(text)
    if m and sum(ch.isdigit() for ch in m.group()) >= 7:
        return "phone", re.sub(r"\s+", " ", m.group()).strip()
    return None


def contact_kind(value: str | None) -> str | None:
    if not value:
        return None
    return "email" if "@" in value else "phone"


def looks_like_address(text: str | None) -> bool:
    """A delivery address has a number (house or postcode), letters, and at least two words."""
    if not text:
        return False
    t = text.strip()
    words = re.findall(r"[^\W\d_]{2,}", t)
    return len(t) >= 8 and any(ch.isdigit() for ch in t) and len(words) >= 1 and len(t.split()) >= 2 \
        and not EMAIL_RE.search(t)


_CORRECTION = re.compile(r"^\s*(?:make|change|switch|actually|instead|sorry|no\b|not\b|i meant|can you make|"
                         r"could you make|rather)", re.I)


def is_correction(text: str) -> bool:
    """Words that change an earlier answer ("make that three") rather than answer the question asked."""
    return bool(_CORRECTION.match(text or "")) or len((text or "").split()) <= 3


# --------------------------------------------------------------------------- money, dates, statuses


def format_money(minor: int, currency: str = "EUR") -> str:
    """Like the hub shows money: 1999 -> "19.99 EUR" (two decimals; the demo shop sells in EUR)."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(int(minor)), 100)
    return f"{sign}{units}.{cents:02d} {currency.upper()}"


def format_date(iso: str | None) -> str:
    if not iso:
        return "an unknown date"
    try:
        d = date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{d:%A} {d.day} {d:%B %Y}"


STATUS_PHRASES: dict[str, str] = {
    "draft": "is still a draft",
    "placed": "has been placed and is waiting to be confirmed",
    "confirmed": "is confirmed and waiting to be picked",
    "picking": "is being picked and packed in our warehouse",
    "shipped": "has shipped and is on its way",
    "delivered": "has been delivered",
    "cancelled": "was cancelled",
    "returned": "was returned",
    "refunded": "was returned and refunded",
}
CANCELLABLE = {"draft", "placed", "confirmed", "picking"}
OPEN_STATUSES = {"placed", "confirmed", "picking", "shipped"}


def describe_lines(lines: Iterable[Mapping[str, Any]], currency: str = "EUR") -> list[str]:
    """One text line per order line: "2 x Classic T-shirt (size L, colour red) at 19.99 EUR = 39.98 EUR"."""
    out = []
    for li in lines:
        opts = ", ".join(f"{option_label(k)} {v}" for k, v in (li.get("options") or {}).items())
        name = li.get("name") or li.get("sku")
        text = f"{li.get('quantity')} x {name}" + (f" ({opts})" if opts else "")
        if "unit_price_minor" in li and "line_total_minor" in li:
            text += f" at {format_money(li['unit_price_minor'], currency)} = {format_money(li['line_total_minor'], currency)}"
        out.append(text)
    return out


# --------------------------------------------------------------------------- the draft, the order request


def draft_from_slots(slots: Mapping[str, Any], product: Product | None) -> dict[str, Any]:
    """The order as far as the conversation got: what an agent needs to carry on without asking again."""
    line: dict[str, Any] | None = None
    sku = slots.get("product")
    if sku:
        options = {}
        names = product.options if product else {SLOT_OPTIONS[s]: [] for s in SLOT_OPTIONS}
        for option in names:
            value = slots.get(OPTION_SLOTS.get(option, option))
            if value is not None:
                options[option] = value
        line = {"sku": sku, "name": product.name if product else None, "quantity": parse_quantity(slots.get("quantity")),
                "options": options}
        if product:
            line["unit_price_minor"] = product.price_minor
            line["currency"] = product.currency
    contact = slots.get("contact")
    kind = contact_kind(contact)
    missing = [s for s in required_slots(product) if s != "confirm_order" and slots.get(s) is None]
    return {
        "lines": [line] if line else [],
        "delivery_address": slots.get("delivery_address"),
        "phone": contact if kind == "phone" else None,
        "email": contact if kind == "email" else None,
        "customer_id": slots.get("customer_id"),
        "missing": missing,
        "confirmed": slots.get("confirm_order") is True,
    }


def required_slots(product: Product | None) -> list[str]:
    """The slots the order form needs for this product: its own options only."""
    slots = ["product"]
    if product is not None:
        slots += [OPTION_SLOTS[o] for o in OPTION_SLOTS if o in product.options]
    return slots + ["quantity", "delivery_address", "contact", "confirm_order"]


def order_request(
    slots: Mapping[str, Any], product: Product, *, placeholder_quantity: int | None = None,
    customer_id: Any = None, channel: str | None = None, notes: str | None = None,
) -> dict[str, Any]:
    """The JSON body of POST /api/orders (and /api/orders/quote) for the draft."""
    options = {o: slots[OPTION_SLOTS[o]] for o in product.options if slots.get(OPTION_SLOTS[o]) is not None}
    qty = parse_quantity(slots.get("quantity"))
    body: dict[str, Any] = {
        "lines": [{"sku": product.sku, "quantity": qty if qty is not None else placeholder_quantity, "options": options}],
        "delivery_address": slots.get("delivery_address") or "",
    }
    contact = slots.get("contact")
    kind = contact_kind(contact)
    if kind:
        body[kind] = contact
    if isinstance(customer_id, int) and not isinstance(customer_id, bool):
        body["customer_id"] = customer_id
    elif isinstance(customer_id, str) and customer_id.isdigit():
        body["customer_id"] = int(customer_id)
    if channel:
        body["channel"] = channel[:16]
    if notes:
        body["notes"] = notes
    return body


def idempotency_key(sender_id: str, conversation_id: Any, orders_placed: Any, body: Mapping[str, Any]) -> str:
    """The same conversation, the same draft and the same count of earlier orders give the same key:
    a retried "yes" (or a retried action call) can never place the order twice."""
    basis = {
        "sender": sender_id,
        "conversation": conversation_id,
        "n": int(orders_placed or 0),
        "lines": body.get("lines"),
        "address": body.get("delivery_address"),
        "phone": body.get("phone"),
        "email": body.get("email"),
    }
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()
    return f"rasa-{digest[:40]}"


# --------------------------------------------------------------------------- field errors of the hub


def slot_for_field(field_name: str, given: Mapping[str, Any]) -> str | None:
    """Which slot a field error of POST /api/orders/quote is about, if the customer gave that value yet.

    ``lines[0].sku`` -> product, ``lines[0].quantity`` -> quantity (product when no quantity was given:
    "out of stock"), ``lines[0].options.size`` -> size, ``phone``/``email``/``contact`` -> contact.
    Errors about values not given yet ("choose a size", "delivery_address: required") return None.
    """
    f = field_name
    if f.startswith("lines["):
        rest = f.split("]", 1)[1].lstrip(".")
        if rest == "sku":
            return "product"
        if rest == "quantity":
            return "quantity" if given.get("quantity") is not None else "product"
        if rest.startswith("options."):
            slot = OPTION_SLOTS.get(rest.split(".", 1)[1])
            return slot if slot and given.get(slot) is not None else None
        if rest == "options":
            return None
        return "product"
    if f in ("phone", "email", "contact"):
        return "contact" if given.get("contact") else None
    if f == "delivery_address":
        return "delivery_address" if given.get("delivery_address") else None
    return None


# --------------------------------------------------------------------------- handoff


TASK_INTENTS = ("order_product", "track_order", "cancel_order", "ask_price", "ask_stock", "ask_delivery_time",
                "ask_return_policy", "ask_opening_hours")
HANDOFF_SLOTS = (*DRAFT_SLOTS, "confirm_order", "requested_slot", "order_id", "cancel_order_id", "last_order_id",
                 "customer_id", "conversation_id", "product_candidates")


def handoff_payload(
    *,
    reason: str,
    message: str,
    events: Sequence[Mapping[str, Any]],
    slots: Mapping[str, Any],
    latest_message: Mapping[str, Any],
    active_loop: str | None,
    draft: Mapping[str, Any] | None,
    detail: str | None = None,
) -> dict[str, Any]:
    """The custom JSON the bot sends with its handoff message (the hub's connector reads it)."""
    user_intents = [
        (e.get("parse_data") or {}).get("intent", {}).get("name")
        for e in events if e.get("event") == "user"
    ]
    goal = next((i for i in reversed(user_intents) if i in TASK_INTENTS), None)
    if goal is None and active_loop == "order_form":
        goal = "order_product"
    latest_intent = (latest_message or {}).get("intent") or {}
    transcript = []
    for e in events:
        if e.get("event") == "user" and e.get("text") and not str(e.get("text")).startswith("/"):
            transcript.append({"sender": "customer", "text": e["text"],
                               "intent": (e.get("parse_data") or {}).get("intent", {}).get("name")})
        elif e.get("event") == "bot" and e.get("text"):
            transcript.append({"sender": "bot", "text": e["text"]})
    return {
        "handoff": True,
        "reason": reason,
        "intent": goal or latest_intent.get("name"),
        "latest_intent": {"name": latest_intent.get("name"), "confidence": latest_intent.get("confidence")},
        "message": message,
        "detail": detail,
        "slots": {k: slots.get(k) for k in HANDOFF_SLOTS if slots.get(k) is not None},
        "active_form": active_loop,
        "draft": dict(draft) if draft else None,
        "transcript": transcript[-20:],
    }


def fallback_streak(events: Sequence[Mapping[str, Any]]) -> int:
    """How many of the customer's latest messages in a row the NLU did not understand (nlu_fallback)."""
    streak = 0
    for e in reversed(events):
        if e.get("event") != "user":
            continue
        name = (e.get("parse_data") or {}).get("intent", {}).get("name")
        if name == "nlu_fallback":
            streak += 1
        else:
            break
    return streak


# --------------------------------------------------------------------------- shop rules the bot explains

# Mirrors of crm_store/domain/pricing.py (tests/bot/ checks they are equal), used only to explain delivery
# and shipping in words; every price and date the customer is promised comes from the hub's API.
FREE_SHIPPING_FROM_MINOR = 5000
SHIPPING_FEE_MINOR = 495
TRANSIT_BUSINESS_DAYS = 2


# --- cross-selling after an order (issue 18) -------------------------------------------------------------


def cross_sell_offer(value_view: Mapping[str, Any], ordered_skus: Iterable[str]) -> dict[str, Any] | None:
    """The association suggestion to offer after an order: the hub's best one (``GET /api/customers/{id}/value``
    lists them best first, never a product the customer declined or one out of stock) that is not in the
    order just placed. Rules' offers (discounts, scripts for agents) are not the bot's to make."""
    just = {str(s).upper() for s in ordered_skus}
    for offer in value_view.get("offers") or ():
        if offer.get("source") == "association" and offer.get("sku") and str(offer["sku"]).upper() not in just:
            return dict(offer)
    return None


def cross_sell_text(offer: Mapping[str, Any], product_name: str) -> str:
    """What the bot says: why, and how to take it up (the order form starts again from the product's name)."""
    title = str(offer.get("title") or "")
    name = title[len("Suggest "):] if title.startswith("Suggest ") else title
    return (f"By the way, customers who buy the {product_name} often add the {name}. "
            f"If you'd like one too, just say \u201cI'd like the {name}\u201d.")
