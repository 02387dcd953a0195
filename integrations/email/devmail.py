"""The ``/dev/mail`` page (the embedded mode only): the local outbox, and a form that mails the hub as a customer.

With no relay (``SMTP_URL`` empty) the email adapter writes what the shop sends to ``config.outbox_dir``
as ``.eml`` files. This page lists them, newest first, each readable: its headers and its text; its HTML
only in a sandboxed iframe served with a ``sandbox`` Content-Security-Policy (never put into the page).
Its form sends a mail to the hub's own SMTP port the way a customer's mail program would; "Reply to this"
on an outbox message fills To (the message's Reply-To, with the thread's token), Subject, In-Reply-To and
References from it.

Like ``/dev/phone``, it exists only when the composition root mounts it, which it does in the embedded
mode only (:func:`add_devmail_routes`). Its one state-changing endpoint takes JSON only (a cross-site form
cannot post it) and can do nothing a client of the SMTP port itself could not.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from aiohttp import web

from integrations.email.config import EmailConfig
from integrations.email.outbound import OUTBOX_NAME, plain_address

PAGE_PATH = "/dev/mail"
STATIC = Path(__file__).parent / "static"
MAX_REQUEST_BYTES = 256 * 1024
MAX_LISTED = 100
MAX_TEXT_CHARS = 200_000
_MESSAGE_ID = re.compile(r"<?([^<>\s@]{1,200}@[^<>\s@]{1,200})>?")
_PAGE_CSP = ("default-src 'self'; frame-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
             "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
_MAIL_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


class DevMailError(ValueError):
    """A request of the page that cannot be done (answered 400 with the reason)."""


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, TypeError, IndexError, LookupError):  # a header the parser could not make sense of
        value = None
    return " ".join(str(value).split()) if value is not None else ""


def read_outbox_message(path: Path) -> dict[str, Any]:
    """One outbox ``.eml`` as the page shows it: headers, text, whether it has HTML, its attachments."""
    raw = path.read_bytes()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    text_part = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    try:
        text = str(text_part.get_content()).replace("\r\n", "\n") if text_part is not None else ""
    except (LookupError, ValueError):
        text = ""
    attachments = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        attachments.append({"name": part.get_filename() or "", "content_type": part.get_content_type(),
                            "size": len(payload) if isinstance(payload, bytes) else 0})
    headers = {key: _header(msg, name) for key, name in (
        ("from", "From"), ("to", "To"), ("cc", "Cc"), ("reply_to", "Reply-To"), ("subject", "Subject"), ("date", "Date"),
        ("message_id", "Message-ID"), ("in_reply_to", "In-Reply-To"), ("references", "References"),
        ("auto_submitted", "Auto-Submitted"), ("x_loop", "X-Loop"),
    )}
    return {"id": path.name, "size": len(raw), **headers, "text": text[:MAX_TEXT_CHARS], "has_html": html_part is not None,
            "attachments": attachments}


def list_outbox(folder: Path, limit: int = MAX_LISTED) -> list[dict[str, Any]]:
    """The newest ``limit`` messages of the outbox, newest first (unreadable files are skipped)."""
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.iterdir() if OUTBOX_NAME.fullmatch(p.name)),
                   key=lambda n: int(n.split("-", 1)[0]), reverse=True)
    out = []
    for name in names[:limit]:
        try:
            out.append(read_outbox_message(folder / name))
        except (OSError, ValueError, LookupError):
            continue
    return out


def _message_ids(raw: Any) -> list[str]:
    """Message-IDs from ``"<a@b> <c@d>"``, ``"a@b, c@d"`` or a list of them (anything else refused)."""
    items = raw if isinstance(raw, list) else re.split(r"[\s,]+", str(raw or ""))
    out = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        m = _MESSAGE_ID.fullmatch(item)
        if m is None:
            raise DevMailError(f"{item[:60]!r} is not a Message-ID")
        out.append(m.group(1))
    return out[-30:]


def customer_mail(data: dict[str, Any], default_to: str) -> EmailMessage:
    """The mail a customer's program would send, from the page's form (raises DevMailError)."""
    sender = plain_address(str(data.get("from", "")).strip())
    if sender is None:
        raise DevMailError("From: give a plain email address (ann@example.com)")
    to = plain_address(str(data.get("to") or default_to).strip())
    if to is None:
        raise DevMailError("To: give a plain email address (one of the shop's)")
    name = " ".join(str(data.get("from_name", "")).split())[:100]
    subject = " ".join(str(data.get("subject", "")).split())[:300]
    text = str(data.get("text", ""))
    if not text.strip() and not subject:
        raise DevMailError("write a subject or some text")
    if len(text) > MAX_TEXT_CHARS:
        raise DevMailError("the text is too long for this page")
    in_reply_to = _message_ids(data.get("in_reply_to"))[-1:]
    references = _message_ids(data.get("references"))
    msg = EmailMessage()
    msg["From"] = Address(display_name=name, addr_spec=sender)
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to[0]}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    msg["User-Agent"] = "hub /dev/mail"
    msg.set_content(text if text.endswith("\n") else text + "\n")
    return msg


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise DevMailError("send JSON (Content-Type: application/json)")
    raw = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        raw += chunk
        if len(raw) > MAX_REQUEST_BYTES:
            raise DevMailError("the request is too large")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise DevMailError("the request is not JSON") from None
    if not isinstance(data, dict):
        raise DevMailError("the request is not a JSON object")
    return data


def _bad(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _smtp_host(config: EmailConfig) -> str:
    host = config.smtp_listen[0] if config.smtp_listen else "127.0.0.1"
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "*") else host.strip("[]")


class DevMail:
    """The page's handlers over one configuration and the hub's SMTP port."""

    def __init__(self, config: EmailConfig, smtp_port: int, smtp_host: str | None = None) -> None:
        self.config = config
        self.smtp_host = smtp_host or _smtp_host(config)
        self.smtp_port = smtp_port
        self.outbox = Path(config.outbox_dir)

    async def page(self, request: web.Request) -> web.Response:
        base = request.path.rstrip("/")
        text = (STATIC / "devmail.html").read_text(encoding="utf-8").replace("{{BASE}}", html.escape(base, quote=True))
        return web.Response(text=text, content_type="text/html",
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": _PAGE_CSP})

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(text=(STATIC / "devmail.js").read_text(encoding="utf-8"), content_type="text/javascript",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def setup(self, request: web.Request) -> web.Response:
        return web.json_response({"addresses": list(self.config.addresses), "smtp": f"{self.smtp_host}:{self.smtp_port}",
                                  "relay": self.config.relay is not None})

    async def messages(self, request: web.Request) -> web.Response:
        """The outbox, newest first."""
        items = await asyncio.to_thread(list_outbox, self.outbox)
        return web.json_response({"messages": items}, headers={"Cache-Control": "no-store"})

    def _file(self, request: web.Request) -> Path:
        name = request.match_info["name"]
        if not OUTBOX_NAME.fullmatch(name):
            raise web.HTTPNotFound()
        return self.outbox / name

    async def raw(self, request: web.Request) -> web.Response:
        """The message's source, as plain text."""
        try:
            data = await asyncio.to_thread(self._file(request).read_bytes)
        except OSError:
            raise web.HTTPNotFound() from None
        return web.Response(body=data, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})

    async def html_part(self, request: web.Request) -> web.Response:
        """The message's HTML for the page's sandboxed iframe (scripts, forms, remote loads all refused)."""
        path = self._file(request)

        def load() -> str | None:
            msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            part = msg.get_body(("html",)) if isinstance(msg, EmailMessage) else None
            return str(part.get_content()) if part is not None else None

        try:
            body = await asyncio.to_thread(load)
        except (OSError, ValueError, LookupError):
            body = None
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(text=body, content_type="text/html",
                            headers={"Content-Security-Policy": _MAIL_CSP, "X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def send(self, request: web.Request) -> web.Response:
        """Mail the hub's SMTP port: ``{"from", "from_name", "to", "subject", "text", "in_reply_to", "references"}``."""
        try:
            data = await _json_body(request)
            msg = customer_mail(data, next(iter(self.config.addresses), ""))
        except (DevMailError, ValueError) as exc:
            return _bad(str(exc))
        try:
            await aiosmtplib.send(msg, hostname=self.smtp_host, port=self.smtp_port, start_tls=False, timeout=15)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return _bad(f"The hub refused {first.recipient}: {first.code} {first.message}")
        except aiosmtplib.SMTPResponseException as exc:
            return _bad(f"The hub refused the mail: {exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _bad(f"The hub's SMTP port {self.smtp_host}:{self.smtp_port} did not take the mail ({type(exc).__name__})", 502)
        return web.json_response({"message_id": str(msg["Message-ID"]), "to": str(msg["To"])})


def add_devmail_routes(app: web.Application, config: EmailConfig, smtp_port: int, *, path: str = PAGE_PATH,
                       smtp_host: str | None = None) -> None:
    """``/dev/mail`` (the page) and ``/dev/mail/api/...`` (its JSON) on ``app``: the embedded mode only."""
    mail = DevMail(config, smtp_port, smtp_host)
    app.router.add_get(path, mail.page)
    app.router.add_get(path + "/app.js", mail.script)
    app.router.add_get(path + "/api/setup", mail.setup)
    app.router.add_get(path + "/api/messages", mail.messages)
    app.router.add_get(path + "/api/messages/{name}/raw", mail.raw)
    app.router.add_get(path + "/api/messages/{name}/html", mail.html_part)
    app.router.add_post(path + "/api/send", mail.send)


__all__ = ["PAGE_PATH", "DevMail", "add_devmail_routes", "customer_mail", "list_outbox", "read_outbox_message"]
