"""The phone end to end in real Chromium, through the REAL Twilio stand-in (no fake), without the bot.

The hub runs as ``make run`` has it (``TWILIO_STANDIN=1``: the stand-in is mounted in the hub and rings the
hub's own voice webhooks at ``PUBLIC_BASE_URL``), with the phone among ``BOT_CHANNELS`` but no Rasa: the IVR
works alone. One page is the caller (``/dev/phone``'s Call tab), another is alice in ``/console``.

* A whole call: the caller (a customer the shop knows) calls the shop, hears the greeting with their name
  and the menu, presses 0; alice (Available) gets the offer with the caller's 360 open and accepts; the
  stand-in moves the caller into the conference ``conv-<id>`` and rings alice's ``client:`` leg, which the
  console's stand-in softphone answers; the card shows Connected and the caller's phone "with the shop";
  hold and resume go through Participants update (by the conference's CF SID) and the caller's phone shows
  "on hold" and back; mute and unmute reach alice's leg in the conference; the caller hangs up from /dev/phone; the card says so and offers the wrap-up; alice
  closes with a disposition; the customer's timeline has the call, who joined it, its end and its close.
* A caller who hangs up while waiting (no agent available): the call is closed as abandoned and counted in
  the supervisor's figures.

Screenshots: ``test-artifacts/phone-e2e-*.png``. Every wait is on something observable (no fixed sleeps),
with generous time limits (a busy 2-core machine).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.browser.harness import ARTIFACTS, chromium, free_port, http, running_hub, sync_api, watch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "phone-e2e-token"
SHOP = "+15005550006"
TIMEOUT = 45_000  # ms: a step's wait (the stand-in's webhooks and the console's polls on a busy machine)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("phone-e2e")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"TWILIO_STANDIN": "1", "BOT_CHANNELS": "chat,sms,whatsapp,phone", "PUBLIC_BASE_URL": base, "RASA_URL": "",
           "VOICE_CALLBACK_OFFER_AFTER": "0", "MEDIA_DIR": str(tmp / "media")}
    with running_hub(tmp, "phone-e2e", TOKEN, env=env, port=port) as url:
        assert url == base
        yield url, tmp / "phone-e2e.db"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _known_callers(db: Path, n: int) -> list[dict[str, Any]]:
    """Demo customers with a North American phone number (the dev phone calls from it): id, name, number."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = con.execute(
            "SELECT c.id, c.display_name, p.value FROM contact_points p JOIN customers c ON c.id = p.customer_id "
            "WHERE p.kind = 'phone' AND p.value LIKE '+1%' AND length(p.value) = 12 AND c.display_name <> '' "
            "ORDER BY c.id LIMIT ?", (n,)).fetchall()
    assert len(rows) == n, rows
    return [{"id": r[0], "name": r[1], "phone": r[2]} for r in rows]


def _wait_for(page: Any, probe: Callable[[], Any], what: str, timeout_ms: int = TIMEOUT) -> Any:
    """Poll ``probe`` (a call to the hub) until it gives something truthy, letting the pages run meanwhile."""
    waited = 0
    while waited < timeout_ms:
        found = probe()
        if found:
            return found
        page.wait_for_timeout(250)
        waited += 250
    raise AssertionError(f"timed out waiting for {what}")


def _login(page: Any, hub: str, username: str) -> None:
    expect = sync_api.expect
    page.goto(f"{hub}/console")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")


def _dial(phone: Any, hub: str, number: str) -> None:
    """The dev phone, as ``number``, calls the shop from its Call tab."""
    expect = sync_api.expect
    phone.goto(f"{hub}/dev/phone")
    expect(phone.locator("#phone option[value='__custom__']")).to_have_count(1)
    phone.locator("#phone").select_option("__custom__")
    phone.locator("#custom").fill(number)
    phone.locator("#custom").dispatch_event("change")
    phone.locator("#tab-call").click()
    expect(phone.locator("#call-panel")).to_be_visible()
    phone.locator("#speak").uncheck()  # no speech synthesis in a headless browser
    phone.locator("#call-button").click()


def _said(phone: Any) -> Any:
    return phone.locator("#transcript .line.say")


def _timeline(hub: str, customer_id: int) -> list[dict[str, Any]]:
    status, body = http(f"{hub}/api/customers/{customer_id}/timeline?limit=50", token=TOKEN)
    assert status == 200, body
    return list(body["items"])


def _conversation(db: Path, call_sid: str) -> Any:
    """The call's conversation row: (id, status, disposition, abandoned_at, assigned_agent_id), or None."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        row = con.execute("SELECT id, status, disposition, abandoned_at, assigned_agent_id FROM conversations WHERE thread_key = ?",
                          (call_sid,)).fetchone()
    return row


def _call_sid(phone: Any, hub: str, number: str) -> str:
    status, body = http(f"{hub}/dev/phone/api/calls?number={number.replace('+', '%2B')}")
    assert status == 200 and body["calls"], body
    return str(body["calls"][-1]["call_sid"])


def test_a_caller_reaches_alice_who_holds_and_wraps_up(hub: tuple[str, Path], browser: Any) -> None:
    base, db = hub
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    caller = _known_callers(db, 1)[0]
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context()
    agent = ctx.new_page()
    agent.set_viewport_size({"width": 1360, "height": 900})
    phone = ctx.new_page()
    phone.set_viewport_size({"width": 480, "height": 900})
    for page in (agent, phone):
        watch(page, dialogs, errors)
    try:
        # --- alice, Available, with the stand-in's softphone ready
        _login(agent, base, "alice")
        softphone = agent.get_by_test_id("softphone-status")
        expect(softphone).to_have_attribute("data-mode", "standin")
        expect(softphone).to_have_attribute("data-state", "ready")
        agent.get_by_test_id("status-select").select_option("available")

        # --- the caller calls the shop: the greeting by name, the menu; 0 for a person
        _dial(phone, base, caller["phone"])
        said = _said(phone)
        expect(said.filter(has_text=caller["name"].split()[0]).first).to_be_visible()
        expect(said.filter(has_text="To speak to someone, press 0").first).to_be_visible()
        expect(phone.locator("#listening")).not_to_be_empty()  # the IVR's <Gather> listens
        phone.screenshot(path=str(ARTIFACTS / "phone-e2e-caller-greeting.png"))
        phone.locator("#keypad button", has_text=re.compile(r"^0$")).click()
        expect(said.filter(has_text="Please hold while I put you through to a colleague.").first).to_be_visible()
        call_sid = _call_sid(phone, base, caller["phone"])
        conv_id = _wait_for(agent, lambda: (_conversation(db, call_sid) or (0,))[0], "the call's conversation")

        # --- the offer rings in the console with the caller's 360 open (the screen pop); alice accepts
        offer = agent.get_by_test_id("offer").filter(has=agent.locator('[data-channel="phone"]'))
        expect(offer).to_have_count(1)
        expect(agent.get_by_test_id("customer-360")).to_contain_text(caller["name"])
        agent.screenshot(path=str(ARTIFACTS / "phone-e2e-console-offer.png"))
        offer.get_by_test_id("offer-accept").click()

        # --- the stand-in rings alice's client leg into conv-<id>; the softphone answers it: connected
        pane = agent.get_by_test_id("call-pane")
        card = pane.get_by_test_id("call-card")
        expect(card.get_by_test_id("call-caller")).to_have_text(caller["name"])
        expect(card).to_have_attribute("data-state", "connected")
        expect(card.get_by_test_id("call-state-label")).to_have_text("Connected")
        line = card.get_by_test_id("softphone-line")
        expect(line).to_have_attribute("data-state", "connected")
        identity = f"agent_{_conversation(db, call_sid)[4]}"
        legs = http(f"{base}/standin/twilio/dev/clients/{identity}")[1]
        assert [(leg["status"], leg["conference"]) for leg in legs] == [("in-progress", f"conv-{conv_id}")], legs
        status = phone.locator("#call-status")
        expect(status).to_contain_text("with the shop")
        expect(card.get_by_test_id("call-timer")).to_have_attribute("data-running", "true")
        phone.screenshot(path=str(ARTIFACTS / "phone-e2e-caller-connected.png"))
        agent.screenshot(path=str(ARTIFACTS / "phone-e2e-console-connected.png"))

        # --- hold and back: Participants update of the caller's leg, by the conference's SID
        hold = card.get_by_test_id("call-hold")
        hold.click()
        expect(card).to_have_attribute("data-state", "on_hold")
        expect(hold).to_have_text("Resume")
        expect(status).to_contain_text("on hold")  # the stand-in holds the caller (music)
        expect(card.get_by_test_id("call-error")).to_be_hidden()
        phone.screenshot(path=str(ARTIFACTS / "phone-e2e-caller-on-hold.png"))
        agent.screenshot(path=str(ARTIFACTS / "phone-e2e-console-on-hold.png"))
        hold.click()
        expect(card).to_have_attribute("data-state", "connected")
        expect(hold).to_have_text("Hold")
        expect(status).to_contain_text("with the shop")
        expect(card.get_by_test_id("call-error")).to_be_hidden()

        # --- mute and back: Participants update of alice's leg (the stand-in's leg shows it)
        mute = card.get_by_test_id("call-mute")
        mute.click()
        expect(mute).to_have_attribute("aria-pressed", "true")
        _wait_for(agent, lambda: [leg.get("muted") for leg in http(f"{base}/standin/twilio/dev/clients/{identity}")[1]] == [True],
                  "alice's leg to be muted in the conference")
        mute.click()
        expect(mute).to_have_attribute("aria-pressed", "false")
        _wait_for(agent, lambda: [leg.get("muted") for leg in http(f"{base}/standin/twilio/dev/clients/{identity}")[1]] == [False],
                  "alice's leg to be unmuted")
        expect(card.get_by_test_id("call-error")).to_be_hidden()

        # --- the caller hangs up from the dev phone: the card ends and offers the wrap-up
        phone.locator("#hangup-button").click()
        expect(status).to_contain_text("completed")
        expect(card).to_have_attribute("data-state", "ended")
        expect(card.get_by_test_id("call-state-label")).to_have_text("Caller hung up: wrap up")
        wrapup = card.get_by_test_id("call-wrapup")
        expect(wrapup).to_be_visible()
        expect(card.get_by_test_id("call-timer")).to_have_attribute("data-running", "false")
        expect(line).to_have_attribute("data-state", "ready")  # alice's leg went with the conference
        _wait_for(agent, lambda: http(f"{base}/standin/twilio/dev/clients/{identity}")[1] == [], "alice's leg to end")
        phone.screenshot(path=str(ARTIFACTS / "phone-e2e-caller-ended.png"))
        agent.screenshot(path=str(ARTIFACTS / "phone-e2e-console-wrapup.png"))
        wrapup.get_by_test_id("call-disposition").select_option("resolved")
        wrapup.get_by_test_id("call-wrapup-note").fill("Asked about the latest order; told it by phone")
        wrapup.get_by_test_id("call-wrapup-submit").click()
        expect(pane).to_be_hidden()
        row = _wait_for(agent, lambda: (lambda r: r if r[1] == "closed" else None)(_conversation(db, call_sid)), "the call closed")
        assert row[2] == "resolved" and row[3] is None, row

        # --- the customer's timeline: the call, who joined it, its end, its close
        texts = [item["summary"] if "summary" in item else item.get("text", "") for item in _timeline(base, caller["id"])
                 if item.get("conversation_id") == conv_id]
        joined = " | ".join(str(t) for t in texts)
        with contextlib.closing(sqlite3.connect(db)) as con:
            alice = con.execute("SELECT display_name FROM agents WHERE username = 'alice'").fetchone()[0]
        assert f"{alice} joined the call" in joined, texts  # who answered
        assert "The customer ended the call (completed)" in joined, texts
        assert "Call closed (resolved)" in joined, texts
        assert f"Call started: Incoming call from {caller['phone']}" in joined, texts
        assert texts[-1].startswith("Call started") and texts[0].startswith("Call closed"), texts  # newest first
        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        with contextlib.suppress(Exception):
            agent.screenshot(path=str(ARTIFACTS / "phone-e2e-console-failure.png"))
            phone.screenshot(path=str(ARTIFACTS / "phone-e2e-caller-failure.png"))
        raise
    finally:
        ctx.close()


def test_a_caller_who_hangs_up_while_waiting_has_abandoned(hub: tuple[str, Path], browser: Any) -> None:
    base, db = hub
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    caller = _known_callers(db, 2)[1]
    before = http(f"{base}/api/supervisor/snapshot", token=TOKEN)
    assert before[0] == 200, before
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context()
    agent = ctx.new_page()
    phone = ctx.new_page()
    phone.set_viewport_size({"width": 480, "height": 900})
    for page in (agent, phone):
        watch(page, dialogs, errors)
    try:
        _login(agent, base, "alice")  # away: nobody takes the call
        agent.get_by_test_id("status-select").select_option("away")
        _dial(phone, base, caller["phone"])
        said = _said(phone)
        expect(said.filter(has_text="To speak to someone, press 0").first).to_be_visible()
        phone.locator("#keypad button", has_text=re.compile(r"^0$")).click()
        expect(said.filter(has_text="Please hold while I put you through to a colleague.").first).to_be_visible()
        call_sid = _call_sid(phone, base, caller["phone"])
        _wait_for(phone, lambda: (_conversation(db, call_sid) or (0, ""))[1] == "queued", "the call to be queued")
        expect(phone.locator("#call-status")).to_contain_text("in-progress")
        phone.screenshot(path=str(ARTIFACTS / "phone-e2e-abandon-waiting.png"))
        phone.locator("#hangup-button").click()
        expect(phone.locator("#call-status")).to_contain_text("completed")
        row = _wait_for(phone, lambda: (lambda r: r if r[1] == "closed" else None)(_conversation(db, call_sid)), "the call closed")
        assert row[2] == "abandoned" and row[3] is not None and row[4] is None, row
        phone.screenshot(path=str(ARTIFACTS / "phone-e2e-abandon-hung-up.png"))
        texts = [str(item.get("summary") or item.get("text") or "") for item in _timeline(base, caller["id"]) if item.get("conversation_id") == row[0]]
        assert any("The customer ended the call" in t for t in texts), texts
        was = _abandoned(before[1])
        now = _wait_for(phone, lambda: (lambda n: n if n != was else None)(_abandoned(http(f"{base}/api/supervisor/snapshot", token=TOKEN)[1])),
                        "the supervisor's figures to count it")
        assert (now[0] - was[0], now[1] - was[1]) == (1, 1), (was, now)  # counted in the supervisor's figures
        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        with contextlib.suppress(Exception):
            phone.screenshot(path=str(ARTIFACTS / "phone-e2e-abandon-failure.png"))
        raise
    finally:
        ctx.close()


def _abandoned(snapshot: dict[str, Any]) -> tuple[int, int]:
    """The supervisor's abandoned contacts today: on the phone channel's row, and in all."""
    phone = next((row for row in snapshot["channels"] if row["name"] == "phone"), {"abandoned": 0})
    return int(phone["abandoned"]), int(snapshot["total"]["abandoned"])


def test_alice_consults_bob_then_transfers_the_call_to_him(hub: tuple[str, Path], browser: Any) -> None:
    """A warm transfer in two consoles: alice consults bob from the transfer dialog ("Consult first"), the caller
    is held while bob's banner rings; bob answers, alice completes: the call card is bob's, alice's is gone."""
    base, db = hub
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    caller = _known_callers(db, 3)[2]
    dialogs: list[str] = []
    errors: list[str] = []
    contexts = [browser.new_context() for _ in range(3)]
    alice, bob, phone = (ctx.new_page() for ctx in contexts)
    for page in (alice, bob):
        page.set_viewport_size({"width": 1360, "height": 900})
        watch(page, dialogs, errors)
    watch(phone, dialogs, errors)
    with contextlib.closing(sqlite3.connect(db)) as con:
        bob_id, bob_name = con.execute("SELECT id, display_name FROM agents WHERE username = 'bob'").fetchone()
    try:
        _login(alice, base, "alice")
        _login(bob, base, "bob")
        expect(alice.get_by_test_id("softphone-status")).to_have_attribute("data-state", "ready")
        expect(bob.get_by_test_id("softphone-status")).to_have_attribute("data-state", "ready")
        alice.get_by_test_id("status-select").select_option("available")
        _dial(phone, base, caller["phone"])
        expect(_said(phone).filter(has_text="To speak to someone, press 0").first).to_be_visible()
        phone.locator("#keypad button", has_text=re.compile(r"^0$")).click()
        offer = alice.get_by_test_id("offer").filter(has=alice.locator('[data-channel="phone"]'))
        expect(offer).to_have_count(1)
        offer.get_by_test_id("offer-accept").click()
        card = alice.get_by_test_id("call-pane").get_by_test_id("call-card")
        expect(card).to_have_attribute("data-state", "connected")
        call_sid = _call_sid(phone, base, caller["phone"])
        conv_id = _conversation(db, call_sid)[0]
        bob.get_by_test_id("status-select").select_option("available")

        # --- alice: Transfer, a colleague, "Consult first": the caller is held, bob's banner rings
        card.get_by_test_id("call-transfer").click()
        agent_select = alice.get_by_test_id("transfer-agent")
        expect(agent_select.locator(f"option[value='{bob_id}']")).to_be_enabled()
        agent_select.select_option(str(bob_id))
        consult = alice.get_by_test_id("transfer-consult")
        expect(consult).to_be_visible()
        consult.click()
        strip = card.get_by_test_id("call-consult")
        expect(strip).to_have_attribute("data-state", "ringing")
        expect(card.get_by_test_id("call-consult-complete")).to_be_disabled()
        expect(phone.locator("#call-status")).to_contain_text("on hold")
        banner = bob.get_by_test_id("consult-request")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(caller["name"])
        bob.screenshot(path=str(ARTIFACTS / "phone-e2e-warm-bob-rings.png"))
        banner.get_by_test_id("consult-answer").click()
        expect(strip).to_have_attribute("data-state", "talking")
        expect(card.get_by_test_id("call-consult-text")).to_contain_text(f"Talking with {bob_name}")
        alice.screenshot(path=str(ARTIFACTS / "phone-e2e-warm-alice-consulting.png"))

        # --- alice completes: the call is bob's (his leg already up), alice's card goes, the caller is back
        card.get_by_test_id("call-consult-complete").click()
        expect(alice.get_by_test_id("call-pane")).to_be_hidden()
        bob_card = bob.get_by_test_id("call-pane").get_by_test_id("call-card")
        expect(bob_card.get_by_test_id("call-caller")).to_have_text(caller["name"])
        expect(bob_card).to_have_attribute("data-state", "connected")
        expect(banner).to_be_hidden()
        expect(phone.locator("#call-status")).to_contain_text("with the shop")
        _wait_for(bob, lambda: (_conversation(db, call_sid) or (0,) * 5)[4] == bob_id, "the call assigned to bob")
        legs = http(f"{base}/standin/twilio/dev/clients/agent_{bob_id}")[1]
        assert [(leg["status"], leg["conference"]) for leg in legs] == [("in-progress", f"conv-{conv_id}")], legs
        bob.screenshot(path=str(ARTIFACTS / "phone-e2e-warm-bob-has-the-call.png"))

        # --- the caller hangs up: bob wraps up; the timeline says who transferred to whom
        phone.locator("#hangup-button").click()
        expect(bob_card).to_have_attribute("data-state", "ended")
        wrapup = bob_card.get_by_test_id("call-wrapup")
        wrapup.get_by_test_id("call-disposition").select_option("resolved")
        wrapup.get_by_test_id("call-wrapup-submit").click()
        _wait_for(bob, lambda: (_conversation(db, call_sid) or (0, ""))[1] == "closed", "the call closed")
        texts = " | ".join(str(item.get("summary", "")) for item in _timeline(base, caller["id"]) if item.get("conversation_id") == conv_id)
        assert f"transferred to {bob_name} after consultation" in texts, texts
        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        with contextlib.suppress(Exception):
            alice.screenshot(path=str(ARTIFACTS / "phone-e2e-warm-alice-failure.png"))
            bob.screenshot(path=str(ARTIFACTS / "phone-e2e-warm-bob-failure.png"))
        raise
    finally:
        for ctx in contexts:
            ctx.close()


def test_an_agent_sets_their_own_phone_for_calls_and_goes_back_to_the_browser(hub: tuple[str, Path], browser: Any) -> None:
    """Issue 14: "an agent may instead take calls on their own phone number". In the top bar, Change: a bad number
    is refused with the hub's reason under the field; a good one is kept in E.164 and the softphone line says calls
    ring that phone (the hub's softphone answer is "phone"); "Use this browser" gives the stand-in's softphone back.
    (The dial to the agent's number is tests/integration/test_twilio_voice.py::test_an_agent_who_takes_calls_on_their_own_phone_is_rung_there.)"""
    base, db = hub
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT)
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context()
    agent = ctx.new_page()
    agent.set_viewport_size({"width": 1360, "height": 900})
    watch(agent, dialogs, errors)
    try:
        _login(agent, base, "dana")
        softphone = agent.get_by_test_id("softphone-status")
        expect(softphone).to_have_attribute("data-mode", "standin")
        softphone.get_by_test_id("own-phone-toggle").click()
        number = agent.get_by_test_id("own-phone-number")
        expect(number).to_be_focused()
        number.fill("12")
        agent.get_by_test_id("own-phone-save").click()
        problem = agent.get_by_test_id("own-phone-problem")
        expect(problem).to_contain_text("phone_number: ")
        expect(problem).to_be_visible()
        expect(agent.get_by_test_id("own-phone-number")).to_have_value("12")  # what was typed stays to be corrected
        agent.screenshot(path=str(ARTIFACTS / "phone-e2e-own-phone-form.png"))
        agent.get_by_test_id("own-phone-number").fill("+1 500 555 0144")
        agent.get_by_test_id("own-phone-save").click()
        expect(softphone).to_have_attribute("data-mode", "phone")
        expect(softphone.get_by_test_id("softphone-words")).to_have_text("Calls: your phone +15005550144")
        with contextlib.closing(sqlite3.connect(db)) as con:
            assert con.execute("SELECT phone_number FROM agents WHERE username = 'dana'").fetchone() == ("+15005550144",)
        agent.screenshot(path=str(ARTIFACTS / "phone-e2e-own-phone.png"))
        agent.reload()  # kept: the hub says "phone" again
        expect(agent.get_by_test_id("softphone-status")).to_have_attribute("data-mode", "phone")
        agent.get_by_test_id("softphone-status").get_by_test_id("own-phone-toggle").click()
        agent.get_by_test_id("own-phone-clear").click()
        expect(agent.get_by_test_id("softphone-status")).to_have_attribute("data-mode", "standin")
        with contextlib.closing(sqlite3.connect(db)) as con:
            assert con.execute("SELECT phone_number FROM agents WHERE username = 'dana'").fetchone() == (None,)
        assert errors == [] and dialogs == []
    finally:
        ctx.close()
