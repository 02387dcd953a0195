"""Erlang C staffing: a published worked example, exact references, properties, large traffic, the CLI.

The worked example
------------------
Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example"
(https://www.callcentrehelper.com/erlang-c-formula-example-121281.htm). Inputs: 100 calls in a
30-minute period, average handling time 180 s, required service level 80% within a target answer time
of 20 s, maximum occupancy 85%, shrinkage 30%. The article works out 200 calls an hour x 3 minutes =
600 call minutes = 10 Erlangs of traffic, and starts the search at N = A + 1 = 11 agents.

The same example is reproduced in the pyworkforce documentation ("Solving Queue Problems with ErlangC",
docs/tutorials/erlangc_example.rst of github.com/rodrigo-arenas/pyworkforce, which cites the article),
with the published result: raw_positions 14, positions (after 30% shrinkage) 20, service_level 0.888,
occupancy 0.714, waiting_probability 0.174.

Every figure asserted here is also recomputed independently below, with the textbook formula (powers
and factorials) in exact rational arithmetic: 11 agents wait with probability 0.6821 and reach a 39.0%
service level; 12 give 64.0%; 13 give 79.6% (just short of 80%); 14 give 88.8% with an ASA of 7.8 s.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contact_center.domain.staffing import (
    StaffingResult,
    apply_shrinkage,
    asa,
    erlang_b,
    erlang_c,
    required_agents,
    service_level,
    traffic_intensity,
)


# -- independent references --------------------------------------------------------------------------


def exact_erlang_c(a: Fraction, n: int) -> Fraction:
    """The textbook Erlang C formula, term by term with powers and factorials, in exact arithmetic."""
    top = a**n / math.factorial(n) * Fraction(n) / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def exact_erlang_b(a: Fraction, n: int) -> Fraction:
    """The textbook Erlang B formula in exact arithmetic."""
    return (a**n / math.factorial(n)) / sum(a**k / math.factorial(k) for k in range(n + 1))


def log_space_erlang_c(a: float, n: int) -> float:
    """Erlang C from Poisson terms summed in log space (lgamma + log-sum-exp): no overflow at any size."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n)]
    top = n * math.log(a) - math.lgamma(n + 1) + math.log(n / (n - a))
    peak = max(max(logs), top)
    denominator = sum(math.exp(x - peak) for x in logs) + math.exp(top - peak)
    return math.exp(top - peak) / denominator


def reference_sl(a: float, n: int, aht: float, t: float) -> float:
    return 1 - float(exact_erlang_c(Fraction(a), n)) * math.exp(-(n - a) * t / aht)


# -- the published worked example -----------------------------------------------------------------------


def test_callcentrehelper_worked_example() -> None:
    result = required_agents(
        contacts=100, interval_seconds=1800, aht_seconds=180, target_sl=0.8, target_seconds=20, shrinkage=0.3
    )
    # published: 10 Erlangs; 14 agents, 20 with 30% shrinkage; SL 0.888, occupancy 0.714, P(wait) 0.174
    assert result.traffic_erlangs == 10.0
    assert result.agents == 14
    assert result.agents_with_shrinkage == 20
    assert round(result.service_level, 3) == 0.888
    assert round(result.occupancy, 3) == 0.714
    assert round(result.probability_of_waiting, 3) == 0.174
    # the same figures from the exact textbook formula
    pw = exact_erlang_c(Fraction(10), 14)
    assert result.probability_of_waiting == pytest.approx(float(pw), rel=1e-12)
    assert result.service_level == pytest.approx(1 - float(pw) * math.exp(-4 * 20 / 180), rel=1e-12)
    assert result.asa_seconds == pytest.approx(float(pw) * 180 / 4, rel=1e-12)
    assert round(result.asa_seconds, 1) == 7.8
    assert result.occupancy == pytest.approx(10 / 14)


@pytest.mark.parametrize(
    ("agents", "p_wait", "sl", "asa_s", "occupancy"),
    [
        (11, 0.682, 0.390, 122.8, 0.909),  # the article's first try, N = A + 1
        (12, 0.449, 0.640, 40.4, 0.833),
        (13, 0.285, 0.796, 17.1, 0.769),  # still short of 80%: 14 is the smallest that meets the target
        (14, 0.174, 0.888, 7.8, 0.714),  # published (pyworkforce's reproduction of the article's example)
    ],
)
def test_worked_example_by_agents(agents: int, p_wait: float, sl: float, asa_s: float, occupancy: float) -> None:
    """The table of docs/subsystems/supervision.md, each figure also recomputed with the exact formula."""
    exact_c = float(exact_erlang_c(Fraction(10), agents))
    assert erlang_c(10.0, agents) == pytest.approx(exact_c, rel=1e-12)
    assert service_level(10.0, agents, 180, 20) == pytest.approx(reference_sl(10.0, agents, 180, 20), rel=1e-12)
    assert asa(10.0, agents, 180) == pytest.approx(exact_c * 180 / (agents - 10), rel=1e-12)
    assert (round(erlang_c(10.0, agents), 3), round(service_level(10.0, agents, 180, 20), 3)) == (p_wait, sl)
    assert (round(asa(10.0, agents, 180), 1), round(10 / agents, 3)) == (asa_s, occupancy)


def test_worked_example_probability_of_waiting_with_eleven_agents() -> None:
    assert round(erlang_c(10.0, 11), 4) == 0.6821
    assert erlang_c(10.0, 11) == pytest.approx(float(exact_erlang_c(Fraction(10), 11)), rel=1e-12)
    assert asa(10.0, 11, 180) == pytest.approx(float(exact_erlang_c(Fraction(10), 11)) * 180, rel=1e-12)


def test_cli_prints_the_worked_example_as_json() -> None:
    done = _cli("--contacts", "100", "--interval-seconds", "1800", "--aht-seconds", "180",
                "--target-sl", "0.8", "--target-seconds", "20", "--shrinkage", "0.3", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # exactly one JSON object on stdout
    assert set(payload) == {"agents", "service_level", "asa_seconds", "occupancy", "agents_with_shrinkage"}
    assert payload["agents"] == 14 and payload["agents_with_shrinkage"] == 20
    assert round(payload["service_level"], 3) == 0.888
    assert round(payload["occupancy"], 3) == 0.714
    assert round(payload["asa_seconds"], 1) == 7.8


def test_cli_prints_a_table_without_json_and_defaults_to_no_shrinkage() -> None:
    done = _cli("--contacts", "100", "--interval-seconds", "1800", "--aht-seconds", "180",
                "--target-sl", "0.8", "--target-seconds", "20")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("agents needed") and line.split()[-1] == "14" for line in lines)
    assert any("service level" in line and line.endswith("88.8%") for line in lines)
    assert any("shrinkage" in line and line.split()[-1] == "14" for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shrinkage", "1"], "shrinkage"),
        (["--shrinkage", "-0.1"], "shrinkage"),
        (["--target-sl", "1.5"], "target_sl"),
        (["--interval-seconds", "0"], "interval_seconds"),
        (["--contacts", "-5"], "contacts"),
        (["--contacts", "many"], "--contacts"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(args: list[str], message: str) -> None:
    base = {"--contacts": "100", "--interval-seconds": "1800", "--aht-seconds": "180", "--target-sl": "0.8", "--target-seconds": "20"}
    base.update(dict(zip(args[::2], args[1::2])))
    done = _cli(*[x for kv in base.items() for x in kv], "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr


def test_cli_missing_argument_exits_2() -> None:
    done = _cli("--contacts", "100", "--json")
    assert done.returncode == 2 and "required" in done.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": "sqlite+aiosqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "-m", "contact_center.cli", "staffing", *args], env=env, capture_output=True, text=True, timeout=60
    )


# -- exactness against the textbook formula --------------------------------------------------------------


@given(
    a=st.fractions(min_value=Fraction(1, 100), max_value=40, max_denominator=100),
    extra=st.integers(min_value=0, max_value=25),
)
@settings(max_examples=150, deadline=None)
def test_erlang_c_matches_the_exact_formula(a: Fraction, extra: int) -> None:
    n = math.floor(a) + 1 + extra
    assert erlang_c(float(a), n) == pytest.approx(float(exact_erlang_c(a, n)), rel=1e-9, abs=1e-300)
    assert erlang_b(float(a), n) == pytest.approx(float(exact_erlang_b(a, n)), rel=1e-9, abs=1e-300)


def test_unstable_queue_and_no_traffic() -> None:
    assert erlang_c(10.0, 10) == 1.0 and erlang_c(10.0, 3) == 1.0
    assert service_level(10.0, 10, 180, 20) == 0.0
    assert asa(10.0, 10, 180) == math.inf
    assert erlang_c(0.0, 0) == 0.0 and service_level(0.0, 0, 180, 20) == 1.0 and asa(0.0, 0, 180) == 0.0
    assert erlang_b(5.0, 0) == 1.0


# -- properties ------------------------------------------------------------------------------------------


@given(
    contacts=st.floats(min_value=1, max_value=3000),
    aht=st.floats(min_value=10, max_value=900),
    target=st.floats(min_value=0, max_value=120),
)
@settings(max_examples=100, deadline=None)
def test_service_level_rises_with_agents(contacts: float, aht: float, target: float) -> None:
    a = traffic_intensity(contacts, 1800, aht)
    start = math.floor(a) + 1
    levels = [service_level(a, n, aht, target) for n in range(start, start + 30)]
    assert all(0.0 <= x <= 1.0 for x in levels)
    assert all(later >= earlier for earlier, later in zip(levels, levels[1:]))
    waits = [asa(a, n, aht) for n in range(start, start + 30)]
    assert all(later <= earlier for earlier, later in zip(waits, waits[1:]))


@given(
    contacts=st.integers(min_value=0, max_value=5000),
    more=st.integers(min_value=0, max_value=500),
    aht=st.integers(min_value=1, max_value=900),
    sl=st.floats(min_value=0.05, max_value=0.99),
    target=st.integers(min_value=0, max_value=120),
    shrinkage=st.floats(min_value=0, max_value=0.6),
)
@settings(max_examples=100, deadline=None)
def test_agents_needed_never_fall_as_volume_rises(
    contacts: int, more: int, aht: int, sl: float, target: int, shrinkage: float
) -> None:
    low = required_agents(contacts, 1800, aht, sl, target, shrinkage)
    high = required_agents(contacts + more, 1800, aht, sl, target, shrinkage)
    assert high.agents >= low.agents
    assert high.agents_with_shrinkage >= low.agents_with_shrinkage
    for r in (low, high):
        # the answer is the smallest count that meets the target
        assert r.service_level >= sl - 1e-12
        if r.agents > 0:
            assert service_level(r.traffic_erlangs, r.agents - 1, aht, target) < sl
        assert r.agents_with_shrinkage >= r.agents


def test_large_traffic_is_finite_exact_and_fast() -> None:
    started = time.perf_counter()
    result = required_agents(20_000, 1800, 300, 0.8, 20, 0.3)  # 3,333.3 Erlangs
    elapsed = time.perf_counter() - started
    assert result.traffic_erlangs == pytest.approx(10_000 / 3)
    assert all(math.isfinite(x) for x in (result.service_level, result.asa_seconds, result.occupancy))
    assert result.traffic_erlangs < result.agents < result.traffic_erlangs * 1.05
    assert 0.8 <= result.service_level < 1 and 0.9 < result.occupancy < 1
    assert service_level(result.traffic_erlangs, result.agents - 1, 300, 20) < 0.8
    assert result.agents_with_shrinkage == math.ceil(Fraction(result.agents) / Fraction(7, 10))
    # the recurrence agrees with an independent log-space computation at this size
    c = log_space_erlang_c(result.traffic_erlangs, result.agents)
    assert result.probability_of_waiting == pytest.approx(c, rel=1e-9)
    assert elapsed < 0.5


@pytest.mark.parametrize(("a", "n"), [(500.0, 520), (850.5, 900), (3333.3, 3400), (20_000.0, 20_150)])
def test_erlang_c_is_stable_for_hundreds_and_thousands_of_agents(a: float, n: int) -> None:
    c = erlang_c(a, n)
    assert 0.0 < c < 1.0
    assert c == pytest.approx(log_space_erlang_c(a, n), rel=1e-9)


# -- inputs ----------------------------------------------------------------------------------------------


def test_zero_contacts_need_no_agents() -> None:
    assert required_agents(0, 1800, 180, 0.8, 20, 0.3) == StaffingResult(0, 1.0, 0.0, 0.0, 0, 0.0, 0.0)
    assert required_agents(100, 1800, 0, 0.8, 20).agents == 0  # no handle time is no traffic either


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"contacts": -1}, "contacts"),
        ({"contacts": math.nan}, "contacts"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"interval_seconds": -60}, "interval_seconds"),
        ({"aht_seconds": -1}, "aht_seconds"),
        ({"target_sl": 0}, "target_sl"),
        ({"target_sl": 1.01}, "target_sl"),
        ({"target_seconds": -5}, "target_seconds"),
        ({"shrinkage": 1.0}, "shrinkage"),
        ({"shrinkage": -0.1}, "shrinkage"),
        ({"max_occupancy": 0}, "max_occupancy"),
    ],
)
def test_invalid_inputs_name_the_field(kwargs: dict[str, float], field: str) -> None:
    args: dict[str, float] = {
        "contacts": 100, "interval_seconds": 1800, "aht_seconds": 180, "target_sl": 0.8, "target_seconds": 20
    }
    with pytest.raises(ValueError, match=field):
        required_agents(**{**args, **kwargs})  # type: ignore[arg-type]


def test_invalid_inputs_of_the_formulas() -> None:
    with pytest.raises(ValueError, match="traffic"):
        erlang_c(-1.0, 3)
    with pytest.raises(ValueError, match="agents"):
        erlang_c(1.0, -3)
    with pytest.raises(ValueError, match="aht_seconds"):
        service_level(5.0, 6, 0, 20)


def test_target_sl_of_one_and_an_occupancy_cap() -> None:
    everyone = required_agents(100, 1800, 180, 1.0, 20)
    assert everyone.service_level == pytest.approx(1.0, abs=1e-12) and everyone.agents > 14
    capped = required_agents(100, 1800, 180, 0.8, 20, max_occupancy=0.6)
    assert capped.agents == 17 and capped.occupancy <= 0.6  # 10 / 17 = 0.588; 16 would be 0.625


def test_shrinkage_is_exact_on_the_decimal_given() -> None:
    assert apply_shrinkage(14, 0.3) == 20
    assert apply_shrinkage(21, 0.3) == 30  # 21 / (1 - 0.3) is 30.000000000000004 in floats: ceil would give 31
    assert apply_shrinkage(1, 0.9) == 10  # 1 / (1 - 0.9) is 10.000000000000002 in floats
    assert apply_shrinkage(10, 0.0) == 10
    assert apply_shrinkage(10, 0.25) == 14  # 13.33 rounded up
    assert apply_shrinkage(0, 0.5) == 0


# --- a run of intervals at once (NumPy) ------------------------------------------------------------


def test_a_day_of_intervals_gives_the_worked_example_where_it_applies() -> None:
    from contact_center.domain.staffing import required_agents_by_interval

    plan = required_agents_by_interval([100, 0, 100, 50], 1800, [180, 180, 90, 180], 0.8, 20, 0.3)
    assert plan.agents.tolist() == [14, 0, 8, 8]  # 14 and 20: the Call Centre Helper example
    assert plan.agents_with_shrinkage.tolist()[0] == 20
    assert plan.service_level[0] == pytest.approx(0.888, abs=5e-4)
    assert plan.occupancy[0] == pytest.approx(0.714, abs=5e-4)
    assert plan.traffic_erlangs.tolist() == [10.0, 0.0, 5.0, 5.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=2000, allow_nan=False), min_size=1, max_size=30),
    st.lists(st.floats(min_value=0, max_value=900, allow_nan=False), min_size=1, max_size=30),
    st.sampled_from([0.5, 0.8, 0.9, 0.95, 1.0]),
    st.sampled_from([0, 10, 20, 60]),
    st.sampled_from([0.0, 0.1, 0.3]),
)
def test_every_interval_agrees_with_the_single_interval_search(
    contacts: list[float], ahts: list[float], sl: float, secs: int, shrink: float
) -> None:
    from contact_center.domain.staffing import required_agents_by_interval

    ahts = (ahts * len(contacts))[: len(contacts)]
    plan = required_agents_by_interval(contacts, 1800, ahts, sl, secs, shrink)
    for i, (c, aht) in enumerate(zip(contacts, ahts)):
        one = required_agents(c, 1800, aht, sl, secs, shrink)
        assert plan.agents[i] == one.agents
        assert plan.agents_with_shrinkage[i] == one.agents_with_shrinkage
        assert plan.service_level[i] == pytest.approx(one.service_level, rel=1e-9, abs=1e-12)
        assert plan.occupancy[i] == pytest.approx(one.occupancy, rel=1e-9, abs=1e-12)
        assert plan.asa_seconds[i] == pytest.approx(one.asa_seconds, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    "args, field",
    [
        (([1, -1], 1800, 180, 0.8, 20), "contacts"),
        (([1, float("nan")], 1800, 180, 0.8, 20), "contacts"),
        (([1, 2], 0, 180, 0.8, 20), "interval_seconds"),
        (([1, 2], 1800, [180], 0.8, 20), "aht_seconds"),
        (([1, 2], 1800, 180, 0, 20), "target_sl"),
        (([1, 2], 1800, 180, 0.8, -1), "target_seconds"),
        (([1, 2], 1800, 180, 0.8, 20, 1.0), "shrinkage"),
        ((["x"], 1800, 180, 0.8, 20), "contacts"),
    ],
)
def test_a_run_of_intervals_rejects_bad_input_by_name(args: tuple, field: str) -> None:
    from contact_center.domain.staffing import required_agents_by_interval

    with pytest.raises(ValueError, match=field):
        required_agents_by_interval(*args)
