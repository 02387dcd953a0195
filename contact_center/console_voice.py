"""The console's softphone: which one to use, and Twilio's access token. ``GET /console/voice/token``.

The agent's leg of a call rings on a softphone in the console (``docs/subsystems/phone.md``). The hub tells
the console which one, by the settings it runs with:

* the local Twilio stand-in is on (``TWILIO_STANDIN``, ``settings.twilio_standin``):
  ``{"mode": "standin", "identity": "agent_<id>", "base": "/standin/twilio"}``. The console drives the
  stand-in's ``client:agent_<id>`` legs through its dev API (no audio). The stand-in wins over real Twilio
  settings: while it runs, the voice adapter's REST calls go to it, so the agent's leg rings there.
* real Twilio Voice settings (``TWILIO_ACCOUNT_SID``, ``TWILIO_API_KEY_SID``, ``TWILIO_API_KEY_SECRET``,
  ``TWILIO_TWIML_APP_SID``; the app settings' ``extra`` first, then ``os.environ``):
  ``{"mode": "twilio", "token", "identity", "expires_at", "ttl"}``. The token is a Twilio access token
  (HS256, signed with the API key's secret) with a ``VoiceGrant`` (incoming calls allowed, outgoing calls
  through the TwiML app) for the identity ``agent_<id>``, valid ``TWILIO_VOICE_TOKEN_TTL`` seconds (3600,
  the most Twilio's Voice SDK is given here; at least 300). The console asks again before it expires.
* neither: ``{"mode": "none", "reason"}``: the console says calls cannot be taken on this browser. Some but not
  all of the four Twilio settings is a mistake: the reason names what is missing (and the log says it once).
* whatever the hub has, an agent who takes calls on **their own phone** (``agents.phone_number``, set with
  ``PUT /console/voice/phone`` ``{"phone_number": "+1 555 010 0199"}``, cleared with ``null``):
  ``{"mode": "phone", "identity", "number"}``. The voice adapter rings that number for their leg of a call (and of
  a consultation or supervision); they answer it there. The number is checked with ``phonenumbers`` in the hub's
  ``DEFAULT_PHONE_REGION`` and kept in E.164; a bad one is a 422 that says why.

An agent session is required (401 without one). The answer is never cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from contact_center.api.errors import error_response, read_json
from contact_center.keys import DB_KEY, SETTINGS_KEY
from crm_store.domain.identity import InvalidAddress, normalize_phone
from crm_store.models import Agent

log = logging.getLogger("contact_center.console_voice")

STANDIN_BASE = "/standin/twilio"  # where contact_center.twilio_wiring mounts the stand-in
MAX_TTL = 3600
MIN_TTL = 300
IDENTITY = re.compile(r"[A-Za-z0-9_]{1,121}")  # Twilio client identities (fullmatch)
VOICE_VARIABLES = ("TWILIO_ACCOUNT_SID", "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "TWILIO_TWIML_APP_SID")
_SIDS = {"TWILIO_ACCOUNT_SID": re.compile(r"AC[0-9a-fA-F]{32}"), "TWILIO_API_KEY_SID": re.compile(r"SK[0-9a-fA-F]{32}"),
         "TWILIO_TWIML_APP_SID": re.compile(r"AP[0-9a-fA-F]{32}")}


@dataclass(frozen=True)
class VoiceSettings:
    """Real Twilio Voice credentials for access tokens; the secret is never shown by ``repr``."""

    account_sid: str
    api_key_sid: str
    api_key_secret: str = field(repr=False)
    twiml_app_sid: str
    ttl: int = MAX_TTL


def _setting(extra: Mapping[str, str], environ: Mapping[str, str], name: str) -> str:
    return (extra.get(name) or environ.get(name) or "").strip()


def voice_settings(extra: Mapping[str, str], environ: Mapping[str, str] | None = None) -> tuple[VoiceSettings | None, str]:
    """The Twilio Voice settings (the app's ``extra`` first, then the environment), or None and why not in words."""
    environ = os.environ if environ is None else environ
    values = {name: _setting(extra, environ, name) for name in VOICE_VARIABLES}
    given = [n for n, v in values.items() if v]
    if not given:
        return None, "the hub has no Twilio Voice settings and no stand-in"
    missing = [n for n, v in values.items() if not v]
    if missing:
        return None, f"the hub's Twilio Voice settings are incomplete ({', '.join(missing)} not set)"
    wrong = [n for n, pattern in _SIDS.items() if not pattern.fullmatch(values[n])]
    if wrong:
        return None, f"the hub's Twilio Voice settings are wrong ({', '.join(wrong)} is not a Twilio SID)"
    raw_ttl = _setting(extra, environ, "TWILIO_VOICE_TOKEN_TTL")
    try:
        ttl = int(raw_ttl) if raw_ttl else MAX_TTL
    except ValueError:
        ttl = MAX_TTL
    return VoiceSettings(values["TWILIO_ACCOUNT_SID"], values["TWILIO_API_KEY_SID"], values["TWILIO_API_KEY_SECRET"],
                         values["TWILIO_TWIML_APP_SID"], max(MIN_TTL, min(MAX_TTL, ttl))), ""


def identity_of(agent_id: int) -> str:
    """The softphone's identity of an agent: ``agent_<id>`` (the voice adapter dials ``client:agent_<id>``)."""
    identity = f"agent_{int(agent_id)}"
    if not IDENTITY.fullmatch(identity):  # pragma: no cover - an int always matches
        raise ValueError(f"not a Twilio client identity: {identity!r}")
    return identity


def mint_token(voice: VoiceSettings, identity: str, now: float | None = None) -> tuple[str, int]:
    """A Twilio access token with a VoiceGrant for ``identity``, and when it expires (Unix seconds)."""
    from twilio.jwt.access_token import AccessToken  # type: ignore[import-untyped,unused-ignore]
    from twilio.jwt.access_token.grants import VoiceGrant  # type: ignore[import-untyped,unused-ignore]

    if not IDENTITY.fullmatch(identity):
        raise ValueError(f"not a Twilio client identity: {identity!r}")
    issued = int(time.time() if now is None else now)
    expires_at = issued + voice.ttl
    token = AccessToken(voice.account_sid, voice.api_key_sid, voice.api_key_secret, identity=identity,
                        nbf=issued, valid_until=expires_at)
    token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=voice.twiml_app_sid))
    jwt = token.to_jwt()
    return jwt if isinstance(jwt, str) else jwt.decode(), expires_at


def add_console_voice_routes(app: web.Application, *, agent_of: Callable[[web.Request], Awaitable[Any]]) -> None:
    """Mount the route; ``agent_of(request)`` awaits the request's agent session or None (``web.current_agent``)."""
    warned: set[str] = set()

    async def own_number(request: web.Request, agent_id: int) -> str:
        async with request.app[DB_KEY].session() as s:
            agent = await s.get(Agent, agent_id)
        return str(agent.phone_number or "") if agent is not None else ""

    async def voice_token(request: web.Request) -> web.Response:
        session = await agent_of(request)
        if session is None:
            return error_response(401, "unauthorized", "log in first")
        settings = request.app[SETTINGS_KEY]
        identity = identity_of(session.agent_id)
        headers = {"Cache-Control": "no-store"}
        number = await own_number(request, session.agent_id)
        if number:
            return web.json_response({"mode": "phone", "identity": identity, "number": number}, headers=headers)
        if settings.twilio_standin:
            return web.json_response({"mode": "standin", "identity": identity, "base": STANDIN_BASE}, headers=headers)
        voice, reason = voice_settings(settings.extra)
        if voice is None:
            if "incomplete" in reason or "wrong" in reason:
                if reason not in warned:
                    warned.add(reason)
                    log.warning("no softphone for the console: %s", reason)
            return web.json_response({"mode": "none", "reason": reason}, headers=headers)
        token, expires_at = mint_token(voice, identity)
        return web.json_response({"mode": "twilio", "token": token, "identity": identity, "expires_at": expires_at,
                                  "ttl": voice.ttl}, headers=headers)

    async def set_phone(request: web.Request) -> web.Response:
        """``PUT /console/voice/phone``: the agent takes calls on their own number (``null``: the softphone again)."""
        session = await agent_of(request)
        if session is None:
            return error_response(401, "unauthorized", "log in first")
        body = await read_json(request)
        if not isinstance(body, dict) or "phone_number" not in body:
            return error_response(400, "bad_request", "send {\"phone_number\": \"+1 555 010 0199\"} or {\"phone_number\": null}")
        raw = body["phone_number"]
        number: str | None = None
        if raw is not None and raw != "":
            if not isinstance(raw, str):
                return error_response(422, "invalid", "phone_number must be text or null")
            try:
                number = normalize_phone(raw, request.app[SETTINGS_KEY].default_phone_region)
            except InvalidAddress as exc:
                return error_response(422, "invalid", f"phone_number: {exc.reason}")
        async with request.app[DB_KEY].transaction() as s:
            agent = await s.get(Agent, session.agent_id)
            if agent is None:
                return error_response(404, "not_found", "no such agent")
            agent.phone_number = number
            s.add(agent)
        log.info("agent's call device changed", extra={"agent_id": session.agent_id, "own_phone": number is not None})
        return web.json_response({"phone_number": number}, headers={"Cache-Control": "no-store"})

    app.router.add_get("/console/voice/token", voice_token)
    app.router.add_put("/console/voice/phone", set_phone)
