"""Agent sessions: a signed, expiring cookie (HMAC-SHA256), refreshed on use, with an idle timeout.

A logout ends the session on the server too: its id is written down as revoked (in SQL, so every hub
process refuses a copy of the cookie), which :class:`SessionGate` checks on every load. Sockets opened
with a session before it ended are found by :meth:`SessionGate.ended_sockets` (each process asks about
its own sockets: at once on the process that took the logout, every half minute on the others).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from http.cookies import SimpleCookie
from dataclasses import dataclass, replace
from typing import Awaitable, Callable, Collection

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
    session_id: str  # random, kept when the cookie is refreshed; what a logout revokes

    @classmethod
    def start(cls, agent_id: int, username: str, display_name: str, role: str, now: float) -> "AgentSession":
        """A new session, with a new random id."""
        return cls(agent_id, username, display_name, role, now, now, secrets.token_urlsafe(18))

    def seen(self, now: float) -> "AgentSession":
        """The same session, last seen now (the idle timer restarts)."""
        return replace(self, seen_at=now)

    @property
    def expires_at(self) -> float:
        """When the session ends whatever happens (the absolute timeout)."""
        return self.issued_at + ABSOLUTE_TIMEOUT_SECONDS


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


class SessionGate:
    """Signed cookies plus server-side revocation: what every reader of an agent session goes through.

    :param revoked_among: which of the given session ids were ended by logout, in one read (the
        composition root gives a SQL read); a cookie's load asks about one id, a sweep about all.
    :param revoke: write a session id down as ended, until its absolute expiry (epoch seconds).
    """

    def __init__(
        self, signer: SessionSigner, revoked_among: Callable[[Collection[str]], Awaitable[set[str]]],
        revoke: Callable[[str, int, float], Awaitable[None]],
    ) -> None:
        self.signer = signer
        self._revoked_among = revoked_among
        self._revoke = revoke
        self._sockets: dict[tuple[str, str], AgentSession] = {}  # (namespace, sid) -> the session it opened with

    def attach(self, namespace: str, sid: str, session: AgentSession) -> None:
        """A socket of this process was opened with ``session``."""
        self._sockets[(namespace, sid)] = session

    def detach(self, namespace: str, sid: str) -> None:
        """That socket is gone."""
        self._sockets.pop((namespace, sid), None)

    async def ended_sockets(self, now: float) -> list[tuple[str, str]]:
        """This process's sockets whose session was logged out (on any process) or is past its absolute timeout.

        The idle timeout does not count here: a console that only talks over its socket is not idle.
        """
        ids = {session.session_id for session in self._sockets.values()}
        if not ids:
            return []
        revoked = await self._revoked_among(ids)
        return [key for key, session in self._sockets.items() if session.session_id in revoked or now >= session.expires_at]

    def dump(self, session: AgentSession) -> str:
        """The cookie value for a session."""
        return self.signer.dump(session)

    async def load(self, value: str | None, now: float) -> AgentSession | None:
        """The session in a cookie: None if forged, malformed, idle too long, too old or logged out."""
        session = self.signer.load(value, now)
        if session is None or session.session_id in await self._revoked_among((session.session_id,)):
            return None
        return session

    async def load_from_environ(self, environ: dict[str, object], now: float) -> AgentSession | None:
        """The session of a Socket.IO connection: the cookie in its handshake's ``HTTP_COOKIE`` header."""
        morsel = SimpleCookie(str(environ.get("HTTP_COOKIE", ""))).get(COOKIE_NAME)
        return await self.load(morsel.value if morsel else None, now)

    async def end(self, session: AgentSession) -> None:
        """Log the session out everywhere: its cookie (and any copy of it) is refused from now on."""
        await self._revoke(session.session_id, session.agent_id, session.expires_at)
