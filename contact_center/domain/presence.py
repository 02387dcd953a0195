"""Agent presence rules, pure: which states an agent may choose, what a lost presence comes back as,
when wrap-up starts, and who counts as serving.

The states themselves are the routing core's :class:`~contact_center.domain.routing.AgentStatus`.
"""

from __future__ import annotations

from typing import Iterable

from contact_center.domain.routing import AgentStatus

CHOOSABLE: tuple[str, ...] = (AgentStatus.AVAILABLE.value, AgentStatus.AWAY.value, AgentStatus.OFFLINE.value)
"""The states an agent (or a supervisor for them) may set; ``wrap_up`` and ``busy`` are the hub's."""

MISSED_OFFERS_AWAY = 2
"""After this many offers in a row that the agent let time out, the hub sets them Away (reason
:data:`REASON_MISSED_OFFERS`) and tells the supervisors: an agent who is not at their desk is not
offered more customers who would each wait a whole offer timeout for nothing."""

REASON_MISSED_OFFERS = "missed_offers"
"""Why the hub set an agent Away: they missed :data:`MISSED_OFFERS_AWAY` offers in a row."""

_RESTORABLE = frozenset({AgentStatus.AVAILABLE.value, AgentStatus.AWAY.value, AgentStatus.WRAP_UP.value})


class NotChoosable(ValueError):
    """A state an agent may not set themselves."""

    def __init__(self, status: object) -> None:
        super().__init__(f"status must be one of {', '.join(CHOOSABLE)}")
        self.status = status


def check_choosable(status: object) -> str:
    """The state an agent asked for, if they may choose it; :class:`NotChoosable` otherwise."""
    if not isinstance(status, str) or status not in CHOOSABLE:
        raise NotChoosable(status)
    return status


def restored_status(last_recorded: str | None) -> str:
    """The state a connected agent gets back when the shared state lost their presence.

    Their last recorded state, where it is one a presence can start in: ``busy`` was derived from a
    load that is rebuilt separately, so it comes back as ``available``; anything unknown is ``away``
    (never offered work they did not ask for).
    """
    if last_recorded is None:
        return AgentStatus.AWAY.value
    if last_recorded == AgentStatus.BUSY.value:
        return AgentStatus.AVAILABLE.value
    return last_recorded if last_recorded in _RESTORABLE else AgentStatus.AWAY.value


def starts_wrap_up(wrap_up_seconds: float, open_assignments: int, status: str | None) -> bool:
    """After a conversation closes, an available agent with nothing else open gets a wrap-up pause."""
    return wrap_up_seconds > 0 and open_assignments == 0 and status == AgentStatus.AVAILABLE.value


def ends_wrap_up(status: str | None) -> bool:
    """At the end of the pause, the agent becomes available again unless they chose another state meanwhile."""
    return status == AgentStatus.WRAP_UP.value


def serving(statuses: Iterable[str]) -> int:
    """How many agents are taking contacts now (available or busy)."""
    return sum(1 for s in statuses if s in (AgentStatus.AVAILABLE.value, AgentStatus.BUSY.value))


def missed_streak(streak: int, *, accepted_or_declined: bool = False) -> int:
    """The agent's count of offers missed in a row after one more missed offer (or, with
    ``accepted_or_declined``, after they answered one: back to zero)."""
    return 0 if accepted_or_declined else max(0, int(streak)) + 1


def away_for_missed(streak: int, status: str | None, limit: int = MISSED_OFFERS_AWAY) -> bool:
    """Whether ``streak`` missed offers in a row sets the agent Away: only one taking contacts (available or
    busy: an agent who chose Away, or is in wrap-up, is not moved), and only at ``limit`` or more (0: never)."""
    return limit > 0 and streak >= limit and status in (AgentStatus.AVAILABLE.value, AgentStatus.BUSY.value)


def capacity_of(configured: dict[str, int] | None) -> dict[str, int]:
    """An agent's per-channel capacity as configured; a web callback is a phone call (docs/subsystems/callback.md),
    so an agent without a ``callback`` entry takes as many callbacks as calls."""
    capacity = dict(configured or {})
    if "callback" not in capacity and "phone" in capacity:
        capacity["callback"] = capacity["phone"]
    return capacity
