"""The Twilio stand-in's voice engine: calls, TwiML execution, conferences, queues and their callbacks.

It plays Twilio's part of a phone call against the hub, on Twilio's wire protocol:

* **A call comes in** (:meth:`VoiceEngine.incoming_call`, from ``/dev/phone`` or a test): Twilio's
  "A call comes in" webhook is posted, signed, to the number's voice URL (the hub's
  ``/webhooks/twilio/voice``), and the TwiML it answers is executed verb by verb: ``<Say>`` (kept in the
  call's transcript, which ``/dev/phone`` shows and speaks), ``<Play>``, ``<Pause>``, ``<Gather>`` (waits
  for the caller's digits or typed speech, then posts its action with ``Digits``/``FinishedOnKey`` or
  ``SpeechResult``/``Confidence``), ``<Redirect>``, ``<Hangup>``, ``<Reject>``, ``<Record>`` (minimal),
  ``<Dial>`` with ``<Conference>``, ``<Client>``, ``<Number>`` or ``<Queue>``, ``<Enqueue>`` and ``<Leave>``.
* TwiML Twilio would refuse (see :mod:`.twiml`), a webhook that fails (11200, 11205), a wrong content
  type (12300) are **application errors**: recorded with Twilio's code (:attr:`VoiceEngine.errors`),
  then the number's fallback URL is posted (``ErrorCode``, ``ErrorUrl``) and its TwiML run; when there is
  none, or it fails too, the caller hears "We are sorry, an application error has occurred. Goodbye."
  and the call ends.
* **Status callbacks** in Twilio's order, signed, with ``SequenceNumber`` and ``Timestamp``, each once:
  for an incoming call, ``completed`` to the number's status callback URL (the only event Twilio sends
  there); for calls and participants the REST API creates, the ``StatusCallbackEvent`` asked for
  (``initiated``, ``ringing``, ``answered`` — sent as ``CallStatus=in-progress`` — and ``completed``).
* **Conferences** keep their participants (muted, on hold with music, coaching), start when a
  participant with ``startConferenceOnEnter`` joins, end when one with ``endConferenceOnExit`` leaves or
  the last one does, and post their status callbacks (``participant-join``, ``participant-leave``,
  ``participant-hold``, ``participant-mute``, ``participant-modify``, ``conference-start``,
  ``conference-end``...) to the URL the first participant brought.
* **Client legs** (``client:<identity>``, the console's agent legs) ring until answered or declined
  through the dev API (:meth:`answer`, :meth:`hang_up`), or time out. Legs to phone numbers ring the
  dev phone, or follow :attr:`VoiceEngine.phones` (``answer``, ``busy``, ``no-answer``, ``failed``).

Durations are Twilio's seconds times :attr:`VoiceEngine.time_scale` (tests run at a fraction of real time).
The REST resources (Calls, Conferences, Participants) are served by :mod:`.voice_api`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from integrations.standins import twilio_wire as wire
from integrations.standins import voice_wire as vw
from integrations.standins.twiml import (
    ERROR_WORDS,
    MAX_DOCUMENT_BYTES,
    QUEUE_WAIT_VERBS,
    WAIT_VERBS,
    Node,
    TwiMLError,
    Unsupported,
    check_wait,
    parse,
)

if TYPE_CHECKING:  # pragma: no cover
    from integrations.standins.twilio import TwilioStandin

log = logging.getLogger(__name__)
T = TypeVar("T")

VOICE_PATH = "/webhooks/twilio/voice"
VOICE_STATUS_PATH = "/webhooks/twilio/voice/status"
VOICE_FALLBACK_PATH = "/webhooks/twilio/voice/fallback"
KEYS = "0123456789*#"
PHONE_BEHAVIOURS = ("manual", "answer", "busy", "no-answer", "failed", "machine")  # machine: a voicemail answers
_TWIML_TYPES = ("text/xml", "application/xml", "text/html")
_QUEUE_WAIT = QUEUE_WAIT_VERBS - {"Gather"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class VoiceStateError(Exception):
    """A request that the call's or the leg's state does not allow (unknown call, not ringing...)."""


class _AppError(Exception):
    """A fault that makes Twilio play its application error: the code, what was wrong, the URL involved."""

    def __init__(self, code: int | None, detail: str, url: str) -> None:
        super().__init__(detail)
        self.code, self.detail, self.url = code, detail, url


@dataclass
class TranscriptEntry:
    """One line of what happened on a call, as ``/dev/phone`` shows it.

    ``kind``: ``say`` (words the caller hears: the page speaks them), ``play`` (audio or tones),
    ``you`` (what the caller pressed or said), ``note`` (what happened), ``error`` (an application error).
    """

    id: int
    kind: str
    text: str
    at: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text, "at": self.at}


@dataclass(frozen=True)
class VoiceError:
    """An application error on a call: Twilio's code and words, what exactly, and the URL involved."""

    call_sid: str
    code: int | None
    words: str
    detail: str
    url: str
    at: str

    def wire(self) -> dict[str, Any]:
        return {"call_sid": self.call_sid, "code": self.code, "words": self.words, "detail": self.detail,
                "url": self.url, "at": self.at}


@dataclass(frozen=True)
class VoiceRequest:
    """A request the stand-in made for a call or a conference (tests and fixtures read these).

    ``kind``: ``voice`` (the number's voice URL), ``action`` (Gather/Dial/Record/Enqueue action),
    ``redirect``, ``fallback``, ``status`` (call progress), ``conference`` (conference status),
    ``wait`` / ``hold`` / ``announce`` (music and announcement TwiML), ``update`` (a REST update's Url).
    """

    kind: str
    method: str
    url: str
    form: dict[str, str]
    signature: str
    hub_status: int | None
    call_sid: str | None = None
    conference_sid: str | None = None


@dataclass(frozen=True)
class Listening:
    """What the call is waiting for: a ``<Gather>`` (``dtmf`` and/or ``speech``) or a ``<Record>``."""

    kind: str
    inputs: frozenset[str]
    hints: tuple[str, ...] = ()
    finish_on_key: str = "#"
    num_digits: int | None = None
    language: str = "en-US"

    def wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "input": sorted(self.inputs), "hints": list(self.hints),
                "finish_on_key": self.finish_on_key, "num_digits": self.num_digits, "language": self.language}


@dataclass
class Source:
    """Where a call's next TwiML comes from: a URL (with the extra parameters of that request) or inline TwiML."""

    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    kind: str = "voice"


@dataclass(frozen=True)
class Stop:
    """The TwiML ended the call (``<Hangup>``: completed; ``<Reject>``: busy)."""

    status: str = "completed"


class _Outbox:
    """Callbacks of one call or conference, posted one after another in the order they happened."""

    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine
        self.items: deque[tuple[str, str, str, dict[str, str], str | None, str | None]] = deque()
        self.running = False

    def put(self, kind: str, method: str, url: str, form: dict[str, str], call_sid: str | None,
            conference_sid: str | None = None) -> None:
        self.items.append((kind, method, url, form, call_sid, conference_sid))
        if not self.running:
            self.running = True
            self.engine.standin._spawn(self._work())

    async def _work(self) -> None:
        try:
            while self.items:
                kind, method, url, form, call_sid, conference_sid = self.items.popleft()
                await self.engine._request(kind, method, url, form, call_sid=call_sid, conference_sid=conference_sid)
        finally:
            self.running = False


class Call:
    """One call leg, with Twilio's state and what the stand-in needs to play it."""

    def __init__(self, engine: VoiceEngine, *, from_: str, to: str, direction: str, status: str,
                 parent_call_sid: str | None = None) -> None:
        now = _now()
        self.sid = wire.new_sid("CA")
        self.account_sid = engine.standin.account_sid
        self.from_, self.to, self.direction, self.status = from_, to, direction, status
        self.parent_call_sid = parent_call_sid
        self.phone_number_sid: str | None = None
        self.created = self.updated = now
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.status_callback: str | None = None
        self.status_callback_method = "POST"
        self.status_events: frozenset[str] = frozenset({"completed"})
        self.fallback_url: str | None = None
        self.fallback_method = "POST"
        self.timeout = 60
        self.time_limit = 14400
        self.source: Source | None = None  # what runs once an outbound leg is answered
        self.machine_detection: str | None = None  # Calls create's MachineDetection (Enable / DetectMessageEnd)
        self.answered_by: str | None = None  # what answering machine detection found (human, machine_start...)
        self.call_token: str | None = None
        self.sequence = 0
        self.transcript: list[TranscriptEntry] = []
        self.errors: list[VoiceError] = []
        self.listening: Listening | None = None
        self.inputs: asyncio.Queue[tuple[str, str, float]] | None = None
        self.input_arrived = asyncio.Event()
        self.star = asyncio.Event()
        self.hangup_on_star = False
        self.ended = asyncio.Event()
        self.redirected = asyncio.Event()  # set when a REST update takes the call's TwiML elsewhere
        self.redirects = 0
        self.pickup: asyncio.Future[str] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.leave_reason: str | None = None
        self.participant: Participant | None = None
        self.bridge: Call | None = None
        self.queue: CallQueue | None = None
        self.dequeue: asyncio.Future[Call] | None = None
        self.documents = 0
        self.outbox = _Outbox(engine)

    @property
    def over(self) -> bool:
        return self.status in vw.TERMINAL

    @property
    def duration(self) -> int | None:
        if self.end_time is None:
            return None
        if self.start_time is None:
            return 0
        return max(int(round((self.end_time - self.start_time).total_seconds())), 0)


class Participant:
    """A call in a conference (or on its way there, when the REST API dialled it)."""

    def __init__(self, call: Call, conference: Conference, options: dict[str, Any], via_dial: bool) -> None:
        now = _now()
        self.call, self.conference, self.via_dial = call, conference, via_dial
        self.label: str | None = options.get("label")
        self.muted: bool = options.get("muted", False)
        self.hold: bool = options.get("hold", False)
        self.hold_url: str | None = options.get("hold_url")
        self.hold_method: str = options.get("hold_method", "GET")
        self.coaching: bool = options.get("coaching", False)
        self.call_sid_to_coach: str | None = options.get("call_sid_to_coach")
        self.start_conference_on_enter: bool = options.get("start_conference_on_enter", True)
        self.end_conference_on_exit: bool = options.get("end_conference_on_exit", False)
        self.beep: str = options.get("beep", "true")
        self.wait_url: str | None = options.get("wait_url")
        self.wait_method: str = options.get("wait_method", "POST")
        self.status = "queued"
        self.created = self.updated = now
        self.left = asyncio.Event()
        self.audio_mode: str | None = None
        self.audio_task: asyncio.Task[Any] | None = None

    @property
    def call_sid(self) -> str:
        return self.call.sid

    def view(self) -> dict[str, Any]:
        return {"call_sid": self.call_sid, "label": self.label, "muted": self.muted, "hold": self.hold,
                "coaching": self.coaching, "call_sid_to_coach": self.call_sid_to_coach,
                "start_conference_on_enter": self.start_conference_on_enter,
                "end_conference_on_exit": self.end_conference_on_exit}


async def _read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes of a body (one ``read(n)`` gives what has arrived so far, maybe fewer than ``n``)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class Conference:
    """A conference room: its participants, Twilio's status (``init``, ``in-progress``, ``completed``)."""

    def __init__(self, engine: VoiceEngine, friendly_name: str, callback: tuple[str | None, str, frozenset[str]]) -> None:
        now = _now()
        self.sid = wire.new_sid("CF")
        self.account_sid = engine.standin.account_sid
        self.friendly_name = friendly_name
        self.status = "init"
        self.created = self.updated = now
        self.participants: dict[str, Participant] = {}
        self.pending: dict[str, Participant] = {}  # dialled by the REST API, not yet answered
        self.status_callback, self.status_callback_method, self.events = callback
        self.sequence = 0
        self.started = False
        self.reason_ended: str | None = None
        self.call_sid_ending: str | None = None
        self.outbox = _Outbox(engine)
        # record-from-start (the first participant's <Conference record> or Participants create ConferenceRecord),
        # and where its recording's status callbacks go (url, method, events)
        self.record = False
        self.recording_callback: tuple[str | None, str, frozenset[str]] = (None, "POST", frozenset({"completed"}))
        self.recordings: list[ConferenceRecording] = []

    def find(self, key: str) -> Participant | None:
        """A participant by its call's SID or its label."""
        everyone = [*self.participants.values(), *self.pending.values()]
        return next((p for p in everyone if key in (p.call_sid, p.label)), None)


class ConferenceRecording:
    """A conference's recording: Twilio's states (``in-progress``, ``paused``, ``stopped``, ``completed``,
    ``absent``) and its length in Twilio seconds (paused time left out with ``PauseBehavior=skip``)."""

    def __init__(self, engine: VoiceEngine, conference: Conference) -> None:
        self.engine, self.conference = engine, conference
        self.sid = wire.new_sid("RE")
        self.account_sid = conference.account_sid
        self.status = "in-progress"
        self.created = self.updated = self.start_time = _now()
        self.started = time.monotonic()
        self.paused_at: float | None = None
        self.pause_behavior = "silence"
        self.skipped = 0.0  # real seconds paused with PauseBehavior=skip
        self.ended: float | None = None
        self.pauses: list[str] = []  # "paused:skip", "in-progress": what the REST API asked, in order

    @property
    def live(self) -> bool:
        return self.status in ("in-progress", "paused")

    @property
    def duration(self) -> int:
        """Twilio seconds of audio in the file (so far)."""
        end = self.ended if self.ended is not None else time.monotonic()
        skipped = self.skipped + (end - self.paused_at if self.paused_at is not None and self.pause_behavior == "skip" else 0.0)
        return max(int((end - self.started - skipped) / max(self.engine.time_scale, 1e-9)), 0)

    @property
    def url(self) -> str:
        return f"{self.engine.standin.api_base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{self.sid}"


class CallQueue:
    """An ``<Enqueue>`` queue: the calls waiting in it, oldest first."""

    def __init__(self, name: str, max_size: int) -> None:
        self.sid = wire.new_sid("QU")
        self.name, self.max_size = name, max_size
        self.members: list[Call] = []
        self.arrival = asyncio.Event()
        self.entered: dict[str, float] = {}


class VoiceEngine:
    """The voice side of one stand-in account.

    :param time_scale: the stand-in's seconds per Twilio second (``<Pause>``, timeouts, ringing, speech).
    :param speech_rate: characters of ``<Say>`` spoken per (Twilio) second.
    :param play_seconds: how long one ``<Play>`` of a URL lasts (the audio is never fetched).
    :param ring_seconds: how long a phone with the ``answer`` behaviour rings before it answers.
    """

    def __init__(self, standin: TwilioStandin, *, time_scale: float = 1.0, speech_rate: float = 15.0,
                 play_seconds: float = 5.0, ring_seconds: float = 2.0) -> None:
        self.standin = standin
        self.time_scale = time_scale
        self.speech_rate = speech_rate
        self.play_seconds = play_seconds
        self.ring_seconds = ring_seconds
        self.calls: dict[str, Call] = {}
        self.conferences: dict[str, Conference] = {}
        self.queues: dict[str, CallQueue] = {}
        self.errors: list[VoiceError] = []
        self.requests: list[VoiceRequest] = []
        self.recordings: dict[str, dict[str, Any]] = {}
        self.phones: dict[str, str] = {}  # a number's behaviour when called (default: ``manual``, the dev phone)
        self.calls_per_second: float | None = None  # Calls create over this rate is refused 429/20429 (None: no limit)
        self.call_creates: deque[float] = deque()
        self.cps_refused = 0
        self.numbers: dict[str, dict[str, str]] = {}  # per shop number: voice_url, voice_method, fallback_url, status_callback
        self.max_documents = 500  # the stand-in's own guard against a TwiML loop that never waits (not Twilio's)
        self.version = 0
        self._tick = asyncio.Event()
        self._programs: set[asyncio.Task[Any]] = set()
        self._entry_ids = 0

    # --- configuration ------------------------------------------------------------------------------

    @property
    def voice_numbers(self) -> tuple[str, ...]:
        """The account's numbers that take calls (its SMS numbers; WhatsApp senders take none)."""
        return tuple(n for n in self.standin.numbers if not wire.is_whatsapp(n))

    def number_settings(self, number: str) -> dict[str, str]:
        """A shop number's voice URL, method, fallback URL and status callback (the hub's paths unless set)."""
        base = self.standin.webhook_base_url
        return {"voice_url": base + VOICE_PATH, "voice_method": "POST", "fallback_url": base + VOICE_FALLBACK_PATH,
                "fallback_method": "POST", "status_callback": base + VOICE_STATUS_PATH, "status_callback_method": "POST",
                **self.numbers.get(number, {})}

    # --- bookkeeping --------------------------------------------------------------------------------

    def _bump(self) -> None:
        self.version += 1
        self.standin.version += 1
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (checked at every change of any call, and every 50 ms); its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the stand-in's calls never got there")
            try:
                async with asyncio.timeout(min(left, 0.05)):  # not wait_for: it may lose a cancellation (3.11)
                    await self._tick.wait()
            except TimeoutError:
                pass

    def _note(self, call: Call, kind: str, text: str) -> None:
        self._entry_ids += 1
        call.transcript.append(TranscriptEntry(self._entry_ids, kind, text, _now().isoformat(timespec="seconds")))
        self._bump()

    def _error(self, call: Call, code: int | None, detail: str, url: str) -> VoiceError:
        error = VoiceError(call.sid, code, ERROR_WORDS.get(code or 0, ""), detail, url, _now().isoformat(timespec="seconds"))
        call.errors.append(error)
        self.errors.append(error)
        log.warning("stand-in voice application error", extra={"call_sid": call.sid, "code": code, "detail": detail})
        self._note(call, "error", f"application error {code or ''} {error.words}: {detail}".replace("  ", " "))
        return error

    def _start(self, call: Call | None, work: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._programs.add(task)
        task.add_done_callback(self._finished)
        if call is not None:
            call.task = task
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._programs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stand-in voice task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop every call's program (the calls stay as they are)."""
        tasks = list(self._programs)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _new_call(self, *, from_: str, to: str, direction: str, status: str, parent: Call | None = None) -> Call:
        call = Call(self, from_=from_, to=to, direction=direction, status=status,
                    parent_call_sid=parent.sid if parent else None)
        self.calls[call.sid] = call
        self._bump()
        return call

    def call(self, call_sid: str) -> Call:
        """A call by its SID (:class:`VoiceStateError` if there is none)."""
        found = self.calls.get(call_sid)
        if found is None:
            raise VoiceStateError(f"no call {call_sid}")
        return found

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0) * self.time_scale)

    async def _wait(self, seconds: float, interrupt: asyncio.Event | None = None) -> bool:
        """Let ``seconds`` (Twilio's) pass; True if ``interrupt`` was set first."""
        if interrupt is None:
            await self._sleep(seconds)
            return False
        if interrupt.is_set():
            return True
        try:
            async with asyncio.timeout(max(seconds, 0) * self.time_scale):
                await interrupt.wait()
            return True
        except TimeoutError:
            return False

    # --- HTTP ---------------------------------------------------------------------------------------

    async def _request(
        self, kind: str, method: str, url: str, form: dict[str, str], *, call_sid: str | None = None,
        conference_sid: str | None = None,
    ) -> tuple[int | None, str, str, bytes]:
        """A request the way Twilio makes it (signed; GET puts the form in the query): status, type, final URL, body."""
        method = method.upper()
        if method == "GET":
            target = url + ("&" if "?" in url else "?") + urlencode(form)
            signature = self.standin.sign(target, {})
        else:
            target = url
            signature = self.standin.sign(url, form)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1",
                   "I-Twilio-Idempotency-Token": wire.new_sid("ID")[2:]}
        status: int | None = None
        content_type, final_url, body = "", target, b""
        try:
            async with self.standin._session().request(method, target, data=form if method == "POST" else None,
                                                       headers=headers, max_redirects=10) as resp:
                status = resp.status
                content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                final_url = str(resp.url)
                if not content_type.startswith("audio/"):  # audio is played, never read (whatever its size)
                    body = await _read_at_most(resp.content, MAX_DOCUMENT_BYTES + 1)
        except aiohttp.TooManyRedirects:
            status, content_type = -11215, ""
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("stand-in voice request failed", extra={"url": url, "error": type(exc).__name__})
            status = None
        shown = status if status is None or status > 0 else None
        self.requests.append(VoiceRequest(kind, method, target, dict(form), signature, shown, call_sid, conference_sid))
        from integrations.standins.twilio import CallbackRecord

        self.standin.callbacks.append(CallbackRecord(target, dict(form), signature, shown))
        return status, content_type, final_url, body

    def _fetchable(self, url: str) -> bool:
        """Whether the stand-in fetches this URL's TwiML (the hub's and local ones; never the internet)."""
        if url.startswith((self.standin.webhook_base_url, self.standin.api_base_url)):
            return True
        host = urlsplit(url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def _call_form(self, call: Call, extra: dict[str, str] | None = None, *, first: bool = False) -> dict[str, str]:
        if call.answered_by:  # Twilio adds AnsweredBy to the answered call's webhook when detection ran
            extra = {**(extra or {}), "AnsweredBy": call.answered_by}
        return vw.call_form(account_sid=call.account_sid, call_sid=call.sid, from_=call.from_, to=call.to,
                            status=call.status, direction=call.direction, parent_call_sid=call.parent_call_sid,
                            call_token=call.call_token if first else None, extra=extra)

    def _resolve(self, base: str | None, url: str) -> str:
        return urljoin(base or self.standin.webhook_base_url + "/", url.strip())

    async def _load(self, call: Call, source: Source) -> tuple[list[Node], str]:
        """The TwiML of ``source``: fetched (as Twilio fetches) and read; :class:`_AppError` when Twilio would fail."""
        call.documents += 1
        if call.documents > self.max_documents:
            raise _AppError(None, f"more than {self.max_documents} TwiML documents in one call (the stand-in's loop guard)",
                            source.url or "")
        if source.twiml is not None:
            url = source.url or self.standin.webhook_base_url + "/"
            try:
                return parse(source.twiml), url
            except TwiMLError as exc:
                raise _AppError(exc.code, exc.detail, "(inline Twiml)") from None
        assert source.url is not None
        first = call.documents == 1 and call.direction == "inbound"
        form = self._call_form(call, source.extra, first=first)
        return await self._fetch_twiml(call, source.kind, source.method, source.url, form)

    async def _fetch_twiml(self, call: Call, kind: str, method: str, url: str, form: dict[str, str]) -> tuple[list[Node], str]:
        status, content_type, final_url, body = await self._request(kind, method, url, form, call_sid=call.sid)
        if status == -11215:
            raise _AppError(11215, "more than 10 HTTP redirects", url)
        if status is None:
            raise _AppError(11205, "the URL could not be reached (or did not answer within 15 s)", url)
        if not 200 <= status < 300:
            raise _AppError(11200, f"the URL answered HTTP {status}", url)
        if content_type.startswith("audio/"):  # played as it is (never more than read here)
            # the URL as given (a GET carries the call's parameters in its query: not part of what is played)
            played = url if urlsplit(final_url)[:3] == urlsplit(url)[:3] else final_url
            return [Node("Play", {}, played)], played
        if len(body) > MAX_DOCUMENT_BYTES:
            raise _AppError(11750, f"the answer is over {MAX_DOCUMENT_BYTES} bytes", url)
        if content_type == "text/plain":
            words = " ".join(body.decode("utf-8", "replace").split())
            return [Node("Say", {}, words, (), words)], final_url
        if content_type not in _TWIML_TYPES:
            raise _AppError(12300, f"the answer's Content-Type is {content_type or 'missing'!r}", url)
        try:
            return parse(body), final_url
        except TwiMLError as exc:
            raise _AppError(exc.code, exc.detail, url) from None

    # --- call state ---------------------------------------------------------------------------------

    def _status_event(self, call: Call, event: str) -> None:
        """Queue a call progress callback, if the call's callback subscribes to ``event``."""
        if not call.status_callback or event not in call.status_events:
            return
        status = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}.get(event, call.status)
        extra = vw.progress_fields(sequence=call.sequence, now=_now(), duration=call.duration if event == "completed" else None)
        if call.answered_by and event in ("answered", "completed"):
            extra["AnsweredBy"] = call.answered_by
        call.sequence += 1
        form = vw.call_form(account_sid=call.account_sid, call_sid=call.sid, from_=call.from_, to=call.to,
                            status=status, direction=call.direction, parent_call_sid=call.parent_call_sid, extra=extra)
        call.outbox.put("status", call.status_callback_method, call.status_callback, form, call.sid)

    def _answer(self, call: Call) -> None:
        if call.status == "in-progress" or call.over:
            return
        call.status = "in-progress"
        call.start_time = call.updated = _now()
        self._status_event(call, "answered")
        self._bump()

    def _end(self, call: Call, status: str, *, leave_reason: str = "participant_hung_up", note: str | None = None) -> None:
        """The call is over (``completed``, ``busy``, ``no-answer``, ``failed``, ``canceled``): once."""
        if call.over:
            return
        call.status = status
        call.end_time = call.updated = _now()
        call.listening = None
        call.ended.set()
        if call.pickup is not None and not call.pickup.done():
            call.pickup.set_result(status)
        if call.participant is not None:
            self._leave(call.participant, leave_reason)
        for pending in [p for c in self.conferences.values() for p in c.pending.values() if p.call is call]:
            pending.conference.pending.pop(call.sid, None)
        if call.queue is not None and call in call.queue.members:
            call.queue.members.remove(call)
        self._status_event(call, "completed")
        self._note(call, "note", note or f"call {status}")
        task = call.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    # --- incoming calls -----------------------------------------------------------------------------

    def incoming_call(self, from_: str, to: str) -> Call:
        """A phone calls one of the shop's numbers: Twilio's webhook goes to the number's voice URL."""
        if to not in self.voice_numbers:
            raise VoiceStateError(f"{to} is not one of the stand-in's voice numbers {self.voice_numbers}")
        if not wire.valid_number(from_):
            raise VoiceStateError(f"{from_!r} is not a phone number in international form (+...)")
        settings = self.number_settings(to)
        call = self._new_call(from_=from_, to=to, direction="inbound", status="ringing")
        call.phone_number_sid = "PN" + secrets.token_hex(16)
        call.call_token = json.dumps({"parentCallInfoToken": secrets.token_urlsafe(48), "identityHeaderTokens": []},
                                     separators=(",", ":"))
        call.status_callback, call.status_callback_method = settings["status_callback"], settings["status_callback_method"]
        call.status_events = frozenset({"completed"})  # all Twilio sends to a number's status callback
        call.fallback_url, call.fallback_method = settings["fallback_url"] or None, settings["fallback_method"]
        self._note(call, "note", f"calling {to}")
        self._start(call, self._program(call, Source(settings["voice_url"], settings["voice_method"], kind="voice")))
        return call

    # --- running TwiML ------------------------------------------------------------------------------

    async def _program(self, call: Call, source: Source | None) -> None:
        """Fetch and execute TwiML until the call ends (the document running out ends it, as on Twilio)."""
        fallback_used = False
        try:
            while source is not None and not call.over:
                outcome: Source | Stop | None
                try:
                    verbs, doc_url = await self._load(call, source)
                    outcome = await self._run(call, verbs, doc_url)
                except _AppError as err:
                    self._error(call, err.code, err.detail, err.url)
                    if call.fallback_url and not fallback_used and not call.over:
                        fallback_used = True
                        source = Source(call.fallback_url, call.fallback_method, kind="fallback",
                                        extra={"ErrorCode": str(err.code or ""), "ErrorUrl": err.url})
                        continue
                    if not call.over:
                        self._answer(call)
                        self._note(call, "say", vw.APPLICATION_ERROR_WORDS)
                        await self._wait(len(vw.APPLICATION_ERROR_WORDS) / self.speech_rate)
                    outcome = Stop("completed")
                if isinstance(outcome, Stop):
                    self._end(call, outcome.status)
                source = outcome if isinstance(outcome, Source) else None
            if not call.over:
                self._end(call, "completed", note="the TwiML ran out: Twilio hangs up")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stand-in voice program failed", extra={"call_sid": call.sid})
            self._end(call, "failed")

    async def _run(self, call: Call, verbs: list[Node], doc_url: str) -> Source | Stop | None:
        for verb in verbs:
            if call.over:
                return None
            if verb.tag not in ("Pause", "Reject"):
                self._answer(call)
            handler: Callable[[Call, Node, str], Awaitable[Source | Stop | None]] = getattr(self, "_verb_" + verb.tag.lower())
            outcome = await handler(call, verb, doc_url)
            if outcome is not None:
                return outcome
        return None

    async def _verb_say(self, call: Call, verb: Node, doc_url: str, interrupt: asyncio.Event | None = None) -> None:
        loops = verb.number("loop", 1)
        self._note(call, "say", verb.spoken if loops == 1 else f"{verb.spoken} (×{loops or 'many'})")
        await self._wait(len(verb.spoken) / self.speech_rate * (loops or 1000), interrupt)

    async def _verb_play(self, call: Call, verb: Node, doc_url: str, interrupt: asyncio.Event | None = None) -> None:
        digits = verb.get("digits")
        if digits:
            self._note(call, "play", f"tones {digits}")
            if await self._wait(0.2 * len(digits), interrupt):
                return
        if verb.text:
            loops = verb.number("loop", 1)
            self._note(call, "play", f"♪ {self._resolve(doc_url, verb.text)}" + ("" if loops == 1 else f" (×{loops or 'many'})"))
            await self._wait(self.play_seconds * (loops or 1000), interrupt)

    async def _verb_pause(self, call: Call, verb: Node, doc_url: str, interrupt: asyncio.Event | None = None) -> None:
        await self._wait(verb.number("length", 1), interrupt)

    async def _verb_redirect(self, call: Call, verb: Node, doc_url: str) -> Source:
        return Source(self._resolve(doc_url, verb.text), (verb.get("method") or "POST").upper(), kind="redirect")

    async def _verb_hangup(self, call: Call, verb: Node, doc_url: str) -> Stop:
        return Stop("completed")

    async def _verb_reject(self, call: Call, verb: Node, doc_url: str) -> Stop | None:
        if call.status == "in-progress":
            return None  # only a call not yet answered can be rejected
        self._note(call, "note", f"rejected ({verb.get('reason') or 'rejected'})")
        return Stop("busy")

    async def _verb_leave(self, call: Call, verb: Node, doc_url: str) -> None:
        return None  # outside an <Enqueue>'s wait music, <Leave> does nothing

    def _listen(self, call: Call, listening: Listening) -> asyncio.Queue[tuple[str, str, float]]:
        queue: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()
        call.inputs, call.listening, call.input_arrived = queue, listening, asyncio.Event()
        self._bump()
        return queue

    def _stop_listening(self, call: Call) -> None:
        call.inputs, call.listening = None, None
        self._bump()

    async def _verb_gather(self, call: Call, verb: Node, doc_url: str) -> Source | None:
        kinds = frozenset((verb.get("input") or "dtmf").split())
        finish = verb.get("finishOnKey", "#") or ""
        num_digits = verb.number("numDigits", 0) or None
        timeout = verb.number("timeout", 5)
        language = verb.get("language") or "en-US"
        hints = tuple(h.strip() for h in (verb.get("hints") or "").split(",") if h.strip())
        queue = self._listen(call, Listening("gather", kinds, hints, finish, num_digits, language))
        digits, finished, speech = "", "", None
        try:
            barge = call.input_arrived if verb.flag("bargeIn", True) else None
            for child in verb.children:
                player = getattr(self, "_verb_" + child.tag.lower())
                await player(call, child, doc_url, barge)
                if barge is not None and barge.is_set():
                    break
            while True:
                try:
                    kind, value, confidence = await asyncio.wait_for(queue.get(), timeout * self.time_scale)
                except asyncio.TimeoutError:
                    break
                if kind == "speech":
                    speech = (value, confidence)
                    break
                done = False
                for key in value:
                    if finish and key == finish:
                        finished, done = key, True
                        break
                    digits += key
                    if num_digits and len(digits) >= num_digits:
                        done = True
                        break
                if done:
                    break
        finally:
            self._stop_listening(call)
        action = self._resolve(doc_url, verb.get("action") or doc_url)
        method = (verb.get("method") or "POST").upper()
        if speech is not None:
            extra = {"Confidence": str(round(speech[1], 8)), "Language": language, "SpeechResult": speech[0],
                     "msg": "Gather End"}
        elif digits:
            extra = {"Digits": digits, "FinishedOnKey": finished, "msg": "Gather End"}
        elif verb.flag("actionOnEmptyResult"):
            extra = {"msg": "Gather End"}
            self._note(call, "note", "no input: the <Gather> posts its action anyway (actionOnEmptyResult)")
        else:
            self._note(call, "note", "no input: on to the next verb")
            return None
        return Source(action, method, extra=extra, kind="action")

    async def _verb_record(self, call: Call, verb: Node, doc_url: str) -> Source | None:
        finish = verb.get("finishOnKey", "1234567890*#") or ""
        timeout = verb.number("timeout", 5)
        max_length = verb.number("maxLength", 3600)
        if verb.flag("playBeep", True):
            self._note(call, "play", "beep")
        queue = self._listen(call, Listening("record", frozenset({"dtmf", "speech"}), (), finish, None))
        spoken: list[str] = []
        key = ""
        started = time.monotonic()
        try:
            while True:
                left = max_length * self.time_scale - (time.monotonic() - started)
                wait = min(timeout * self.time_scale, left) if timeout > 0 else left
                if wait <= 0:
                    break
                try:
                    kind, value, _confidence = await asyncio.wait_for(queue.get(), wait)
                except asyncio.TimeoutError:
                    break
                if kind == "speech":
                    spoken.append(value)
                    continue
                hit = next((k for k in value if k in finish), "")
                if hit:
                    key = hit
                    break
        finally:
            self._stop_listening(call)
        if not spoken:
            self._note(call, "note", "nothing was recorded: on to the next verb")
            return None
        sid = wire.new_sid("RE")
        text = " ".join(spoken)
        duration = max(1, round(len(text.split()) / 2.5))
        url = f"{self.standin.api_base_url}/{wire.API_VERSION}/Accounts/{call.account_sid}/Recordings/{sid}"
        self.recordings[sid] = {"sid": sid, "call_sid": call.sid, "text": text, "duration": duration}
        self._note(call, "note", f"recorded {duration} s")
        extra = {"RecordingDuration": str(duration), "RecordingSid": sid, "RecordingUrl": url}
        if key:
            extra["Digits"] = key
        action = self._resolve(doc_url, verb.get("action") or doc_url)
        return Source(action, (verb.get("method") or "POST").upper(), extra=extra, kind="action")

    # --- Dial -----------------------------------------------------------------------------------------

    async def _verb_dial(self, call: Call, verb: Node, doc_url: str) -> Source | Stop | None:
        if call.direction == "outbound-dial":
            raise _AppError(13201, "a leg that <Dial> made cannot <Dial> itself", doc_url)
        nouns = list(verb.children) or [Node("Number", {}, verb.text)]
        call.hangup_on_star = verb.flag("hangupOnStar")
        call.star = asyncio.Event()
        call.time_limit = verb.number("timeLimit", 14400)
        try:
            if nouns[0].tag == "Conference":
                extra = await self._dial_conference(call, nouns[0], doc_url)
            elif nouns[0].tag == "Queue":
                extra = await self._dial_queue(call, nouns[0], verb.number("timeout", 30))
            else:
                extra = await self._dial_legs(call, nouns, verb)
        finally:
            call.hangup_on_star = False
        if call.over:
            return None
        action = verb.get("action")
        if action:
            return Source(self._resolve(doc_url, action), (verb.get("method") or "POST").upper(), extra=extra, kind="action")
        return None

    def _conference_named(self, name: str, callback: tuple[str | None, str, frozenset[str]],
                          recording: tuple[bool, str | None, str, frozenset[str]] | None = None) -> Conference:
        """The live conference of that name, or a new one (whose status callback and recording, ``(record, url,
        method, events)``, are the first participant's; a later participant's are ignored, as on Twilio)."""
        for conference in self.conferences.values():
            if conference.friendly_name == name and conference.status != "completed":
                return conference
        conference = Conference(self, name, callback)
        if recording is not None:
            conference.record = recording[0]
            conference.recording_callback = recording[1:]
        self.conferences[conference.sid] = conference
        return conference

    # --- conference recordings ------------------------------------------------------------------------

    def _recording_event(self, recording: ConferenceRecording, status: str) -> None:
        """The recording status callback (``RecordingStatus``), when its URL asked for that event."""
        url, method, events = recording.conference.recording_callback
        if not url or status not in events:
            return
        form = {
            "AccountSid": recording.account_sid, "ConferenceSid": recording.conference.sid, "RecordingSid": recording.sid,
            "RecordingUrl": recording.url, "RecordingStatus": status, "RecordingChannels": "1",
            "RecordingStartTime": recording.start_time.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "RecordingSource": "Conference", "RecordingTrack": "both", "ErrorCode": "0",
        }
        if status in ("completed", "absent"):
            form["RecordingDuration"] = str(recording.duration)
        recording.conference.outbox.put("recording", method, url, form, None, recording.conference.sid)

    def _start_recording(self, conference: Conference) -> None:
        recording = ConferenceRecording(self, conference)
        conference.recordings.append(recording)
        self._recording_event(recording, "in-progress")

    def _finish_recordings(self, conference: Conference) -> None:
        for recording in conference.recordings:
            if recording.live or recording.status == "stopped":
                self._finish_recording(recording)

    def _finish_recording(self, recording: ConferenceRecording) -> None:
        if recording.ended is None:
            recording.ended = time.monotonic()
        if recording.paused_at is not None and recording.pause_behavior == "skip":
            recording.skipped += recording.ended - recording.paused_at
        recording.paused_at = None
        recording.status = "completed" if recording.duration > 0 else "absent"
        recording.updated = _now()
        self._recording_event(recording, recording.status)

    def update_recording(self, recording: ConferenceRecording, status: str, pause_behavior: str | None) -> None:
        """The Recordings API: ``paused`` (``skip`` leaves the paused time out of the file; ``silence``, the default,
        keeps it as silence), ``in-progress`` (resume), ``stopped`` (ends it: completed at once)."""
        now = time.monotonic()
        if status == "paused" and recording.status == "in-progress":
            recording.status, recording.paused_at = "paused", now
            recording.pause_behavior = pause_behavior or "silence"
            recording.pauses.append(f"paused:{recording.pause_behavior}")
        elif status == "in-progress" and recording.status == "paused":
            if recording.paused_at is not None and recording.pause_behavior == "skip":
                recording.skipped += now - recording.paused_at
            recording.status, recording.paused_at = "in-progress", None
            recording.pauses.append("in-progress")
        elif status == "stopped":
            recording.status = "stopped"
            self._finish_recording(recording)
        recording.updated = _now()
        self._bump()

    async def _dial_conference(self, call: Call, noun: Node, doc_url: str) -> dict[str, str]:
        events = frozenset((noun.get("statusCallbackEvent") or "start end").replace(",", " ").split())
        callback = noun.get("statusCallback")
        rec_url = noun.get("recordingStatusCallback")
        recording = (noun.get("record") == "record-from-start", self._resolve(doc_url, rec_url) if rec_url else None,
                     (noun.get("recordingStatusCallbackMethod") or "POST").upper(),
                     frozenset((noun.get("recordingStatusCallbackEvent") or "completed").replace(",", " ").split()))
        conference = self._conference_named(noun.text, (self._resolve(doc_url, callback) if callback else None,
                                                        (noun.get("statusCallbackMethod") or "POST").upper(), events), recording)
        wait_url = noun.get("waitUrl")
        options = {
            "label": noun.get("participantLabel"), "muted": noun.flag("muted"), "beep": noun.get("beep") or "true",
            "start_conference_on_enter": noun.flag("startConferenceOnEnter", True),
            "end_conference_on_exit": noun.flag("endConferenceOnExit"),
            "wait_url": self._resolve(doc_url, wait_url) if wait_url else wait_url,
            "wait_method": (noun.get("waitMethod") or "POST").upper(),
            "coaching": bool(noun.get("coach")), "call_sid_to_coach": noun.get("coach"),
        }
        max_participants = noun.number("maxParticipants", 250)
        if len(conference.participants) >= max_participants:
            self._note(call, "note", f"conference {noun.text} is full")
            return {"DialCallStatus": "failed"}
        await self._in_conference(call, conference, options, via_dial=True)
        return {"DialCallStatus": "completed"}

    async def _in_conference(self, call: Call, conference: Conference, options: dict[str, Any], *, via_dial: bool,
                             participant: Participant | None = None) -> None:
        """Join, then stay until removed, the conference ends, the call ends (or ``*`` with hangupOnStar)."""
        participant = self._join(call, conference, options, via_dial, participant)
        try:
            waits = [asyncio.ensure_future(participant.left.wait()), asyncio.ensure_future(call.ended.wait())]
            if call.hangup_on_star:
                waits.append(asyncio.ensure_future(call.star.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
        finally:
            if call.participant is participant:
                self._leave(participant, call.leave_reason or "participant_hung_up")

    def _join(self, call: Call, conference: Conference, options: dict[str, Any], via_dial: bool,
              participant: Participant | None = None) -> Participant:
        if participant is None:
            participant = Participant(call, conference, options, via_dial)
        conference.pending.pop(call.sid, None)
        participant.status = "connected"
        participant.updated = conference.updated = _now()
        conference.participants[call.sid] = participant
        call.participant = participant
        self._conference_event(conference, "join", "participant-join", participant)
        self._note(call, "note", f"joined the conference {conference.friendly_name}")
        if not conference.started and participant.start_conference_on_enter:
            conference.started = True
            conference.status = "in-progress"
            self._conference_event(conference, "start", "conference-start")
            if conference.record:
                self._start_recording(conference)
        for member in conference.participants.values():
            self._refresh_audio(member)
        return participant

    def _conference_event(self, conference: Conference, short: str, event: str, participant: Participant | None = None,
                          extra: dict[str, str] | None = None) -> None:
        if not conference.status_callback or short not in conference.events:
            return
        form = vw.conference_form(account_sid=conference.account_sid, conference_sid=conference.sid,
                                  friendly_name=conference.friendly_name, event=event, sequence=conference.sequence,
                                  now=_now(), participant=participant.view() if participant else None, extra=extra)
        conference.sequence += 1
        conference.outbox.put("conference", conference.status_callback_method, conference.status_callback, form,
                              participant.call_sid if participant else None, conference.sid)

    def _leave(self, participant: Participant, reason: str, *, kicked: bool = False) -> None:
        conference, call = participant.conference, participant.call
        if conference.participants.get(call.sid) is not participant:
            return
        del conference.participants[call.sid]
        call.participant = None
        participant.status = "complete"
        participant.updated = conference.updated = _now()
        participant.left.set()
        self._stop_audio(participant)
        self._conference_event(conference, "leave", "participant-leave", participant,
                               {"ParticipantCallStatus": call.status, "ReasonParticipantLeft": reason})
        self._note(call, "note", f"left the conference {conference.friendly_name}")
        if conference.status == "completed":
            return
        if participant.end_conference_on_exit:
            how = "kicked" if kicked else "left"
            self._end_conference(conference, f"participant-with-end-conference-on-exit-{how}", participant)
        elif not conference.participants:
            self._end_conference(conference, "last-participant-kicked" if kicked else "last-participant-left", participant)
        else:
            for member in conference.participants.values():
                self._refresh_audio(member)

    def _end_conference(self, conference: Conference, reason: str, by: Participant | None = None) -> None:
        if conference.status == "completed":
            return
        conference.status = "completed"
        conference.reason_ended = reason
        conference.call_sid_ending = by.call_sid if by else None
        conference.updated = _now()
        for member in list(conference.participants.values()):
            self._leave(member, "conference_ended")
        for pending in list(conference.pending.values()):
            conference.pending.pop(pending.call_sid, None)
            self._end(pending.call, "canceled")
        if conference.started:
            extra = {"ReasonConferenceEnded": reason, "Reason": _REASON_WORDS.get(reason, reason)}
            if by is not None:
                extra["CallSidEndingConference"] = by.call_sid
                if by.label:
                    extra["ParticipantLabelEndingConference"] = by.label
            self._conference_event(conference, "end", "conference-end", extra=extra)
        self._finish_recordings(conference)
        self._bump()

    def end_conference(self, conference: Conference) -> None:
        """The REST API ends the conference (``Status=completed``)."""
        self._end_conference(conference, "conference-ended-via-api")

    def kick(self, participant: Participant) -> None:
        """The REST API removes a participant (DELETE)."""
        if participant.conference.pending.pop(participant.call_sid, None) is not None:
            self._end(participant.call, "canceled")
            return
        self._leave(participant, "participant_kicked", kicked=True)

    def update_participant(self, participant: Participant, changes: dict[str, Any]) -> None:
        """Hold, mute, coaching... as the Participants update sets them, with their conference events."""
        conference = participant.conference
        live = conference.participants.get(participant.call_sid) is participant
        for name in ("hold_url", "hold_method", "wait_url", "wait_method", "end_conference_on_exit", "beep"):
            if name in changes:
                setattr(participant, name, changes[name])
        if "muted" in changes and changes["muted"] != participant.muted:
            participant.muted = changes["muted"]
            if live:
                self._conference_event(conference, "mute", "participant-mute" if participant.muted else "participant-unmute",
                                       participant)
                self._note(participant.call, "note", "muted" if participant.muted else "unmuted")
        if "hold" in changes and changes["hold"] != participant.hold:
            participant.hold = changes["hold"]
            if live:
                self._conference_event(conference, "hold", "participant-hold" if participant.hold else "participant-unhold",
                                       participant)
        coaching = {k: changes[k] for k in ("coaching", "call_sid_to_coach") if k in changes}
        if coaching and (coaching.get("coaching", participant.coaching), coaching.get("call_sid_to_coach",
                                                                                     participant.call_sid_to_coach)) != (
                participant.coaching, participant.call_sid_to_coach):
            participant.coaching = coaching.get("coaching", participant.coaching)
            participant.call_sid_to_coach = coaching.get("call_sid_to_coach", participant.call_sid_to_coach)
            if not participant.coaching:
                participant.call_sid_to_coach = None
            if live:
                self._conference_event(conference, "modify", "participant-modify", participant)
                self._note(participant.call, "note", "coaching" if participant.coaching else "no longer coaching")
        participant.updated = conference.updated = _now()
        if live:
            self._refresh_audio(participant)
        self._bump()

    # --- music ----------------------------------------------------------------------------------------

    def _stop_audio(self, participant: Participant) -> None:
        if participant.audio_task is not None:
            participant.audio_task.cancel()
        participant.audio_task, participant.audio_mode = None, None

    def _refresh_audio(self, participant: Participant) -> None:
        """What a participant hears: hold music, the conference's wait music, or the conference itself."""
        want = "hold" if participant.hold else ("wait" if not participant.conference.started else "live")
        if want == participant.audio_mode:
            return
        self._stop_audio(participant)
        participant.audio_mode = want
        call = participant.call
        if want == "live":
            others = len(participant.conference.participants) - 1
            self._note(call, "note", f"in the conference with {others} other participant{'s' if others != 1 else ''}")
            return
        if want == "hold":
            self._note(call, "note", "on hold")
            url, method, kind = participant.hold_url or vw.DEFAULT_MUSIC, participant.hold_method, "hold"
        else:
            self._note(call, "note", "waiting for the conference to start")
            url = vw.DEFAULT_MUSIC if participant.wait_url is None else participant.wait_url
            method, kind = participant.wait_method, "wait"
        if url:
            participant.audio_task = self._start(None, self._music(call, url, method, kind, WAIT_VERBS))

    async def _music(self, call: Call, url: str, method: str, kind: str, allowed: frozenset[str],
                     extra: Callable[[], dict[str, str]] | None = None) -> str | None:
        """Play a wait/hold URL in a loop (its TwiML when it is the hub's, else just music); ``leave``/``hangup`` from
        an ``<Enqueue>``'s wait TwiML."""
        if not self._fetchable(url):
            self._note(call, "play", "♪ hold music")
            await asyncio.Event().wait()  # Twilio loops it until something changes
            return None
        start_url = url
        while not call.over:
            started = time.monotonic()
            try:
                verbs, doc_url = await self._fetch_twiml(call, kind, method, url, self._call_form(call, extra() if extra else None))
                if allowed is _QUEUE_WAIT and any(v.tag == "Gather" for v in verbs):
                    raise Unsupported("<Gather> in an <Enqueue>'s wait music")
                check_wait(verbs, allowed)
            except _AppError as err:
                self._error(call, err.code, err.detail, err.url)
                await asyncio.Event().wait()
                return None
            except TwiMLError as exc:
                self._error(call, exc.code, exc.detail, url)
                await asyncio.Event().wait()
                return None
            url = start_url
            redirected = False
            for verb in verbs:
                if verb.tag in ("Say", "Play", "Pause"):
                    await getattr(self, "_verb_" + verb.tag.lower())(call, verb, doc_url)
                elif verb.tag == "Redirect":
                    url, method = self._resolve(doc_url, verb.text), (verb.get("method") or "POST").upper()
                    redirected = True
                    break
                elif verb.tag in ("Leave", "Hangup"):
                    return verb.tag.lower()
            if kind == "announce" and not redirected:
                return None  # an announcement is played once (hold and wait music loop)
            if time.monotonic() - started < self.time_scale:
                await self._sleep(1)  # Twilio loops the music; never faster than a second a round
        return None

    # --- Dial: Client, Number, Queue -----------------------------------------------------------------

    async def _ring(self, call: Call) -> str:
        """Ring a leg until it is answered or refused: ``answered``, ``busy``, ``no-answer``, ``failed``, ``canceled``."""
        call.pickup = asyncio.get_running_loop().create_future()
        behaviour = "manual" if vw.is_client(call.to) else self.phones.get(call.to, "manual")
        try:
            if behaviour in ("answer", "machine"):
                await self._wait(self.ring_seconds)
                return "answered"
            if behaviour in ("busy", "failed"):
                await self._wait(0.5)
                return behaviour
            try:
                return await asyncio.wait_for(asyncio.shield(call.pickup), call.timeout * self.time_scale)
            except asyncio.TimeoutError:
                return "no-answer"
        finally:
            if not call.pickup.done():
                call.pickup.cancel()

    async def _ring_leg(self, call: Call) -> str:
        """An outbound leg: ``initiated``, ``ringing``, then the answer (its callbacks as subscribed)."""
        self._status_event(call, "initiated")
        call.status = call.status if call.over else "ringing"
        call.updated = _now()
        self._status_event(call, "ringing")
        for pending in [p for c in self.conferences.values() for p in c.pending.values() if p.call is call]:
            pending.status = "ringing"
        self._bump()
        return await self._ring(call)

    async def _dial_legs(self, call: Call, nouns: list[Node], verb: Node) -> dict[str, str]:
        timeout = verb.number("timeout", 30)
        legs: list[Call] = []
        for noun in nouns:
            to = vw.CLIENT + noun.text if noun.tag == "Client" else _e164(noun.text)
            caller = verb.get("callerId") or call.from_
            leg = self._new_call(from_=caller, to=to, direction="outbound-dial", status="queued", parent=call)
            leg.timeout = timeout
            callback = noun.get("statusCallback")
            if callback:
                leg.status_callback = self._resolve(None, callback)
                leg.status_callback_method = (noun.get("statusCallbackMethod") or "POST").upper()
                leg.status_events = frozenset((noun.get("statusCallbackEvent") or "completed").replace(",", " ").split())
            legs.append(leg)
            self._note(call, "note", f"ringing {to}")
        rings: dict[asyncio.Future[Any], Call] = {asyncio.ensure_future(self._ring_leg(leg)): leg for leg in legs}
        winner: Call | None = None
        outcomes: list[str] = []
        try:
            pending: set[asyncio.Future[Any]] = set(rings)
            ended: asyncio.Future[Any] = asyncio.ensure_future(call.ended.wait())
            while pending and winner is None:
                done, pending = await asyncio.wait(pending | {ended}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(ended)
                if ended in done:
                    break
                for task in done:
                    result = str(task.result())
                    if result == "answered" and winner is None:
                        winner = rings[task]
                    else:
                        outcomes.append(result)
                        self._end(rings[task], result)
            ended.cancel()
            for task in pending:
                task.cancel()
            for leg in legs:
                if leg is not winner:
                    self._end(leg, "canceled")
            if winner is None or call.over:
                status = "canceled" if call.over else _dial_status(outcomes)
                return {"DialCallSid": legs[-1].sid, "DialCallStatus": status, "DialCallDuration": "0"}
            self._answer(winner)
            await self._bridge(call, winner)
            if not winner.over and not winner.redirects:
                self._end(winner, "completed")
            return {"DialBridged": "true", "DialCallDuration": str(winner.duration or 0), "DialCallSid": winner.sid,
                    "DialCallStatus": "completed"}
        finally:
            for leg in legs:
                if not leg.over and not leg.redirects:  # a leg the REST API took elsewhere goes on alone
                    self._end(leg, "completed" if leg.status == "in-progress" else "canceled")

    async def _bridge(self, call: Call, other: Call) -> None:
        """Two legs talk until one hangs up (or ``*`` with hangupOnStar, or the Dial's timeLimit)."""
        call.bridge, other.bridge = other, call
        self._note(call, "note", f"connected to {other.to if other.parent_call_sid == call.sid else other.from_}")
        self._note(other, "note", f"connected to {call.from_}")
        waits = [asyncio.ensure_future(e.wait()) for e in (call.ended, other.ended, call.redirected, other.redirected)]
        if call.hangup_on_star:
            waits.append(asyncio.ensure_future(call.star.wait()))
        try:
            await asyncio.wait(waits, timeout=call.time_limit * self.time_scale, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            call.bridge = other.bridge = None
        if not call.over and other.over:
            self._note(call, "note", "the other side hung up")

    async def _dial_queue(self, call: Call, noun: Node, timeout: int) -> dict[str, str]:
        queue = self._queue(noun.text)
        waited = 0.0
        while not queue.members and waited < timeout * self.time_scale and not call.over:
            queue.arrival.clear()
            started = time.monotonic()
            try:
                async with asyncio.timeout(timeout * self.time_scale - waited):
                    await queue.arrival.wait()
            except TimeoutError:
                pass
            waited += time.monotonic() - started
        if not queue.members or call.over:
            return {"DialCallStatus": "no-answer"}
        member = queue.members.pop(0)
        if member.dequeue is not None and not member.dequeue.done():
            member.dequeue.set_result(call)
        await self._bridge(call, member)
        return {"DialCallDuration": str(int((_now() - (call.start_time or _now())).total_seconds())),
                "DialCallSid": member.sid, "DialCallStatus": "completed", "QueueSid": queue.sid}

    def _queue(self, name: str, max_size: int = 100) -> CallQueue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = CallQueue(name, max_size)
        return queue

    async def _verb_enqueue(self, call: Call, verb: Node, doc_url: str) -> Source | Stop | None:
        queue = self._queue(verb.text, verb.number("maxQueueSize", 100))
        entered = time.monotonic()
        result, partner = "queue-full", None
        if len(queue.members) < queue.max_size:
            queue.members.append(call)
            queue.entered[call.sid] = entered
            queue.arrival.set()
            call.queue = queue
            call.dequeue = asyncio.get_running_loop().create_future()
            self._note(call, "note", f"waiting in the queue {queue.name}")
            wait_url = verb.get("waitUrl")
            url = vw.DEFAULT_MUSIC if wait_url is None else (self._resolve(doc_url, wait_url) if wait_url else "")

            def position() -> dict[str, str]:
                place = queue.members.index(call) + 1 if call in queue.members else 0
                waited = str(int((time.monotonic() - entered) / max(self.time_scale, 1e-9)))
                return {"AvgQueueTime": waited, "CurrentQueueSize": str(len(queue.members)), "MaxQueueSize": str(queue.max_size),
                        "QueuePosition": str(place), "QueueSid": queue.sid, "QueueTime": waited}

            music = self._start(None, self._music(call, url, (verb.get("waitUrlMethod") or "POST").upper(), "wait",
                                                  _QUEUE_WAIT, position)) if url else None
            ended: asyncio.Future[Any] = asyncio.ensure_future(call.ended.wait())
            waits: set[asyncio.Future[Any]] = {call.dequeue, ended}
            if music is not None:
                waits.add(music)
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                if music is not None and not music.done():
                    music.cancel()
                if call in queue.members:
                    queue.members.remove(call)
                call.queue = None
            if call.over:
                return None
            if call.dequeue in done:
                partner = call.dequeue.result()
                waits2 = [asyncio.ensure_future(e.wait()) for e in (call.ended, partner.ended, partner.redirected)]
                try:
                    await asyncio.wait(waits2, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits2:
                        waiter.cancel()
                if call.over:
                    return None
                result = "bridged"
            else:
                outcome = music.result() if music is not None and music.done() and not music.cancelled() else None
                if outcome == "hangup":
                    return Stop("completed")
                result = "leave"
        extra = {"QueueResult": result, "QueueSid": queue.sid, "QueueTime": str(int(time.monotonic() - entered))}
        action = verb.get("action")
        if action:
            return Source(self._resolve(doc_url, action), (verb.get("method") or "POST").upper(), extra=extra, kind="action")
        return None

    # --- the REST API's calls -------------------------------------------------------------------------

    def create_call(self, *, from_: str, to: str, source: Source, status_callback: str | None, status_method: str,
                    events: Iterable[str], timeout: int, fallback: str | None = None, fallback_method: str = "POST",
                    time_limit: int = 14400, machine_detection: str | None = None) -> Call:
        """Calls.create: an ``outbound-api`` leg that rings ``to`` and runs ``source`` once answered. With
        ``machine_detection`` the answer carries ``AnsweredBy``: ``machine_start`` for a phone whose behaviour is
        ``machine`` (``machine_end_beep`` with ``DetectMessageEnd``), else ``human``."""
        call = self._new_call(from_=from_, to=to, direction="outbound-api", status="queued")
        call.machine_detection = machine_detection
        call.status_callback, call.status_callback_method = status_callback, status_method
        call.status_events = frozenset(events)
        call.timeout, call.time_limit, call.source = timeout, time_limit, source
        call.fallback_url, call.fallback_method = fallback, fallback_method
        self._start(call, self._outbound(call, None))
        return call

    def add_participant(self, conference: Conference, *, from_: str, to: str, options: dict[str, Any],
                        status_callback: str | None, status_method: str, events: Iterable[str], timeout: int) -> Participant:
        """Participants.create: dial ``to`` and put it in the conference once it answers."""
        call = self._new_call(from_=from_, to=to, direction="outbound-api", status="queued")
        call.status_callback, call.status_callback_method = status_callback, status_method
        call.status_events = frozenset(events)
        call.timeout = timeout
        participant = Participant(call, conference, options, via_dial=False)
        conference.pending[call.sid] = participant
        self._note(call, "note", f"dialled into the conference {conference.friendly_name}")
        self._start(call, self._outbound(call, participant))
        return participant

    async def _outbound(self, call: Call, participant: Participant | None) -> None:
        result = await self._ring_leg(call)
        if result != "answered":
            self._end(call, result)
            return
        if call.machine_detection:
            machine = self.phones.get(call.to) == "machine"
            call.answered_by = ("machine_end_beep" if call.machine_detection == "DetectMessageEnd" else "machine_start") if machine else "human"
        self._answer(call)
        if participant is None:
            await self._program(call, call.source)
            return
        if participant.conference.status == "completed":
            self._end(call, "completed", note="the conference had ended")
            return
        await self._in_conference(call, participant.conference, {}, via_dial=False, participant=participant)
        if not call.over:
            self._end(call, "completed", leave_reason=call.leave_reason or "participant_hung_up")

    async def redirect(self, call: Call, source: Source) -> None:
        """Calls.update with ``Url`` or ``Twiml``: the current TwiML stops and the new one runs."""
        if call.status in ("queued", "ringing") and call.direction != "inbound":
            call.source = source  # what the leg runs once answered
            return
        call.leave_reason = "participant_updated_via_api"
        call.redirected.set()  # a bridge with another leg ends
        call.redirects += 1
        task = call.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        call.leave_reason = None
        call.redirected = asyncio.Event()
        if call.over:
            return
        if call.participant is not None:
            self._leave(call.participant, "participant_updated_via_api")
        self._note(call, "note", "new TwiML from the REST API")
        self._start(call, self._program(call, source))

    def complete(self, call: Call, status: str) -> None:
        """Calls.update with ``Status=completed`` (hang up) or ``canceled`` (only a call not yet answered)."""
        if call.status in ("queued", "ringing"):
            self._end(call, "canceled", leave_reason="call_ended_via_api")
        elif status == "completed":
            self._end(call, "completed", leave_reason="call_ended_via_api")

    # --- the caller's and the agent's side (dev phone, dev API) ---------------------------------------

    def send_digits(self, call_sid: str, digits: str) -> bool:
        """The caller presses keys; True if something was listening (a ``<Gather>``, a ``<Record>``, hangupOnStar)."""
        call = self.call(call_sid)
        if call.over:
            raise VoiceStateError("the call is over")
        if not digits or any(k not in KEYS for k in digits):
            raise VoiceStateError("keys are 0-9, * and #")
        listening = call.listening
        taken = False
        if call.hangup_on_star and "*" in digits:
            call.star.set()
            taken = True
        elif listening is not None and "dtmf" in listening.inputs and call.inputs is not None:
            call.inputs.put_nowait(("dtmf", digits, 1.0))
            call.input_arrived.set()
            taken = True
        self._note(call, "you", f"pressed {digits}" + ("" if taken else " (nothing was listening)"))
        return taken

    def send_speech(self, call_sid: str, text: str, confidence: float = 0.9) -> bool:
        """The caller says ``text`` (typed on the dev phone); True if a ``<Gather>`` with speech (or a ``<Record>``) took it."""
        call = self.call(call_sid)
        if call.over:
            raise VoiceStateError("the call is over")
        words = " ".join(text.split())
        if not words:
            raise VoiceStateError("say something")
        if not 0.0 <= confidence <= 1.0:
            raise VoiceStateError("the confidence is between 0 and 1")
        listening = call.listening
        taken = listening is not None and "speech" in listening.inputs and call.inputs is not None
        if taken and call.inputs is not None:
            call.inputs.put_nowait(("speech", words, confidence))
            call.input_arrived.set()
        self._note(call, "you", f"said “{words}”" + ("" if taken else " (nothing was listening)"))
        return taken

    def answer(self, call_sid: str) -> Call:
        """A ringing leg (an agent's ``client:`` leg, or a call to the dev phone) is answered."""
        call = self.call(call_sid)
        if call.status != "ringing" or call.pickup is None or call.pickup.done():
            raise VoiceStateError(f"the call is {call.status}, not ringing")
        call.pickup.set_result("answered")
        return call

    def hang_up(self, call_sid: str) -> Call:
        """A phone or a client hangs up: a ringing leg is declined (``busy``), a live one ``completed``."""
        call = self.call(call_sid)
        if call.over:
            return call
        if call.pickup is not None and not call.pickup.done() and call.status == "ringing":
            call.pickup.set_result("busy")
            self._note(call, "note", "declined")
            return call
        self._end(call, "completed", note="hung up")  # "canceled" is only for the REST API's cancel
        return call

    def who_hears(self, conference: Conference) -> dict[str, list[str]]:
        """Who hears whom in a conference, as Twilio mixes it (no audio here, but the same rules): a participant
        on hold hears its hold music and is heard by nobody; a muted one is heard by nobody; a coaching one only
        by the participant it coaches (and hears everyone); nobody hears anyone before the conference starts.
        Each live participant's CallSid -> the CallSids it hears."""
        live = conference.participants
        heard: dict[str, list[str]] = {}
        for sid, listener in live.items():
            if listener.hold or not conference.started:
                heard[sid] = []
                continue
            heard[sid] = [other for other, speaker in live.items()
                          if other != sid and not speaker.hold and not speaker.muted
                          and (not speaker.coaching or speaker.call_sid_to_coach == sid)]
        return heard

    def client_legs(self, identity: str) -> list[dict[str, Any]]:
        """The legs ringing or live for ``client:<identity>`` (the dev API's list)."""
        address = vw.CLIENT + identity
        legs = []
        for call in self.calls.values():
            if call.to != address or call.over or call.status == "queued":
                continue
            participant = call.participant or next(
                (p for c in self.conferences.values() for p in c.pending.values() if p.call is call), None)
            hears: list[str] = []
            if participant is not None and call.participant is participant:
                members = participant.conference.participants
                hears = [members[sid].label or sid for sid in self.who_hears(participant.conference).get(call.sid, []) if sid in members]
            legs.append({"call_sid": call.sid, "status": call.status, "from": call.from_, "to": call.to,
                         "conference": participant.conference.friendly_name if participant else None,
                         "muted": participant.muted if participant else False,
                         "hold": participant.hold if participant else False,
                         "label": participant.label if participant else None,
                         "coaching": participant.coaching if participant else False,
                         "hears": hears})
        return legs

    def view(self, call: Call) -> dict[str, Any]:
        """A call as ``/dev/phone`` shows it."""
        participant = call.participant
        return {
            "call_sid": call.sid, "direction": call.direction, "from": call.from_, "to": call.to, "status": call.status,
            "created": call.created.isoformat(timespec="seconds"),
            "answered": call.start_time.isoformat(timespec="seconds") if call.start_time else None,
            "ended": call.end_time.isoformat(timespec="seconds") if call.end_time else None,
            "duration": call.duration,
            "listening": call.listening.wire() if call.listening else None,
            "conference": participant.conference.friendly_name if participant else None,
            "hold": participant.hold if participant else False, "muted": participant.muted if participant else False,
            "transcript": [e.wire() for e in call.transcript], "errors": [e.wire() for e in call.errors],
        }

    def phone_calls(self, number: str) -> list[Call]:
        """The calls from or to a phone number, oldest first."""
        return [c for c in self.calls.values() if (c.direction == "inbound" and c.from_ == number) or c.to == number]


_REASON_WORDS = {
    "conference-ended-via-api": "Conference ended via API",
    "participant-with-end-conference-on-exit-left": "Participant with endConferenceOnExit left the conference",
    "participant-with-end-conference-on-exit-kicked": "Participant with endConferenceOnExit was kicked from the conference",
    "last-participant-left": "Last participant left the conference",
    "last-participant-kicked": "Last participant was kicked from the conference",
}


def _e164(number: str) -> str:
    digits = "".join(c for c in number if c.isdigit())
    return "+" + digits if number.strip().startswith("+") else "+1" + digits[-10:]


def _dial_status(outcomes: list[str]) -> str:
    """The ``DialCallStatus`` of a ``<Dial>`` no leg answered."""
    for status in ("busy", "failed", "no-answer", "canceled"):
        if status in outcomes:
            return status
    return "no-answer"
