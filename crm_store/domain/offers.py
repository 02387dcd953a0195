"""The next best offer: business rules matched at contact time, then associations. Pure, no I/O.

A rule is ``{name, priority, active, valid_from, valid_until, conditions, offer_sku, offer, script}``.
Conditions (all optional; every one given must hold):

- ``segments``: list of RFM segments (``crm_store.domain.rfm.SEGMENTS``);
- ``attrition``: list of levels (``low``, ``medium``, ``high``);
- ``days_since_last_order_min`` / ``days_since_last_order_max``: whole days since the last order;
- ``bought_sku``: the customer bought this product (ever);
- ``discussing_sku``: the product being discussed in the conversation (from the order draft, the bot);
- ``channels``: the conversation's channel is one of these.

A rule is validated when saved (:func:`validate_rule`); a broken rule is refused with the reasons,
never skipped silently at contact time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping, Sequence

from crm_store.domain.rfm import ATTRITION_LEVELS, SEGMENTS

CHANNELS = ("chat", "sms", "whatsapp", "email", "voice", "web", "phone", "bot")
_CONDITION_KEYS = frozenset({
    "segments", "attrition", "days_since_last_order_min", "days_since_last_order_max", "bought_sku",
    "discussing_sku", "channels",
})
_RULE_KEYS = frozenset({"name", "priority", "active", "valid_from", "valid_until", "conditions", "offer_sku",
                        "offer", "script"})
MAX_SUGGESTIONS = 3


class RuleInvalid(ValueError):
    """A rule that cannot be saved, with every reason as (field, message)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


@dataclass(frozen=True)
class OfferRule:
    """A validated rule."""

    name: str
    priority: int
    conditions: Mapping[str, Any]
    offer: str
    script: str
    offer_sku: str | None = None
    active: bool = True
    valid_from: date | None = None
    valid_until: date | None = None
    id: int | None = None


@dataclass(frozen=True)
class ContactContext:
    """What is known about the customer when the contact opens."""

    today: date
    segment: str
    attrition: str
    days_since_last_order: int | None
    bought_skus: frozenset[str] = frozenset()
    discussing_sku: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Offer:
    """One suggestion for the agent: what, why, and what to say."""

    source: str  # rule / association
    title: str
    why: str
    script: str
    sku: str | None = None
    rule_id: int | None = None
    score: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _date(value: Any, name: str, errors: list[tuple[str, str]]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors.append((name, "must be a date YYYY-MM-DD"))
    return None


def _str_list(value: Any, name: str, allowed: Sequence[str] | None, errors: list[tuple[str, str]]) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        errors.append((name, "must be a non-empty list of names"))
        return []
    if allowed is not None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            errors.append((name, f"unknown: {', '.join(unknown)} (known: {', '.join(allowed)})"))
    return list(value)


def validate_rule(data: Mapping[str, Any], known_skus: frozenset[str] | None = None) -> OfferRule:
    """Check a rule as an admin wrote it; :class:`RuleInvalid` lists every fault with its field."""
    errors: list[tuple[str, str]] = []
    if not isinstance(data, Mapping):
        raise RuleInvalid([("rule", "must be an object")])
    for k in sorted(set(data) - _RULE_KEYS - {"id"}):
        errors.append((k, "unknown field"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        errors.append(("name", "required, at most 120 characters"))
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1000 <= priority <= 1000:
        errors.append(("priority", "must be a whole number from -1000 to 1000"))
    active = data.get("active", True)
    if not isinstance(active, bool):
        errors.append(("active", "must be true or false"))
    offer = data.get("offer")
    if not isinstance(offer, str) or not offer.strip() or len(offer) > 200:
        errors.append(("offer", "required, at most 200 characters"))
    script = data.get("script", "")
    if not isinstance(script, str) or len(script) > 1000:
        errors.append(("script", "must be text of at most 1000 characters"))
    offer_sku = data.get("offer_sku")
    if offer_sku is not None and (not isinstance(offer_sku, str) or not offer_sku):
        errors.append(("offer_sku", "must be a SKU"))
    elif offer_sku is not None and known_skus is not None and offer_sku not in known_skus:
        errors.append(("offer_sku", f"no product has SKU {offer_sku}"))
    vf = _date(data.get("valid_from"), "valid_from", errors)
    vu = _date(data.get("valid_until"), "valid_until", errors)
    if vf and vu and vu < vf:
        errors.append(("valid_until", "is before valid_from"))

    cond = data.get("conditions", {})
    if not isinstance(cond, Mapping):
        errors.append(("conditions", "must be an object"))
        cond = {}
    for k in sorted(set(cond) - _CONDITION_KEYS):
        errors.append((f"conditions.{k}", f"unknown condition (known: {', '.join(sorted(_CONDITION_KEYS))})"))
    if "segments" in cond:
        _str_list(cond["segments"], "conditions.segments", SEGMENTS, errors)
    if "attrition" in cond:
        _str_list(cond["attrition"], "conditions.attrition", ATTRITION_LEVELS, errors)
    if "channels" in cond:
        _str_list(cond["channels"], "conditions.channels", CHANNELS, errors)
    bounds: dict[str, int] = {}
    for k in ("days_since_last_order_min", "days_since_last_order_max"):
        if k in cond:
            v = cond[k]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                errors.append((f"conditions.{k}", "must be a whole number of days, 0 or more"))
            else:
                bounds[k] = v
    if len(bounds) == 2 and bounds["days_since_last_order_max"] < bounds["days_since_last_order_min"]:
        errors.append(("conditions.days_since_last_order_max", "is below days_since_last_order_min: nobody can match"))
    for k in ("bought_sku", "discussing_sku"):
        if k in cond:
            v = cond[k]
            if not isinstance(v, str) or not v:
                errors.append((f"conditions.{k}", "must be a SKU"))
            elif known_skus is not None and v not in known_skus:
                errors.append((f"conditions.{k}", f"no product has SKU {v}"))
    if errors:
        raise RuleInvalid(errors)
    rid = data.get("id")
    return OfferRule(
        name=str(name).strip(), priority=int(priority), conditions=dict(cond), offer=str(offer).strip(),
        script=str(script).strip(), offer_sku=offer_sku, active=bool(active), valid_from=vf, valid_until=vu,
        id=rid if isinstance(rid, int) else None,
    )


def matches(rule: OfferRule, ctx: ContactContext) -> bool:
    """Whether every condition of an active, valid rule holds for this contact."""
    if not rule.active:
        return False
    if rule.valid_from and ctx.today < rule.valid_from:
        return False
    if rule.valid_until and ctx.today > rule.valid_until:
        return False
    c = rule.conditions
    if "segments" in c and ctx.segment not in c["segments"]:
        return False
    if "attrition" in c and ctx.attrition not in c["attrition"]:
        return False
    days = ctx.days_since_last_order
    if "days_since_last_order_min" in c and (days is None or days < c["days_since_last_order_min"]):
        return False
    if "days_since_last_order_max" in c and (days is None or days > c["days_since_last_order_max"]):
        return False
    if "bought_sku" in c and c["bought_sku"] not in ctx.bought_skus:
        return False
    if "discussing_sku" in c and c["discussing_sku"] != ctx.discussing_sku:
        return False
    if "channels" in c and ctx.channel not in c["channels"]:
        return False
    return True


def why_rule(rule: OfferRule, ctx: ContactContext) -> str:
    """The conditions that made the rule match, in words."""
    c, parts = rule.conditions, []
    if "segments" in c:
        parts.append(f"segment {ctx.segment.replace('_', ' ')}")
    if "attrition" in c:
        parts.append(f"attrition risk {ctx.attrition}")
    if "days_since_last_order_min" in c or "days_since_last_order_max" in c:
        parts.append(f"last order {ctx.days_since_last_order} days ago")
    if "bought_sku" in c:
        parts.append(f"bought {c['bought_sku']}")
    if "discussing_sku" in c:
        parts.append(f"asking about {c['discussing_sku']}")
    if "channels" in c:
        parts.append(f"on {ctx.channel}")
    return f"rule '{rule.name}'" + (": " + ", ".join(parts) if parts else " (applies to everyone)")


def next_best_offers(rules: Sequence[OfferRule], ctx: ContactContext, associations: Sequence[Offer] = (),
                     *, limit: int = MAX_SUGGESTIONS, declined_skus: frozenset[str] = frozenset()) -> list[Offer]:
    """Up to ``limit`` offers: matching rules by priority (then name), then association suggestions.

    A product already suggested, or that the customer declined, is not suggested again.
    """
    out: list[Offer] = []
    seen: set[str] = set(declined_skus)
    for rule in sorted(rules, key=lambda r: (-r.priority, r.name, r.id or 0)):
        if len(out) >= limit:
            break
        if not matches(rule, ctx) or (rule.offer_sku and rule.offer_sku in seen):
            continue
        if rule.offer_sku:
            seen.add(rule.offer_sku)
        out.append(Offer("rule", rule.offer, why_rule(rule, ctx), rule.script, rule.offer_sku, rule.id,
                         float(rule.priority)))
    for offer in associations:
        if len(out) >= limit:
            break
        if offer.sku and offer.sku in seen:
            continue
        if offer.sku:
            seen.add(offer.sku)
        out.append(offer)
    return out
