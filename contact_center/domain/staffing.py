"""How many agents an interval needs: Erlang C, computed in a way that stays stable for large traffic.

The model (Erlang C, an M/M/N queue): contacts arrive at random (Poisson) at a steady rate over the
interval, handle times are exponentially distributed with the given mean, nobody abandons, and every
agent serves one contact at a time. With ``A`` Erlangs of traffic (contacts x AHT / interval length)
and ``N > A`` agents:

* ``B(N)``, Erlang B, by the recurrence ``B(0) = 1``, ``B(n) = A B(n-1) / (n + A B(n-1))``. Every term
  lies in (0, 1], so nothing overflows: no factorials and no powers, even for thousands of agents.
* ``C(N) = N B / (N - A (1 - B))``, Erlang C: the probability that a contact has to wait.
* service level within ``t`` seconds: ``1 - C exp(-(N - A) t / AHT)``;
* average speed of answer: ``C AHT / (N - A)`` seconds;
* occupancy: ``A / N``.

With ``N <= A`` the queue grows without bound: every contact waits (``C = 1``), the service level is 0
and the average speed of answer is infinite. The agents needed are the smallest ``N`` whose service level
meets the target (and, when given, whose occupancy is at most ``max_occupancy``); shrinkage (breaks,
training, absence) then scales that up: ``ceil(N / (1 - shrinkage))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
import numpy.typing as npt

# A service level that equals its target in exact arithmetic may come out a few ulps short in floats.
_SL_TOLERANCE = 1e-12


@dataclass(frozen=True)
class StaffingResult:
    """The agents an interval needs and what that number of agents gives.

    ``service_level``, ``asa_seconds``, ``occupancy`` and ``probability_of_waiting`` are for ``agents``
    (before shrinkage); ``agents_with_shrinkage`` is the number to schedule.
    """

    agents: int
    service_level: float
    asa_seconds: float
    occupancy: float
    agents_with_shrinkage: int
    traffic_erlangs: float
    probability_of_waiting: float


def _finite(name: str, value: float) -> float:
    """``value`` as a float, or ValueError naming the field when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number")
    return number


def _non_negative(name: str, value: float) -> float:
    number = _finite(name, value)
    if number < 0:
        raise ValueError(f"{name} must be zero or more (got {value})")
    return number


def _agents_arg(agents: int) -> int:
    if isinstance(agents, bool) or not isinstance(agents, int):
        raise ValueError("agents must be a whole number")
    if agents < 0:
        raise ValueError(f"agents must be zero or more (got {agents})")
    return agents


def traffic_intensity(contacts: float, interval_seconds: float, aht_seconds: float) -> float:
    """The offered load in Erlangs: contacts x average handle time / interval length."""
    contacts = _non_negative("contacts", contacts)
    interval = _finite("interval_seconds", interval_seconds)
    if interval <= 0:
        raise ValueError(f"interval_seconds must be more than zero (got {interval_seconds})")
    aht = _non_negative("aht_seconds", aht_seconds)
    return contacts * aht / interval


def erlang_b(traffic: float, agents: int) -> float:
    """Erlang B: the probability that all ``agents`` are busy in a loss system offered ``traffic`` Erlangs."""
    a = _non_negative("traffic", traffic)
    n = _agents_arg(agents)
    b = 1.0
    for k in range(1, n + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


def _c_from_b(a: float, n: int, b: float) -> float:
    """Erlang C from Erlang B for the same traffic and agents (``n > a``)."""
    return n * b / (n - a * (1.0 - b))


def erlang_c(traffic: float, agents: int) -> float:
    """Erlang C: the probability that a contact has to wait, with ``agents`` serving ``traffic`` Erlangs.

    0 when there is no traffic; 1 when ``agents <= traffic`` (the queue never empties).
    """
    a = _non_negative("traffic", traffic)
    n = _agents_arg(agents)
    if a == 0:
        return 0.0
    if n <= a:
        return 1.0
    return min(1.0, max(0.0, _c_from_b(a, n, erlang_b(a, n))))


def _sl_from_c(c: float, a: float, n: int, aht: float, target: float) -> float:
    if a == 0 or c == 0:
        return 1.0
    if n <= a:
        return 0.0
    return min(1.0, max(0.0, 1.0 - c * math.exp(-(n - a) * target / aht)))


def _asa_from_c(c: float, a: float, n: int, aht: float) -> float:
    if a == 0 or c == 0:
        return 0.0
    if n <= a:
        return math.inf
    return c * aht / (n - a)


def service_level(traffic: float, agents: int, aht_seconds: float, target_seconds: float) -> float:
    """The share of contacts answered within ``target_seconds`` (0 when ``agents <= traffic``)."""
    a = _non_negative("traffic", traffic)
    n = _agents_arg(agents)
    aht = _non_negative("aht_seconds", aht_seconds)
    target = _non_negative("target_seconds", target_seconds)
    if a > 0 and aht == 0:
        raise ValueError("aht_seconds must be more than zero when there is traffic")
    return _sl_from_c(erlang_c(a, n), a, n, aht, target)


def asa(traffic: float, agents: int, aht_seconds: float) -> float:
    """The average speed of answer in seconds over all contacts (``inf`` when ``agents <= traffic``)."""
    a = _non_negative("traffic", traffic)
    n = _agents_arg(agents)
    aht = _non_negative("aht_seconds", aht_seconds)
    if a > 0 and aht == 0:
        raise ValueError("aht_seconds must be more than zero when there is traffic")
    return _asa_from_c(erlang_c(a, n), a, n, aht)


def apply_shrinkage(agents: int, shrinkage: float) -> int:
    """The agents to schedule so that ``agents`` remain after ``shrinkage``: ``ceil(agents / (1 - shrinkage))``.

    Computed on the decimal the caller wrote (0.3 is 3/10 exactly), so 14 agents at 30% give exactly 20,
    not 21 through a float rounding error.
    """
    n = _agents_arg(agents)
    s = _finite("shrinkage", shrinkage)
    if not 0 <= s < 1:
        raise ValueError(f"shrinkage must be at least 0 and less than 1 (got {shrinkage})")
    exact = Fraction(repr(s)) if isinstance(shrinkage, float) else Fraction(shrinkage)
    return math.ceil(Fraction(n) / (1 - exact))


def required_agents(
    contacts: float,
    interval_seconds: float,
    aht_seconds: float,
    target_sl: float,
    target_seconds: float,
    shrinkage: float = 0.0,
    *,
    max_occupancy: float = 1.0,
) -> StaffingResult:
    """The smallest number of agents whose Erlang C service level meets ``target_sl`` within ``target_seconds``.

    :param contacts: contacts expected in the interval (a forecast may be fractional).
    :param interval_seconds: length of the interval, more than zero.
    :param aht_seconds: average handle time (talk plus wrap-up) in seconds.
    :param target_sl: the share to answer within the target time, in (0, 1], e.g. 0.8.
    :param target_seconds: the target answer time, e.g. 20.
    :param shrinkage: share of paid time agents are not available, in [0, 1).
    :param max_occupancy: optionally also require ``traffic / agents <= max_occupancy`` (in (0, 1]).
    :raises ValueError: naming the field, for a negative, non-finite or out-of-range input.

    No traffic (no contacts, or a zero handle time) needs no agents: 0 agents, service level 1, ASA 0.
    """
    a = traffic_intensity(contacts, interval_seconds, aht_seconds)
    sl_goal = _finite("target_sl", target_sl)
    if not 0 < sl_goal <= 1:
        raise ValueError(f"target_sl must be more than 0 and at most 1 (got {target_sl})")
    target = _non_negative("target_seconds", target_seconds)
    occupancy_cap = _finite("max_occupancy", max_occupancy)
    if not 0 < occupancy_cap <= 1:
        raise ValueError(f"max_occupancy must be more than 0 and at most 1 (got {max_occupancy})")
    apply_shrinkage(0, shrinkage)  # validates shrinkage before any work
    aht = float(aht_seconds)
    if a == 0:
        return StaffingResult(0, 1.0, 0.0, 0.0, 0, 0.0, 0.0)

    # Walk Erlang B up to the first agent count above the traffic, then one agent at a time until the
    # target is met: one pass of the recurrence, O(answer) work in all.
    n = math.floor(a) + 1
    b = erlang_b(a, n)
    while True:
        c = min(1.0, max(0.0, _c_from_b(a, n, b)))
        sl = _sl_from_c(c, a, n, aht, target)
        if sl >= sl_goal - _SL_TOLERANCE and a / n <= occupancy_cap + _SL_TOLERANCE:
            return StaffingResult(
                agents=n,
                service_level=sl,
                asa_seconds=_asa_from_c(c, a, n, aht),
                occupancy=a / n,
                agents_with_shrinkage=apply_shrinkage(n, shrinkage),
                traffic_erlangs=a,
                probability_of_waiting=c,
            )
        n += 1
        ab = a * b
        b = ab / (n + ab)  # B only falls as agents are added and reaches 0 in floats: the loop ends


@dataclass(frozen=True)
class IntervalStaffing:
    """Erlang C for a run of intervals at once (one entry per interval, as NumPy arrays).

    ``agents`` is the need before shrinkage; ``agents_with_shrinkage`` the number to schedule;
    ``service_level``, ``asa_seconds`` and ``occupancy`` are what ``agents`` give.
    """

    traffic_erlangs: npt.NDArray[np.float64]
    agents: npt.NDArray[np.int64]
    agents_with_shrinkage: npt.NDArray[np.int64]
    service_level: npt.NDArray[np.float64]
    asa_seconds: npt.NDArray[np.float64]
    occupancy: npt.NDArray[np.float64]


def _array_arg(name: str, values: Sequence[float] | float, size: int | None) -> npt.NDArray[np.float64]:
    """A one-dimensional array of finite numbers >= 0 (a single number is repeated ``size`` times)."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        if size is None:
            raise ValueError(f"{name} must be a sequence of numbers")
        values = [float(values)] * size
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be zero or more")
    return arr


def required_agents_by_interval(
    contacts: Sequence[float],
    interval_seconds: float,
    aht_seconds: Sequence[float] | float,
    target_sl: float,
    target_seconds: float,
    shrinkage: float = 0.0,
) -> IntervalStaffing:
    """The agents each interval of a day (or any run of intervals) needs, all intervals at once.

    The same model and the same answers as :func:`required_agents` applied to every interval, computed
    with one vectorised Erlang B recurrence over all intervals (NumPy): a day of 96 intervals costs one
    pass up to the largest answer instead of 96 separate searches.

    :param contacts: contacts expected (or observed) in each interval.
    :param interval_seconds: length of one interval, more than zero.
    :param aht_seconds: average handle time, one per interval or one for all.
    :param target_sl: the share to answer within ``target_seconds``, in (0, 1].
    :param target_seconds: the target answer time.
    :param shrinkage: share of paid time agents are not available, in [0, 1).
    :raises ValueError: naming the field, for a bad input.

    >>> plan = required_agents_by_interval([100, 0, 50], 1800, 180, 0.8, 20, 0.3)
    >>> plan.agents.tolist(), plan.agents_with_shrinkage.tolist()
    ([14, 0, 8], [20, 0, 12])
    """
    volume = _array_arg("contacts", contacts, None)
    aht = _array_arg("aht_seconds", aht_seconds, volume.size)
    if aht.size != volume.size:
        raise ValueError("aht_seconds must have one value per interval (or be a single number)")
    interval = _finite("interval_seconds", interval_seconds)
    if interval <= 0:
        raise ValueError(f"interval_seconds must be more than zero (got {interval_seconds})")
    sl_goal = _finite("target_sl", target_sl)
    if not 0 < sl_goal <= 1:
        raise ValueError(f"target_sl must be more than 0 and at most 1 (got {target_sl})")
    target = _non_negative("target_seconds", target_seconds)
    apply_shrinkage(0, shrinkage)  # validates shrinkage

    a = volume * aht / interval
    size = a.size
    agents = np.zeros(size, dtype=np.int64)
    sl = np.ones(size)
    c_at = np.zeros(size)
    start = np.floor(a).astype(np.int64) + 1  # the first agent count above the traffic
    todo = a > 0
    b = np.ones(size)  # Erlang B at n, for every interval still searching
    n = 0
    while np.any(todo):
        n += 1
        ab = a * b
        b = np.where(todo, ab / (n + ab), b)
        ready = todo & (n >= start)
        if not np.any(ready):
            continue
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            c = np.clip(n * b / (n - a * (1.0 - b)), 0.0, 1.0)
            level = np.clip(1.0 - c * np.exp(-(n - a) * target / np.where(aht > 0, aht, 1.0)), 0.0, 1.0)
        met = ready & (level >= sl_goal - _SL_TOLERANCE)
        agents[met] = n
        sl[met] = level[met]
        c_at[met] = c[met]
        todo &= ~met
    with np.errstate(divide="ignore", invalid="ignore"):
        occupancy = np.where(agents > 0, a / np.maximum(agents, 1), 0.0)
        asa_s = np.where(agents > 0, c_at * aht / np.maximum(agents - a, 1e-300), 0.0)
    scheduled = np.array([apply_shrinkage(int(x), shrinkage) for x in agents], dtype=np.int64)
    return IntervalStaffing(a, agents, scheduled, sl, asa_s, occupancy)
