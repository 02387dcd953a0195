"""In-memory fakes of the use cases' ports: a contact repository and a notifier, for unit tests.

They keep the promises of the SQL adapter (``contact_center/hub/sql.py``) that the use cases rely on: a
per-conversation sequence, idempotency on client and provider ids, a move only from its source states,
the first copy of a repeat.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from contact_center.domain.channels import delivery_status, moves_forward
from contact_center.domain.conversations import InboundPlan, is_open, successor_key
from crm_store.domain.identity import normalize_address
from contact_center.ports import (
    DeliveryReport,
    FastAppend,
    InboundPlanRequest,
    InboundStored,
    Moved,
    NewMessage,
    Notice,
    TimelineNote,
    Transition,
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Conv:
    id: int
    customer_id: int
    channel: str
    status: str = "queued"
    assigned_agent_id: int | None = None
    queue_id: int | None = None
    priority: int = 0
    subject: str = ""
    last_seq: int = 0
    customer_address: str = ""
    our_address: str = ""
    thread_key: str | None = None
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime | None = None
    queued_at: datetime | None = None
    assigned_at: datetime | None = None
    closed_at: datetime | None = None
    abandoned_at: datetime | None = None
    disposition: str | None = None


@dataclass
class Cust:
    id: int
    display_name: str = ""
    tier: str = "standard"


@dataclass
class Msg:
    conversation_id: int
    seq: int
    sender_kind: str
    sender_id: str | None
    body: str
    internal: bool = False
    client_msg_id: str | None = None
    provider_id: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    delivery_status: str | None = None
    delivery_error: str | None = None
    delivery_error_code: str | None = None
    created_at: datetime = field(default_factory=_now)


@dataclass
class Point:
    customer_id: int
    kind: str
    value: str
    verified: bool = True
    opted_out_at: datetime | None = None
    undeliverable_at: datetime | None = None
    undeliverable_reason: str | None = None


@dataclass
class AgentRow:
    id: int
    display_name: str
    active: bool = True
    capacity: dict[str, int] = field(default_factory=lambda: {"chat": 3, "sms": 4, "whatsapp": 4, "email": 2, "phone": 1, "letters": 2})
    skills: dict[str, int] = field(default_factory=dict)


@dataclass
class QueueRow:
    id: int
    name: str
    channels: list[str]
    skills_required: list[str] = field(default_factory=list)
    sl_target_seconds: int = 20
    overflow_queue_id: int | None = None
    overflow_after_seconds: int | None = None


class MemoryConversations:
    """The contact repository in memory (:class:`contact_center.ports.ConversationRepository`)."""

    def __init__(self) -> None:
        self.convs: dict[int, Conv] = {}
        self.customers: dict[int, Cust] = {}
        self.msgs: list[Msg] = []
        self.points: dict[tuple[str, str], Point] = {}
        self.agent_rows: dict[int, AgentRow] = {}
        self.queue_rows: list[QueueRow] = [QueueRow(1, "support", ["chat", "sms", "whatsapp", "email"])]
        self.timeline: list[tuple[int, int | None, TimelineNote]] = []
        self.agent_states: dict[int, str] = {}
        self._ids = itertools.count(1)
        self.fast_appends = 0
        self.resolves = 0

    # --- helpers for tests
    def add_agent(self, agent_id: int, name: str) -> None:
        self.agent_rows[agent_id] = AgentRow(agent_id, name)

    def of(self, conversation_id: int) -> list[Msg]:
        return [m for m in self.msgs if m.conversation_id == conversation_id]

    # --- reads
    async def queues(self) -> Sequence[QueueRow]:
        return list(self.queue_rows)

    async def conversation(self, conversation_id: int) -> Conv | None:
        c = self.convs.get(conversation_id)
        return replace(c) if c else None

    async def conversations(self, ids: Sequence[int]) -> Sequence[Conv]:
        return [replace(self.convs[i]) for i in ids if i in self.convs]

    async def conversations_with_customers(self, status: str) -> Sequence[tuple[Conv, Cust]]:
        return [(replace(c), self.customers[c.customer_id]) for c in self.convs.values() if c.status == status]

    async def open_conversation(self, customer_id: int, channel: str) -> Conv | None:
        found = [c for c in self.convs.values() if c.customer_id == customer_id and c.channel == channel and is_open(c.status)]
        return replace(found[-1]) if found else None

    async def thread(self, channel: str, thread_key: str) -> Conv | None:
        found = next((c for c in self.convs.values() if c.channel == channel and c.thread_key == thread_key), None)
        return replace(found) if found else None

    async def with_customer(self, conversation_id: int) -> tuple[Conv, Cust] | None:
        c = self.convs.get(conversation_id)
        return (replace(c), self.customers[c.customer_id]) if c else None

    async def assigned_to(self, agent_id: int) -> list[tuple[Conv, Cust]]:
        return [(replace(c), self.customers[c.customer_id]) for c in self.convs.values()
                if c.assigned_agent_id == agent_id and c.status == "assigned"]

    async def customers_served_by(self, agent_id: int) -> set[int]:
        return {c.customer_id for c in self.convs.values() if c.assigned_agent_id == agent_id}

    async def agent(self, agent_id: int) -> AgentRow | None:
        return self.agent_rows.get(agent_id)

    async def agents(self, ids: Sequence[int]) -> Sequence[AgentRow]:
        return [self.agent_rows[i] for i in ids if i in self.agent_rows]

    async def last_agent_states(self, ids: Sequence[int]) -> dict[int, str]:
        return {i: self.agent_states[i] for i in ids if i in self.agent_states}

    async def customer_by_address(self, kind: str, value: str) -> Cust | None:
        p = self.points.get((kind, value))
        return self.customers[p.customer_id] if p else None

    async def contact_point(self, kind: str, value: str) -> Point | None:
        return self.points.get((kind, value))

    async def history(self, conversation_id: int, after_seq: int, *, include_internal: bool) -> list[tuple[Msg, str]]:
        names = {str(a.id): a.display_name for a in self.agent_rows.values()}
        return [(m, names.get(m.sender_id or "", "") if m.sender_kind == "agent" else "")
                for m in await self.messages(conversation_id, after_seq, include_internal=include_internal)]

    async def messages(self, conversation_id: int, after_seq: int, *, include_internal: bool, limit: int | None = None) -> Sequence[Msg]:
        out = [m for m in self.of(conversation_id) if m.seq > after_seq and (include_internal or not m.internal)]
        return out[: limit or 500]

    async def message_at(self, conversation_id: int, seq: int) -> Msg | None:
        return next((m for m in self.of(conversation_id) if m.seq == seq), None)

    async def last_customer_message_at(self, conversation_id: int) -> datetime | None:
        found = [m.created_at for m in self.of(conversation_id) if m.sender_kind == "customer"]
        return found[-1] if found else None

    # --- writes
    async def record_agent_state(self, agent_id: int, state: str) -> None:
        self.agent_states[agent_id] = state

    def _customer_at(self, kind: str, address: str, name: str = "", verified: bool = True) -> Cust:
        p = self.points.get((kind, address))
        if p is None:
            cust = Cust(next(self._ids), name)
            self.customers[cust.id] = cust
            p = self.points[(kind, address)] = Point(cust.id, kind, address, verified)
        return self.customers[p.customer_id]

    async def resolve_customer(self, kind: str, address: str, *, display_name: str, region: str, verified: bool) -> tuple[int, str]:
        self.resolves += 1
        address = normalize_address(kind, address, region)  # the real, pure rule (raises InvalidAddress)
        cust = self._customer_at(kind, address, display_name, verified)
        if display_name and not cust.display_name:
            cust.display_name = display_name
        return cust.id, address

    async def identify_visitor(self, kind: str, visitor_id: str, name: str, email: str) -> Cust:
        cust = self._customer_at(kind, visitor_id, name)
        if email and ("email", email) not in self.points:
            self.points[("email", email)] = Point(cust.id, "email", email, verified=False)
        return cust

    def _append(self, conversation_id: int, sender_kind: str, text: str, sender_id: str | None, *, client_msg_id: str | None = None,
                provider_id: str | None = None, internal: bool = False, attachments: Any = None,
                delivery_status: str | None = None) -> tuple[Msg, bool]:
        for m in self.msgs:
            if (client_msg_id and m.conversation_id == conversation_id and m.client_msg_id == client_msg_id) or (
                provider_id and m.provider_id == provider_id
            ):
                return m, False
        conv = self.convs[conversation_id]
        conv.last_seq += 1
        conv.updated_at = _now()
        msg = Msg(conversation_id, conv.last_seq, sender_kind, sender_id, text, internal, client_msg_id, provider_id,
                  list(attachments or []), delivery_status)
        self.msgs.append(msg)
        return msg, True

    async def store_inbound(self, req: InboundPlanRequest) -> InboundStored:
        customer = self.customers[req.customer_id]
        earlier = next((m for m in self.msgs if req.provider_id and m.provider_id == req.provider_id), None)
        if earlier is not None:
            return InboundStored(replace(self.convs[earlier.conversation_id]), earlier, False, False, customer)
        closed_age = None
        if req.thread_key is None:
            conv = await self.open_conversation(req.customer_id, req.channel)
        else:
            def thread(key: str) -> Conv | None:
                return next((c for c in self.convs.values() if c.channel == req.channel and c.thread_key == key), None)

            conv = thread(req.thread_key)
            while conv is not None and conv.status == "closed" and thread(successor_key(conv.thread_key or "", conv.id)):
                conv = thread(successor_key(conv.thread_key or "", conv.id))
            if conv is not None and conv.status == "closed" and conv.closed_at is not None:
                closed_age = (_now() - conv.closed_at).total_seconds()
        plan = req.decide(conv.status if conv else None, closed_age)
        assert isinstance(plan, InboundPlan)
        if conv is not None:
            conv = self.convs[conv.id]
        before = conv
        if plan.reopen and conv is not None:
            conv.status, conv.closed_at, conv.disposition, conv.assigned_agent_id = plan.status or "queued", None, None, None
        if plan.open_new:
            key = req.thread_key
            if plan.successor and before is not None:
                key = successor_key(before.thread_key or "", before.id)
            conv = Conv(next(self._ids), req.customer_id, req.channel, status=plan.status or "queued", queue_id=req.queue_id,
                        subject=req.subject, customer_address=req.customer_address, our_address=req.our_address,
                        thread_key=key)
            if conv.status == "closed":
                conv.closed_at, conv.disposition = _now(), plan.disposition
            self.convs[conv.id] = conv
            self.timeline.append((req.customer_id, conv.id, req.opened_note(conv.status)))
        elif conv is not None and req.our_address and conv.status != "closed" and conv.our_address != req.our_address:
            conv.our_address = req.our_address
        assert conv is not None
        msg, created = self._append(conv.id, req.sender_kind, req.text, str(req.customer_id), client_msg_id=req.client_id,
                                    provider_id=req.provider_id, attachments=req.attachments)
        return InboundStored(replace(conv), msg, created, plan.open_new or plan.reopen, customer, plan.reopen)

    async def new_customer(self, display_name: str) -> int:
        cust = Cust(next(self._ids), display_name)
        self.customers[cust.id] = cust
        return cust.id

    async def append_fast(self, conversation_id: int, sender_kind: str, text: str, *, sender_id: str, client_msg_id: str | None,
                          provider_id: str | None = None, attachments: Any = None) -> FastAppend | None:
        self.fast_appends += 1
        conv = self.convs.get(conversation_id)
        if conv is None or not is_open(conv.status):
            return None
        msg, created = self._append(conversation_id, sender_kind, text, sender_id, client_msg_id=client_msg_id,
                                    provider_id=provider_id, attachments=attachments)
        return FastAppend(msg, created, conv.status, conv.assigned_agent_id)

    async def append(self, conversation_id: int, msg: NewMessage, *, client_msg_id: str | None = None,
                     delivery_status: str | None = None, note: TimelineNote | None = None) -> tuple[Msg, bool]:
        stored, created = self._append(conversation_id, msg.sender_kind, msg.text, msg.sender_id, client_msg_id=client_msg_id,
                                       internal=msg.internal, attachments=msg.attachments, delivery_status=delivery_status)
        if created and note is not None:
            self.timeline.append((self.convs[conversation_id].customer_id, conversation_id, note))
        return stored, created

    async def move(self, conversation_id: int, t: Transition, *, message: NewMessage | None = None,
                   note: TimelineNote | None = None) -> Moved | None:
        conv = self.convs.get(conversation_id)
        if conv is None or not t.allows(conv):
            return None
        t.apply_to(conv, _now())
        stored = None
        if message is not None:
            stored, _ = self._append(conversation_id, message.sender_kind, message.text, message.sender_id,
                                     internal=message.internal, attachments=message.attachments)
        if note is not None:
            self.timeline.append((conv.customer_id, conversation_id, note))
        return Moved(replace(conv), self.customers[conv.customer_id], stored)

    async def record(self, customer_id: int, conversation_id: int | None, note: TimelineNote) -> None:
        self.timeline.append((customer_id, conversation_id, note))

    async def record_sent(self, conversation_id: int, seq: int, report: DeliveryReport) -> tuple[str | None, list[Any]] | None:
        msg = await self.message_at(conversation_id, seq)
        if msg is None:
            return None
        msg.provider_id = msg.provider_id or report.provider_id
        status = delivery_status(report.status)
        if status is not None and moves_forward(msg.delivery_status, status):
            msg.delivery_status = status.value
            msg.delivery_error_code, msg.delivery_error = report.error_code, report.error_message
        return msg.provider_id, []

    async def update_delivery(self, provider_id: str, status: str, error_code: str | None, error_message: str | None) -> tuple[int, int] | None:
        new = delivery_status(status)
        msg = next((m for m in self.msgs if m.provider_id == provider_id), None)
        if new is None or msg is None or msg.sender_kind == "customer" or not moves_forward(msg.delivery_status, new):
            return None
        msg.delivery_status = new.value
        return msg.conversation_id, msg.seq

    async def set_undeliverable(self, kind: str, address: str, *, reason: str, note: Callable[[str], TimelineNote]) -> bool:
        point = self.points.get((kind, address))
        if point is None:
            return False
        point.undeliverable_at, point.undeliverable_reason = _now(), reason
        self.timeline.append((point.customer_id, None, note(address)))
        return True

    async def set_opt_out(self, kind: str, address: str, *, region: str, opted_out: bool, note: Callable[[str], TimelineNote]) -> None:
        address = normalize_address(kind, address, region)
        cust = self._customer_at(kind, address)
        self.points[(kind, address)].opted_out_at = _now() if opted_out else None
        self.timeline.append((cust.id, None, note(address)))


class RecordingNotifier:
    """The notifier port, keeping what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    async def send(self, notices: Sequence[Notice]) -> None:
        self.sent.extend(notices)

    def events(self, audience: str | None = None) -> list[str]:
        return [n.event for n in self.sent if audience is None or n.audience == audience]


class RecordingAdapter:
    """A channel's outbound adapter that accepts everything (provider ids ``P1``, ``P2``...)."""

    def __init__(self) -> None:
        self.delivered: list[Any] = []

    async def deliver(self, message: Any) -> DeliveryReport:
        self.delivered.append(message)
        return DeliveryReport("sent", provider_id=f"P{len(self.delivered)}")
