"""Co-browsing sessions: the lifecycle and the relay's limits, without I/O.

A session belongs to one conversation (web chat), one agent (who holds the conversation) and that
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


REASON_TEXT: dict[EndReason, str] = {
    EndReason.DECLINED: "the customer declined",
    EndReason.NO_ANSWER: "the customer did not answer within 60 s",
    EndReason.CUSTOMER_ENDED: "ended by the customer",
    EndReason.AGENT_ENDED: "ended by the agent",
    EndReason.CUSTOMER_LEFT: "the customer left the page",
    EndReason.CONVERSATION_ENDED: "the conversation was closed or transferred",
}


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

    def public(self) -> dict[str, Any]:
        """What either side may know of the session."""
        return {
            "session_id": self.id, "conversation_id": self.conversation_id, "state": self.state.value,
            "agent_name": self.agent_name, "consent_deadline": self.consent_deadline,
            "started_at": self.started_at,
            "end_reason": self.end_reason.value if self.end_reason else None,
        }


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
