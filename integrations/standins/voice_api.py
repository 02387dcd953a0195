"""The stand-in's Voice REST API (Twilio's paths, form fields, JSON and error codes) and the agent legs' dev API.

Under ``/2010-04-01/Accounts/{AccountSid}`` with the account's HTTP Basic credentials, as Messages:

* ``Calls.json`` (POST create, GET list), ``Calls/{CallSid}.json`` (GET, POST update: ``Url``/``Twiml``/
  ``Method``, ``Status=completed|canceled``);
* ``Conferences.json`` (GET list: ``FriendlyName``, ``Status``), ``Conferences/{ConferenceSid}.json`` (GET,
  POST update: ``Status=completed``, ``AnnounceUrl``);
* ``Conferences/{ConferenceSid}/Participants.json`` (GET list, POST create — only create may name the
  conference by its friendly name, which makes it if needed; elsewhere a name is 404, or 405 on a list,
  as on Twilio), ``Participants/{CallSid or Label}.json`` (GET, POST update: ``Hold``, ``HoldUrl``,
  ``Muted``, ``Coaching``, ``CallSidToCoach``..., DELETE).

And, with no credentials (development only), the console's driving of agent legs
(docs/subsystems/phone.md): ``GET /dev/clients/{identity}``, ``POST /dev/clients/{identity}/calls/{CallSid}/answer``
and ``.../hangup``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web
from multidict import MultiDictProxy

from integrations.standins import twilio_wire as wire
from integrations.standins import voice_wire as vw
from integrations.standins.twiml import is_url
from integrations.standins.voice import Conference, Participant, Source, VoiceEngine, VoiceStateError

if TYPE_CHECKING:  # pragma: no cover
    from integrations.standins.twilio import TwilioStandin

Form = MultiDictProxy[Any]
_CONFERENCE_SID = re.compile(r"CF[0-9a-fA-F]{32}")
_IDENTITY = re.compile(r"[A-Za-z0-9_]{1,121}")


class _Refused(Exception):
    """A request Twilio answers with its JSON error (the code, and what fills its message)."""

    def __init__(self, code: int, **fill: str) -> None:
        super().__init__(code)
        self.code, self.fill = code, fill


# Voice's own codes the messaging wire does not know (Twilio's words; HTTP 400)
VOICE_API_ERRORS = {
    16028: "The participant to be whispered is not present in the conference ({detail})",
}


def _error(code: int, **fill: str) -> web.Response:
    if code in VOICE_API_ERRORS:
        body = {"code": code, "message": VOICE_API_ERRORS[code].format(**{"detail": "", **fill}),
                "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": 400}
        return web.json_response(body, status=400)
    status, body = wire.error_body(code, **fill)
    return web.json_response(body, status=status)


def _text(form: Form, name: str) -> str:
    return str(form.get(name, "")).strip()


def _flag(form: Form, name: str, default: bool | None = None) -> bool | None:
    """Twilio reads ``true`` (any case) as true and any other value as false."""
    if name not in form:
        return default
    return _text(form, name).lower() == "true"


def _method(form: Form, name: str, default: str) -> str:
    value = _text(form, name).upper() or default
    if value not in ("GET", "POST"):
        raise _Refused(20001, detail=f"{name} must be GET or POST, not {value!r}")
    return value


def _url(form: Form, name: str, *, required: bool = False) -> str | None:
    value = _text(form, name)
    if not value:
        if required:
            raise _Refused(21205, detail=f"{name} parameter is required.")
        return None
    if not is_url(value) or not value.startswith(("http://", "https://")):
        raise _Refused(21205 if name == "Url" else 20001, detail=f"{name} {value!r} is not a valid absolute URL")
    return value


def _events(form: Form, name: str, allowed: tuple[str, ...], default: str) -> list[str]:
    """A list parameter (repeated, as the ``twilio`` package sends it, or space-separated)."""
    values = [w for v in form.getall(name, []) for w in re.split(r"[\s,]+", str(v).strip()) if w]
    bad = [v for v in values if v not in allowed]
    if bad:
        raise _Refused(20001, detail=f"{name} values must be among {', '.join(allowed)}; got {', '.join(bad)}")
    return values or default.split()


def _int(form: Form, name: str, default: int, low: int, high: int) -> int:
    value = _text(form, name)
    if not value:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise _Refused(20001, detail=f"{name} must be a whole number from {low} to {high}")
    return int(value)


class VoiceApi:
    """The aiohttp handlers over one stand-in's voice engine."""

    def __init__(self, standin: TwilioStandin, engine: VoiceEngine) -> None:
        self.standin, self.engine = standin, engine

    def _guard(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = self.standin._authorised(request)
            if refused is not None:
                return refused
            try:
                return await handler(request)
            except _Refused as exc:
                return _error(exc.code, **exc.fill)
        return guarded

    # --- addresses ------------------------------------------------------------------------------------

    def _check_to(self, to: str) -> str:
        if not to:
            raise _Refused(21201)
        if vw.is_client(to):
            if not _IDENTITY.fullmatch(to[len(vw.CLIENT):]):
                raise _Refused(21211, to=to)
            return to
        if not wire.valid_number(to):
            raise _Refused(21211, to=to)
        return to

    def _check_from(self, from_: str, to: str) -> str:
        if not from_:
            raise _Refused(21213)
        if vw.is_client(to):
            return from_  # a client can be shown any caller
        if vw.is_client(from_) or from_ not in self.engine.voice_numbers:
            raise _Refused(21210, from_=from_)
        return from_

    # --- Calls ----------------------------------------------------------------------------------------

    async def create_call(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        to = self._check_to(_text(form, "To"))
        from_ = self._check_from(_text(form, "From"), to)
        twiml = _text(form, "Twiml")
        if _text(form, "ApplicationSid"):
            raise _Refused(20001, detail="ApplicationSid: TwiML Apps are not imitated by the Twilio stand-in")
        url = None if twiml else _url(form, "Url", required=True)
        detection = _text(form, "MachineDetection")
        if detection and detection not in ("Enable", "DetectMessageEnd"):
            raise _Refused(20001, detail=f"MachineDetection must be Enable or DetectMessageEnd, not {detection[:40]}")
        self._within_cps()
        source = Source(url, _method(form, "Method", "POST"), twiml or None, kind="voice")
        call = self.engine.create_call(
            from_=from_, to=to, source=source, status_callback=_url(form, "StatusCallback"),
            status_method=_method(form, "StatusCallbackMethod", "POST"),
            events=_events(form, "StatusCallbackEvent", vw.CALL_EVENTS, "completed"),
            timeout=_int(form, "Timeout", 60, 1, 600), fallback=_url(form, "FallbackUrl"),
            fallback_method=_method(form, "FallbackMethod", "POST"), time_limit=_int(form, "TimeLimit", 14400, 1, 86400),
            machine_detection=detection or None,
        )
        return web.json_response(vw.call_resource(call), status=201)

    def _within_cps(self) -> None:
        """The account's calls-per-second limit (``engine.calls_per_second``; None: none): over it, Twilio's 429
        with code 20429, and nothing dialled."""
        rate = self.engine.calls_per_second
        if rate is None:
            return
        now = time.monotonic()
        window = self.engine.call_creates
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= max(1, int(rate)):
            self.engine.cps_refused += 1
            raise _Refused(20429)
        window.append(now)

    async def list_calls(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        calls = [c for c in reversed(list(self.engine.calls.values()))
                 if all(not query.get(k) or query[k] == v for k, v in (("To", c.to), ("From", c.from_), ("Status", c.status),
                                                                        ("ParentCallSid", c.parent_call_sid or "")))]
        return web.json_response(vw.page("calls", (vw.call_resource(c) for c in calls), request.path, query))

    def _call(self, request: web.Request) -> Any:
        call = self.engine.calls.get(request.match_info["call_sid"])
        if call is None:
            raise _Refused(20404, path=request.path)
        return call

    async def fetch_call(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(vw.call_resource(self._call(request)))

    async def update_call(self, request: web.Request) -> web.StreamResponse:
        call = self._call(request)
        form = await request.post()
        status = _text(form, "Status")
        twiml = _text(form, "Twiml")
        url = _url(form, "Url")
        if status and status not in ("completed", "canceled"):
            raise _Refused(20001, detail=f"Status can be completed or canceled, not {status!r}")
        if not (status or twiml or url):
            raise _Refused(21205, detail="Url parameter is required.")
        if call.over:
            raise _Refused(21220)
        if _text(form, "StatusCallback"):
            call.status_callback = _url(form, "StatusCallback")
            call.status_callback_method = _method(form, "StatusCallbackMethod", "POST")
        if _text(form, "FallbackUrl"):
            call.fallback_url = _url(form, "FallbackUrl")
        if status:
            self.engine.complete(call, status)
        else:
            await self.engine.redirect(call, Source(url, _method(form, "Method", "POST"), twiml or None, kind="update"))
        return web.json_response(vw.call_resource(call))

    # --- Conferences ----------------------------------------------------------------------------------

    def _conference(self, request: web.Request, *, create: bool = False, form: Form | None = None) -> Conference:
        """The conference of the path: its SID; a friendly name only to create a participant (as on Twilio)."""
        key = request.match_info["conference_sid"]
        if _CONFERENCE_SID.fullmatch(key):
            conference = self.engine.conferences.get(key)
            if conference is None or (create and conference.status == "completed"):
                raise _Refused(20404, path=request.path)
            return conference
        if not create or form is None:
            # Twilio answers a friendly name where it wants the SID with 405 on a list, and finds nothing else
            listing = request.method == "GET" and request.path.endswith("/Participants.json")
            raise _Refused(20004) if listing else _Refused(20404, path=request.path)
        for conference in self.engine.conferences.values():
            if conference.friendly_name == key and conference.status != "completed":
                return conference
        callback = (_url(form, "ConferenceStatusCallback"), _method(form, "ConferenceStatusCallbackMethod", "POST"),
                    frozenset(_events(form, "ConferenceStatusCallbackEvent", vw.CONFERENCE_EVENTS, "start end")))
        record = _text(form, "ConferenceRecord") or "false"
        if record not in ("true", "false", "record-from-start", "do-not-record"):
            raise _Refused(20001, detail=f"ConferenceRecord must be true, false, record-from-start or do-not-record, not {record!r}")
        recording = (record in ("true", "record-from-start"), _url(form, "ConferenceRecordingStatusCallback"),
                     _method(form, "ConferenceRecordingStatusCallbackMethod", "POST"),
                     frozenset(_events(form, "ConferenceRecordingStatusCallbackEvent", vw.RECORDING_EVENTS, "completed")))
        return self.engine._conference_named(key, callback, recording)

    async def list_conferences(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        rows = [c for c in reversed(list(self.engine.conferences.values()))
                if (not query.get("FriendlyName") or c.friendly_name == query["FriendlyName"])
                and (not query.get("Status") or c.status == query["Status"])]
        return web.json_response(vw.page("conferences", (vw.conference_resource(c) for c in rows), request.path, query))

    async def fetch_conference(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(vw.conference_resource(self._conference(request)))

    async def update_conference(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        form = await request.post()
        status = _text(form, "Status")
        if status and status != "completed":
            raise _Refused(20001, detail=f"Status can only be completed, not {status!r}")
        announce = _url(form, "AnnounceUrl")
        if status == "completed":
            self.engine.end_conference(conference)
        elif announce:
            method = _method(form, "AnnounceMethod", "POST")
            for participant in list(conference.participants.values()):
                self.engine._start(None, self.engine._music(participant.call, announce, method, "announce",
                                                            frozenset({"Say", "Play", "Pause"})))
        return web.json_response(vw.conference_resource(conference))

    # --- Conference recordings -------------------------------------------------------------------------

    def _recording(self, request: web.Request, conference: Conference) -> Any:
        """A recording of the conference by its SID, or ``Twilio.CURRENT``: the active one (404 when none)."""
        key = request.match_info["recording_sid"]
        if key == "Twilio.CURRENT":
            found = next((r for r in reversed(conference.recordings) if r.live), None)
        else:
            found = next((r for r in conference.recordings if r.sid == key), None)
        if found is None:
            raise _Refused(20404, path=request.path)
        return found

    async def list_recordings(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        rows = list(reversed(conference.recordings))
        return web.json_response(vw.page("recordings", (vw.recording_resource(r) for r in rows), request.path, request.query))

    async def fetch_recording(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        return web.json_response(vw.recording_resource(self._recording(request, conference)))

    async def update_recording(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        recording = self._recording(request, conference)
        form = await request.post()
        status = _text(form, "Status")
        if not status:
            raise _Refused(20001, detail="Status is required: paused, in-progress or stopped")
        if status not in ("paused", "in-progress", "stopped"):
            raise _Refused(20001, detail=f"Status must be paused, in-progress or stopped, not {status!r}")
        behavior = _text(form, "PauseBehavior") or None
        if behavior is not None and behavior not in ("skip", "silence"):
            raise _Refused(20001, detail=f"PauseBehavior must be skip or silence, not {behavior!r}")
        if not recording.live:
            raise _Refused(20001, detail=f"Recording {recording.sid} is {recording.status}: only a recording in progress or paused can change")
        self.engine.update_recording(recording, status, behavior if status == "paused" else None)
        return web.json_response(vw.recording_resource(recording))

    async def fetch_account_recording(self, request: web.Request) -> web.StreamResponse:
        """``Recordings/{RecordingSid}.json``: the account's view of any recording (the link a RecordingUrl names)."""
        key = request.match_info["recording_sid"]
        for conference in self.engine.conferences.values():
            for recording in conference.recordings:
                if recording.sid == key:
                    return web.json_response(vw.recording_resource(recording))
        raise _Refused(20404, path=request.path)

    # --- Participants ---------------------------------------------------------------------------------

    def _participant(self, request: web.Request, conference: Conference) -> Participant:
        participant = conference.find(request.match_info["participant"])
        if participant is None:
            raise _Refused(20404, path=request.path)
        return participant

    def _coaching(self, form: Form, conference: Conference, current: tuple[bool, str | None]) -> dict[str, Any]:
        coaching = _flag(form, "Coaching")
        coach_sid = _text(form, "CallSidToCoach") or None
        changes: dict[str, Any] = {}
        if coaching is not None:
            changes["coaching"] = coaching
        if coach_sid is not None:
            changes["call_sid_to_coach"] = coach_sid
            changes.setdefault("coaching", True)
        wants, target = changes.get("coaching", current[0]), changes.get("call_sid_to_coach", current[1])
        if wants and not target:
            raise _Refused(20001, detail="CallSidToCoach is required when Coaching is true")
        if wants and target is not None and not re.fullmatch(r"CA[0-9a-fA-F]{32}", target):
            raise _Refused(20001, detail=f"CallSidToCoach {target!r} is not a call SID (CA...)")
        if wants and target not in conference.participants:
            raise _Refused(16028, detail=f"CallSidToCoach {target}")
        return changes

    async def list_participants(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        query = request.query
        rows = [p for p in [*conference.participants.values(), *conference.pending.values()]
                if all(not query.get(k) or str(v).lower() == query[k].lower()
                       for k, v in (("Muted", p.muted), ("Hold", p.hold), ("Coaching", p.coaching)))]
        return web.json_response(vw.page("participants", (vw.participant_resource(p) for p in rows), request.path, query))

    async def create_participant(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        to = self._check_to(_text(form, "To"))
        from_ = self._check_from(_text(form, "From"), to)
        conference = self._conference(request, create=True, form=form)
        label = _text(form, "Label") or None
        if label and conference.find(label) is not None:
            raise _Refused(20001, detail=f"Label {label!r} is already used in this conference")
        beep = _text(form, "Beep") or "true"
        if beep not in ("true", "false", "onEnter", "onExit"):
            raise _Refused(20001, detail="Beep can be true, false, onEnter or onExit")
        wait_url = _url(form, "WaitUrl") if _text(form, "WaitUrl") else (None if "WaitUrl" not in form else "")
        options: dict[str, Any] = {
            "label": label, "muted": bool(_flag(form, "Muted", False)), "hold": bool(_flag(form, "Hold", False)),
            "hold_url": _url(form, "HoldUrl"), "hold_method": _method(form, "HoldMethod", "GET"),
            "start_conference_on_enter": bool(_flag(form, "StartConferenceOnEnter", True)),
            "end_conference_on_exit": bool(_flag(form, "EndConferenceOnExit", False)), "beep": beep,
            "wait_url": wait_url, "wait_method": _method(form, "WaitMethod", "POST"),
            **self._coaching(form, conference, (False, None)),
        }
        participant = self.engine.add_participant(
            conference, from_=from_, to=to, options=options, status_callback=_url(form, "StatusCallback"),
            status_method=_method(form, "StatusCallbackMethod", "POST"),
            events=_events(form, "StatusCallbackEvent", vw.CALL_EVENTS, "completed"),
            timeout=_int(form, "Timeout", 60, 5, 600),
        )
        return web.json_response(vw.participant_resource(participant), status=201)

    async def fetch_participant(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        return web.json_response(vw.participant_resource(self._participant(request, conference)))

    async def update_participant(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        participant = self._participant(request, conference)
        form = await request.post()
        changes: dict[str, Any] = {}
        for field, name in (("muted", "Muted"), ("hold", "Hold"), ("end_conference_on_exit", "EndConferenceOnExit")):
            value = _flag(form, name)
            if value is not None:
                changes[field] = value
        if _text(form, "HoldUrl"):
            changes["hold_url"] = _url(form, "HoldUrl")
        if "HoldMethod" in form:
            changes["hold_method"] = _method(form, "HoldMethod", "GET")
        if _text(form, "WaitUrl"):
            changes["wait_url"] = _url(form, "WaitUrl")
        if "WaitMethod" in form:
            changes["wait_method"] = _method(form, "WaitMethod", "POST")
        changes.update(self._coaching(form, conference, (participant.coaching, participant.call_sid_to_coach)))
        announce = _url(form, "AnnounceUrl")
        if announce and participant.call_sid not in conference.participants:
            # an announcement is played to a participant in the room: one still ringing has nothing to hear it with
            raise _Refused(20001, detail=f"Participant {participant.call_sid} is not connected to the conference yet: no announcement")
        self.engine.update_participant(participant, changes)
        if announce:
            self.engine._start(None, self.engine._music(participant.call, announce, _method(form, "AnnounceMethod", "POST"),
                                                        "announce", frozenset({"Say", "Play", "Pause"})))
        return web.json_response(vw.participant_resource(participant))

    async def delete_participant(self, request: web.Request) -> web.StreamResponse:
        conference = self._conference(request)
        self.engine.kick(self._participant(request, conference))
        return web.Response(status=204)

    # --- the agent legs' dev API (no credentials: development only) -----------------------------------

    async def client_legs(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.engine.client_legs(request.match_info["identity"]))

    def _leg(self, request: web.Request) -> Any:
        call = self.engine.calls.get(request.match_info["call_sid"])
        if call is None or call.to != vw.CLIENT + request.match_info["identity"]:
            raise web.HTTPNotFound(text='{"error": "no such call for this client"}', content_type="application/json")
        return call

    async def answer_leg(self, request: web.Request) -> web.StreamResponse:
        call = self._leg(request)
        try:
            self.engine.answer(call.sid)
        except VoiceStateError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        await self.engine.wait_for(lambda: call.status != "ringing", timeout=5)
        return web.json_response({"call_sid": call.sid, "status": call.status})

    async def hang_up_leg(self, request: web.Request) -> web.StreamResponse:
        call = self.engine.hang_up(self._leg(request).sid)
        return web.json_response({"call_sid": call.sid, "status": call.status})


def add_voice_routes(app: web.Application, standin: TwilioStandin, engine: VoiceEngine) -> None:
    """The Voice REST resources and the agent legs' dev API on the stand-in's application."""
    api = VoiceApi(standin, engine)
    g = api._guard
    prefix = "/2010-04-01/Accounts/{account_sid}"
    app.router.add_post(prefix + "/Calls.json", g(api.create_call))
    app.router.add_get(prefix + "/Calls.json", g(api.list_calls))
    app.router.add_get(prefix + "/Calls/{call_sid}.json", g(api.fetch_call))
    app.router.add_post(prefix + "/Calls/{call_sid}.json", g(api.update_call))
    app.router.add_get(prefix + "/Conferences.json", g(api.list_conferences))
    app.router.add_get(prefix + "/Conferences/{conference_sid}.json", g(api.fetch_conference))
    app.router.add_post(prefix + "/Conferences/{conference_sid}.json", g(api.update_conference))
    recordings = prefix + "/Conferences/{conference_sid}/Recordings"
    app.router.add_get(recordings + ".json", g(api.list_recordings))
    app.router.add_get(recordings + "/{recording_sid}.json", g(api.fetch_recording))
    app.router.add_post(recordings + "/{recording_sid}.json", g(api.update_recording))
    app.router.add_get(prefix + "/Recordings/{recording_sid}.json", g(api.fetch_account_recording))
    participants = prefix + "/Conferences/{conference_sid}/Participants"
    app.router.add_get(participants + ".json", g(api.list_participants))
    app.router.add_post(participants + ".json", g(api.create_participant))
    app.router.add_get(participants + "/{participant}.json", g(api.fetch_participant))
    app.router.add_post(participants + "/{participant}.json", g(api.update_participant))
    app.router.add_delete(participants + "/{participant}.json", g(api.delete_participant))
    app.router.add_get("/dev/clients/{identity}", api.client_legs)
    app.router.add_post("/dev/clients/{identity}/calls/{call_sid}/answer", api.answer_leg)
    app.router.add_post("/dev/clients/{identity}/calls/{call_sid}/hangup", api.hang_up_leg)
