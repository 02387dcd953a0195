"""Rules of a live call beside its conversation: the warm transfer's consultation, and supervisors on a call.

Pure (no I/O). A consultation is recorded as the attachment of an internal message of the call's
conversation (SQL is the truth, as for every other move: any hub process, and a restart, finds it again):
each step of it (``ringing``, ``talking``, then ``completed``, ``cancelled`` or ``failed``) is one such
message, and the latest one is the consultation's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

CONSULT_TYPE = "consult"  # the attachment's "type"
RINGING, TALKING, COMPLETED, CANCELLED, FAILED = "ringing", "talking", "completed", "cancelled", "failed"
OPEN_STATES = frozenset({RINGING, TALKING})
STATES = frozenset({RINGING, TALKING, COMPLETED, CANCELLED, FAILED})

SUPERVISE_MODES = ("listen", "whisper", "barge")
"""How a supervisor is on a call: ``listen`` (muted: nobody hears them), ``whisper`` (coaching: only the agent
hears them), ``barge`` (heard by everyone)."""
SUPERVISE_WORDS = {"listen": "listened to", "whisper": "whispered to the agent on", "barge": "barged into"}

_LEG_ANSWERED = frozenset({"in-progress", "answered"})
_LEG_FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class Consultation:
    """One consultation of a warm transfer: who consults whom, how far it got, and the target's leg."""

    by_agent: int
    target_agent: int
    target_name: str
    state: str
    leg: str | None = None

    @property
    def open(self) -> bool:
        """Still going: the target's leg rings, or the two agents talk while the caller is held."""
        return self.state in OPEN_STATES

    def moved(self, state: str, leg: str | None = None) -> Consultation:
        """The same consultation in another state."""
        return Consultation(self.by_agent, self.target_agent, self.target_name, state, leg or self.leg)

    def attachment(self) -> dict[str, object]:
        """What the record message carries."""
        return {"type": CONSULT_TYPE, "by_agent": self.by_agent, "target_agent": self.target_agent,
                "target_name": self.target_name, "state": self.state, "leg": self.leg}

    def json(self) -> dict[str, object]:
        """For the console and the use cases' answers."""
        return {k: v for k, v in self.attachment().items() if k != "type"}


def from_attachment(raw: Mapping[str, Any]) -> Consultation | None:
    """The consultation an attachment records, or None if it records none (or something malformed)."""
    if raw.get("type") != CONSULT_TYPE or raw.get("state") not in STATES:
        return None
    by, to = raw.get("by_agent"), raw.get("target_agent")
    if not isinstance(by, int) or not isinstance(to, int) or isinstance(by, bool) or isinstance(to, bool):
        return None
    leg = raw.get("leg")
    return Consultation(by, to, str(raw.get("target_name") or f"agent {to}")[:120], str(raw["state"]),
                        leg if isinstance(leg, str) and leg else None)


def latest(attachment_lists: Iterable[Any]) -> Consultation | None:
    """The latest consultation among messages' attachments, oldest message first (None if there was none)."""
    found: Consultation | None = None
    for attachments in attachment_lists:
        for raw in attachments or ():
            if isinstance(raw, Mapping):
                found = from_attachment(raw) or found
    return found


def refuse_start(current: Consultation | None, agent_id: int, holder: int | None, target_agent: int | None = None) -> tuple[str, str] | None:
    """Why ``agent_id`` may not start a consultation now ((code, words)), or None."""
    if holder != agent_id:
        return "forbidden", "only the agent on the call can consult a colleague"
    if current is not None and current.open:
        return "conflict", f"a consultation with {current.target_name} is already under way: complete or cancel it first"
    if target_agent is not None and target_agent == agent_id:
        return "bad_request", "you cannot consult yourself"
    return None


def refuse_complete(current: Consultation | None, agent_id: int) -> tuple[str, str] | None:
    """Why ``agent_id`` may not complete the transfer now ((code, words)), or None."""
    if current is None or not current.open:
        return "conflict", "there is no consultation under way on this call"
    if current.by_agent != agent_id:
        return "forbidden", "you did not start this consultation"
    if current.state != TALKING:
        return "conflict", f"{current.target_name} has not answered yet"
    return None


def refuse_cancel(current: Consultation | None, agent_id: int, is_supervisor: bool = False) -> tuple[str, str] | None:
    """Why ``agent_id`` may not cancel the consultation ((code, words)), or None (supervisors may cancel any)."""
    if current is None or not current.open:
        return "conflict", "there is no consultation under way on this call"
    if current.by_agent != agent_id and not is_supervisor:
        return "forbidden", "you did not start this consultation"
    return None


def after_leg_status(current: Consultation | None, leg: str, status: str) -> str | None:
    """What the target leg's provider status does to the consultation: the new state, or None (nothing)."""
    if current is None or not current.open or (current.leg is not None and current.leg != leg):
        return None
    if status in _LEG_ANSWERED:
        return TALKING if current.state == RINGING else None
    if status in _LEG_FINAL:
        return FAILED if current.state == RINGING else CANCELLED
    return None


def supervise_leg(mode: str) -> tuple[bool, bool]:
    """The supervisor's participant for a mode: (muted, coaching)."""
    if mode not in SUPERVISE_MODES:
        raise ValueError(f"mode must be one of {', '.join(SUPERVISE_MODES)}")
    return mode == "listen", mode == "whisper"
