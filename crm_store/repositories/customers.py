"""Customers and their contact points: lookup, identity resolution, linking and merging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from types import SimpleNamespace

from sqlalchemy import func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.domain.identity import PHONE_KINDS, ContactKind, normalize_address
from crm_store.repositories.pg import Reader
from crm_store.models import (
    ContactPoint,
    Conversation,
    Customer,
    CustomerMerge,
    Interaction,
    Order,
    utcnow,
)


class CustomerNotFound(LookupError):
    """No customer has this id."""

    def __init__(self, customer_id: int) -> None:
        super().__init__(f"customer {customer_id} not found")
        self.customer_id = customer_id


class ContactPointTaken(ValueError):
    """The address already belongs to another customer; only an explicit merge may join them."""

    def __init__(self, kind: str, value: str, owner_id: int) -> None:
        super().__init__(f"{kind} {value} already belongs to customer {owner_id}")
        self.kind, self.value, self.owner_id = kind, value, owner_id


class MergeRefused(ValueError):
    """A merge that cannot be done (same customer, already merged, unknown)."""


@dataclass(frozen=True)
class Resolution:
    """The outcome of identity resolution: whose address it is, and whether we just created them."""

    customer: Customer
    contact_point: ContactPoint
    created: bool


async def get_customer(s: AsyncSession, customer_id: int, follow_merge: bool = True) -> Customer:
    """Load a customer by id; a merged-away customer leads to the one it was merged into."""
    customer = await s.get(Customer, customer_id)
    hops = 0
    while customer is not None and follow_merge and customer.merged_into_id is not None and hops < 10:
        customer = await s.get(Customer, customer.merged_into_id)
        hops += 1
    if customer is None:
        raise CustomerNotFound(customer_id)
    return customer


async def survivor_id(s: Reader, customer_id: int) -> int:
    """The customer that ``customer_id`` was (perhaps transitively) merged into, or itself."""
    t = Customer.__table__  # type: ignore[attr-defined]
    current = customer_id
    for _ in range(10):
        found = (await s.execute(sa_select(t.c.merged_into_id).where(t.c.id == current))).first()
        if found is None:
            raise CustomerNotFound(customer_id)
        if found.merged_into_id is None:
            return current
        current = found.merged_into_id
    return current


async def customer_with_contact_points(s: Reader, customer_id: int) -> tuple[Any, list[Any]]:
    """A customer and all their addresses in one query, as read-only rows (the 360's first read).

    A merged customer's id reads the customer it was merged into.
    """
    cu, cp = Customer.__table__, ContactPoint.__table__  # type: ignore[attr-defined]
    stmt = (
        sa_select(cu, *[c.label(f"cp_{c.name}") for c in cp.c])
        .select_from(cu.outerjoin(cp, cp.c.customer_id == cu.c.id))
        .where(cu.c.id == customer_id)
        .order_by(cp.c.id)
    )
    found = (await s.execute(stmt)).all()
    if not found:
        raise CustomerNotFound(customer_id)
    if found[0].merged_into_id is not None:
        return await customer_with_contact_points(s, await survivor_id(s, customer_id))
    points = [
        SimpleNamespace(**{c.name: getattr(r, f"cp_{c.name}") for c in cp.c}) for r in found if r.cp_id is not None
    ]
    return found[0], points


async def find_contact_point(s: AsyncSession, kind: str, value: str) -> ContactPoint | None:
    """The contact point with this normalised address, if any."""
    result = await s.exec(select(ContactPoint).where(ContactPoint.kind == kind, ContactPoint.value == value))
    return result.first()


async def contact_points(s: AsyncSession, customer_id: int) -> Sequence[ContactPoint]:
    """Every address of a customer, oldest first."""
    result = await s.exec(
        select(ContactPoint).where(ContactPoint.customer_id == customer_id).order_by(col(ContactPoint.id))
    )
    return result.all()


async def resolve_identity(
    s: AsyncSession,
    kind: ContactKind | str,
    raw_address: str,
    display_name: str = "",
    default_region: str = "US",
    verified: bool = False,
) -> Resolution:
    """Find the customer an inbound address belongs to, or create one with that address.

    Safe under concurrency: when two contacts from a new address race, the unique index on
    (kind, value) lets one insert win and the other read the winner.

    One number is one customer: a first SMS or WhatsApp message (or call) from an E.164 number that
    the customer already used on another phone channel, or gave us (an unverified ``phone`` point),
    finds that customer and links the new kind of address to them.
    """
    kind = ContactKind(kind)
    value = normalize_address(kind, raw_address, default_region)
    existing = await find_contact_point(s, kind, value)
    if existing is not None:
        return Resolution(await get_customer(s, existing.customer_id), existing, created=False)
    if kind in PHONE_KINDS:
        sibling = await _same_number(s, value)
        if sibling is not None:
            owner = await get_customer(s, sibling.customer_id)
            assert owner.id is not None
            try:
                point = await link_contact_point(s, owner.id, kind, value, verified=verified, default_region=default_region)
            except ContactPointTaken as taken:  # another process linked it just now
                found = await find_contact_point(s, kind, value)
                assert found is not None, taken
                return Resolution(await get_customer(s, found.customer_id), found, created=False)
            return Resolution(owner, point, created=False)
    try:
        async with s.begin_nested():
            customer = Customer(display_name=display_name.strip()[:200])
            s.add(customer)
            await s.flush()
            assert customer.id is not None
            point = ContactPoint(customer_id=customer.id, kind=kind, value=value, verified=verified)
            s.add(point)
            await s.flush()
    except IntegrityError:
        existing = await find_contact_point(s, kind, value)
        if existing is None:  # pragma: no cover - the conflicting row vanished (deleted meanwhile)
            raise
        return Resolution(await get_customer(s, existing.customer_id), existing, created=False)
    return Resolution(customer, point, created=True)


async def _same_number(s: AsyncSession, e164: str) -> ContactPoint | None:
    """The oldest contact point of any phone kind (phone, SMS, WhatsApp) with this E.164 number."""
    stmt = (
        select(ContactPoint)
        .where(col(ContactPoint.kind).in_([k.value for k in PHONE_KINDS]), ContactPoint.value == e164)
        .order_by(col(ContactPoint.id))
    )
    return (await s.exec(stmt)).first()


async def link_contact_point(
    s: AsyncSession,
    customer_id: int,
    kind: ContactKind | str,
    raw_address: str,
    verified: bool = True,
    default_region: str = "US",
) -> ContactPoint:
    """Attach an address to a known customer (e.g. the email they gave in chat).

    If the address already belongs to this customer it is returned (marked verified when asked);
    if it belongs to someone else, :class:`ContactPointTaken` is raised: joining two customers is an
    explicit merge, never a side effect.
    """
    kind = ContactKind(kind)
    value = normalize_address(kind, raw_address, default_region)
    customer = await get_customer(s, customer_id)
    assert customer.id is not None
    existing = await find_contact_point(s, kind, value)
    if existing is not None:
        if existing.customer_id != customer.id:
            raise ContactPointTaken(kind, value, existing.customer_id)
        if verified and not existing.verified:
            existing.verified = True
            s.add(existing)
        return existing
    try:
        async with s.begin_nested():
            point = ContactPoint(customer_id=customer.id, kind=kind, value=value, verified=verified)
            s.add(point)
            await s.flush()
    except IntegrityError:
        existing = await find_contact_point(s, kind, value)
        owner = existing.customer_id if existing else -1
        raise ContactPointTaken(kind, value, owner) from None
    return point


@dataclass(frozen=True)
class GivenContact:
    """What became of an address a customer gave: linked now, already theirs, or someone else's."""

    kind: ContactKind
    value: str  # normalised
    point: ContactPoint | None  # the customer's point (None when it belongs to someone else)
    created: bool  # linked just now
    taken_by: int | None = None  # the other customer who has it


async def link_given_contact(
    s: AsyncSession, customer_id: int, kind: ContactKind | str, raw_address: str, default_region: str = "US"
) -> GivenContact:
    """Link an address the customer *told* us (to the bot, with an order, to an agent) as unverified.

    Unlike :func:`link_contact_point` nothing is raised when the address is someone else's: it stays
    theirs and the outcome names them (the caller logs it). For a phone number, the same E.164 number
    on any phone channel (an SMS or WhatsApp sender) counts as taken, so that one number stays one
    customer: a later call, SMS or WhatsApp message from it finds whoever already has it.
    An address already theirs is returned as it is (a verified one stays verified).
    Raises :class:`~crm_store.domain.identity.InvalidAddress` for an address that is not one.
    """
    kind = ContactKind(kind)
    value = normalize_address(kind, raw_address, default_region)
    customer = await get_customer(s, customer_id)
    assert customer.id is not None
    existing = await find_contact_point(s, kind, value)
    if existing is None and kind in PHONE_KINDS:
        sibling = await _same_number(s, value)
        if sibling is not None and (await survivor_id(s, sibling.customer_id)) != customer.id:
            existing = sibling
    if existing is not None:
        owner = await survivor_id(s, existing.customer_id)
        if owner != customer.id:
            return GivenContact(kind, value, None, created=False, taken_by=owner)
        return GivenContact(kind, value, existing, created=False)
    try:
        point = await link_contact_point(s, customer.id, kind, value, verified=False, default_region=default_region)
    except ContactPointTaken as taken:  # linked by someone else just now
        return GivenContact(kind, value, None, created=False, taken_by=taken.owner_id)
    return GivenContact(kind, value, point, created=True)


async def merge_customers(
    s: AsyncSession, source_id: int, target_id: int, actor: str, reason: str = ""
) -> CustomerMerge:
    """Move all of ``source``'s history to ``target`` and leave an audit record.

    Contact points, interactions, conversations and orders move; the source stays as a tombstone
    pointing at the target, so old links still lead somewhere.
    """
    if source_id == target_id:
        raise MergeRefused("cannot merge a customer into itself")
    source = await s.get(Customer, source_id)
    target = await s.get(Customer, target_id)
    if source is None or target is None:
        raise MergeRefused(f"customer {source_id if source is None else target_id} not found")
    if source.merged_into_id is not None:
        raise MergeRefused(f"customer {source_id} was already merged into {source.merged_into_id}")
    if target.merged_into_id is not None:
        raise MergeRefused(f"customer {target_id} was merged into {target.merged_into_id}; merge into that one")
    open_convs = (
        await s.execute(
            select(Conversation.customer_id, Conversation.id, Conversation.channel).where(
                col(Conversation.customer_id).in_([source_id, target_id]), col(Conversation.thread_key).is_(None),
                Conversation.status != "closed",
            )
        )
    ).all()
    for channel in sorted({row[2] for row in open_convs}):
        # one open conversation per customer and channel: the merged one would hold two
        on_it = [row for row in open_convs if row[2] == channel]
        if len({row[0] for row in on_it}) == 2:
            ids = ", ".join(str(row[1]) for row in sorted(on_it, key=lambda r: r[1]))
            noun = "a chat" if channel == "chat" else f"a {channel} conversation"
            raise MergeRefused(f"both customers have {noun} in progress (conversations {ids}): close one, then merge")
    moved: dict[str, Any] = {}
    for table, column in (
        (ContactPoint, ContactPoint.customer_id),
        (Interaction, Interaction.customer_id),
        (Conversation, Conversation.customer_id),
        (Order, Order.customer_id),
    ):
        result = await s.execute(update(table).where(column == source_id).values(customer_id=target_id))
        moved[table.__tablename__] = result.rowcount  # type: ignore[attr-defined]
    # Earlier merges into the source now point at the target too.
    await s.execute(update(Customer).where(Customer.merged_into_id == source_id).values(merged_into_id=target_id))
    source.merged_into_id = target_id
    source.updated_at = utcnow()
    if not target.display_name and source.display_name:
        target.display_name = source.display_name
    target.updated_at = utcnow()
    s.add_all([source, target])
    audit = CustomerMerge(
        source_customer_id=source_id, target_customer_id=target_id, actor=actor, reason=reason, moved=moved
    )
    s.add(audit)
    await s.flush()
    return audit


async def search_customers(
    s: AsyncSession,
    *,
    phone: str | None = None,
    email: str | None = None,
    name: str | None = None,
    default_region: str = "US",
    limit: int = 20,
) -> Sequence[Customer]:
    """Customers matching an exact phone or email (normalised), or whose name contains ``name``."""
    limit = max(1, min(limit, 100))
    if phone or email:
        conditions = []
        if phone:
            value = normalize_address(ContactKind.PHONE, phone, default_region)
            conditions.append(
                (col(ContactPoint.kind).in_(["phone", "sms", "whatsapp"])) & (ContactPoint.value == value)
            )
        if email:
            conditions.append(
                (ContactPoint.kind == "email")
                & (ContactPoint.value == normalize_address(ContactKind.EMAIL, email))
            )
        ids = select(ContactPoint.customer_id).where(or_(*conditions))
        result = await s.exec(
            select(Customer).where(col(Customer.id).in_(ids)).order_by(col(Customer.id)).limit(limit)
        )
        return result.all()
    if name:
        needle = name.strip().lower()
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        result = await s.exec(
            select(Customer)
            .where(
                func.lower(Customer.display_name).like(f"%{escaped}%", escape="\\"),
                col(Customer.merged_into_id).is_(None),
            )
            .order_by(col(Customer.display_name), col(Customer.id))
            .limit(limit)
        )
        return result.all()
    return []


# --- Possible matches (issue 20): an address a customer gave that is on file for someone else -------------

GIVEN_ELSEWHERE = "given_elsewhere"  # the payload key of the timeline note that remembers such an address


async def note_given_elsewhere(
    s: AsyncSession,
    customer_id: int,
    kind: ContactKind | str,
    value: str,
    owner_id: int,
    *,
    channel: str,
    source: str = "",
    agent_id: int | None = None,
    conversation_id: int | None = None,
) -> Interaction | None:
    """Remember on the customer's timeline that they gave an address (normalised ``value``) which is another
    customer's (``owner_id``): what :func:`possible_matches` reads. Nothing is linked or moved (joining two
    customers is an explicit merge). Once per customer, address and owner; None when already noted.
    """
    kind = ContactKind(kind).value
    survivor = await survivor_id(s, customer_id)
    for earlier in await _given_elsewhere_notes(s, survivor):
        seen = earlier.payload.get(GIVEN_ELSEWHERE) or {}
        if seen.get("kind") == kind and seen.get("value") == value and seen.get("owner_id") == owner_id:
            return None
    noun = "Phone" if kind in {k.value for k in PHONE_KINDS} else "Email"
    where = f" {source}" if source else ""
    note = Interaction(
        customer_id=survivor, kind="identity", channel=channel[:16], agent_id=agent_id, conversation_id=conversation_id,
        summary=f"{noun} {value} given{where}: on file for another customer (#{owner_id}), a possible match"[:500],
        payload={GIVEN_ELSEWHERE: {"kind": kind, "value": value, "owner_id": owner_id}},
    )
    s.add(note)
    await s.flush()
    return note


async def _given_elsewhere_notes(s: AsyncSession, customer_id: int, limit: int = 200) -> list[Interaction]:
    rows = (await s.exec(
        select(Interaction).where(Interaction.customer_id == customer_id, Interaction.kind == "identity")
        .order_by(col(Interaction.id).desc()).limit(limit)
    )).all()
    return [r for r in rows if isinstance(r.payload, dict) and isinstance(r.payload.get(GIVEN_ELSEWHERE), dict)]


@dataclass(frozen=True)
class PossibleMatch:
    """Another customer record that may be the same person, and why: the addresses both have."""

    id: int
    display_name: str
    orders: int
    via: tuple[tuple[str, str], ...]  # (kind, value)


async def possible_matches(s: AsyncSession, customer_id: int, limit: int = 5) -> list[PossibleMatch]:
    """Other (not merged-away) customers who may be this one: an address this customer gave that is on file for
    them (:func:`note_given_elsewhere`), or a phone number both have on different channels (an SMS number here,
    the same number as WhatsApp there). Never by name. Most orders first, at most ``limit``.
    Raises :class:`CustomerNotFound`.
    """
    me = await survivor_id(s, customer_id)
    via: dict[int, list[tuple[str, str]]] = {}

    async def add(owner: int, kind: str, value: str) -> None:
        try:
            other = await survivor_id(s, owner)
        except CustomerNotFound:
            return
        if other != me and (kind, value) not in via.setdefault(other, []):
            via[other].append((kind, value))

    for note in await _given_elsewhere_notes(s, me):
        given = note.payload[GIVEN_ELSEWHERE]
        # still theirs? (a merge or a move since may have changed it)
        kinds = [k.value for k in PHONE_KINDS] if given.get("kind") in {k.value for k in PHONE_KINDS} else [given.get("kind")]
        holders = (await s.exec(
            select(ContactPoint.customer_id).where(col(ContactPoint.kind).in_(kinds), ContactPoint.value == given.get("value"))
        )).all()
        for holder in holders:
            await add(int(holder), str(given.get("kind")), str(given.get("value")))
    phone_kinds = [k.value for k in PHONE_KINDS]
    mine = (await s.exec(
        select(ContactPoint.value).where(ContactPoint.customer_id == me, col(ContactPoint.kind).in_(phone_kinds))
    )).all()
    if mine:
        others = (await s.exec(
            select(ContactPoint.customer_id, ContactPoint.kind, ContactPoint.value).where(
                col(ContactPoint.kind).in_(phone_kinds), col(ContactPoint.value).in_(list(set(mine))), ContactPoint.customer_id != me)
        )).all()
        for owner, kind, value in others:
            await add(int(owner), str(kind), str(value))
    via = {k: v for k, v in via.items() if v}
    if not via:
        return []
    people = (await s.exec(select(Customer).where(col(Customer.id).in_(list(via)), col(Customer.merged_into_id).is_(None)))).all()
    counts = {int(r[0]): int(r[1]) for r in (await s.execute(
        sa_select(col(Order.customer_id), func.count()).where(col(Order.customer_id).in_(list(via))).group_by(col(Order.customer_id))
    )).all()}
    found = [
        PossibleMatch(int(p.id), p.display_name or "", counts.get(int(p.id), 0), tuple(via[int(p.id)]))  # type: ignore[arg-type]
        for p in people
    ]
    found.sort(key=lambda m: (-m.orders, m.id))
    return found[:limit]
