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
CONSULT_HOLD = "consult"  # the shared state's hold on a consulted colleague (StateStore.hold_agent): while the
# consultation is open (ringing or talking) the router offers them nothing; released when it ends either way
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


# --- call recording ------------------------------------------------------------------------------------------
#
# A recorded call's recording is kept, like a consultation, as the attachment of internal messages of the call's
# conversation: each state the provider reports (or the agent asks for) is one message, the latest one is the
# recording's state. The attachment is a ``channel`` one (``{"type": "channel", "recording": {...}}``) so that the
# console gets it as the message's ``extra.recording`` and shows the recording indicator.

RECORDING_KEY = "recording"
REC_IN_PROGRESS, REC_PAUSED, REC_COMPLETED, REC_ABSENT, REC_FAILED = "in-progress", "paused", "completed", "absent", "failed"
RECORDING_STATES = frozenset({REC_IN_PROGRESS, REC_PAUSED, REC_COMPLETED, REC_ABSENT, REC_FAILED})
RECORDING_WORDS = {
    REC_IN_PROGRESS: "The call is being recorded.",
    REC_PAUSED: "Recording paused while the caller types digits (those seconds are skipped, not kept).",
    REC_COMPLETED: "The call's recording is complete.",
    REC_ABSENT: "The call's recording is empty (no audio was recorded).",
    REC_FAILED: "The call could not be recorded.",
}


@dataclass(frozen=True)
class Recording:
    """A call's recording as last known: its provider id, state, and (once complete) its link and length."""

    sid: str
    state: str
    url: str | None = None
    duration: int | None = None

    @property
    def live(self) -> bool:
        """Still recording or paused (the call goes on)."""
        return self.state in (REC_IN_PROGRESS, REC_PAUSED)

    def attachment(self) -> dict[str, object]:
        return {"type": "channel", RECORDING_KEY: self.json()}

    def json(self) -> dict[str, object]:
        return {k: v for k, v in {"sid": self.sid, "state": self.state, "url": self.url, "duration": self.duration}.items()
                if v is not None}


def recording_from(raw: Mapping[str, Any]) -> Recording | None:
    """The recording an attachment records, or None."""
    if raw.get("type") != "channel" or not isinstance(raw.get(RECORDING_KEY), Mapping):
        return None
    rec = raw[RECORDING_KEY]
    sid, state = rec.get("sid"), rec.get("state")
    if not isinstance(sid, str) or not sid or state not in RECORDING_STATES:
        return None
    url, duration = rec.get("url"), rec.get("duration")
    return Recording(sid[:64], str(state), url if isinstance(url, str) and url else None,
                     duration if isinstance(duration, int) and not isinstance(duration, bool) else None)


def latest_recording(attachment_lists: Iterable[Any]) -> Recording | None:
    """The latest recording state among messages' attachments, oldest message first (None if none)."""
    found: Recording | None = None
    for attachments in attachment_lists:
        for raw in attachments or ():
            if isinstance(raw, Mapping):
                found = recording_from(raw) or found
    return found


def recording_moves(current: Recording | None, sid: str, state: str) -> bool:
    """Whether the provider's news (``state`` of recording ``sid``) changes what is known. A new recording (the
    first, or one after a requeue) does; for the same one only its end does (``completed``, ``absent``,
    ``failed``) while it is live: a repeat, or a late ``in-progress`` (after a pause, or after the end), changes
    nothing. Pause and resume are the agent's own moves (:func:`refuse_pause`), never the provider's news."""
    if state not in RECORDING_STATES or state == REC_PAUSED:
        return False
    if current is None or current.sid != sid:
        return True
    return current.live and state != REC_IN_PROGRESS


def refuse_pause(current: Recording | None, pause: bool) -> tuple[str, str] | None:
    """Why the recording may not be paused (``pause``) or resumed now ((code, words)), or None."""
    if current is None or not current.live:
        return "conflict", "this call is not being recorded"
    if pause and current.state == REC_PAUSED:
        return "conflict", "the recording is already paused"
    if not pause and current.state != REC_PAUSED:
        return "conflict", "the recording is not paused"
    return None
