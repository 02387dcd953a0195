"""Browser-facing HTTP routes: agent login/logout, the console and demo shop pages, static files."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from aiohttp import web

from sqlmodel import col, select

from contact_center.api import serialize as ser
from contact_center.api.errors import error_response, path_int, read_json
from contact_center.console_email import add_console_email_routes
from contact_center.console_search import add_console_search_routes
from contact_center.console_voice import add_console_voice_routes
from contact_center.keys import DB_KEY, HUB_KEY, METRICS_KEY, SESSIONS_KEY, SETTINGS_KEY, SIO_KEY
from contact_center.login_throttle import THROTTLE_KEY, Verdict
from contact_center.realtime import close_ended_sessions
from contact_center.security import client_address, is_https
from contact_center.sessions import COOKIE_NAME, IDLE_TIMEOUT_SECONDS, AgentSession
from crm_store.models import Conversation
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import products as products_repo
from crm_store.services import link_given_contacts

log = logging.getLogger("contact_center.web")

STATIC = Path(__file__).resolve().parent.parent / "agent_console" / "static"

CANNED = [
    {"shortcut": "hello", "text": "Hello! Thanks for contacting us. How can I help you today?"},
    {"shortcut": "check", "text": "Let me check that for you, one moment please."},
    {"shortcut": "order", "text": "Could you give me your order number, please?"},
    {"shortcut": "delivery", "text": "Orders usually arrive within 2 to 5 business days."},
    {"shortcut": "returns", "text": "You can return any item within 30 days of delivery for a full refund."},
    {"shortcut": "bye", "text": "Thanks for chatting with us. Have a great day!"},
]


async def current_agent(request: web.Request) -> AgentSession | None:
    """The agent session in the request's cookie, if valid, not idle too long and not logged out."""
    return await request.app[SESSIONS_KEY].load(request.cookies.get(COOKIE_NAME), time.time())


def _set_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, and Secure whenever the hub is served over https
    (``PUBLIC_BASE_URL`` is https, TLS here, or ``X-Forwarded-Proto: https`` from a trusted proxy)."""
    response.set_cookie(
        COOKIE_NAME, value, httponly=True, samesite="Strict", secure=is_https(request), path="/", max_age=IDLE_TIMEOUT_SECONDS
    )


def _refused_login(request: web.Request, reason: str, verdict: Verdict, username: str, address: str) -> web.Response:
    """429 for a throttled or locked login, with Retry-After when the wait has an end."""
    request.app[METRICS_KEY].login_failures.labels(reason).inc()
    scope = "account" if (verdict.key or "").startswith("account:") else "address"
    log.warning("login refused (%s, %s): user %r from %s", reason, scope, username[:80], address)
    wait = None if verdict.until is None else max(1, math.ceil(verdict.until - request.app[THROTTLE_KEY].clock()))
    if reason == "locked":
        message = (f"too many failed logins: this {scope} is locked"
                   + (f" for {wait} s" if wait is not None else "") + "; an administrator can unlock it")
        resp = error_response(429, "login_locked", message, scope=scope, retry_after=wait)
    else:
        resp = error_response(429, "login_throttled", f"too many failed logins: try again in {wait} s", scope=scope, retry_after=wait)
    if wait is not None:
        resp.headers["Retry-After"] = str(wait)
    return resp


async def login(request: web.Request) -> web.Response:
    """POST /auth/login {username, password} as JSON: sets the session cookie.

    Cross-site requests were refused before this (``same_origin_middleware``: 403 ``cross_origin``). Anything but
    JSON is 415 (a form or ``text/plain`` is what another site could make a browser send). Attempts are throttled
    per account and per client address (``login_throttle``); an unknown user costs the same password check
    (a dummy hash) and gets the same answer as a wrong password.
    """
    if request.content_type != "application/json":
        return error_response(415, "unsupported_media_type", "send the login as JSON (Content-Type: application/json)")
    body = await read_json(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return error_response(400, "bad_request", "username and password are required")
    address = client_address(request)
    throttle = request.app[THROTTLE_KEY]
    verdict = await throttle.attempt(username, address)
    if verdict.status != "go":
        return _refused_login(request, verdict.status if verdict.status == "locked" else "throttled", verdict, username, address)
    async with request.app[DB_KEY].transaction() as s:
        agent = await agents_repo.authenticate(s, username[:80], password[:200])
    if agent is None or agent.id is None:
        metrics = request.app[METRICS_KEY]
        metrics.login_failures.labels("credentials").inc()
        locked = throttle.locks_after(verdict)
        for scope in locked:
            metrics.login_lockouts.labels(scope).inc()
        log.warning("login failed: user %r from %s (%d failures in a row for the account, %d for the address)%s",
                    username[:80], address, *verdict.counts, f"; locked: {', '.join(locked)}" if locked else "")
        return error_response(401, "unauthorized", "wrong username or password")
    await throttle.succeeded(username, address)
    session = AgentSession.start(agent.id, agent.username, agent.display_name, agent.role, time.time())
    resp = web.json_response({"agent": {"id": agent.id, "username": agent.username, "display_name": agent.display_name, "role": agent.role}})
    _set_cookie(request, resp, request.app[SESSIONS_KEY].dump(session))
    return resp


async def _admin(request: web.Request) -> AgentSession | web.Response:
    """The admin's session, or the 401/403 to answer."""
    session = await current_agent(request)
    if session is None:
        return error_response(401, "unauthorized", "not logged in")
    if session.role != "admin":
        return error_response(403, "forbidden", "administrators only")
    return session


async def lockouts(request: web.Request) -> web.Response:
    """GET /auth/lockouts (admins): the accounts and addresses locked after failed logins, and until when."""
    who = await _admin(request)
    if isinstance(who, web.Response):
        return who
    items = []
    for key, until in await request.app[THROTTLE_KEY].lockouts():
        scope, _, value = key.partition(":")
        items.append({"scope": scope, "value": value, "until": None if until is None else int(until)})
    return web.json_response({"lockouts": items})


async def clear_lockout(request: web.Request) -> web.Response:
    """POST /auth/lockouts/clear {username?, address?} (admins): lift a lockout and forget the failures."""
    who = await _admin(request)
    if isinstance(who, web.Response):
        return who
    body = await read_json(request)
    username, address = body.get("username"), body.get("address")
    if not (isinstance(username, str) and username.strip()) and not (isinstance(address, str) and address.strip()):
        return error_response(400, "bad_request", "give a username and/or an address")
    cleared = await request.app[THROTTLE_KEY].unlock(
        username=username if isinstance(username, str) and username.strip() else None,
        address=address if isinstance(address, str) and address.strip() else None,
    )
    log.warning("login lockout lifted by %s: %s", who.username, ", ".join(cleared) or "nothing was recorded")
    return web.json_response({"cleared": cleared})


async def logout(request: web.Request) -> web.Response:
    """POST /auth/logout: ends the session on the server (a copy of the cookie is refused too), clears the cookie."""
    session = await current_agent(request)
    if session is not None:
        gate = request.app[SESSIONS_KEY]
        await gate.end(session)
        # this process's console sockets of the session close now, the other processes' at their next sweep
        await close_ended_sessions(request.app[SIO_KEY], gate, time.time())
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE_NAME, path="/")
    return resp


async def me(request: web.Request) -> web.Response:
    """GET /auth/me: the logged-in agent (refreshes the idle timer)."""
    session = await current_agent(request)
    if session is None:
        return error_response(401, "unauthorized", "not logged in")
    resp = web.json_response({"agent": {"id": session.agent_id, "username": session.username, "display_name": session.display_name, "role": session.role}})
    _set_cookie(request, resp, request.app[SESSIONS_KEY].dump(session.seen(time.time())))
    return resp


async def shop_products(request: web.Request) -> web.Response:
    """GET /shop/products.json: the public catalogue for the demo shop page."""
    async with request.app[DB_KEY].session() as s:
        items = await products_repo.list_products(s)
    from crm_store.domain.money import format_money

    return web.json_response(
        {"products": [
            {"sku": p.sku, "name": p.name, "category": p.category, "price": format_money(p.price_minor, p.currency), "in_stock": p.stock > 0}
            for p in items
        ]}
    )


async def canned(request: web.Request) -> web.Response:
    """GET /console/canned.json: canned responses for agents."""
    if await current_agent(request) is None:
        return error_response(401, "unauthorized", "not logged in")
    return web.json_response(CANNED)


async def directory(request: web.Request) -> web.Response:
    """GET /console/directory.json: queues and agents (with presence) to transfer to."""
    me_ = await current_agent(request)
    if me_ is None:
        return error_response(401, "unauthorized", "not logged in")
    hub = request.app[HUB_KEY]
    presence = {p.agent_id: p.status for p in await hub.store.all_presence()}
    async with request.app[DB_KEY].session() as s:
        agents = await agents_repo.list_agents(s)
    return web.json_response(
        {
            "queues": hub.queue_names(),
            "agents": [
                {"id": a.id, "display_name": a.display_name, "role": a.role, "status": presence.get(a.id or 0, "offline")}
                for a in agents
                if a.active and a.id != me_.agent_id
            ],
        }
    )


async def given_contact(request: web.Request) -> web.Response:
    """POST /console/customers/{customer_id}/contact-points {kind: phone|email, address}: what the customer told the agent.

    Linked as an *unverified* contact point (a later SMS, call or email from it finds this customer),
    and noted on their timeline. An agent may do it for a customer of a conversation assigned to them
    and not closed; supervisors and admins for anyone. An address of another customer is a 409 and
    stays theirs (joining two customers is an explicit merge).
    """
    session = await current_agent(request)
    if session is None:
        return error_response(401, "unauthorized", "not logged in")
    customer_id = path_int(request, "customer_id")
    body = await read_json(request)
    kind, address = body.get("kind"), body.get("address")
    if kind not in ("phone", "email"):
        return error_response(422, "validation_failed", "kind must be phone or email", fields=[{"field": "kind", "reason": "must be phone or email"}])
    if not isinstance(address, str) or not address.strip() or len(address) > 300:
        return error_response(422, "validation_failed", "give the address (at most 300 characters)", fields=[{"field": "address", "reason": "required"}])
    async with request.app[DB_KEY].transaction() as s:
        customer = await customers_repo.get_customer(s, customer_id)
        conv = (
            await s.exec(
                select(Conversation)
                .where(Conversation.customer_id == customer.id, Conversation.assigned_agent_id == session.agent_id,
                       Conversation.status != "closed")
                .order_by(col(Conversation.id).desc())
            )
        ).first()
        if conv is None and session.role not in ("supervisor", "admin"):
            return error_response(403, "forbidden", "only for the customer of a conversation assigned to you")
        assert customer.id is not None
        (given,) = await link_given_contacts(
            s,
            customer.id,
            phone=address if kind == "phone" else None,
            email=address if kind == "email" else None,
            source=f"to {session.display_name or session.username}",
            channel=conv.channel if conv is not None else "backoffice",
            payload={"actor": f"agent:{session.username}"},
            agent_id=session.agent_id,
            conversation_id=conv.id if conv is not None else None,
            default_region=request.app[SETTINGS_KEY].default_phone_region,
        )
    if given.point is None:
        noun = "phone number" if kind == "phone" else "email address"
        return error_response(409, "conflict", f"{given.value} is the {noun} of another customer (#{given.taken_by}); "
                              "it was not linked (a supervisor can merge the two customers)", owner_id=given.taken_by)
    return web.json_response({"contact_point": ser.contact_point(given.point), "created": given.created},
                             status=201 if given.created else 200)


def _page(name: str):  # type: ignore[no-untyped-def]
    """A handler serving one static HTML page."""
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return handler


async def favicon(request: web.Request) -> web.FileResponse:
    """GET /favicon.ico: the brand mark (every page's browser asks for it)."""
    return web.FileResponse(STATIC / "favicon.ico", headers={"Cache-Control": "public, max-age=86400", "Content-Type": "image/x-icon"})


def add_web_routes(app: web.Application) -> None:
    """Mount the browser-facing routes."""
    app.router.add_post("/auth/login", login)
    app.router.add_post("/auth/logout", logout)
    app.router.add_get("/auth/me", me)
    app.router.add_get("/auth/lockouts", lockouts)
    app.router.add_post("/auth/lockouts/clear", clear_lockout)
    app.router.add_get("/shop/products.json", shop_products)
    app.router.add_get("/console/canned.json", canned)
    app.router.add_get("/console/directory.json", directory)
    app.router.add_post("/console/customers/{customer_id}/contact-points", given_contact)
    add_console_email_routes(app, agent_of=current_agent)
    add_console_voice_routes(app, agent_of=current_agent)
    add_console_search_routes(app, agent_of=current_agent)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/console", _page("console.html"))
    app.router.add_get("/shop", _page("shop.html"))
    app.router.add_get("/", _page("shop.html"))
    if STATIC.is_dir():
        app.router.add_static("/static/", STATIC, show_index=False)
