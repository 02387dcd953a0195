"""The hub's SMTP server (aiosmtpd >= 1.4.6) on ``SMTP_LISTEN``: mail for the shop's addresses, kept before 250.

* ``RCPT TO`` an address that is not one of ``EMAIL_ADDRESSES`` (plus-addressing allowed:
  ``support+c12-ab@...`` is ``support@...``) is refused with ``550 5.1.1`` and the reason.
* ``SIZE`` is advertised (``EMAIL_MAX_BYTES``); a larger ``MAIL FROM ... SIZE=`` or message gets ``552``.
* Bare LF smuggling: aiosmtpd >= 1.4.6 ends DATA only at ``<CRLF>.<CRLF>`` (CVE-2024-27305), so a
  ``<LF>.<LF>`` cannot end a message and start a second, smuggled one; on top of that a message with any
  bare LF or bare CR in its lines is refused (``550 5.6.0``), as Postfix's ``smtpd_forbid_bare_newline``
  does, so no relay downstream of us reads a different message than we did.
* The raw bytes (with a ``Return-Path`` line of the envelope sender, as a final delivery MTA adds it)
  are kept through :meth:`EmailIngest.take` for each of our recipients' mailboxes **before** the 250;
  if that fails the answer is ``451`` and the sender tries again later.

The server runs on the hub's own event loop (not aiosmtpd's threaded ``Controller``): ``await start()``,
``await stop()``, and ``port`` once started.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from integrations.email.config import EmailConfig
from integrations.email.ingest import EmailIngest, base_address

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
_BARE_NEWLINE = re.compile(rb"(?<!\r)\n|\r(?!\n)")


class _Protocol(SMTP):
    """aiosmtpd's SMTP with room for longer lines than RFC 5321's 1,000 octets (some mailers send them)."""

    line_length_limit = 16 * 1024


class InboundHandler:
    """aiosmtpd's handler: RCPT against our addresses, DATA kept before the answer."""

    def __init__(self, config: EmailConfig, ingest: EmailIngest) -> None:
        self.config = config
        self.ingest = ingest

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]) -> str:
        if not self.config.ours(address):
            return f"550 5.1.1 <{address[:200]}>: no such mailbox here (this server takes mail for the shop's addresses only)"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        if not isinstance(content, (bytes, bytearray)):
            content = str(envelope.content or "").encode("utf-8", errors="surrogateescape")
        if _BARE_NEWLINE.search(content):
            log.warning("SMTP message with bare LF/CR refused", extra={"peer": str(session.peer)})
            return "550 5.6.0 Message refused: bare LF or CR in the message (end every line with CRLF)"
        sender = re.sub(r"[\r\n<>]", "", envelope.mail_from or "")
        raw = b"Return-Path: <" + sender.encode("utf-8", errors="replace") + b">\r\n" + bytes(content)
        mailboxes: dict[str, str] = {}
        for rcpt in envelope.rcpt_tos:  # one per mailbox; an address with a token is the one remembered
            if "+" in rcpt.partition("@")[0] or base_address(rcpt) not in mailboxes:
                mailboxes[base_address(rcpt)] = rcpt
        try:
            for mailbox, rcpt in mailboxes.items():
                await self.ingest.take(raw, mailbox, "smtp", rcpt=rcpt)
        except Exception:  # noqa: BLE001 - not kept: the sender must try again
            log.exception("SMTP message could not be kept", extra={"peer": str(session.peer)})
            return "451 4.3.0 The message could not be stored; please try again later"
        return "250 2.0.0 OK: message kept"


class SmtpServer:
    """The SMTP listener: ``await start()`` binds ``config.smtp_listen`` (port 0: a free port, see ``port``)."""

    def __init__(self, config: EmailConfig, ingest: EmailIngest, *, hostname: str | None = None,
                 listen: tuple[str, int] | None = None, timeout: float = 300.0) -> None:
        self.config = config
        self.handler = InboundHandler(config, ingest)
        self.listen = listen or config.smtp_listen or ("127.0.0.1", 8025)
        first = next(iter(config.addresses), "hub@localhost")
        self.hostname = hostname or first.rpartition("@")[2] or "localhost"
        self.timeout = timeout
        self._server: asyncio.base_events.Server | None = None

    def _protocol(self) -> SMTP:
        return _Protocol(
            self.handler, data_size_limit=self.config.max_bytes, enable_SMTPUTF8=True, decode_data=False,
            hostname=self.hostname, timeout=self.timeout, loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        host, port = self.listen
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol, host=host, port=port, family=socket.AF_UNSPEC, reuse_address=True,
        )
        log.info("SMTP server listening", extra={"host": host, "port": self.port})

    @property
    def port(self) -> int:
        """The bound port (after ``start``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the SMTP server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            log.warning("SMTP server: connections still open at stop")

    async def __aenter__(self) -> "SmtpServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
