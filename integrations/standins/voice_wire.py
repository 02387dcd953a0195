"""What Twilio Voice puts on the wire, for the stand-in: webhook forms, status callbacks, JSON resources.

The field sets follow requests recorded from Twilio and published in open-source code (the "A call comes
in" webhook with ``CallToken`` and the ``Called*``/``Caller*``/``From*``/``To*`` place fields; a
``<Gather>`` action with ``Digits``, ``FinishedOnKey`` and ``msg=Gather End``; call progress callbacks
with ``CallbackSource=call-progress-events``, ``SequenceNumber``, ``Timestamp`` and, at the end,
``CallDuration`` and ``Duration``) and Twilio's documentation (``SpeechResult``/``Confidence``; the
conference status callback's ``ConferenceSid``, ``FriendlyName``, ``StatusCallbackEvent``, ``Muted``,
``Hold``, ``Coaching``, ``ParticipantCallStatus``, ``ReasonParticipantLeft``,
``ReasonConferenceEnded``...). The JSON resources have the keys of Twilio's Call, Conference and
Participant resources (those the ``twilio`` package reads). Forms are written with their fields in
alphabetical order, as recorded inbound-call webhooks have them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from integrations.standins import twilio_wire as wire

API_VERSION = wire.API_VERSION
CLIENT = "client:"
TERMINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
CONFERENCE_EVENTS = ("start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement")
RECORDING_EVENTS = ("in-progress", "completed", "absent")
# Twilio's hold music (what an unset waitUrl / holdUrl plays): the stand-in never fetches it.
DEFAULT_MUSIC = "http://twimlets.com/holdmusic?Bucket=com.twilio.music.classical"
APPLICATION_ERROR_WORDS = "We are sorry, an application error has occurred. Goodbye."


def is_client(address: str) -> bool:
    """``client:<identity>``: a Voice SDK endpoint."""
    return address.startswith(CLIENT)


def _place(prefix: str, address: str) -> dict[str, str]:
    """``{prefix}City/Country/State/Zip`` for a phone number (the country from its number, the rest unknown)."""
    if is_client(address) or not address.startswith("+"):
        return {}
    return {f"{prefix}City": "", f"{prefix}Country": wire.country_of(address), f"{prefix}State": "", f"{prefix}Zip": ""}


def call_form(
    *, account_sid: str, call_sid: str, from_: str, to: str, status: str, direction: str,
    parent_call_sid: str | None = None, call_token: str | None = None, extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The parameters Twilio sends with every request about a call (TwiML fetches, actions, callbacks)."""
    form: dict[str, str] = {
        "AccountSid": account_sid, "ApiVersion": API_VERSION, "CallSid": call_sid, "CallStatus": status,
        "Called": to, "Caller": from_, "Direction": direction, "From": from_, "To": to,
        **_place("Called", to), **_place("Caller", from_), **_place("From", from_), **_place("To", to),
    }
    if call_token:
        form["CallToken"] = call_token
    if parent_call_sid:
        form["ParentCallSid"] = parent_call_sid
    form.update(extra or {})
    return dict(sorted(form.items()))


def progress_fields(*, sequence: int, now: datetime, duration: int | None = None) -> dict[str, str]:
    """What a call progress (status) callback adds to the call's parameters."""
    fields = {"CallbackSource": "call-progress-events", "SequenceNumber": str(sequence), "Timestamp": wire.rfc2822(now)}
    if duration is not None:
        fields["CallDuration"] = str(duration)
        fields["Duration"] = str((duration + 59) // 60)
    return fields


def conference_form(
    *, account_sid: str, conference_sid: str, friendly_name: str, event: str, sequence: int, now: datetime,
    participant: Mapping[str, Any] | None = None, extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A conference status callback (``StatusCallbackEvent`` = ``conference-start``, ``participant-join``...)."""
    form = {"AccountSid": account_sid, "ConferenceSid": conference_sid, "FriendlyName": friendly_name,
            "SequenceNumber": str(sequence), "StatusCallbackEvent": event, "Timestamp": wire.rfc2822(now)}
    if participant is not None:
        form.update({
            "CallSid": str(participant["call_sid"]), "Coaching": _bool(participant["coaching"]),
            "EndConferenceOnExit": _bool(participant["end_conference_on_exit"]), "Hold": _bool(participant["hold"]),
            "Muted": _bool(participant["muted"]),
            "StartConferenceOnEnter": _bool(participant["start_conference_on_enter"]),
        })
        if participant.get("label"):
            form["ParticipantLabel"] = str(participant["label"])
        if participant.get("call_sid_to_coach"):
            form["CallSidToCoach"] = str(participant["call_sid_to_coach"])
    form.update(extra or {})
    return dict(sorted(form.items()))


def _bool(value: object) -> str:
    return "true" if value else "false"


def _date(when: datetime | None) -> str | None:
    return wire.rfc2822(when) if when else None


def _uri(account_sid: str, tail: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/{tail}"


def call_resource(call: Any) -> dict[str, Any]:
    """A Call resource as Twilio's JSON has it."""
    uri = _uri(call.account_sid, f"Calls/{call.sid}")
    subresources = ("events", "feedback", "notifications", "payments", "recordings", "siprec", "streams",
                    "transcriptions", "user_defined_message_subscriptions", "user_defined_messages")
    return {
        "account_sid": call.account_sid, "annotation": None, "answered_by": None, "api_version": API_VERSION,
        "caller_name": None, "date_created": _date(call.created), "date_updated": _date(call.updated),
        "direction": call.direction, "duration": str(call.duration) if call.duration is not None else None,
        "end_time": _date(call.end_time), "forwarded_from": None, "from": call.from_,
        "from_formatted": call.from_, "group_sid": None, "parent_call_sid": call.parent_call_sid,
        "phone_number_sid": call.phone_number_sid, "price": None, "price_unit": "USD", "queue_time": "0",
        "sid": call.sid, "start_time": _date(call.start_time), "status": call.status,
        "subresource_uris": {name: f"{uri}/{''.join(p.title() for p in name.split('_'))}.json" for name in subresources},
        "to": call.to, "to_formatted": call.to, "trunk_sid": None, "uri": f"{uri}.json",
    }


def conference_resource(conference: Any) -> dict[str, Any]:
    """A Conference resource as Twilio's JSON has it."""
    uri = _uri(conference.account_sid, f"Conferences/{conference.sid}")
    return {
        "account_sid": conference.account_sid, "api_version": API_VERSION,
        "call_sid_ending_conference": conference.call_sid_ending, "date_created": _date(conference.created),
        "date_updated": _date(conference.updated), "friendly_name": conference.friendly_name,
        "reason_conference_ended": conference.reason_ended, "region": "us1", "sid": conference.sid,
        "status": conference.status,
        "subresource_uris": {"participants": f"{uri}/Participants.json", "recordings": f"{uri}/Recordings.json"},
        "uri": f"{uri}.json",
    }


def recording_resource(recording: Any) -> dict[str, Any]:
    """A (conference) Recording resource as Twilio's JSON has it."""
    conference = recording.conference
    return {
        "account_sid": recording.account_sid, "api_version": API_VERSION, "call_sid": None,
        "conference_sid": conference.sid, "channels": 1, "date_created": _date(recording.created),
        "date_updated": _date(recording.updated), "start_time": _date(recording.start_time),
        "duration": str(recording.duration) if not recording.live else "-1", "encryption_details": None,
        "error_code": None, "price": None, "price_unit": "USD", "sid": recording.sid, "source": "Conference",
        "status": recording.status, "track": "both",
        "uri": _uri(recording.account_sid, f"Conferences/{conference.sid}/Recordings/{recording.sid}") + ".json",
    }


def participant_resource(participant: Any) -> dict[str, Any]:
    """A conference Participant resource as Twilio's JSON has it."""
    conference = participant.conference
    return {
        "account_sid": conference.account_sid, "call_sid": participant.call_sid,
        "call_sid_to_coach": participant.call_sid_to_coach, "coaching": participant.coaching,
        "conference_sid": conference.sid, "date_created": _date(participant.created),
        "date_updated": _date(participant.updated), "end_conference_on_exit": participant.end_conference_on_exit,
        "hold": participant.hold, "label": participant.label, "muted": participant.muted, "queue_time": "0",
        "start_conference_on_enter": participant.start_conference_on_enter, "status": participant.status,
        "uri": _uri(conference.account_sid, f"Conferences/{conference.sid}/Participants/{participant.call_sid}.json"),
    }


def page(key: str, items: Iterable[dict[str, Any]], path: str, query: Mapping[str, str]) -> dict[str, Any]:
    """A list answer, as Twilio pages its 2010-04-01 lists (all on one page here)."""
    rows = list(items)
    size = int(query.get("PageSize", "50") or 50)
    rows = rows[:size]
    base = f"{path}?PageSize={size}&Page=0"
    return {key: rows, "end": max(len(rows) - 1, 0), "first_page_uri": base, "next_page_uri": None, "page": 0,
            "page_size": size, "previous_page_uri": None, "start": 0, "uri": base}
