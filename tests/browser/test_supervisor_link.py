"""The console and the supervisor view, linked (issue 21), in a real headless Chromium against a running hub.

- ``/supervisor`` logged out sends you to ``/console?next=/supervisor``; after signing in, a supervisor lands on
  the supervisor view. An agent sent there stays on the console (the view is not theirs).
- ``next`` is followed only when it is a path on this site (``console/core/next.js``): ``https://evil``,
  ``//evil``, ``/\\evil``, ``javascript:...``, a tab or newline in the path... are ignored and you stay on the
  console, without any request to another host or any script run. The check is the browser's own (the hub's
  redirect writes a fixed ``next``), so it is tested here: the pure function on many inputs, and the page
  end to end on the open-redirect cases.
- The console shows "Supervisor view" to supervisors and admins, not to agents; the supervisor view links back.

Screenshots: ``test-artifacts/supervisor-link-*.png``.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Iterator
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "sup-link-e2e"

# (next as the page receives it, what safeNextPath returns: the path followed, or None)
SAFE_NEXT_CASES: list[tuple[str, str | None]] = [
    ("/supervisor", "/supervisor"),
    ("/supervisor?tab=agents#queues", "/supervisor?tab=agents#queues"),
    ("/a/../supervisor", "/supervisor"),
    ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # an encoded slash stays a path on this site
    ("", None),
    ("supervisor", None),
    ("https://evil.example", None),
    ("https://evil.example/supervisor", None),
    ("http://evil.example", None),
    ("HTTPS://evil.example", None),
    ("https:evil.example", None),
    ("//evil.example", None),
    ("//evil.example/supervisor", None),
    ("///evil.example", None),
    ("/\\evil.example", None),
    ("\\\\evil.example", None),
    ("/\\/evil.example", None),
    ("/supervisor\\..\\..\\x", None),
    ("/\t/evil.example", None),
    ("/\n/evil.example", None),
    ("/\r/evil.example", None),
    ("/\x00/evil.example", None),
    ("/supervisor\x7f", None),
    ("/\u2028/evil.example", None),
    (" /supervisor", None),
    ("javascript:alert(1)", None),
    ("JavaScript:alert(document.domain)", None),
    ("/javascript:alert(1)", "/javascript:alert(1)"),  # a path named so, on this site: harmless
    ("data:text/html,<script>alert(1)</script>", None),
    ("vbscript:msgbox(1)", None),
    ("mailto:x@evil.example", None),
]

# the open-redirect cases tried end to end: the sign-in page must stay on the console
OPEN_REDIRECTS = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "javascript:alert(1)",
    "/\t/evil.example/",
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mock.patch.dict(os.environ, {"WRAP_UP_SECONDS": "0"}):
        with running_hub(tmp_path_factory.mktemp("suplink"), "supervisor-link", TOKEN) as base:
            yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _sign_in(page: Any, username: str) -> None:
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()


def _guard(ctx: Any) -> list[str]:
    """Every request the context makes to another host (there must be none)."""
    elsewhere: list[str] = []

    def route(r: Any) -> None:
        elsewhere.append(r.request.url)
        r.abort()

    ctx.route(lambda url: urllib.parse.urlsplit(url).hostname not in (None, "127.0.0.1"), route)
    return elsewhere


def test_safe_next_path_accepts_only_paths_on_this_site(hub: str, browser: Any) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{hub}/console")
        got = page.evaluate(
            """async (cases) => {
                const m = await import('/static/console/core/next.js');
                const fromLocation = (search) => m.nextFromLocation({ search, origin: location.origin });
                return {
                    safe: cases.map(([raw]) => m.safeNextPath(raw, location.origin)),
                    notString: [m.safeNextPath(null, location.origin), m.safeNextPath(undefined, location.origin), m.safeNextPath(42, location.origin)],
                    tooLong: m.safeNextPath('/' + 'a'.repeat(3000), location.origin),
                    fromLocation: [
                        fromLocation('?next=/supervisor'),
                        fromLocation('?next=%2Fsupervisor'),
                        fromLocation('?next=%2F%2Fevil.example'),
                        fromLocation('?next=https%3A%2F%2Fevil.example'),
                        fromLocation('?next=/console'),
                        fromLocation('?next=/console?next=/supervisor'),
                        fromLocation(''),
                        fromLocation('?next='),
                    ],
                };
            }""",
            SAFE_NEXT_CASES,
        )
        wrong = [(raw, want, have) for (raw, want), have in zip(SAFE_NEXT_CASES, got["safe"]) if want != have]
        assert not wrong, f"safeNextPath: (input, expected, got) {wrong}"
        assert got["notString"] == [None, None, None]
        assert got["tooLong"] is None
        assert got["fromLocation"] == ["/supervisor", "/supervisor", None, None, None, None, None, None]
    finally:
        ctx.close()


def test_supervisor_signs_in_to_the_supervisor_view_and_the_views_are_linked(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    sup_ctx, agent_ctx = browser.new_context(viewport={"width": 1440, "height": 900}), browser.new_context(viewport={"width": 1440, "height": 900})
    elsewhere = _guard(sup_ctx) + _guard(agent_ctx)
    boss, agent = sup_ctx.new_page(), agent_ctx.new_page()
    for page in (boss, agent):
        watch(page, dialogs, errors)
    try:
        # --- logged out: /supervisor sends sam to the console's sign-in, and back after it
        boss.goto(f"{hub}/supervisor")
        expect(boss).to_have_url(f"{hub}/console?next=/supervisor")
        _sign_in(boss, "sam")
        expect(boss).to_have_url(f"{hub}/supervisor")
        expect(boss.get_by_test_id("supervisor-name")).to_contain_text("Sam Okafor")
        expect(boss.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        # the sign-in page was replaced, not stacked: Back does not return to it
        assert boss.evaluate("() => history.length") == 2  # about:blank, then /supervisor

        # --- the supervisor view links to the console, which links back (supervisors only)
        link = boss.get_by_test_id("console-link")
        expect(link).to_have_attribute("href", "/console")
        link.click()
        expect(boss).to_have_url(f"{hub}/console")
        expect(boss.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        to_supervisor = boss.get_by_test_id("supervisor-link")
        expect(to_supervisor).to_be_visible()
        expect(to_supervisor).to_have_text("Supervisor view")
        expect(to_supervisor).to_have_attribute("href", "/supervisor")
        boss.screenshot(path=str(ARTIFACTS / "supervisor-link-console.png"))
        to_supervisor.click()
        expect(boss).to_have_url(f"{hub}/supervisor")
        expect(boss.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        boss.screenshot(path=str(ARTIFACTS / "supervisor-link-dashboard.png"))

        # --- an agent: no link; sent to /supervisor's sign-in, they stay on the console and are told why
        agent.goto(f"{hub}/supervisor")
        expect(agent).to_have_url(f"{hub}/console?next=/supervisor")
        _sign_in(agent, "alice")
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent).to_have_url(f"{hub}/console?next=/supervisor")
        expect(agent.locator("#toasts")).to_contain_text("The supervisor view is for supervisors")
        expect(agent.get_by_test_id("supervisor-link")).to_be_hidden()
        agent.reload()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("supervisor-link")).to_be_hidden()
        agent.screenshot(path=str(ARTIFACTS / "supervisor-link-agent.png"))

        # --- an admin sees the link too
        admin_ctx = browser.new_context()
        try:
            admin = admin_ctx.new_page()
            watch(admin, dialogs, errors)
            admin.goto(f"{hub}/console")
            _sign_in(admin, "admin")
            expect(admin.get_by_test_id("connection")).to_have_attribute("data-state", "online")
            expect(admin.get_by_test_id("supervisor-link")).to_be_visible()
            # signing out hides it again
            admin.get_by_test_id("logout").click()
            expect(admin.get_by_test_id("login-username")).to_be_visible()
            expect(admin.get_by_test_id("supervisor-link")).to_be_hidden()
        finally:
            admin_ctx.close()

        assert not elsewhere, f"requests to other hosts: {elsewhere}"
        assert not errors, f"uncaught page errors: {errors}"
        assert not dialogs, f"unexpected dialogs: {dialogs}"
    except Exception:
        for page, name in ((boss, "supervisor-link-failure.png"), (agent, "supervisor-link-agent-failure.png")):
            try:
                page.screenshot(path=str(ARTIFACTS / name))
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise
    finally:
        sup_ctx.close()
        agent_ctx.close()


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_to_another_site_is_ignored(hub: str, browser: Any, target: str) -> None:
    """A sign-in link that names another site (or a script) leaves a supervisor on the console."""
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context()
    elsewhere = _guard(ctx)
    page = ctx.new_page()
    watch(page, dialogs, errors)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    try:
        url = f"{hub}/console?next={urllib.parse.quote(target, safe='')}"
        page.goto(url)
        _sign_in(page, "sam")
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        page.wait_for_timeout(500)  # a redirect would have started by now
        assert urllib.parse.urlsplit(page.url)[:3] == urllib.parse.urlsplit(url)[:3], page.url
        assert navigations == [url], navigations  # the page never left
        expect(page.get_by_test_id("supervisor-link")).to_be_visible()  # signed in, on the console
        assert not elsewhere, f"requests to other hosts: {elsewhere}"
        assert not dialogs, f"a script ran: {dialogs}"
        assert not errors, f"uncaught page errors: {errors}"
    finally:
        ctx.close()
