"""Issue 18's pure parts added with the alerts and the per-customer update: which alert an order or a product calls
for, what a scan raises and clears, and one customer scored against the others equals the full computation."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_store.domain import alerts, rfm

TODAY = date(2026, 11, 23)


def _order(days: int | None, status: str = "confirmed") -> alerts.OpenOrder:
    return alerts.OpenOrder(7, 3, status, None if days is None else TODAY + timedelta(days=days), "Ada")


def test_order_alerts_by_the_lead_time() -> None:
    assert alerts.order_alert(_order(-1), TODAY).kind == "overdue"  # type: ignore[union-attr]
    assert alerts.order_alert(_order(-1), TODAY).severity == "critical"  # type: ignore[union-attr]
    assert "1 day past" in alerts.order_alert(_order(-1), TODAY).message  # type: ignore[union-attr]
    for days in (0, 1, 2):
        a = alerts.order_alert(_order(days), TODAY, lead_days=2)
        assert a is not None and a.kind == "at_risk" and a.key == "at_risk:order:7"
    assert alerts.order_alert(_order(3), TODAY, lead_days=2) is None
    assert alerts.order_alert(_order(3), TODAY, lead_days=3) is not None
    assert alerts.order_alert(_order(-5, "shipped"), TODAY) is None  # shipped: not ours to chase
    assert alerts.order_alert(_order(None), TODAY) is None
    assert "due today" in alerts.order_alert(_order(0), TODAY).message  # type: ignore[union-attr]


def test_stock_alerts_against_the_reorder_point() -> None:
    p = alerts.StockLevel(3, "CAP", "The cap", 5, 5)
    assert alerts.stock_alert(p).kind == "low_stock"  # type: ignore[union-attr]
    assert alerts.stock_alert(alerts.StockLevel(3, "CAP", "The cap", 6, 5)) is None
    assert alerts.stock_alert(alerts.StockLevel(3, "CAP", "The cap", 0, 5)).severity == "critical"  # type: ignore[union-attr]
    assert alerts.stock_alert(alerts.StockLevel(3, "CAP", "The cap", 0, 5, active=False)) is None


def test_a_scan_raises_the_new_and_clears_the_ended() -> None:
    now = alerts.current_alerts([_order(-1), alerts.OpenOrder(8, 3, "placed", TODAY, "")],
                                [alerts.StockLevel(3, "CAP", "The cap", 1, 5)], TODAY)
    assert set(now) == {"overdue:order:7", "at_risk:order:8", "low_stock:product:3"}
    diff = alerts.changes(["overdue:order:7", "low_stock:product:9"], now)
    assert [a.key for a in diff.raise_] == ["at_risk:order:8", "low_stock:product:3"]
    assert diff.clear == ("low_stock:product:9",)
    same = alerts.changes(now.keys(), now)
    assert same.raise_ == () and same.clear == ()
    with pytest.raises(ValueError):
        alerts.current_alerts([], [], TODAY, lead_days=-1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0, 500), st.integers(100, 50_000)), min_size=2, max_size=80))
def test_one_customer_scored_against_the_others_equals_the_full_run(orders: list[tuple[int, float, int]]) -> None:
    cust = np.array([c for c, _a, _m in orders], dtype=np.int64)
    age = np.array([round(a, 3) for _c, a, _m in orders])
    amount = np.array([m for _c, _a, m in orders], dtype=np.int64)
    full = rfm.compute(rfm.CustomerOrders.build(cust, age, amount), window_days=365)
    active = full.r > 0
    for i, cid in enumerate(full.customer):
        mine = cust == cid
        rec, freq, money, total, oldest = rfm.measure_one(list(age[mine]), list(amount[mine]), window_days=365)
        others = active & (full.customer != cid)
        pop = rfm.Population(int(others.sum()), int((full.recency_days[others] > rec).sum()),
                             int((full.frequency[others] < freq).sum()), int((full.monetary[others] < money).sum()),
                             full.shop_gap_days)
        one = rfm.score_one(rec, freq, money, total, oldest, pop)
        assert (one.r, one.f, one.m, one.segment) == (int(full.r[i]), int(full.f[i]), int(full.m[i]), full.segment[i])
        assert one.attrition == full.attrition[i] and one.own_gap == bool(full.own_gap[i])
        assert one.usual_gap_days == pytest.approx(float(full.usual_gap_days[i]))
