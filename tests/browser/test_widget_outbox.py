"""The chat widget's outbox against the hub's per-socket message limit, in a real headless Chromium.

A customer goes offline (Playwright's ``set_offline`` and the socket's transport closed), writes 14
messages, and comes back. The hub runs with a small limit (``WEBCHAT_MESSAGE_BURST=3``,
``WEBCHAT_MESSAGES_PER_SECOND=4``), so the flush on reconnect is refused ``rate_limited`` after 3
messages: the widget must keep the rest pending, send them again after ``retry_after``, one at a time
and in order, and none may end as "Not sent". The hub's SQLite file is then read directly: the 14
messages are stored once each, in the order they were typed.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "outbox"
NAME = "widget-outbox"
COUNT = 14
CUSTOMER = '[data-testid="cc-message"][data-sender="customer"]'


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A hub with a small web chat limit (3 at once, then 4 a second); yields its base URL and SQLite file."""
    tmp = tmp_path_factory.mktemp("outbox")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEBCHAT_MESSAGE_BURST", "3")
        mp.setenv("WEBCHAT_MESSAGES_PER_SECOND", "4")
        with running_hub(tmp, NAME, TOKEN) as base:
            yield base, tmp / f"{NAME}.db"


@pytest.fixture(scope="module")
def browser(hub: tuple[str, Path]) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _stored(db: Path, conversation_id: int) -> list[tuple[int, str, str]]:
    """The customer's messages of a conversation as the hub stored them: (seq, body, client_msg_id)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT seq, body, client_msg_id FROM messages WHERE conversation_id = ? AND sender_kind = 'customer' ORDER BY seq",
            (conversation_id,),
        ).fetchall()
    finally:
        con.close()
    return [(int(seq), str(body), str(cid)) for seq, body, cid in rows]


def test_offline_outbox_is_paced_and_arrives_whole_and_in_order(hub: tuple[str, Path], browser: Any) -> None:
    base, db = hub
    expect = sync_api.expect
    expect.set_options(timeout=30_000)
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    shop = ctx.new_page()
    watch(shop, dialogs, errors)
    typed = [f"Offline message {i:02d}" for i in range(1, COUNT + 1)]

    try:
        # --- online: a first message opens the conversation
        shop.goto(f"{base}/shop")
        shop.get_by_test_id("cc-launcher").click()
        expect(shop.get_by_test_id("cc-panel")).to_be_visible()
        shop.get_by_test_id("cc-input").fill("Before going offline")
        shop.get_by_test_id("cc-send").click()
        first = shop.locator(CUSTOMER, has_text="Before going offline")
        expect(first).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        conversation_id = int(first.get_attribute("data-conversation-id") or "0")
        assert conversation_id > 0

        # every `message` the widget emits, in emit order (a resend shows up again)
        shop.evaluate(
            """() => {
                window.__sent = [];
                window.ccWidget.socket.onAnyOutgoing((event, data) => {
                    if (event === 'message') window.__sent.push(data.text);
                });
            }"""
        )

        # --- offline: the socket drops and cannot come back; 14 messages are typed
        ctx.set_offline(True)
        shop.evaluate("() => window.ccWidget.socket.io.engine.close()")
        expect(shop.get_by_test_id("cc-status")).to_have_attribute("data-state", "offline")
        for body in typed:
            shop.get_by_test_id("cc-input").fill(body)
            shop.get_by_test_id("cc-input").press("Enter")
        expect(shop.locator(f"{CUSTOMER}:not([data-seq])")).to_have_count(COUNT)
        assert shop.evaluate("() => JSON.parse(localStorage.getItem('cc_outbox')).length") == COUNT
        assert shop.evaluate("() => window.__sent.length") == 0
        expect(shop.get_by_test_id("cc-status")).to_have_attribute("data-state", "offline")

        # --- back online: the outbox goes out, past the hub's limit, with nothing failed
        ctx.set_offline(False)
        expect(shop.get_by_test_id("cc-status")).to_have_attribute("data-state", "online")
        expect(shop.locator(f"{CUSTOMER}:not([data-seq])")).to_have_count(0)
        expect(shop.locator(f"{CUSTOMER}[data-seq]")).to_have_count(COUNT + 1)
        expect(shop.locator(".ccw-failed")).to_have_count(0)
        expect(shop.locator(".ccw-error")).to_have_text("")
        assert shop.evaluate("() => JSON.parse(localStorage.getItem('cc_outbox')).length") == 0

        # in the widget: typed order, increasing seq
        texts = shop.locator(f"{CUSTOMER} .ccw-bubble").all_inner_texts()
        assert texts == ["Before going offline", *typed], texts
        seqs = [int(s) for s in shop.locator(f"{CUSTOMER}[data-seq]").evaluate_all("els => els.map(e => e.getAttribute('data-seq'))")]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs

        # the limit was really hit (some messages went twice), and the widget never ran ahead: each
        # message went out only after every earlier one (emits in typed order, a resend repeating the last)
        sent = shop.evaluate("() => window.__sent")
        assert len(sent) > COUNT, sent
        order = [typed.index(t) for t in sent]
        assert order == sorted(order), sent
        assert sorted(set(order)) == list(range(COUNT)), sent

        # at the hub: each message stored once, in the order typed
        stored = _stored(db, conversation_id)
        assert [body for _, body, _ in stored] == ["Before going offline", *typed], stored
        assert len({cid for _, _, cid in stored}) == len(stored), stored

        assert not errors, errors
        assert not dialogs, dialogs
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            shop.screenshot(path=str(ARTIFACTS / "widget-outbox-failure.png"))
        except Exception:  # noqa: BLE001 - the screenshot is a help, never the failure
            pass
        raise
    finally:
        ctx.close()
