"""Supervisor statistics from SQL: contact records, per-interval queue figures, and agent state history.

The figures survive a restart because they are computed from what SQL already keeps: each conversation's
``queued_at``, ``assigned_at`` (answered), ``abandoned_at`` and ``closed_at``, and the agent state log.

Definitions match ``contact_center.domain.service_levels`` (and docs/subsystems/supervision.md):
answered = ``assigned_at`` set; abandoned = ``abandoned_at`` set and never answered; the wait is
``queued_at`` to the answer (or to the abandon); a wait of exactly the target is within it; service level
= answered within target / (answered + abandoned after target).

Time arithmetic differs between the databases, so two small SQL constructs are compiled per dialect:
milliseconds between two timestamps (SQLite: ``julianday`` differences rounded to the millisecond,
which is all SQLite keeps of a time; PostgreSQL: ``EXTRACT(EPOCH FROM ...)``). The interval of a
contact is whole milliseconds since the day's start divided (integer division, never negative) by the
interval's milliseconds, so both databases put a contact at 09:30:00.000 into the 09:30 interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from sqlalchemy import BigInteger, and_, case, func, literal, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from crm_store.db import Database
from crm_store.models import Agent, AgentStateLog, Conversation, Queue, UTCDateTime, utcnow

AGENT_STATES = ("available", "busy", "wrap_up", "away", "offline")
DEFAULT_TARGET_SECONDS = 20


class _MillisBetween(FunctionElement[int]):
    """Whole milliseconds from the second timestamp to the first (later - earlier)."""

    type = BigInteger()
    name = "millis_between"
    inherit_cache = True


@compiles(_MillisBetween, "sqlite")
def _millis_sqlite(element: _MillisBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400000.0) AS INTEGER)"


@compiles(_MillisBetween, "postgresql")
def _millis_postgresql(element: _MillisBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM ({later} - {earlier})) * 1000) AS BIGINT)"


def _millis_between(later: Any, earlier: Any) -> _MillisBetween:
    return _MillisBetween(later, earlier)


def _at(value: datetime) -> Any:
    """A timestamp parameter stored the way the columns are (UTC; naive on SQLite)."""
    return literal(value, UTCDateTime())


@dataclass(frozen=True)
class ContactRow:
    """One contact offered to a queue, as ``contact_center.domain.service_levels`` reads it."""

    conversation_id: int
    queue: str  # the queue's name ("" when the conversation has no queue)
    channel: str
    queued_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None  # the abandon time for an abandoned contact, else the close time
    abandoned: bool
    handle_seconds: float | None  # answer to close, for a closed answered contact
    agent_id: int | None


@dataclass(frozen=True)
class IntervalRow:
    """One queue's figures for the contacts offered in one interval (by ``queued_at``)."""

    queue: str
    start: datetime
    offered: int
    handled: int
    abandoned: int
    answered_within_target: int
    abandoned_within_target: int
    answer_wait_seconds_total: float
    handle_seconds_total: float
    handle_count: int

    @property
    def service_level(self) -> float | None:
        """Answered within target / (answered + abandoned after target); None when nothing counts."""
        counted = self.handled + self.abandoned - self.abandoned_within_target
        return self.answered_within_target / counted if counted else None

    @property
    def asa_seconds(self) -> float | None:
        """Mean wait of the answered contacts."""
        return self.answer_wait_seconds_total / self.handled if self.handled else None

    @property
    def abandonment_rate(self) -> float | None:
        """Abandoned / (answered + abandoned)."""
        done = self.handled + self.abandoned
        return self.abandoned / done if done else None

    @property
    def aht_seconds(self) -> float | None:
        """Mean handle time of the contacts that have one."""
        return self.handle_seconds_total / self.handle_count if self.handle_count else None


@dataclass(frozen=True)
class AgentStateRow:
    """One stretch of an agent's time in one state (``ended_at`` None: the current state)."""

    id: int
    agent_id: int
    state: str
    started_at: datetime
    ended_at: datetime | None


async def contact_records(db: Database, since: datetime, until: datetime) -> list[ContactRow]:
    """Every contact that entered a queue in ``[since, until)``, oldest first."""
    c = Conversation.__table__.c  # type: ignore[attr-defined]
    q = Queue.__table__.c  # type: ignore[attr-defined]
    stmt = (
        select(
            c.id, func.coalesce(q.name, "").label("queue"), c.channel, c.queued_at, c.assigned_at,
            c.abandoned_at, c.closed_at, c.assigned_agent_id,
        )
        .select_from(Conversation.__table__.outerjoin(Queue.__table__, q.id == c.queue_id))  # type: ignore[attr-defined]
        .where(c.queued_at >= _at(since), c.queued_at < _at(until))
        .order_by(c.queued_at, c.id)
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    out = []
    for r in rows:
        answered = r.assigned_at
        abandoned = r.abandoned_at is not None and answered is None
        handle = (
            max(0.0, (r.closed_at - answered).total_seconds())
            if answered is not None and r.closed_at is not None
            else None
        )
        out.append(
            ContactRow(
                conversation_id=r.id,
                queue=r.queue,
                channel=r.channel,
                queued_at=r.queued_at,
                answered_at=answered,
                ended_at=r.abandoned_at if abandoned else r.closed_at,
                abandoned=abandoned,
                handle_seconds=handle,
                agent_id=r.assigned_agent_id,
            )
        )
    return out


async def interval_stats(
    db: Database,
    day_start: datetime,
    interval_minutes: int = 30,
    targets_by_queue: Mapping[str, float] | None = None,
) -> list[IntervalRow]:
    """Per queue and interval of the day from ``day_start``: offered, handled, abandoned, service level.

    Counted in SQL with one ``GROUP BY`` (queue, interval) over the conversations queued in
    ``[day_start, day_start + 24 h)``. Each queue's target answer time is ``targets_by_queue[name]``
    when given, else the queue's own ``sl_target_seconds``. Only intervals with contacts are returned,
    ordered by queue name, then start.

    :param interval_minutes: the interval length; it must divide a day (15 and 30 are the usual ones).
    """
    if isinstance(interval_minutes, bool) or not isinstance(interval_minutes, int) or interval_minutes <= 0 or 1440 % interval_minutes:
        raise ValueError(f"interval_minutes must be a whole number of minutes that divides a day (got {interval_minutes})")
    c = Conversation.__table__.c  # type: ignore[attr-defined]
    q = Queue.__table__.c  # type: ignore[attr-defined]
    step_ms = interval_minutes * 60_000
    start = _at(day_start)
    target_s: Any = func.coalesce(q.sl_target_seconds, DEFAULT_TARGET_SECONDS)
    if targets_by_queue:
        target_s = case(
            {name: literal(float(v)) for name, v in targets_by_queue.items()}, value=q.name, else_=target_s
        )
    target_ms = target_s * 1000
    answered = c.assigned_at.is_not(None)
    abandoned = and_(c.abandoned_at.is_not(None), c.assigned_at.is_(None))
    wait_answer = _millis_between(c.assigned_at, c.queued_at)
    wait_abandon = _millis_between(c.abandoned_at, c.queued_at)
    has_handle = and_(answered, c.closed_at.is_not(None))
    handle_ms = _millis_between(c.closed_at, c.assigned_at)

    def flag(cond: Any) -> Any:
        return case((cond, 1), else_=0)

    # One row per contact with its interval and 0/1 flags, then one GROUP BY over plain columns (grouping
    # by an expression with a bound parameter fails on PostgreSQL: each mention is a new parameter).
    per_contact = (
        select(
            func.coalesce(q.name, "").label("queue"),
            (_millis_between(c.queued_at, start) // literal(step_ms, BigInteger())).label("bucket"),
            flag(answered).label("handled"),
            flag(abandoned).label("abandoned"),
            flag(and_(answered, wait_answer <= target_ms)).label("answered_within"),
            flag(and_(abandoned, wait_abandon <= target_ms)).label("abandoned_within"),
            case((and_(answered, wait_answer > 0), wait_answer), else_=0).label("wait_ms"),
            case((and_(has_handle, handle_ms > 0), handle_ms), else_=0).label("handle_ms"),
            flag(has_handle).label("has_handle"),
        )
        .select_from(Conversation.__table__.outerjoin(Queue.__table__, q.id == c.queue_id))  # type: ignore[attr-defined]
        .where(c.queued_at >= start, c.queued_at < _at(day_start + timedelta(days=1)))
        .subquery("per_contact")
    )
    p = per_contact.c
    stmt = (
        select(
            p.queue,
            p.bucket,
            func.count().label("offered"),
            func.sum(p.handled).label("handled"),
            func.sum(p.abandoned).label("abandoned"),
            func.sum(p.answered_within).label("answered_within"),
            func.sum(p.abandoned_within).label("abandoned_within"),
            func.sum(p.wait_ms).label("wait_ms"),
            func.sum(p.handle_ms).label("handle_ms"),
            func.sum(p.has_handle).label("handle_count"),
        )
        .group_by(p.queue, p.bucket)
        .order_by(p.queue, p.bucket)
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return [
        IntervalRow(
            queue=r.queue,
            start=day_start + timedelta(minutes=interval_minutes * int(r.bucket)),
            offered=int(r.offered),
            handled=int(r.handled or 0),
            abandoned=int(r.abandoned or 0),
            answered_within_target=int(r.answered_within or 0),
            abandoned_within_target=int(r.abandoned_within or 0),
            answer_wait_seconds_total=int(r.wait_ms or 0) / 1000.0,
            handle_seconds_total=int(r.handle_ms or 0) / 1000.0,
            handle_count=int(r.handle_count or 0),
        )
        for r in rows
    ]


async def record_agent_state(db: Database, agent_id: int, state: str, at: datetime | None = None) -> AgentStateRow:
    """Record that an agent is in ``state`` from ``at`` (default now): closes the open row, opens a new one.

    Recording the state the agent is already in changes nothing and returns the open row. The agent's
    row is locked first (PostgreSQL; SQLite writers are serialised anyway), so two nodes recording at
    once never leave two open rows. A time before the open row's start (clock skew between nodes)
    closes it with zero length instead of a negative one.
    """
    if state not in AGENT_STATES:
        raise ValueError(f"state must be one of {', '.join(AGENT_STATES)} (got {state!r})")
    at = utcnow() if at is None else at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
    log = AgentStateLog.__table__.c  # type: ignore[attr-defined]
    agents = Agent.__table__.c  # type: ignore[attr-defined]
    async with db.transaction() as s:
        locked = (await s.execute(select(agents.id).where(agents.id == agent_id).with_for_update())).first()
        if locked is None:
            raise LookupError(f"agent {agent_id} not found")
        open_rows = (
            await s.execute(
                select(log.id, log.agent_id, log.state, log.started_at, log.ended_at)
                .where(log.agent_id == agent_id, log.ended_at.is_(None))
                .order_by(log.started_at.desc(), log.id.desc())
            )
        ).all()
        if open_rows and open_rows[0].state == state and len(open_rows) == 1:
            r = open_rows[0]
            return AgentStateRow(r.id, r.agent_id, r.state, r.started_at, r.ended_at)
        for r in open_rows:
            await s.execute(update(AgentStateLog.__table__).where(log.id == r.id).values(ended_at=max(at, r.started_at)))  # type: ignore[attr-defined]
        row = AgentStateLog(agent_id=agent_id, state=state, started_at=at, ended_at=None)
        s.add(row)
        await s.flush()
        assert row.id is not None
        return AgentStateRow(row.id, agent_id, state, row.started_at, None)


async def open_agent_states(db: Database, agent_ids: Sequence[int]) -> dict[int, str]:
    """Agent id -> the state of their open row (the state SQL last recorded), for the agents that have one."""
    if not agent_ids:
        return {}
    log = AgentStateLog.__table__.c  # type: ignore[attr-defined]
    stmt = (
        select(log.agent_id, log.state)
        .where(log.agent_id.in_([int(a) for a in agent_ids]), log.ended_at.is_(None))
        .order_by(log.agent_id, log.started_at, log.id)
    )
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return {int(r.agent_id): str(r.state) for r in rows}  # the latest open row wins


async def agent_state_rows(
    db: Database, since: datetime, until: datetime, agent_id: int | None = None
) -> list[AgentStateRow]:
    """The state rows that overlap ``[since, until)`` (not clipped), by agent then start time."""
    log = AgentStateLog.__table__.c  # type: ignore[attr-defined]
    stmt = (
        select(log.id, log.agent_id, log.state, log.started_at, log.ended_at)
        .where(log.started_at < _at(until), or_(log.ended_at.is_(None), log.ended_at > _at(since)))
        .order_by(log.agent_id, log.started_at, log.id)
    )
    if agent_id is not None:
        stmt = stmt.where(log.agent_id == agent_id)
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return [AgentStateRow(r.id, r.agent_id, r.state, r.started_at, r.ended_at) for r in rows]
