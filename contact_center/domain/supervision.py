"""The supervisor dashboard's snapshot, computed (pure: no I/O, every input passed in).

:func:`compose_snapshot` turns what SQL and the shared state say into one JSON-ready dict: figures per
queue, per channel and in total, agents, today's intervals, staffing (Erlang C) and alerts
(:func:`build_alerts`). Figures are defined in ``docs/subsystems/supervision.md``. Reading the inputs
(``crm_store.repositories.supervision``, ``crm_store.repositories.stats``, the shared state's presence)
and pushing the result (Socket.IO, HTTP) is ``contact_center.supervisor``'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterable, Mapping, Protocol, Sequence

from contact_center.domain.service_levels import (
    AgentFigures,
    AgentStateLike,
    ContactLike,
    QueueFigures,
    agent_figures,
    interval_figures,
    summarize,
)
from contact_center.domain.staffing import required_agents, required_agents_by_interval

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


class PresenceLike(Protocol):
    """What the snapshot reads of an agent's presence (``contact_center.ports.AgentPresence`` fits it)."""

    @property
    def agent_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def since(self) -> float: ...  # epoch seconds
    @property
    def load(self) -> Mapping[str, int]: ...
    @property
    def capacity(self) -> Mapping[str, int]: ...
    @property
    def skills(self) -> Mapping[str, int]: ...


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


def _eligible(p: PresenceLike, q: QueueInfo) -> bool:
    """Whether a logged-in agent has every skill the queue requires."""
    return all(int(p.skills.get(s, 0) or 0) >= 1 for s in q.skills_required)


def _reason_of(reasons: Mapping[int, Mapping[str, Any]] | None, agent_id: int, shown: str) -> dict[str, Any] | None:
    """Why the hub set the agent's state, while they are still in it (an Away for missed offers)."""
    found = (reasons or {}).get(agent_id)
    if not found or shown != "away":
        return None
    return {"reason": str(found.get("reason", "")), "missed": int(found.get("missed") or 0)}


def _shown_state(p: PresenceLike | None, open_count: int) -> str:
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
    states: Iterable[AgentStateLike],
    queues: Sequence[QueueInfo],
    agents: Sequence[AgentInfo],
    presences: Sequence[PresenceLike],
    open_conversations: Sequence[OpenConversation],
    overdue_orders: int,
    interval_minutes: int = INTERVAL_MINUTES,
    waiting_alert_limit: int = WAITING_ALERT_LIMIT,
    long_wait_alert_seconds: float = LONG_WAIT_ALERT_SECONDS,
    agent_reasons: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The dashboard's snapshot at ``now`` (pure: every input is passed in).

    :param agent_reasons: agent id -> why the hub set their state (``{reason: "missed_offers", missed, since}``):
        shown on the agent's row while they are still in that state, and raised as an ``agent_away`` alert.

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
                "reason": _reason_of(agent_reasons, a.id, shown),
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
        agents=agent_rows,
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
    agents: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The alerts of a snapshot, most severe first.

    * ``service_level``: a queue's service level today is below its target share (``sl_target_ratio``);
      critical when 20 points or more below.
    * ``queue_waiting``: more contacts waiting in a queue than its limit (:data:`WAITING_ALERT_LIMIT`, or
      the queue's ``max_waiting`` when lower); critical at twice the limit.
    * ``long_wait``: contacts of a queue waiting longer than :data:`LONG_WAIT_ALERT_SECONDS`; critical at
      twice that.
    * ``overdue_orders``: open orders past their promised date.
    * ``agent_away``: an agent the hub set Away because they missed offers in a row (an agent row's
      ``reason``), while they are still Away.
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
    for row in agents:
        reason = row.get("reason")
        if reason and reason.get("reason") == "missed_offers":
            missed = int(reason.get("missed") or 0)
            alerts.append(
                {
                    "key": f"agent_away:{row['id']}", "kind": "agent_away", "queue": None, "severity": "warning",
                    "agent_id": row["id"], "value": missed, "threshold": None,
                    "message": f"{row['display_name']} was set Away after missing {missed} offers in a row",
                }
            )
    rank = {"critical": 0, "warning": 1}
    alerts.sort(key=lambda a: rank.get(a["severity"], 2))
    return alerts
