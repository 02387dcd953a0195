"""The name and email a visitor types into the widget reach the hub, however far the connection has got.

The widget connects as soon as it is opened, and the name and email travel in the connection's ``auth``. A visitor
who types them and sends while that first handshake is still under way (its ``auth`` already sent without them, the
hub's answer not yet in) must still be known by name: before the fix the widget reconnected only a socket that was
already connected, so this visitor became "Visitor" and the agent's offer card did not carry the name they typed
(two CI runs of the keyboard-only console test failed on exactly that, on a loaded machine).

Here the hub's answers to the first connection's polls are held (Playwright's routing) until the visitor has sent,
so the race happens every run. Then the hub's SQLite file is read directly.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "widget-profile"
NAME = "widget-profile"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp(NAME)
    with running_hub(tmp, NAME, TOKEN) as base:
        yield base, tmp / f"{NAME}.db"


def _customer_of(db: Path, body: str) -> tuple[str, list[str]] | None:
    """The display name of the customer who sent ``body``, and that customer's email addresses (None: not stored)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute(
            "SELECT cu.id, cu.display_name FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN customers cu ON cu.id = c.customer_id WHERE m.body = ? AND m.sender_kind = 'customer'",
            (body,),
        ).fetchone()
        if row is None:
            return None
        emails = [str(v) for (v,) in con.execute(
            "SELECT value FROM contact_points WHERE customer_id = ? AND kind = 'email'", (row[0],))]
    finally:
        con.close()
    return str(row[1] or ""), emails


class HeldPolls:
    """Holds the hub's answers to the widget's long-polls once its first namespace CONNECT has gone out."""

    def __init__(self) -> None:
        self.connect_bodies: list[str] = []
        self.held: list[Any] = []
        self.holding = True
        self.lock = threading.Lock()

    def handle(self, route: Any) -> None:
        request = route.request
        if request.method == "POST" and "40/customer" in (request.post_data or ""):
            self.connect_bodies.append(request.post_data or "")
        with self.lock:
            hold = self.holding and request.method == "GET" and "sid=" in request.url and bool(self.connect_bodies)
            if hold:
                self.held.append(route)
                return
        route.continue_()

    def release(self) -> None:
        with self.lock:
            self.holding = False
            held, self.held = self.held, []
        for route in held:
            route.continue_()


def test_a_name_typed_while_the_first_handshake_is_under_way_reaches_the_hub(hub: tuple[str, Path]) -> None:
    base, db = hub
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    dialogs: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context()
        polls = HeldPolls()
        ctx.route("**/socket.io/**", polls.handle)
        page = ctx.new_page()
        watch(page, dialogs, errors)
        page.goto(f"{base}/shop")
        page.get_by_test_id("cc-launcher").click()
        # the first handshake's CONNECT (with its auth) is out, and its answer is held: connecting, not connected
        for _ in range(100):
            if polls.connect_bodies and polls.held:
                break
            page.wait_for_timeout(50)
        assert polls.connect_bodies and polls.held, "the widget's first handshake never reached the held poll"
        assert '"name":""' in polls.connect_bodies[0].replace(" ", ""), polls.connect_bodies[0]

        page.get_by_test_id("cc-name").fill("Noa Five")
        page.get_by_test_id("cc-email").fill("noa.five@example.com")
        page.get_by_test_id("cc-input").fill("Invoice please")
        page.get_by_test_id("cc-input").press("Enter")
        page.wait_for_timeout(300)  # what the widget does with the typed profile happens while the answer is held
        polls.release()

        expect(page.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_count(1)
        for _ in range(100):  # shown at once (pending); stored once the hub has it
            if (stored := _customer_of(db, "Invoice please")) is not None:
                break
            page.wait_for_timeout(100)
        assert stored is not None, "the message never reached the hub"
        name, emails = stored
        assert name == "Noa Five", f"the hub knows this visitor as {name!r}"
        assert "noa.five@example.com" in emails, emails
        assert not errors, errors
        assert not dialogs, dialogs
        ctx.close()
