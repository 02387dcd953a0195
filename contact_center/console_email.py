"""The console's view of an email's HTML: ``GET /console/conversations/{conversation_id}/messages/{seq}/html``.

An inbound email keeps its HTML part, sanitised on ingest (``integrations/email/parse.py``, nh3), in the
media store; the message's ``extra.html_key`` names it (``docs/subsystems/email.md``). The console shows
it in an ``<iframe sandbox="">`` whose ``src`` is this route, never as markup of its own page.

* Who: the agent the conversation is assigned to; supervisors and admins any conversation. 401 without a
  session, 403 for another agent's conversation, 404 for no such conversation, message or HTML.
* How: ``text/html; charset=utf-8`` with ``nosniff`` and a Content-Security-Policy that sandboxes the
  document (no script, no form, no same origin), loads nothing (``default-src 'none'``) but inline styles and
  ``data:`` images. Remote images stay off (no tracking pixels, no "read" signal to the sender) until the
  agent asks for them: ``?images=1`` adds ``https:`` and ``http:`` to ``img-src``. No referrer leaves.

The sanitiser already removed scripts and handlers; this policy holds even if it missed one.
"""

from __future__ import annotations

import base64
import re

from typing import Any, Awaitable, Callable

from aiohttp import web

from contact_center.api.errors import error_response, path_int
from contact_center.keys import DB_KEY
from contact_center.media_routes import MEDIA_KEY
from crm_store.models import Conversation
from crm_store.repositories import conversations as conversations_repo

CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSP_WITH_IMAGES = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:"
SEE_ALL = ("supervisor", "admin")


INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
INLINE_MAX_BYTES = 8 * 1024 * 1024  # all of one message's inline pictures together
_CID_SRC = re.compile(r"""(src\s*=\s*["']?)cid:([^"'\s>]+)""", re.IGNORECASE)


def cids_of(attachments: Any) -> dict[str, str]:
    """Content-ID -> the hub's ``/media/<key>`` of a message's inline pictures (its ``channel`` attachment's ``cids``)."""
    for a in attachments or ():
        if isinstance(a, dict) and a.get("type") == "channel" and isinstance(a.get("cids"), dict):
            return {str(k): str(v) for k, v in a["cids"].items() if isinstance(v, str)}
    return {}


async def inline_cids(html: bytes, cids: dict[str, str], media: Any) -> bytes:
    """The message's own pictures (``cid:``) written into the HTML as ``data:`` URLs: the sandboxed view loads
    nothing from anywhere, not even the hub, so they show without a remote request; pictures only (never SVG),
    bounded in size. A ``cid:`` it cannot resolve stays as it is (a broken picture, not an error)."""
    if not cids or b"cid:" not in html.lower():
        return html
    text = html.decode("utf-8", errors="replace")
    budget = INLINE_MAX_BYTES
    found: dict[str, str] = {}
    for cid in {m.group(2) for m in _CID_SRC.finditer(text)}:
        url = cids.get(cid) or cids.get(cid.strip("<>"))
        got = await media.get(url.rsplit("/", 1)[-1]) if url else None
        if got is None:
            continue
        stored, data = got
        if stored.content_type not in INLINE_TYPES or len(data) > budget:
            continue
        budget -= len(data)
        found[cid] = f"data:{stored.content_type};base64,{base64.b64encode(data).decode()}"
    if not found:
        return html
    return _CID_SRC.sub(lambda m: m.group(1) + found.get(m.group(2), f"cid:{m.group(2)}"), text).encode("utf-8")


def html_key_of(attachments: Any) -> str | None:
    """The media key of a message's sanitised HTML (its ``channel`` attachment's ``html_key``), if any."""
    for a in attachments or ():
        if isinstance(a, dict) and a.get("type") == "channel":
            key = a.get("html_key")
            return key if isinstance(key, str) and key else None
    return None


def add_console_email_routes(app: web.Application, *, agent_of: Callable[[web.Request], Awaitable[Any]]) -> None:
    """Mount the route; ``agent_of(request)`` awaits the request's agent session or None (``web.current_agent``)."""
    async def email_html(request: web.Request) -> web.StreamResponse:
        session = await agent_of(request)
        if session is None:
            return error_response(401, "unauthorized", "log in first")
        conversation_id = path_int(request, "conversation_id")
        seq = path_int(request, "seq")
        async with request.app[DB_KEY].session() as s:
            conv = await s.get(Conversation, conversation_id)
            if conv is None:
                return error_response(404, "not_found", "no such conversation")
            if conv.assigned_agent_id != session.agent_id and session.role not in SEE_ALL:
                return error_response(403, "forbidden", "only the agent of this conversation may read it")
            msg = await conversations_repo.message_at(s, conversation_id, seq)
            key = html_key_of(msg.attachments) if msg is not None else None
            cids = cids_of(msg.attachments) if msg is not None else {}
        if key is None:
            return error_response(404, "not_found", "this message has no HTML version")
        found = await request.app[MEDIA_KEY].get(key)
        if found is None:
            return error_response(404, "not_found", "the HTML version is not in the media store")
        _, data = found
        data = await inline_cids(data, cids, request.app[MEDIA_KEY])
        images = request.query.get("images") == "1"
        return web.Response(body=data, headers={
            "Content-Type": "text/html; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CSP_WITH_IMAGES if images else CSP,
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "private, no-cache",
        })

    app.router.add_get("/console/conversations/{conversation_id}/messages/{seq}/html", email_html)
