"""The IMAP poller: takes in the mail of one mailbox folder (``IMAP_URL``), never losing, doubling or deleting it.

One :class:`ImapPoller` per :class:`~integrations.email.config.ImapAccount` (docs/subsystems/email.md). It:

- keeps UIDVALIDITY and the last UID taken in per (account, folder) in ``imap_cursors``
  (:mod:`crm_store.repositories.imap`) and, at every (re)connection, takes in everything after that UID, so
  mail that arrived while the hub (or the server, or the network) was down is backfilled;
- when UIDVALIDITY changes (the folder was recreated), takes in the whole folder again: the ingest's
  deduplication (mailbox and Message-ID, or the bytes' SHA-256) makes the repeats no-ops;
- waits with IDLE where the server has it (ended and the folder re-selected every ``idle_refresh`` seconds, 60 by
  default: a folder recreated under an IDLE sends no news), otherwise polls every ``poll_interval`` seconds
  (at most 60);
- fetches with ``BODY.PEEK[]`` (nothing is marked by reading), calls ``take(raw, mailbox, "imap")`` (the ingest
  keeps the bytes and commits), and only after it returned sets ``\\Seen``, then advances the cursor, then
  hands the row on with ``process(row_id)`` (a new row only; a failure there is logged and left to the
  ingest's recovery pass). Nothing is ever expunged, moved or flagged ``\\Deleted``;
- reconnects with exponential back-off (and jitter) after any error, the take's included;
- never logs the password (every logged error text is scrubbed of it).

The client is the standard library's :mod:`imaplib`, run in one worker thread per poller (the connection
belongs to that thread alone), rather than aioimaplib: no new dependency for the few commands needed
(LOGIN, SELECT, UID SEARCH/FETCH/STORE, IDLE), and imaplib's documented ``read``/``readline`` hooks let the
IDLE wait check for a stop every half second without ever touching the socket from two threads.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import random
import re
import selectors
import ssl
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

from crm_store.db import Database
from crm_store.repositories.imap import get_cursor, save_cursor
from integrations.email.config import ImapAccount

log = logging.getLogger(__name__)

Take = Callable[[bytes, str, str], Awaitable[tuple[int, bool]]]
Process = Callable[[int], Awaitable[None]]

MAX_POLL_SECONDS = 60.0
_EXISTS = re.compile(rb"^\* \d+ EXISTS", re.IGNORECASE)
_FETCH_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_MAXLINE = 1_000_000
_SLICE = 0.5  # how often an IDLE wait looks for a stop


class ImapError(Exception):
    """The server refused a command the poller needs."""


class _Buffered:
    """imaplib's ``read``/``readline`` over our own buffer, so an IDLE wait can ask whether a line is waiting."""

    sock: Any
    _buf: bytearray
    caps: set[str]  # the capabilities after login

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)  # type: ignore[misc]
        self._buf = bytearray()
        self.caps = set()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if data:
            self._buf += data
        return bool(data)

    def read(self, size: int) -> bytes:
        while len(self._buf) < size and self._fill():
            pass
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def readline(self) -> bytes:
        while True:
            at = self._buf.find(b"\n")
            if at >= 0:
                out = bytes(self._buf[: at + 1])
                del self._buf[: at + 1]
                return out
            if len(self._buf) > _MAXLINE:
                raise imaplib.IMAP4.error(f"got more than {_MAXLINE} bytes")
            if not self._fill():
                out = bytes(self._buf)
                self._buf.clear()
                return out

    def waiting(self, timeout: float) -> bool:
        """Whether a line has arrived (or arrives within ``timeout`` seconds)."""
        if self._buf or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            return bool(sel.select(timeout))


class _Imap(_Buffered, imaplib.IMAP4):
    pass


class _ImapSsl(_Buffered, imaplib.IMAP4_SSL):
    pass


def mailbox_name(folder: str) -> str:
    """A folder name as an IMAP quoted string (modified UTF-7 for non-ASCII, RFC 3501 5.1.3)."""
    out: list[str] = []
    wide: list[str] = []

    def flush() -> None:
        if wide:
            b64 = base64.b64encode("".join(wide).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            wide.clear()

    for ch in folder:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            wide.append(ch)
    flush()
    return '"' + "".join(out).replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapPoller:
    """Polls one folder of one mailbox; ``start()`` / ``stop()`` for the composition root.

    :param account: the mailbox (its ``address`` is the dedup mailbox handed to ``take``).
    :param db: gives the database of the cursors (called when needed, so the root may build it later).
    :param take: the ingest's first step, ``take(raw, mailbox, "imap") -> (row_id, created)``, committed on return.
    :param process: hands a new row on (parse, thread, the core).
    :param poll_interval: seconds between polls when the server has no IDLE (at most 60).
    :param idle_refresh: seconds before an IDLE is ended and the folder checked again: what IDLE cannot tell
        (the folder recreated under it: a new UIDVALIDITY) and a dead connection are found within this.
    :param backoff: the first and the longest wait before reconnecting after an error.
    :param timeout: socket timeout of each IMAP command.
    :param use_idle: False to poll even where the server has IDLE.
    """

    def __init__(
        self, account: ImapAccount, db: Callable[[], Database], take: Take, process: Process, *,
        poll_interval: float = MAX_POLL_SECONDS, idle_refresh: float = MAX_POLL_SECONDS, backoff: tuple[float, float] = (1.0, 60.0),
        timeout: float = 30.0, use_idle: bool = True, ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.account = account
        self.folder = account.folder or "INBOX"
        self.mailbox = (account.address or account.account).lower()
        self._db, self._take, self._process = db, take, process
        self.poll_interval = min(max(poll_interval, 0.05), MAX_POLL_SECONDS)
        self.idle_refresh = max(idle_refresh, 1.0)
        self.backoff = backoff
        self.timeout = timeout
        self.use_idle = use_idle
        self._ssl_context = ssl_context
        self.state = "stopped"  # connecting, fetching, idle, polling, backoff, stopped
        self.taken = 0  # messages taken in (repeats included) since start
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._halt = threading.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._conn: imaplib.IMAP4 | None = None
        self._healthy = False

    def __repr__(self) -> str:
        return f"ImapPoller({self.name!r}, state={self.state!r})"

    @property
    def name(self) -> str:
        """``user@host/FOLDER``: what the logs show (never the password)."""
        return f"{self.account.account}/{self.folder}"

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start polling in the background (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        self._halt.clear()
        self._stopping = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="imap-poller")
        self._task = asyncio.create_task(self._run(), name=f"imap-poller {self.name}")

    async def stop(self) -> None:
        """Stop after the message in hand (its take, ``\\Seen`` and cursor), log out, end the thread."""
        task = self._task
        if task is None:
            return
        self._halt.set()
        assert self._stopping is not None
        self._stopping.set()
        if self.state == "connecting":  # nothing in hand yet: no need to wait for a slow login
            self._abort_socket()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.timeout + 5)
        except asyncio.TimeoutError:  # a command hangs: cut the socket under it
            self._abort_socket()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:  # noqa: BLE001 - _run logs its own errors
            pass
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self.state = "stopped"

    async def _run(self) -> None:
        delay = self.backoff[0]
        while not self._halt.is_set():
            self._healthy = False
            try:
                self.state = "connecting"
                conn = await self._call(self._connect)
                await self._session(conn)
            except Exception as exc:  # noqa: BLE001 - every error: log (scrubbed), back off, reconnect
                self.last_error = self._scrub(f"{type(exc).__name__}: {exc}")
                if isinstance(exc, (OSError, imaplib.IMAP4.error, ImapError)):
                    log.warning("IMAP %s: %s; reconnecting in %.1f s", self.name, self.last_error, delay)
                else:
                    log.error("IMAP %s: reconnecting in %.1f s after\n%s", self.name, delay,
                              self._scrub("".join(traceback.format_exception(exc))))
            finally:
                await self._call(self._close)
            if self._halt.is_set():
                break
            if self._healthy:  # it worked for a while: start the back-off again from the shortest wait
                delay = self.backoff[0]
            self.state = "backoff"
            if await self._sleep(delay * random.uniform(0.8, 1.2)):
                break
            delay = min(delay * 2, self.backoff[1])
        self.state = "stopped"

    async def _session(self, conn: _Imap | _ImapSsl) -> None:
        """One connection's life: select, take in what is new, wait (IDLE or poll), again, until stopped."""
        idle = self.use_idle and "IDLE" in conn.caps
        first = True
        while not self._halt.is_set():
            self.state = "fetching"
            uidvalidity, exists = await self._call(self._select, conn)
            await self._catch_up(conn, uidvalidity, exists, announce=first, idle=idle)
            first, self._healthy = False, True
            if self._halt.is_set():
                break
            if idle:
                self.state = "idle"
                await self._call(self._idle, conn)
            else:
                self.state = "polling"
                if await self._sleep(self.poll_interval):
                    break

    async def _catch_up(self, conn: imaplib.IMAP4, uidvalidity: int, exists: int, *, announce: bool, idle: bool) -> None:
        cursor = await self._get_cursor()
        if cursor is None or cursor.uidvalidity != uidvalidity:
            if cursor is not None:
                log.warning("IMAP %s: UIDVALIDITY changed (%d -> %d): taking in the whole folder again (repeats are "
                            "deduplicated)", self.name, cursor.uidvalidity, uidvalidity)
            await self._save_cursor(uidvalidity, 0)
            last = 0
        else:
            last = cursor.last_uid
        if announce:
            log.info("IMAP %s: connected, UIDVALIDITY %d, after UID %d; %s", self.name, uidvalidity, last,
                     "IDLE" if idle else f"polling every {self.poll_interval:g} s")
        uids = await self._call(self._search, conn, last) if exists else []
        for uid in uids:
            if self._halt.is_set():
                return
            raw = await self._call(self._fetch, conn, uid)
            if raw is None:  # expunged meanwhile by someone else: nothing to take
                await self._save_cursor(uidvalidity, uid)
                continue
            row_id, created = await self._take(raw, self.mailbox, "imap")  # committed when it returns
            await self._call(self._mark_seen, conn, uid)
            await self._save_cursor(uidvalidity, uid)
            self.taken += 1
            log.debug("IMAP %s: UID %d taken in as email row %d (%s)", self.name, uid, row_id, "new" if created else "repeat")
            if created:
                try:
                    await self._process(row_id)
                except Exception as exc:  # noqa: BLE001 - the row stays 'received' for the ingest's recovery
                    log.error("IMAP %s: processing email row %d failed (left for recovery)\n%s", self.name, row_id,
                              self._scrub("".join(traceback.format_exception(exc))))

    # --- the database ------------------------------------------------------------------------------

    async def _get_cursor(self) -> Any:
        async with self._db().session() as s:
            return await get_cursor(s, self.account.account, self.folder)

    async def _save_cursor(self, uidvalidity: int, last_uid: int) -> None:
        async with self._db().transaction() as s:
            await save_cursor(s, self.account.account, self.folder, uidvalidity=uidvalidity, last_uid=last_uid)

    # --- helpers on the event loop -----------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _sleep(self, seconds: float) -> bool:
        """Wait, or less if stopped; True when stopped."""
        assert self._stopping is not None
        try:
            async with asyncio.timeout(seconds):  # not wait_for: it may lose a cancellation on Python 3.11
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    def _scrub(self, text: str) -> str:
        secret = self.account.password
        if secret:
            for form in {secret, secret.replace("\\", "\\\\").replace('"', '\\"')}:
                text = text.replace(form, "***")
        return text

    def _abort_socket(self) -> None:
        conn = self._conn
        if conn is not None:
            try:
                conn.sock.shutdown(2)
            except OSError:
                pass

    # --- IMAP, in the poller's thread ----------------------------------------------------------------

    def _connect(self) -> _Imap | _ImapSsl:
        a = self.account
        context = self._ssl_context or ssl.create_default_context()
        conn: _Imap | _ImapSsl
        if a.tls:
            conn = _ImapSsl(a.host, a.port, ssl_context=context, timeout=self.timeout)
        else:
            conn = _Imap(a.host, a.port, timeout=self.timeout)
        self._conn = conn
        if not a.tls and "STARTTLS" in conn.capabilities:  # never send the password in clear when TLS is offered
            conn.starttls(context)
        conn.login(a.username, a.password)
        if hasattr(conn, "_cmd_log"):  # imaplib's in-memory command log holds the LOGIN line
            conn._cmd_log.clear()
        typ, data = conn.capability()
        caps = set(conn.capabilities)
        if typ == "OK" and data and data[-1]:
            caps |= set(data[-1].decode("ascii", "replace").upper().split())
        conn.caps = caps
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.logout()  # never CLOSE: it would expunge what someone else flagged \Deleted
        except Exception:  # noqa: BLE001
            try:
                conn.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def _select(self, conn: imaplib.IMAP4) -> tuple[int, int]:
        typ, data = conn.select(mailbox_name(self.folder))
        if typ != "OK":
            raise ImapError(f"SELECT {self.folder!r}: {typ} {data!r}")
        _, uv = conn.response("UIDVALIDITY")
        if not uv or uv[-1] is None:
            raise ImapError(f"SELECT {self.folder!r}: no UIDVALIDITY")
        return int(uv[-1]), int(data[-1] or 0)

    def _search(self, conn: imaplib.IMAP4, last_uid: int) -> list[int]:
        typ, data = conn.uid("SEARCH", "UID", f"{last_uid + 1}:*")
        if typ != "OK":
            raise ImapError(f"UID SEARCH: {typ} {data!r}")
        # "n:*" always matches the newest message, even below n: keep only what is after the cursor
        return sorted({int(u) for d in data if d for u in d.split() if int(u) > last_uid})

    def _fetch(self, conn: imaplib.IMAP4, uid: int) -> bytes | None:
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if typ != "OK":
            raise ImapError(f"UID FETCH {uid}: {typ} {data!r}")
        for item in data:
            if isinstance(item, tuple) and b"BODY[]" in item[0].upper():
                found = _FETCH_UID.search(item[0])
                if found is None or int(found.group(1)) == uid:
                    return bytes(item[1])
        return None

    def _mark_seen(self, conn: imaplib.IMAP4, uid: int) -> None:
        typ, data = conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")
        if typ != "OK":
            raise ImapError(f"UID STORE {uid} +FLAGS (\\Seen): {typ} {data!r}")

    def _idle(self, conn: Any) -> bool:
        """IDLE until the server announces mail, ``idle_refresh`` passes, or the poller stops; True on news."""
        if len(conn.untagged_responses.get("EXISTS", [])) > 1:
            return True  # announced during the catch-up (after SELECT's own EXISTS): an IDLE would not say it again
        tag = conn._new_tag()
        conn.tagged_commands.pop(tag, None)  # we read its completion ourselves
        conn.send(tag + b" IDLE\r\n")
        news = False
        while True:
            line = conn._get_line()
            if line.startswith(b"+"):
                break
            if line.startswith(tag + b" "):
                raise ImapError(f"IDLE refused: {line[len(tag) + 1:]!r}")
            news = news or bool(_EXISTS.match(line))
        deadline = time.monotonic() + self.idle_refresh
        while not news and not self._halt.is_set() and time.monotonic() < deadline:
            if conn.waiting(_SLICE):
                line = conn._get_line()
                if line.upper().startswith(b"* BYE"):
                    raise imaplib.IMAP4.abort(line.decode("utf-8", "replace"))
                news = bool(_EXISTS.match(line))
        conn.send(b"DONE\r\n")
        while True:
            line = conn._get_line()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise ImapError(f"IDLE ended with {line[len(tag) + 1:]!r}")
                return news
            if line.upper().startswith(b"* BYE"):
                raise imaplib.IMAP4.abort(line.decode("utf-8", "replace"))
