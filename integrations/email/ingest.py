"""Inbound email: kept before it is acknowledged, then parsed, threaded and handed to the core.

``take(raw, mailbox, source)`` is what runs before the SMTP server's 250 and before the IMAP poller marks
a message seen: the raw bytes go to the media store (``message/rfc822``) and one ``email_messages`` row in
state ``received`` records them (a repeat, by (mailbox, Message-ID) or by the bytes' SHA-256 without one,
is refused there: one message whichever way it came, however many fetches race). Everything else runs
later, in the background worker, so the SMTP answer never waits for it:

``process(row_id)``: parse (off the event loop), classify, thread (docs/subsystems/email.md, Threading:
a signed token in a recipient address; In-Reply-To, then References, against the Message-IDs we stored or
sent; a signed token in the subject; else a new thread keyed by this message's Message-ID), store the
attachments and the sanitised HTML, hand the core an ``InboundEvent``, and ``mark_stored``. A crash in
between leaves the row ``received``; ``recover()`` finishes those.

Special cases:

* a delivery-status report (bounce): the bounced message of ours is found by its provider id
  (``provider_id(our address, its Message-ID)``, as the outbound adapter stored it) and gets
  ``delivery_update("email", ..., "failed" | "undelivered", status, diagnostic)``; the row is ``ignored``
  (kept, attached to the bounced message's conversation when known, never answered);
* our own mail coming back (our ``X-Loop``): ``ignored``, never handed to the core;
* out-of-office and other automatic replies, and list mail: handed to the core with ``wake=False`` (filed,
  reopens and queues nothing), never acknowledged;
* a sender failing DMARC/DKIM at our authserv-id: ``identity_trusted=False`` (a customer of its own, the
  "possibly spoofed" label), and it never joins an existing conversation;
* a Message-ID reused for a different message (some form mailers do that) is not taken for a repeat: the
  second message is keyed by its Message-ID and a fingerprint of its content;
* one message to two of our addresses is one message in one conversation: the provider id handed to
  the core is computed with the first of our addresses the message names (To, then Cc), the same for
  each mailbox's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from contact_center.channels import EMAIL
from contact_center.ports import InboundAttachment, InboundEvent, InboundPort, MediaStore
from crm_store.db import Database
from crm_store.message_log import sqlite_writer
from crm_store.models import Conversation, EmailMessage
from crm_store.repositories import email as email_repo
from integrations.email.config import EmailConfig
from integrations.email.parse import ParsedEmail, fingerprint, parse_email, parse_headers, summary
from integrations.email.threading import read_token, token_in_address, token_in_subject

log = logging.getLogger(__name__)

CHANNEL = EMAIL.name
RAW_TYPE = "message/rfc822"
MAX_THREAD_KEY = 180  # conversations.thread_key holds 200; room for a successor's suffix
MAX_ATTEMPTS = 5
INLINE_PARSE_BYTES = 128 * 1024  # a larger message is parsed on a worker thread, off the event loop
NO_TEXT = "(The email has no text.)"
# What the media store may keep under the sender's type: anything else is kept as a plain download
# (SVG and HTML can carry scripts, and the media route shows images inline).
_SERVE_AS_IS = {
    "image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain", "text/csv", "text/calendar",
    "text/vcard", "message/rfc822", "application/zip", "application/rtf", "audio/mpeg", "audio/ogg", "audio/mp4",
    "video/mp4", "video/3gpp", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
}

Acknowledge = Callable[..., Awaitable[object]]  # the outbound adapter's acknowledge (its report is not used)


def stored_type(content_type: str) -> str:
    """The type a file is kept (and so served) under: its sniffed type when harmless, else a download."""
    return content_type if content_type in _SERVE_AS_IS else "application/octet-stream"


def base_address(address: str) -> str:
    """``support+c12-ab@Shop.Example`` -> ``support@shop.example``."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else address.strip().lower()


def thread_key_of(key: str) -> str:
    """A thread key that fits the conversations table (a long Message-ID is hashed)."""
    return key if len(key) <= MAX_THREAD_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:48]


@dataclass(frozen=True)
class _Taken:
    """A row ``take`` just created, with its bytes: the worker needs neither the row nor the file read back."""

    row: EmailMessage
    raw: bytes


@dataclass(frozen=True)
class Outcome:
    """What ``process`` did with a row: its final state, and where it went."""

    state: str
    conversation_id: int | None = None
    message_seq: int | None = None
    how: str = ""  # address_token | in_reply_to | references | subject_token | new | bounce | loop
    created: bool = False


class EmailIngest:
    """The inbound side of the email channel (see the module's doc).

    :param db: the database (a callable: the composition root opens it at start-up).
    :param inbound: the core's inbound port (``HubService``).
    :param secret: the key of the thread tokens (``integrations.email.threading``).
    :param acknowledge: sends the acknowledgement of a new, human thread (``config.ack``):
        ``await acknowledge(conversation_id, to_address, subject, in_reply_to, mailbox)``.
    :param authserv_id: the authserv-id whose ``Authentication-Results`` are trusted (our own MTA's);
        None: none is, and no message is labelled spoofed.
    """

    concurrency = 4  # messages processed at once (of different senders and threads)

    def __init__(
        self, db: Callable[[], Database], inbound: InboundPort, media: MediaStore, config: EmailConfig, secret: bytes,
        acknowledge: Acknowledge | None = None, *, authserv_id: str | None = None,
    ) -> None:
        self._db = db
        self.inbound = inbound
        self.media = media
        self.config = config
        self.secret = secret
        self.acknowledge = acknowledge
        self.authserv_id = authserv_id
        self._queue: asyncio.Queue[_Taken | int] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lanes: dict[str, asyncio.Future[None]] = {}  # sender address -> its newest message in hand
        self._in_hand: dict[str, asyncio.Future[None]] = {}  # Message-ID -> done when its row is marked
        self._marks: list[tuple[email_repo.Marked, asyncio.Future[None]]] = []
        self._marking = False
        self._mark_task: asyncio.Task[None] | None = None
        self._attempts: dict[int, int] = {}
        self._busy = 0

    # --- before the 250 ----------------------------------------------------------------------------

    async def take(self, raw: bytes, mailbox: str, source: str, *, rcpt: str | None = None) -> tuple[int, bool]:
        """Keep the raw message for one of our mailboxes: (row id, False if it was already kept).

        Raises when the bytes or the row could not be kept: the SMTP server answers 451, the IMAP poller
        leaves the message unseen, and the sender or the next poll tries again.
        """
        mailbox = base_address(mailbox)
        head = parse_headers(raw)
        stored = await self.media.put(raw, RAW_TYPE, f"{(head.message_id or 'message')[:80]}.eml")
        fp = fingerprint(raw)
        detail: dict[str, Any] = {"fingerprint": fp}
        if rcpt:
            detail["rcpt"] = rcpt.strip().lower()[:254]
        fields: dict[str, Any] = dict(mailbox=mailbox, raw=raw, raw_key=stored.key, source=source, from_addr=head.from_address,
                      subject=head.subject, in_reply_to=head.in_reply_to, references=head.references, detail=detail)
        # one write transaction, one statement for a new message (no read before the insert); a repeat of the
        # Message-ID that is not this message (another content, or one of ours) is kept under its own key
        def reused(taken: email_repo.TakenIn) -> bool:
            row = taken.row
            return bool(not taken.created and head.message_id
                        and (row.direction != "in" or (row.detail or {}).get("fingerprint") not in (None, fp)))

        writer = sqlite_writer(self._db())
        if writer is not None:  # SQLite: in the group commit, on the event loop, never waiting for the lock there
            def work(conn: Any) -> email_repo.TakenIn:
                taken = email_repo.take_in_sqlite(conn, message_id=head.message_id, **fields)
                if reused(taken):
                    assert head.message_id is not None
                    taken = email_repo.take_in_sqlite(conn, message_id=self._reused(head.message_id, fp), **fields)
                return taken
            taken = await writer.run(work)
        else:
            async with self._db().transaction() as s:
                taken = await email_repo.take_in(s, message_id=head.message_id, **fields)
                if reused(taken):
                    assert head.message_id is not None
                    taken = await email_repo.take_in(s, message_id=self._reused(head.message_id, fp), **fields)
        row = taken.row
        assert row.id is not None
        if taken.created:
            self._queue.put_nowait(_Taken(row, raw))
        return row.id, taken.created

    @staticmethod
    def _reused(message_id: str, fp: str) -> str:
        return f"{message_id.strip().strip('<>')[:250]}#reused-{fp[:16]}"

    # --- the worker ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the background worker (first the recovery pass, then what ``take`` queues)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="email-ingest")

    async def stop(self) -> None:
        """Stop the worker; rows it had not processed stay ``received`` for the next start's recovery."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued row is processed (tests and benchmarks)."""
        async def idle() -> None:
            while not self._queue.empty() or self._busy:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(idle(), timeout)

    async def _run(self) -> None:
        """Hand each queued row to its own task, up to ``concurrency`` at once, in an order that keeps every
        message after the ones it depends on: the messages of one sender go one after the other (a lane per
        sender address), and a message whose In-Reply-To or References names a message still in hand here
        waits for that one (so a reply is never threaded before the message it answers is stored)."""
        try:
            await self.recover()
        except Exception:  # noqa: BLE001 - the database may be down at start; the rows wait for the next pass
            log.exception("email recovery pass failed")
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(max(1, self.concurrency))
        while True:
            item = await self._queue.get()
            row_id = item.row.id if isinstance(item, _Taken) else item
            assert row_id is not None
            done: asyncio.Future[None] = loop.create_future()
            after: list[asyncio.Future[None]] = []
            lane = mid = None
            if isinstance(item, _Taken):
                row = item.row
                for ref in (row.in_reply_to, *(row.references or ())):
                    found = self._in_hand.get(ref) if ref else None
                    if found is not None and found not in after:
                        after.append(found)
                lane, mid = row.from_addr or None, row.message_id
            if lane is not None:
                earlier = self._lanes.get(lane)
                if earlier is not None and earlier not in after:
                    after.append(earlier)
                self._lanes[lane] = done
            if mid:
                self._in_hand[mid] = done
            self._busy += 1
            task = loop.create_task(self._handle(item, row_id, after, done, slots, lane, mid))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, item: "_Taken | int", row_id: int, after: list["asyncio.Future[None]"], done: "asyncio.Future[None]",
                      slots: asyncio.Semaphore, lane: str | None, mid: str | None) -> None:
        try:
            if after:
                await asyncio.wait(after)  # never cancels them
            async with slots:
                await self.process(row_id, taken=item if isinstance(item, _Taken) else None)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one message's failure never stops the worker
            log.exception("email processing failed", extra={"row_id": row_id})
            await self._failed(row_id)
        finally:
            if not done.done():
                done.set_result(None)
            if lane is not None and self._lanes.get(lane) is done:
                del self._lanes[lane]
            if mid and self._in_hand.get(mid) is done:
                del self._in_hand[mid]
            self._busy -= 1

    async def _failed(self, row_id: int) -> None:
        attempts = self._attempts.get(row_id, 0) + 1
        self._attempts[row_id] = attempts
        if attempts >= MAX_ATTEMPTS:
            with contextlib.suppress(Exception):
                async with self._db().transaction() as s:
                    await email_repo.mark_stored(s, row_id, conversation_id=None, message_seq=None, state="failed",
                                                 detail={"error": f"processing failed {attempts} times"})
            self._attempts.pop(row_id, None)
        else:
            loop = asyncio.get_running_loop()
            loop.call_later(min(60.0, 2.0 ** attempts), self._queue.put_nowait, row_id)

    async def recover(self) -> int:
        """Process the rows left ``received`` (kept, never handed to the core); how many were processed."""
        done = 0
        seen: set[int] = set()
        while True:
            async with self._db().session() as s:
                rows = [r for r in await email_repo.pending(s, limit=100) if r.id not in seen]
            if not rows:
                return done
            for row in rows:
                assert row.id is not None
                seen.add(row.id)
                try:
                    await self.process(row.id)
                    done += 1
                except Exception:  # noqa: BLE001
                    log.exception("email recovery failed for one message", extra={"row_id": row.id})

    # --- after the 250 -----------------------------------------------------------------------------

    async def process(self, row_id: int, *, taken: _Taken | None = None) -> Outcome | None:
        """Parse, thread and hand one kept message to the core (idempotent: a row already done is skipped).

        ``taken``: the row ``take`` just created and its bytes (neither is read back)."""
        if taken is not None:
            row, raw = taken.row, taken.raw
        else:
            async with self._db().session() as s:
                found_row = await s.get(EmailMessage, row_id)
            if found_row is None or found_row.state != "received" or found_row.direction != "in":
                return None
            row = found_row
            found = await self.media.get(row.raw_key)
            if found is None:
                return await self._mark(row, Outcome("failed"), {"error": "the raw message is missing from the media store"})
            raw = found[1]
        if len(raw) <= INLINE_PARSE_BYTES:  # a millisecond or two of pure Python: a thread would only add hand-offs
            parsed = parse_email(raw, our_addresses=tuple(self.config.addresses), authserv_id=self.authserv_id)
        else:
            parsed = await asyncio.to_thread(
                parse_email, raw, our_addresses=tuple(self.config.addresses), authserv_id=self.authserv_id,
            )
        detail = summary(parsed)
        if parsed.auto == "loop":
            log.info("email loop ignored", extra={"row_id": row_id})
            return await self._mark(row, Outcome("ignored", how="loop"), detail)
        if parsed.bounce is not None:
            return await self._bounce(row, parsed, detail)
        return await self._deliver(row, parsed, detail)

    async def _mark(self, row: EmailMessage, outcome: Outcome, detail: dict[str, Any]) -> Outcome:
        """Record the outcome on the row. The rows of messages finishing together share one transaction (one
        statement); this returns once it is committed (a reply's threading reads the row)."""
        assert row.id is not None
        marked = email_repo.Marked(row.id, outcome.state, outcome.conversation_id, outcome.message_seq,
                                   {**(row.detail or {}), **detail, "threaded_by": outcome.how or None})
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._marks.append((marked, future))
        if not self._marking:
            self._marking = True
            self._mark_task = loop.create_task(self._write_marks())
        await future
        self._attempts.pop(row.id, None)
        return outcome

    async def _write_marks(self) -> None:
        try:
            while self._marks:
                batch, self._marks = self._marks, []
                try:
                    rows = [m for m, _ in batch]
                    writer = sqlite_writer(self._db())
                    if writer is not None:
                        await writer.run(lambda conn: email_repo.mark_many_sqlite(conn, rows))
                    else:
                        async with self._db().transaction() as s:
                            await email_repo.mark_many(s, rows)
                except Exception as exc:  # noqa: BLE001 - each waiter's message is retried
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._marking = False

    async def _bounce(self, row: EmailMessage, p: ParsedEmail, detail: dict[str, Any]) -> Outcome:
        assert p.bounce is not None and row.id is not None
        b = p.bounce
        conversation_id = None
        if b.original_message_id:
            async with self._db().session() as s:
                conv = await email_repo.conversation_of(s, [b.original_message_id])
            conversation_id = conv.id if conv is not None else None
            status = "failed" if b.permanent else ("undelivered" if b.action == "failed" else None)
            if status is not None:
                words = f"{b.recipient or 'The recipient'}: {b.diagnostic or 'the message could not be delivered'}"
                if b.permanent:
                    words += " (permanent: the address does not take mail)"
                mailboxes = [row.mailbox] + [a for a in self.config.addresses if a != row.mailbox]
                for mailbox in mailboxes:
                    pid = email_repo.provider_id(mailbox, b.original_message_id)
                    if await self.inbound.delivery_update(CHANNEL, pid, status, b.status or None, words[:300]):
                        detail["bounced_provider_id"] = pid
                        break
        if b.permanent and b.recipient and hasattr(self.inbound, "address_undeliverable"):
            reason = f"{b.status or '5.0.0'} {b.diagnostic or 'permanent failure'}"
            detail["undeliverable"] = await self.inbound.address_undeliverable(CHANNEL, b.recipient, reason[:300])
        return await self._mark(row, Outcome("ignored", conversation_id=conversation_id, how="bounce"), detail)

    async def _thread(self, row: EmailMessage, p: ParsedEmail) -> tuple[Conversation | None, str]:
        """The conversation this message continues, and by which rule (docs/subsystems/email.md)."""
        candidates = [str((row.detail or {}).get("rcpt") or "")] + p.to + p.cc
        async with self._db().session() as s:
            for address in candidates:
                token = token_in_address(address) if address and self.config.ours(address) else None
                conversation_id = read_token(token, self.secret) if token else None
                if conversation_id is not None:
                    conv = await s.get(Conversation, conversation_id)
                    if conv is not None and conv.channel == CHANNEL and conv.thread_key:
                        return conv, "address_token"
            if p.in_reply_to:
                conv = await email_repo.conversation_of(s, [p.in_reply_to])
                if conv is not None and conv.channel == CHANNEL and conv.thread_key:
                    return conv, "in_reply_to"
            if p.references:
                conv = await email_repo.conversation_of(s, p.references)
                if conv is not None and conv.channel == CHANNEL and conv.thread_key:
                    return conv, "references"
            token = token_in_subject(p.subject)
            conversation_id = read_token(token, self.secret) if token else None
            if conversation_id is not None:
                conv = await s.get(Conversation, conversation_id)
                if conv is not None and conv.channel == CHANNEL and conv.thread_key:
                    return conv, "subject_token"
        return None, "new"

    def _our_address(self, row: EmailMessage, p: ParsedEmail) -> str:
        """The first of our addresses the message names (To, then Cc), else the mailbox it reached."""
        for address in p.to + p.cc:
            if self.config.ours(address):
                return base_address(address)
        return row.mailbox

    async def _deliver(self, row: EmailMessage, p: ParsedEmail, detail: dict[str, Any]) -> Outcome:
        assert row.id is not None
        if not p.from_address:
            return await self._mark(row, Outcome("failed"), {**detail, "error": "the message has no sender address"})
        our_address = self._our_address(row, p)
        if p.spoofed:  # never into someone's existing conversation
            conv, how = None, "new"
        else:
            conv, how = await self._thread(row, p)
        thread_key = conv.thread_key if conv is not None and conv.thread_key else thread_key_of(
            ("spoofed:" if p.spoofed else "") + row.dedup_key
        )
        attachments, cids = await self._store_files(p)
        html_key = None
        if p.html_sanitised:
            html_key = (await self.media.put(p.html_sanitised.encode("utf-8"), "text/html", "message.html")).key
        omitted = [{"name": o.name, "reason": o.reason} for o in p.omitted]
        text, quote_at = p.text, p.quote_at
        if len(text) > EMAIL.max_text:
            text = text[: EMAIL.max_text - 200].rstrip()
            omitted.append({"name": "(text)", "reason": f"the text is longer than {EMAIL.max_text:,} characters; the rest is in the original email"})
            quote_at = quote_at if quote_at is not None and quote_at < len(text) else None
        if not text and not attachments:
            text, quote_at = NO_TEXT, None
        extra: dict[str, object] = {
            "kind": "email", "subject": p.subject, "from": {"address": p.from_address, "name": p.from_name},
            "to": p.to, "cc": p.cc, "reply_to": p.reply_to, "message_id": p.message_id, "html_key": html_key,
            "quote_at": quote_at, "spoofed": p.spoofed, "auth": p.auth.result, "auto": p.auto, "omitted": omitted,
            "bounce": None, "date": p.date.isoformat() if p.date else None, "raw_key": row.raw_key, "cids": cids,
        }
        event = InboundEvent(
            channel=CHANNEL, customer_address=p.from_address, text=text, our_address=our_address, thread_key=thread_key,
            provider_id=email_repo.provider_id(our_address, row.dedup_key), bot_text=p.new_text or None,
            display_name=p.from_name, queue=self.config.queue_of(our_address), attachments=tuple(attachments),
            wake=p.wake, identity_trusted=not p.spoofed, extra=extra, subject=p.subject or None,
        )
        try:
            result = await self.inbound.receive_inbound(event)
        except Exception as exc:
            if getattr(exc, "code", None) != "bad_request":  # a failure: retried (the row stays received)
                raise
            log.warning("email refused by the core", extra={"row_id": row.id, "reason": str(exc)})
            return await self._mark(row, Outcome("failed", how=how), {**detail, "error": f"refused: {exc}"[:300]})
        seq = result.message.get("seq")
        outcome = Outcome("stored", conversation_id=result.conversation_id, message_seq=int(seq) if isinstance(seq, int) else None,
                          how=how, created=result.created)
        await self._mark(row, outcome, detail)
        if (conv is None and result.created and self.acknowledge is not None and self.config.ack and p.auto is None
                and not p.no_auto_answer and not p.spoofed):
            try:
                await self.acknowledge(result.conversation_id, p.from_address, p.subject, p.message_id, our_address)
            except Exception:  # noqa: BLE001 - an acknowledgement that fails never loses the message
                log.exception("email acknowledgement failed", extra={"conversation_id": result.conversation_id})
        return outcome

    async def _store_files(self, p: ParsedEmail) -> tuple[list[InboundAttachment], dict[str, str]]:
        out: list[InboundAttachment] = []
        cids: dict[str, str] = {}
        for a in p.attachments:
            stored = await self.media.put(a.data, stored_type(a.content_type), a.name)
            url = f"/media/{stored.key}"
            out.append(InboundAttachment(content_type=stored.content_type, size=stored.size, url=url, name=a.name))
            if a.cid:
                cids[a.cid] = url
        return out, cids
