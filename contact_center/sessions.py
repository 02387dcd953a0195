"""Agent sessions: a signed, expiring cookie (HMAC-SHA256), refreshed on use, with an idle timeout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

COOKIE_NAME = "cc_session"
IDLE_TIMEOUT_SECONDS = 30 * 60
ABSOLUTE_TIMEOUT_SECONDS = 12 * 3600


@dataclass(frozen=True)
class AgentSession:
    """Who is logged in, with which role, since when and last seen when."""

    agent_id: int
    username: str
    display_name: str
    role: str
    issued_at: float
    seen_at: float


def _b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Decode URL-safe base64 without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and verifies session cookies with the hub's session secret.

    :param secret: the ``SESSION_SECRET``; every hub process must share it.
    """

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("cc-session:" + secret).encode()).digest()

    def _sig(self, body: str) -> str:
        """The signature of a cookie body."""
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def dump(self, session: AgentSession) -> str:
        """The cookie value for a session."""
        body = _b64(json.dumps(session.__dict__, separators=(",", ":")).encode())
        return f"{body}.{self._sig(body)}"

    def load(self, value: str | None, now: float) -> AgentSession | None:
        """The session in a cookie, or None if it is forged, malformed, idle too long or too old."""
        if not value or value.count(".") != 1:
            return None
        body, sig = value.split(".")
        if not hmac.compare_digest(sig, self._sig(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = AgentSession(**data)
        except (ValueError, TypeError):
            return None
        if now - session.seen_at > IDLE_TIMEOUT_SECONDS or now - session.issued_at > ABSOLUTE_TIMEOUT_SECONDS:
            return None
        return session
