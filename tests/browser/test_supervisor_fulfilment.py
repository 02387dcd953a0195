"""The supervisor page's order-evaluation sections in a real headless Chromium against a running hub (issue 18).

The shop admin (``admin``, who is also staff for the queue) opens ``/supervisor#fulfilment``: the demo shop's
open orders ranked with ELECTRE II, with criteria values and "ranks above ... because". A confirmed order is
marked Picked (its row says picking after the queue is read again), then Shipped (it leaves the queue); a
placed order cannot be marked Shipped and the row shows the order rules' reason. The alerts list shows the
demo shop's order and stock alerts; a longer shipping lead time saved in the settings form makes the hub
raise more at-risk alerts, which arrive on the page live (no reload). The settings form refuses thresholds out of order with the reason under
the field; the rule form refuses an unknown segment with the reason under it, then adds a valid rule.
Screenshots: ``test-artifacts/supervisor-fulfilment.png`` and ``supervisor-evaluation-forms.png``.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "sup-fulfilment-e2e"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(tmp_path_factory.mktemp("fq"), "supervisor-fulfilment", TOKEN) as base:
        yield base


def _api(hub: str, path: str, body: Any = None) -> tuple[int, Any]:
    return http(f"{hub}{path}", body, token=TOKEN)


def test_fulfilment_queue_moves_alerts_and_forms(hub: str) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    status, queue = _api(hub, "/api/fulfilment/queue?limit=500")
    assert status == 200 and queue["orders"], queue
    confirmed = next(o for o in queue["orders"] if o["status"] == "confirmed")
    placed = next(o for o in queue["orders"] if o["status"] == "placed")
    dialogs: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1100})
        page = ctx.new_page()
        watch(page, dialogs, errors)
        try:
            page.goto(f"{hub}/console")
            page.get_by_test_id("login-username").fill("admin")
            page.get_by_test_id("login-password").fill("demo-password")
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
            page.goto(f"{hub}/supervisor#fulfilment")
            expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")

            rows = page.get_by_test_id("fq-row")
            expect(rows.first).to_be_visible()
            assert rows.count() == min(200, queue["total"])
            expect(rows.first.locator("td").first).to_contain_text("1")
            expect(page.get_by_test_id("fq-above").first).to_contain_text("ranks above #")
            expect(page.get_by_test_id("fq-table").locator("thead")).to_contain_text("order total")

            # Picked: confirmed -> picking; the queue is read again and says so
            row = page.locator(f'[data-testid="fq-row"][data-order-id="{confirmed["order_id"]}"]')
            row.get_by_test_id("fq-move-picking").click()
            row = page.locator(f'[data-testid="fq-row"][data-order-id="{confirmed["order_id"]}"]')
            expect(row).to_have_attribute("data-status", "picking")
            expect(row.get_by_test_id("fq-status")).to_have_text("picking")
            # a refused move shows the reason: a placed order cannot ship
            prow = page.locator(f'[data-testid="fq-row"][data-order-id="{placed["order_id"]}"]')
            prow.scroll_into_view_if_needed()
            prow.get_by_test_id("fq-move-shipped").click()
            expect(prow.get_by_test_id("fq-move-error")).to_contain_text("cannot move an order from placed to shipped")
            # Shipped: picking -> shipped; it leaves the queue
            page.locator("#fulfilment").scroll_into_view_if_needed()
            page.evaluate("document.getElementById('fulfilment').scrollIntoView({block: 'start'})")
            page.screenshot(path=str(ARTIFACTS / "supervisor-fulfilment.png"), full_page=False)
            row.get_by_test_id("fq-move-shipped").click()
            expect(page.locator(f'[data-testid="fq-row"][data-order-id="{confirmed["order_id"]}"]')).to_have_count(0)
            status, track = _api(hub, f"/api/orders/{confirmed['order_id']}/track")
            assert status == 200 and track["status"] == "shipped"

            # alerts: the demo shop has overdue or at-risk orders and low stock
            status, listed = _api(hub, "/api/evaluation/alerts")
            assert status == 200
            items = page.get_by_test_id("oa-item")
            if listed["alerts"]:
                expect(items.first).to_be_visible()
                expect(page.get_by_test_id("oa-list")).to_contain_text(re.compile(r"Order #\d+|replenish"))
            page.evaluate("document.getElementById('order-alerts').scrollIntoView({block: 'start'})")
            page.screenshot(path=str(ARTIFACTS / "supervisor-order-alerts.png"), full_page=False)

            # settings: thresholds out of order are refused, the reason under the field
            page.locator("#es-c-low").fill("0.9")
            page.locator("#es-c-high").fill("0.8")
            page.get_by_test_id("es-save").click()
            expect(page.get_by_test_id("error-concordance")).not_to_be_empty()
            page.locator("#es-c-low").fill("0.6")
            page.locator("#es-c-high").fill("0.75")
            page.get_by_test_id("es-criterion-total").locator('[data-k="weight"]').fill("3")
            at_risk_before = page.locator('[data-testid="oa-item"][data-kind="at_risk"]').count()
            page.locator("#es-lead").fill("9")  # a longer shipping lead time: more orders at risk
            page.get_by_test_id("es-save").click()
            expect(page.get_by_test_id("es-saved")).to_contain_text("Saved")
            status, settings = _api(hub, "/api/evaluation/settings")
            assert next(c for c in settings["settings"]["criteria"] if c["key"] == "total")["weight"] == 3
            assert settings["settings"]["ship_lead_days"] == 9

            # rules: an unknown segment is refused with the reason under the field; a valid rule is added
            form = page.get_by_test_id("or-form")
            form.get_by_test_id("or-name").fill("Browser test rule")
            form.get_by_test_id("or-offer").fill("A free tote bag")
            form.get_by_test_id("or-segments").fill("vip")
            form.get_by_test_id("or-save").click()
            expect(page.get_by_test_id("error-conditions.segments")).to_contain_text("unknown: vip")
            form.get_by_test_id("or-segments").fill("champions")
            form.get_by_test_id("or-dmin").fill("30")
            form.get_by_test_id("or-dmax").fill("10")
            form.get_by_test_id("or-save").click()
            expect(page.get_by_test_id("error-conditions.days_since_last_order_max")).to_contain_text("nobody can match")
            form.get_by_test_id("or-dmax").fill("")
            form.get_by_test_id("or-save").click()
            made = page.locator('[data-testid="or-row"]', has_text="Browser test rule")
            expect(made).to_have_count(1)
            # edit it: the form fills with the rule, a bad SKU is refused under its field, then it saves
            made.get_by_test_id("or-edit").click()
            form = page.get_by_test_id("or-form")
            expect(form.get_by_test_id("or-name")).to_have_value("Browser test rule")
            form.get_by_test_id("or-priority").fill("7")
            form.get_by_test_id("or-sku").fill("NO-SUCH-SKU")
            form.get_by_test_id("or-save").click()
            expect(page.get_by_test_id("error-offer_sku")).to_contain_text("no product has SKU NO-SUCH-SKU")
            form.get_by_test_id("or-sku").fill("TOT-CANVAS")
            form.get_by_test_id("or-save").click()
            expect(made.locator("td").first).to_have_text("7")
            expect(made).to_contain_text("(TOT-CANVAS)")
            # the hub's timer raises the new at-risk alerts (once) and the snapshot's stamp brings them here live
            fresh = page.locator('[data-testid="oa-item"][data-kind="at_risk"][data-fresh="1"]')
            expect(fresh.first).to_be_visible(timeout=40_000)
            assert page.locator('[data-testid="oa-item"][data-kind="at_risk"]').count() > at_risk_before
            page.locator("#evaluation-settings").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "supervisor-evaluation-forms.png"), full_page=False)
            assert not errors, errors
            assert not dialogs, dialogs
        except Exception:
            print("settings form:", page.locator("#es-form").inner_text()[-600:].replace("\n", " | "))
            page.screenshot(path=str(ARTIFACTS / "supervisor-fulfilment-failure.png"), full_page=True)
            raise
        finally:
            ctx.close()
