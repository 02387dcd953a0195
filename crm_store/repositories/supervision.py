"""What the supervisor dashboard reads from SQL besides the statistics (``stats``): queue settings, the
active agents, the conversations open now and the overdue-order count.

Plain rows come back (no ORM objects, nothing of ``contact_center``); the hub's ``SnapshotBuilder``
(``contact_center/supervisor.py``) maps them to the inputs of the pure
``contact_center.domain.supervision.compose_snapshot``. See docs/subsystems/supervision.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from crm_store.db import Database
from crm_store.models import Agent, Conversation, Customer, Queue
from crm_store.repositories import orders as orders_repo

OPEN_STATUSES = ("queued", "assigned")
"""The conversation statuses listed as open on the dashboard (waiting in a queue, or with an agent)."""


@dataclass(frozen=True)
class QueueRow:
    """A queue's settings as stored (None where the column is empty)."""

    id: int
    name: str
    sl_target_seconds: float | None
    sl_target_ratio: float | None
    max_waiting: int | None
    skills_required: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentRow:
    """An active agent account."""

    id: int
    username: str
    display_name: str
    role: str
    skills: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenConversationRow:
    """A conversation whose status is ``queued`` or ``assigned``, with its customer's display name."""

    id: int
    status: str
    channel: str
    queue_id: int | None
    customer_id: int
    customer_display_name: str | None
    agent_id: int | None
    subject: str | None
    queued_at: datetime | None
    assigned_at: datetime | None
    created_at: datetime
    updated_at: datetime | None


async def queues_and_active_agents(db: Database) -> tuple[list[QueueRow], list[AgentRow]]:
    """Every queue (by name) and every active agent (by display name), read in one session."""
    q = Queue.__table__.c  # type: ignore[attr-defined]
    a = Agent.__table__.c  # type: ignore[attr-defined]
    async with db.session() as s:
        queues = (
            await s.execute(
                select(
                    q.id, q.name, q.sl_target_seconds, q.sl_target_ratio, q.max_waiting, q.skills_required, q.channels
                ).order_by(q.name)
            )
        ).all()
        agents = (
            await s.execute(
                select(a.id, a.username, a.display_name, a.role, a.skills).where(a.active.is_(True)).order_by(a.display_name)
            )
        ).all()
    return (
        [
            QueueRow(
                id=r.id,
                name=r.name,
                sl_target_seconds=r.sl_target_seconds,
                sl_target_ratio=r.sl_target_ratio,
                max_waiting=r.max_waiting,
                skills_required=tuple(r.skills_required or ()),
                channels=tuple(r.channels or ()),
            )
            for r in queues
        ],
        [AgentRow(r.id, r.username, r.display_name, r.role, dict(r.skills or {})) for r in agents],
    )


async def open_conversations(db: Database, limit: int = 1000) -> list[OpenConversationRow]:
    """The conversations queued or assigned now (the ``status`` index), the oldest ``limit`` by id."""
    c = Conversation.__table__.c  # type: ignore[attr-defined]
    cu = Customer.__table__.c  # type: ignore[attr-defined]
    stmt = (
        select(
            c.id, c.status, c.channel, c.queue_id, c.customer_id, cu.display_name, c.assigned_agent_id, c.subject,
            c.queued_at, c.assigned_at, c.created_at, c.updated_at,
        )
        .select_from(Conversation.__table__.join(Customer.__table__, cu.id == c.customer_id))  # type: ignore[attr-defined]
        .where(c.status.in_(OPEN_STATUSES))
        .order_by(c.id)
        .limit(limit)
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return [
        OpenConversationRow(
            id=r.id, status=r.status, channel=r.channel, queue_id=r.queue_id, customer_id=r.customer_id,
            customer_display_name=r.display_name, agent_id=r.assigned_agent_id, subject=r.subject,
            queued_at=r.queued_at, assigned_at=r.assigned_at, created_at=r.created_at, updated_at=r.updated_at,
        )
        for r in rows
    ]


async def overdue_order_count(db: Database, today: date) -> int:
    """How many open orders are past their promised date (``orders.overdue_orders``, so at most its limit)."""
    async with db.session() as s:
        return len(await orders_repo.overdue_orders(s, today))
