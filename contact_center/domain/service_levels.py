"""Service-level figures of queues, channels and agents, from contact records and agent state intervals.

Pure: the caller reads the records (``crm_store.repositories.stats``) and passes ``now``.

Definitions (also in docs/subsystems/supervision.md)
-----------------------------------------------------
A contact is one conversation that entered an agent queue at ``queued_at``. Its *wait* is the time from
``queued_at`` to ``answered_at`` (answered), to ``ended_at`` (abandoned) or to ``now`` (still waiting).
Each contact is judged against the target answer time ``T`` of its own queue (``targets``, else
``default_target_seconds``), also when it is counted in a channel or in the total.

* offered: contacts that entered the queue. handled: contacts answered by an agent (``answered_at``
  set; an answered contact is never also counted as abandoned). abandoned: contacts the customer left
  before being answered. waiting: neither answered, abandoned nor ended.
* **service level** = answered within T / (answered + abandoned after T). Contacts abandoned within T
  ("short abandons") are left out of it, and contacts still waiting are not counted until they are
  answered or abandoned (``waiting_over_target`` shows those already past T). A wait of exactly T is
  within T. ``None`` when no contact counts.
* **ASA** (average speed of answer) = mean wait of the answered contacts.
* **abandonment rate** = abandoned / (answered + abandoned): of the contacts whose queue outcome is
  known, the share that gave up.
* **AHT** (average handle time) = mean ``handle_seconds`` of the contacts that have one (answered and
  ended: from answer to close, so wrap-up inside the conversation is included).
* **occupancy** (per agent) = busy time / staffed time. Staffed: in state available, busy or wrap_up
  (logged in and not away). Busy: staffed and either in state busy or wrap_up, or with at least one
  conversation open (from its ``answered_at`` to its ``ended_at``, or ``now``). Time away counts as
  logged in but not as staffed; offline is neither.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Literal, Mapping, Protocol, Sequence

DEFAULT_TARGET_SECONDS = 20.0

STAFFED_STATES: frozenset[str] = frozenset({"available", "busy", "wrap_up"})
BUSY_STATES: frozenset[str] = frozenset({"busy", "wrap_up"})
OFFLINE_STATE = "offline"


class ContactLike(Protocol):
    """What the figures read from a contact (``ContactRecord`` here, ``ContactRow`` from SQL)."""

    @property
    def queue(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def queued_at(self) -> datetime: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def abandoned(self) -> bool: ...
    @property
    def handle_seconds(self) -> float | None: ...
    @property
    def agent_id(self) -> int | None: ...


class AgentStateLike(Protocol):
    """One stretch of time an agent spent in one state (``ended_at`` None: still in it)."""

    @property
    def agent_id(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class ContactRecord:
    """One contact offered to a queue (see the module docstring for what each field means)."""

    queue: str
    channel: str
    queued_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    abandoned: bool = False
    handle_seconds: float | None = None
    agent_id: int | None = None
    conversation_id: int | None = None


@dataclass(frozen=True)
class AgentStateInterval:
    """An agent's state from ``started_at`` until ``ended_at`` (None: until now)."""

    agent_id: int
    state: str
    started_at: datetime
    ended_at: datetime | None = None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class QueueFigures:
    """The figures of one queue, one channel or the total, at ``now``."""

    offered: int = 0
    handled: int = 0
    abandoned: int = 0
    answered_within_target: int = 0
    abandoned_within_target: int = 0
    waiting: int = 0
    waiting_over_target: int = 0
    longest_wait_seconds: float = 0.0
    answer_wait_seconds_total: float = 0.0
    handle_seconds_total: float = 0.0
    handle_count: int = 0

    @property
    def service_level(self) -> float | None:
        """Answered within target / (answered + abandoned after target); None when nothing counts."""
        return _ratio(self.answered_within_target, self.handled + self.abandoned - self.abandoned_within_target)

    @property
    def asa_seconds(self) -> float | None:
        """Mean wait of the answered contacts."""
        return _ratio(self.answer_wait_seconds_total, self.handled)

    @property
    def abandonment_rate(self) -> float | None:
        """Abandoned / (answered + abandoned)."""
        return _ratio(self.abandoned, self.handled + self.abandoned)

    @property
    def aht_seconds(self) -> float | None:
        """Mean handle time of the contacts that have one."""
        return _ratio(self.handle_seconds_total, self.handle_count)


@dataclass(frozen=True)
class ServiceLevelReport:
    """Figures per queue, per channel and in total."""

    by_queue: Mapping[str, QueueFigures]
    by_channel: Mapping[str, QueueFigures]
    total: QueueFigures


@dataclass(frozen=True)
class IntervalFigures:
    """What happened to the contacts offered in one interval (by their ``queued_at``), for one key.

    ``key`` is the queue name, the channel, or ``"total"``, depending on how the figures were grouped.
    """

    key: str
    start: datetime
    offered: int = 0
    handled: int = 0
    abandoned: int = 0
    answered_within_target: int = 0
    abandoned_within_target: int = 0
    answer_wait_seconds_total: float = 0.0
    handle_seconds_total: float = 0.0
    handle_count: int = 0

    @property
    def service_level(self) -> float | None:
        """Answered within target / (answered + abandoned after target); None when nothing counts."""
        return _ratio(self.answered_within_target, self.handled + self.abandoned - self.abandoned_within_target)

    @property
    def asa_seconds(self) -> float | None:
        """Mean wait of the answered contacts."""
        return _ratio(self.answer_wait_seconds_total, self.handled)

    @property
    def abandonment_rate(self) -> float | None:
        """Abandoned / (answered + abandoned)."""
        return _ratio(self.abandoned, self.handled + self.abandoned)

    @property
    def aht_seconds(self) -> float | None:
        """Mean handle time of the contacts that have one."""
        return _ratio(self.handle_seconds_total, self.handle_count)


@dataclass(frozen=True)
class AgentFigures:
    """One agent's figures over a window (e.g. today so far)."""

    agent_id: int
    handled: int
    logged_in_seconds: float
    staffed_seconds: float
    busy_seconds: float
    seconds_in_state: Mapping[str, float] = field(default_factory=dict)
    current_state: str | None = None
    current_state_since: datetime | None = None

    @property
    def occupancy(self) -> float | None:
        """Busy time / staffed time; None when the agent was not staffed in the window."""
        return _ratio(self.busy_seconds, self.staffed_seconds)


# -- contacts ----------------------------------------------------------------------------------------


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


def _target(targets: Mapping[str, float] | None, queue: str, default: float) -> float:
    if targets is not None and queue in targets:
        return float(targets[queue])
    return default


def _check_target(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number of seconds, zero or more")


class _Tally:
    """Adds contacts up into a ``QueueFigures``."""

    def __init__(self) -> None:
        self.offered = self.handled = self.abandoned = 0
        self.answered_within = self.abandoned_within = 0
        self.waiting = self.waiting_over = 0
        self.longest = 0.0
        self.wait_total = self.handle_total = 0.0
        self.handle_count = 0

    def add(self, c: ContactLike, target: float, now: datetime) -> None:
        self.offered += 1
        if c.answered_at is not None:
            self.handled += 1
            wait = _seconds(c.answered_at - c.queued_at)
            self.wait_total += wait
            self.answered_within += wait <= target
        elif c.abandoned:
            self.abandoned += 1
            # an abandon with no end time counts against the queue (after the target)
            if c.ended_at is not None and _seconds(c.ended_at - c.queued_at) <= target:
                self.abandoned_within += 1
        elif c.ended_at is None and c.queued_at <= now:
            wait = _seconds(now - c.queued_at)
            self.waiting += 1
            self.waiting_over += wait > target
            self.longest = max(self.longest, wait)
        if c.handle_seconds is not None:
            self.handle_total += float(c.handle_seconds)
            self.handle_count += 1

    def figures(self) -> QueueFigures:
        return QueueFigures(
            offered=self.offered,
            handled=self.handled,
            abandoned=self.abandoned,
            answered_within_target=self.answered_within,
            abandoned_within_target=self.abandoned_within,
            waiting=self.waiting,
            waiting_over_target=self.waiting_over,
            longest_wait_seconds=self.longest,
            answer_wait_seconds_total=self.wait_total,
            handle_seconds_total=self.handle_total,
            handle_count=self.handle_count,
        )


def summarize(
    records: Iterable[ContactLike],
    now: datetime,
    targets: Mapping[str, float] | None = None,
    *,
    default_target_seconds: float = DEFAULT_TARGET_SECONDS,
) -> ServiceLevelReport:
    """Figures per queue, per channel and in total of ``records`` as they stand at ``now``.

    :param targets: the target answer time in seconds of each queue, by queue name.
    """
    _check_target("default_target_seconds", default_target_seconds)
    by_queue: dict[str, _Tally] = defaultdict(_Tally)
    by_channel: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for c in records:
        target = _target(targets, c.queue, default_target_seconds)
        by_queue[c.queue].add(c, target, now)
        by_channel[c.channel].add(c, target, now)
        total.add(c, target, now)
    return ServiceLevelReport(
        by_queue={k: t.figures() for k, t in sorted(by_queue.items())},
        by_channel={k: t.figures() for k, t in sorted(by_channel.items())},
        total=total.figures(),
    )


def interval_figures(
    records: Iterable[ContactLike],
    day_start: datetime,
    interval_minutes: int,
    targets: Mapping[str, float] | None = None,
    *,
    default_target_seconds: float = DEFAULT_TARGET_SECONDS,
    group_by: Literal["queue", "channel", "total"] = "queue",
) -> list[IntervalFigures]:
    """Offered, handled, abandoned and service level per interval of the day that starts at ``day_start``.

    Contacts belong to the interval they were offered in (their ``queued_at``); contacts outside
    ``[day_start, day_start + 24 h)`` are left out. Only intervals with at least one contact are
    returned, ordered by key, then start.

    :param interval_minutes: the interval length; it must divide a day (15 and 30 are the usual ones).
    """
    if isinstance(interval_minutes, bool) or not isinstance(interval_minutes, int) or interval_minutes <= 0 or 1440 % interval_minutes:
        raise ValueError(f"interval_minutes must be a whole number of minutes that divides a day (got {interval_minutes})")
    if group_by not in ("queue", "channel", "total"):
        raise ValueError("group_by must be 'queue', 'channel' or 'total'")
    _check_target("default_target_seconds", default_target_seconds)
    step = timedelta(minutes=interval_minutes)
    day_end = day_start + timedelta(days=1)
    tallies: dict[tuple[str, int], _Tally] = defaultdict(_Tally)
    for c in records:
        if not day_start <= c.queued_at < day_end:
            continue
        key = c.queue if group_by == "queue" else c.channel if group_by == "channel" else "total"
        index = (c.queued_at - day_start) // step
        # the interval figures are about outcomes: waiting contacts are offered, nothing else yet
        tallies[(key, index)].add(c, _target(targets, c.queue, default_target_seconds), c.queued_at)
    rows = []
    for (key, index), tally in sorted(tallies.items()):
        f = tally.figures()
        rows.append(
            IntervalFigures(
                key=key,
                start=day_start + index * step,
                offered=f.offered,
                handled=f.handled,
                abandoned=f.abandoned,
                answered_within_target=f.answered_within_target,
                abandoned_within_target=f.abandoned_within_target,
                answer_wait_seconds_total=f.answer_wait_seconds_total,
                handle_seconds_total=f.handle_seconds_total,
                handle_count=f.handle_count,
            )
        )
    return rows


# -- agents ------------------------------------------------------------------------------------------

Span = tuple[datetime, datetime]


def _clip(start: datetime, end: datetime | None, since: datetime, now: datetime) -> Span | None:
    lo, hi = max(start, since), min(end if end is not None else now, now)
    return (lo, hi) if lo < hi else None


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _overlap_seconds(a: Sequence[Span], b: Sequence[Span]) -> float:
    """Seconds covered by both of two sorted lists of disjoint spans."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            total += (hi - lo).total_seconds()
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return total


def agent_figures(
    states: Iterable[AgentStateLike],
    records: Iterable[ContactLike],
    since: datetime,
    now: datetime,
) -> dict[int, AgentFigures]:
    """Each agent's handled contacts, time in each state and occupancy within ``[since, now]``.

    Agents appear when they have a state interval or answered a contact in the window. ``handled``
    counts the contacts an agent answered in the window. The current state is the latest state interval
    still open (no ``ended_at``) that started by ``now``.
    """
    if now < since:
        raise ValueError("now must not be before since")
    state_spans: dict[int, dict[str, list[Span]]] = defaultdict(lambda: defaultdict(list))
    current: dict[int, tuple[datetime, str]] = {}
    for st in states:
        if st.ended_at is None and st.started_at <= now:
            seen = current.get(st.agent_id)
            if seen is None or st.started_at >= seen[0]:
                current[st.agent_id] = (st.started_at, st.state)
        span = _clip(st.started_at, st.ended_at, since, now)
        if span is not None:
            state_spans[st.agent_id][st.state].append(span)
        else:
            _ = state_spans[st.agent_id]  # the agent still appears, with zero time
    handled: dict[int, int] = defaultdict(int)
    open_spans: dict[int, list[Span]] = defaultdict(list)
    for c in records:
        if c.agent_id is None or c.answered_at is None:
            continue
        if since <= c.answered_at <= now:
            handled[c.agent_id] += 1
        span = _clip(c.answered_at, c.ended_at, since, now)
        if span is not None:
            open_spans[c.agent_id].append(span)
    out: dict[int, AgentFigures] = {}
    for agent_id in sorted(set(state_spans) | set(handled)):
        by_state = state_spans.get(agent_id, {})
        seconds = {s: sum((hi - lo).total_seconds() for lo, hi in spans) for s, spans in sorted(by_state.items())}
        staffed = _merge(span for s, spans in by_state.items() if s in STAFFED_STATES for span in spans)
        busy = _merge(
            [span for s, spans in by_state.items() if s in BUSY_STATES for span in spans] + open_spans.get(agent_id, [])
        )
        now_state = current.get(agent_id)
        out[agent_id] = AgentFigures(
            agent_id=agent_id,
            handled=handled.get(agent_id, 0),
            logged_in_seconds=sum(v for s, v in seconds.items() if s != OFFLINE_STATE),
            staffed_seconds=sum((hi - lo).total_seconds() for lo, hi in staffed),
            busy_seconds=_overlap_seconds(busy, staffed),
            seconds_in_state=seconds,
            current_state=now_state[1] if now_state else None,
            current_state_since=now_state[0] if now_state else None,
        )
    return out
