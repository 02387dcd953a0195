"""The supervisor view: a live snapshot of queues, agents, service levels and staffing, pushed over Socket.IO.

Three parts (issue 4; figures defined in ``docs/subsystems/supervision.md``):

* :func:`compose_snapshot` (pure): turns what SQL and the shared state say into one JSON-ready dict:
  figures per queue, per channel and in total, agents, today's intervals, staffing (Erlang C), alerts.
* :class:`SnapshotBuilder`: reads those inputs with a fixed, small number of queries per build (one
  ``contact_records`` query for today, the agent state log of today, the open conversations; queues,
  agents and the overdue-order count are cached for :data:`REFERENCE_TTL_SECONDS`) and caches the result,
  so every viewer of one hub process shares one build.
* :class:`SupervisorNamespace` (Socket.IO ``/supervisor``, supervisor and admin sessions only) and the HTTP
  routes ``GET /supervisor`` (the page) and ``GET /api/supervisor/snapshot`` (JSON), mounted by
  :func:`register`, which also starts the push loop (every :data:`PUSH_INTERVAL_SECONDS` to the room
  :data:`SUPERVISOR_ROOM`, only while a supervisor is connected to this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Sequence

import socketio
from aiohttp import web
from sqlalchemy import select

from contact_center.api.auth import PRINCIPAL_KEY
from contact_center.api.errors import error_response
from contact_center.domain.service_levels import (
    AgentFigures,
    ContactLike,
    QueueFigures,
    agent_figures,
    interval_figures,
    summarize,
)
from contact_center.domain.staffing import required_agents, required_agents_by_interval
from contact_center.hub.service import AgentRef, HubError, HubService
from contact_center.keys import HUB_KEY, SESSIONS_KEY
from contact_center.ports import AgentPresence
from contact_center.sessions import SessionGate
from contact_center.web import STATIC, current_agent
from crm_store.models import Agent, Conversation, Customer, Queue
from crm_store.repositories import orders as orders_repo
from crm_store.repositories import stats as stats_repo

try:  # the hub names the room it publishes watched conversations to
    from contact_center.hub.service import room_monitor
except ImportError:  # pragma: no cover - older hub

    def room_monitor(conversation_id: int) -> str:
        """The /supervisor room of the supervisors watching a conversation."""
        return f"monitor:{conversation_id}"


log = logging.getLogger("contact_center.supervisor")

NAMESPACE = "/supervisor"
"""The Socket.IO namespace of the supervisor dashboard."""

SUPERVISOR_ROOM = "supervisors"
"""Every dashboard socket joins this room; snapshots are pushed to it."""

SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})
"""Roles allowed to see the dashboard and act on other agents' conversations."""

PUSH_INTERVAL_SECONDS = 2.0
"""How often a fresh snapshot is pushed while at least one supervisor is connected to this process."""

INTERVAL_MINUTES = 30
"""The length of the day's chart intervals (it must divide a day)."""

WAITING_ALERT_LIMIT = 5
"""A queue with more contacts waiting than this raises an alert.

The queue's own ``max_waiting`` (the most it may hold) is used instead when it is lower.
"""

LONG_WAIT_ALERT_SECONDS = 120.0
"""A contact waiting longer than this (seconds) raises an alert for its queue."""

DEFAULT_SL_TARGET_RATIO = 0.8
"""The share to answer within the target time, for a queue that does not give its own ``sl_target_ratio``."""

DEFAULT_SL_TARGET_SECONDS = 20
"""The target answer time for a queue that does not give its own ``sl_target_seconds``."""

STAFFING_WINDOW_INTERVALS = 2
"""Staffing uses the volume and handle time observed over this many intervals before now (a rolling window)."""

FALLBACK_AHT_SECONDS = 180.0
"""The handle time staffing assumes for a queue with no handled (answered and closed) contact in the window."""

REFERENCE_TTL_SECONDS = 30.0
"""How long queues, agents and the overdue-order count are cached between snapshot builds."""

OPEN_CONVERSATIONS_LIMIT = 1000
"""At most this many open conversations are listed (the oldest first)."""


# -- inputs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueInfo:
    """What the dashboard needs of a queue's configuration."""

    name: str
    id: int | None = None
    sl_target_seconds: float = DEFAULT_SL_TARGET_SECONDS
    sl_target_ratio: float = DEFAULT_SL_TARGET_RATIO
    max_waiting: int | None = None
    skills_required: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentInfo:
    """An agent account (active ones only)."""

    id: int
    username: str
    display_name: str
    role: str
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenConversation:
    """A conversation that is waiting in a queue or being handled now (SQL ``status`` queued or assigned)."""

    id: int
    status: str
    channel: str
    queue: str
    customer_id: int
    customer_name: str
    agent_id: int | None
    subject: str
    queued_at: datetime | None
    assigned_at: datetime | None
    created_at: datetime
    updated_at: datetime | None

    def waiting_since(self) -> datetime:
        """When this wait began: its first ``queued_at``, or, back in a queue after an answer (a transfer,
        a lost agent), when it was handed back (its last update)."""
        if self.assigned_at is None:
            return self.queued_at or self.created_at
        return max(t for t in (self.assigned_at, self.updated_at, self.queued_at) if t is not None)


# -- helpers ------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int | None = None) -> float | None:
    """A JSON-safe number, rounded to ``digits`` when given (None stays None; NaN and infinities become None)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value) if digits is None else round(float(value), digits)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _figures_json(f: QueueFigures) -> dict[str, Any]:
    return {
        "offered": f.offered,
        "handled": f.handled,
        "abandoned": f.abandoned,
        "answered_within_target": f.answered_within_target,
        "abandoned_within_target": f.abandoned_within_target,
        "service_level": _num(f.service_level),
        "asa_seconds": _num(f.asa_seconds, 1),
        "abandonment_rate": _num(f.abandonment_rate),
        "aht_seconds": _num(f.aht_seconds, 1),
    }


def _waiting_json(waits: Sequence[float], target: float | None) -> dict[str, Any]:
    return {
        "waiting": len(waits),
        "longest_wait_seconds": _num(max(waits), 1) if waits else 0.0,
        "waiting_over_target": sum(1 for w in waits if target is not None and w > target),
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def local_day_start(now: datetime, tz: tzinfo | None = None) -> datetime:
    """The start (UTC) of the day ``now`` falls in, in ``tz`` (default: the server's local time zone)."""
    local = now.astimezone(tz) if tz is not None else now.astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def _eligible(p: AgentPresence, q: QueueInfo) -> bool:
    """Whether a logged-in agent has every skill the queue requires."""
    return all(int(p.skills.get(s, 0) or 0) >= 1 for s in q.skills_required)


def _shown_state(p: AgentPresence | None, open_count: int) -> str:
    """An agent's state for the dashboard: their presence, shown as busy while they hold a conversation."""
    if p is None:
        return "offline"
    if p.status == "available" and open_count > 0:
        return "busy"
    return p.status


# -- the snapshot (pure) ------------------------------------------------------------------------------


def _add_interval_staffing(
    total: list[dict[str, Any]],
    by_queue: dict[str, list[dict[str, Any]]],
    queue_by_name: dict[str, QueueInfo],
    interval_seconds: int,
) -> None:
    """Add ``agents_needed`` (Erlang C on the interval's offered contacts and handle time) to each interval.

    Per queue with the queue's own target (an interval with no handled contact assumes
    :data:`FALLBACK_AHT_SECONDS`); the total is the sum of the queues' needs (queues staffed apart).
    """
    needs_total = [0] * len(total)
    for name, rows in by_queue.items():
        info = queue_by_name.get(name, QueueInfo(name=name))
        try:
            plan = required_agents_by_interval(
                [r["offered"] for r in rows], interval_seconds,
                [r["aht_seconds"] or FALLBACK_AHT_SECONDS for r in rows],
                float(info.sl_target_ratio), float(info.sl_target_seconds),
            )
        except ValueError:
            continue  # an odd queue target: the staffing table says why
        for i, (row, need) in enumerate(zip(rows, plan.agents.tolist())):
            row["agents_needed"] = need
            if i < len(needs_total):
                needs_total[i] += need
    for row, need in zip(total, needs_total):
        row["agents_needed"] = need


def compose_snapshot(
    *,
    now: datetime,
    day_start: datetime,
    records: Iterable[ContactLike],
    states: Iterable[Any],
    queues: Sequence[QueueInfo],
    agents: Sequence[AgentInfo],
    presences: Sequence[AgentPresence],
    open_conversations: Sequence[OpenConversation],
    overdue_orders: int,
    interval_minutes: int = INTERVAL_MINUTES,
    waiting_alert_limit: int = WAITING_ALERT_LIMIT,
    long_wait_alert_seconds: float = LONG_WAIT_ALERT_SECONDS,
) -> dict[str, Any]:
    """The dashboard's snapshot at ``now`` (pure: every input is passed in).

    :param records: contacts queued since ``min(day_start, now - staffing window)``; the figures of the
        day use those queued from ``day_start`` on, staffing those of the last
        :data:`STAFFING_WINDOW_INTERVALS` intervals before ``now``.
    :param states: agent state rows overlapping the day (``agent_state_rows``).
    :param open_conversations: the conversations queued or assigned now (SQL): waiting contacts are the
        queued ones, whatever day they arrived.
    """
    all_records = list(records)
    today = [r for r in all_records if day_start <= r.queued_at]
    queue_by_name = {q.name: q for q in queues}
    targets = {q.name: float(q.sl_target_seconds) for q in queues}
    report = summarize(today, now, targets, default_target_seconds=float(DEFAULT_SL_TARGET_SECONDS))

    # waiting now: SQL's queued conversations (first waits, offers in flight, transfers, lost agents)
    waiting_list = []
    for c in open_conversations:
        if c.status != "queued":
            continue
        since = c.waiting_since()
        waiting_list.append((c, max(0.0, (now - since).total_seconds()), since))
    waiting_list.sort(key=lambda item: -item[1])
    waits_by_queue: dict[str, list[float]] = {}
    waits_by_channel: dict[str, list[float]] = {}
    over_target_total = 0
    for c, wait, _since in waiting_list:
        waits_by_queue.setdefault(c.queue, []).append(wait)
        waits_by_channel.setdefault(c.channel, []).append(wait)
        target = targets.get(c.queue, float(DEFAULT_SL_TARGET_SECONDS))
        over_target_total += wait > target

    presence_by_agent = {p.agent_id: p for p in presences}
    logged_in = [p for p in presences if p.status != "offline"]

    # staffing: the last STAFFING_WINDOW_INTERVALS intervals' volume and handle time, per queue
    interval_seconds = interval_minutes * 60
    window_start = now - timedelta(seconds=interval_seconds * STAFFING_WINDOW_INTERVALS)
    window: dict[str, list[ContactLike]] = {}
    for r in all_records:
        if window_start <= r.queued_at <= now:
            window.setdefault(r.queue, []).append(r)

    queue_names = sorted(set(queue_by_name) | set(report.by_queue) | set(waits_by_queue))
    queue_rows: list[dict[str, Any]] = []
    staffing_rows: list[dict[str, Any]] = []
    for name in queue_names:
        info = queue_by_name.get(name, QueueInfo(name=name))
        figures = report.by_queue.get(name, QueueFigures())
        row = {
            "name": name,
            "sl_target_seconds": info.sl_target_seconds,
            "sl_target_ratio": info.sl_target_ratio,
            **_waiting_json(waits_by_queue.get(name, []), float(info.sl_target_seconds)),
            **_figures_json(figures),
            "agents_logged_in": sum(1 for p in logged_in if _eligible(p, info)),
        }
        queue_rows.append(row)
        contacts = window.get(name, [])
        handles = [float(r.handle_seconds) for r in contacts if r.handle_seconds is not None]
        aht = sum(handles) / len(handles) if handles else FALLBACK_AHT_SECONDS
        per_interval = len(contacts) / STAFFING_WINDOW_INTERVALS
        try:
            need = required_agents(
                per_interval, interval_seconds, aht, float(info.sl_target_ratio), float(info.sl_target_seconds)
            )
        except ValueError as exc:  # a queue with an odd target: show why instead of failing the snapshot
            staffing_rows.append({"queue": name, "error": str(exc)})
            continue
        staffing_rows.append(
            {
                "queue": name,
                "window_minutes": interval_minutes * STAFFING_WINDOW_INTERVALS,
                "contacts": len(contacts),
                "contacts_per_interval": _num(per_interval, 2),
                "aht_seconds": _num(aht, 1),
                "aht_observed": bool(handles),
                "target_ratio": info.sl_target_ratio,
                "target_seconds": info.sl_target_seconds,
                "traffic_erlangs": _num(need.traffic_erlangs),
                "agents_needed": need.agents,
                "service_level": _num(need.service_level),
                "asa_seconds": _num(need.asa_seconds, 1),
                "occupancy": _num(need.occupancy),
                "agents_logged_in": row["agents_logged_in"],
            }
        )

    channel_rows = [
        {
            "name": name,
            **_waiting_json(
                waits_by_channel.get(name, []), None
            ),
            **_figures_json(report.by_channel.get(name, QueueFigures())),
        }
        for name in sorted(set(report.by_channel) | set(waits_by_channel))
    ]
    total_waits = [w for _c, w, _s in waiting_list]
    total = {
        "name": "total",
        **_waiting_json(total_waits, None),
        "waiting_over_target": over_target_total,
        **_figures_json(report.total),
        "agents_logged_in": len(logged_in),
    }
    for row in channel_rows:  # each contact is judged against its own queue's target
        row["waiting_over_target"] = sum(
            1 for c, w, _s in waiting_list if c.channel == row["name"] and w > targets.get(c.queue, float(DEFAULT_SL_TARGET_SECONDS))
        )

    # agents
    figures_by_agent: dict[int, AgentFigures] = agent_figures(list(states), today, day_start, now)
    open_by_agent: dict[int, list[int]] = {}
    for c in open_conversations:
        if c.status == "assigned" and c.agent_id is not None:
            open_by_agent.setdefault(c.agent_id, []).append(c.id)
    agent_rows: list[dict[str, Any]] = []
    known = {a.id for a in agents}
    extra_ids = sorted((set(presence_by_agent) | set(open_by_agent)) - known)
    agent_list = list(agents) + [AgentInfo(id=i, username=f"agent{i}", display_name=f"Agent {i}", role="agent") for i in extra_ids]
    for a in agent_list:
        p = presence_by_agent.get(a.id)
        convs = sorted(open_by_agent.get(a.id, []))
        shown = _shown_state(p, len(convs))
        figs = figures_by_agent.get(a.id)
        in_state_since: datetime | None = None
        if figs is not None and figs.current_state == shown and figs.current_state_since is not None:
            in_state_since = figs.current_state_since
        elif p is not None:
            in_state_since = datetime.fromtimestamp(p.since, timezone.utc)
            if shown == "busy":
                started = [c.assigned_at for c in open_conversations if c.id in convs and c.assigned_at is not None]
                if started:
                    in_state_since = max(in_state_since, min(started))
        agent_rows.append(
            {
                "id": a.id,
                "username": a.username,
                "display_name": a.display_name,
                "role": a.role,
                "state": shown,
                "state_since": _iso(in_state_since),
                "seconds_in_state": _num(max(0.0, (now - in_state_since).total_seconds()), 0) if in_state_since else None,
                "load": sum(int(v) for v in (p.load.values() if p else [])),
                "capacity": dict(p.capacity) if p else {},
                "conversations": convs,
                "handled": figs.handled if figs else 0,
                "occupancy": _num(figs.occupancy) if figs else None,
                "staffed_seconds": _num(figs.staffed_seconds, 0) if figs else 0.0,
                "busy_seconds": _num(figs.busy_seconds, 0) if figs else 0.0,
                "logged_in_seconds": _num(figs.logged_in_seconds, 0) if figs else 0.0,
            }
        )
    order = {"busy": 0, "available": 1, "wrap_up": 2, "away": 3, "offline": 4}
    agent_rows.sort(key=lambda r: (order.get(r["state"], 5), r["display_name"].lower()))

    # today's intervals: dense from the day's start to the current interval
    step = timedelta(minutes=interval_minutes)
    current = max(0, min(int((now - day_start) // step), (24 * 60) // interval_minutes - 1))
    starts = [day_start + i * step for i in range(current + 1)]

    def dense(rows: Iterable[Any]) -> list[dict[str, Any]]:
        by_start = {r.start: r for r in rows}
        out = []
        for s in starts:
            r = by_start.get(s)
            out.append(
                {
                    "start": s.isoformat(),
                    "offered": r.offered if r else 0,
                    "handled": r.handled if r else 0,
                    "abandoned": r.abandoned if r else 0,
                    "service_level": _num(r.service_level) if r else None,
                    "asa_seconds": _num(r.asa_seconds, 1) if r else None,
                    "aht_seconds": _num(r.aht_seconds, 1) if r else None,
                }
            )
        return out

    total_intervals = dense(interval_figures(today, day_start, interval_minutes, targets, group_by="total"))
    by_queue_rows = interval_figures(today, day_start, interval_minutes, targets, group_by="queue")
    queue_intervals = {
        name: dense(r for r in by_queue_rows if r.key == name) for name in sorted({r.key for r in by_queue_rows})
    }
    _add_interval_staffing(total_intervals, queue_intervals, queue_by_name, interval_minutes * 60)

    # conversations: waiting (longest first), then being handled
    agent_names = {a.id: a.display_name for a in agent_list}
    conversations = []
    for c, wait, since in waiting_list:
        conversations.append(
            {
                "id": c.id, "status": "queued", "channel": c.channel, "queue": c.queue, "customer_name": c.customer_name,
                "subject": c.subject, "agent_id": None, "agent_name": None, "since": since.isoformat(), "seconds": _num(wait, 0),
            }
        )
    for c in sorted((c for c in open_conversations if c.status == "assigned"), key=lambda c: c.id):
        start = c.assigned_at or c.created_at
        conversations.append(
            {
                "id": c.id, "status": "assigned", "channel": c.channel, "queue": c.queue, "customer_name": c.customer_name,
                "subject": c.subject, "agent_id": c.agent_id, "agent_name": agent_names.get(c.agent_id or 0),
                "since": start.isoformat(), "seconds": _num(max(0.0, (now - start).total_seconds()), 0),
            }
        )

    alerts = build_alerts(
        queue_rows, queue_by_name, waiting_list, overdue_orders,
        waiting_alert_limit=waiting_alert_limit, long_wait_alert_seconds=long_wait_alert_seconds,
    )
    return {
        "generated_at": now.isoformat(),
        "day_start": day_start.isoformat(),
        "interval_minutes": interval_minutes,
        "queues": queue_rows,
        "channels": channel_rows,
        "total": total,
        "agents": agent_rows,
        "intervals": {"total": total_intervals, "by_queue": queue_intervals},
        "staffing": staffing_rows,
        "conversations": conversations,
        "alerts": alerts,
        "overdue_orders": overdue_orders,
        "queue_names": [q.name for q in queues],
        "thresholds": {
            "waiting_alert_limit": waiting_alert_limit,
            "long_wait_alert_seconds": long_wait_alert_seconds,
            "default_sl_target_ratio": DEFAULT_SL_TARGET_RATIO,
            "fallback_aht_seconds": FALLBACK_AHT_SECONDS,
            "staffing_window_minutes": interval_minutes * STAFFING_WINDOW_INTERVALS,
        },
    }


def build_alerts(
    queue_rows: Sequence[Mapping[str, Any]],
    queue_by_name: Mapping[str, QueueInfo],
    waiting_list: Sequence[tuple[OpenConversation, float, datetime]],
    overdue_orders: int,
    *,
    waiting_alert_limit: int = WAITING_ALERT_LIMIT,
    long_wait_alert_seconds: float = LONG_WAIT_ALERT_SECONDS,
) -> list[dict[str, Any]]:
    """The alerts of a snapshot, most severe first.

    * ``service_level``: a queue's service level today is below its target share (``sl_target_ratio``);
      critical when 20 points or more below.
    * ``queue_waiting``: more contacts waiting in a queue than its limit (:data:`WAITING_ALERT_LIMIT`, or
      the queue's ``max_waiting`` when lower); critical at twice the limit.
    * ``long_wait``: contacts of a queue waiting longer than :data:`LONG_WAIT_ALERT_SECONDS`; critical at
      twice that.
    * ``overdue_orders``: open orders past their promised date.
    """
    alerts: list[dict[str, Any]] = []
    for row in queue_rows:
        name = row["name"]
        info = queue_by_name.get(name, QueueInfo(name=name))
        sl, ratio = row["service_level"], float(info.sl_target_ratio)
        if sl is not None and sl < ratio:
            alerts.append(
                {
                    "key": f"service_level:{name}", "kind": "service_level", "queue": name,
                    "severity": "critical" if sl < ratio - 0.2 else "warning",
                    "value": sl, "threshold": ratio,
                    "message": f"{name}: service level {sl:.0%} is below the {ratio:.0%} target (within {int(info.sl_target_seconds)} s)",
                }
            )
        limit = waiting_alert_limit if info.max_waiting is None else min(waiting_alert_limit, int(info.max_waiting))
        if row["waiting"] > limit:
            alerts.append(
                {
                    "key": f"queue_waiting:{name}", "kind": "queue_waiting", "queue": name,
                    "severity": "critical" if row["waiting"] >= 2 * max(limit, 1) else "warning",
                    "value": row["waiting"], "threshold": limit,
                    "message": f"{name}: {row['waiting']} contacts waiting (limit {limit})",
                }
            )
    long_by_queue: dict[str, list[tuple[int, float]]] = {}
    for c, wait, _since in waiting_list:
        if wait > long_wait_alert_seconds:
            long_by_queue.setdefault(c.queue, []).append((c.id, wait))
    for name, items in sorted(long_by_queue.items()):
        longest = max(w for _i, w in items)
        count = len(items)
        alerts.append(
            {
                "key": f"long_wait:{name}", "kind": "long_wait", "queue": name,
                "severity": "critical" if longest > 2 * long_wait_alert_seconds else "warning",
                "value": _num(longest, 0), "threshold": long_wait_alert_seconds, "count": count,
                "conversation_ids": [i for i, _w in items],
                "message": (
                    f"{name}: {count} contact{'s' if count != 1 else ''} waiting over {_duration(long_wait_alert_seconds)}"
                    f" (longest {_duration(longest)})"
                ),
            }
        )
    if overdue_orders > 0:
        alerts.append(
            {
                "key": "overdue_orders", "kind": "overdue_orders", "queue": None, "severity": "warning",
                "value": overdue_orders, "threshold": 0,
                "message": f"{overdue_orders} order{'s' if overdue_orders != 1 else ''} overdue (past the promised date, not shipped)",
            }
        )
    rank = {"critical": 0, "warning": 1}
    alerts.sort(key=lambda a: rank.get(a["severity"], 2))
    return alerts


# -- reading the inputs -------------------------------------------------------------------------------


class SnapshotBuilder:
    """Builds snapshots from SQL and the shared state, and caches them so all viewers share one build.

    :param hub: the hub (its ``db``, ``store`` and ``clock``).
    :param tz: the time zone whose midnight starts "today" (default: the server's local time zone).
    :param clock: epoch seconds now (default: the hub's clock).
    """

    def __init__(self, hub: HubService, *, tz: tzinfo | None = None, clock: Callable[[], float] | None = None) -> None:
        self.hub = hub
        self.tz = tz
        self.clock = clock or hub.clock
        self._lock = asyncio.Lock()
        self._cached: dict[str, Any] | None = None
        self._cached_at = -math.inf
        self._reference: tuple[list[QueueInfo], list[AgentInfo]] | None = None
        self._reference_at = -math.inf
        self._overdue: tuple[date, int] | None = None
        self._overdue_at = -math.inf

    def invalidate(self) -> None:
        """Forget the cached snapshot (after an action, the next one is built fresh)."""
        self._cached_at = -math.inf

    async def snapshot(self, max_age: float = 1.0) -> dict[str, Any]:
        """The cached snapshot if it is younger than ``max_age`` seconds, else a fresh one."""
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < max_age:
                return self._cached
            snap = await self._build()
            self._cached, self._cached_at = snap, time.monotonic()
            return snap

    async def build(self) -> dict[str, Any]:
        """A fresh snapshot (also cached)."""
        return await self.snapshot(max_age=0.0)

    async def _references(self) -> tuple[list[QueueInfo], list[AgentInfo]]:
        """Queues and active agents, cached for :data:`REFERENCE_TTL_SECONDS`."""
        if self._reference is None or time.monotonic() - self._reference_at >= REFERENCE_TTL_SECONDS:
            q = Queue.__table__.c  # type: ignore[attr-defined]
            a = Agent.__table__.c  # type: ignore[attr-defined]
            async with self.hub.db.session() as s:
                queues = (await s.execute(select(Queue.__table__).order_by(q.name))).all()  # type: ignore[attr-defined]
                agents = (
                    await s.execute(
                        select(a.id, a.username, a.display_name, a.role, a.skills).where(a.active.is_(True)).order_by(a.display_name)
                    )
                ).all()
            self._reference = (
                [
                    QueueInfo(
                        name=r.name,
                        id=r.id,
                        sl_target_seconds=float(r.sl_target_seconds if r.sl_target_seconds is not None else DEFAULT_SL_TARGET_SECONDS),
                        sl_target_ratio=float(r.sl_target_ratio) if r.sl_target_ratio else DEFAULT_SL_TARGET_RATIO,
                        max_waiting=int(r.max_waiting) if r.max_waiting else None,
                        skills_required=tuple(r.skills_required or ()),
                        channels=tuple(r.channels or ()),
                    )
                    for r in queues
                ],
                [AgentInfo(r.id, r.username, r.display_name, r.role, dict(r.skills or {})) for r in agents],
            )
            self._reference_at = time.monotonic()
        return self._reference

    async def _overdue_count(self, today: date) -> int:
        if self._overdue is None or self._overdue[0] != today or time.monotonic() - self._overdue_at >= REFERENCE_TTL_SECONDS:
            async with self.hub.db.session() as s:
                count = len(await orders_repo.overdue_orders(s, today))
            self._overdue, self._overdue_at = (today, count), time.monotonic()
        return self._overdue[1]

    async def _open_conversations(self, queue_names: Mapping[int, str]) -> list[OpenConversation]:
        c = Conversation.__table__.c  # type: ignore[attr-defined]
        cu = Customer.__table__.c  # type: ignore[attr-defined]
        stmt = (
            select(
                c.id, c.status, c.channel, c.queue_id, c.customer_id, cu.display_name, c.assigned_agent_id, c.subject,
                c.queued_at, c.assigned_at, c.created_at, c.updated_at,
            )
            .select_from(Conversation.__table__.join(Customer.__table__, cu.id == c.customer_id))  # type: ignore[attr-defined]
            .where(c.status.in_(("queued", "assigned")))
            .order_by(c.id)
            .limit(OPEN_CONVERSATIONS_LIMIT)
        )
        async with self.hub.db.session() as s:
            rows = (await s.execute(stmt)).all()
        return [
            OpenConversation(
                id=r.id, status=r.status, channel=r.channel, queue=queue_names.get(r.queue_id, "") if r.queue_id else "",
                customer_id=r.customer_id, customer_name=r.display_name or f"Visitor {r.customer_id}",
                agent_id=r.assigned_agent_id, subject=r.subject or "", queued_at=r.queued_at, assigned_at=r.assigned_at,
                created_at=r.created_at, updated_at=r.updated_at,
            )
            for r in rows
        ]

    async def _build(self) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        day_start = local_day_start(now, self.tz)
        queues, agents = await self._references()
        ids = {q.id: q.name for q in queues if q.id is not None}
        since = min(day_start, now - timedelta(minutes=INTERVAL_MINUTES * STAFFING_WINDOW_INTERVALS))
        records = await stats_repo.contact_records(self.hub.db, since, now + timedelta(minutes=1))
        states = await stats_repo.agent_state_rows(self.hub.db, day_start, now + timedelta(seconds=1))
        open_convs = await self._open_conversations(ids)
        presences = await self.hub.store.all_presence()
        local_today = (now.astimezone(self.tz) if self.tz is not None else now.astimezone()).date()
        overdue = await self._overdue_count(local_today)
        return compose_snapshot(
            now=now, day_start=day_start, records=records, states=states, queues=queues, agents=agents,
            presences=presences, open_conversations=open_convs, overdue_orders=overdue,
        )


# -- Socket.IO ------------------------------------------------------------------------------------------


def _payload(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HubError("bad_request", "payload must be an object")
    return data


async def _acked(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run a handler and turn its outcome into an acknowledgement (never an unhandled exception)."""
    try:
        return {"ok": True, **(await fn())}
    except HubError as exc:
        return exc.as_ack()
    except Exception:  # noqa: BLE001 - a client must get an answer, the bug gets logged
        log.exception("supervisor socket handler failed")
        return {"ok": False, "error": {"code": "internal", "message": "something went wrong on our side"}}


class SupervisorNamespace(socketio.AsyncNamespace):
    """The supervisor dashboard's connection (``/supervisor``), for supervisor and admin sessions only.

    S->C ``snapshot`` (on connect, then every :data:`PUSH_INTERVAL_SECONDS`), ``message`` (the live
    messages of the conversations this socket watches). C->S, each acknowledged ``{ok, ...}``:
    ``snapshot``, ``watch`` / ``unwatch`` ``{conversation_id}``, ``whisper`` ``{conversation_id, text}``,
    ``reassign`` ``{conversation_id, agent_id? | queue?}``, ``set_agent_status`` ``{agent_id, status}``.
    """

    def __init__(self, hub: HubService, sessions: SessionGate, builder: SnapshotBuilder, clock: Callable[[], float] = time.time) -> None:
        super().__init__(NAMESPACE)
        self.hub, self.sessions, self.builder, self.clock = hub, sessions, builder, clock
        self.viewers: set[str] = set()
        self._watching: dict[str, set[int]] = {}
        self.refresh = asyncio.Event()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Check the session cookie (supervisor or admin), join the supervisors' room, send a snapshot."""
        session = await self.sessions.load_from_environ(environ, self.clock())
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("log in first")
        if session.role not in SUPERVISOR_ROLES:
            raise socketio.exceptions.ConnectionRefusedError("supervisors only")
        actor = AgentRef(session.agent_id, session.username, session.display_name, session.role)
        await self.save_session(sid, {"actor": actor})
        self.sessions.attach(NAMESPACE, sid, session)
        await self.enter_room(sid, SUPERVISOR_ROOM)
        self.viewers.add(sid)
        try:
            snap = await self.builder.snapshot(max_age=PUSH_INTERVAL_SECONDS)
        except Exception:  # noqa: BLE001 - the push loop tries again; the connection stays
            log.exception("could not build the supervisor snapshot")
            return
        await self.emit("snapshot", snap, to=sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        """Stop the socket's watches."""
        self.sessions.detach(NAMESPACE, sid)
        self.viewers.discard(sid)
        for cid in self._watching.pop(sid, set()):
            await self._unmonitor(cid, sid)

    async def _actor(self, sid: str) -> AgentRef:
        actor: AgentRef = (await self.get_session(sid))["actor"]
        return actor

    async def _unmonitor(self, cid: int, sid: str) -> None:
        unmonitor = getattr(self.hub, "unmonitor", None)
        if unmonitor is None:
            return
        try:
            await unmonitor(cid, sid)
        except Exception:  # noqa: BLE001 - leaving a watch must not fail a disconnect
            log.exception("could not stop watching", extra={"conversation_id": cid})

    def _changed(self) -> None:
        """An action changed something: the next snapshot is built fresh and pushed soon."""
        self.builder.invalidate()
        self.refresh.set()

    async def on_snapshot(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The latest snapshot, now."""
        async def run() -> dict[str, Any]:
            return {"snapshot": await self.builder.snapshot(max_age=1.0)}

        return await _acked(run)

    async def on_watch(self, sid: str, data: Any) -> dict[str, Any]:
        """Watch a conversation silently: its transcript now, its messages live after (``message``)."""
        async def run() -> dict[str, Any]:
            actor = await self._actor(sid)
            raw = _payload(data).get("conversation_id")
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise HubError("bad_request", "conversation_id must be a positive integer")
            room = room_monitor(raw)
            await self.enter_room(sid, room)  # before the transcript is read: nothing falls in between
            try:
                params = inspect.signature(self.hub.monitor).parameters
                if "watcher" in params:
                    result = await self.hub.monitor(actor, raw, watcher=sid)
                else:
                    result = await self.hub.monitor(actor, raw)  # type: ignore[call-arg]  # a hub without watchers
            except BaseException:
                await self.leave_room(sid, room)
                raise
            self._watching.setdefault(sid, set()).add(raw)
            return {"conversation": result}

        return await _acked(run)

    async def on_unwatch(self, sid: str, data: Any) -> dict[str, Any]:
        """Stop watching a conversation."""
        async def run() -> dict[str, Any]:
            raw = _payload(data).get("conversation_id")
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise HubError("bad_request", "conversation_id must be a positive integer")
            await self.leave_room(sid, room_monitor(raw))
            if raw in self._watching.get(sid, set()):
                self._watching[sid].discard(raw)
                await self._unmonitor(raw, sid)
            return {"conversation_id": raw}

        return await _acked(run)

    async def on_whisper(self, sid: str, data: Any) -> dict[str, Any]:
        """A note to the agent of a conversation that the customer never sees."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            return {"message": await self.hub.whisper(await self._actor(sid), p.get("conversation_id"), p.get("text"))}

        return await _acked(run)

    async def on_reassign(self, sid: str, data: Any) -> dict[str, Any]:
        """Move a conversation to another agent or queue."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            result = await self.hub.reassign(
                await self._actor(sid), p.get("conversation_id"), to_agent=p.get("agent_id"), to_queue=p.get("queue")
            )
            self._changed()
            return {"result": result}

        return await _acked(run)

    async def on_set_agent_status(self, sid: str, data: Any) -> dict[str, Any]:
        """Change an agent's state (available / away / offline)."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            status = await self.hub.supervisor_set_status(await self._actor(sid), p.get("agent_id"), p.get("status"))
            self._changed()
            return {"agent_id": p.get("agent_id"), "status": status}

        return await _acked(run)


async def push_loop(sio: socketio.AsyncServer, namespace: SupervisorNamespace, interval: float = PUSH_INTERVAL_SECONDS) -> None:
    """Push a snapshot to this process's supervisors every ``interval`` seconds (sooner after an action).

    Nothing is built while no supervisor is connected here. With several hub processes each pushes only
    to its own sockets (``ignore_queue``), so a supervisor gets one snapshot per tick, not one per process.
    """
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(namespace.refresh.wait(), timeout=interval)
        namespace.refresh.clear()
        if not namespace.viewers:
            continue
        try:
            snap = await namespace.builder.build()
            await sio.emit("snapshot", snap, to=SUPERVISOR_ROOM, namespace=NAMESPACE, ignore_queue=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop must survive a bad pass; it is logged
            log.exception("supervisor push failed")


# -- HTTP -----------------------------------------------------------------------------------------------


@dataclass
class Supervision:
    """The supervisor parts of a running app (set once the hub is up)."""

    builder: SnapshotBuilder | None = None
    namespace: SupervisorNamespace | None = None
    task: asyncio.Task[None] | None = None


SUPERVISION_KEY = web.AppKey("supervision", Supervision)


async def supervisor_page(request: web.Request) -> web.StreamResponse:
    """GET /supervisor: the dashboard for supervisors and admins; others go to the console's login or get 403."""
    session = await current_agent(request)
    if session is None:
        raise web.HTTPFound("/console?next=/supervisor")
    if session.role not in SUPERVISOR_ROLES:
        return web.Response(
            status=403,
            content_type="text/html",
            text=(
                "<!doctype html><meta charset=utf-8><title>Supervisors only</title>"
                "<p>The supervisor view is for supervisors. <a href=\"/console\">Back to the console</a></p>"
            ),
        )
    return web.FileResponse(STATIC / "supervisor.html", headers={"Cache-Control": "no-cache"})


async def snapshot_api(request: web.Request) -> web.Response:
    """GET /api/supervisor/snapshot: the dashboard's snapshot as JSON (service token, or a supervisor's session)."""
    principal = request.get(PRINCIPAL_KEY)
    if principal is None or (principal.kind != "service" and principal.role not in SUPERVISOR_ROLES):
        return error_response(403, "forbidden", "supervisors only")
    sup = request.app[SUPERVISION_KEY]
    if sup.builder is None:
        return error_response(503, "unavailable", "the hub is starting")
    return web.json_response(await sup.builder.snapshot(max_age=1.0))


def register(app: web.Application, sio: socketio.AsyncServer, hub: HubService | None = None) -> None:
    """Mount the supervisor view on the app: routes now, the namespace and push loop when the app starts.

    Call it in ``create_app`` (before the app starts; after ``app.cleanup_ctx.append(_hub)``, since it
    reads ``app[HUB_KEY]`` at start when ``hub`` is not given). Calling it twice changes nothing.
    """
    if SUPERVISION_KEY in app:
        return
    sup = Supervision()
    app[SUPERVISION_KEY] = sup
    app.router.add_get("/supervisor", supervisor_page)
    # GET /api/supervisor/snapshot is in the API's route table (contact_center/api/routes.py), so the
    # OpenAPI document lists it; it calls snapshot_api.

    async def supervision(app_: web.Application) -> AsyncIterator[None]:
        the_hub = hub if hub is not None else app_[HUB_KEY]
        sup.builder = SnapshotBuilder(the_hub)
        sup.namespace = SupervisorNamespace(the_hub, app_[SESSIONS_KEY], sup.builder)
        sio.register_namespace(sup.namespace)
        sup.task = asyncio.get_running_loop().create_task(push_loop(sio, sup.namespace))
        yield
        sup.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sup.task

    app.cleanup_ctx.append(supervision)
