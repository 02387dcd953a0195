"""An agent takes phone calls on the console's call card, in a real headless Chromium against a running hub.

The voice adapter is not needed (others build it): the hub runs as the other browser tests' does
(``tests/browser/harness.py``: a fresh SQLite file with the demo data, no bot, the Twilio stand-in on as
``make run`` has it), started by ``serve_hub`` below, which is ``contact-center serve`` plus, for this test only,

* the phone channel (``contact_center.channels.VOICE``) with a recording adapter: the ``CallAction``\\ s the
  core asks of it are at ``GET /test/phone/actions``; ``POST /test/phone/refuse`` makes it refuse the next
  action of a kind (a ``failed`` report with the reason in words);
* ``POST /test/phone/call``: a call as the voice adapter hands it to the core (``receive_inbound`` with
  ``opening=True``, what the caller said in the IVR, then ``request_agent`` with what the self-service knew);
  ``POST /test/phone/status`` (``call_status``) and ``POST /test/phone/ended`` (``contact_ended``: the caller hung up).

The softphone is the stand-in's (``GET /console/voice/token`` says ``standin``); its dev API for the agent's
legs (``docs/subsystems/phone.md``) is played by the test in the browser (``page.route``), so the console's
side of that contract is what is checked: the leg that rings after the accept is answered at once, and
hung up with the call.

Call 1: the caller's 360 pops with the offer; the agent accepts and sees what the caller told the phone menu and
the order draft above the card; the card goes Connecting, Ringing, Connected (pushed ``call_status`` in the voice
adapter's words: ``agent_ringing``, ``agent_joined``, ``caller_on_hold``...); mute, hold (the caller hears music) and
resume go to the adapter; a reload brings the card back with its live leg; a refused hang-up is said in words; a note is saved; the
caller hangs up: "Caller hung up: wrap up", and the wrap-up closes it with a disposition. Call 2: the bridge fails (in
words), the leg's answer connects it anyway, the agent hangs up ("You hung up: wrap up"), the leg goes, the wrap-up
closes it. Then the softphone's other modes, with the
hub's answer replaced in the browser: "none" says calls cannot be taken on this browser; "twilio" loads Twilio's
Voice SDK (its own chunk of the bundle) and asks for a new token before the old one expires.
Screenshots: ``test-artifacts/console-call*.png``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "console-call"
OUR_NUMBER = "+15005550006"


# ------------------------------------------------------------------ the hub, with a phone channel for this test


def serve_hub() -> None:
    """Run in the hub's subprocess: ``contact-center serve`` plus the phone channel and ``/test/phone/*``."""
    from aiohttp import web
    from sqlmodel import select

    from contact_center.app import CHANNELS_KEY, create_app
    from contact_center.channels import VOICE
    from contact_center.keys import DB_KEY, HUB_KEY
    from contact_center.logs import setup_logging
    from contact_center.ports import CallAction, DeliveryReport, InboundEvent, OutboundMessage
    from contact_center.settings import Settings
    from crm_store.models import ContactPoint, Conversation, Customer

    settings = Settings.from_env().with_generated_secrets()
    setup_logging(settings.log_level)
    app = create_app(settings)
    actions: list[dict[str, Any]] = []
    spoken: list[dict[str, Any]] = []
    refusals: dict[str, str] = {}

    class RecordingPhone:
        """The phone channel's adapter for this test: keeps what it is asked, refuses what it is told to."""

        async def deliver(self, message: OutboundMessage) -> DeliveryReport:
            spoken.append({"text": message.text, "thread_key": message.thread_key})
            return DeliveryReport("sent", provider_id=f"say-{message.conversation_id}-{message.seq}")

        async def act(self, action: CallAction) -> DeliveryReport:
            actions.append({"kind": action.kind, "conversation_id": action.conversation_id, "thread_key": action.thread_key,
                            "agent_id": action.agent_id, "target": action.target})
            if action.kind in refusals:
                return DeliveryReport("failed", error_code="refused", error_message=refusals.pop(action.kind))
            return DeliveryReport("sent")

    app[CHANNELS_KEY].register(VOICE, RecordingPhone())  # replaces a voice adapter the hub may have

    async def call(request: web.Request) -> web.Response:
        body = await request.json()
        hub = request.app[HUB_KEY]
        sid = body["call_sid"]
        opened = await hub.receive_inbound(InboundEvent(
            channel="phone", customer_address=body["from"], our_address=OUR_NUMBER, thread_key=sid,
            provider_id=f"{sid}:start", text=f"Incoming call from {body['from']}", opening=True, queue="support",
        ))
        for turn, said in enumerate(body.get("said", []), start=1):
            await hub.receive_inbound(InboundEvent(
                channel="phone", customer_address=body["from"], our_address=OUR_NUMBER, thread_key=sid,
                provider_id=f"{sid}:{turn}", text=said, queue="support",
            ))
        queued = await hub.request_agent("phone", sid, "customer_request", body.get("context"))
        return web.json_response({"conversation_id": opened.conversation_id, "queued": queued})

    async def status(request: web.Request) -> web.Response:
        body = await request.json()
        await request.app[HUB_KEY].call_status("phone", body["call_sid"], body["status"], body.get("detail") or {})
        return web.json_response({})

    async def ended(request: web.Request) -> web.Response:
        body = await request.json()
        moved = await request.app[HUB_KEY].contact_ended("phone", body["call_sid"], body.get("reason", "completed"))
        return web.json_response({"moved": moved})

    async def refuse(request: web.Request) -> web.Response:
        body = await request.json()
        refusals[body["action"]] = body["message"]
        return web.json_response({})

    async def recorded(request: web.Request) -> web.Response:
        return web.json_response({"actions": actions, "spoken": spoken})

    async def caller(request: web.Request) -> web.Response:
        """A demo customer with a phone number (the caller the shop knows)."""
        async with request.app[DB_KEY].session() as s:
            rows = (await s.exec(select(ContactPoint, Customer).where(ContactPoint.kind == "phone", ContactPoint.customer_id == Customer.id)
                                 .order_by(ContactPoint.id).limit(int(request.query.get("n", "1"))))).all()
        return web.json_response([{"id": c.id, "name": c.display_name, "phone": p.value} for p, c in rows])

    async def conversation(request: web.Request) -> web.Response:
        async with request.app[DB_KEY].session() as s:
            conv = await s.get(Conversation, int(request.match_info["id"]))
        assert conv is not None
        return web.json_response({"status": conv.status, "disposition": conv.disposition})

    app.router.add_post("/test/phone/call", call)
    app.router.add_post("/test/phone/status", status)
    app.router.add_post("/test/phone/ended", ended)
    app.router.add_post("/test/phone/refuse", refuse)
    app.router.add_get("/test/phone/actions", recorded)
    app.router.add_get("/test/phone/callers", caller)
    app.router.add_get("/test/phone/conversations/{id}", conversation)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, shutdown_timeout=5)


@contextlib.contextmanager
def running_phone_hub(tmp: Path, name: str) -> Iterator[str]:
    """``harness.running_hub`` with this module's ``serve_hub`` as the hub; the log is ``test-artifacts/<name>-hub.log``."""
    env = {"BOT_CHANNELS": "", "RASA_URL": "", "TWILIO_STANDIN": "1", "WRAP_UP_SECONDS": "1", "MEDIA_DIR": str(tmp / "media")}
    with running_hub(tmp, name, TOKEN, env, serve="tests.browser.test_console_call", unset=("TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "TWILIO_TWIML_APP_SID")) as base:
        yield base


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_phone_hub(tmp_path_factory.mktemp("console-call"), "console-call") as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


# ------------------------------------------------------------------ the stand-in's agent legs, played in the browser


class FakeLegs:
    """The stand-in's dev API for the agents' legs (docs/subsystems/phone.md), answered from this test."""

    def __init__(self) -> None:
        self.legs: dict[str, list[dict[str, Any]]] = {}  # identity -> legs
        self.calls: list[tuple[str, str, str]] = []  # (method, identity, verb or "")
        self.lock = threading.Lock()

    def ring(self, identity: str, call_sid: str, conference: str) -> None:
        with self.lock:
            self.legs.setdefault(identity, []).append({"call_sid": call_sid, "status": "ringing", "from": OUR_NUMBER,
                                                        "to": f"client:{identity}", "conference": conference, "muted": False, "hold": False})

    def leg(self, identity: str, call_sid: str) -> dict[str, Any] | None:
        with self.lock:
            return next((leg for leg in self.legs.get(identity, []) if leg["call_sid"] == call_sid), None)

    def verbs(self, verb: str) -> list[str]:
        with self.lock:
            return [identity for method, identity, v in self.calls if v == verb]

    def handle(self, route: Any) -> None:
        request = route.request
        parts = [unquote(p) for p in urlsplit(request.url).path.split("/")]
        # /standin/twilio/dev/clients/{identity}[/calls/{sid}/{verb}]
        identity = parts[5] if len(parts) > 5 else ""
        with self.lock:
            if len(parts) == 6 and request.method == "GET":
                self.calls.append(("GET", identity, ""))
                body: Any = [dict(leg) for leg in self.legs.get(identity, [])]
                status = 200
            elif len(parts) == 9 and parts[6] == "calls" and request.method == "POST":
                sid, verb = parts[7], parts[8]
                self.calls.append(("POST", identity, verb))
                legs = self.legs.get(identity, [])
                found = next((leg for leg in legs if leg["call_sid"] == sid), None)
                if found is None:
                    body, status = {"error": "not_found", "message": "no such leg"}, 404
                elif verb == "answer":
                    found["status"] = "in-progress"
                    body, status = dict(found), 200
                elif verb == "hangup":
                    legs.remove(found)
                    body, status = {"call_sid": sid, "status": "completed"}, 200
                else:
                    body, status = {"error": "bad_request", "message": verb}, 400
            else:
                body, status = {"error": "not_found"}, 404
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


# ------------------------------------------------------------------ helpers


def _post(hub: str, path: str, body: dict[str, Any]) -> Any:
    status, out = http(f"{hub}{path}", body)
    assert status == 200, out
    return out


def _actions(hub: str) -> list[dict[str, Any]]:
    status, out = http(f"{hub}/test/phone/actions")
    assert status == 200, out
    return list(out["actions"])


def _wait_for(page: Any, fn: Any, what: str, timeout: float = 15) -> Any:
    """Poll fn() until truthy. Waits through the page (Playwright's sync API runs the route handlers, the
    stand-in's legs included, only while it is called)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)


def _kinds(hub: str, conversation_id: int) -> list[str]:
    return [a["kind"] for a in _actions(hub) if a["conversation_id"] == conversation_id]


def _login(page: Any, hub: str, username: str) -> None:
    expect = sync_api.expect
    page.goto(f"{hub}/console")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")


# ------------------------------------------------------------------ the tests


def test_an_agent_takes_calls_on_the_call_card(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    legs = FakeLegs()
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    ctx.route(re.compile(r"/standin/twilio/dev/clients/"), legs.handle)
    agent = ctx.new_page()
    watch(agent, dialogs, errors)
    status, callers = http(f"{hub}/test/phone/callers?n=2")
    assert status == 200 and len(callers) == 2, callers
    known, second = callers
    try:
        _login(agent, hub, "alice")
        # the hub has a phone channel: the softphone is the stand-in's, watching alice's legs
        softphone = agent.get_by_test_id("softphone-status")
        expect(softphone).to_have_attribute("data-mode", "standin")
        expect(softphone).to_have_attribute("data-state", "ready")
        expect(softphone).to_contain_text("Softphone: ready")
        identity = _wait_for(agent, lambda: legs.verbs("") and legs.calls[0][1], "the softphone to look for its legs")
        assert re.fullmatch(r"agent_\d+", identity), identity
        agent.get_by_test_id("status-select").select_option("available")

        # --- call 1: a caller the shop knows, after the phone menu
        draft = {"lines": [{"sku": "TSH-RED-L", "name": "Red T-shirt", "quantity": 2, "options": {"size": "L"}}]}
        call1 = _post(hub, "/test/phone/call", {
            "call_sid": "CA" + "1" * 32, "from": known["phone"],
            "said": ["I'd like two large red t-shirts", "speak to someone"],
            "context": {"reason": "customer_request", "intent": "order", "slots": {"size": "L"}, "draft": draft},
        })
        assert call1["queued"] is True, call1
        conv1 = call1["conversation_id"]

        offer = agent.get_by_test_id("offer").filter(has=agent.locator('[data-channel="phone"]'))
        expect(offer).to_have_count(1)
        expect(offer).to_have_class(re.compile(r"\bringing\b"))
        expect(offer.get_by_test_id("channel-tag")).to_have_attribute("data-channel", "phone")
        # the screen pop: the caller's 360 is open before the agent answers
        c360 = agent.get_by_test_id("customer-360")
        expect(agent.get_by_test_id("tab-customer")).to_have_attribute("aria-selected", "true")
        expect(c360).to_contain_text(known["name"])
        agent.screenshot(path=str(ARTIFACTS / "console-call-offer.png"))
        offer.get_by_test_id("offer-accept").click()

        pane = agent.get_by_test_id("call-pane")
        card = pane.get_by_test_id("call-card")
        expect(pane).to_be_visible()
        expect(agent.get_by_test_id("transcript")).to_be_hidden()  # not the chat pane
        expect(card.get_by_test_id("call-caller")).to_have_text(known["name"])
        expect(card).to_have_attribute("data-state", re.compile(r"^(connecting|ringing)$"))
        expect(card.get_by_test_id("call-state-label")).to_have_text("Connecting…")
        expect(c360).to_contain_text(known["name"])
        # the bot part above the card: the menu's note, what the caller said, the handover with the draft
        before = pane.get_by_test_id("call-transcript")
        expect(before.get_by_test_id("message").filter(has_text=f"Incoming call from {known['phone']}")).to_have_count(1)
        expect(before.locator('[data-sender="customer"]').filter(has_text="two large red t-shirts")).to_have_count(1)
        expect(before.get_by_test_id("handoff-draft")).to_contain_text("2 × Red T-shirt (L)")

        # the hub bridged alice: connect_agent went to the adapter
        connect = _wait_for(agent, lambda: [a for a in _actions(hub) if a["kind"] == "connect_agent" and a["conversation_id"] == conv1],
                            "connect_agent")
        assert identity == f"agent_{connect[0]['agent_id']}"

        # --- the voice adapter's statuses move the card (its words: the agent's leg, the conference)
        _post(hub, "/test/phone/status", {"call_sid": "CA" + "1" * 32, "status": "agent_ringing"})
        expect(card.get_by_test_id("call-state-label")).to_have_text("Ringing")
        _post(hub, "/test/phone/status", {"call_sid": "CA" + "1" * 32, "status": "agent_joined",
                                          "detail": {"conference": f"conv-{conv1}", "participant": "agent"}})
        expect(card).to_have_attribute("data-state", "connected")
        expect(card.get_by_test_id("call-state-label")).to_have_text("Connected")
        timer = card.get_by_test_id("call-timer")
        expect(timer).to_have_text(re.compile(r"^0:0[0-9]$"))
        expect(timer).to_have_attribute("data-running", "true")

        # --- alice's leg rings on the softphone and is answered at once (she accepted the call)
        legs.ring(identity, "CA" + "a" * 32, f"conv-{conv1}")
        _wait_for(agent, lambda: legs.verbs("answer"), "the softphone to answer its leg")
        assert (legs.leg(identity, "CA" + "a" * 32) or {}).get("status") == "in-progress"
        line = card.get_by_test_id("softphone-line")
        expect(line).to_have_attribute("data-state", "connected")
        expect(line).to_contain_text("Stand-in softphone (no audio): your line is connected")
        expect(card.get_by_test_id("softphone-answer")).to_be_hidden()

        # --- mute, hold (music), resume: each a call action the adapter gets
        mute = card.get_by_test_id("call-mute")
        mute.click()
        expect(mute).to_have_text("Unmute")
        expect(mute).to_have_attribute("aria-pressed", "true")
        expect(card.get_by_test_id("call-state")).to_contain_text("You are muted")
        _post(hub, "/test/phone/status", {"call_sid": "CA" + "1" * 32, "status": "agent_muted"})  # the conference agrees
        expect(mute).to_have_attribute("aria-pressed", "true")
        hold = card.get_by_test_id("call-hold")
        hold.click()
        expect(card).to_have_attribute("data-state", "on_hold")
        expect(card.get_by_test_id("call-state")).to_contain_text("On hold The caller hears music.")
        expect(hold).to_have_text("Resume")
        agent.screenshot(path=str(ARTIFACTS / "console-call-hold.png"))
        hold.click()
        expect(card).to_have_attribute("data-state", "connected")
        expect(hold).to_have_text("Hold")
        # the caller put on hold from elsewhere (the conference says so): the card follows
        _post(hub, "/test/phone/status", {"call_sid": "CA" + "1" * 32, "status": "caller_on_hold"})
        expect(card).to_have_attribute("data-state", "on_hold")
        _post(hub, "/test/phone/status", {"call_sid": "CA" + "1" * 32, "status": "caller_off_hold"})
        expect(card).to_have_attribute("data-state", "connected")
        mute.click()
        expect(mute).to_have_text("Mute")
        assert _kinds(hub, conv1)[-4:] == ["mute", "hold", "unhold", "unmute"], _kinds(hub, conv1)

        # --- a refusal, in words (the adapter's failed report through the hub's call_action ack)
        _post(hub, "/test/phone/refuse", {"action": "hang_up", "message": "the call is being moved to another number"})
        card.get_by_test_id("call-hangup").click()
        error = card.get_by_test_id("call-error")
        expect(error).to_have_text("Could not hang up: the call is being moved to another number")
        expect(error).to_have_attribute("data-action", "hang_up")
        expect(card).to_have_attribute("data-state", "connected")  # still on the call
        assert _kinds(hub, conv1)[-1] == "hang_up"

        # --- notes during the call (internal notes, above the card)
        notes = card.get_by_test_id("call-notes")
        notes.fill("Wants the red ones in L; asked about delivery by Friday")
        card.get_by_test_id("call-note-save").click()
        expect(before.locator('[data-internal="true"]').filter(has_text="delivery by Friday")).to_have_count(1)
        expect(notes).to_have_value("")

        # --- transfer: the existing dialog (to a queue or a colleague); not used now
        card.get_by_test_id("call-transfer").click()
        dialog = agent.locator("#transfer-dialog")
        expect(dialog).to_be_visible()
        expect(agent.get_by_test_id("transfer-queue").locator("option", has_text="support")).to_have_count(1)
        agent.locator("#transfer-cancel").click()
        expect(dialog).to_be_hidden()
        agent.wait_for_timeout(1100)  # the timer moves
        expect(timer).not_to_have_text("0:00")
        agent.screenshot(path=str(ARTIFACTS / "console-call.png"))

        # --- a reload during the call: the card comes back, and the softphone finds its live leg
        agent.reload()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(card).to_be_visible()
        expect(card.get_by_test_id("call-caller")).to_have_text(known["name"])
        expect(card).to_have_attribute("data-state", "connected")
        expect(line).to_have_attribute("data-state", "connected")
        expect(before.locator('[data-internal="true"]').filter(has_text="delivery by Friday")).to_have_count(1)
        assert legs.verbs("answer") == [identity]  # the live leg was not answered twice

        # --- the caller hangs up: the card says so and offers the wrap-up
        assert _post(hub, "/test/phone/ended", {"call_sid": "CA" + "1" * 32, "reason": "completed"})["moved"] is False
        expect(card).to_have_attribute("data-state", "ended")
        expect(card.get_by_test_id("call-state-label")).to_have_text("Caller hung up: wrap up")
        wrapup = card.get_by_test_id("call-wrapup")
        expect(wrapup).to_be_visible()
        expect(wrapup.get_by_test_id("call-wrapup-title")).to_contain_text("Wrap-up")
        expect(card.get_by_test_id("call-error")).to_be_hidden()  # the refusal during the call is moot now
        for control in ("call-mute", "call-hold", "call-transfer", "call-hangup"):
            expect(card.get_by_test_id(control)).to_be_disabled()
        expect(timer).to_have_attribute("data-running", "false")
        # the caller is gone: so is alice's leg
        _wait_for(agent, lambda: legs.verbs("hangup"), "the softphone to hang up the leg")
        expect(line).to_have_attribute("data-state", "ready")
        frozen = timer.inner_text()
        agent.wait_for_timeout(1100)
        expect(timer).to_have_text(frozen)
        # a late status never reopens it
        _post(hub, "/test/phone/status", {"call_sid": "CA" + "1" * 32, "status": "agent_in_progress"})
        agent.wait_for_timeout(300)
        expect(card).to_have_attribute("data-state", "ended")
        agent.screenshot(path=str(ARTIFACTS / "console-call-ended.png"))
        wrapup.get_by_test_id("call-disposition").select_option("order_placed")
        wrapup.get_by_test_id("call-wrapup-note").fill("Order of two red T-shirts taken by phone")
        wrapup.get_by_test_id("call-wrapup-submit").click()
        expect(pane).to_be_hidden()
        expect(agent.get_by_test_id("conversation-item")).to_have_count(0)
        # the call is closed with the disposition (and its note)
        assert http(f"{hub}/test/phone/conversations/{conv1}")[1] == {"status": "closed", "disposition": "order_placed"}
        expect(softphone).to_have_attribute("data-state", "ready")

        # --- call 2: the agent hangs up
        sid2 = "CA" + "2" * 32
        conv2 = _post(hub, "/test/phone/call", {"call_sid": sid2, "from": second["phone"], "said": ["agent"]})["conversation_id"]
        offer = agent.get_by_test_id("offer").filter(has=agent.locator('[data-channel="phone"]'))
        expect(offer).to_have_count(1, timeout=30_000)  # after alice's short wrap-up
        expect(c360).to_contain_text(second["name"])
        offer.get_by_test_id("offer-accept").click()
        expect(card.get_by_test_id("call-caller")).to_have_text(second["name"])
        _wait_for(agent, lambda: "connect_agent" in _kinds(hub, conv2), "connect_agent for call 2")
        # the core says the bridge failed (as it does when connect_agent is refused): in words on the card
        _post(hub, "/test/phone/status", {"call_sid": sid2, "status": "failed",
                                          "detail": {"code": "busy", "message": "your line did not answer in time"}})
        expect(card).to_have_attribute("data-state", "failed")
        expect(card.get_by_test_id("call-state")).to_have_text("Not connected your line did not answer in time")
        _post(hub, "/test/phone/status", {"call_sid": sid2, "status": "agent_no_answer"})  # the adapter's word for it
        expect(card.get_by_test_id("call-state")).to_have_text("Not connected Your line did not answer.")
        legs.ring(identity, "CA" + "b" * 32, f"conv-{conv2}")
        expect(card).to_have_attribute("data-state", "connected")  # answered on the softphone: on the call
        expect(card.get_by_test_id("call-state-label")).to_have_text("Connected")
        card.get_by_test_id("call-hangup").click()
        expect(card.get_by_test_id("call-state-label")).to_have_text("You hung up: wrap up")
        expect(card.get_by_test_id("call-error")).to_be_hidden()
        assert _kinds(hub, conv2)[-1] == "hang_up"
        _wait_for(agent, lambda: len(legs.verbs("hangup")) == 2, "the softphone to hang up the second leg")
        agent.screenshot(path=str(ARTIFACTS / "console-call-hung-up.png"))
        card.get_by_test_id("call-wrapup-submit").click()  # "Resolved", the default
        expect(pane).to_be_hidden()
        assert http(f"{hub}/test/phone/conversations/{conv2}")[1] == {"status": "closed", "disposition": "resolved"}

        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        with contextlib.suppress(Exception):
            agent.screenshot(path=str(ARTIFACTS / "console-call-failure.png"))
        raise
    finally:
        ctx.close()


def _mint(identity: str, ttl: int) -> tuple[str, int]:
    from contact_center.console_voice import VoiceSettings, mint_token

    voice = VoiceSettings("AC" + "a1" * 16, "SK" + "b2" * 16, "a-secret-for-the-browser-test-0123", "AP" + "c3" * 16, ttl)
    return mint_token(voice, identity)


def test_the_softphone_modes_none_and_twilio(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    errors: list[str] = []
    dialogs: list[str] = []

    # --- "none": no softphone for this browser, said in words
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    reason = "the hub has no Twilio Voice settings and no stand-in"
    ctx.route("**/console/voice/token", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                     body=json.dumps({"mode": "none", "reason": reason})))
    page = ctx.new_page()
    watch(page, dialogs, errors)
    try:
        _login(page, hub, "bob")
        status = page.get_by_test_id("softphone-status")
        expect(status).to_have_attribute("data-mode", "none")
        expect(status.get_by_test_id("softphone-words")).to_have_text("Calls: not on this browser")
        expect(status).to_have_attribute("title", f"Calls cannot be taken on this browser: {reason}.")
        page.screenshot(path=str(ARTIFACTS / "console-call-no-softphone.png"))
    finally:
        ctx.close()

    # --- "twilio": the SDK's chunk loads, the Device starts with the token, a new token comes before expiry
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    served: list[float] = []

    def token(route: Any) -> None:
        served.append(time.monotonic())
        jwt, expires_at = _mint("agent_3", 300)
        # told it expires in 12 s: the console asks again half-way, before it does
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({"mode": "twilio", "token": jwt, "identity": "agent_3", "expires_at": int(time.time()) + 12}))

    ctx.route("**/console/voice/token", token)
    ctx.route_web_socket(re.compile(r"twilio\.com"), lambda ws: ws.close())  # nothing leaves this machine
    ctx.route(re.compile(r"^https://[^/]*twilio\.com/"), lambda route: route.abort())
    chunks: list[str] = []
    page = ctx.new_page()
    page.on("request", lambda r: chunks.append(r.url) if "/static/console/dist/chunks/" in r.url else None)
    sdk_errors: list[str] = []
    watch(page, dialogs, sdk_errors)
    try:
        _login(page, hub, "bob")
        status = page.get_by_test_id("softphone-status")
        expect(status).to_have_attribute("data-mode", "twilio")
        assert any(re.search(r"/chunks/twilio-[A-Z0-9]+\.js$", url) for url in chunks), chunks
        _wait_for(page, lambda: len(served) >= 2, "the console to ask for a new token before the old one expires", timeout=20)
        assert 4 <= served[1] - served[0] <= 12, served
        expect(status).to_have_attribute("data-state", re.compile(r"^(starting|ready|error)$"))
        # Twilio cannot be reached from here: the softphone says so in words, and keeps its token fresh
        expect(status).to_have_attribute("title", re.compile(r"^Twilio softphone: "))
        page.screenshot(path=str(ARTIFACTS / "console-call-twilio.png"))
    finally:
        ctx.close()
    assert dialogs == [], dialogs
    assert errors == [], errors
