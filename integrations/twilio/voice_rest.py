"""Twilio's REST API for live calls: Calls (new TwiML for a call, hang it up), Conferences' Participants
(the agent's leg, hold with music, mute). Participants are created in a conference named by its friendly name
(``conv-<id>``); every other Participants request needs the conference's ``CF...`` SID, as on Twilio.

As :mod:`integrations.twilio.rest` does for messages, the official ``twilio`` package does the talking over
its aiohttp client (``update_async``, ``create_async``), so paths and form fields are Twilio's own and
``TWILIO_API_BASE_URL`` points it at the local stand-in. Around it: a time limit on every request, bounded
retries with exponential back-off on 429 and 5xx and on refused connections, and Twilio's refusals as
:class:`VoiceResult` with words an agent can read. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

import aiohttp
from twilio.base import values  # type: ignore[import-untyped,unused-ignore]
from twilio.base.exceptions import TwilioException  # type: ignore[import-untyped,unused-ignore]
from twilio.rest import Client  # type: ignore[import-untyped,unused-ignore]

from contact_center.ports import DeliveryReport
from integrations.twilio.config import TwilioConfig
from integrations.twilio.rest import NO_ENVIRONMENT, TimedHttpClient

log = logging.getLogger(__name__)

DEFAULT_TRIES = 3
DEFAULT_BACKOFF = 0.3  # seconds before the 2nd try; doubled for each later one (an agent is waiting)
CONFERENCE_SID = re.compile(r"CF[0-9a-fA-F]{32}")

# Twilio's codes for what goes wrong with a live call, in words for the agent.
VOICE_WORDS: dict[str, str] = {
    "20003": "The hub's Twilio credentials are wrong (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN).",
    "20404": "The call is no longer there: the caller has probably hung up.",
    "21220": "The caller has already hung up.",
    "21210": "The shop's number cannot be used as caller ID for the agent's phone (check TWILIO_NUMBERS).",
    "21211": "The agent's phone number is not a valid phone number.",
    "16020": "The agent's leg is no longer in the conference.",
    "16028": "The agent's leg is not in the call's conference: nobody to whisper to.",
    "32018": "The call's instructions were too long for Twilio.",
    "20429": "Twilio is refusing requests for now (too many); try again in a moment.",
}


@dataclass(frozen=True)
class VoiceResult:
    """What Twilio answered to one call-control request.

    :param sid: the CallSid of a participant that was added.
    :param http_status: Twilio's HTTP status when it refused; None when it was not reached.
    :param words: why it failed, for the agent.
    """

    ok: bool
    sid: str | None = None
    http_status: int | None = None
    code: str | None = None
    words: str | None = None

    def report(self) -> DeliveryReport:
        """The core's :class:`DeliveryReport` of it (``sent``, or ``failed`` with the words)."""
        if self.ok:
            return DeliveryReport("sent", provider_id=self.sid)
        return DeliveryReport("failed", error_code=self.code, error_message=self.words or "Twilio refused the request.")

    @property
    def gone(self) -> bool:
        """Twilio says the call or leg no longer exists (the caller hung up)."""
        return self.code in ("20404", "21220") or self.http_status == 404


def refusal(exc: TwilioException) -> VoiceResult:
    """A :class:`VoiceResult` for an error answer of Twilio's API."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    key = str(code) if code else None
    if isinstance(status, int) and status >= 500:
        words = f"Twilio is not answering properly (HTTP {status}); try again in a moment."
    elif key in VOICE_WORDS:
        words = VOICE_WORDS[key]
    elif status == 404:
        words = VOICE_WORDS["20404"]
    else:
        detail = str(getattr(exc, "msg", "") or "").strip()
        words = f"Twilio refused it (error {key or status}){': ' + detail if detail else ''}."
    return VoiceResult(False, http_status=status if isinstance(status, int) else None, code=key, words=words)


def unreachable(exc: BaseException) -> VoiceResult:
    """A :class:`VoiceResult` for a Twilio the hub could not talk to."""
    return VoiceResult(False, words=f"The hub could not reach Twilio ({type(exc).__name__}).")


def _retryable(status: int | None) -> bool:
    return status == 429 or (status is not None and status >= 500)


def _opt(value: Any) -> Any:
    return values.unset if value is None else value


class VoiceRestClient:
    """One Twilio account's call-control API.

    :param tries: attempts at most (429 and 5xx answers and refused connections are retried).
    :param backoff: seconds before the second attempt; each later wait doubles.
    :param timeout: seconds one request may take.
    """

    def __init__(
        self,
        config: TwilioConfig,
        *,
        tries: int = DEFAULT_TRIES,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.tries = max(1, tries)
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self._twilio: Client | None = None
        self._http: TimedHttpClient | None = None

    def _client(self) -> Client:
        """The ``twilio`` client, made on first use (its aiohttp session needs the running loop)."""
        if self._twilio is None:
            self._http = TimedHttpClient(timeout=self.timeout, logger=logging.getLogger("integrations.twilio.http"))
            self._twilio = Client(self.config.account_sid, self.config.auth_token, http_client=self._http, environment=NO_ENVIRONMENT)
            self._twilio.api.base_url = self.config.api_base_url
        return self._twilio

    async def _call(self, what: str, make: Callable[[Client], Awaitable[Any]], tries: int | None = None) -> VoiceResult:
        """One request with retries; the created resource's ``call_sid``/``sid`` in the result."""
        attempt = 1
        while True:
            retry = False
            try:
                answer = await make(self._client())
            except TwilioException as exc:
                result, retry = refusal(exc), _retryable(getattr(exc, "status", None))
            except aiohttp.ClientConnectorError as exc:
                result, retry = unreachable(exc), True  # never reached Twilio: safe to try again
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                result = unreachable(exc)  # it may have reached Twilio: doing it twice could dial twice
            else:
                sid = getattr(answer, "call_sid", None) or getattr(answer, "sid", None)
                return VoiceResult(True, sid=sid if isinstance(sid, str) else None)
            if not retry or attempt >= (tries or self.tries):
                if not result.ok:  # a call that is already over is news, not trouble (hanging up a caller who hung up)
                    log.log(logging.INFO if result.gone else logging.WARNING, "twilio voice request failed",
                            extra={"what": what, "code": result.code, "status": result.http_status})
                return result
            await self._sleep(self.backoff * 2 ** (attempt - 1))
            attempt += 1

    async def update_call(self, call_sid: str, *, twiml: str | None = None, url: str | None = None, status: str | None = None) -> VoiceResult:
        """Calls update: new TwiML for a live call (``Twiml`` or ``Url``), or ``Status=completed`` to hang it up."""
        return await self._call("update_call", lambda c: c.calls(call_sid).update_async(
            twiml=_opt(twiml), url=_opt(url), method="POST" if url else values.unset, status=_opt(status),
        ))

    async def create_call(
        self, *, to: str, from_: str, url: str, status_callback: str | None = None,
        status_callback_event: Sequence[str] = ("initiated", "ringing", "answered", "completed"),
        machine_detection: str | None = "Enable", timeout: int = 30, tries: int | None = None,
    ) -> VoiceResult:
        """Calls create: dial ``to`` from ``from_`` (our published number); once answered Twilio asks ``url`` for TwiML
        (with ``AnsweredBy`` when ``machine_detection`` is on: ``human``, ``machine_start``, ``fax``, ``unknown``).
        ``tries``: at most this many attempts here (the callback dialler passes 1 and backs off itself on 429:
        a refused create dialled nothing, but its calls-per-second bucket must know)."""
        return await self._call("create_call", lambda c: c.calls.create_async(
            to=to, from_=from_, url=url, method="POST", status_callback=_opt(status_callback),
            status_callback_event=list(status_callback_event) if status_callback else values.unset,
            status_callback_method="POST" if status_callback else values.unset,
            machine_detection=_opt(machine_detection), timeout=timeout,
        ), tries=max(1, tries) if tries is not None else None)

    async def add_participant(
        self,
        conference: str,
        *,
        from_: str,
        to: str,
        status_callback: str | None = None,
        status_callback_event: Sequence[str] = ("initiated", "ringing", "answered", "completed"),
        conference_status_callback: str | None = None,
        conference_status_callback_event: Sequence[str] = ("start", "end", "join", "leave", "mute", "hold"),
        timeout: int = 30,
        label: str | None = None,
        end_conference_on_exit: bool = False,
        muted: bool | None = None,
        coaching: bool | None = None,
        call_sid_to_coach: str | None = None,
        conference_record: str | None = None,
        conference_recording_status_callback: str | None = None,
        conference_recording_status_callback_event: Sequence[str] = ("in-progress", "completed", "absent"),
    ) -> VoiceResult:
        """Participants create: dial ``to`` (``client:agent_7`` or a number) into the conference named
        ``conference`` (creating is the one Participants request where Twilio takes a friendly name for the SID;
        a ``CF...`` SID works too, and never makes a new conference). ``muted``/``coaching``/``call_sid_to_coach``:
        a supervisor's leg (listen: muted; whisper: coaching the agent's CallSid; barge: neither).
        ``conference_status_callback``, ``conference_record`` (``record-from-start``) and the recording status
        callback are the conference's when this participant is the one that makes it (else Twilio ignores them)."""
        return await self._call("add_participant", lambda c: c.conferences(conference).participants.create_async(
            from_=from_, to=to, status_callback=_opt(status_callback),
            status_callback_event=list(status_callback_event) if status_callback else values.unset,
            conference_status_callback=_opt(conference_status_callback),
            conference_status_callback_event=list(conference_status_callback_event) if conference_status_callback else values.unset,
            timeout=timeout, label=_opt(label), end_conference_on_exit=end_conference_on_exit, early_media=True, beep="false",
            muted=_opt(muted), coaching=_opt(coaching), call_sid_to_coach=_opt(call_sid_to_coach),
            conference_record=_opt(conference_record),
            conference_recording_status_callback=_opt(conference_recording_status_callback),
            conference_recording_status_callback_event=(list(conference_recording_status_callback_event)
                                                        if conference_recording_status_callback else values.unset),
            conference_recording_status_callback_method="POST" if conference_recording_status_callback else values.unset,
        ))

    async def update_recording(self, conference_sid: str, recording: str, *, status: str, pause_behavior: str | None = None) -> VoiceResult:
        """Conference Recordings update: ``Status=paused`` (with ``PauseBehavior=skip``: the paused seconds are not
        in the file) or ``in-progress`` (resume) of the recording ``recording`` (its ``RE...`` SID, or
        ``Twilio.CURRENT``: the conference's active recording) of the conference ``conference_sid``."""
        if not CONFERENCE_SID.fullmatch(conference_sid):
            return VoiceResult(False, code="20404", words=f"{conference_sid[:40]!r} is not a conference SID (CF...).")
        return await self._call("update_recording", lambda c: c.conferences(conference_sid).recordings(recording).update_async(
            status=status, pause_behavior=_opt(pause_behavior),
        ))

    async def find_conference(self, friendly_name: str, status: str = "in-progress") -> VoiceResult:
        """Conferences list by ``FriendlyName`` and ``Status`` (``in-progress``; ``init``: made, not started yet, one
        participant waiting): the ``CF...`` SID of the conference named so (in ``sid``); not ``ok``, code ``20404``,
        when there is none."""
        rows: list[Any] = []

        async def listing(c: Client) -> None:
            rows[:] = await c.conferences.list_async(friendly_name=friendly_name, status=status, limit=1)

        result = await self._call("find_conference", listing)
        if not result.ok:
            return result
        sid = getattr(rows[0], "sid", None) if rows else None
        if not isinstance(sid, str) or not CONFERENCE_SID.fullmatch(sid):
            return VoiceResult(False, code="20404", words="The call is no longer bridged (its conference has ended).")
        return VoiceResult(True, sid=sid)

    async def update_participant(
        self, conference_sid: str, call_sid: str, *, hold: bool | None = None, hold_url: str | None = None, muted: bool | None = None,
        end_conference_on_exit: bool | None = None, coaching: bool | None = None, call_sid_to_coach: str | None = None,
        announce_url: str | None = None,
    ) -> VoiceResult:
        """Participants update: hold (with the music at ``hold_url``), mute, ``EndConferenceOnExit``, coaching or an
        announcement heard by that participant alone (``announce_url``, TwiML fetched with POST) of one leg (its
        CallSid or label) of the conference ``conference_sid``. Twilio takes a friendly name only to *create* a
        participant: here the path needs the ``CF...`` SID (:meth:`find_conference`, or the conference's status
        callbacks)."""
        if not CONFERENCE_SID.fullmatch(conference_sid):
            return VoiceResult(False, code="20404", words=f"{conference_sid[:40]!r} is not a conference SID (CF...).")
        return await self._call("update_participant", lambda c: c.conferences(conference_sid).participants(call_sid).update_async(
            hold=_opt(hold), hold_url=_opt(hold_url), hold_method="GET" if hold_url else values.unset, muted=_opt(muted),
            end_conference_on_exit=_opt(end_conference_on_exit), coaching=_opt(coaching), call_sid_to_coach=_opt(call_sid_to_coach),
            announce_url=_opt(announce_url), announce_method="POST" if announce_url else values.unset,
        ))

    async def fetch_participant(self, conference_sid: str, participant: str) -> VoiceResult:
        """Participants fetch (by CallSid or label): the participant's CallSid in ``sid``; 20404 when it is not there."""
        if not CONFERENCE_SID.fullmatch(conference_sid):
            return VoiceResult(False, code="20404", words=f"{conference_sid[:40]!r} is not a conference SID (CF...).")
        return await self._call("fetch_participant", lambda c: c.conferences(conference_sid).participants(participant).fetch_async())

    async def remove_participant(self, conference_sid: str, participant: str) -> VoiceResult:
        """Participants delete (by CallSid or label): the leg leaves the conference (a ringing one is cancelled)."""
        if not CONFERENCE_SID.fullmatch(conference_sid):
            return VoiceResult(False, code="20404", words=f"{conference_sid[:40]!r} is not a conference SID (CF...).")

        async def delete(c: Client) -> bool:
            return bool(await c.conferences(conference_sid).participants(participant).delete_async())

        return await self._call("remove_participant", delete)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._twilio = None
