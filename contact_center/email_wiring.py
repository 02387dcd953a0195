"""The composition root's email part: the email channel with its adapter, the hub's SMTP server, the IMAP
pollers, and ``/dev/mail`` in the embedded mode (``docs/subsystems/email.md``).

* No ``EMAIL_*`` / ``SMTP_*`` / ``IMAP_URL`` setting: no email channel.
* ``EMAIL_ADDRESSES`` and ``SMTP_LISTEN`` (``make run``'s default): mail for the shop's addresses is taken on
  that port; with no ``SMTP_URL``, replies go to a local outbox, and ``/dev/mail`` reads it and writes to
  the hub as a customer would.
* A wrong setting stops the start with a message naming it (:class:`EmailConfigError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator, Callable

from aiohttp import web

from contact_center.channels import EMAIL, ChannelRegistry
from contact_center.hub.inbound_port import HubInbound
from contact_center.hub.service import HubService
from contact_center.ports import MediaStore
from contact_center.settings import Settings
from crm_store.db import Database
from integrations.email.config import EmailConfig, EmailConfigError, load_email_config
from integrations.email.devmail import add_devmail_routes
from integrations.email.imap import ImapPoller
from integrations.email.ingest import EmailIngest
from integrations.email.outbound import EmailAdapter
from integrations.email.smtp_server import SmtpServer

log = logging.getLogger("contact_center.email")

EMAIL_KEY = web.AppKey("email_ingest", EmailIngest)
SMTP_KEY = web.AppKey("email_smtp", SmtpServer)

__all__ = ["EMAIL_KEY", "EmailConfigError", "SMTP_KEY", "wire_email", "token_secret"]


def token_secret(settings: Settings) -> bytes:
    """The key of the thread tokens in addresses and subjects: ``EMAIL_TOKEN_SECRET``, else derived from the
    session secret (set ``SESSION_SECRET`` or ``EMAIL_TOKEN_SECRET`` so tokens outlive a restart)."""
    given = (settings.extra.get("EMAIL_TOKEN_SECRET") or "").strip()
    base = given or settings.session_secret
    return hashlib.sha256(b"email-thread-token\n" + base.encode()).digest()


def wire_email(
    app: web.Application, settings: Settings, channels: ChannelRegistry, *, db: Callable[[], Database],
    hub: Callable[[], HubService], media: MediaStore,
) -> EmailConfig | None:
    """Register the email channel with its adapter; start the SMTP server, the ingest and the pollers with the hub."""
    var = Path(settings.media_dir).parent if settings.media_dir else Path("var")
    config = load_email_config(settings.extra, outbox_dir=str(var / "outbox"))
    if config is None:
        return None
    secret = token_secret(settings)
    base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    shop_name = (settings.extra.get("EMAIL_SHOP_NAME") or "").strip() or "Customer service"
    adapter = EmailAdapter(config, db, media, secret, base_url, shop_name=shop_name)
    # the bot never chats by email; with EMAIL_BOT_CONFIDENCE it answers a new thread alone when its NLU is
    # that sure of an order-tracking question (docs/subsystems/email.md "The bot and email")
    sure_raw = (settings.extra.get("EMAIL_BOT_CONFIDENCE") or "").strip()
    try:
        sure = float(sure_raw) if sure_raw else None
    except ValueError:
        raise EmailConfigError("EMAIL_BOT_CONFIDENCE: give a number between 0.5 and 1 (0.9), or leave it empty") from None
    if sure is not None and not 0.5 <= sure <= 1.0:
        raise EmailConfigError("EMAIL_BOT_CONFIDENCE: give a number between 0.5 and 1 (0.9), or leave it empty")
    channels.register(replace(EMAIL, bot_first=False, bot_when_sure=sure), adapter)
    authserv = (settings.extra.get("EMAIL_AUTHSERV_ID") or "").strip() or None
    if config.smtp_listen is not None and config.relay is None:
        add_devmail_routes(app, config, config.smtp_listen[1], smtp_host=config.smtp_listen[0])

    async def run(app_: web.Application) -> AsyncIterator[None]:
        ingest = EmailIngest(db, HubInbound(hub), media, config, secret, adapter.acknowledge, authserv_id=authserv)
        app_[EMAIL_KEY] = ingest
        ingest.start()
        smtp: SmtpServer | None = None
        if config.smtp_listen is not None:
            smtp = SmtpServer(config, ingest)
            await smtp.start()
            app_[SMTP_KEY] = smtp
            log.info("email: SMTP for %s on %s:%s", ", ".join(config.addresses), *config.smtp_listen)
        pollers = [ImapPoller(account, db, ingest.take, ingest.process) for account in config.imap]
        for account, poller in zip(config.imap, pollers):
            await poller.start()
            log.info("email: polling %s/%s for %s", account.account, account.folder, account.address)
        yield
        for poller in pollers:
            with contextlib.suppress(Exception):
                await poller.stop()
        if smtp is not None:
            await smtp.stop()
        await ingest.stop()

    app.cleanup_ctx.append(run)
    return config

