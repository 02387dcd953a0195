"""Document push (issue 17): a library of files (or a file of the agent's own), pushed by an agent onto their web chat
customer's page, or sent as a link by SMS, WhatsApp or email when the customer is not on the web.

- ``POST /console/documents`` (admins and supervisors): one file (multipart field ``file``), PDF, PNG, JPEG or
  WebP by its bytes, at most ``MAX_BYTES`` (10 MB). ``GET /console/documents`` (any agent): the library.
- ``POST /console/documents/own`` (any agent): a file of the agent's own, same types and size, kept for
  ``OWN_SECONDS`` for that agent only (``{upload_id}``); ``DELETE /console/documents/{id}`` (admins and supervisors)
  takes a document out of the library (links already pushed still open until they expire).
- ``/agent`` ``document_push {conversation_id, document_id | upload_id | order_id}`` (``order_id``: an order of that
  customer, rendered as a PDF summary, ``contact_center.domain.order_pdf``): only the agent who holds the conversation.
  On web chat the widget gets ``document {push_id, name, content_type, size, url, expires_at}``. On SMS, WhatsApp
  and email the link goes out as the agent's reply (the hub's outbound path); on a call, as a text to the caller's
  number (the SMS channel). Such a link opens without the widget's visitor id (possession of the message is the
  proof), for the same 15 minutes. The link is signed for that push and
  that customer and lasts ``LINK_SECONDS`` (15 min); it opens only with the visitor id of that customer's widget
  (header ``X-CC-Visitor``), so a copied link alone opens nothing.
- ``/customer`` ``document_event {push_id, event: delivered|opened}``; ``GET ...?download=1`` is ``downloaded``.
- The timeline (kind ``document_push``) keeps the push (name, the file's SHA-256, who sent it) and the first
  ``delivered``, ``opened`` and ``downloaded``.

Pushes and agents' own files are records in the shared :class:`~contact_center.ports.CobrowseStore` (Redis with
several hub processes), so a link opens on any hub process; the bytes are in the media store.
``docs/subsystems/cobrowse.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from contact_center.api.errors import error_response
from contact_center.channels import WEB_CHAT
from contact_center.domain.cobrowse import CobrowseError
from contact_center.hub.service import AgentRef, HubError, HubService, room_conv
from contact_center.media_routes import MEDIA_KEY, content_disposition, read_uploaded_file
from contact_center.ports import CobrowseStore, StateUnavailable
from contact_center.state.cobrowse_store import MemoryCobrowseStore

log = logging.getLogger("contact_center.documents")

MAX_BYTES = 10 * 1024 * 1024
LINK_SECONDS = 15 * 60
OWN_SECONDS = 60 * 60  # an agent's own uploaded file may be pushed for an hour after the upload
LINK_CHANNELS = frozenset({"sms", "whatsapp", "email"})  # the link goes out as a reply on these
CALL_CHANNELS = frozenset({"phone", "callback"})  # the link goes out as a text (SMS) to the caller's number
DOCUMENT_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/webp"})
LIBRARY_ROLES = frozenset({"admin", "supervisor"})
EVENTS = ("delivered", "opened", "downloaded")
PUSH_TTL = LINK_SECONDS + 3600  # a push's record (and its first-event marks) outlive its link by an hour


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
    via: str = "web"  # web (the widget, with the visitor id) or the channel a link went out on
    source: str = "library"  # library, or agent_file (the agent's own upload)

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "seen"}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Push:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "seen"})


@dataclass
class OwnFile:
    """A file an agent uploaded to push (not in the library): for that agent only, for ``OWN_SECONDS``."""

    id: str
    name: str
    content_type: str
    size: int
    media_key: str
    agent_id: int
    uploaded_at: float


class DocumentPushes:
    """Pushes, their links, and what the customer did with them (records in the shared store)."""

    def __init__(self, hub: HubService, secret: str, clock: Callable[[], float] = time.time, base_url: str = "",
                 channels: Any = None, store: CobrowseStore | None = None) -> None:
        self.hub, self.secret, self.clock, self.base_url = hub, secret, clock, base_url.rstrip("/")
        self.channels = channels  # the channel registry (a call's link goes out through the SMS adapter)
        self.store: CobrowseStore = store if store is not None else MemoryCobrowseStore()

    async def add_own(self, agent_id: int, name: str, content_type: str, size: int, media_key: str) -> OwnFile:
        own = OwnFile(secrets.token_urlsafe(18), name, content_type, size, media_key, agent_id, self.clock())
        await self.store.put_record("own", own.id, asdict(own), OWN_SECONDS)
        return own

    async def get_push(self, push_id: str) -> Push | None:
        rec = await self.store.get_record("push", push_id)
        return None if rec is None else Push.from_record(rec)

    def _sig(self, push: Push) -> str:
        msg = f"{push.id}:{push.document_id}:{push.customer_id}:{push.expires_at}"
        return hmac.new(self.secret.encode(), msg.encode(), hashlib.sha256).hexdigest()

    def url(self, push: Push) -> str:
        return f"/documents/push/{push.id}?exp={push.expires_at}&sig={self._sig(push)}"

    async def push(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``document_push {conversation_id, document_id | upload_id}``: onto the web chat's page, or as a link."""
        from crm_store.repositories import documents as documents_repo

        p = data if isinstance(data, dict) else {}
        conv = await self.hub.assigned(agent, p.get("conversation_id"))
        if conv.assigned_agent_id != agent.id:
            raise CobrowseError("forbidden", "this conversation is not assigned to you")
        via = self._via(conv)
        now = self.clock()
        if p.get("order_id") is not None:
            document_id, source = 0, "order_summary"
            name, kind, size, key = await self._order_pdf(conv, p.get("order_id"))
        elif p.get("upload_id") is not None:
            rec = await self.store.get_record("own", p["upload_id"]) if isinstance(p.get("upload_id"), str) and p["upload_id"] else None
            own = OwnFile(**rec) if rec is not None else None
            if own is None or own.agent_id != agent.id or own.uploaded_at < now - OWN_SECONDS:
                raise CobrowseError("not_found", "no such file: upload it again")
            document_id, name, kind, size, key, source = 0, own.name, own.content_type, own.size, own.media_key, "agent_file"
        else:
            raw = p.get("document_id")
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise CobrowseError("bad_request", "document_id must be a whole number")
            async with self.hub.db.session() as s:
                doc = await documents_repo.get_document(s, raw)
            if doc is None or doc.id is None:
                raise CobrowseError("not_found", "no such document")
            document_id, name, kind, size, key, source = doc.id, doc.name, doc.content_type, doc.size, doc.media_key, "library"
        if via != "web" and not self.base_url:
            raise CobrowseError("conflict", "links cannot be sent outside the web: PUBLIC_BASE_URL is not set")
        push = Push(id=secrets.token_urlsafe(18), document_id=document_id, name=name, content_type=kind, size=size,
                    media_key=key, customer_id=conv.customer_id, conversation_id=conv.id, agent_id=agent.id,
                    agent_name=agent.display_name or agent.username, expires_at=int(now + LINK_SECONDS), via=via, source=source)
        body = {"push_id": push.id, "name": push.name, "content_type": push.content_type, "size": push.size,
                "url": self.url(push), "expires_at": push.expires_at, "agent_name": push.agent_name}
        if via == "web":
            await self.store.put_record("push", push.id, push.record(), PUSH_TTL)
            await self._record(push, "pushed", f"{push.agent_name} pushed the document {push.name!r}")
            await self.hub.emitter.emit("document", body, to=room_conv(conv.id), namespace="/customer")
        else:
            text = (f"{push.agent_name} sent you {push.name}: {self.base_url}{self.url(push)} "
                    f"(the link works for {LINK_SECONDS // 60} minutes)")
            await self.store.put_record("push", push.id, push.record(), PUSH_TTL)  # before the link can be opened
            try:
                await self._send_link(agent, conv, push, text)
            except BaseException:
                await self.store.put_record("push", push.id, {**push.record(), "expires_at": 0}, 1)
                raise
            await self._record(push, "pushed", f"{push.agent_name} sent the document {push.name!r} as a link by {via}")
        return {"push": {**{k: v for k, v in body.items() if k != "url"}, "via": via}}

    async def _order_pdf(self, conv: Any, raw: Any) -> tuple[str, str, int, str]:
        """An order of this conversation's customer, rendered as a PDF summary and kept in the media store."""
        from contact_center.domain.order_pdf import OrderSummary, SummaryLine, render
        from crm_store.repositories import customers as customers_repo
        from crm_store.repositories import orders as orders_repo

        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise CobrowseError("bad_request", "order_id must be a whole number")
        async with self.hub.db.session() as s:
            try:
                view = await orders_repo.get_order(s, raw, with_events=False)
            except orders_repo.OrderNotFound:
                view = None
            owner = await customers_repo.survivor_id(s, int(view.order.customer_id)) if view is not None else None
        if view is None or owner != conv.customer_id:
            raise CobrowseError("not_found", "no such order of this customer")  # another customer's order: the same answer
        o = view.order
        summary = OrderSummary(
            order_id=int(o.id), shop_name="", status=str(o.status), created=str(o.created_at)[:10], currency=str(o.currency),
            lines=[SummaryLine(str(line.name), int(line.quantity), int(line.unit_price_minor), int(line.line_total_minor),
                               {str(k): str(v) for k, v in dict(line.options or {}).items()}) for line in view.lines],
            subtotal_minor=int(o.subtotal_minor), shipping_minor=int(o.shipping_minor), total_minor=int(o.total_minor),
            delivery_address=str(o.delivery_address or ""), promised=str(o.promised_date or "")[:10],
        )
        pdf = render(summary)
        name = f"order-{o.id}.pdf"
        if self.hub.media is None:
            raise CobrowseError("conflict", "no media store to keep the summary in")
        stored = await self.hub.media.put(pdf, "application/pdf", name)
        return name, "application/pdf", int(stored.size), str(stored.key)

    def _via(self, conv: Any) -> str:
        """How a push reaches this conversation's customer: the widget, or a link on a channel."""
        if conv.channel == WEB_CHAT.name:
            return "web"
        if conv.channel in LINK_CHANNELS:
            return str(conv.channel)
        if conv.channel in CALL_CHANNELS:
            if not conv.customer_address or self.channels is None or self.channels.adapter("sms") is None:
                raise CobrowseError("bad_request", "no number to text the link to on this call (or no SMS channel)")
            return "sms"
        raise CobrowseError("bad_request", "documents go to web chat, SMS, WhatsApp, email or a call's number")

    async def _send_link(self, agent: AgentRef, conv: Any, push: Push, text: str) -> None:
        """The link through the hub's outbound path: the agent's reply on the conversation's own channel; on a call, a
        text through the SMS adapter to the caller's number (from the number they called)."""
        if conv.channel in LINK_CHANNELS:
            await self.hub.reply(agent, conv.id, f"doc-{push.id[:20]}", text)
            return
        from contact_center.ports import OutboundMessage

        adapter = self.channels.adapter("sms")
        report = await adapter.deliver(OutboundMessage(
            conversation_id=conv.id, seq=0, channel="sms", to_address=conv.customer_address,
            from_address=conv.our_address, text=text, sender_kind="agent"))
        if report.status == "failed":
            raise CobrowseError("conflict", f"the text could not be sent: {report.error_message or 'refused'}")

    async def customer_event(self, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        p = data if isinstance(data, dict) else {}
        push = await self.get_push(p["push_id"]) if isinstance(p.get("push_id"), str) and p["push_id"] else None
        if push is None or push.customer_id != session_data.get("customer_id"):
            raise CobrowseError("not_found", "no such document")
        event = p.get("event")
        if event not in ("delivered", "opened"):
            raise CobrowseError("bad_request", "event must be delivered or opened")
        await self.seen(push, str(event))
        return {}

    async def seen(self, push: Push, event: str) -> None:
        if not await self.store.first_event(push.id, event, PUSH_TTL):
            return  # the first one only (on any hub process)
        push.seen.add(event)
        await self._record(push, event, f"The customer {event} the document {push.name!r}")

    async def _record(self, push: Push, event: str, summary: str) -> None:
        from crm_store.domain.interactions import InteractionKind
        from crm_store.repositories.interactions import record_interaction

        payload = {"push_id": push.id, "event": event, "document_id": push.document_id or None, "name": push.name,
                   "sha256": push.media_key, "content_type": push.content_type, "agent_name": push.agent_name,
                   "via": push.via, "source": push.source}
        try:
            async with self.hub.db.transaction() as s:
                await record_interaction(s, push.customer_id, InteractionKind.DOCUMENT_PUSH, push.via, summary, payload,
                                         agent_id=push.agent_id, conversation_id=push.conversation_id)
        except Exception:  # noqa: BLE001
            log.exception("could not record a document push on the timeline")

    # ------------------------------------------------------------------ HTTP
    async def open(self, request: web.Request) -> web.StreamResponse:
        """GET /documents/push/{push_id}?exp=&sig=[&download=1], with the customer's widget's visitor id."""
        try:
            push = await self.get_push(request.match_info["push_id"])
        except StateUnavailable:
            return error_response(503, "unavailable", "documents cannot be opened right now: try again shortly")
        exp, sig = request.query.get("exp", ""), request.query.get("sig", "")
        if push is None or not exp.isdigit() or int(exp) != push.expires_at or not hmac.compare_digest(sig, self._sig(push)):
            return error_response(404, "not_found", "no such document")
        if push.expires_at < self.clock():
            return error_response(410, "expired", "this link has expired: ask the agent to send it again")
        if push.via == "web":  # the widget's link: only with that customer's visitor id
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
        elif push.via != "web":
            await self.seen(push, "opened")  # a link from a message: its first opening (no widget to tell us)
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

    async def upload_own(request: web.Request) -> web.Response:
        """A file of the agent's own, to push like a library document (not listed in the library)."""
        agent = await agent_of(request)
        if agent is None:
            return error_response(401, "unauthorized", "log in first")
        got = await read_uploaded_file(request, MAX_BYTES, f"a document may be at most {MAX_BYTES // (1024 * 1024)} MB")
        if isinstance(got, web.Response):
            return got
        data, name, kind = got
        if kind not in DOCUMENT_TYPES:
            return error_response(415, "unsupported_media", "only PDF, PNG, JPEG and WebP files can be pushed")
        stored = await request.app[MEDIA_KEY].put(data, kind, name or "document")
        try:
            own = await pushes().add_own(agent.agent_id, name or "document", kind, stored.size, stored.key)
        except StateUnavailable:
            return error_response(503, "unavailable", "files cannot be uploaded right now: try again shortly")
        return web.json_response({"upload_id": own.id, "name": own.name, "content_type": own.content_type, "size": own.size,
                                  "sha256": own.media_key}, status=201)

    async def remove(request: web.Request) -> web.Response:
        """Take a document out of the library (admins and supervisors): it is no longer listed nor pushed; links
        already pushed still open until they expire (15 minutes at most); the bytes stay in the media store."""
        from crm_store.repositories import documents as documents_repo
        from contact_center.keys import DB_KEY

        agent = await agent_of(request)
        if agent is None:
            return error_response(401, "unauthorized", "log in first")
        if agent.role not in LIBRARY_ROLES:
            return error_response(403, "forbidden", "only admins and supervisors manage the document library")
        raw = request.match_info["document_id"]
        if not raw.isdigit():
            return error_response(404, "not_found", "no such document")
        async with request.app[DB_KEY].transaction() as s:
            doc = await documents_repo.remove_document(s, int(raw))
        if doc is None:
            return error_response(404, "not_found", "no such document")
        log.info("document removed from the library", extra={"document_id": doc.id, "agent_id": agent.agent_id})
        return web.json_response({"id": doc.id, "removed": True})

    async def open_push(request: web.Request) -> web.StreamResponse:
        return await pushes().open(request)

    app.router.add_post("/console/documents", upload)
    app.router.add_get("/console/documents", library)
    app.router.add_post("/console/documents/own", upload_own)
    app.router.add_delete("/console/documents/{document_id}", remove)
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
