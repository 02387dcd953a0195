"""Authentication of machine callers by service token (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from aiohttp import web

from contact_center.api.errors import Handler, error_response
from contact_center.sessions import COOKIE_NAME, SessionGate


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service (the bot's actions) or, later, a logged-in agent."""

    kind: str  # "service" or "agent"
    name: str
    role: str = "service"
    agent_id: int | None = None

    @property
    def actor(self) -> str:
        """How this caller is named in order events and audit records."""
        return f"{self.kind}:{self.name}"


PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def _token_ok(presented: str, tokens: tuple[str, ...]) -> bool:
    """Compare against every accepted token in constant time."""
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(presented.encode(), token.encode())
    return ok


def _public_callback(request: web.Request) -> bool:
    """The customer's "call me back" form (docs/subsystems/callback.md): asking, listing slots, cancelling with the
    token; its own limits (rate per number and per IP, open callbacks per customer) guard it."""
    path = request.path
    return ((request.method == "POST" and path == "/api/callbacks") or (request.method == "GET" and path == "/api/callbacks/slots")
            or (request.method == "DELETE" and path.startswith("/api/callbacks/") and path.count("/") == 3))


def service_token_middleware(
    tokens: tuple[str, ...], sessions: SessionGate | None = None, protected_prefix: str = "/api/"
) -> web.middleware:  # type: ignore[valid-type]
    """A middleware that lets /api/ requests through only with a valid bearer token or agent session."""
    open_paths = {"/api/openapi.json"}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(protected_prefix) or request.path in open_paths or _public_callback(request):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if not header and sessions is not None:
            session = await sessions.load(request.cookies.get(COOKIE_NAME), time.time())
            if session is not None:
                request[PRINCIPAL_KEY] = Principal(
                    kind="agent", name=session.username, role=session.role, agent_id=session.agent_id
                )
                return await handler(request)
        if scheme.lower() != "bearer" or not presented or not _token_ok(presented.strip(), tokens):
            resp = error_response(401, "unauthorized", "a valid service token (Authorization: Bearer ...) or an agent session is required")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="contact-center"'
            return resp
        request[PRINCIPAL_KEY] = Principal(kind="service", name="token")
        return await handler(request)

    return middleware
