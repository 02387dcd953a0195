"""The composition root's Twilio part: the SMS and WhatsApp channels, their webhooks, and the local stand-in.

* With no ``TWILIO_*`` setting and no stand-in, the hub has no SMS or WhatsApp channel.
* ``TWILIO_STANDIN=1`` (``make run``'s default) mounts the stand-in at ``/standin/twilio`` and the
  ``/dev/phone`` page, and fills in whatever Twilio setting is missing with the stand-in's: the adapter
  then talks to it exactly as to Twilio (only the base URL and the credentials differ).
* A wrong or missing setting stops the start with a message naming it (:class:`TwilioConfigError`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import Any, Callable

from aiohttp import web

from contact_center.callback_wiring import wire_callback
from contact_center.channels import SMS, VOICE, WHATSAPP, ChannelRegistry
from contact_center.hub.inbound_port import HubInbound
from contact_center.hub.service import HubService
from contact_center.ports import MediaStore
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.repositories.receipts import SqlWebhookReceipts
from integrations.standins.twilio import add_dev_phone_routes, create_twilio_standin
from integrations.twilio.config import TwilioConfig, TwilioConfigError
from integrations.twilio.messaging import MessagingAdapter, add_messaging_routes
from integrations.twilio.rest import TwilioRestClient
from integrations.twilio.voice import VoiceAdapter, VoiceSettings, add_voice_routes
from integrations.twilio.voice_rest import VoiceRestClient

log = logging.getLogger("contact_center.twilio")

STANDIN_PATH = "/standin/twilio"
STANDIN_ACCOUNT_SID = "AC" + "0" * 31 + "1"  # the stand-in's demo account (no real account has it)
STANDIN_NUMBERS = "+15005550006=support,whatsapp:+14155238886=support"
STANDIN_APP_KEY = web.AppKey("twilio_standin", web.Application)  # the mounted stand-in (tests drive it)

__all__ = ["TwilioConfigError", "twilio_env", "wire_twilio"]


def twilio_env(settings: Settings) -> dict[str, str]:
    """The environment the Twilio configuration is read from; the stand-in's defaults where it runs."""
    env = {k: v for k, v in settings.extra.items() if v.strip()}
    base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    env["DEFAULT_PHONE_REGION"] = settings.default_phone_region
    env["MEDIA_MAX_BYTES"] = str(settings.media_max_bytes)
    if settings.public_base_url:
        env["PUBLIC_BASE_URL"] = settings.public_base_url
    if settings.twilio_standin:
        env.setdefault("PUBLIC_BASE_URL", base)
        env.setdefault("TWILIO_ACCOUNT_SID", STANDIN_ACCOUNT_SID)
        env.setdefault("TWILIO_AUTH_TOKEN", secrets.token_hex(16))
        env.setdefault("TWILIO_NUMBERS", STANDIN_NUMBERS)
        env.setdefault("TWILIO_API_BASE_URL", env["PUBLIC_BASE_URL"] + STANDIN_PATH)
    return env


def wire_twilio(
    app: web.Application, settings: Settings, channels: ChannelRegistry, *, db: Callable[[], Database],
    hub: Callable[[], HubService], media: MediaStore,
) -> TwilioConfig | None:
    """Register SMS and WhatsApp with their adapter, mount the webhooks (and the stand-in when asked)."""
    config = TwilioConfig.from_env(twilio_env(settings))
    if config is None:
        return None
    client = TwilioRestClient(config)
    adapter = MessagingAdapter(config, client)
    served = {n.channel for n in config.numbers}
    for spec in (SMS, WHATSAPP):
        if spec.name in served:
            channels.register(replace(spec, bot_first=spec.name in settings.bot_channels), adapter)

    class _LazyReceipts:
        async def first_time(self, provider: str, kind: str, key: str, payload: dict[str, Any]) -> bool:
            return await SqlWebhookReceipts(db()).first_time(provider, kind, key, payload)

        async def forget(self, provider: str, kind: str, key: str) -> None:
            await SqlWebhookReceipts(db()).forget(provider, kind, key)

    add_messaging_routes(app, config=config, inbound=HubInbound(hub), media=media, receipts=_LazyReceipts(), client=client)

    # the phone: the same numbers (not WhatsApp's) take calls (docs/subsystems/phone.md)
    voice_client: VoiceRestClient | None = None
    if "sms" in served:
        try:
            voice_settings = VoiceSettings.from_env(twilio_env(settings))
        except ValueError as exc:
            raise TwilioConfigError(str(exc)) from None
        voice_client = VoiceRestClient(config)
        voice = VoiceAdapter(config, voice_client, voice_settings)
        channels.register(replace(VOICE, bot_first=VOICE.name in settings.bot_channels), voice)
        add_voice_routes(app, config, hub, voice, receipts=_LazyReceipts(), db=db)
        try:  # web callback: dialled with the phone's client and numbers (docs/subsystems/callback.md)
            wire_callback(app, twilio_env(settings), settings.default_phone_region, channels, config, voice, hub,
                          _LazyReceipts(), db)
        except ValueError as exc:
            raise TwilioConfigError(str(exc)) from None

    async def _close(_: web.Application) -> None:
        await client.close()
        if voice_client is not None:
            await voice_client.close()

    app.on_cleanup.append(_close)
    if settings.twilio_standin:
        standin = create_twilio_standin(
            account_sid=config.account_sid, auth_token=config.auth_token, webhook_base_url=config.public_base_url,
            numbers=[n.address for n in config.numbers], dev_page=False, api_base_url=config.api_base_url,
        )
        app.add_subapp(STANDIN_PATH, standin)
        app[STANDIN_APP_KEY] = standin
        add_dev_phone_routes(app, standin)
        log.info("Twilio stand-in on: text the shop at %s/dev/phone", config.public_base_url)
    log.info("SMS/WhatsApp%s through %s for %s", " and calls" if voice_client else "", config.api_base_url,
             ", ".join(n.address for n in config.numbers))
    return config

