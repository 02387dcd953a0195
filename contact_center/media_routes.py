"""Attachments over HTTP: agents upload a file to send, and open what customers sent.

* ``POST /console/media`` (an agent's session): one file (multipart field ``file``), at most
  ``MEDIA_MAX_BYTES``; only JPEG, PNG, GIF, WebP and PDF, checked by their bytes. Answers
  ``{key, url, content_type, size, name}``; the key goes into a ``reply``'s ``media``.
* ``GET /console/media`` (an agent's session): what an upload may be, ``{max_bytes, types}``, so the
  console shows the limit before the agent picks a file.
* ``GET /media/{key}``: for a logged-in agent, or with a signed link (``?exp=&sig=``, HMAC of the key
  and expiry with the session secret) that the hub gives a provider to fetch an outbound MMS or
  WhatsApp image. Served with its stored type, ``nosniff``, and as a download unless it is an image.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Callable

from aiohttp import BodyPartReader, web

from contact_center.api.errors import error_response
from contact_center.ports import MediaStore
from contact_center.domain.media import AGENT_UPLOAD_TYPES, sniff

MEDIA_KEY = web.AppKey("media", MediaStore)  # type: ignore[type-abstract]
LINK_SECONDS = 3600


def media_signer(secret: str, public_base_url: str) -> Callable[[str], str]:
    """A function turning ``/media/<key>`` into an absolute link valid for an hour (for a provider to fetch)."""

    def link(path: str, now: float | None = None) -> str:
        key = path.rsplit("/", 1)[-1]
        exp = int((now if now is not None else time.time()) + LINK_SECONDS)
        return f"{public_base_url}/media/{key}?exp={exp}&sig={_sig(secret, key, exp)}"

    return link


def _sig(secret: str, key: str, exp: int) -> str:
    return hmac.new(secret.encode(), f"{key}:{exp}".encode(), hashlib.sha256).hexdigest()


SCRIPTABLE_IMAGES = frozenset({"image/svg+xml"})


def content_disposition(name: str) -> str:
    """``attachment`` with the file's name made safe for a header (RFC 6266: an ASCII fallback and the
    UTF-8 name percent-encoded); a name from a customer never breaks or adds a header."""
    from urllib.parse import quote

    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)[:150] or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name[:150], safe='')}"


async def read_uploaded_file(request: web.Request, max_bytes: int, too_large: str) -> tuple[bytes, str, str | None] | web.Response:
    """The ``file`` field of a multipart upload: ``(bytes, cleaned file name, sniffed type)``, or the error answer
    (400 not multipart / no field, 413 with ``too_large`` once more than ``max_bytes`` came in). The name keeps
    printable characters only, without quotes, slashes or semicolons (it goes into Content-Disposition)."""
    if not request.content_type.startswith("multipart/"):
        return error_response(400, "bad_request", "send the file as multipart/form-data, field 'file'")
    reader = await request.multipart()
    part = await reader.next()
    while part is not None and getattr(part, "name", None) != "file":
        part = await reader.next()
    if not isinstance(part, BodyPartReader):
        return error_response(400, "bad_request", "no 'file' field")
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            return error_response(413, "too_large", too_large)
    name = "".join(ch for ch in (part.filename or "") if ch.isprintable() and ch not in '"\\/;')[:200]
    return bytes(data), name, sniff(bytes(data))


def add_media_routes(
    app: web.Application, *, secret: str, max_bytes: int, agent_of: Callable[[web.Request], object]
) -> None:
    """Mount the upload and download routes; ``agent_of(request)`` awaits the request's agent session or None."""

    async def upload(request: web.Request) -> web.Response:
        if await agent_of(request) is None:  # type: ignore[misc]
            return error_response(401, "unauthorized", "log in first")
        got = await read_uploaded_file(request, max_bytes, f"the file is larger than {max_bytes} bytes")
        if isinstance(got, web.Response):
            return got
        data, name, kind = got
        if kind is None or kind not in AGENT_UPLOAD_TYPES:
            return error_response(415, "unsupported_media", "only JPEG, PNG, GIF, WebP images and PDF files can be sent")
        stored = await request.app[MEDIA_KEY].put(data, kind, name)
        return web.json_response({"key": stored.key, "url": f"/media/{stored.key}", "content_type": stored.content_type,
                                  "size": stored.size, "name": stored.name}, status=201)

    async def limits(request: web.Request) -> web.Response:
        if await agent_of(request) is None:  # type: ignore[misc]
            return error_response(401, "unauthorized", "log in first")
        return web.json_response({"max_bytes": max_bytes, "types": sorted(AGENT_UPLOAD_TYPES)})

    async def download(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        if not await _allowed(request, key):
            return error_response(403, "forbidden", "log in, or use a valid signed link")
        found = await request.app[MEDIA_KEY].get(key)
        if found is None:
            return error_response(404, "not_found", "no such file")
        stored, data = found
        # pictures show inline; anything that can carry script (SVG, HTML, XML) or is not a picture downloads
        inline = stored.content_type.startswith("image/") and stored.content_type not in SCRIPTABLE_IMAGES
        disposition = "inline" if inline else content_disposition(stored.name or stored.key)
        return web.Response(body=data, content_type=stored.content_type, headers={
            "X-Content-Type-Options": "nosniff", "Content-Disposition": disposition, "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        })

    async def _allowed(request: web.Request, key: str) -> bool:
        exp, sig = request.query.get("exp", ""), request.query.get("sig", "")
        if exp.isdigit() and sig:
            return int(exp) >= time.time() and hmac.compare_digest(sig, _sig(secret, key, int(exp)))
        return await agent_of(request) is not None  # type: ignore[misc]

    app.router.add_post("/console/media", upload)
    app.router.add_get("/console/media", limits)
    app.router.add_get("/media/{key}", download)
