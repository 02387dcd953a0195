"""Document push (issue 17): a library of files, pushed by an agent onto their web chat customer's page.

- ``POST /console/documents`` (admins and supervisors): one file (multipart field ``file``), PDF, PNG, JPEG or
  WebP by its bytes, at most ``MAX_BYTES`` (10 MB). ``GET /console/documents`` (any agent): the library.
- ``/agent`` ``document_push {conversation_id, document_id}``: only the agent who holds the web chat; the widget
  gets ``document {push_id, name, content_type, size, url, expires_at}``. The link is signed for that push and
  that customer and lasts ``LINK_SECONDS`` (15 min); it opens only with the visitor id of that customer's widget
  (header ``X-CC-Visitor``), so a copied link alone opens nothing.
- ``/customer`` ``document_event {push_id, event: delivered|opened}``; ``GET ...?download=1`` is ``downloaded``.
- The timeline (kind ``document_push``) keeps the push (name, the file's SHA-256, who sent it) and the first
  ``delivered``, ``opened`` and ``downloaded``.

Pushes live in this hub process (like co-browsing sessions): ``docs/subsystems/cobrowse.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from contact_center.api.errors import error_response
from contact_center.channels import WEB_CHAT
from contact_center.domain.cobrowse import CobrowseError
from contact_center.hub.service import AgentRef, HubError, HubService, room_conv
from contact_center.media_routes import MEDIA_KEY, content_disposition, read_uploaded_file

log = logging.getLogger("contact_center.documents")

MAX_BYTES = 10 * 1024 * 1024
LINK_SECONDS = 15 * 60
DOCUMENT_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/webp"})
LIBRARY_ROLES = frozenset({"admin", "supervisor"})
EVENTS = ("delivered", "opened", "downloaded")


@dataclass
class Push:
    id: str
    document_id: int
    name: str
    content_type: str
    size: int
    media_key: str
    customer_id: int
    conversation_id: int
    agent_id: int
    agent_name: str
    expires_at: int
    seen: set[str] = field(default_factory=set)


class DocumentPushes:
    """The pushes of this hub process, their links, and what the customer did with them."""

    def __init__(self, hub: HubService, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.hub, self.secret, self.clock = hub, secret, clock
        self.pushes: dict[str, Push] = {}

    def _sig(self, push: Push) -> str:
        msg = f"{push.id}:{push.document_id}:{push.customer_id}:{push.expires_at}"
        return hmac.new(self.secret.encode(), msg.encode(), hashlib.sha256).hexdigest()

    def url(self, push: Push) -> str:
        return f"/documents/push/{push.id}?exp={push.expires_at}&sig={self._sig(push)}"

    async def push(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        from crm_store.repositories import documents as documents_repo

        p = data if isinstance(data, dict) else {}
        conv = await self.hub.assigned(agent, p.get("conversation_id"))
        if conv.assigned_agent_id != agent.id:
            raise CobrowseError("forbidden", "this conversation is not assigned to you")
        if conv.channel != WEB_CHAT.name:
            raise CobrowseError("bad_request", "documents are pushed onto a web chat's page")
        raw = p.get("document_id")
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise CobrowseError("bad_request", "document_id must be a whole number")
        async with self.hub.db.session() as s:
            doc = await documents_repo.get_document(s, raw)
        if doc is None or doc.id is None:
            raise CobrowseError("not_found", "no such document")
        now = self.clock()
        self._forget_old(now)
        push = Push(id=secrets.token_urlsafe(18), document_id=doc.id, name=doc.name, content_type=doc.content_type, size=doc.size,
                    media_key=doc.media_key, customer_id=conv.customer_id, conversation_id=conv.id, agent_id=agent.id,
                    agent_name=agent.display_name or agent.username, expires_at=int(now + LINK_SECONDS))
        self.pushes[push.id] = push
        await self._record(push, "pushed", f"{push.agent_name} pushed the document {push.name!r}")
        body = {"push_id": push.id, "name": push.name, "content_type": push.content_type, "size": push.size,
                "url": self.url(push), "expires_at": push.expires_at, "agent_name": push.agent_name}
        await self.hub.emitter.emit("document", body, to=room_conv(conv.id), namespace="/customer")
        return {"push": {k: v for k, v in body.items() if k != "url"}}

    async def customer_event(self, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        p = data if isinstance(data, dict) else {}
        push = self.pushes.get(p.get("push_id") if isinstance(p.get("push_id"), str) else "")
        if push is None or push.customer_id != session_data.get("customer_id"):
            raise CobrowseError("not_found", "no such document")
        event = p.get("event")
        if event not in ("delivered", "opened"):
            raise CobrowseError("bad_request", "event must be delivered or opened")
        await self.seen(push, str(event))
        return {}

    async def seen(self, push: Push, event: str) -> None:
        if event in push.seen:
            return  # the first one only
        push.seen.add(event)
        await self._record(push, event, f"The customer {event} the document {push.name!r}")

    def _forget_old(self, now: float) -> None:
        for key in [k for k, v in self.pushes.items() if v.expires_at < now - 3600]:
            del self.pushes[key]

    async def _record(self, push: Push, event: str, summary: str) -> None:
        from crm_store.domain.interactions import InteractionKind
        from crm_store.repositories.interactions import record_interaction

        payload = {"push_id": push.id, "event": event, "document_id": push.document_id, "name": push.name,
                   "sha256": push.media_key, "content_type": push.content_type, "agent_name": push.agent_name}
        try:
            async with self.hub.db.transaction() as s:
                await record_interaction(s, push.customer_id, InteractionKind.DOCUMENT_PUSH, "web", summary, payload,
                                         agent_id=push.agent_id, conversation_id=push.conversation_id)
        except Exception:  # noqa: BLE001
            log.exception("could not record a document push on the timeline")

    # ------------------------------------------------------------------ HTTP
    async def open(self, request: web.Request) -> web.StreamResponse:
        """GET /documents/push/{push_id}?exp=&sig=[&download=1], with the customer's widget's visitor id."""
        push = self.pushes.get(request.match_info["push_id"])
        exp, sig = request.query.get("exp", ""), request.query.get("sig", "")
        if push is None or not exp.isdigit() or int(exp) != push.expires_at or not hmac.compare_digest(sig, self._sig(push)):
            return error_response(404, "not_found", "no such document")
        if push.expires_at < self.clock():
            return error_response(410, "expired", "this link has expired: ask the agent to send it again")
        visitor = request.headers.get("X-CC-Visitor", "")
        ref = await self.hub.repo.customer_by_address("web", visitor) if visitor else None
        if ref is None or getattr(ref, "id", None) != push.customer_id:
            return error_response(403, "forbidden", "this document was sent to someone else")
        found = await request.app[MEDIA_KEY].get(push.media_key)
        if found is None:
            return error_response(404, "not_found", "no such document")
        stored, body = found
        download = request.query.get("download") == "1"
        if download:
            await self.seen(push, "downloaded")
        return web.Response(body=body, content_type=push.content_type, headers={
            "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
            "Content-Disposition": content_disposition(push.name) if download else "inline",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        })


def add_routes(app: web.Application, pushes: Callable[[], DocumentPushes], agent_of: Callable[[web.Request], Awaitable[Any]]) -> None:
    async def upload(request: web.Request) -> web.Response:
        from crm_store.repositories import documents as documents_repo
        from contact_center.keys import DB_KEY

        agent = await agent_of(request)
        if agent is None:
            return error_response(401, "unauthorized", "log in first")
        if agent.role not in LIBRARY_ROLES:
            return error_response(403, "forbidden", "only admins and supervisors manage the document library")
        got = await read_uploaded_file(request, MAX_BYTES, f"a document may be at most {MAX_BYTES // (1024 * 1024)} MB")
        if isinstance(got, web.Response):
            return got
        data, name, kind = got
        if kind not in DOCUMENT_TYPES:
            return error_response(415, "unsupported_media", "only PDF, PNG, JPEG and WebP files can be in the library")
        name = name or "document"
        stored = await request.app[MEDIA_KEY].put(data, kind, name)
        async with request.app[DB_KEY].transaction() as s:
            doc = await documents_repo.add_document(s, name, kind, stored.size, stored.key, agent.agent_id)
        return web.json_response({"id": doc.id, "name": doc.name, "content_type": doc.content_type, "size": doc.size,
                                  "sha256": doc.media_key}, status=201)

    async def library(request: web.Request) -> web.Response:
        from crm_store.repositories import documents as documents_repo
        from contact_center.keys import DB_KEY

        if await agent_of(request) is None:
            return error_response(401, "unauthorized", "log in first")
        async with request.app[DB_KEY].session() as s:
            docs = await documents_repo.list_documents(s)
        return web.json_response({"documents": [
            {"id": d.id, "name": d.name, "content_type": d.content_type, "size": d.size, "sha256": d.media_key} for d in docs
        ]})

    async def open_push(request: web.Request) -> web.StreamResponse:
        return await pushes().open(request)

    app.router.add_post("/console/documents", upload)
    app.router.add_get("/console/documents", library)
    app.router.add_get("/documents/push/{push_id}", open_push)


def install(pushes: DocumentPushes, customer_ns: Any, agent_ns: Any, acked: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    async def on_push(sid: str, data: Any = None) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            agent: AgentRef = (await agent_ns.get_session(sid))["agent"]
            return await pushes.push(agent, data)
        return await acked(run)

    async def on_event(sid: str, data: Any = None) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return await pushes.customer_event(await customer_ns.get_session(sid), data)
        return await acked(run)

    agent_ns.on_document_push = on_push
    customer_ns.on_document_event = on_event


DOCUMENTS_KEY = web.AppKey("documents", DocumentPushes)

__all__ = ["DOCUMENTS_KEY", "DocumentPushes", "HubError", "add_routes", "install"]
