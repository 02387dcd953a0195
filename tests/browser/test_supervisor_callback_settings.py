"""The supervisor page's "Callback settings" form in a real headless Chromium against a running hub (issue 15).

The shop admin opens ``/supervisor``: the form shows the support queue's callback settings; hours that close before
they open are refused with the server's reason under the field (nothing saved); customer first, a voicemail and
"always" are saved and read back through the API.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "sup-callback-settings-e2e"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(tmp_path_factory.mktemp("cbs"), "supervisor-callback-settings", TOKEN) as base:
        yield base


def _api(hub: str, path: str, body: Any = None) -> tuple[int, Any]:
    return http(f"{hub}{path}", body, token=TOKEN)


def test_the_callback_settings_form_refuses_with_reasons_and_saves(hub: str) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1100})
        page = ctx.new_page()
        watch(page, dialogs, errors)
        page.goto(f"{hub}/console")
        page.get_by_test_id("login-username").fill("admin")
        page.get_by_test_id("login-password").fill("demo-password")
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        page.goto(f"{hub}/supervisor#callback-settings")
        form = page.get_by_test_id("cbs-form")
        expect(page.get_by_test_id("cbs-queue").locator("option", has_text="support")).to_have_count(1)
        page.get_by_test_id("cbs-queue").select_option("support")
        expect(page.get_by_test_id("cbs-status")).to_contain_text("hub's hours")
        page.get_by_test_id("cbs-hours").fill("0-4 17:00-09:00")
        page.get_by_test_id("cbs-save").click()
        expect(page.get_by_test_id("cbs-error-callback_hours")).to_contain_text("open before they close")
        assert _api(hub, "/api/queues/support/callback-settings")[1]["callback_hours"] == ""  # nothing saved
        page.get_by_test_id("cbs-hours").fill("always")
        page.get_by_test_id("cbs-mode").select_option("customer_first")
        page.get_by_test_id("cbs-voicemail").fill("The shop, calling you back.")
        page.get_by_test_id("cbs-save").click()
        expect(page.get_by_test_id("cbs-done")).to_contain_text("Saved for support")
        expect(page.get_by_test_id("cbs-error-callback_hours")).to_be_empty()
        expect(page.get_by_test_id("cbs-status")).to_contain_text("Always open")
        form.screenshot(path=str(ARTIFACTS / "supervisor-callback-settings.png"))
        status, saved = _api(hub, "/api/queues/support/callback-settings")
        assert status == 200 and (saved["callback_mode"], saved["callback_voicemail"], saved["callback_hours"]) == (
            "customer_first", "The shop, calling you back.", "always")
        ctx.close()
    assert not errors, errors
