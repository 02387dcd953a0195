"""The composition root's web-callback part (docs/subsystems/callback.md): its settings (``CALLBACK_*``), the
``callback`` channel with its Twilio dialler and webhooks, and the public form's routes ``/api/callbacks``.

Routes (public: the widget and the shop page call them; abuse limits in the use case):

* ``POST /api/callbacks`` ``{"number", "when": "now" | ISO 8601, "topic"?, "queue"?}`` -> 201 ``{"callback",
  "cancel_token", "cancel_url", "queue"?}``; 400/409/429 ``{"error", "message", "reason"}``.
* ``DELETE /api/callbacks/{id}`` with ``{"token"}`` (or ``?token=``) -> 200 ``{"callback"}``; 404 when it cannot be
  cancelled (done, being dialled, wrong token).
* ``GET /api/callbacks/slots[?queue=]`` -> ``{"slots": [ISO 8601 UTC...], "step_minutes", "horizon_days", "always_open",
  "queue"}`` (the queue's own hours, ``queues.callback_hours``, else the hub's).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from datetime import datetime, timezone
from datetime import time as dtime
from typing import Any, Callable, Mapping

from aiohttp import web
from sqlmodel import col, select

from contact_center.channels import CALLBACK, ChannelRegistry
from contact_center.domain import callbacks as rules
from contact_center.keys import HUB_KEY
from contact_center.security import client_address
from contact_center.usecases.callbacks import CallbackConfig, CallbackError, hours_for, now_utc
from contact_center.usecases.errors import HubError

log = logging.getLogger("contact_center.callbacks")

CALLBACK_CONFIG_KEY = web.AppKey("callback_config", CallbackConfig)
# "unavailable": callbacks are not set up on this hub (no phone channel): nothing to ask for here, a 404 with
# the reason (a 5xx would say the hub failed; it did not)
_STATUS = {"bad_request": 400, "not_found": 404, "conflict": 409, "rate_limited": 429, "unavailable": 404}


def callback_config(env: Mapping[str, str], region: str, caller_id: str = "", notify_channel: str = "") -> CallbackConfig:
    """``CALLBACK_MAX_ATTEMPTS`` (3), ``CALLBACK_RETRY_SECONDS`` (300), ``CALLBACK_MAX_OPEN`` (2),
    ``CALLBACK_PER_NUMBER_HOUR`` (3), ``CALLBACK_PER_VISITOR_HOUR`` (5), ``CALLBACK_COUNTRIES`` (the shop's region),
    ``CALLBACK_DAYS`` (0-4: Monday to Friday), ``CALLBACK_OPENS`` (09:00), ``CALLBACK_CLOSES`` (17:00),
    ``CALLBACK_UTC_OFFSET_MINUTES`` (0), ``CALLBACK_HOURS=always`` (no hours), ``CALLBACK_QUEUE`` (support),
    ``CALLBACK_ON_ABANDON_SECONDS`` (30; 0: abandoned calls are not called back)."""
    def integer(name: str, default: int, low: int, high: int) -> int:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"{name} must be from {low} to {high}")
        return value

    def clock(name: str, default: dtime) -> dtime:
        raw = env.get(name, "").strip()
        try:
            return dtime.fromisoformat(raw) if raw else default
        except ValueError:
            raise ValueError(f"{name} must be a time like 09:00, not {raw!r}") from None

    hours: rules.OpeningHours | None = None
    if env.get("CALLBACK_HOURS", "").strip().lower() != "always":
        raw_days = env.get("CALLBACK_DAYS", "").strip()
        try:
            days = frozenset(int(d) for d in raw_days.split(",")) if raw_days else frozenset(range(5))
        except ValueError:
            raise ValueError("CALLBACK_DAYS must be weekday numbers (0 = Monday) separated by commas") from None
        if not days <= set(range(7)):
            raise ValueError("CALLBACK_DAYS must be from 0 (Monday) to 6 (Sunday)")
        hours = rules.OpeningHours(days, clock("CALLBACK_OPENS", dtime(9)), clock("CALLBACK_CLOSES", dtime(17)),
                                   integer("CALLBACK_UTC_OFFSET_MINUTES", 0, -14 * 60, 14 * 60))
    countries = frozenset(c.strip().upper() for c in env.get("CALLBACK_COUNTRIES", "").split(",") if c.strip())
    return CallbackConfig(
        policy=rules.RetryPolicy(integer("CALLBACK_MAX_ATTEMPTS", 3, 1, 10), float(integer("CALLBACK_RETRY_SECONDS", 300, 0, 7 * 86400))),
        limits=rules.CallbackLimits(integer("CALLBACK_MAX_OPEN", 2, 1, 100), integer("CALLBACK_PER_NUMBER_HOUR", 3, 1, 1000),
                                    integer("CALLBACK_PER_VISITOR_HOUR", 5, 1, 1000), countries or frozenset({region.upper()})),
        hours=hours, queue=env.get("CALLBACK_QUEUE", "support").strip() or "support", caller_id=caller_id,
        notify_channel=notify_channel, email_channel="email",  # used when the hub has email (wired after the phone)
        confirm_text=env.get("CALLBACK_CONFIRM_TEXT", "1").strip().lower() not in ("0", "false", "no", "off"),
        on_abandon_seconds=float(integer("CALLBACK_ON_ABANDON_SECONDS", rules.DEFAULT_ON_ABANDON_SECONDS, 0, 3600)),
    )


def wire_callback(app: web.Application, env: Mapping[str, str], region: str, channels: ChannelRegistry, config: Any,
                  voice: Any, hub: Callable[[], Any], receipts: Any, db: Callable[[], Any]) -> None:
    """Register the ``callback`` channel with its Twilio dialler and mount the webhooks (called by the Twilio wiring
    once the phone is set up: a callback is dialled with the phone's REST client and numbers)."""
    from crm_store.repositories import callbacks as repo
    from integrations.twilio.callback import CallbackDialler, DiallerSettings, add_callback_routes

    caller_id = config.numbers[0].e164 if config.numbers else ""
    # "we could not reach you" goes by SMS from the same numbers when the hub has SMS
    app[CALLBACK_CONFIG_KEY] = callback_config(env, region, caller_id, "sms" if channels.get("sms") is not None else "")

    async def lookup(callback_id: int, n: int) -> str | None:
        attempt = await repo.attempt(db(), callback_id, n)
        return attempt.call_sid if attempt is not None else None

    dialler = CallbackDialler(config, voice, DiallerSettings.from_env(env), lookup=lookup)
    channels.register(CALLBACK, dialler)
    add_callback_routes(app, config, hub, dialler, receipts=receipts)
    add_cancel_page(app)


# --- the public form's routes ----------------------------------------------------------------------------------

def _refusal(exc: HubError) -> web.Response:
    body: dict[str, Any] = {"error": exc.code, "message": str(exc)}
    if isinstance(exc, CallbackError):
        body["reason"] = exc.reason
    return web.json_response(body, status=_STATUS.get(exc.code, 400))


def _hub(request: web.Request) -> Any:
    hub = request.app.get(HUB_KEY)
    if hub is None or hub.callbacks is None or request.app.get(CALLBACK_CONFIG_KEY) is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "not_found", "message": "callbacks are not available on this hub (it has no phone channel)"}),
                               content_type="application/json")
    return hub


async def create_callback(request: web.Request) -> web.Response:
    hub = _hub(request)
    try:
        body = await request.json()
    except Exception:  # noqa: BLE001 - whatever was sent, it was not JSON
        return web.json_response({"error": "bad_request", "message": "send JSON", "reason": "bad_json"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "bad_request", "message": "send a JSON object", "reason": "bad_json"}, status=400)
    queue = body.get("queue")
    try:
        out = await hub.request_callback(number=body.get("number"), when=body.get("when", "now"), topic=body.get("topic"),
                                         queue=queue if isinstance(queue, str) else None, visitor=f"ip:{client_address(request)}")
    except HubError as exc:
        return _refusal(exc)
    cb = out["callback"]
    return web.json_response(out, status=201)


async def agent_callback(request: web.Request) -> web.Response:
    """``POST /api/customers/{customer_id}/callbacks`` (an agent's session or the service token): "call this customer
    back tomorrow at 10". The number and slot are checked like the form's; no request rates, no confirmation text."""
    from contact_center.api.auth import PRINCIPAL_KEY
    from contact_center.api.errors import path_int
    from contact_center.api.scope import require_customer

    hub = _hub(request)
    customer_id = path_int(request, "customer_id")
    await require_customer(request, customer_id)
    from crm_store.models import Customer

    async with hub.db.session() as s:
        known = await s.get(Customer, customer_id)
    if known is None:
        return web.json_response({"error": "not_found", "message": "no such customer"}, status=404)
    try:
        body = await request.json()
    except Exception:  # noqa: BLE001
        body = None
    if not isinstance(body, dict):
        return web.json_response({"error": "bad_request", "message": "send a JSON object", "reason": "bad_json"}, status=400)
    principal = request.get(PRINCIPAL_KEY)
    queue = body.get("queue")
    try:
        out = await hub.request_callback(number=body.get("number"), when=body.get("when", "now"), topic=body.get("topic"),
                                         queue=queue if isinstance(queue, str) else None, source=rules.SOURCE_AGENT,
                                         customer_id=customer_id,
                                         actor=getattr(principal, "name", "") if getattr(principal, "kind", "") == "agent" else getattr(principal, "actor", ""))
    except HubError as exc:
        return _refusal(exc)
    return web.json_response(out, status=201)


async def call_customer(request: web.Request) -> web.Response:
    """``POST /api/customers/{customer_id}/calls`` ``{"number"?}`` (an agent's session): click-to-call. The hub calls
    the customer now for this agent (``usecases.callbacks.call_customer``); ``number`` must be one of the customer's
    phone numbers (default: their first one, verified first)."""
    from contact_center.api.auth import PRINCIPAL_KEY
    from contact_center.api.errors import path_int
    from contact_center.api.scope import require_customer
    from contact_center.hub.service import AgentRef
    from crm_store.models import Agent, ContactPoint, Customer

    hub = _hub(request)
    customer_id = path_int(request, "customer_id")
    principal = request.get(PRINCIPAL_KEY)
    if principal is None or principal.agent_id is None:
        return web.json_response({"error": "forbidden", "message": "only an agent places a call (from their console)",
                                  "reason": "not_an_agent"}, status=403)
    await require_customer(request, customer_id)
    body: Any = {}
    if request.can_read_body:
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001
            body = None
    if not isinstance(body, dict):
        return web.json_response({"error": "bad_request", "message": "send a JSON object", "reason": "bad_json"}, status=400)
    async with hub.db.session() as s:
        known = await s.get(Customer, customer_id)
        agent = await s.get(Agent, principal.agent_id)
        points = (await s.exec(select(ContactPoint).where(ContactPoint.customer_id == customer_id, ContactPoint.kind == "phone")
                               .order_by(col(ContactPoint.verified).desc(), col(ContactPoint.id)))).all() if known else []
    if known is None:
        return web.json_response({"error": "not_found", "message": "no such customer"}, status=404)
    if agent is None or not agent.active or agent.id is None:
        return web.json_response({"error": "forbidden", "message": "this agent account is not active", "reason": "not_an_agent"}, status=403)
    numbers = [p.value for p in points]
    number = body.get("number")
    if number is None:
        if not numbers:
            return web.json_response({"error": "bad_request", "message": "this customer has no phone number on file",
                                      "reason": "no_number"}, status=400)
        number = numbers[0]
    elif not isinstance(number, str) or len(number) > 40:
        return web.json_response({"error": "bad_request", "message": "number must be one of the customer's phone numbers",
                                  "reason": "bad_number"}, status=400)
    else:
        try:
            e164 = rules.check_number(number, hub.default_region, frozenset())
        except rules.CallbackRefused:
            e164 = ""
        if e164 not in numbers:
            return web.json_response({"error": "bad_request", "message": "that is not one of this customer's phone numbers",
                                      "reason": "not_customers_number"}, status=400)
        number = e164
    me = AgentRef(agent.id, agent.username, agent.display_name, agent.role)
    try:
        out = await hub.call_customer(me, customer_id, number)
    except HubError as exc:
        return _refusal(exc)
    return web.json_response(out, status=201)


async def cancel_callback(request: web.Request) -> web.Response:
    hub = _hub(request)
    raw_id = request.match_info.get("id", "")
    token = request.query.get("token")
    if token is None and request.can_read_body:
        try:
            body = await request.json()
            token = body.get("token") if isinstance(body, dict) else None
        except Exception:  # noqa: BLE001
            token = None
    if not raw_id.isdigit() or len(raw_id) > 18:
        return web.json_response({"error": "bad_request", "message": "no such callback", "reason": "bad_id"}, status=400)
    try:
        return web.json_response(await hub.cancel_callback(int(raw_id), token))
    except HubError as exc:
        return _refusal(exc)


async def callback_slots(request: web.Request) -> web.Response:
    hub = _hub(request)
    config: CallbackConfig = request.app[CALLBACK_CONFIG_KEY]
    now = now_utc(hub)
    asked = request.query.get("queue", "")
    queue = asked if asked in hub.rules else config.queue  # the queue's own hours (queues.callback_hours), else the hub's
    hours = await hours_for(hub, queue)
    found = rules.slots(now, hours, horizon_days=config.horizon_days)
    opening = rules.next_opening(now, hours)  # closed now: "now" is booked at this moment
    return web.json_response({"slots": [s.isoformat() for s in found], "step_minutes": 30, "horizon_days": config.horizon_days,
                              "always_open": hours is None, "queue": queue, "open_now": opening is None,
                              "next_opening": opening.isoformat() if opening is not None else None})


# --- a queue's callback settings (admins and supervisors) -------------------------------------------------------

_STAFF = frozenset({"admin", "supervisor"})


def _forbidden_unless_staff(request: web.Request) -> web.Response | None:
    from contact_center.api.auth import PRINCIPAL_KEY

    principal = request.get(PRINCIPAL_KEY)
    if principal is not None and (principal.kind == "service" or principal.role in _STAFF):
        return None
    return web.json_response({"error": "forbidden", "message": "admins and supervisors only", "reason": "not_staff"}, status=403)


async def _settings_json(request: web.Request, row: Any) -> dict[str, Any]:
    """The queue's callback settings as stored, and what they mean now (whose hours, open now, the next opening)."""
    config = request.app.get(CALLBACK_CONFIG_KEY)
    hub_hours = config.hours if config is not None else rules.OpeningHours()
    own = str(row.callback_hours or "").strip()
    try:
        hours, source = (rules.parse_hours(own), "queue") if own else (hub_hours, "hub")
    except ValueError:  # written by hand in SQL: the hub's hours apply (as when dialling)
        hours, source = hub_hours, "hub"
    hub = request.app.get(HUB_KEY)
    now = now_utc(hub) if hub is not None else datetime.now(timezone.utc)
    opening = rules.next_opening(now, hours)
    return {"queue": row.name, "callback_mode": row.callback_mode or rules.AGENT_FIRST,
            "callback_voicemail": row.callback_voicemail or "", "callback_hours": own,
            "hours": {"source": source, "always_open": hours is None, "effective": rules.format_hours(hours),
                      "open_now": opening is None, "next_opening": opening.isoformat() if opening is not None else None}}


async def _queue_row(session: Any, name: str) -> Any:
    from crm_store.models import Queue

    return (await session.exec(select(Queue).where(Queue.name == name))).first()


def _no_queue(name: str) -> web.Response:
    return web.json_response({"error": "not_found", "message": f"no queue named {name[:80]!r}"}, status=404)


async def get_queue_callback_settings(request: web.Request) -> web.Response:
    """``GET /api/queues/{name}/callback-settings``: the queue's callback mode, voicemail and hours."""
    from contact_center.keys import DB_KEY

    refused = _forbidden_unless_staff(request)
    if refused is not None:
        return refused
    name = request.match_info.get("name", "")
    async with request.app[DB_KEY].session() as s:
        row = await _queue_row(s, name)
    if row is None:
        return _no_queue(name)
    return web.json_response(await _settings_json(request, row))


async def put_queue_callback_settings(request: web.Request) -> web.Response:
    """``PUT /api/queues/{name}/callback-settings`` (a partial update): every field checked first (400 with a reason
    per bad field, nothing written); then one write. Every hub process reads these from SQL at each use (the next
    callback), so no restart and no cache to refresh."""
    from contact_center.keys import DB_KEY

    refused = _forbidden_unless_staff(request)
    if refused is not None:
        return refused
    name = request.match_info.get("name", "")
    try:
        body = await request.json()
    except Exception:  # noqa: BLE001 - whatever was sent, it was not JSON
        body = None
    try:
        clean = rules.check_queue_settings(body)
    except rules.QueueSettingsRefused as exc:
        return web.json_response({"error": "bad_request", "message": str(exc), "reason": "bad_settings",
                                  "fields": [{"field": k, "reason": v} for k, v in exc.reasons.items()]}, status=400)
    async with request.app[DB_KEY].transaction() as s:
        row = await _queue_row(s, name)
        if row is None:
            return _no_queue(name)
        for key, value in clean.items():
            setattr(row, key, value)
        s.add(row)
        await s.flush()
        answer = await _settings_json(request, row)
    from contact_center.api.auth import PRINCIPAL_KEY

    principal = request.get(PRINCIPAL_KEY)
    log.info("queue callback settings changed", extra={"queue": name, "changed": sorted(clean),
                                                       "actor": getattr(principal, "actor", "")})
    return web.json_response(answer)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Your callback</title></head><body style="font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem">
<h1 style="font-size:1.3rem">Your callback</h1>{body}</body></html>"""


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(body=body), status=status, content_type="text/html")


async def cancel_page(request: web.Request) -> web.Response:
    """``GET /callbacks/{id}/cancel?token=``: the link of the confirmation text; one button (POST) cancels."""
    raw_id, token = request.match_info.get("id", ""), request.query.get("token", "")
    if not raw_id.isdigit() or not token or len(token) > 100:
        return _page("<p>This link is not complete.</p>", 400)
    return _page(f'<form method="post" action="/callbacks/{int(raw_id)}/cancel">'
                 f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
                 '<p>Do you want to cancel the call back you asked for?</p>'
                 '<button type="submit" data-testid="cancel-callback">Cancel my callback</button></form>')


async def cancel_from_page(request: web.Request) -> web.Response:
    hub = _hub(request)
    raw_id = request.match_info.get("id", "")
    form = await request.post()
    token = form.get("token")
    if not raw_id.isdigit() or len(raw_id) > 18 or not isinstance(token, str):
        return _page("<p>This link is not complete.</p>", 400)
    try:
        await hub.cancel_callback(int(raw_id), token)
    except HubError as exc:
        return _page(f"<p>{html.escape(str(exc))}</p>", _STATUS.get(exc.code, 400))
    return _page("<p>Your callback is cancelled. You can still chat with us or call us.</p>")


def add_cancel_page(app: web.Application) -> None:
    """The confirmation text's link (outside /api/: a page for a phone's browser)."""
    app.router.add_get("/callbacks/{id}/cancel", cancel_page)
    app.router.add_post("/callbacks/{id}/cancel", cancel_from_page)


def callback_routes() -> tuple[Any, ...]:
    """The public form's routes in routes.py's :class:`Route` form (imported here to avoid an import cycle); public
    (``auth=False``: ``contact_center/api/auth.py`` lets exactly these through without a token)."""
    from contact_center.api.routes import Param, Route

    refused = {400: "refused, with the reason (bad_number, country, premium, past, too_far, closed, bad_time, bad_topic)",
               409: "too many open callbacks for this customer (too_many_open)",
               429: "too many requests for this number or from this address (number_rate, visitor_rate)",
               404: "callbacks are not available on this hub (it has no phone channel)"}
    return (
        Route("POST", "/api/callbacks", create_callback, "Ask to be called back, now or at a slot (the widget's form)", "callbacks",
              body={"type": "object", "required": ["number"], "properties": {
                  "number": {"type": "string"}, "when": {"type": "string", "description": "now, or an ISO 8601 time with its offset"},
                  "topic": {"type": "string"}, "queue": {"type": "string"}}},
              responses={201: "the callback, its cancel token and link, and for 'now' its place and estimated wait", **refused}, auth=False),
        Route("POST", "/api/customers/{customer_id}/callbacks", agent_callback, "Book a callback for a customer (an agent: 'call them back tomorrow at 10')", "callbacks",
              (Param("customer_id", "path", "integer", "customer id", True),),
              body={"type": "object", "required": ["number"], "properties": {
                  "number": {"type": "string"}, "when": {"type": "string"}, "topic": {"type": "string"}, "queue": {"type": "string"}}},
              responses={201: "the callback (and its cancel token)", 403: "an agent's session outside its scope (docs/security.md)", **refused}),
        Route("POST", "/api/customers/{customer_id}/calls", call_customer, "Click-to-call: the hub calls the customer now for the agent", "callbacks",
              (Param("customer_id", "path", "integer", "customer id", True),),
              body={"type": "object", "properties": {"number": {"type": "string", "description": "one of the customer's phone numbers (default: their first)"}}},
              responses={201: "the call is placed: the callback (pinned to the agent) and the conversation now assigned to them",
                         400: "refused, with the reason (no_number, not_customers_number, bad_number, country, premium)",
                         403: "not an agent's session, or a customer outside the agent's scope",
                         404: "no such customer, or no phone on this hub",
                         409: "the agent cannot take a call now (agent_offline, agent_unavailable, agent_busy, no_phone_capacity), or too_many_open"}),
        Route("GET", "/api/queues/{name}/callback-settings", get_queue_callback_settings,
              "A queue's callback settings: mode (agent_first/customer_first), voicemail text, opening hours", "callbacks",
              (Param("name", "path", "string", "queue name", True),),
              responses={200: "the settings, and whose hours apply now (open_now, next_opening)", 403: "admins and supervisors only",
                         404: "no such queue"}),
        Route("PUT", "/api/queues/{name}/callback-settings", put_queue_callback_settings,
              "Change a queue's callback settings (any of the three; the next callback uses them)", "callbacks",
              (Param("name", "path", "string", "queue name", True),),
              body={"type": "object", "additionalProperties": False, "properties": {
                  "callback_mode": {"type": "string", "enum": list(rules.CALLBACK_MODES)},
                  "callback_voicemail": {"type": "string",
                                         "description": "said after the beep on an answering machine; empty: none"},
                  "callback_hours": {"type": "string",
                                     "description": "'' (the hub's CALLBACK_* hours), 'always', or '<days> <opens>-<closes> [<UTC offset minutes>]' like '0-4 09:00-17:00 +60'"}}},
              responses={200: "saved: the settings as now stored", 400: "refused, with a reason per field (fields: [{field, reason}])",
                         403: "admins and supervisors only", 404: "no such queue"}),
        Route("GET", "/api/callbacks/slots", callback_slots, "The bookable callback times (UTC, within the opening hours, 14 days)", "callbacks",
              (Param("queue", description="the queue whose opening hours apply (its own, else the hub's)"),),
              responses={200: "OK", 404: "callbacks are not available on this hub (it has no phone channel)"}, auth=False),
        Route("DELETE", "/api/callbacks/{id}", cancel_callback, "Cancel a callback with its token (not once it is being dialled)", "callbacks",
              (Param("id", "path", "integer", "callback id", True), Param("token", description="the cancel token (or in the JSON body)")),
              responses={200: "cancelled", 404: "nothing to cancel with this token (done, being dialled, cancelled), or no callbacks on this hub"}, auth=False),
    )


async def run_callbacks(hub: Any, interval: float = 1.0) -> None:
    """Every ``interval`` seconds, move due callbacks into their queues (each process; SQL decides who moves which)."""
    while True:
        try:
            await hub.callback_tick()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again: nothing is lost (SQL keeps them)
            log.exception("callback round failed")
        await asyncio.sleep(interval)
