"""What the use cases refuse, and the checks of what clients send them."""

from __future__ import annotations

from typing import Any

MAX_TEXT = 4000


class HubError(Exception):
    """A request the hub refuses, with a code for the client (bad_request, not_found, forbidden, conflict,
    opted_out, outside_window)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def as_ack(self) -> dict[str, Any]:
        """The Socket.IO acknowledgement for this error."""
        return {"ok": False, "error": {"code": self.code, "message": str(self)}}


def clean_text(raw: Any, max_text: int = MAX_TEXT, *, allow_empty: bool = False) -> str:
    """A message text: a non-empty string of bounded length (kept as typed, never interpreted)."""
    if not isinstance(raw, str):
        raise HubError("bad_request", "text must be a string")
    text = raw.replace("\x00", "").strip()
    if not text and not allow_empty:
        raise HubError("bad_request", "text is empty")
    if len(text) > max_text:
        raise HubError("bad_request", f"text is longer than {max_text} characters")
    return text


def client_id(raw: Any) -> str:
    """A client message id: 1..100 printable characters."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= 100 or not raw.isprintable():
        raise HubError("bad_request", "client_msg_id must be 1 to 100 printable characters")
    return raw


def conv_id(raw: Any) -> int:
    """A conversation id from a client payload."""
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise HubError("bad_request", "conversation_id must be a positive integer")
    return raw


def agent_id(raw: Any) -> int:
    """An agent id from a client payload."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise HubError("bad_request", "agent_id must be an agent's id")
    return raw
