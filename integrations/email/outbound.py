"""The email channel's outbound face: agents' replies and the acknowledgement, sent threaded.

:class:`EmailAdapter` is the email :class:`~contact_center.ports.ChannelAdapter`. Each message it sends:

* is ``multipart/alternative`` (the text, and HTML made from the text: escaped, paragraphs, links; never
  an agent's raw HTML), inside ``multipart/mixed`` with the real files when it carries attachments;
* has a ``Message-ID`` of ours (``<uuid@our domain>``; the same message sent again keeps its id, so a
  mail program shows it once), ``In-Reply-To`` the conversation's last inbound Message-ID, ``References``
  the thread's root and its most recent ids (at most :data:`MAX_REFERENCES`), ``Reply-To`` our address
  with the conversation's signed token, ``Subject: Re: <the thread's subject> [#token]``, ``X-Loop`` with
  our address, and ``Auto-Submitted: auto-replied`` on automatic mail only (the bot's, the
  acknowledgement);
* goes to the relay (``SMTP_URL``: STARTTLS, AUTH) with aiosmtplib, or with no relay to the local outbox
  (``.eml`` files in ``config.outbox_dir``, read at ``/dev/mail``);
* is then recorded (``email_messages``, its raw bytes kept in the media store) so the customer's answer
  threads back to the conversation.

A temporary failure (a 4xx answer, a refused or dropped connection, a timeout) is retried with back-off;
a permanent one (5xx) is a ``failed`` report with the relay's code and the reason in words for the
agent: the message stays in the conversation, marked failed. Nothing here blocks the event loop (the
MIME building and the files run in worker threads).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import mimetypes
import os
import re
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Awaitable, Callable, Sequence

import aiosmtplib

from contact_center.ports import DeliveryReport, MediaStore, OutboundMessage, StoredMedia
from crm_store.db import Database
from crm_store.models import Conversation
from crm_store.models import EmailMessage as EmailRow
from crm_store.repositories import email as email_repo
from integrations.email.config import EmailConfig, SmtpRelay
from integrations.email.threading import sign_token, subject_with_token, token_address

log = logging.getLogger(__name__)

CHANNEL = "email"
DEFAULT_TRIES = 4
DEFAULT_BACKOFF = 2.0  # seconds before the 2nd try; doubled for each later one (2, 4, 8)
DEFAULT_TIMEOUT = 30.0  # seconds for one SMTP command
MAX_REFERENCES = 20
ACK_INTERVAL = 3600.0  # at most one acknowledgement per sender per hour (in memory, per hub process)
AUTOMATIC_SENDERS = frozenset({"bot", "system"})  # their messages are automatic mail (Auto-Submitted)
DEFAULT_SHOP_NAME = "Customer service"
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'=!#$&*/?^`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\")]}"
_NO_ACK_LOCALS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply", "donotreply", "bounce", "bounces")
OUTBOX_NAME = re.compile(r"[0-9]{1,20}-[0-9a-f-]{36}\.eml")


# --- pieces ---------------------------------------------------------------------------------------


def plain_address(raw: object) -> str | None:
    """A bare ``local@domain`` address (lower-cased domain), or None for anything else (names, lists, CR/LF)."""
    if not isinstance(raw, str):
        return None
    value = raw.strip()
    if len(value) > 254 or not _ADDRESS.fullmatch(value):
        return None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def base_address(address: str) -> str:
    """``support+c12-ab@shop.example`` -> ``support@shop.example`` (lower-cased)."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _link(url: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(url)}</a>'


def _inline(line: str) -> str:
    """One line of text as HTML: escaped, its http(s) URLs made links."""
    out, pos = [], 0
    for m in _URL.finditer(line):
        url = m.group(0).rstrip(_TRAILING)
        if url.count("(") > url.count(")") and m.group(0)[len(url):].startswith(")"):
            url += ")"
        if len(url) <= len("https://"):
            continue
        out.append(html.escape(line[pos:m.start()]))
        out.append(_link(url))
        pos = m.start() + len(url)
    out.append(html.escape(line[pos:]))
    return "".join(out)


def text_to_html(text: str) -> str:
    """The HTML part of a reply, made from its plain text only: escaped, blank lines make paragraphs, links."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip()) if p.strip()]
    body = "\n".join("<p>" + "<br>\n".join(_inline(line) for line in p.split("\n")) + "</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: Arial, Helvetica, sans-serif; font-size: 14px; line-height: 1.45;">\n'
        f"{body}\n</body></html>\n"
    )


def _id_of(value: str | None) -> str | None:
    """A stored id usable in References/In-Reply-To (a Message-ID, not a ``sha256:`` dedup key)."""
    mid = email_repo.strip_id(value)
    if not mid or mid.startswith("sha256:") or "@" not in mid or any(c in mid for c in "<> \r\n\t"):
        return None
    return mid


def _root_of(thread_key: str | None) -> str | None:
    """The thread's root Message-ID from its key (a successor's key is ``<root>><conversation id>``)."""
    if not thread_key:
        return None
    return _id_of(re.sub(r"(>[0-9]+)+$", "", thread_key))


def trim_references(chain: Sequence[str], limit: int = MAX_REFERENCES) -> list[str]:
    """Unique ids in order, at most ``limit``: the root kept first, then the most recent ones."""
    seen: set[str] = set()
    unique = [m for m in chain if not (m in seen or seen.add(m))]  # type: ignore[func-returns-value]
    if len(unique) <= limit:
        return unique
    return [unique[0], *unique[-(limit - 1):]]


@dataclass(frozen=True)
class ThreadHeaders:
    """What a reply in a conversation needs from its thread."""

    our_address: str
    customer_address: str
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    created_at: datetime | None


def thread_headers(conv: Conversation, rows: Sequence[EmailRow]) -> ThreadHeaders:
    """``In-Reply-To``: the last inbound Message-ID (else our last one). ``References``: the thread's root,
    then the parent's References and the parent. The subject: the thread's first, else the conversation's."""
    with_ids = [r for r in rows if _id_of(r.message_id)]
    inbound = [r for r in with_ids if r.direction == "in"]
    parent = inbound[-1] if inbound else (with_ids[-1] if with_ids else None)
    chain: list[str] = []
    root = _root_of(conv.thread_key)
    if root:
        chain.append(root)
    if parent is not None:
        parent_refs = [m for m in (_id_of(x) for x in parent.references or []) if m]
        if parent_refs:
            chain += parent_refs
        else:  # a mail program that sends no References (or our own earlier reply): the thread as we know it
            chain += [m for m in (_id_of(r.message_id) for r in with_ids[: with_ids.index(parent)]) if m]
        chain.append(_id_of(parent.message_id) or "")
    subject = next((r.subject for r in rows if r.subject.strip()), "") or conv.subject or ""
    return ThreadHeaders(
        our_address=conv.our_address, customer_address=conv.customer_address, subject=subject,
        in_reply_to=_id_of(parent.message_id) if parent is not None else None,
        references=tuple(trim_references([c for c in chain if c])), created_at=conv.created_at,
    )


@dataclass(frozen=True)
class Outgoing:
    """One email ready to build: everything the headers and parts need."""

    from_address: str
    from_name: str
    to: str
    cc: tuple[str, ...]
    subject: str
    text: str
    message_id: str  # with its angle brackets
    reply_to: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    automatic: bool = False
    attachments: tuple[tuple[StoredMedia, bytes], ...] = ()


def _attachment_name(stored: StoredMedia, index: int) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]+", "_", stored.name or "").strip(" .")
    if name:
        return name[:150]
    ext = mimetypes.guess_extension(stored.content_type.split(";")[0].strip()) or ".bin"
    return f"attachment-{index}{ext}"


def _mime_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.split(";")[0].strip().lower().partition("/")
    if not re.fullmatch(r"[a-z0-9.+-]+", maintype or "-") or not re.fullmatch(r"[a-z0-9.+-]+", subtype or "-") \
            or maintype in ("multipart", "message"):
        return "application", "octet-stream"
    return maintype, subtype


def build_email(out: Outgoing, when: datetime | None = None) -> EmailMessage:
    """The MIME message (raises ValueError for a header it cannot carry)."""
    msg = EmailMessage()
    msg["From"] = Address(display_name=out.from_name, addr_spec=out.from_address)
    msg["To"] = out.to
    if out.cc:
        msg["Cc"] = ", ".join(out.cc)
    msg["Reply-To"] = Address(display_name=out.from_name, addr_spec=out.reply_to)
    msg["Subject"] = out.subject
    msg["Date"] = format_datetime(when or datetime.now(timezone.utc))
    msg["Message-ID"] = out.message_id
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{out.in_reply_to}>"
    if out.references:
        msg["References"] = " ".join(f"<{r}>" for r in out.references)
    if out.automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Loop"] = out.from_address
    text = out.text if out.text.endswith("\n") else out.text + "\n"
    msg.set_content(text)
    msg.add_alternative(text_to_html(out.text), subtype="html")
    for index, (stored, data) in enumerate(out.attachments, start=1):
        maintype, subtype = _mime_type(stored.content_type)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=_attachment_name(stored, index))
    return msg


def serialize(msg: EmailMessage) -> bytes:
    """The bytes on the wire (CRLF line ends)."""
    return msg.as_bytes(policy=SMTP_POLICY)


# --- sending --------------------------------------------------------------------------------------


class SendError(Exception):
    """One attempt failed: the SMTP code (if any), the reason in words, and whether trying again may help."""

    def __init__(self, code: int | None, words: str, temporary: bool) -> None:
        super().__init__(words)
        self.code = code
        self.words = words
        self.temporary = temporary


def _server_text(message: str) -> str:
    return " ".join(str(message).split())[:120]


def _is_temporary(code: int) -> bool:
    return not 500 <= code < 600


def classify(exc: BaseException, relay: SmtpRelay, *, customer: str) -> SendError:
    """An aiosmtplib (or socket, or TLS) error as a :class:`SendError` with words for the agent."""
    where = f"{relay.host}:{relay.port}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, _server_text(exc.message)
        temporary = _is_temporary(code)
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            words = f"The mail relay refused the customer's address {customer} ({code} {text})."
        elif isinstance(exc, aiosmtplib.SMTPSenderRefused):
            words = f"The mail relay refused to send from {exc.sender} ({code} {text}); check SMTP_URL and the relay's allowed senders."
        elif isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            words = f"The mail relay refused the hub's login ({code} {text}); check the user and password in SMTP_URL."
        elif code == 552:
            words = f"The email is too large for the mail relay ({code} {text}); send smaller attachments."
        else:
            words = f"The mail relay refused the email ({code} {text})."
        return SendError(code, words, temporary)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(None, f"The mail relay {where} has a certificate the hub does not trust ({exc.verify_message}).", False)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return SendError(None, f"The mail relay {where} did not answer in time.", True)
    if isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, ConnectionError, OSError)):
        return SendError(None, f"The hub could not talk to the mail relay {where} ({type(exc).__name__}).", True)
    if isinstance(exc, aiosmtplib.SMTPException):  # STARTTLS or AUTH not offered, and the like: the settings
        return SendError(None, f"The mail relay {where} cannot be used as set up in SMTP_URL ({_server_text(str(exc))}).", False)
    return SendError(None, f"Sending failed ({type(exc).__name__}).", False)


class PerSenderLimit:
    """At most one event per key per ``interval`` seconds, in this process's memory (forgotten at restart;
    each hub process keeps its own)."""

    def __init__(self, interval: float = ACK_INTERVAL, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        """True (and the slot is taken) if ``key`` had none within the interval."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.max_keys:
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        self._last[key] = now
        return True


# --- the adapter ----------------------------------------------------------------------------------


class EmailAdapter:
    """The email :class:`~contact_center.ports.ChannelAdapter`, and the acknowledgement of a new thread.

    :param db: the hub's database, looked up when needed (the hub starts after the routes exist).
    :param secret: the key of the conversation tokens (the same one the ingest reads them with).
    :param public_base_url: the hub's address (kept for links; mail carries files as real attachments).
    :param shop_name: the name on ``From`` and ``Reply-To``.
    :param tls_context: trust for the relay's certificate (default: the system's CAs).
    """

    def __init__(
        self, config: EmailConfig, db: Callable[[], Database], media: MediaStore, secret: bytes, public_base_url: str,
        *, shop_name: str = DEFAULT_SHOP_NAME, tries: int = DEFAULT_TRIES, backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        tls_context: ssl.SSLContext | None = None, ack_limit: PerSenderLimit | None = None, max_connections: int = 4,
    ) -> None:
        self.config = config
        self._db = db
        self.media = media
        self.secret = secret
        self.public_base_url = public_base_url.rstrip("/")
        self.shop_name = shop_name
        self.tries = max(1, tries)
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self._tls_context = tls_context
        self.ack_limit = ack_limit or PerSenderLimit()
        self._connections = asyncio.Semaphore(max(1, max_connections))

    # --- ChannelAdapter -------------------------------------------------------------------------

    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        """Send one message of a conversation; refusals and failures are ``failed`` reports, never raised."""
        if message.channel != CHANNEL:
            return _failed(f"The email adapter cannot carry a {message.channel!r} message.")
        try:
            async with self._db().session() as s:
                conv = await s.get(Conversation, message.conversation_id)
                rows = await email_repo.thread_messages(s, message.conversation_id) if conv is not None else []
        except Exception:  # noqa: BLE001 - the agent sees a failed message rather than one stuck in "queued"
            log.exception("email: could not read the conversation", extra={"conversation_id": message.conversation_id})
            return _failed("The hub could not read the conversation's thread; the email was not sent. Try again.")
        if conv is None:
            return _failed("The conversation no longer exists; the email was not sent.")
        thread = thread_headers(conv, rows)
        ours = self._our_address(message.from_address or thread.our_address)
        to = plain_address(message.to_address or thread.customer_address)
        if to is None:
            return _failed(f"{message.to_address!r} is not an email address the hub can write to.")
        cc = self._copies(message.extra, ours, to)
        attachments: list[tuple[StoredMedia, bytes]] = []
        for key in message.media_keys:
            found = await self.media.get(key)
            if found is None:
                return _failed("An attachment of this reply is no longer in the hub's files; the email was not sent.", "attachment_missing")
            attachments.append(found)
        token = sign_token(message.conversation_id, self.secret)
        out = Outgoing(
            from_address=ours, from_name=self.shop_name, to=to, cc=cc,
            subject=subject_with_token(thread.subject, token), text=message.text,
            message_id=self._message_id(ours, f"msg:{message.conversation_id}:{_stamp(thread.created_at)}:{message.seq}"),
            reply_to=token_address(ours, token), in_reply_to=thread.in_reply_to, references=thread.references,
            automatic=message.sender_kind in AUTOMATIC_SENDERS, attachments=tuple(attachments),
        )
        return await self._send_and_record(out, message.conversation_id, message.seq)

    # --- the acknowledgement --------------------------------------------------------------------

    async def acknowledge(
        self, conversation_id: int, to_address: str, subject: str, in_reply_to: str | None, mailbox: str,
    ) -> DeliveryReport | None:
        """The automatic acknowledgement of a new thread, with its case number (``Auto-Submitted: auto-replied``).

        None (nothing sent) when ``EMAIL_ACK`` is off, the sender is not a plain address, is one of ours or a
        mailer-daemon/no-reply address, or already had one in the last :data:`ACK_INTERVAL` seconds (kept in
        this process's memory: a restart forgets it, and each hub process keeps its own). The caller sends
        none for automatic mail, lists and bounces (docs/subsystems/email.md). It is recorded in ``email_messages``
        with ``message_seq`` 0 (it is no message of the conversation), so an answer to it threads back.
        """
        to = plain_address(to_address)
        if not self.config.ack or to is None or self.config.ours(to):
            return None
        if to.split("@", 1)[0].lower() in _NO_ACK_LOCALS or not self.ack_limit.allow(to.lower()):
            return None
        ours = self._our_address(mailbox)
        token = sign_token(conversation_id, self.secret)
        parent = _id_of(in_reply_to)
        text = (
            "Hello,\n\n"
            f"Thank you for writing to us. We have received your message and opened case #{conversation_id}; "
            "we will answer as soon as we can.\n\n"
            f"To add to this case, reply to this email and keep [#{token}] in the subject.\n\n"
            f"{self.shop_name}\n\n"
            "(This is an automatic message.)"
        )
        out = Outgoing(
            from_address=ours, from_name=self.shop_name, to=to, cc=(), subject=subject_with_token(subject, token), text=text,
            message_id=self._message_id(ours, f"ack:{conversation_id}:{uuid.uuid4()}"), reply_to=token_address(ours, token),
            in_reply_to=parent, references=(parent,) if parent else (), automatic=True,
        )
        return await self._send_and_record(out, conversation_id, 0)

    async def notice(self, to_address: str, subject: str, text: str) -> DeliveryReport:
        """A standalone automatic notice outside any conversation (a web callback's confirmation or "we could not
        reach you"): from the shop's first address, ``Auto-Submitted: auto-replied``, through the same relay or local
        outbox as every reply. It opens no thread and is not recorded in ``email_messages`` (an answer to it is a new
        thread, as for any first mail). Refusals and failures are ``failed`` reports, never raised."""
        to = plain_address(to_address)
        if to is None or self.config.ours(to):
            return _failed(f"{to_address[:80]!r} is not an email address the hub can write to.")
        ours = self._our_address("")
        out = Outgoing(
            from_address=ours, from_name=self.shop_name, to=to, cc=(), subject=subject[:200], text=text,
            message_id=self._message_id(ours, f"notice:{uuid.uuid4()}"), reply_to=ours, in_reply_to=None, references=(),
            automatic=True,
        )
        return await self._send_and_record(out, 0, 0, record=False)

    # --- the work -------------------------------------------------------------------------------

    def _our_address(self, raw: str) -> str:
        """One of the shop's addresses (plus-tags dropped); the first configured one when ``raw`` is not ours."""
        if raw and "@" in raw and self.config.ours(raw):
            return base_address(raw)
        return next(iter(self.config.addresses))

    def _copies(self, extra: dict[str, object] | None, ours: str, to: str) -> tuple[str, ...]:
        raw = (extra or {}).get("cc") or []
        found: list[str] = []
        for item in raw if isinstance(raw, (list, tuple)) else []:
            address = plain_address(item)
            if address is None:
                log.warning("email: a copy address was dropped", extra={"reason": "not a plain address"})
                continue
            if address.lower() == to.lower() or self.config.ours(address) or address.lower() in (f.lower() for f in found):
                continue
            found.append(address)
        return tuple(found[:10])

    def _message_id(self, ours: str, seed: str) -> str:
        """``<uuid@our domain>``: derived from the message (a resend keeps it), unguessable without the secret."""
        digest = hmac.new(self.secret, seed.encode(), hashlib.sha256).digest()
        return f"<{uuid.UUID(bytes=digest[:16], version=4)}@{ours.rpartition('@')[2]}>"

    async def _send_and_record(self, out: Outgoing, conversation_id: int, seq: int, *, record: bool = True) -> DeliveryReport:
        try:
            raw = await asyncio.to_thread(lambda: serialize(build_email(out)))
        except (ValueError, TypeError) as exc:
            log.warning("email: could not build the message", extra={"conversation_id": conversation_id, "error": type(exc).__name__})
            return _failed(f"The email could not be written ({_server_text(str(exc))}); it was not sent.")
        mid = email_repo.strip_id(out.message_id) or out.message_id
        note: str | None = None
        if self.config.relay is None:
            try:
                await asyncio.to_thread(write_outbox, Path(self.config.outbox_dir), raw, mid)
            except OSError as exc:
                log.error("email: the local outbox cannot be written", extra={"error": type(exc).__name__})
                return _failed(f"The hub could not write the email to its local outbox ({type(exc).__name__}).")
        else:
            try:
                refused = await self._send(raw, out)
            except SendError as exc:
                log.warning("email: not sent", extra={"conversation_id": conversation_id, "seq": seq, "smtp_code": exc.code})
                return _failed(exc.words + " The email was not sent.", str(exc.code) if exc.code else None)
            if refused:
                note = "Sent, but the relay refused the copies to " + "; ".join(refused) + "."
        if record:
            await self._record(out, raw, mid, conversation_id, seq)
        return DeliveryReport("sent", provider_id=email_repo.provider_id(out.from_address, mid), error_message=note)

    async def _record(self, out: Outgoing, raw: bytes, mid: str, conversation_id: int, seq: int) -> None:
        """Keep the raw bytes and the row that threads the answer; the mail is gone already, so a failure is logged."""
        try:
            stored = await self.media.put(raw, "message/rfc822", name=f"{mid.split('@', 1)[0]}.eml")
            async with self._db().transaction() as s:
                if await email_repo.by_key(s, out.from_address, mid) is None:
                    await email_repo.record_sent(
                        s, mailbox=out.from_address, message_id=mid, conversation_id=conversation_id, message_seq=seq,
                        raw_key=stored.key, size=len(raw), subject=out.subject, in_reply_to=out.in_reply_to,
                        references=out.references,
                    )
        except Exception:  # noqa: BLE001
            log.exception("email: sent but not recorded", extra={"conversation_id": conversation_id, "seq": seq})

    async def _trust(self) -> ssl.SSLContext:
        if self._tls_context is None:  # loading the system's CAs reads files: not on the event loop
            self._tls_context = await asyncio.to_thread(ssl.create_default_context)
        return self._tls_context

    async def _send(self, raw: bytes, out: Outgoing) -> list[str]:
        """Send with retries; the copies the relay refused (the customer's refusal is a SendError)."""
        relay = self.config.relay
        assert relay is not None
        attempt = 1
        while True:
            try:
                async with self._connections:
                    return await self._attempt(relay, raw, out)
            except SendError as exc:
                if not exc.temporary or attempt >= self.tries:
                    if exc.temporary:
                        exc.words = f"{exc.words} Tried {attempt} times."
                    raise
                log.warning("email: send retried", extra={"attempt": attempt, "smtp_code": exc.code})
            await self._sleep(self.backoff * 2 ** (attempt - 1))
            attempt += 1

    async def _attempt(self, relay: SmtpRelay, raw: bytes, out: Outgoing) -> list[str]:
        use_tls = relay.tls or relay.starttls
        smtp = aiosmtplib.SMTP(
            hostname=relay.host, port=relay.port, use_tls=relay.tls, start_tls=relay.starttls if not relay.tls else False,
            username=relay.username or None, password=relay.password or None, timeout=self.timeout,
            tls_context=await self._trust() if use_tls else None,
        )
        refused: list[str] = []
        try:
            await smtp.connect()
            await smtp.mail(out.from_address)
            try:
                await smtp.rcpt(out.to)
            except aiosmtplib.SMTPRecipientRefused as exc:
                raise classify(exc, relay, customer=out.to) from None
            for copy in out.cc:
                try:
                    await smtp.rcpt(copy)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(f"{copy} ({exc.code} {_server_text(exc.message)})")
            await smtp.data(raw)
        except SendError:
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise classify(exc, relay, customer=out.to) from None
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
        return refused


def _stamp(when: datetime | None) -> str:
    return when.isoformat() if when is not None else ""


def _failed(words: str, code: str | None = None) -> DeliveryReport:
    return DeliveryReport("failed", error_code=code, error_message=words)


def write_outbox(folder: Path, raw: bytes, message_id: str) -> Path:
    """Write one ``.eml`` into the local outbox (atomically); its name sorts by time: ``<ns>-<uuid>.eml``."""
    folder.mkdir(parents=True, exist_ok=True)
    local = message_id.split("@", 1)[0]
    try:
        stem = str(uuid.UUID(local))
    except ValueError:
        stem = str(uuid.uuid4())
    path = folder / f"{time.time_ns()}-{stem}.eml"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return path


__all__ = [
    "EmailAdapter", "Outgoing", "PerSenderLimit", "SendError", "ThreadHeaders", "build_email", "classify", "plain_address",
    "serialize", "text_to_html", "thread_headers", "trim_references", "write_outbox",
]
