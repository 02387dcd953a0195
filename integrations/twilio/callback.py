"""Web callback through Twilio Voice (docs/subsystems/callback.md): the ``callback`` channel's adapter and its webhooks.

Agent first: when an agent accepts a callback's offer, the core asks :meth:`CallbackDialler.act` to
``connect_agent``. The adapter rings the agent's softphone into the conference ``conv-<conversation id>``
(Participants create, as for an inbound call) and dials the customer with Calls create (our published number as
caller ID, status callbacks, ``MachineDetection=Enable``), through a calls-per-second token bucket that backs off
when Twilio answers 429 (error 20429). Once the customer's phone answers, Twilio asks the answer webhook for TwiML
with ``AnsweredBy``: a person joins the conference, a machine or fax is hung up on and counts as not reached.

Webhooks (signed like every Twilio webhook: 403 without a valid ``X-Twilio-Signature``; 400 with a reason for a
malformed form; never 500 for what Twilio sends):

* ``POST /webhooks/twilio/callback/answer?cb=<id>&n=<attempt>&conv=<conversation id>``: the customer's call answered.
* ``POST /webhooks/twilio/callback/whisper?cb=<id>&n=<attempt>``: the agent's whisper (their participant's
  ``AnnounceUrl``, set when their leg answers): ``<Say>`` "Callback for <name>: <topic>", heard by the agent alone.
* ``POST /webhooks/twilio/callback/status?cb=<id>&n=<attempt>&leg=customer|agent|consult``: call status callbacks, taken
  once per ``(CallSid, CallStatus, SequenceNumber)`` and only forward (a late ``ringing`` after ``completed`` is
  dropped); the core records the attempt's outcome once (SQL decides).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped,unused-ignore]

from contact_center.ports import CallAction, DeliveryReport
from integrations.twilio.config import TwilioConfig
from integrations.twilio.messaging import BadWebhook, read_form
from integrations.twilio.ports import WebhookReceipts
from integrations.twilio.voice import (
    CUSTOMER_LABEL, MAX_FORM_BYTES, VoiceAdapter, _agent_of, _field, agent_destination, agent_identity, room_name,
)
from integrations.twilio.signature import SIGNATURE_HEADER, is_valid_signature
from integrations.twilio.voice_rest import VoiceResult

log = logging.getLogger(__name__)

PROVIDER = "twilio"
CHANNEL = "callback"
ANSWER_PATH = "/webhooks/twilio/callback/answer"
STATUS_PATH = "/webhooks/twilio/callback/status"
WHISPER_PATH = "/webhooks/twilio/callback/whisper"  # the agent's whisper (Participants update AnnounceUrl)
STATUS_KIND = "cb_status"
ANSWER_KIND = "cb_answer"
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_THREAD = re.compile(r"cb-([0-9]{1,18})-([0-9]{1,3})")
_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2, "answered": 2,
         "completed": 3, "busy": 3, "failed": 3, "no-answer": 3, "canceled": 3}
_ANSWERED_BY = frozenset({"human", "unknown", "machine_start", "machine_end_beep", "machine_end_silence",
                          "machine_end_other", "fax"})
_MACHINE = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
CONNECTING_TEXT = "Hello, this is the call back you asked for. Connecting you to an agent now."
HOLD_TEXT = "Please hold: we are passing you to a colleague."
WAIT_FOR_AGENT_TEXT = ("Hello, this is the call back you asked for. Please hold: an agent will be with you in a moment.")


class CallsPerSecond:
    """A token bucket for outbound calls (Twilio's default is 1 call a second per account; ``CALLBACK_CPS``).

    ``await acquire()`` returns when one more call may be created; :meth:`back_off` (after a 429) empties the
    bucket and holds every caller for the given time. Callers are served in turn."""

    def __init__(self, rate: float = 1.0, burst: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be above 0 and burst at least 1")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens, self._updated, self._hold_until = burst, clock(), 0.0
        self._lock = asyncio.Lock()
        self.backoffs = 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._hold_until:
                    await self._sleep(self._hold_until - now)
                    continue
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)

    def back_off(self, seconds: float) -> None:
        """Twilio said 429: nothing more for ``seconds``, then at the bucket's rate from empty."""
        self.backoffs += 1
        self._hold_until = max(self._hold_until, self._clock() + seconds)
        self._tokens = 0.0
        self._updated = self._hold_until


@dataclass(frozen=True)
class DiallerSettings:
    """``CALLBACK_CPS`` (calls a second), ``CALLBACK_RING_SECONDS`` (how long the customer's phone rings),
    ``CALLBACK_MACHINE_DETECTION`` (``Enable``, ``DetectMessageEnd`` or empty for none)."""

    calls_per_second: float = 1.0
    ring_seconds: int = 30
    agent_ring_seconds: int = 20
    machine_detection: str = "Enable"
    max_429_tries: int = 5
    backoff_seconds: float = 1.0
    whisper: bool = True  # CALLBACK_WHISPER: the agent hears "Callback for <name>: <topic>" as their leg joins
    whisper_tries: int = 5  # the announcement is refused until the agent's participant is in the room: asked again
    whisper_retry_seconds: float = 0.3

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DiallerSettings:
        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be above 0")
            return value
        detection = env.get("CALLBACK_MACHINE_DETECTION", "Enable").strip()
        if detection not in ("", "Enable", "DetectMessageEnd"):
            raise ValueError("CALLBACK_MACHINE_DETECTION must be Enable, DetectMessageEnd or empty")
        return cls(calls_per_second=number("CALLBACK_CPS", 1.0), ring_seconds=int(number("CALLBACK_RING_SECONDS", 30)),
                   machine_detection=detection,
                   whisper=env.get("CALLBACK_WHISPER", "1").strip().lower() not in ("0", "false", "no", "off"))


def parse_thread(key: str) -> tuple[int, int] | None:
    m = _THREAD.fullmatch(key or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass
class _Attempt:
    room: str
    agent_leg: str | None = None
    customer_sid: str | None = None
    consult_leg: str | None = None  # a consulted colleague's leg (a warm transfer under way)
    former_legs: set[str] = field(default_factory=set)  # agents' legs that left after a completed warm transfer


class CallbackDialler:
    """The ``callback`` channel's adapter (``CallControl``): dials, bridges, holds, mutes and hangs up.

    :param voice: the phone's adapter (its REST client, its conference SIDs and participant updates).
    :param lookup: the customer's CallSid of attempt ``(callback id, n)`` from SQL, for a process that did not dial it.
    """

    def __init__(self, config: TwilioConfig, voice: VoiceAdapter, settings: DiallerSettings | None = None, *,
                 bucket: CallsPerSecond | None = None, lookup: Callable[[int, int], Awaitable[str | None]] | None = None) -> None:
        self.config, self.voice, self.client = config, voice, voice.client
        self.settings = settings or DiallerSettings()
        self.bucket = bucket or CallsPerSecond(self.settings.calls_per_second)
        self.lookup = lookup
        self._attempts: OrderedDict[str, _Attempt] = OrderedDict()
        self.dialled = 0

    def _remember(self, key: str, attempt: _Attempt) -> None:
        self._attempts[key] = attempt
        while len(self._attempts) > 10_000:
            self._attempts.popitem(last=False)

    async def deliver(self, message: Any) -> DeliveryReport:
        """Written messages are not spoken on a callback (the agent talks)."""
        return DeliveryReport("failed", error_code="not_spoken", error_message="The customer is on the phone: written messages are not read to them.")

    async def dial(self, *, to: str, from_: str, url: str, status_callback: str, voicemail: bool = False) -> VoiceResult:
        """Calls create through the calls-per-second bucket; a 429 backs the bucket off and tries again (bounded).
        ``voicemail``: a message will be left on a machine, so detection waits for the greeting's end (the beep):
        ``MachineDetection=DetectMessageEnd``."""
        result = VoiceResult(False, words="not tried")
        detection = "DetectMessageEnd" if voicemail else (self.settings.machine_detection or None)
        for attempt in range(1, self.settings.max_429_tries + 1):
            await self.bucket.acquire()
            result = await self.client.create_call(
                to=to, from_=from_, url=url, status_callback=status_callback, timeout=self.settings.ring_seconds,
                machine_detection=detection, tries=1,
            )
            if result.http_status == 429 or result.code == "20429":
                self.bucket.back_off(self.settings.backoff_seconds * 2 ** (attempt - 1))
                continue
            if result.ok:
                self.dialled += 1
            return result
        return result

    async def act(self, action: CallAction) -> DeliveryReport:
        key = action.thread_key
        ids = parse_thread(key)
        if ids is None:
            return DeliveryReport("failed", error_code="no_call", error_message="This conversation is no callback.")
        callback_id, n = ids
        room = room_name(action.conversation_id)
        if action.kind == "connect_agent" and not action.leg:
            return await self._connect(action, callback_id, n, room)
        if action.kind == "dial_customer":
            return await self._dial_first(action, callback_id, n, room)
        attempt = self._attempts.get(key) or _Attempt(room)
        if attempt.customer_sid is None and self.lookup is not None:
            attempt.customer_sid = await self.lookup(callback_id, n)
        if action.kind == "connect_agent":  # the customer is on the line already (a transfer): bridge, no new dial
            return await self._rebridge(action, attempt, key, room)
        if action.kind in ("consult", "complete_transfer", "cancel_consult"):  # warm transfer: the phone's steps
            return await self._warm(action, attempt, key, callback_id, n, room)
        if action.kind == "requeue":  # the agent's leg is gone: the customer holds (music) until the next agent
            if attempt.customer_sid is None:
                return DeliveryReport("failed", error_code="no_call", error_message="The customer's call is not known.")
            held = await self.client.update_call(attempt.customer_sid, twiml=self.hold_twiml())
            if held.ok and attempt.agent_leg:  # the agent who passed the customer on leaves the room
                await self.client.update_call(attempt.agent_leg, status="completed")
            attempt.agent_leg = None
            return held.report()
        if action.kind == "hang_up":
            if attempt.customer_sid is None:
                return DeliveryReport("failed", error_code="no_call", error_message="The customer's call is not known.")
            result = await self.client.update_call(attempt.customer_sid, status="completed")
            return DeliveryReport("sent") if result.ok or result.gone else result.report()
        if action.kind in ("hold", "unhold"):
            if attempt.customer_sid is None:
                return DeliveryReport("failed", error_code="no_call", error_message="The customer's call is not known.")
            hold = action.kind == "hold"
            return (await self.voice._update_participant(room, attempt.customer_sid, hold=hold,
                                                          hold_url=(self.voice.music_url or None) if hold else None)).report()
        if action.kind in ("mute", "unmute"):
            leg = attempt.agent_leg or (agent_identity(action.agent_id) if action.agent_id is not None else None)
            if leg is None:
                return DeliveryReport("failed", error_code="no_agent_leg", error_message="Your phone is not connected to this call.")
            return (await self.voice._update_participant(room, leg, muted=action.kind == "mute")).report()
        return DeliveryReport("failed", error_code="unsupported", error_message=f"A callback cannot do {action.kind!r}.")

    async def _warm(self, action: CallAction, attempt: _Attempt, key: str, callback_id: int, n: int, room: str) -> DeliveryReport:
        """A warm transfer of a connected callback: the phone's own steps on the room (``VoiceAdapter.consult_in_room``
        and the rest), with the customer's CallSid of the attempt as the held participant; the colleague's leg reports
        to this channel's status webhook (``leg=consult``), so the core moves the consultation of this conversation."""
        if attempt.customer_sid is None:
            return DeliveryReport("failed", error_code="no_call", error_message="The customer's call is not known.")
        target = _agent_of(action.target)
        agent_leg = attempt.agent_leg or (agent_identity(action.agent_id) if action.agent_id is not None else None)
        if action.kind == "consult":
            if target is None or agent_leg is None:
                return DeliveryReport("failed", error_code="bad_target", error_message="Consult whom? (agent:<id>)")
            report = await self.voice.consult_in_room(
                room, attempt.customer_sid, agent_leg, target, target_phone=action.target_phone,
                caller_id=action.our_address or (self.config.numbers[0].e164 if self.config.numbers else ""),
                status_callback=self.voice.url(STATUS_PATH, cb=callback_id, n=n, leg="consult", conv=action.conversation_id))
            if report.status != "failed":
                attempt.consult_leg = report.provider_id
                self._remember(key, attempt)
            return report
        colleague = action.leg or attempt.consult_leg or (agent_identity(target) if target is not None else None)
        if action.kind == "complete_transfer":
            if colleague is None or action.agent_id is None:
                return DeliveryReport("failed", error_code="bad_target", error_message="Transfer to whom? (agent:<id>)")
            report = await self.voice.complete_in_room(room, attempt.customer_sid, colleague, agent_leg)
            if report.status != "failed":
                if attempt.agent_leg:
                    attempt.former_legs.add(attempt.agent_leg)
                attempt.agent_leg = colleague if _CALL_SID.fullmatch(colleague) else None
                attempt.consult_leg = None
                self._remember(key, attempt)
            return report
        report = await self.voice.cancel_consult_in_room(room, attempt.customer_sid, colleague, agent_leg)
        attempt.consult_leg = None
        self._remember(key, attempt)
        return report

    def former_leg(self, key: str, leg: str) -> bool:
        """Whether ``leg`` is an agent's leg that left this attempt's call after a warm transfer (its news is nobody's)."""
        attempt = self._attempts.get(key)
        return attempt is not None and leg in attempt.former_legs

    async def _connect(self, action: CallAction, callback_id: int, n: int, room: str) -> DeliveryReport:
        """Agent first: the agent's softphone rings into the room, and the customer is dialled."""
        if action.agent_id is None or not action.customer_address:
            return DeliveryReport("failed", error_code="no_agent", error_message="No agent or no number to connect.")
        caller_id = action.our_address or (self.config.numbers[0].e164 if self.config.numbers else "")
        identity = agent_identity(action.agent_id)
        leg = await self.client.add_participant(
            room, from_=caller_id, to=agent_destination(identity, action.agent_phone), label=identity, timeout=self.settings.agent_ring_seconds,
            status_callback=self.voice.url(STATUS_PATH, cb=callback_id, n=n, leg="agent", conv=action.conversation_id),
            end_conference_on_exit=True,
        )
        if not leg.ok:
            return DeliveryReport("failed", error_code=leg.code or "agent_leg", error_message=f"Your phone could not be rung: {leg.words}")
        customer = await self.dial(
            to=action.customer_address, from_=caller_id,
            url=self.voice.url(ANSWER_PATH, cb=callback_id, n=n, conv=action.conversation_id, **_vm(action)),
            status_callback=self.voice.url(STATUS_PATH, cb=callback_id, n=n, leg="customer", **_vm(action)),
            voicemail=action.voicemail,
        )
        if not customer.ok:
            if leg.sid:
                await self.client.update_call(leg.sid, status="completed")  # the agent's phone stops ringing
            return DeliveryReport("failed", error_code=customer.code or "dial", error_message=f"The customer could not be called: {customer.words}")
        self._remember(action.thread_key, _Attempt(room, leg.sid, customer.sid))
        return DeliveryReport("sent", provider_id=customer.sid)

    async def _dial_first(self, action: CallAction, callback_id: int, n: int, room: str) -> DeliveryReport:
        """Customer first: only the customer is dialled; once a person answers they wait in the room (the answer
        webhook's ``first=1``) and the core offers the contact to an agent, whose accept rings them in (as after a
        transfer: :meth:`_rebridge`)."""
        if not action.customer_address:
            return DeliveryReport("failed", error_code="no_number", error_message="No number to call back.")
        caller_id = action.our_address or (self.config.numbers[0].e164 if self.config.numbers else "")
        customer = await self.dial(
            to=action.customer_address, from_=caller_id,
            url=self.voice.url(ANSWER_PATH, cb=callback_id, n=n, conv=action.conversation_id, first=1, **_vm(action)),
            status_callback=self.voice.url(STATUS_PATH, cb=callback_id, n=n, leg="customer", **_vm(action)),
            voicemail=action.voicemail,
        )
        if not customer.ok:
            return DeliveryReport("failed", error_code=customer.code or "dial", error_message=f"The customer could not be called: {customer.words}")
        self._remember(action.thread_key, _Attempt(room, None, customer.sid))
        return DeliveryReport("sent", provider_id=customer.sid)

    async def _rebridge(self, action: CallAction, attempt: _Attempt, key: str, room: str) -> DeliveryReport:
        """A connected callback's next agent (after a transfer): the customer back into the room, the agent rung in."""
        if action.agent_id is None or attempt.customer_sid is None:
            return DeliveryReport("failed", error_code="no_call", error_message="The customer's call is not known.")
        moved = await self.client.update_call(attempt.customer_sid, twiml=self.conference_twiml(room, greet=False))
        if not moved.ok:
            return moved.report()
        ids = parse_thread(key)
        assert ids is not None
        caller_id = action.our_address or (self.config.numbers[0].e164 if self.config.numbers else "")
        identity = agent_identity(action.agent_id)
        leg = await self.client.add_participant(
            room, from_=caller_id, to=agent_destination(identity, action.agent_phone), label=identity, timeout=self.settings.agent_ring_seconds,
            status_callback=self.voice.url(STATUS_PATH, cb=ids[0], n=ids[1], leg="agent", conv=action.conversation_id),
            end_conference_on_exit=True,
        )
        if not leg.ok:
            await self.client.update_call(attempt.customer_sid, twiml=self.hold_twiml())
            return DeliveryReport("failed", error_code=leg.code or "agent_leg", error_message=f"Your phone could not be rung: {leg.words}")
        attempt.agent_leg = leg.sid
        self._remember(key, attempt)
        return DeliveryReport("sent", provider_id=leg.sid)

    async def whisper(self, callback_id: int, n: int, room: str, agent_leg: str) -> VoiceResult:
        """The agent alone hears who and what the callback is, as their leg joins the room (before the customer is
        bridged): Participants update of the agent's participant with ``AnnounceUrl`` (Twilio's announcement to one
        participant; Participants create takes none). Asked again briefly while the participant is not in the room."""
        url = self.voice.url(WHISPER_PATH, cb=callback_id, n=n)
        result = VoiceResult(False, words="not tried")
        for attempt in range(self.settings.whisper_tries):
            if attempt:
                await asyncio.sleep(self.settings.whisper_retry_seconds * attempt)
            # the agent waits alone while the customer's phone rings: the room is made but not started ("init")
            found = await self.client.find_conference(room, status="init")
            if not found.ok or not found.sid:
                found = await self.client.find_conference(room)
            if not found.ok or not found.sid:
                result = found  # not made yet (the leg joins a moment after answering): asked again
                continue
            result = await self.client.update_participant(found.sid, agent_leg, announce_url=url)
            if result.ok or result.gone:  # said, or the agent's leg has left already: nothing to whisper to
                return result
        log.info("the agent's whisper was not played", extra={"callback_id": callback_id, "reason": result.words})
        return result

    def whisper_twiml(self, text: str) -> str:
        response = VoiceResponse()
        if text:
            response.say(text[:300], voice=self.voice.settings.voice, language=self.voice.settings.language)
        return str(response)

    def hold_twiml(self) -> str:
        response = VoiceResponse()
        response.say(HOLD_TEXT, voice=self.voice.settings.voice, language=self.voice.settings.language)
        if self.voice.music_url:
            response.play(self.voice.music_url, loop=0)
        else:
            response.pause(length=600)
        return str(response)

    async def end_agent_leg(self, key: str) -> None:
        """The customer was not reached: the agent's phone leaves the room (it ends with it)."""
        attempt = self._attempts.get(key)
        if attempt is not None and attempt.agent_leg:
            await self.client.update_call(attempt.agent_leg, status="completed")

    async def end_customer_call(self, key: str, callback_id: int, n: int) -> None:
        """The agent's leg failed before the customer answered: the customer's call is cancelled."""
        attempt = self._attempts.get(key)
        sid = attempt.customer_sid if attempt is not None else (await self.lookup(callback_id, n) if self.lookup else None)
        if sid:
            await self.client.update_call(sid, status="canceled")

    def conference_twiml(self, room: str, *, greet: bool = True, first: bool = False) -> str:
        """The customer into the room: "connecting you" (agent first: the agent is there or ringing), or "please hold:
        an agent will be with you" (customer first: they wait with music until an agent accepts), or nothing (back
        from hold)."""
        response = VoiceResponse()
        if greet:
            response.say(WAIT_FOR_AGENT_TEXT if first else CONNECTING_TEXT, voice=self.voice.settings.voice,
                         language=self.voice.settings.language)
        dial = response.dial()
        dial.conference(room, start_conference_on_enter=False, end_conference_on_exit=True, beep=False,
                        participant_label=CUSTOMER_LABEL, wait_url=self.voice.music_url or None,
                        wait_method="GET" if self.voice.music_url else None)
        return str(response)


def _vm(action: CallAction) -> dict[str, int]:
    """The webhooks' ``vm=1`` when a voicemail is to be left on a machine (any process answering them knows)."""
    return {"vm": 1} if action.voicemail else {}


def _ids(request: web.Request) -> tuple[int, int]:
    cb, n = request.query.get("cb", ""), request.query.get("n", "")
    if not (cb.isdigit() and n.isdigit() and len(cb) <= 18 and len(n) <= 3):
        raise BadWebhook("cb and n must be the callback's id and attempt number")
    return int(cb), int(n)


class _CallbackWebhooks:
    def __init__(self, config: TwilioConfig, hub: Callable[[], Any], dialler: CallbackDialler, receipts: WebhookReceipts) -> None:
        self.config, self.hub, self.dialler, self.receipts = config, hub, dialler, receipts
        self._rank: OrderedDict[str, int] = OrderedDict()
        self._tasks: set[asyncio.Future[Any]] = set()

    async def _form(self, request: web.Request) -> Any:
        form = await read_form(request, MAX_FORM_BYTES)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not is_valid_signature(self.config.auth_token, self.config.public_base_url, request.raw_path, form, signature):
            log.warning("twilio callback webhook refused: bad signature", extra={"path": request.path})
            raise web.HTTPForbidden(text="missing or invalid X-Twilio-Signature")
        return form

    def _checked(self, form: Mapping[str, str]) -> tuple[str, str, str, str]:
        sid = _field(form, "CallSid")
        if not _CALL_SID.fullmatch(sid):
            raise BadWebhook("CallSid is missing or not a Twilio call SID")
        if _field(form, "AccountSid") != self.config.account_sid:
            raise BadWebhook("AccountSid is not this hub's Twilio account")
        status = _field(form, "CallStatus").lower()
        answered_by = _field(form, "AnsweredBy").lower()
        if answered_by and answered_by not in _ANSWERED_BY:
            raise BadWebhook(f"AnsweredBy {answered_by[:30]!r} is not one of Twilio's values")
        sequence = _field(form, "SequenceNumber")
        if sequence and not sequence.isdigit():
            raise BadWebhook("SequenceNumber is not a number")
        return sid, status, answered_by, sequence

    async def answer(self, request: web.Request) -> web.Response:
        """The customer's phone answered (after answering machine detection): a person joins the room; a machine
        is hung up on (the attempt counts as not reached)."""
        try:
            form = await self._form(request)
            callback_id, n = _ids(request)
            conv = request.query.get("conv", "")
            if not conv.isdigit() or len(conv) > 18:
                raise BadWebhook("conv must be the conversation's id")
            sid, _, answered_by, _ = self._checked(form)
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        response = VoiceResponse()
        machine = answered_by in _MACHINE
        first = request.query.get("first") == "1"
        voicemail = ""
        if machine and request.query.get("vm") == "1" and answered_by != "fax":  # after the beep (DetectMessageEnd)
            try:
                voicemail = await self.hub().callback_voicemail(callback_id)
            except Exception:  # noqa: BLE001 - no message rather than none of the rest
                log.exception("callback voicemail not found", extra={"callback_id": callback_id})
        try:
            if await self.receipts.first_time(PROVIDER, ANSWER_KIND, sid, dict(form)):
                detail: dict[str, Any] = {"call_sid": sid}
                if voicemail:
                    detail["voicemail_left"] = True
                await self.hub().callback_attempt_news(callback_id, n, "in-progress", answered_by or None, detail)
        except Exception:  # noqa: BLE001 - the customer must not hear silence: the status callbacks catch up
            log.exception("callback answer not recorded", extra={"callback_id": callback_id})
        if not machine:
            return web.Response(text=self.dialler.conference_twiml(room_name(int(conv)), first=first), content_type="text/xml")
        if voicemail:
            response.say(voicemail[:500], voice=self.dialler.voice.settings.voice, language=self.dialler.voice.settings.language)
        response.hangup()
        await self._quietly(self.dialler.end_agent_leg(f"cb-{callback_id}-{n}"))
        return web.Response(text=str(response), content_type="text/xml")

    async def whisper(self, request: web.Request) -> web.Response:
        """The agent's whisper (the ``AnnounceUrl`` of their participant): "Callback for <name>: <topic>", for them
        alone. An empty ``<Response/>`` (nothing said) when the hub cannot say it now: the call goes on."""
        try:
            form = await self._form(request)
            callback_id, _ = _ids(request)
            if _field(form, "AccountSid") != self.config.account_sid:  # the signature is the real check
                raise BadWebhook("AccountSid is not this hub's Twilio account")
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        try:
            text = await self.hub().callback_whisper(callback_id)
        except Exception:  # noqa: BLE001 - a whisper is a courtesy: never an error tone in the agent's ear
            log.exception("callback whisper not said", extra={"callback_id": callback_id})
            text = ""
        return web.Response(text=self.dialler.whisper_twiml(text), content_type="text/xml")

    async def _quietly(self, coro: Awaitable[Any]) -> None:
        try:
            await coro
        except Exception:  # noqa: BLE001
            log.warning("callback call control failed", exc_info=True)

    def _background(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel and await the whispers still being asked (the app's shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _room(self, request: web.Request, thread: str) -> str | None:
        conv = request.query.get("conv", "")
        if conv.isdigit() and len(conv) <= 18:
            return room_name(int(conv))
        known = self.dialler._attempts.get(thread)
        return known.room if known is not None else None

    def _forward(self, sid: str, status: str) -> bool:
        rank = _RANK[status]
        seen = self._rank.get(sid)
        if seen is not None and (rank < seen or rank == seen == 3):
            return False
        self._rank[sid] = rank
        while len(self._rank) > 20_000:
            self._rank.popitem(last=False)
        return True

    async def status(self, request: web.Request) -> web.Response:
        try:
            form = await self._form(request)
            callback_id, n = _ids(request)
            leg = request.query.get("leg", "")
            if leg not in ("customer", "agent", "consult"):
                raise BadWebhook("leg must be customer, agent or consult")
            sid, status, answered_by, sequence = self._checked(form)
            vm = request.query.get("vm") == "1"
            if status not in _RANK:
                raise BadWebhook(f"CallStatus {status[:20]!r} is not a Twilio call status")
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        key = f"{sid}:{status}:{sequence}"
        try:
            if not await self.receipts.first_time(PROVIDER, STATUS_KIND, key, dict(form)):
                return web.Response(status=200)
        except Exception:  # noqa: BLE001
            log.exception("callback status receipt not taken")
            return web.Response(status=503, text="the hub could not record the status now")
        if not self._forward(sid, status):
            return web.Response(status=200)
        thread = f"cb-{callback_id}-{n}"
        try:
            hub = self.hub()
            if leg == "consult":  # a consulted colleague's leg (warm transfer): the core moves the consultation on
                await hub.consult_leg(CHANNEL, thread, sid, status)
            elif leg == "agent" and self.dialler.former_leg(thread, sid):
                pass  # the first agent's leg after a warm transfer: the call is the colleague's now
            elif leg == "agent":
                await hub.callback_leg_news(callback_id, n, status, {"call_sid": sid})
                if status == "in-progress" and self.dialler.settings.whisper:
                    room = self._room(request, thread)
                    if room is not None:  # in the background: Twilio's status callback is answered at once
                        self._background(self._quietly(self.dialler.whisper(callback_id, n, room, sid)))
                if status in ("busy", "no-answer", "failed", "canceled"):
                    await self._quietly(self.dialler.end_customer_call(thread, callback_id, n))
            elif (status in ("in-progress", "answered") and (self.dialler.settings.machine_detection or vm)
                  and (not answered_by or (vm and answered_by in _MACHINE))):
                pass  # who answered is the answer webhook's to say (AnsweredBy): a machine must not count as reached,
                # and a voicemail left is the answer webhook's to tell
            else:
                outcome = await hub.callback_attempt_news(callback_id, n, status, answered_by or None, {"call_sid": sid})
                if outcome is not None and outcome not in ("connected",):
                    await self._quietly(self.dialler.end_agent_leg(thread))
        except Exception:  # noqa: BLE001 - Twilio tries again; the receipt is forgotten
            log.exception("callback status not handled", extra={"callback_id": callback_id})
            self._rank.pop(sid, None)
            try:
                await self.receipts.forget(PROVIDER, STATUS_KIND, key)
            except Exception:  # noqa: BLE001
                pass
            return web.Response(status=503, text="the hub could not handle the status now")
        return web.Response(status=200)


def add_callback_routes(app: web.Application, config: TwilioConfig, hub: Callable[[], Any], dialler: CallbackDialler, *,
                        receipts: WebhookReceipts) -> None:
    """Mount the callback's answer and status webhooks."""
    hooks = _CallbackWebhooks(config, hub, dialler, receipts)
    app.router.add_post(ANSWER_PATH, hooks.answer)
    app.router.add_post(STATUS_PATH, hooks.status)
    app.router.add_post(WHISPER_PATH, hooks.whisper)

    async def _close(_: web.Application) -> None:
        await hooks.close()

    app.on_shutdown.append(_close)
