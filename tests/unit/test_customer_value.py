"""RFM quintiles, segments, attrition, associations, offer rules and the fulfilment queue's batching (pure core)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_store.domain import associations as assoc
from crm_store.domain import fulfilment as fq
from crm_store.domain import offers
from crm_store.domain import rfm

# --- RFM ---------------------------------------------------------------------------------------------------


def test_quintiles_of_ten_distinct_values_by_hand() -> None:
    # below = 0..9, score = 1 + floor(5 * below / 10): two per quintile
    assert rfm.quintile_scores([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency: fewer days is better
    assert rfm.quintile_scores([1, 2, 3, 4, 5], higher_is_better=False).tolist() == [5, 4, 3, 2, 1]


def test_ties_share_a_score() -> None:
    # 3 and 3 have one value below them (below = 1 of 5 -> score 2); 9 has 3 below -> 1 + 15 // 5 = 4
    assert rfm.quintile_scores([1, 3, 3, 9, 12]).tolist() == [1, 2, 2, 4, 5]
    assert rfm.quintile_scores([7, 7, 7]).tolist() == [1, 1, 1]


@given(st.lists(st.integers(0, 50), min_size=1, max_size=60))
def test_quintile_properties(values: list[int]) -> None:
    s = rfm.quintile_scores(values)
    assert s.min() >= 1 and s.max() <= 5
    v = np.asarray(values)
    for i in range(len(values)):
        for j in range(len(values)):
            if v[i] == v[j]:
                assert s[i] == s[j]
            if v[i] > v[j]:
                assert s[i] >= s[j]
    if len(set(values)) == len(values) and len(values) % 5 == 0:
        assert np.bincount(s, minlength=6)[1:].tolist() == [len(values) // 5] * 5


@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.randoms())
def test_quintiles_do_not_depend_on_order(values: list[int], rnd) -> None:  # type: ignore[no-untyped-def]
    perm = list(range(len(values)))
    rnd.shuffle(perm)
    s = rfm.quintile_scores(values)
    s2 = rfm.quintile_scores([values[p] for p in perm])
    assert [s[p] for p in perm] == s2.tolist()


def test_every_r_fm_pair_has_a_segment() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                assert rfm.segment_of(r, f, m) in rfm.SEGMENTS
    assert rfm.segment_of(5, 5, 5) == "champions"
    assert rfm.segment_of(1, 5, 5) == "at_risk"
    assert rfm.segment_of(1, 1, 1) == "lost"
    assert rfm.segment_of(5, 1, 1) == "promising"
    assert rfm.segment_of(0, 0, 0) == "lost"
    assert set(rfm.DEFAULT_SEGMENT_TIERS) == set(rfm.SEGMENTS)


def test_compute_by_hand() -> None:
    # customer 1: orders 10, 40, 70 days ago (gap 30), customer 2: one order 5 days ago, customer 3: 400 days ago
    orders = rfm.CustomerOrders.build([1, 1, 1, 2, 3], [10, 40, 70, 5, 400], [5000, 5000, 5000, 2000, 9000])
    v = rfm.compute(orders, window_days=365)
    assert v.customer.tolist() == [1, 2, 3]
    assert v.frequency.tolist() == [3, 1, 0]
    assert v.monetary.tolist() == [15000, 2000, 0]
    assert v.r[2] == 0 and v.segment[2] == "lost"
    # active customers 1 and 2: 2 is more recent (R 3 vs 1), 1 buys more (F and M 3 vs 1)
    assert (v.r[:2].tolist(), v.f[:2].tolist(), v.m[:2].tolist()) == ([1, 3], [3, 1], [3, 1])
    assert v.usual_gap_days[0] == pytest.approx(30.0) and bool(v.own_gap[0])
    assert v.attrition[0] == "low"  # 10 days against a 30-day rhythm
    assert v.reason(0) == "usually orders every 30 days, last order 10 days ago"
    # customers 2 and 3 are measured against the shop's gap (the median own gap: 30)
    assert not v.own_gap[1] and v.usual_gap_days[1] == pytest.approx(30.0)
    assert v.attrition[2] == "high"
    assert "customers usually order every 30 days, last order 400 days ago" in v.reason(2)


def test_attrition_reason_example_from_the_issue() -> None:
    assert rfm.attrition_reason(95, 30, True) == "usually orders every 30 days, last order 95 days ago"
    assert rfm.attrition_level(95 / 30) == "high"
    assert rfm.attrition_level(40 / 30) == "low"
    assert rfm.attrition_level(60 / 30) == "medium"


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(1, 8), st.floats(0, 800), st.integers(0, 50000)), min_size=1, max_size=40))
def test_more_money_never_scores_lower(rows: list[tuple[int, float, int]]) -> None:
    c, a, m = zip(*rows)
    v = rfm.compute(rfm.CustomerOrders.build(list(c), list(a), list(m)))
    active = v.r > 0
    mon, ms = v.monetary[active], v.m[active]
    for i in range(mon.size):
        for j in range(mon.size):
            if mon[i] > mon[j]:
                assert ms[i] >= ms[j]
    assert all(s in rfm.SEGMENTS for s in v.segment)
    assert ((v.attrition_score >= 0) & (v.attrition_score <= 1)).all()


# --- associations --------------------------------------------------------------------------------------------


def _lines(baskets: list[list[int]]) -> tuple[list[int], list[int]]:
    o, p = [], []
    for i, b in enumerate(baskets, start=1):
        for item in b:
            o.append(i)
            p.append(item)
    return o, p


def test_support_confidence_lift_by_hand() -> None:
    # 10 baskets: A(1) in 5, B(2) in 4, A and B together in 3, C(3) in 2 (once with A)
    baskets = [[1, 2], [1, 2], [1, 2], [1], [1, 3], [2], [3], [4], [4], [4]]
    items = assoc.frequent_itemsets(*_lines(baskets), min_support=0.1, max_len=2)
    assert items.baskets == 10
    assert items.counts[(1, 2)] == 3 and items.counts[(1,)] == 5 and items.counts[(2,)] == 4
    found = {(r.antecedent, r.consequent): r for r in assoc.rules(items, min_confidence=0.0, min_lift=0.0)}
    ab, ba = found[((1,), 2)], found[((2,), 1)]
    assert ab.support == pytest.approx(0.3)
    assert ab.confidence == pytest.approx(3 / 5)
    assert ab.lift == pytest.approx((3 / 5) / (4 / 10))  # 1.5
    assert ba.confidence == pytest.approx(3 / 4)
    assert ba.lift == pytest.approx((3 / 4) / (5 / 10))  # 1.5
    # min_lift filters: A -> C has confidence 0.2, lift 0.2 / 0.2 = 1.0
    assert ((1,), 3) in found and found[((1,), 3)].lift == pytest.approx(1.0)
    assert ((1,), 3) not in {(r.antecedent, r.consequent) for r in assoc.rules(items, min_lift=1.2)}


def test_triples_follow_apriori() -> None:
    baskets = [[1, 2, 3]] * 4 + [[1, 2]] * 2 + [[3]] * 4
    items = assoc.frequent_itemsets(*_lines(baskets), min_support=0.3, max_len=3)
    assert items.counts[(1, 2, 3)] == 4
    rules = assoc.rules(items, min_confidence=0.5, min_lift=0.0)
    r = next(x for x in rules if x.antecedent == (1, 2) and x.consequent == 3)
    assert r.confidence == pytest.approx(4 / 6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=4), min_size=1, max_size=40))
def test_itemset_counts_match_brute_force(baskets: list[list[int]]) -> None:
    items = assoc.frequent_itemsets(*_lines(baskets), min_support=0.05, max_len=3)
    sets = [set(b) for b in baskets]
    for key, count in items.counts.items():
        assert count == sum(1 for s in sets if set(key) <= s)
    # nothing frequent is missing among pairs
    n = len(baskets)
    for a in range(1, 7):
        for b in range(a + 1, 7):
            c = sum(1 for s in sets if {a, b} <= s)
            if c >= max(1, int(np.ceil(0.05 * n - 1e-9))):
                assert items.counts.get((a, b)) == c


def test_propensity_excludes_bought_just_bought_and_out_of_stock() -> None:
    rules = [assoc.Rule((1,), 2, 5, 0.1, 0.5, 2.0), assoc.Rule((1,), 3, 5, 0.1, 0.4, 3.0),
             assoc.Rule((1,), 4, 5, 0.1, 0.3, 1.5), assoc.Rule((5,), 6, 5, 0.1, 0.9, 4.0)]
    got = assoc.propensity({1}, rules, in_stock={2: True, 3: True, 4: False})
    assert [s.product_id for s in got] == [2, 3]
    assert assoc.propensity({1}, rules, exclude={2}, in_stock={2: True, 3: True})[0].product_id == 3
    assert assoc.propensity({1, 2}, rules, in_stock={2: True, 3: True})[0].product_id == 3
    assert assoc.describe(0.34, 2.1, "X", "Y") == "bought X; 34 % of X buyers also buy Y, lift 2.1"


# --- offer rules ---------------------------------------------------------------------------------------------


def test_a_broken_rule_is_refused_with_every_reason() -> None:
    with pytest.raises(offers.RuleInvalid) as exc:
        offers.validate_rule({"name": "", "offer": "x", "conditions": {"segments": ["vip"], "colour": "red",
                              "days_since_last_order_min": 30, "days_since_last_order_max": 10},
                              "valid_from": "2026-02-01", "valid_until": "2026-01-01", "offer_sku": "NOPE"},
                             known_skus=frozenset({"TSH-1"}))
    fields = {f for f, _m in exc.value.errors}
    assert fields == {"name", "conditions.segments", "conditions.colour", "conditions.days_since_last_order_max",
                      "valid_until", "offer_sku"}


def _ctx(**kw):  # type: ignore[no-untyped-def]
    base = dict(today=date(2026, 5, 1), segment="at_risk", attrition="high", days_since_last_order=95,
                bought_skus=frozenset({"TSH-1"}), discussing_sku=None, channel="chat")
    base.update(kw)
    return offers.ContactContext(**base)


def test_rules_match_in_priority_order_then_associations() -> None:
    win = offers.validate_rule({"name": "win back", "priority": 10, "offer": "10 % off", "script": "s",
                                "conditions": {"segments": ["at_risk"], "attrition": ["high"], "days_since_last_order_min": 60}})
    champ = offers.validate_rule({"name": "champ", "priority": 50, "offer": "free shipping", "conditions": {"segments": ["champions"]}})
    socks = offers.validate_rule({"name": "socks", "priority": 5, "offer": "socks", "offer_sku": "SOCK",
                                  "conditions": {"bought_sku": "TSH-1", "channels": ["chat"]}})
    expired = offers.validate_rule({"name": "old", "priority": 99, "offer": "x", "valid_until": "2026-01-01"})
    a = offers.Offer("association", "Suggest cap", "bought T-shirt; ...", "script", "CAP")
    dup = offers.Offer("association", "Suggest socks", "...", "script", "SOCK")
    got = offers.next_best_offers([champ, socks, win, expired], _ctx(), [dup, a])
    assert [o.title for o in got] == ["10 % off", "socks", "Suggest cap"]
    assert got[0].why == "rule 'win back': segment at risk, attrition risk high, last order 95 days ago"
    # declined products are not offered again; the limit holds
    got = offers.next_best_offers([socks, win], _ctx(), [a], declined_skus=frozenset({"SOCK"}), limit=2)
    assert [o.title for o in got] == ["10 % off", "Suggest cap"]
    assert offers.next_best_offers([win], _ctx(channel="sms", attrition="low"), []) == []


# --- the queue's batches -------------------------------------------------------------------------------------


NOW = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)


def _order(i: int, due: int, value: float = 50, total: int = 5000, ready: int = 1, hours: float | None = None) -> fq.OrderFacts:
    age = timedelta(hours=i % 50 if hours is None else hours)
    return fq.OrderFacts(i, value, total, NOW.date() + timedelta(days=due), NOW - age, 1, ready, "web")


def test_batches_cut_between_dates() -> None:
    orders = [_order(i, due=i // 3) for i in range(10)]  # dates in threes
    cut = fq.batches(orders, 5)
    assert [len(b) for b in cut] == [3, 6, 1] or all(len(b) <= 5 for b in cut[:-1])
    for b in cut:
        assert len(b) <= 5
    dates = [[o.promised_date for o in b] for b in cut]
    for first, second in zip(dates, dates[1:]):
        assert max(first) < min(second)  # never a date split over two batches, earlier batches due earlier


def test_queue_ranks_a_dominating_order_first_and_explains_ties() -> None:
    facts = [_order(1, due=1, value=90, total=20000), _order(2, due=5, value=20, total=2000, hours=5),
             _order(3, due=5, value=20, total=2000, hours=5), _order(4, due=3, value=50, total=8000)]
    entries = fq.rank_queue(facts, fq.default_settings(), NOW)
    assert entries[0].order_id == 1
    assert entries[0].above and entries[0].above.startswith("ranks above #")
    tied = {e.order_id: e for e in entries if e.order_id in (2, 3)}
    assert tied[2].tied_with == [3] and tied[3].tied_with == [2]
    assert tied[2].notes[0].startswith("tied with #3")
    assert tied[2].level == tied[3].level and tied[2].tie_break
    assert [e.position for e in entries] == [1, 2, 3, 4]


def test_queue_past_the_batch_size_keeps_earlier_dates_first() -> None:
    facts = [_order(i, due=i % 20, value=float(i % 100)) for i in range(60)]
    s = fq.QueueSettings(fq.default_settings().criteria, batch_size=25)
    entries = fq.rank_queue(facts, s, NOW)
    assert len(entries) == 60 and max(e.batch for e in entries) >= 3
    by_batch: dict[int, list[date]] = {}
    for e in entries:
        assert e.promised_date is not None
        by_batch.setdefault(e.batch, []).append(e.promised_date)
    keys = sorted(by_batch)
    for a, b in zip(keys, keys[1:]):
        assert max(by_batch[a]) < min(by_batch[b])
    levels = [e.level for e in entries]
    assert levels == sorted(levels)


def test_settings_are_validated() -> None:
    s = fq.default_settings()
    s.validate()
    with pytest.raises(Exception):
        fq.QueueSettings(s.criteria, (0.8, 0.7)).validate()
    bad = tuple(fq.Criterion(c.key, c.weight, c.direction, (5, 5), c.enabled) for c in s.criteria)
    with pytest.raises(Exception):
        fq.QueueSettings(bad).validate()
