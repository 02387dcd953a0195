"""Co-browsing sessions: the lifecycle and the relay's limits, without I/O.

A session belongs to one conversation (a web chat, or a phone call: then the caller's browser joins with a
six-digit code the agent reads out: :func:`format_code`, :func:`normalise_code`; its single use and the wrong-try
limits below are kept in the shared ``CobrowseStore``), one agent (who holds the conversation) and that
conversation's customer. It is ``pending`` until the customer answers (``CONSENT_SECONDS`` without an
answer counts as declined), ``live`` while the customer's page is recorded and relayed, ``ended`` after.
Nothing is recorded before ``live``; the hub relays page events only while ``live``, only from the
conversation's customer to the agent who holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

CONSENT_SECONDS = 60.0  # no answer to the consent prompt for this long: declined
RECONNECT_GRACE_SECONDS = 20.0  # the customer's page may go (a navigation) and come back this long
MAX_CHUNK_CHARS = 20_000  # one relayed piece of a batch of page events (JSON text); the packet limit is 64 KiB
MAX_PARTS = 256  # a batch may be cut into at most this many pieces (5 MB of JSON)
EVENT_BURST = 400  # relayed pieces at once per customer socket, then ...
EVENTS_PER_SECOND = 80.0  # ... this many a second
POINTER_BURST = 60
POINTERS_PER_SECOND = 30.0

# on a call: the code the agent reads out and the caller types into the widget
CODE_DIGITS = 6
CODE_SECONDS = 600.0  # a code lasts 10 minutes (and is used once)
CODE_MAX_FAILURES = 5  # wrong codes from one socket or one address within CODE_FAILURE_WINDOW ...
CODE_FAILURE_WINDOW = 600.0
CODE_LOCKOUT_SECONDS = 300.0  # ... then every try is refused this long (``rate_limited``)

# guided control: the agent acts on the customer's page after a second consent
CONTROL_BURST = 20  # control actions at once, then ...
CONTROL_PER_SECOND = 10.0  # ... this many a second
CONTROL_ACTIONS = frozenset({"scroll", "click", "fill"})
MAX_FILL_CHARS = 500

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class CobrowseState(StrEnum):
    PENDING = "pending"
    LIVE = "live"
    ENDED = "ended"


class EndReason(StrEnum):
    """Why a session ended (the timeline says it in words)."""

    DECLINED = "declined"  # the customer said no
    NO_ANSWER = "no_answer"  # CONSENT_SECONDS without an answer
    CUSTOMER_ENDED = "customer_ended"
    AGENT_ENDED = "agent_ended"
    CUSTOMER_LEFT = "customer_left"  # no page of the customer came back within RECONNECT_GRACE_SECONDS
    CONVERSATION_ENDED = "conversation_ended"  # closed or transferred: the agent no longer holds it
    CODE_EXPIRED = "code_expired"  # on a call: nobody typed the code within CODE_SECONDS


REASON_TEXT: dict[EndReason, str] = {
    EndReason.DECLINED: "the customer declined",
    EndReason.NO_ANSWER: "the customer did not answer within 60 s",
    EndReason.CUSTOMER_ENDED: "ended by the customer",
    EndReason.AGENT_ENDED: "ended by the agent",
    EndReason.CUSTOMER_LEFT: "the customer left the page",
    EndReason.CONVERSATION_ENDED: "the conversation was closed or transferred",
    EndReason.CODE_EXPIRED: "the code was not typed in within 10 minutes",
}


class ControlState(StrEnum):
    """Guided control, the second consent: off until the agent asks, then the customer answers."""

    OFF = "off"
    REQUESTED = "requested"
    GRANTED = "granted"


class CobrowseError(Exception):
    """A refused request: ``code`` is one of the Socket.IO ack codes (``docs/subsystems/realtime.md``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class CobrowseSession:
    id: str
    conversation_id: int
    customer_id: int
    agent_id: int
    agent_name: str
    state: CobrowseState
    requested_at: float
    consent_deadline: float
    started_at: float | None = None
    ended_at: float | None = None
    end_reason: EndReason | None = None
    via_code: bool = False  # a call's session: the caller's browser joined with the code read out
    linked_visitor: str | None = None  # the browser (visitor id) that joined with the code
    control: ControlState = ControlState.OFF
    code: str | None = None  # a call's code while it waits (the agent may be shown it again); gone once used
    code_expires_at: float | None = None

    def record(self) -> dict[str, Any]:
        """The stored form (JSON-safe; the shared store compares it as text)."""
        return {
            "id": self.id, "conversation_id": self.conversation_id, "customer_id": self.customer_id,
            "agent_id": self.agent_id, "agent_name": self.agent_name, "state": self.state.value,
            "requested_at": self.requested_at, "consent_deadline": self.consent_deadline, "started_at": self.started_at,
            "ended_at": self.ended_at, "end_reason": self.end_reason.value if self.end_reason else None,
            "via_code": self.via_code, "linked_visitor": self.linked_visitor, "control": self.control.value,
            "code": self.code, "code_expires_at": self.code_expires_at,
        }

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> CobrowseSession:
        return cls(
            id=str(d["id"]), conversation_id=int(d["conversation_id"]), customer_id=int(d["customer_id"]),
            agent_id=int(d["agent_id"]), agent_name=str(d["agent_name"]), state=CobrowseState(d["state"]),
            requested_at=float(d["requested_at"]), consent_deadline=float(d["consent_deadline"]),
            started_at=None if d.get("started_at") is None else float(d["started_at"]),
            ended_at=None if d.get("ended_at") is None else float(d["ended_at"]),
            end_reason=EndReason(d["end_reason"]) if d.get("end_reason") else None,
            via_code=bool(d.get("via_code")), linked_visitor=d.get("linked_visitor"),
            control=ControlState(d.get("control") or "off"), code=d.get("code"),
            code_expires_at=None if d.get("code_expires_at") is None else float(d["code_expires_at"]),
        )

    def accept(self, now: float) -> CobrowseSession:
        if self.state is not CobrowseState.PENDING:
            raise CobrowseError("conflict", "this co-browsing request is no longer open")
        if now > self.consent_deadline:
            raise CobrowseError("conflict", "this co-browsing request has expired")
        return replace(self, state=CobrowseState.LIVE, started_at=now)

    def end(self, now: float, reason: EndReason) -> CobrowseSession:
        if self.state is CobrowseState.ENDED:
            raise CobrowseError("conflict", "this co-browsing session has already ended")
        return replace(self, state=CobrowseState.ENDED, ended_at=now, end_reason=reason)

    def join(self, now: float, visitor: str) -> CobrowseSession:
        """The caller typed the code (their consent): live, linked to that browser."""
        if not self.via_code:
            raise CobrowseError("bad_request", "this session is not joined with a code")
        return replace(self.accept(now), linked_visitor=visitor, code=None, code_expires_at=None)

    def ask_control(self) -> CobrowseSession:
        if self.state is not CobrowseState.LIVE:
            raise CobrowseError("conflict", "guided control needs a live co-browsing session")
        if self.control is ControlState.GRANTED:
            return self
        return replace(self, control=ControlState.REQUESTED)

    def answer_control(self, grant: bool) -> CobrowseSession:
        if self.state is not CobrowseState.LIVE or self.control is not ControlState.REQUESTED:
            raise CobrowseError("conflict", "guided control was not asked for")
        return replace(self, control=ControlState.GRANTED if grant else ControlState.OFF)

    def revoke_control(self) -> CobrowseSession:
        return replace(self, control=ControlState.OFF)

    def public(self) -> dict[str, Any]:
        """What either side may know of the session."""
        return {
            "session_id": self.id, "conversation_id": self.conversation_id, "state": self.state.value,
            "agent_name": self.agent_name, "consent_deadline": self.consent_deadline,
            "started_at": self.started_at,
            "end_reason": self.end_reason.value if self.end_reason else None,
            "via_code": self.via_code, "control": self.control.value,
        }

    def for_customer(self) -> dict[str, Any]:
        """What the customer's widget gets: for a call's session, nothing of the call's conversation."""
        out = self.public()
        if self.via_code:
            del out["conversation_id"]
        return out


# ---------------------------------------------------------------------- the code of a call's session
_CODE_INPUT = re.compile(r"[0-9 \-]{6,12}")


def format_code(n: int) -> str:
    """A code is six digits, leading zeros kept (``n`` from 0 to 999,999: a uniform random number)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 10**CODE_DIGITS:
        raise ValueError("a code is a number from 0 to 999999")
    return f"{n:0{CODE_DIGITS}d}"


def normalise_code(raw: Any) -> str:
    """What the caller typed, as six digits (spaces and dashes allowed: "123 456", "123-456")."""
    if not isinstance(raw, str) or not _CODE_INPUT.fullmatch(raw.strip()):
        raise CobrowseError("bad_request", "the code is six digits")
    digits = raw.replace(" ", "").replace("-", "").strip()
    if len(digits) != CODE_DIGITS:
        raise CobrowseError("bad_request", "the code is six digits")
    return digits


def valid_session_id(raw: Any) -> str:
    if not isinstance(raw, str) or not _SESSION_ID.fullmatch(raw):
        raise CobrowseError("bad_request", "session_id must be 16 to 64 letters, digits, - or _")
    return raw


@dataclass(frozen=True)
class EventPiece:
    """One relayed piece of a batch of the recorder's events: ``data`` is JSON text the hub never reads."""

    seq: int
    part: int
    parts: int
    data: str

    def relayed(self) -> dict[str, Any]:
        return {"seq": self.seq, "part": self.part, "parts": self.parts, "data": self.data}


def _whole(raw: Any, name: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise CobrowseError("bad_request", f"{name} must be a whole number from {low} to {high}")
    return raw


def event_piece(payload: dict[str, Any]) -> EventPiece:
    """Check a ``cobrowse_events`` payload (``{session_id, seq, part?, parts?, data}``)."""
    seq = _whole(payload.get("seq"), "seq", 0, 2**53)
    parts = _whole(payload.get("parts", 1), "parts", 1, MAX_PARTS)
    part = _whole(payload.get("part", 0), "part", 0, parts - 1)
    data = payload.get("data")
    if not isinstance(data, str) or not data:
        raise CobrowseError("bad_request", "data must be a non-empty string")
    if len(data) > MAX_CHUNK_CHARS:
        raise CobrowseError("too_large", f"a piece of events may be at most {MAX_CHUNK_CHARS} characters: cut it in parts")
    return EventPiece(seq, part, parts, data)


def pointer(payload: dict[str, Any]) -> dict[str, Any]:
    """Check the agent's pointer: ``{x, y}`` in the customer's viewport (CSS pixels), ``highlight`` to draw a box."""
    out: dict[str, Any] = {}
    for key in ("x", "y"):
        value = payload.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value <= 100_000:
            raise CobrowseError("bad_request", f"{key} must be a number of pixels")
        out[key] = round(float(value), 1)
    out["highlight"] = payload.get("highlight") is True
    out["hide"] = payload.get("hide") is True
    return out


# ---------------------------------------------------------------------- guided control
def control_action(payload: dict[str, Any]) -> dict[str, Any]:
    """Check the agent's action on the customer's page (only with control granted):
    ``{action: "scroll", x, y}`` (the page's scroll position), ``{action: "click", target}``,
    ``{action: "fill", target, value}``. ``target`` is the element's id in the recording (rrweb's mirror: the
    customer's browser finds it, and refuses a masked or blocked element); ``id`` (optional) comes back in the
    customer's ``cobrowse_control_result``."""
    action = payload.get("action")
    if action not in CONTROL_ACTIONS:
        raise CobrowseError("bad_request", "action must be scroll, click or fill")
    out: dict[str, Any] = {"action": action}
    if "id" in payload:
        out["id"] = _whole(payload.get("id"), "id", 0, 2**31)
    if action == "scroll":
        for key in ("x", "y"):
            value = payload.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1_000_000:
                raise CobrowseError("bad_request", f"{key} must be a number of pixels")
            out[key] = round(float(value))
        return out
    out["target"] = _whole(payload.get("target"), "target", 1, 2**31)
    if action == "fill":
        value = payload.get("value")
        if not isinstance(value, str) or len(value) > MAX_FILL_CHARS:
            raise CobrowseError("bad_request", f"value must be text of at most {MAX_FILL_CHARS} characters")
        out["value"] = value
    return out
