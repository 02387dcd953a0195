"""The phone through Twilio Voice: the webhooks a call makes, the TwiML that answers them, and the adapter the
core asks to speak to the caller and to bridge, hold, mute or hang up their call (docs/subsystems/phone.md).

Webhooks (``add_voice_routes``), each signed (``X-Twilio-Signature`` against ``PUBLIC_BASE_URL``: 403 without),
parsed (400 with the reason for a form Twilio would not send) and answered with TwiML built by the ``twilio``
package's ``VoiceResponse``:

* ``POST /webhooks/twilio/voice``: a call rings. The core opens the conversation (an opening note, no bot
  turn), the caller is recognised by number (their name, and their latest open order's status from SQL), and
  the IVR's ``<Gather input="dtmf speech">`` asks what they want (:mod:`integrations.twilio.ivr`).
* ``POST /webhooks/twilio/voice/gather?turn=N&mode=...&miss=K``: what the caller pressed or said. One bot turn
  (``receive_inbound`` with the CallSid as the conversation's thread, then ``settled``: the bot's replies have
  reached :meth:`VoiceAdapter.deliver`), spoken with ``<Say>`` in the next ``<Gather>``; "0" or "agent" at any
  time, and a third silence, ask for a person (``request_agent``) and send the caller to the wait loop.
* ``POST /webhooks/twilio/voice/wait``: the queue's wait loop: the caller's place and estimated wait (read
  again every loop), music, a callback offer after a while, ``<Redirect>`` back.
* ``POST /webhooks/twilio/voice/status``: call status callbacks (the caller's call, and the agent's leg with
  ``?leg=agent``), once per ``(CallSid, CallStatus, SequenceNumber)``, forward only: a final status ends the
  contact (``contact_ended``), the others go to the agent (``call_status``).
* ``POST /webhooks/twilio/voice/conference``: the conference's events (join, leave, hold, mute) for the agent.
* ``POST /webhooks/twilio/voice/fallback``: the number's fallback URL: an apology, and a callback request.
* ``GET /webhooks/twilio/voice/hold-music.wav``: the hub's own hold music.

Nothing slow sits on the answer's path: the work of a webhook runs as a task, and when it is not done within
``answer_deadline`` (3 s: a slow bot, a slow database) the caller hears a short holding message and a
``<Redirect>`` that joins the same task; never silence, never Twilio's error message. A failure inside is
answered with an apology in TwiML, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict
from twilio.twiml.voice_response import Gather, VoiceResponse  # type: ignore[import-untyped,unused-ignore]

from contact_center.domain.calls import SUPERVISE_MODES, supervise_leg
from contact_center.ports import CallAction, DeliveryReport, InboundEvent, OutboundMessage
from integrations.twilio import ivr
from integrations.twilio.config import TwilioConfig
from integrations.twilio.ivr import Heard, Meaning, Mode
from integrations.twilio.messaging import BadWebhook, read_form
from integrations.twilio.ports import WebhookReceipts
from integrations.twilio.signature import SIGNATURE_HEADER, is_valid_signature
from integrations.twilio.voice_rest import VoiceRestClient, VoiceResult

log = logging.getLogger(__name__)

CHANNEL = "phone"
PROVIDER = "twilio"
VOICE_PATH = "/webhooks/twilio/voice"
GATHER_PATH = VOICE_PATH + "/gather"
WAIT_PATH = VOICE_PATH + "/wait"
STATUS_PATH = VOICE_PATH + "/status"
CONFERENCE_PATH = VOICE_PATH + "/conference"
FALLBACK_PATH = VOICE_PATH + "/fallback"
RECORDING_PATH = VOICE_PATH + "/recording"
HOLD_MUSIC_PATH = VOICE_PATH + "/hold-music.wav"
HOLD_MUSIC_FILE = Path(__file__).resolve().parent / "static" / "hold-music.wav"
HOLD_MUSIC_SECONDS = 8  # the length of the file above (8 kHz, 8-bit mono PCM: under 64 KB)
STATUS_KIND = "call_status"  # receipts of call status callbacks, keyed "CallSid:CallStatus:SequenceNumber"
CONFERENCE_KIND = "conference"  # receipts of conference events
CALLBACK_KIND = "voice_callback"  # a caller asked to be called back (key: CallSid): their hang-up is no abandon
RECORDING_KIND = "recording"  # receipts of recording status callbacks, keyed "RecordingSid:RecordingStatus"
RECORD_FROM_START = "record-from-start"
RECORDING_EVENTS = ("in-progress", "completed", "absent")
CURRENT_RECORDING = "Twilio.CURRENT"  # the Recordings API's name for a conference's active recording
_RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
_RECORDING_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_RANK = {"queued": 0, "initiated": 0, "ringing": 1, "in-progress": 2, "answered": 2, **{s: 3 for s in FINAL_STATUSES}}
CUSTOMER_LABEL = "customer"  # the caller's participant label in the conference
SUPERVISOR_PREFIX = "supervisor_"  # a supervisor's participant label: supervisor_<agent id>
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_CONFERENCE_SID = re.compile(r"CF[0-9a-fA-F]{32}")
_ROOM = re.compile(r"conv-([0-9]{1,18})")
MAX_FORM_BYTES = 64 * 1024

HIDDEN_NUMBER_TEXT = (
    "Sorry, we cannot take calls from a hidden number. Please call again without hiding your number, "
    "or write to us. Goodbye."
)
FALLBACK_TEXT = (
    "Sorry, we are having technical trouble and cannot take your call right now. "
    "We have noted your number and will call you back as soon as we can. Goodbye."
)
CALLBACK_OFFER_TEXT = "To be called back instead, press 1. You keep your place in the queue."
CALLBACK_TAKEN_TEXT = "Thank you. We will call you back at this number, and you keep your place in the queue. Goodbye."
GOODBYE_TEXT = "Thank you for calling. Goodbye."
CONNECTING_TEXT = "Please hold: you are being connected."
CONSENT_TEXT = (
    "This call will be recorded for quality and training. If you do not want it recorded, please hang up and write "
    "to us instead."
)
ANYTHING_ELSE_TEXT = "Is there anything else I can help you with?"
NOT_SPOKEN_WORDS = "The caller is talking with an agent: written messages are not read to them."
OPENING_NOTE = "Incoming call from "  # the call's opening note (a system message): the core hands it over too


@dataclass(frozen=True)
class VoiceSettings:
    """What the voice adapter needs beside the Twilio account (``TWILIO_*``); the numbers are ``TWILIO_NUMBERS``.

    :param answer_deadline: seconds a webhook may work before the caller hears a holding message.
    :param settle_timeout: seconds one ``settled`` waits for the bot's turn (it is asked again after a hold).
    :param max_holds: holding messages in a row for one step before the caller is passed to a person.
    :param wait_loop_seconds: music between two announcements of the caller's place.
    :param hold_music_url: the hold music (an MP3/WAV or TwiML URL); None: the hub's own file; "": silence.
    :param callback_offer_after: seconds of waiting after which a callback is offered (None: never).
    :param gather_timeout: seconds of silence that end a ``<Gather>``.
    :param say_limit: the longest text in one ``<Say>``.
    :param voice: ``<Say voice>`` (e.g. ``Polly.Joanna``); None: Twilio's default.
    :param agent_ring_seconds: how long the agent's leg rings.
    """

    answer_deadline: float = 3.0
    settle_timeout: float = 3.0
    max_holds: int = 3
    wait_loop_seconds: int = 30
    hold_music_url: str | None = None
    callback_offer_after: float | None = 120.0
    gather_timeout: int = 5
    say_limit: int = ivr.SAY_LIMIT
    voice: str | None = None
    language: str = "en-US"
    agent_ring_seconds: int = 30
    fallback_tries: int = 6
    fallback_retry_first: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VoiceSettings:
        """``VOICE_ANSWER_DEADLINE``, ``VOICE_HOLD_MUSIC_URL``, ``VOICE_CALLBACK_OFFER_AFTER`` (0: never),
        ``VOICE_SAY_VOICE``, ``VOICE_LANGUAGE``, ``VOICE_AGENT_RING_SECONDS`` (raises ValueError naming the variable)."""

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name}: {raw!r} is not a number of seconds") from None
            if value < 0:
                raise ValueError(f"{name}: {raw!r} must not be negative")
            return value

        offer = number("VOICE_CALLBACK_OFFER_AFTER", 120.0)
        music = env.get("VOICE_HOLD_MUSIC_URL")
        return cls(
            answer_deadline=max(0.5, number("VOICE_ANSWER_DEADLINE", 3.0)),
            settle_timeout=max(0.5, number("VOICE_ANSWER_DEADLINE", 3.0)),
            hold_music_url=music.strip() if music is not None else None,
            callback_offer_after=offer or None,
            voice=env.get("VOICE_SAY_VOICE", "").strip() or None,
            language=env.get("VOICE_LANGUAGE", "").strip() or "en-US",
            agent_ring_seconds=int(number("VOICE_AGENT_RING_SECONDS", 30)),
        )


# --- the adapter: what the core asks of a call ------------------------------------------------------------


@dataclass
class _Said:
    text: str
    provider_id: str


@dataclass
class _Call:
    """What this process keeps of one live call (the CallSid's): text to speak, the last choices, the agent."""

    conversation_id: int | None = None
    said: list[_Said] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    last_spoken: list[str] = field(default_factory=list)
    agent_id: int | None = None
    agent_leg: str | None = None
    touched: float = 0.0
    consult_leg: str | None = None  # the consulted colleague's leg (a warm transfer under way)
    former_legs: set[str] = field(default_factory=set)  # agents' legs that left the call (a completed warm transfer)


@dataclass(frozen=True)
class Spoken:
    """What the caller hears next: the pieces for ``<Say>``, the choices offered, the messages' provider ids."""

    pieces: list[str]
    titles: list[str]
    provider_ids: list[str]


class VoiceAdapter:
    """The phone channel's adapter: :class:`~contact_center.ports.ChannelAdapter` and ``CallControl``.

    ``deliver`` keeps the core's text per call until the next TwiML answer speaks it; ``act`` bridges, holds,
    mutes and hangs up through Twilio's REST API. A refusal is a ``failed`` report in words, never an exception.
    """

    def __init__(
        self, config: TwilioConfig, client: VoiceRestClient, settings: VoiceSettings | None = None, *,
        clock: Callable[[], float] = time.monotonic, max_calls: int = 10_000, max_said: int = 20,
    ) -> None:
        self.config = config
        self.client = client
        self.settings = settings or VoiceSettings()
        self._clock = clock
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._max_calls = max_calls
        self._conferences: OrderedDict[str, str] = OrderedDict()  # friendly name (conv-<id>) -> its CF... SID
        self._max_said = max_said

    # --- URLs -----------------------------------------------------------------------------------------
    def url(self, path: str, **params: Any) -> str:
        """An absolute URL of the hub's (as Twilio reaches it: ``PUBLIC_BASE_URL``)."""
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"{self.config.public_base_url}{path}{'?' + query if query else ''}"

    @property
    def music_url(self) -> str:
        """The hold music; "" for none (silence)."""
        if self.settings.hold_music_url is not None:
            return self.settings.hold_music_url
        return self.url(HOLD_MUSIC_PATH)

    # --- per-call state -------------------------------------------------------------------------------
    def _state(self, call_sid: str) -> _Call:
        call = self._calls.get(call_sid)
        if call is None:
            call = self._calls[call_sid] = _Call()
            while len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)
        else:
            self._calls.move_to_end(call_sid)
        call.touched = self._clock()
        return call

    def forget(self, call_sid: str) -> None:
        """The call is over: drop what was kept for it."""
        self._calls.pop(call_sid, None)

    def take_spoken(self, call_sid: str) -> Spoken:
        """What the core said to the caller since the last answer, split for ``<Say>`` (and forgotten here)."""
        call = self._calls.get(call_sid)
        if call is None or not call.said:
            return Spoken([], [], [])
        said, call.said = call.said, []
        pieces: list[str] = []
        titles: list[str] = []
        for item in said:
            text, offered = ivr.spoken_choices(item.text)
            titles = offered or titles
            pieces.extend(ivr.split_for_say(text, self.settings.say_limit))
        call.titles = titles
        call.last_spoken = pieces
        return Spoken(pieces, titles, [s.provider_id for s in said])

    def choices(self, call_sid: str) -> list[str]:
        """The titles of the numbered choices the caller last heard (empty if none, or unknown here)."""
        call = self._calls.get(call_sid)
        return list(call.titles) if call is not None else []

    def last_spoken(self, call_sid: str) -> list[str]:
        """What the caller last heard from the bot (said again after a silence)."""
        call = self._calls.get(call_sid)
        return list(call.last_spoken) if call is not None else []

    def with_agent(self, call_sid: str) -> bool:
        """Whether this process bridged the call to an agent (and it was not put back in the queue since)."""
        call = self._calls.get(call_sid)
        return call is not None and call.agent_id is not None

    def note_agent_leg(self, call_sid: str, agent_leg: str) -> None:
        """The conference says which call is the agent's leg."""
        call = self._calls.get(call_sid)
        if call is not None:
            call.agent_leg = agent_leg

    def note_conference(self, room: str, conference_sid: str, *, ended: bool = False) -> None:
        """A conference status callback told the SID of the conference named ``room`` (or that it ended)."""
        if ended:
            if self._conferences.get(room) == conference_sid:
                del self._conferences[room]
            return
        self._conferences[room] = conference_sid
        self._conferences.move_to_end(room)
        while len(self._conferences) > self._max_calls:
            self._conferences.popitem(last=False)

    async def conference_sid(self, room: str, *, fresh: bool = False) -> VoiceResult:
        """The ``CF...`` SID of the live conference ``room``: from its status callbacks, else (or when ``fresh``)
        asked of Twilio (Conferences list by FriendlyName, in progress). Participants fetch/update/delete need it:
        Twilio takes a friendly name only to create a participant."""
        known = None if fresh else self._conferences.get(room)
        if known is not None:
            return VoiceResult(True, sid=known)
        found = await self.client.find_conference(room)
        if found.ok and found.sid:
            self.note_conference(room, found.sid)
        else:
            self._conferences.pop(room, None)
        return found

    async def _update_participant(self, room: str, leg: str, **changes: Any) -> VoiceResult:
        """Participants update of ``leg`` in the conference ``room`` by its SID (asked again once if the one kept
        here is stale: a requeued call's next bridge is a new conference of the same name)."""
        found = await self.conference_sid(room)
        if not found.ok or not found.sid:
            return found
        result = await self.client.update_participant(found.sid, leg, **changes)
        if result.gone and room in self._conferences:
            again = await self.conference_sid(room, fresh=True)
            if again.ok and again.sid and again.sid != found.sid:
                result = await self.client.update_participant(again.sid, leg, **changes)
        return result

    def who_is(self, call_sid: str, leg: str, label: str) -> str:
        """Which participant of the call's conference a leg is (not the caller): ``agent`` (the call's agent),
        ``colleague`` (a consulted or former agent) or ``supervisor``."""
        if label.startswith(SUPERVISOR_PREFIX):
            return "supervisor"
        call = self._calls.get(call_sid)
        if call is None:
            return "agent"
        if leg in call.former_legs or (call.consult_leg is not None and leg == call.consult_leg):
            return "colleague"
        if call.agent_id is not None and label and label != agent_identity(call.agent_id):
            return "colleague"
        return "agent"

    def caller_of_leg(self, agent_leg: str) -> str | None:
        """The caller's CallSid of an agent's leg this process rang (None if unknown here)."""
        return next((sid for sid, call in self._calls.items() if call.agent_leg == agent_leg), None)

    def caller_in_room(self, room: str) -> str | None:
        """The caller's CallSid bridged in the conference ``room`` by this process (None if unknown here)."""
        found = _ROOM.fullmatch(room)
        if found is None:
            return None
        wanted = int(found.group(1))
        return next((sid for sid, call in self._calls.items() if call.conversation_id == wanted and call.agent_id is not None), None)

    # --- ChannelAdapter ---------------------------------------------------------------------------------
    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        """Keep a bot, agent or system text for the caller: spoken at the next TwiML answer."""
        call_sid = message.thread_key or ""
        if not _CALL_SID.fullmatch(call_sid):
            return DeliveryReport("failed", error_code="no_call", error_message="This conversation has no phone call to speak on.")
        if message.sender_kind == "system" and message.text.startswith(OPENING_NOTE):
            return DeliveryReport("sent")  # the note the adapter itself wrote when the call rang: not for the caller
        call = self._state(call_sid)
        call.conversation_id = message.conversation_id
        if call.agent_id is not None:
            log.info("text for a caller who is with an agent is not spoken",
                     extra={"conversation_id": message.conversation_id, "seq": message.seq, "sender": message.sender_kind})
            return DeliveryReport("failed", error_code="not_spoken", error_message=NOT_SPOKEN_WORDS)
        if not message.text.strip():
            return DeliveryReport("failed", error_code="empty", error_message="There is nothing to say.")
        provider_id = f"{call_sid}:say:{message.seq}"
        call.said.append(_Said(message.text, provider_id))
        if len(call.said) > self._max_said:
            dropped = call.said.pop(0)
            log.warning("too much unspoken text for a call; the oldest is dropped", extra={"provider_id": dropped.provider_id})
        return DeliveryReport("sent", provider_id=provider_id)

    # --- CallControl ----------------------------------------------------------------------------------
    async def act(self, action: CallAction) -> DeliveryReport:
        """Do what the core asks to the call (``action.thread_key`` is the caller's CallSid)."""
        call_sid = action.thread_key
        if not _CALL_SID.fullmatch(call_sid or ""):
            return _failed("no_call", "This conversation has no phone call.")
        room = room_name(action.conversation_id)
        handler = {
            "connect_agent": self._connect_agent,
            "requeue": self._requeue,
            "hang_up": self._hang_up,
            "consult": self._consult,
            "complete_transfer": self._complete_transfer,
            "cancel_consult": self._cancel_consult,
            "supervise": self._supervise,
            "end_supervision": self._end_supervision,
            "pause_recording": self._recording_status,
            "resume_recording": self._recording_status,
        }.get(action.kind)
        if handler is not None:
            return await handler(action, room)
        if action.kind in ("hold", "unhold"):
            result = await self._update_participant(
                room, call_sid, hold=action.kind == "hold", hold_url=(self.music_url or None) if action.kind == "hold" else None,
            )
            return result.report()
        if action.kind in ("mute", "unmute"):
            leg = self._agent_leg(call_sid, action.agent_id)
            if leg is None:
                return _failed("no_agent_leg", "Your phone is not connected to this call.")
            return (await self._update_participant(room, leg, muted=action.kind == "mute")).report()
        if action.kind == "transfer":
            return _failed("unsupported", "A cold transfer goes through the transfer dialog; a warm one is consult, then complete.")
        return _failed("unsupported", f"The phone cannot do {action.kind!r}.")

    # --- warm transfer: the colleague rings into the same conference while the caller is held -----------
    #
    # Twilio's contact-centre guidance puts every agent call in a conference so that transfers, hold and
    # supervision are participant changes; a warm transfer keeps the caller's conference (conv-<id>) and adds the
    # colleague to it: no second conference to bridge, and the caller never moves. The caller is held with music
    # (Participants update Hold + HoldUrl); the first agent's leg gets EndConferenceOnExit=false, so that their
    # leaving does not end the call; the colleague is dialled in with EndConferenceOnExit=false (cancelling them
    # must not end it either) and gets true once the transfer is completed (they are then the call's agent).

    async def _consult(self, action: CallAction, room: str) -> DeliveryReport:
        target = _agent_of(action.target)
        if target is None or action.agent_id is None:
            return _failed("bad_target", "Consult whom? (agent:<id>)")
        call_sid = action.thread_key
        agent_leg = self._agent_leg(call_sid, action.agent_id)
        if agent_leg is None:
            return _failed("no_agent_leg", "Your phone is not connected to this call.")
        report = await self.consult_in_room(room, call_sid, agent_leg, target, target_phone=action.target_phone,
                                            caller_id=self._caller_id(action),
                                            status_callback=self.url(STATUS_PATH, leg="consult", call=call_sid))
        if report.status != "failed":
            self._state(call_sid).consult_leg = report.provider_id
        return report

    async def _complete_transfer(self, action: CallAction, room: str) -> DeliveryReport:
        target = _agent_of(action.target)
        if target is None or action.agent_id is None:
            return _failed("bad_target", "Transfer to whom? (agent:<id>)")
        call_sid = action.thread_key
        call = self._calls.get(call_sid)
        colleague = action.leg or (call.consult_leg if call is not None else None) or agent_identity(target)
        report = await self.complete_in_room(room, call_sid, colleague, self._agent_leg(call_sid, action.agent_id))
        if report.status == "failed":
            return report
        state = self._state(call_sid)
        if state.agent_leg:
            state.former_legs.add(state.agent_leg)
        state.conversation_id = action.conversation_id
        state.agent_id, state.consult_leg = target, None
        state.agent_leg = colleague if _CALL_SID.fullmatch(colleague) else None
        return report

    async def _cancel_consult(self, action: CallAction, room: str) -> DeliveryReport:
        target = _agent_of(action.target)
        call_sid = action.thread_key
        call = self._calls.get(call_sid)
        colleague = action.leg or (call.consult_leg if call is not None else None) or (agent_identity(target) if target is not None else None)
        report = await self.cancel_consult_in_room(room, call_sid, colleague, self._agent_leg(call_sid, action.agent_id))
        if call is not None:
            call.consult_leg = None
        return report

    # The warm transfer's steps on a conference, by its participants: shared by the phone (the caller's CallSid) and
    # the web callback's dialler (the customer's CallSid of the attempt), which keep their own per-call state.

    async def consult_in_room(self, room: str, customer_leg: str, agent_leg: str, target: int, *, target_phone: str,
                              caller_id: str, status_callback: str) -> DeliveryReport:
        """Hold ``customer_leg`` with music, keep ``agent_leg`` from ending the room, and ring agent ``target`` into
        ``room`` (``status_callback`` hears their leg: ``?leg=consult``). The report's ``provider_id`` is their leg;
        a failure undoes what was done."""
        held = await self._update_participant(room, customer_leg, hold=True, hold_url=self.music_url or None)
        if not held.ok:
            return held.report()
        kept = await self._update_participant(room, agent_leg, end_conference_on_exit=False)
        if not kept.ok:
            await self._update_participant(room, customer_leg, hold=False)
            return _failed(kept.code or "agent_leg", f"Your leg of the call could not be kept: {kept.words}")
        identity = agent_identity(target)
        leg = await self.client.add_participant(
            room, from_=caller_id, to=agent_destination(identity, target_phone), label=identity,
            timeout=self.settings.agent_ring_seconds, status_callback=status_callback, end_conference_on_exit=False,
        )
        if not leg.ok:
            await self._update_participant(room, agent_leg, end_conference_on_exit=True)
            await self._update_participant(room, customer_leg, hold=False)
            return _failed(leg.code or "consult_leg", f"Your colleague's phone could not be rung: {leg.words}")
        return DeliveryReport("sent", provider_id=leg.sid)

    async def complete_in_room(self, room: str, customer_leg: str, colleague: str, old_leg: str | None) -> DeliveryReport:
        """The colleague's leg now ends the room with it, the customer is taken off hold, the first agent's leg
        leaves. The report's ``provider_id`` is the colleague's leg."""
        owns = await self._update_participant(room, colleague, end_conference_on_exit=True)
        if not owns.ok:
            return _failed(owns.code or "consult_leg", f"Your colleague is no longer on the call: {owns.words}")
        back = await self._update_participant(room, customer_leg, hold=False)
        if not back.ok:
            return back.report()
        if old_leg is not None:
            gone = await self._remove_participant(room, old_leg)
            if not gone.ok and not gone.gone:
                log.warning("the first agent's leg could not be removed after a warm transfer", extra={"code": gone.code})
        return DeliveryReport("sent", provider_id=colleague)

    async def cancel_consult_in_room(self, room: str, customer_leg: str, colleague: str | None, agent_leg: str | None) -> DeliveryReport:
        """The colleague's leg goes (a ringing one is cancelled), the agent's leg ends the room again, the customer
        is taken off hold."""
        problems: list[str] = []
        if colleague is not None:
            gone = await self._remove_participant(room, colleague)
            if not gone.ok and not gone.gone:
                problems.append(gone.words or "the colleague's leg could not be removed")
        if agent_leg is not None:
            kept = await self._update_participant(room, agent_leg, end_conference_on_exit=True)
            if not kept.ok and not kept.gone:
                problems.append(kept.words or "the agent's leg could not be restored")
        back = await self._update_participant(room, customer_leg, hold=False)
        if not back.ok:
            return back.report()
        if problems:
            return _failed("consult_cleanup", "; ".join(problems))
        return DeliveryReport("sent")

    async def _recording_status(self, action: CallAction, room: str) -> DeliveryReport:
        """Pause the conference's recording while the caller types digits (``PauseBehavior=skip``: those seconds
        are left out of the file), or resume it. By its SID when the core knows it, else ``Twilio.CURRENT``."""
        pause = action.kind == "pause_recording"
        recording = action.leg if action.leg and _RECORDING_SID.fullmatch(action.leg) else CURRENT_RECORDING
        found = await self.conference_sid(room)
        if not found.ok or not found.sid:
            return _failed(found.code or "20404", "The call is no longer bridged: there is no recording to change.")
        changed = await self.client.update_recording(found.sid, recording, status="paused" if pause else "in-progress",
                                                     pause_behavior="skip" if pause else None)
        if changed.gone and room in self._conferences:
            again = await self.conference_sid(room, fresh=True)
            if again.ok and again.sid and again.sid != found.sid:
                changed = await self.client.update_recording(again.sid, recording, status="paused" if pause else "in-progress",
                                                             pause_behavior="skip" if pause else None)
        if changed.ok:
            return DeliveryReport("sent", provider_id=changed.sid)
        return _failed(changed.code or "recording", f"The recording could not be {'paused' if pause else 'resumed'}: {changed.words}")

    async def _remove_participant(self, room: str, leg: str) -> VoiceResult:
        found = await self.conference_sid(room)
        if not found.ok or not found.sid:
            return found
        return await self.client.remove_participant(found.sid, leg)

    def _caller_id(self, action: CallAction) -> str:
        return action.our_address or (self.config.numbers[0].e164 if self.config.numbers else "")

    # --- supervisors: listen (muted), whisper (coaching the agent's leg), barge (heard by all) -------------

    async def _agent_call_sid(self, room: str, conference_sid: str, call_sid: str, agent_id: int | None) -> str | None:
        """The agent's leg's CallSid (coaching names a CallSid, not a label): kept here, else asked of Twilio."""
        leg = self._agent_leg(call_sid, agent_id)
        if leg is not None and _CALL_SID.fullmatch(leg):
            return leg
        if agent_id is None:
            return None
        found = await self.client.fetch_participant(conference_sid, agent_identity(agent_id))
        return found.sid if found.ok and found.sid and _CALL_SID.fullmatch(found.sid) else None

    async def _supervise(self, action: CallAction, room: str) -> DeliveryReport:
        if action.agent_id is None or action.mode not in SUPERVISE_MODES:
            return _failed("bad_mode", "Listen, whisper or barge?")
        muted, coaching = supervise_leg(action.mode)
        live = await self.conference_sid(room)
        if not live.ok or not live.sid:
            return _failed(live.code or "20404", "The call is no longer bridged to an agent: there is nothing to join.")
        coach = None
        if coaching:
            coach = await self._agent_call_sid(room, live.sid, action.thread_key, _agent_of(action.target))
            if coach is None:
                return _failed("16028", "The agent's leg is not in the call: there is nobody to whisper to.")
        label = supervisor_label(action.agent_id)
        changed = await self.client.update_participant(live.sid, label, muted=muted, coaching=coaching, call_sid_to_coach=coach)
        if changed.ok:
            return DeliveryReport("sent", provider_id=changed.sid)
        if not changed.gone:
            return changed.report()
        leg = await self.client.add_participant(
            live.sid, from_=self._caller_id(action), to=agent_destination(agent_identity(action.agent_id), action.agent_phone), label=label,
            timeout=self.settings.agent_ring_seconds, status_callback=self.url(STATUS_PATH, leg="supervisor", call=action.thread_key),
            end_conference_on_exit=False, muted=muted, coaching=coaching or None, call_sid_to_coach=coach,
        )
        if not leg.ok:
            return _failed(leg.code or "supervisor_leg", f"Your phone could not be rung into the call: {leg.words}")
        return DeliveryReport("sent", provider_id=leg.sid)

    async def _end_supervision(self, action: CallAction, room: str) -> DeliveryReport:
        if action.agent_id is None:
            return _failed("no_agent", "Whose leg?")
        gone = await self._remove_participant(room, supervisor_label(action.agent_id))
        return DeliveryReport("sent") if gone.ok or gone.gone else gone.report()

    def former_leg(self, call_sid: str, leg: str) -> bool:
        """Whether ``leg`` was an agent's leg of the call that has since left it (a completed warm transfer)."""
        call = self._calls.get(call_sid)
        return call is not None and leg in call.former_legs

    def _agent_leg(self, call_sid: str, agent_id: int | None) -> str | None:
        """The agent's leg: its CallSid if this process knows it, else its participant label (Twilio takes either)."""
        call = self._calls.get(call_sid)
        if call is not None and call.agent_leg:
            return call.agent_leg
        return agent_identity(agent_id) if agent_id is not None else None

    def conference_twiml(self, call_sid: str, room: str, *, record: bool = False) -> str:
        """The caller's TwiML to join the conference (music until the agent's leg starts it; the wait loop after).
        ``record``: the consent notice first, and the conference recorded from its start (Twilio's way for a
        conference: ``record="record-from-start"`` on ``<Conference>``, with a recording status callback)."""
        response = VoiceResponse()
        if record:
            for piece in ivr.split_for_say(CONSENT_TEXT, self.settings.say_limit):
                response.say(piece, voice=self.settings.voice, language=self.settings.language)
        dial = response.dial()
        recording: dict[str, Any] = {}
        if record:
            recording = {"record": RECORD_FROM_START, "recording_status_callback": self.url(RECORDING_PATH, call=call_sid),
                         "recording_status_callback_event": " ".join(RECORDING_EVENTS), "recording_status_callback_method": "POST"}
        dial.conference(
            room, start_conference_on_enter=False, end_conference_on_exit=True, beep=False,
            wait_url=self.music_url or None, wait_method="GET" if self.music_url else None,
            status_callback=self.url(CONFERENCE_PATH, call=call_sid), status_callback_method="POST",
            status_callback_event="start end join leave mute hold", participant_label=CUSTOMER_LABEL, **recording,
        )
        response.redirect(self.url(WAIT_PATH, n=1), method="POST")  # the conference ended without the caller hanging up
        return str(response)

    async def _connect_agent(self, action: CallAction, room: str) -> DeliveryReport:
        """Move the caller into the conference ``conv-<id>``, then ring the agent's leg into it."""
        if action.agent_id is None:
            return _failed("no_agent", "No agent to connect.")
        call_sid = action.thread_key
        moved = await self.client.update_call(call_sid, twiml=self.conference_twiml(call_sid, room, record=action.record))
        if not moved.ok:
            return moved.report()
        identity = agent_identity(action.agent_id)
        caller_id = action.our_address or (self.config.numbers[0].e164 if self.config.numbers else "")
        # the conference's own settings ride on the agent's leg too: whichever participant joins first makes the
        # conference (the caller may still be hearing the consent notice), and only the first one's count on Twilio
        leg = await self.client.add_participant(
            room, from_=caller_id, to=agent_destination(identity, action.agent_phone), label=identity,
            timeout=self.settings.agent_ring_seconds,
            status_callback=self.url(STATUS_PATH, leg="agent", call=call_sid), end_conference_on_exit=True,
            conference_status_callback=self.url(CONFERENCE_PATH, call=call_sid),
            conference_record=RECORD_FROM_START if action.record else None,
            conference_recording_status_callback=self.url(RECORDING_PATH, call=call_sid) if action.record else None,
        )
        if not leg.ok:
            await self.client.update_call(call_sid, url=self.url(WAIT_PATH, n=1))  # back to the queue's music
            return _failed(leg.code or "agent_leg", f"Your phone could not be rung: {leg.words}")
        call = self._state(call_sid)
        call.conversation_id, call.agent_id, call.agent_leg = action.conversation_id, action.agent_id, leg.sid
        call.said.clear()
        return DeliveryReport("sent", provider_id=leg.sid)

    async def _requeue(self, action: CallAction, room: str) -> DeliveryReport:
        """The agent's leg is gone: the caller goes back to the wait loop."""
        call = self._calls.get(action.thread_key)
        if call is not None:
            call.agent_id = call.agent_leg = None
        return (await self.client.update_call(action.thread_key, url=self.url(WAIT_PATH, n=0))).report()

    async def _hang_up(self, action: CallAction, room: str) -> DeliveryReport:
        """End the call (a call that already ended is done)."""
        result = await self.client.update_call(action.thread_key, status="completed")
        if result.ok or result.gone:
            self.forget(action.thread_key)
            return DeliveryReport("sent")
        return result.report()


def room_name(conversation_id: int) -> str:
    """The conference a call's conversation is bridged in: named by our conversation id, never by a number."""
    return f"conv-{conversation_id}"


def agent_identity(agent_id: int) -> str:
    """The agent's Voice client identity (``^[A-Za-z0-9_]{1,121}$``) and participant label."""
    return f"agent_{int(agent_id)}"


def agent_destination(identity: str, own_phone: str = "") -> str:
    """Where an agent's (or supervisor's) leg rings: their own phone number when they take calls on it (E.164,
    ``agents.phone_number``), else the console's softphone, ``client:<identity>``."""
    return own_phone if own_phone.startswith("+") else f"client:{identity}"


def supervisor_label(agent_id: int) -> str:
    """A supervisor's participant label (their phone is their ``client:agent_<id>``, like an agent's)."""
    return f"{SUPERVISOR_PREFIX}{int(agent_id)}"


def _agent_of(target: str | None) -> int | None:
    """The agent id of a target ``agent:<id>`` (None for anything else)."""
    if not target or not target.startswith("agent:") or not target[6:].isdigit() or len(target) > 20:
        return None
    return int(target[6:])


def _failed(code: str, words: str) -> DeliveryReport:
    return DeliveryReport("failed", error_code=code, error_message=words)


# --- parsing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallForm:
    """The fields of a voice webhook the hub reads."""

    call_sid: str
    from_: str
    to: str
    digits: str = ""
    speech: str = ""
    confidence: float | None = None
    status: str = ""
    sequence: str = ""


def _field(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def parse_call(form: Mapping[str, str], config: TwilioConfig, *, need_numbers: bool = True) -> CallForm:
    """A voice webhook's form (raises BadWebhook with the reason)."""
    sid = _field(form, "CallSid")
    if not sid:
        raise BadWebhook("CallSid is missing")
    if not _CALL_SID.fullmatch(sid):
        raise BadWebhook(f"CallSid {sid[:40]!r} is not a Twilio call SID")
    account = _field(form, "AccountSid")
    if account != config.account_sid:
        raise BadWebhook(f"AccountSid {account[:40]!r} is not this hub's Twilio account")
    sender, recipient = _field(form, "From"), _field(form, "To")
    if need_numbers and (not sender or not recipient):
        raise BadWebhook("From and To are required")
    raw_confidence = _field(form, "Confidence")
    try:
        confidence = float(raw_confidence) if raw_confidence else None
    except ValueError:
        raise BadWebhook(f"Confidence {raw_confidence[:20]!r} is not a number") from None
    digits = _field(form, "Digits")
    if digits and not re.fullmatch(r"[0-9*#w]{1,64}", digits):
        raise BadWebhook(f"Digits {digits[:20]!r} are not keypad digits")
    sequence = _field(form, "SequenceNumber")
    if sequence and not sequence.isdigit():
        raise BadWebhook(f"SequenceNumber {sequence[:20]!r} is not a number")
    return CallForm(
        call_sid=sid, from_=sender, to=recipient, digits=digits, speech=(form.get("SpeechResult") or "")[:2000].strip(),
        confidence=confidence, status=_field(form, "CallStatus").lower(), sequence=sequence,
    )


# --- the webhooks ------------------------------------------------------------------------------------------


class _Webhooks:
    """The voice webhooks and what they need."""

    def __init__(
        self, config: TwilioConfig, hub: Callable[[], Any], adapter: VoiceAdapter, receipts: WebhookReceipts,
        db: Callable[[], Any] | None, today: Callable[[], date],
    ) -> None:
        self.config = config
        self.hub = hub
        self.adapter = adapter
        self.settings = adapter.settings
        self.receipts = receipts
        self._db = db
        self.today = today
        self._pending: dict[tuple[str, ...], asyncio.Task[VoiceResponse]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._status_rank: OrderedDict[str, int] = OrderedDict()
        self._hints = ivr.hints()
        self._hints_loaded = False

    # --- plumbing -------------------------------------------------------------------------------------
    def db(self) -> Any:
        return self._db() if self._db is not None else self.hub().db

    async def _verified_form(self, request: web.Request) -> MultiDict[str]:
        form = await read_form(request, MAX_FORM_BYTES)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not is_valid_signature(self.config.auth_token, self.config.public_base_url, request.raw_path, form, signature):
            log.warning("twilio voice webhook refused: bad signature", extra={"path": request.path, "signed": bool(signature)})
            raise web.HTTPForbidden(text="missing or invalid X-Twilio-Signature")
        return form

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _say(self, node: Any, text: str) -> None:
        for piece in ivr.split_for_say(text, self.settings.say_limit):
            node.say(piece, voice=self.settings.voice, language=self.settings.language)

    def _say_all(self, node: Any, pieces: Sequence[str]) -> None:
        for piece in pieces:
            node.say(piece, voice=self.settings.voice, language=self.settings.language)

    def _heard(self, spoken: Spoken) -> None:
        """The caller heard these messages: their status becomes ``delivered`` (in the background)."""
        if spoken.provider_ids:
            self._spawn(self._mark_delivered(spoken.provider_ids))

    async def _mark_delivered(self, provider_ids: Sequence[str]) -> None:
        try:
            for provider_id in provider_ids:
                await self.hub().delivery_update(CHANNEL, provider_id, "delivered")
        except Exception:  # noqa: BLE001 - a status for the agent's view only
            log.warning("could not mark spoken messages delivered", exc_info=True)

    def _gather(self, response: VoiceResponse, turn: int, mode: Mode, *, miss: int = 0, count: int = 0) -> Gather:
        """The IVR's ``<Gather input="dtmf speech">`` whose action is ``gather?turn=N``."""
        digits = 1 if mode is Mode.CHOICES and 0 < count <= 9 else None
        return response.gather(
            input="dtmf speech", action=self.adapter.url(GATHER_PATH, turn=turn, mode=mode.value, miss=miss or None, c=count or None),
            method="POST", action_on_empty_result=True, speech_timeout="auto", timeout=self.settings.gather_timeout,
            finish_on_key="#", num_digits=digits, hints=self._hints, language=self.settings.language,
        )

    async def _within_deadline(self, key: tuple[str, ...], make: Callable[[], Awaitable[VoiceResponse]], retry_url: str, holds: int) -> web.Response:
        """Answer with what ``make`` builds if it is done within the deadline; else a holding message and a
        ``<Redirect>`` to ``retry_url`` that joins the same work (after ``max_holds`` of them: a person)."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._pending[key] = task
            loop = asyncio.get_running_loop()
            task.add_done_callback(lambda t: loop.call_later(120, lambda: self._pending.pop(key, None) if self._pending.get(key) is t else None))
        done, _ = await asyncio.wait({task}, timeout=self.settings.answer_deadline)
        if not done:
            response = VoiceResponse()
            if holds >= self.settings.max_holds:
                log.warning("voice step still not done after holding: passing the caller to a person", extra={"key": key[:2]})
                call_sid = key[0]

                async def to_person() -> None:
                    await self.hub().request_agent(CHANNEL, call_sid, "hub_slow", {"reason": "hub_slow"})

                self._spawn(self._quietly(to_person()))
                self._say(response, f"{ivr.APOLOGY} {ivr.TO_AGENT}")
                response.redirect(self.adapter.url(WAIT_PATH, n=1, t0=int(time.time())), method="POST")
                return _twiml(response)
            self._say(response, ivr.HOLDING)
            response.redirect(retry_url, method="POST")
            return _twiml(response)
        if self._pending.get(key) is task:
            del self._pending[key]
        try:
            return _twiml(task.result())
        except Exception:  # noqa: BLE001 - the caller hears an apology, never Twilio's error
            log.exception("voice webhook failed", extra={"step": key[1] if len(key) > 1 else ""})
            return _twiml(self._apology())

    async def _quietly(self, coro: Awaitable[Any]) -> None:
        try:
            await coro
        except Exception:  # noqa: BLE001 - best effort, logged
            log.warning("background voice step failed", exc_info=True)

    def _apology(self) -> VoiceResponse:
        response = VoiceResponse()
        self._say(response, f"{ivr.APOLOGY} {ivr.TO_AGENT}")
        response.redirect(self.adapter.url(WAIT_PATH, n=1, t0=int(time.time())), method="POST")
        return response

    def _bot_ready(self) -> bool:
        hub = self.hub()
        return getattr(hub, "bot", None) is not None and bool(getattr(hub, "bot_ready", False))

    def _queue_of(self, to: str) -> str | None:
        number = self.config.number(to)
        return number.queue if number is not None else None

    async def _load_hints(self) -> None:
        """The catalogue's product names as speech hints (once, in the background)."""
        if self._hints_loaded:
            return
        self._hints_loaded = True
        try:
            from crm_store.repositories.products import list_products

            async with self.db().session() as s:
                products = await list_products(s)
            self._hints = ivr.hints([p.name for p in products])
        except Exception:  # noqa: BLE001 - the menu's words still help
            log.warning("could not read the catalogue for speech hints", exc_info=True)

    # --- POST /webhooks/twilio/voice -------------------------------------------------------------------
    async def voice(self, request: web.Request) -> web.Response:
        """A call rings: the caller is recognised, greeted, and hears the menu."""
        try:
            form = await self._verified_form(request)
            call = parse_call(form, self.config)
            if self.config.number(call.to) is None:
                raise BadWebhook(f"To {call.to[:40]!r} is not one of this hub's numbers (TWILIO_NUMBERS)")
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        if not self._hints_loaded:
            self._spawn(self._load_hints())
        holds = _int(request.query.get("hold"))
        return await self._within_deadline(
            (call.call_sid, "voice"), lambda: self._answer_call(call), self.adapter.url(VOICE_PATH, hold=holds + 1), holds,
        )

    async def _answer_call(self, call: CallForm) -> VoiceResponse:
        hub = self.hub()
        event = InboundEvent(
            channel=CHANNEL, customer_address=call.from_, our_address=self.config.number(call.to).address,  # type: ignore[union-attr]
            text=f"{OPENING_NOTE}{call.from_}", thread_key=call.call_sid, provider_id=f"{call.call_sid}:start",
            queue=self._queue_of(call.to), opening=True, metadata={"twilio": {"call_sid": call.call_sid}},
        )
        try:
            opened = await hub.receive_inbound(event)
        except Exception as exc:
            if getattr(exc, "code", None) == "bad_request":  # a hidden or invalid number: nobody to recognise
                log.info("call from a number the hub cannot take", extra={"call_sid": call.call_sid, "reason": str(exc)})
                response = VoiceResponse()
                self._say(response, HIDDEN_NUMBER_TEXT)
                response.hangup()
                return response
            raise
        # the call's state and the caller's orders are read at once (two reads, one wait)
        state, phrase = await asyncio.gather(hub.contact_state(CHANNEL, call.call_sid), self._order_phrase(opened.customer_id))
        if state is None:
            raise RuntimeError("the core has no conversation for the call it just opened")
        if state["status"] != "bot":  # a repeat of the ring after the call moved on
            return await self._by_state(call.call_sid, state, turn=1)
        response = VoiceResponse()
        gather = self._gather(response, 1, Mode.MENU)
        self._say(gather, ivr.greeting(str(state.get("customer_name") or ""), phrase))
        self._say(gather, ivr.MENU_PROMPT)
        return response

    async def _order_phrase(self, customer_id: Any) -> str | None:
        """Their latest open order's status, in words ("your order 10234 should arrive tomorrow")."""
        if not isinstance(customer_id, int):
            return None
        reads = getattr(self.hub(), "reads", None)  # the hub's point reads: one indexed read, no ORM
        if reads is not None:
            order = await reads.latest_order_in(customer_id, ivr.OPEN_ORDER_STATUSES)
            if order is None:
                return None
            return ivr.order_status_phrase(order.id, order.status, order.promised_date, self.today())
        from crm_store.repositories.orders import orders_of_customer

        async with self.db().reader() as conn:  # a bare pooled connection: no ORM session for a read view
            orders = await orders_of_customer(conn, customer_id, limit=10)
        for found in orders:
            if ivr.is_open_order(str(found.status)):
                return ivr.order_status_phrase(int(found.id or 0), str(found.status), _as_date(found.promised_date), self.today())
        return None

    async def _own_order(self, customer_id: Any, order_id: str) -> Any | None:
        """The caller's own order with this number (never someone else's)."""
        from crm_store.repositories.orders import OrderNotFound, get_order

        if not isinstance(customer_id, int) or not order_id.isdigit() or len(order_id) > 12:
            return None
        async with self.db().session() as s:
            try:
                view = await get_order(s, int(order_id), with_events=False)
            except OrderNotFound:
                return None
        return view.order if view.order.customer_id == customer_id else None

    # --- POST /webhooks/twilio/voice/gather ------------------------------------------------------------
    async def gather(self, request: web.Request) -> web.Response:
        """What the caller pressed or said (or a holding message's redirect that joins the step)."""
        try:
            form = await self._verified_form(request)
            call = parse_call(form, self.config)
            turn = _int(request.query.get("turn"), default=1)
            mode = Mode(request.query.get("mode") or Mode.MENU.value)
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        except ValueError:
            return web.Response(status=400, text="mode must be menu, bot or choices")
        holds = _int(request.query.get("hold"))
        retry = self.adapter.url(GATHER_PATH, turn=turn, mode=mode.value, pending=1, hold=holds + 1)
        if request.query.get("pending"):  # a holding message's redirect: join the step (or take what is there)
            return await self._within_deadline((call.call_sid, "gather", str(turn)), lambda: self._after_turn(call.call_sid, turn + 1), retry, holds)
        miss, count = _int(request.query.get("miss")), _int(request.query.get("c"))
        return await self._within_deadline(
            (call.call_sid, "gather", str(turn)), lambda: self._turn(call, turn, mode, miss, count), retry, holds,
        )

    async def _turn(self, call: CallForm, turn: int, mode: Mode, miss: int, count: int) -> VoiceResponse:
        titles = self.adapter.choices(call.call_sid) if mode is Mode.CHOICES else []
        meaning = ivr.interpret(call.digits, call.speech, mode, titles, count)
        if meaning.heard in (Heard.SILENCE, Heard.INVALID):
            return await self._reprompt(call.call_sid, turn, mode, miss, count, meaning)
        if meaning.heard is Heard.AGENT and not (mode is not Mode.MENU and not call.digits and self._bot_ready()):
            return await self._to_person(call.call_sid, "customer_request", {"reason": "customer_request", "said": meaning.text})
        hub = self.hub()
        if meaning.heard is Heard.AGENT:
            # said (not the menu's 0) in the middle of a conversation with the bot: the bot hands over itself: its handover note carries
            # what it knows (the order being drafted, the order placed); if it does not, the menu's handover
            meaning = Meaning(Heard.AGENT, text=meaning.text, bot_text=ivr.AGENT_BOT_TEXT)
        result = await hub.receive_inbound(InboundEvent(
            channel=CHANNEL, customer_address=call.from_, our_address=call.to, text=meaning.text, bot_text=meaning.bot_text,
            thread_key=call.call_sid, provider_id=f"{call.call_sid}:{turn}", queue=self._queue_of(call.to),
            metadata={"twilio": {"digits": call.digits, "speech": call.speech[:500], "confidence": call.confidence}},
        ))
        if not self._bot_ready():
            return await self._without_bot(call.call_sid, turn, meaning)
        for _ in range(self.settings.max_holds + 1):
            if await hub.settled(result.conversation_id, self.settings.settle_timeout):
                break
        if meaning.heard is Heard.AGENT:
            state = await hub.contact_state(CHANNEL, call.call_sid)
            if state is None or state.get("status") == "bot":
                return await self._to_person(call.call_sid, "customer_request", {"reason": "customer_request", "said": meaning.text})
            return await self._by_state(call.call_sid, state, turn=turn + 1)
        return await self._after_turn(call.call_sid, turn + 1)

    async def _reprompt(self, call_sid: str, turn: int, mode: Mode, miss: int, count: int, meaning: Meaning) -> VoiceResponse:
        """Silence (or a key that is no option): ask again, at most twice; then a person."""
        if miss >= ivr.MAX_REPROMPTS:
            return await self._to_person(call_sid, "no_input", {"reason": "no_input"})
        response = VoiceResponse()
        gather = self._gather(response, turn, mode, miss=miss + 1, count=count)
        self._say(gather, ivr.NOT_AN_OPTION if meaning.heard is Heard.INVALID else ivr.REPROMPT)
        if mode is Mode.MENU:
            self._say(gather, ivr.MENU_PROMPT)
        else:
            self._say_all(gather, self.adapter.last_spoken(call_sid) or [ANYTHING_ELSE_TEXT])
        return response

    async def _without_bot(self, call_sid: str, turn: int, meaning: Meaning) -> VoiceResponse:
        """The bot is not there: the IVR answers what it can (the caller's own order's status), else a person."""
        hub = self.hub()
        if meaning.heard is Heard.ORDER_NUMBER and meaning.order_id:
            state = await hub.contact_state(CHANNEL, call_sid) or {}
            order = await self._own_order(state.get("customer_id"), meaning.order_id)
            if order is not None:
                phrase = ivr.order_status_phrase(order.id, str(order.status), _as_date(order.promised_date), self.today())
                phrase = phrase or f"your order {order.id} is {order.status}"
                response = VoiceResponse()
                gather = self._gather(response, turn + 1, Mode.MENU)
                self._say(gather, f"{phrase[0].upper()}{phrase[1:]}. {ANYTHING_ELSE_TEXT}")
                self._say(gather, ivr.MENU_PROMPT)
                return response
        if meaning.heard is Heard.TRACK:
            response = VoiceResponse()
            gather = self._gather(response, turn + 1, Mode.MENU)
            self._say(gather, "Please type your order number, then the hash key. Or press 0 to speak to someone.")
            return response
        intent = {Heard.ORDER: "order_product", Heard.TRACK: "track_order", Heard.ORDER_NUMBER: "track_order"}.get(meaning.heard)
        context: dict[str, Any] = {"reason": "bot_unavailable", "said": meaning.text}
        if intent:
            context["intent"] = intent
        if meaning.order_id:
            context["slots"] = {"order_id": meaning.order_id}
        return await self._to_person(call_sid, "bot_unavailable", context)

    async def _after_turn(self, call_sid: str, next_turn: int) -> VoiceResponse:
        """What the caller hears once the bot's turn is done: its replies, then the next question or the queue."""
        state = await self.hub().contact_state(CHANNEL, call_sid)
        if state is None:
            response = VoiceResponse()
            self._say(response, ivr.APOLOGY)
            response.hangup()
            return response
        return await self._by_state(call_sid, state, turn=next_turn)

    async def _by_state(self, call_sid: str, state: Mapping[str, Any], *, turn: int) -> VoiceResponse:
        spoken = self.adapter.take_spoken(call_sid)
        self._heard(spoken)
        response = VoiceResponse()
        status = state.get("status")
        if status == "bot":
            mode = Mode.CHOICES if spoken.titles else Mode.BOT
            gather = self._gather(response, turn, mode, count=len(spoken.titles))
            self._say_all(gather, spoken.pieces or [ANYTHING_ELSE_TEXT])
            return response
        self._say_all(response, spoken.pieces)
        if status == "queued":
            queue = state.get("queue") or {}
            self._say(response, ivr.queue_phrase(queue.get("position"), queue.get("estimated_wait_seconds")))
            response.redirect(self.adapter.url(WAIT_PATH, n=1, t0=int(time.time())), method="POST")
        elif status == "assigned":
            self._say(response, CONNECTING_TEXT)
            response.redirect(self.adapter.url(WAIT_PATH, n=1, t0=int(time.time())), method="POST")
        else:
            self._say(response, GOODBYE_TEXT)
            response.hangup()
        return response

    async def _to_person(self, call_sid: str, reason: str, context: dict[str, Any]) -> VoiceResponse:
        """Queue the caller for a person, tell them their place, and go to the wait loop."""
        hub = self.hub()
        await hub.request_agent(CHANNEL, call_sid, reason, context)
        state = await hub.contact_state(CHANNEL, call_sid) or {"status": "queued"}
        response = VoiceResponse()
        spoken = self.adapter.take_spoken(call_sid)
        self._heard(spoken)
        self._say_all(response, spoken.pieces)
        if state.get("status") in ("queued", "assigned"):
            self._say(response, ivr.TO_AGENT)
            queue = state.get("queue") or {}
            self._say(response, ivr.queue_phrase(queue.get("position"), queue.get("estimated_wait_seconds")))
            response.redirect(self.adapter.url(WAIT_PATH, n=1, t0=int(time.time())), method="POST")
            return response
        return await self._by_state(call_sid, state, turn=1)

    # --- POST /webhooks/twilio/voice/wait --------------------------------------------------------------
    async def wait(self, request: web.Request) -> web.Response:
        """The wait loop: the place in the queue (read again), music, a callback offer, and round again."""
        try:
            form = await self._verified_form(request)
            call = parse_call(form, self.config, need_numbers=False)
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        loop_number = _int(request.query.get("n"))
        started = _int(request.query.get("t0")) or int(time.time())
        if request.query.get("cb") and call.digits:
            if call.digits.startswith("1"):
                return await self._bounded(lambda: self._callback(call), lambda: self._music(call.call_sid, loop_number, started))
        return await self._bounded(lambda: self._wait_step(call.call_sid, loop_number, started),
                                   lambda: self._music(call.call_sid, loop_number, started))

    async def _bounded(self, make: Callable[[], Awaitable[VoiceResponse]], instead: Callable[[], VoiceResponse]) -> web.Response:
        """``make``'s answer within the deadline; else (or on a failure) ``instead`` (music and round again)."""
        try:
            return _twiml(await asyncio.wait_for(make(), self.settings.answer_deadline))
        except asyncio.TimeoutError:
            log.warning("voice wait loop step too slow: music instead")
        except Exception:  # noqa: BLE001 - the caller keeps their music
            log.exception("voice wait loop step failed")
        return _twiml(instead())

    async def _wait_step(self, call_sid: str, loop_number: int, started: int) -> VoiceResponse:
        state = await self.hub().contact_state(CHANNEL, call_sid)
        if state is None or state.get("status") == "closed":
            spoken = self.adapter.take_spoken(call_sid)
            response = VoiceResponse()
            self._say_all(response, spoken.pieces)
            self._say(response, GOODBYE_TEXT)
            response.hangup()
            return response
        if state.get("status") == "bot":
            return await self._by_state(call_sid, state, turn=1)
        spoken = self.adapter.take_spoken(call_sid)
        self._heard(spoken)
        response = VoiceResponse()
        self._say_all(response, spoken.pieces)
        if state.get("status") == "assigned":
            self._say(response, CONNECTING_TEXT)
        elif loop_number > 1 or (loop_number == 0):
            queue = state.get("queue") or {}
            self._say(response, ivr.queue_phrase(queue.get("position"), queue.get("estimated_wait_seconds")))
        return self._music(call_sid, loop_number, started, response, offer=state.get("status") == "queued")

    def _music(self, call_sid: str, loop_number: int, started: int, response: VoiceResponse | None = None, *, offer: bool = False) -> VoiceResponse:
        """Music (or a pause) for about ``wait_loop_seconds``, with the callback offer when it is due, then round again."""
        response = response or VoiceResponse()
        after = self.settings.callback_offer_after
        node: Any = response
        if offer and after is not None and time.time() - started >= after:
            node = response.gather(input="dtmf", num_digits=1, timeout=1, action=self.adapter.url(WAIT_PATH, n=loop_number + 1, t0=started, cb=1),
                                   method="POST", action_on_empty_result=False)
            self._say(node, CALLBACK_OFFER_TEXT)
        if self.adapter.music_url:
            node.play(self.adapter.music_url, loop=max(1, round(self.settings.wait_loop_seconds / HOLD_MUSIC_SECONDS)))
        else:
            node.pause(length=self.settings.wait_loop_seconds)
        response.redirect(self.adapter.url(WAIT_PATH, n=loop_number + 1, t0=started), method="POST")
        return response

    async def _callback(self, call: CallForm) -> VoiceResponse:
        """The caller pressed 1 for a callback: recorded with their conversation; their hang-up keeps their place."""
        hub = self.hub()
        state = await hub.contact_state(CHANNEL, call.call_sid)
        if state is None or state.get("status") != "queued":
            return await self._wait_step(call.call_sid, 1, int(time.time()))
        first = await self.receipts.first_time(PROVIDER, CALLBACK_KIND, call.call_sid, {"from": call.from_, "at": int(time.time())})
        await _record_callback(hub, call, "The caller asked to be called back while waiting (they keep their place in the queue).")
        if first:
            await hub.callback_requested(CHANNEL, call.call_sid, "wait_offer", call.from_)
        response = VoiceResponse()
        self._say(response, CALLBACK_TAKEN_TEXT)
        response.hangup()
        return response

    # --- POST /webhooks/twilio/voice/status ------------------------------------------------------------
    async def status(self, request: web.Request) -> web.Response:
        """A call's status moved: once per (CallSid, CallStatus, SequenceNumber), never backwards."""
        try:
            form = await self._verified_form(request)
            call = parse_call(form, self.config, need_numbers=False)
            if not call.status:
                raise BadWebhook("CallStatus is missing")
            leg = request.query.get("leg") or ("agent" if _field(form, "To").startswith("client:") else "caller")
            if leg not in ("caller", "agent", "consult", "supervisor"):
                raise BadWebhook("leg must be caller, agent, consult or supervisor")
            thread = (request.query.get("call") or self.adapter.caller_of_leg(call.call_sid)) if leg != "caller" else call.call_sid
            if thread is not None and not _CALL_SID.fullmatch(thread):
                raise BadWebhook("call is not a Twilio call SID")
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        if thread is None:  # an agent's leg whose caller this process does not know (a URL without ?call=)
            log.info("status of an agent's leg with no known caller", extra={"call_sid": call.call_sid, "status": call.status})
            return web.Response(status=200)
        if call.status not in _RANK:
            return web.Response(status=200)  # a status the hub does not track
        key = f"{call.call_sid}:{call.status}:{call.sequence}"
        try:
            first = await self.receipts.first_time(PROVIDER, STATUS_KIND, key, dict(form))
        except Exception:  # noqa: BLE001 - the receipts' store is down: Twilio may try again
            log.exception("call status receipt not taken", extra={"call_sid": call.call_sid})
            return web.Response(status=503, text="the hub could not record the status now")
        if not first:
            return web.Response(status=200)
        if not self._moves_forward(call.call_sid, call.status):
            log.info("call status arrived late and is ignored", extra={"call_sid": call.call_sid, "status": call.status})
            return web.Response(status=200)
        try:
            await self._apply_status(leg, thread, call, form)
        except Exception:  # noqa: BLE001 - told to Twilio as "try again", its receipt forgotten
            log.exception("call status not handled", extra={"call_sid": call.call_sid, "status": call.status})
            self._status_rank.pop(call.call_sid, None)
            await self._quietly(self.receipts.forget(PROVIDER, STATUS_KIND, key))
            return web.Response(status=503, text="the hub could not handle the status now")
        return web.Response(status=200)

    def _moves_forward(self, call_sid: str, status: str) -> bool:
        """Whether ``status`` is later than what this process saw of the call (a late ringing never reopens)."""
        rank = _RANK[status]
        seen = self._status_rank.get(call_sid)
        if seen is not None and (rank < seen or (rank == seen == 3)):
            return False
        self._status_rank[call_sid] = rank
        self._status_rank.move_to_end(call_sid)
        while len(self._status_rank) > 20_000:
            self._status_rank.popitem(last=False)
        return True

    async def _apply_status(self, leg: str, thread: str, call: CallForm, form: Mapping[str, str]) -> None:
        hub = self.hub()
        detail = {k: v for k, v in {
            "call_sid": call.call_sid, "sequence": call.sequence, "duration": _field(form, "CallDuration"),
            "direction": _field(form, "Direction"),
        }.items() if v}
        final = call.status in FINAL_STATUSES
        if leg == "supervisor":  # the supervisor's own phone: nothing for the agent or the core
            log.info("supervisor leg status", extra={"call_sid": call.call_sid, "status": call.status})
            return
        if leg == "consult":  # the consulted colleague's leg: the core moves the consultation on
            await hub.consult_leg(CHANNEL, thread, call.call_sid, call.status)
            return
        if leg == "agent":
            if self.adapter.former_leg(thread, call.call_sid):
                return  # the first agent's leg after a warm transfer: the call is someone else's now
            await hub.call_status(CHANNEL, thread, f"agent_{call.status.replace('-', '_')}", detail)
            return
        if not final:
            state = await hub.contact_state(CHANNEL, thread)
            if state is None or state.get("status") == "closed":
                return  # the call is over for the core: a late status changes nothing
            await hub.call_status(CHANNEL, thread, call.status, detail)
            return
        self.adapter.forget(thread)
        if await self._callback_requested(thread):
            await hub.call_status(CHANNEL, thread, "callback_requested", detail)
            return
        await hub.contact_ended(CHANNEL, thread, call.status)

    async def _callback_requested(self, call_sid: str) -> bool:
        """Whether the caller asked for a callback (its receipt exists; the probe's own receipt is forgotten)."""
        if await self.receipts.first_time(PROVIDER, CALLBACK_KIND, call_sid, {}):
            await self.receipts.forget(PROVIDER, CALLBACK_KIND, call_sid)
            return False
        return True

    # --- POST /webhooks/twilio/voice/conference --------------------------------------------------------
    async def conference(self, request: web.Request) -> web.Response:
        """The conference's events, for the agent's call card (join, leave, hold, mute)."""
        try:
            form = await self._verified_form(request)
            if _field(form, "AccountSid") != self.config.account_sid:
                raise BadWebhook(f"AccountSid {_field(form, 'AccountSid')[:40]!r} is not this hub's Twilio account")
            event = _field(form, "StatusCallbackEvent")
            if not event:
                raise BadWebhook("StatusCallbackEvent is missing")
            conference = _field(form, "ConferenceSid")
            if not _CONFERENCE_SID.fullmatch(conference):
                raise BadWebhook(f"ConferenceSid {conference[:40]!r} is not a Twilio conference SID")
            thread = request.query.get("call")
            if thread is not None and not _CALL_SID.fullmatch(thread):
                raise BadWebhook("call is not a Twilio call SID")
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        if _ROOM.fullmatch(_field(form, "FriendlyName")):  # the SID that Participants update needs, kept per room
            self.adapter.note_conference(_field(form, "FriendlyName"), conference, ended=event == "conference-end")
        leg, label = _field(form, "CallSid"), _field(form, "ParticipantLabel")
        if thread is None:  # a callback URL without ?call=: the caller's own leg, or the call bridged here
            thread = leg if label == CUSTOMER_LABEL and _CALL_SID.fullmatch(leg) else self.adapter.caller_in_room(_field(form, "FriendlyName"))
        if thread is None:
            log.info("conference event of a call this process does not know", extra={"event": event})
            return web.Response(status=200)
        key = f"{conference}:{event}:{leg}:{_field(form, 'SequenceNumber')}"
        try:
            first = await self.receipts.first_time(PROVIDER, CONFERENCE_KIND, key, dict(form))
        except Exception:  # noqa: BLE001
            log.exception("conference event receipt not taken", extra={"event": event})
            return web.Response(status=503, text="the hub could not record the event now")
        if not first:
            return web.Response(status=200)
        who = "caller" if (label == CUSTOMER_LABEL or leg == thread) else self.adapter.who_is(thread, leg, label)
        if who == "supervisor":  # a supervisor listening in is not news for the agent
            return web.Response(status=200)
        if who == "agent" and event == "participant-join" and _CALL_SID.fullmatch(leg):
            self.adapter.note_agent_leg(thread, leg)
        words = {
            "participant-join": f"{who}_joined", "participant-leave": f"{who}_left", "participant-hold": f"{who}_on_hold",
            "participant-unhold": f"{who}_off_hold", "participant-mute": f"{who}_muted", "participant-unmute": f"{who}_unmuted",
            "conference-start": "bridged", "conference-end": "bridge_ended",
        }.get(event)
        if words is None:
            return web.Response(status=200)
        room = _ROOM.fullmatch(_field(form, "FriendlyName"))
        detail = {"conference": _field(form, "FriendlyName"), "participant": label or leg}
        try:
            await self.hub().call_status(CHANNEL, thread, words, detail if room else {"participant": label or leg})
        except Exception:  # noqa: BLE001
            log.exception("conference event not handled", extra={"event": event})
            await self._quietly(self.receipts.forget(PROVIDER, CONFERENCE_KIND, key))
            return web.Response(status=503, text="the hub could not handle the event now")
        return web.Response(status=200)

    # --- POST /webhooks/twilio/voice/recording ---------------------------------------------------------
    async def recording(self, request: web.Request) -> web.Response:
        """The conference recording's status callback (``?call=<the caller's CallSid>``): once per
        (RecordingSid, RecordingStatus); the core keeps it with the conversation and on the timeline."""
        try:
            form = await self._verified_form(request)
            if _field(form, "AccountSid") != self.config.account_sid:
                raise BadWebhook(f"AccountSid {_field(form, 'AccountSid')[:40]!r} is not this hub's Twilio account")
            thread = request.query.get("call") or ""
            if not _CALL_SID.fullmatch(thread):
                raise BadWebhook("call is missing or not a Twilio call SID")
            recording_sid = _field(form, "RecordingSid")
            if not _RECORDING_SID.fullmatch(recording_sid):
                raise BadWebhook(f"RecordingSid {recording_sid[:40]!r} is not a Twilio recording SID")
            status = _field(form, "RecordingStatus").lower()
            if status not in _RECORDING_STATUSES:
                raise BadWebhook(f"RecordingStatus {status[:20]!r} is not one of {', '.join(sorted(_RECORDING_STATUSES))}")
            duration = _field(form, "RecordingDuration")
            if duration and not duration.isdigit():
                raise BadWebhook(f"RecordingDuration {duration[:20]!r} is not a number of seconds")
            url = _field(form, "RecordingUrl")
            if url and not url.startswith(("https://", "http://")):
                raise BadWebhook("RecordingUrl is not an http(s) URL")
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        key = f"{recording_sid}:{status}"
        try:
            first = await self.receipts.first_time(PROVIDER, RECORDING_KIND, key, dict(form))
        except Exception:  # noqa: BLE001 - Twilio may try again
            log.exception("recording status receipt not taken", extra={"recording_sid": recording_sid})
            return web.Response(status=503, text="the hub could not record the status now")
        if not first:
            return web.Response(status=200)
        detail = {k: v for k, v in {
            "url": url[:500], "duration": int(duration) if duration else None, "conference_sid": _field(form, "ConferenceSid"),
            "error_code": _field(form, "ErrorCode") if _field(form, "ErrorCode") not in ("", "0") else None,
        }.items() if v not in (None, "")}
        try:
            await self.hub().call_recording(CHANNEL, thread, recording_sid, status, detail)
        except Exception:  # noqa: BLE001 - told to Twilio as "try again", its receipt forgotten
            log.exception("recording status not handled", extra={"recording_sid": recording_sid})
            await self._quietly(self.receipts.forget(PROVIDER, RECORDING_KIND, key))
            return web.Response(status=503, text="the hub could not handle the recording status now")
        return web.Response(status=200)

    # --- POST /webhooks/twilio/voice/fallback ----------------------------------------------------------
    async def fallback(self, request: web.Request) -> web.Response:
        """The number's fallback URL: the main webhook failed. An apology at once; a callback request recorded."""
        try:
            form = await self._verified_form(request)
            call = parse_call(form, self.config)
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        log.error("voice fallback used", extra={"call_sid": call.call_sid, "error_code": _field(form, "ErrorCode"),
                                                "error_url": _field(form, "ErrorUrl")[:200]})
        self._spawn(self._fallback_record_retrying(call))
        response = VoiceResponse()
        self._say(response, FALLBACK_TEXT)
        response.hangup()
        return _twiml(response)

    async def _fallback_record_retrying(self, call: CallForm) -> None:
        """The callback request, tried again with growing waits (1, 2, 4... s, about a minute in all): the fallback
        runs because something failed, and the database may be back a moment later. Each step is idempotent."""
        delay = self.settings.fallback_retry_first
        for attempt in range(1, self.settings.fallback_tries + 1):
            try:
                await self._fallback_record(call)
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - tried again, then logged loudly: a caller is waiting for our call
                if attempt >= self.settings.fallback_tries:
                    log.exception("the fallback's callback request could not be recorded: call the customer back by hand",
                                  extra={"call_sid": call.call_sid, "from": call.from_})
                    return
                log.warning("the fallback's callback request was not recorded yet; trying again", exc_info=True,
                            extra={"call_sid": call.call_sid, "attempt": attempt})
            await asyncio.sleep(delay)
            delay *= 2

    async def _fallback_record(self, call: CallForm) -> None:
        hub = self.hub()
        await self.receipts.first_time(PROVIDER, CALLBACK_KIND, call.call_sid, {"from": call.from_, "fallback": True})
        number = self.config.number(call.to)
        await hub.receive_inbound(InboundEvent(
            channel=CHANNEL, customer_address=call.from_, our_address=number.address if number else call.to,
            text=f"{OPENING_NOTE}{call.from_}", thread_key=call.call_sid, provider_id=f"{call.call_sid}:start",
            queue=self._queue_of(call.to), opening=True,
        ))
        await _record_callback(hub, call, "The call could not be answered (the hub's voice webhook failed): call the customer back.")
        if await hub.request_agent(CHANNEL, call.call_sid, "callback", {"reason": "callback", "intent": "callback"}):
            await hub.callback_requested(CHANNEL, call.call_sid, "fallback", call.from_)

    # --- GET /webhooks/twilio/voice/hold-music.wav ------------------------------------------------------
    async def hold_music(self, request: web.Request) -> web.StreamResponse:
        """The hub's hold music (public, like any audio a caller hears)."""
        return web.FileResponse(HOLD_MUSIC_FILE, headers={"Content-Type": "audio/wav", "Cache-Control": "public, max-age=86400"})


async def _record_callback(hub: Any, call: CallForm, text: str) -> None:
    """The callback request as the caller's message in their conversation (the agent sees it at once)."""
    await hub.receive_inbound(InboundEvent(
        channel=CHANNEL, customer_address=call.from_, our_address=call.to, text=f"[Callback requested] {text}",
        thread_key=call.call_sid, provider_id=f"{call.call_sid}:callback", wake=True,
        metadata={"callback": {"number": call.from_}},
    ))


def _twiml(response: VoiceResponse) -> web.Response:
    return web.Response(text=str(response), content_type="text/xml")


def _int(raw: str | None, *, default: int = 0) -> int:
    """A small non-negative number from the query (what we wrote there ourselves; nonsense reads as the default)."""
    if raw is None or not raw.isdigit() or len(raw) > 12:
        return default
    return int(raw)


def _as_date(value: Any) -> date | None:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value if isinstance(value, date) else None


def add_voice_routes(
    app: web.Application,
    config: TwilioConfig,
    hub: Callable[[], Any],
    adapter: VoiceAdapter,
    *,
    receipts: WebhookReceipts,
    db: Callable[[], Any] | None = None,
    today: Callable[[], date] = date.today,
) -> None:
    """Mount the voice webhooks (``/webhooks/twilio/voice``, ``.../gather``, ``.../wait``, ``.../status``,
    ``.../conference``, ``.../fallback``) and the hold music on ``app``.

    :param hub: the core (``HubService``: ``receive_inbound``, ``settled``, ``contact_state``, ``request_agent``,
        ``contact_ended``, ``call_status``, ``delivery_update``), found when a webhook arrives.
    :param adapter: the :class:`VoiceAdapter` registered for the ``phone`` channel (it keeps what the core says).
    :param receipts: the webhook receipts (SQL's in the hub): status callbacks handled once.
    :param db: the database for the caller's orders and the catalogue's hints (default: ``hub().db``).
    :param today: the shop's date (an order "should arrive tomorrow").
    """
    hooks = _Webhooks(config, hub, adapter, receipts, db, today)
    app.router.add_post(VOICE_PATH, hooks.voice)
    app.router.add_post(GATHER_PATH, hooks.gather)
    app.router.add_post(WAIT_PATH, hooks.wait)
    app.router.add_post(STATUS_PATH, hooks.status)
    app.router.add_post(CONFERENCE_PATH, hooks.conference)
    app.router.add_post(FALLBACK_PATH, hooks.fallback)
    app.router.add_post(RECORDING_PATH, hooks.recording)
    app.router.add_get(HOLD_MUSIC_PATH, hooks.hold_music)

    async def _close(_: web.Application) -> None:
        # the turns still running and the background work (delivery marks, fallback records) end with the app,
        # awaited: a task cancelled but left running would still be inside the database when it is closed
        tasks = [*hooks._pending.values(), *hooks._background]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    app.on_cleanup.append(_close)
