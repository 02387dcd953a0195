"""The conversation repository port on SQL (SQLModel through ``crm_store``): every write one transaction.

The use cases (``contact_center/usecases``) never open a session; they call this. A message into an
open conversation goes through the message log (``crm_store/message_log.py``: group commit on SQLite,
one statement on PostgreSQL); a returning visitor is found by a point read (``crm_store/point_reads.py``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Sequence

from sqlalchemy import JSON, Boolean
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers
from sqlmodel import col, select

from contact_center.domain.channels import delivery_status, moves_forward
from contact_center.domain.conversations import InboundPlan, successor_key
from contact_center.ports import (
    DeliveryReport,
    FastAppend,
    InboundPlanRequest,
    InboundStored,
    Moved,
    NewMessage,
    TimelineNote,
    Transition,
)
from crm_store.db import Database
from crm_store.domain.identity import PHONE_KINDS, ContactKind, InvalidAddress, normalize_address
from crm_store.message_log import MessageLog, SessionMessageLog, SqliteMessageLog
from crm_store.domain.interactions import InteractionKind
from crm_store.models import (
    Agent, ContactPoint, Conversation, Customer, Interaction, Message, Queue, UTCDateTime, WebhookReceipt, utcnow,
)
from crm_store.point_reads import CustomerRef, PointReads
from crm_store.repositories import conversations as conv_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import receipts as receipts_repo
from crm_store.repositories import stats as stats_repo
from crm_store.repositories.interactions import record_interaction

log = logging.getLogger("contact_center.hub")


class SqlConversations:
    """:class:`contact_center.ports.ConversationRepository` on the contact repository's database."""

    def __init__(self, db: Database, messages: MessageLog | None = None, reads: PointReads | None = None) -> None:
        self.db = db
        self.log: MessageLog = messages if messages is not None else SessionMessageLog(db)
        self.reads = reads if reads is not None else PointReads(db)

    def _read(self, work: Callable[[sqlite3.Connection], tuple[Any, ...]]) -> tuple[Any, ...] | None:
        """SQLite: a point read done now on the message log's connection (None: read through a session)."""
        if not isinstance(self.log, SqliteMessageLog):
            return None
        try:
            return self.log.read(work)  # type: ignore[no-any-return]
        except sqlite3.OperationalError:
            return None

    # --- reads ---------------------------------------------------------------------------------

    async def queues(self) -> Sequence[Queue]:
        async with self.db.session() as s:
            return (await s.exec(select(Queue).order_by(col(Queue.id)))).all()

    async def conversation(self, conversation_id: int) -> Conversation | None:
        fast = self._read(lambda conn: (_one(conn, Conversation, "id = ?", (conversation_id,)),))
        if fast is not None:
            return fast[0]  # type: ignore[no-any-return]
        async with self.db.session() as s:
            return await s.get(Conversation, conversation_id)

    async def conversations(self, ids: Sequence[int]) -> Sequence[Conversation]:
        if not ids:
            return []
        async with self.db.session() as s:
            return (await s.exec(select(Conversation).where(col(Conversation.id).in_(list(ids))))).all()

    async def conversations_with_customers(self, status: str) -> Sequence[tuple[Conversation, Customer]]:
        async with self.db.session() as s:
            return (
                await s.exec(
                    select(Conversation, Customer)
                    .join(Customer, col(Customer.id) == col(Conversation.customer_id))
                    .where(Conversation.status == status)
                )
            ).all()

    async def open_conversation(self, customer_id: int, channel: str) -> Conversation | None:
        async with self.db.session() as s:
            return await conv_repo.find_open_conversation(s, customer_id, channel)

    async def thread(self, channel: str, thread_key: str) -> Conversation | None:
        fast = self._read(lambda conn: (_one(conn, Conversation, "channel = ? AND thread_key = ? LIMIT 1", (channel, thread_key)),))
        if fast is not None:  # SQLite: a point read (a call's every webhook asks it)
            return fast[0]  # type: ignore[no-any-return]
        async with self.db.session() as s:
            return await conv_repo.find_thread(s, channel, thread_key)

    async def with_customer(self, conversation_id: int) -> tuple[Conversation, Customer] | None:
        def read(conn: sqlite3.Connection) -> tuple[Any, Any]:
            conv = _one(conn, Conversation, "id = ?", (conversation_id,))
            return conv, (_one(conn, Customer, "id = ?", (conv.customer_id,)) if conv is not None else None)

        fast = self._read(read)
        if fast is not None:
            return (fast[0], fast[1]) if fast[0] is not None and fast[1] is not None else None
        async with self.db.session() as s:
            conv = await s.get(Conversation, conversation_id)
            customer = await s.get(Customer, conv.customer_id) if conv else None
        return (conv, customer) if conv is not None and customer is not None else None

    async def assigned_to(self, agent_id: int) -> list[tuple[Conversation, Customer]]:
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(Conversation, Customer)
                    .join(Customer, col(Customer.id) == col(Conversation.customer_id))
                    .where(Conversation.assigned_agent_id == agent_id, Conversation.status == "assigned")
                    .order_by(col(Conversation.id))
                )
            ).all()
        return [(c, cu) for c, cu in rows]

    async def customers_served_by(self, agent_id: int) -> set[int]:
        async with self.db.session() as s:
            rows = (await s.exec(
                select(Conversation.customer_id).where(Conversation.assigned_agent_id == agent_id).distinct()
            )).all()
        return {int(r) for r in rows if r is not None}

    async def agent(self, agent_id: int) -> Agent | None:
        fast = self._read(lambda conn: (_one(conn, Agent, "id = ?", (agent_id,)),))
        if fast is not None:
            return fast[0]  # type: ignore[no-any-return]
        async with self.db.session() as s:
            return await s.get(Agent, agent_id)

    async def agents(self, ids: Sequence[int]) -> Sequence[Agent]:
        if not ids:
            return []
        async with self.db.session() as s:
            return (await s.exec(select(Agent).where(col(Agent.id).in_(list(ids))))).all()

    async def last_agent_states(self, ids: Sequence[int]) -> dict[int, str]:
        return await stats_repo.open_agent_states(self.db, list(ids))

    async def customer_by_address(self, kind: str, value: str) -> CustomerRef | None:
        return await self.reads.customer_by_contact(ContactKind(kind), value)

    async def contact_point(self, kind: str, value: str) -> Any:
        fast = self._read(lambda conn: (_one(conn, ContactPoint, "kind = ? AND value = ? LIMIT 1", (kind, value)),))
        if fast is not None:
            return fast[0]
        async with self.db.session() as s:
            return await customers_repo.find_contact_point(s, kind, value)

    async def history(self, conversation_id: int, after_seq: int, *, include_internal: bool) -> list[tuple[Message, str]]:
        def read(conn: sqlite3.Connection) -> list[tuple[Message, str]]:  # as conv_repo.messages_after (500 at most)
            msgs = _all(conn, Message, "conversation_id = ? AND seq > ?" + ("" if include_internal else " AND internal = 0")
                        + " ORDER BY seq LIMIT 500", (conversation_id, max(0, after_seq)))
            ids = sorted({int(m.sender_id) for m in msgs if m.sender_kind == "agent" and m.sender_id and m.sender_id.isdigit()})
            agents = _all(conn, Agent, f"id IN ({', '.join('?' * len(ids))})", tuple(ids)) if ids else []
            names = {str(a.id): a.display_name for a in agents}
            return [(m, names.get(m.sender_id or "", "")) for m in msgs]

        fast = self._read(lambda conn: (read(conn),))
        if fast is not None:
            return fast[0]  # type: ignore[no-any-return]
        async with self.db.session() as s:
            msgs = await conv_repo.messages_after(s, conversation_id, max(0, after_seq), include_internal=include_internal)
            ids = {int(m.sender_id) for m in msgs if m.sender_kind == "agent" and m.sender_id and m.sender_id.isdigit()}
            agents = (await s.exec(select(Agent).where(col(Agent.id).in_(ids)))).all() if ids else []
        names = {str(a.id): a.display_name for a in agents}
        return [(m, names.get(m.sender_id or "", "")) for m in msgs]

    async def messages(self, conversation_id: int, after_seq: int, *, include_internal: bool, limit: int | None = None) -> Sequence[Message]:
        n = max(1, min(limit or 500, 1000))  # as conv_repo.messages_after
        fast = self._read(lambda conn: (_all(conn, Message, "conversation_id = ? AND seq > ?" + ("" if include_internal else " AND internal = 0")
                                             + f" ORDER BY seq LIMIT {n}", (conversation_id, after_seq)),))
        if fast is not None:
            return fast[0]  # type: ignore[no-any-return]
        async with self.db.session() as s:
            return await conv_repo.messages_after(s, conversation_id, after_seq, include_internal=include_internal, **({"limit": limit} if limit else {}))

    async def message_at(self, conversation_id: int, seq: int) -> Message | None:
        fast = self._read(lambda conn: (_one(conn, Message, "conversation_id = ? AND seq = ? LIMIT 1", (conversation_id, seq)),))
        if fast is not None:
            return fast[0]  # type: ignore[no-any-return]
        async with self.db.session() as s:
            return await conv_repo.message_at(s, conversation_id, seq)

    async def last_customer_message_at(self, conversation_id: int) -> Any:
        async with self.db.session() as s:
            return await conv_repo.last_customer_message_at(s, conversation_id)

    # --- writes --------------------------------------------------------------------------------

    async def record_agent_state(self, agent_id: int, state: str) -> None:
        await stats_repo.record_agent_state(self.db, agent_id, state)

    async def new_customer(self, display_name: str) -> int:
        async with self.db.transaction() as s:
            customer = Customer(display_name=display_name.strip()[:200])
            s.add(customer)
            await s.flush()
            assert customer.id is not None
            return customer.id

    async def resolve_customer(self, kind: str, address: str, *, display_name: str, region: str, verified: bool) -> tuple[int, str]:
        if isinstance(self.log, SqliteMessageLog):  # SQLite: plain statements in the log's group commit (a new caller's opening)
            value = normalize_address(ContactKind(kind), address, region)  # InvalidAddress before anything is queued
            found: tuple[int, str] = await self.log.run(lambda conn: _resolve_sqlite(conn, ContactKind(kind), value, display_name, verified))
            return found
        async with self.db.transaction() as s:
            res = await customers_repo.resolve_identity(
                s, kind, address, display_name=display_name, default_region=region, verified=verified,
            )
            if display_name and not res.customer.display_name:
                res.customer.display_name = display_name.strip()[:200]
                s.add(res.customer)
            assert res.customer.id is not None
            return res.customer.id, res.contact_point.value

    async def identify_visitor(self, kind: str, visitor_id: str, name: str, email: str) -> Customer:
        async with self.db.transaction() as s:
            res = await customers_repo.resolve_identity(s, kind, visitor_id, display_name=name[:200])
            customer = res.customer
            assert customer.id is not None
            if name and not customer.display_name:
                customer.display_name = name.strip()[:200]
                s.add(customer)
            if email:
                try:
                    await customers_repo.link_contact_point(s, customer.id, ContactKind.EMAIL, email, verified=False)
                except customers_repo.ContactPointTaken as taken:  # the 360 shows its owner as a possible match
                    log.info("given email not linked", extra={"customer_id": customer.id, "reason": str(taken)})
                    await customers_repo.note_given_elsewhere(
                        s, customer.id, ContactKind.EMAIL, taken.value, taken.owner_id, channel="chat", source="in the chat",
                    )
                except InvalidAddress as exc:
                    log.info("given email not linked", extra={"customer_id": customer.id, "reason": str(exc)})
        return customer

    async def store_inbound(self, req: InboundPlanRequest) -> InboundStored:
        writer = self.log if isinstance(self.log, SqliteMessageLog) else None
        for attempt in range(3):  # a unique index lost a race with another process: look again
            try:
                if writer is not None:  # SQLite: one synchronous transaction in the log's group commit
                    stored: InboundStored = await writer.run(lambda conn: _store_inbound_sqlite(conn, req))
                    return stored
                return await self._store_inbound(req)
            except (IntegrityError, sqlite3.IntegrityError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _store_inbound(self, req: InboundPlanRequest) -> InboundStored:
        async with self.db.transaction() as s:
            customer = await customers_repo.get_customer(s, req.customer_id)
            if req.provider_id:  # a repeat, even of a message whose conversation has closed since: nothing new
                earlier = await conv_repo.message_by_provider_id(s, req.provider_id)
                first = await s.get(Conversation, earlier.conversation_id) if earlier is not None else None
                if earlier is not None and first is not None:
                    return InboundStored(first, earlier, False, False, customer)
            closed_age: float | None = None
            if req.thread_key is None:
                conv = await conv_repo.find_open_conversation(s, req.customer_id, req.channel)
            else:
                conv = await conv_repo.find_thread(s, req.channel, req.thread_key)
                for _ in range(50):  # a closed thread continued by a newer conversation: follow the chain
                    if conv is None or conv.status != "closed":
                        break
                    after = await conv_repo.find_thread(s, req.channel, successor_key(conv.thread_key or "", conv.id or 0))
                    if after is None:
                        break
                    conv = after
                if conv is not None and conv.status == "closed" and conv.closed_at is not None:
                    closed_age = (utcnow() - conv.closed_at).total_seconds()
            plan = req.decide(conv.status if conv is not None else None, closed_age)
            assert isinstance(plan, InboundPlan)
            before = conv
            if plan.reopen and conv is not None:  # a new message in a finished thread reopens it
                conv.status, conv.closed_at, conv.disposition, conv.assigned_agent_id = plan.status or "queued", None, None, None
                conv.queued_at = utcnow()
                s.add(conv)
            if plan.open_new:
                key = req.thread_key
                if plan.successor and before is not None and before.id is not None:
                    key = successor_key(before.thread_key or req.thread_key or "", before.id)
                conv = await conv_repo.open_conversation(
                    s, req.customer_id, req.channel, subject=req.subject, queue_id=req.queue_id, thread_key=key,
                    customer_address=req.customer_address, our_address=req.our_address,
                )
                conv.priority, conv.queue_since, conv.pinned_agent_id = req.priority, req.queue_since, req.pinned_agent
                conv.status = plan.status or "queued"
                if conv.status == "queued":
                    conv.queued_at = utcnow()  # with the bot, queued_at is set when it hands over
                elif conv.status == "closed":
                    conv.closed_at, conv.disposition = utcnow(), plan.disposition
                s.add(conv)
                note = req.opened_note(conv.status)
                if plan.successor and before is not None:
                    note = replace(note, summary=f"{note.summary} (continues conversation {before.id})",
                                   data={**note.data, "continues": before.id})
                await _record(s, req.customer_id, conv.id, note)
            elif req.our_address and conv is not None and conv.status != "closed" and conv.our_address != req.our_address:
                conv.our_address = req.our_address  # replies go from the number the customer last wrote to
                s.add(conv)
            assert conv is not None and conv.id is not None
            appended = await conv_repo.append_message(
                s, conv.id, req.sender_kind, req.text, sender_id=str(req.customer_id) if req.sender_kind == "customer" else None,
                client_msg_id=req.client_id,
                provider_id=req.provider_id, attachments=req.attachments,  # type: ignore[arg-type]
            )
        return InboundStored(conv, appended.message, appended.created, plan.open_new or plan.reopen, customer, plan.reopen)

    async def append_fast(
        self, conversation_id: int, sender_kind: str, text: str, *, sender_id: str, client_msg_id: str | None,
        provider_id: str | None = None, attachments: list[dict[str, object]] | None = None,
    ) -> FastAppend | None:
        logged = await self.log.append(
            conversation_id, sender_kind, text, sender_id=sender_id, client_msg_id=client_msg_id,
            **({"provider_id": provider_id} if provider_id else {}), **({"attachments": attachments} if attachments else {}),
        )
        if logged is None:
            return None
        return FastAppend(logged.message, logged.created, logged.status, logged.assigned_agent_id)

    async def append(
        self, conversation_id: int, msg: NewMessage, *, client_msg_id: str | None = None, delivery_status: str | None = None,
        note: TimelineNote | None = None,
    ) -> tuple[Message, bool]:
        if isinstance(self.log, SqliteMessageLog):  # SQLite: in the log's group commit (a bot's reply, a system note)
            done: tuple[Message, bool] = await self.log.run(
                lambda conn: _append_message_sqlite(conn, conversation_id, msg, client_msg_id, delivery_status, note))
            return done
        async with self.db.transaction() as s:
            appended = await conv_repo.append_message(
                s, conversation_id, msg.sender_kind, msg.text, sender_id=msg.sender_id, client_msg_id=client_msg_id,
                internal=msg.internal, attachments=msg.attachments or None, delivery_status=delivery_status,  # type: ignore[arg-type]
            )
            if appended.created and note is not None:
                conv = await s.get(Conversation, conversation_id)
                assert conv is not None
                await _record(s, conv.customer_id, conversation_id, note)
        return appended.message, appended.created

    async def move(
        self, conversation_id: int, t: Transition, *, message: NewMessage | None = None, note: TimelineNote | None = None
    ) -> Moved | None:
        if isinstance(self.log, SqliteMessageLog):  # one synchronous transaction in the log's group commit
            moved: Moved | None = await self.log.run(lambda conn: _move_sqlite(conn, conversation_id, t, message, note))
            return moved
        async with self.db.transaction() as s:
            conv = await s.get(Conversation, conversation_id)
            if conv is None or not t.allows(conv):
                return None
            t.apply_to(conv, utcnow())
            s.add(conv)
            customer = await customers_repo.get_customer(s, conv.customer_id)
            stored = None
            if message is not None:
                stored = (await conv_repo.append_message(
                    s, conversation_id, message.sender_kind, message.text, sender_id=message.sender_id,
                    internal=message.internal, attachments=message.attachments,  # type: ignore[arg-type]
                )).message
            if note is not None:
                await _record(s, conv.customer_id, conversation_id, note)
        return Moved(conv, customer, stored)

    async def record(self, customer_id: int, conversation_id: int | None, note: TimelineNote) -> None:
        async with self.db.transaction() as s:
            await _record(s, customer_id, conversation_id, note)

    async def record_sent(
        self, conversation_id: int, seq: int, report: DeliveryReport
    ) -> tuple[str | None, list[tuple[str, str | None, str | None]]] | None:
        if isinstance(self.log, SqliteMessageLog):  # SQLite: in the log's group commit (every reply an adapter took)
            sent: tuple[str | None, list[tuple[str, str | None, str | None]]] | None = await self.log.run(
                lambda conn: _record_sent_sqlite(conn, conversation_id, seq, report))
            return sent
        async with self.db.transaction() as s:
            msg = await conv_repo.message_at(s, conversation_id, seq)
            if msg is None:
                return None
            _apply_report(msg, report)
            s.add(msg)
            early = await receipts_repo.statuses_for(s, msg.provider_id) if msg.provider_id else []
            return msg.provider_id, list(early)

    async def update_delivery(
        self, provider_id: str, status: str, error_code: str | None, error_message: str | None
    ) -> tuple[int, int] | None:
        new = delivery_status(status)
        if new is None:
            return None
        if isinstance(self.log, SqliteMessageLog):  # SQLite: in the log's group commit (a spoken or delivered reply)
            moved: tuple[int, int] | None = await self.log.run(
                lambda conn: _update_delivery_sqlite(conn, provider_id, new, error_code, error_message))
            return moved
        async with self.db.transaction() as s:
            msg = await conv_repo.message_by_provider_id(s, provider_id)
            if msg is None or msg.sender_kind == "customer" or not moves_forward(msg.delivery_status, new):
                return None
            _move_delivery(msg, new, error_code, error_message)
            s.add(msg)
            return msg.conversation_id, msg.seq

    async def set_undeliverable(self, kind: str, address: str, *, reason: str, note: Callable[[str], TimelineNote]) -> bool:
        async with self.db.transaction() as s:
            point = await customers_repo.find_contact_point(s, kind, address)
            if point is None:
                return False
            point.undeliverable_at, point.undeliverable_reason = utcnow(), reason[:300]
            s.add(point)
            await _record(s, point.customer_id, None, note(point.value))
            return True

    async def set_opt_out(
        self, kind: str, address: str, *, region: str, opted_out: bool, note: Callable[[str], TimelineNote]
    ) -> None:
        async with self.db.transaction() as s:
            res = await customers_repo.resolve_identity(s, kind, address, default_region=region, verified=True)
            point = res.contact_point
            point.opted_out_at = utcnow() if opted_out else None
            s.add(point)
            assert res.customer.id is not None
            await _record(s, res.customer.id, None, note(point.value))


async def _record(s: Any, customer_id: int, conversation_id: int | None, note: TimelineNote) -> None:
    """An interaction on the customer's timeline, in the caller's transaction."""
    await record_interaction(
        s, customer_id, note.kind, note.channel, note.summary, dict(note.data), agent_id=note.agent_id, conversation_id=conversation_id,
    )


# --- SQLite: the inbound store as one synchronous transaction (the message log's group commit) ---------------
#
# The ORM path above holds SQLite's single write lock across a dozen awaits (each statement a hop to
# aiosqlite's thread and back through a busy event loop); the same work as plain statements on the log's
# connection holds it for well under a millisecond and shares the commit with the other writes of the moment.
# Same reads, same writes, same rows and objects returned as ``_store_inbound``.

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's DATETIME format on SQLite (UTC, no zone)
_MAPPERS_READY = False
_CONV_COLUMNS: Any = Conversation.__table__.c  # type: ignore[attr-defined]
_INSERTS: dict[type, tuple[str, list[Any]]] = {}


def _to_db(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return value.astimezone(timezone.utc).strftime(_SQLITE_TIME) if value.tzinfo else value.strftime(_SQLITE_TIME)
    if isinstance(column.type, JSON):
        return json.dumps(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


def _from_db(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc) if isinstance(value, str) else value
    if isinstance(column.type, JSON):
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    if isinstance(column.type, Boolean):
        return bool(value)
    return value


def _one(conn: sqlite3.Connection, model: Any, where: str, params: tuple[Any, ...]) -> Any:
    """The first row of ``SELECT * FROM <model's table> WHERE <where>`` as a (detached) model object, or None."""
    table = model.__table__
    cur = conn.execute(f"SELECT * FROM {table.name} WHERE {where}", params)
    row = cur.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cur.description]
    return _loaded(model, {n: _from_db(table.c[n], v) for n, v in zip(names, row)})


def _all(conn: sqlite3.Connection, model: Any, where: str, params: tuple[Any, ...]) -> list[Any]:
    """Every row of ``SELECT * FROM <model's table> WHERE <where>`` as (detached) model objects."""
    table = model.__table__
    cur = conn.execute(f"SELECT * FROM {table.name} WHERE {where}", params)
    names = [d[0] for d in cur.description]
    columns = [table.c[n] for n in names]
    return [_loaded(model, {c.name: _from_db(c, v) for c, v in zip(columns, row)}) for row in cur.fetchall()]


def _loaded(model: Any, values: dict[str, Any]) -> Any:
    """A model object from a row, made as the ORM makes the objects it loads (the class's instance with its
    column values, no __init__: the validation and defaults of a new object cost more than the read itself)."""
    global _MAPPERS_READY
    if not _MAPPERS_READY:  # the ORM does this before its first load
        configure_mappers()
        _MAPPERS_READY = True
    obj = model._sa_class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


def _customer(conn: sqlite3.Connection, customer_id: int) -> Customer:
    """customers_repo.get_customer: a merged-away customer leads to the one it was merged into."""
    customer = _one(conn, Customer, "id = ?", (customer_id,))
    hops = 0
    while customer is not None and customer.merged_into_id is not None and hops < 10:
        customer = _one(conn, Customer, "id = ?", (customer.merged_into_id,))
        hops += 1
    if customer is None:
        raise customers_repo.CustomerNotFound(customer_id)
    return customer  # type: ignore[no-any-return]


def _record_sqlite(conn: sqlite3.Connection, customer_id: int, conversation_id: int | None, note: TimelineNote) -> None:
    """``_record`` (record_interaction) on the log's connection."""
    _insert(conn, Interaction(
        customer_id=customer_id, kind=InteractionKind(note.kind), channel=note.channel, summary=note.summary[:500],
        payload=dict(note.data) or {}, agent_id=note.agent_id, conversation_id=conversation_id, occurred_at=utcnow(),
    ))


def _append_sqlite(conn: sqlite3.Connection, conv: Conversation, msg: Message) -> Message:
    """conv_repo.append_message of a message with no client or provider id: the next seq, then the row."""
    now = utcnow()
    bumped = conn.execute("UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq",
                          (_to_db(_CONV_COLUMNS.updated_at, now), conv.id)).fetchone()
    if bumped is None:
        raise conv_repo.ConversationNotFound(f"conversation {conv.id} not found")
    conv.last_seq, conv.updated_at = int(bumped[0]), now
    msg.seq = conv.last_seq
    _insert(conn, msg)
    return msg


_CONV_UPDATE = [c for c in Conversation.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
_CONV_UPDATE_SQL = "UPDATE conversations SET " + ", ".join(f'"{c.name}" = ?' for c in _CONV_UPDATE) + " WHERE id = ?"


def _move_sqlite(conn: sqlite3.Connection, conversation_id: int, t: Transition, message: NewMessage | None,
                 note: TimelineNote | None) -> Moved | None:
    """``SqlConversations.move`` on the log's connection, inside its transaction."""
    conv = _one(conn, Conversation, "id = ?", (conversation_id,))
    if conv is None or not t.allows(conv):
        return None
    t.apply_to(conv, utcnow())
    conn.execute(_CONV_UPDATE_SQL, [_to_db(c, getattr(conv, c.name)) for c in _CONV_UPDATE] + [conv.id])
    customer = _customer(conn, conv.customer_id)
    stored = None
    if message is not None:
        stored = _append_sqlite(conn, conv, Message(
            conversation_id=conversation_id, seq=0, sender_kind=message.sender_kind, sender_id=message.sender_id,
            body=message.text, attachments=message.attachments or [], internal=message.internal,
        ))
    if note is not None:
        _record_sqlite(conn, conv.customer_id, conversation_id, note)
    return Moved(conv, customer, stored)


def _insert(conn: sqlite3.Connection, obj: Any) -> None:
    """INSERT every column of a new model object but its id, which is set from the row."""
    model = type(obj)
    found = _INSERTS.get(model)
    if found is None:
        columns = [c for c in model.__table__.columns if c.name != "id"]
        sql = (f"INSERT INTO {model.__table__.name} (" + ", ".join(f'"{c.name}"' for c in columns) + ") VALUES ("
               + ", ".join("?" * len(columns)) + ") RETURNING id")
        found = _INSERTS[model] = (sql, columns)
    sql, columns = found
    obj.id = int(conn.execute(sql, [_to_db(c, getattr(obj, c.name)) for c in columns]).fetchone()[0])


def _append_message_sqlite(conn: sqlite3.Connection, conversation_id: int, msg: NewMessage, client_msg_id: str | None,
                           delivery_status: str | None, note: TimelineNote | None) -> tuple[Message, bool]:
    """``SqlConversations.append`` (conv_repo.append_message, then the note) on the log's connection."""
    if client_msg_id:  # a resend returns the first copy
        earlier = _one(conn, Message, "conversation_id = ? AND client_msg_id = ? LIMIT 1", (conversation_id, client_msg_id))
        if earlier is not None:
            return earlier, False
    bumped = conn.execute("UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq, customer_id",
                          (_to_db(_CONV_COLUMNS.updated_at, utcnow()), conversation_id)).fetchone()
    if bumped is None:
        raise conv_repo.ConversationNotFound(f"conversation {conversation_id} not found")
    stored = Message(
        conversation_id=conversation_id, seq=int(bumped[0]), sender_kind=msg.sender_kind, sender_id=msg.sender_id, body=msg.text,
        client_msg_id=client_msg_id, provider_id=None, attachments=msg.attachments or [], internal=msg.internal,
        delivery_status=delivery_status,
    )
    _insert(conn, stored)
    if note is not None:
        _record_sqlite(conn, int(bumped[1]), conversation_id, note)
    return stored, True


def _move_delivery(msg: Message, new: Any, error_code: str | None, error_message: str | None) -> None:
    """A message's delivery status moving forward to ``new``, with the provider's error (cut to the columns)."""
    msg.delivery_status = new.value
    if error_code or error_message:
        msg.delivery_error_code = (error_code or "")[:20] or None
        msg.delivery_error = (error_message or "")[:300] or None


def _apply_report(msg: Message, report: DeliveryReport) -> None:
    """What an adapter's report says of a message it took: its provider id (if it had none), and its delivery
    status where that moves forward. The same on both paths of ``record_sent`` (ORM and SQLite's log)."""
    if report.provider_id and not msg.provider_id:
        msg.provider_id = report.provider_id[:100]
    status = delivery_status(report.status)
    if status is not None and moves_forward(msg.delivery_status, status):
        _move_delivery(msg, status, report.error_code, report.error_message)


def _set_delivery(conn: sqlite3.Connection, msg: Message) -> None:
    conn.execute("UPDATE messages SET provider_id = ?, delivery_status = ?, delivery_error_code = ?, delivery_error = ? WHERE id = ?",
                 (msg.provider_id, msg.delivery_status, msg.delivery_error_code, msg.delivery_error, msg.id))


def _record_sent_sqlite(conn: sqlite3.Connection, conversation_id: int, seq: int,
                        report: DeliveryReport) -> tuple[str | None, list[tuple[str, str | None, str | None]]] | None:
    """``SqlConversations.record_sent`` on the log's connection (receipts_repo.statuses_for as a plain read)."""
    msg = _one(conn, Message, "conversation_id = ? AND seq = ? LIMIT 1", (conversation_id, seq))
    if msg is None:
        return None
    _apply_report(msg, report)
    _set_delivery(conn, msg)
    early: list[tuple[str, str | None, str | None]] = []
    if msg.provider_id:  # as receipts_repo.statuses_for: the status callbacks that came before the id was known
        for r in _all(conn, WebhookReceipt, "kind = ? AND key LIKE ? || '%' ORDER BY id", (receipts_repo.STATUS_KIND, f"{msg.provider_id}:")):
            p = r.payload or {}
            found = p.get("MessageStatus") or p.get("status")
            if isinstance(found, str):
                early.append((found, p.get("ErrorCode") or None, p.get("ErrorWords") or p.get("ErrorMessage") or None))
    return msg.provider_id, early


def _update_delivery_sqlite(conn: sqlite3.Connection, provider_id: str, new: Any, error_code: str | None,
                            error_message: str | None) -> tuple[int, int] | None:
    """``SqlConversations.update_delivery`` on the log's connection."""
    msg = _one(conn, Message, "provider_id = ? LIMIT 1", (provider_id,))
    if msg is None or msg.sender_kind == "customer" or not moves_forward(msg.delivery_status, new):
        return None
    _move_delivery(msg, new, error_code, error_message)
    _set_delivery(conn, msg)
    return msg.conversation_id, msg.seq


def _resolve_sqlite(conn: sqlite3.Connection, kind: ContactKind, value: str, display_name: str, verified: bool) -> tuple[int, str]:
    """``SqlConversations.resolve_customer`` (customers_repo.resolve_identity, then the name) on the log's connection,
    inside its transaction (the write lock is held: nobody links the address meanwhile). ``value`` is normalised."""
    name = display_name.strip()[:200]
    existing = _one(conn, ContactPoint, "kind = ? AND value = ? LIMIT 1", (kind.value, value))
    if existing is not None:
        customer = _customer(conn, existing.customer_id)
    else:
        sibling = None
        if kind in PHONE_KINDS:  # one number, one customer: the oldest point of any phone kind with this number
            marks = ", ".join("?" * len(PHONE_KINDS))
            sibling = _one(conn, ContactPoint, f"kind IN ({marks}) AND value = ? ORDER BY id LIMIT 1",
                           (*(k.value for k in PHONE_KINDS), value))
        if sibling is not None:
            customer = _customer(conn, sibling.customer_id)
        else:
            customer = Customer(display_name=name)
            _insert(conn, customer)
        assert customer.id is not None
        _insert(conn, ContactPoint(customer_id=customer.id, kind=kind, value=value, verified=verified))
    assert customer.id is not None
    if name and not customer.display_name:
        conn.execute("UPDATE customers SET display_name = ? WHERE id = ?", (name, customer.id))
    return customer.id, value


def _store_inbound_sqlite(conn: sqlite3.Connection, req: InboundPlanRequest) -> InboundStored:
    """``SqlConversations._store_inbound`` on the log's connection, inside its transaction."""
    customer = _customer(conn, req.customer_id)
    earlier = None
    if req.provider_id:  # a repeat, even of a message whose conversation has closed since: nothing new
        earlier = _one(conn, Message, "provider_id = ?", (req.provider_id,))
        first = _one(conn, Conversation, "id = ?", (earlier.conversation_id,)) if earlier is not None else None
        if earlier is not None and first is not None:
            return InboundStored(first, earlier, False, False, customer)
    closed_age: float | None = None
    if req.thread_key is None:
        conv = _one(conn, Conversation, "customer_id = ? AND channel = ? AND status != 'closed' ORDER BY id DESC LIMIT 1",
                    (req.customer_id, req.channel))
    else:
        conv = _one(conn, Conversation, "channel = ? AND thread_key = ? LIMIT 1", (req.channel, req.thread_key))
        for _ in range(50):  # a closed thread continued by a newer conversation: follow the chain
            if conv is None or conv.status != "closed":
                break
            after = _one(conn, Conversation, "channel = ? AND thread_key = ? LIMIT 1",
                         (req.channel, successor_key(conv.thread_key or "", conv.id or 0)))
            if after is None:
                break
            conv = after
        if conv is not None and conv.status == "closed" and conv.closed_at is not None:
            closed_age = (utcnow() - conv.closed_at).total_seconds()
    plan = req.decide(conv.status if conv is not None else None, closed_age)
    assert isinstance(plan, InboundPlan)
    before = conv
    if plan.reopen and conv is not None:  # a new message in a finished thread reopens it
        conv.status, conv.closed_at, conv.disposition, conv.assigned_agent_id = plan.status or "queued", None, None, None
        conv.queued_at = utcnow()
        conn.execute("UPDATE conversations SET status = ?, closed_at = NULL, disposition = NULL, assigned_agent_id = NULL,"
                     " queued_at = ? WHERE id = ?", (conv.status, _to_db(_CONV_COLUMNS.queued_at, conv.queued_at), conv.id))
    if plan.open_new:
        key = req.thread_key
        if plan.successor and before is not None and before.id is not None:
            key = successor_key(before.thread_key or req.thread_key or "", before.id)
        conv = Conversation(
            customer_id=req.customer_id, channel=req.channel, subject=req.subject[:300], queue_id=req.queue_id, thread_key=key,
            customer_address=req.customer_address[:254], our_address=req.our_address[:254], priority=req.priority,
            queue_since=req.queue_since, pinned_agent_id=req.pinned_agent,
        )
        conv.status = plan.status or "queued"
        if conv.status == "queued":
            conv.queued_at = utcnow()  # with the bot, queued_at is set when it hands over
        elif conv.status == "closed":
            conv.closed_at, conv.disposition = utcnow(), plan.disposition
        _insert(conn, conv)
        note = req.opened_note(conv.status)
        if plan.successor and before is not None:
            note = replace(note, summary=f"{note.summary} (continues conversation {before.id})",
                           data={**note.data, "continues": before.id})
        _record_sqlite(conn, req.customer_id, conv.id, note)
    elif req.our_address and conv is not None and conv.status != "closed" and conv.our_address != req.our_address:
        conv.our_address = req.our_address  # replies go from the number the customer last wrote to
        conn.execute("UPDATE conversations SET our_address = ? WHERE id = ?", (conv.our_address, conv.id))
    assert conv is not None and conv.id is not None
    # conv_repo.append_message: a resend returns the first copy; else the next seq and the message
    found = _one(conn, Message, "conversation_id = ? AND client_msg_id = ?", (conv.id, req.client_id)) if req.client_id else None
    if found is None and earlier is not None:
        found = earlier
    if found is not None:
        return InboundStored(conv, found, False, plan.open_new or plan.reopen, customer, plan.reopen)
    now = utcnow()
    bumped = conn.execute("UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq",
                          (_to_db(_CONV_COLUMNS.updated_at, now), conv.id)).fetchone()
    if bumped is None:
        raise conv_repo.ConversationNotFound(f"conversation {conv.id} not found")
    conv.last_seq, conv.updated_at = int(bumped[0]), now
    msg = Message(
        conversation_id=conv.id, seq=conv.last_seq, sender_kind=req.sender_kind,
        sender_id=str(req.customer_id) if req.sender_kind == "customer" else None, body=req.text,
        client_msg_id=req.client_id, provider_id=req.provider_id, attachments=req.attachments or [],
        internal=False, delivery_status=None,
    )
    _insert(conn, msg)
    return InboundStored(conv, msg, True, plan.open_new or plan.reopen, customer, plan.reopen)
