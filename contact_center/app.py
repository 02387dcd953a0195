"""The composition root: ``create_app(settings)`` wires the adapters to the ports and mounts the routes.

This is the only module that chooses concrete adapters (SQLite or PostgreSQL today; in-process or
Redis state when the hub arrives), from :class:`~contact_center.settings.Settings`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Collection

from aiohttp import web

from contact_center.api.auth import service_token_middleware
from contact_center.api.errors import error_middleware
from contact_center.api.openapi import openapi_handler
from contact_center.api.routes import ROUTES
from contact_center.api.evaluation_queue import evaluation_jobs
from contact_center.callback_wiring import CALLBACK_CONFIG_KEY, run_callbacks
from contact_center.channels import WEB_CHAT, ChannelRegistry
from contact_center.domain.cobrowse import CONSENT_SECONDS, RECONNECT_GRACE_SECONDS
from contact_center.cobrowse import COBROWSE_KEY, CobrowseRelay, _acked as cobrowse_acked, add_routes as add_cobrowse_routes, install as install_cobrowse
from contact_center.documents import DOCUMENTS_KEY, DocumentPushes, add_routes as add_document_routes, install as install_documents
from contact_center.email_wiring import wire_email
from contact_center.hub.service import HubService
from contact_center.identity import IDENTITY_KEY, add_identity_routes, verifier_for
from contact_center.keys import CLOCK_KEY, DB_KEY, HUB_KEY, METRICS_KEY, REDIS_PING_KEY, SESSIONS_KEY, SETTINGS_KEY, SIO_KEY
from contact_center.ports import CobrowseStore, StateStore
from contact_center.realtime import AgentNamespace, CustomerNamespace, SioEmitter, create_sio, sweep_ended_sessions
from contact_center.login_throttle import throttle_context
from contact_center.security import SECURITY_KEY, SecurityConfig, same_origin_middleware, security_headers_middleware
from contact_center.sessions import SessionGate, SessionSigner
from contact_center.media_routes import MEDIA_KEY, add_media_routes, media_signer
from contact_center.web import add_web_routes, current_agent
from contact_center.twilio_wiring import wire_twilio
from integrations.media.files import FileMediaStore
from contact_center.metrics import Metrics, metrics_handler, metrics_middleware
from contact_center.settings import Settings
from contact_center.supervisor import register as register_supervisor
from contact_center.tasks import stop_tasks
from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from crm_store.message_log import open_message_log
from crm_store.point_reads import PointReads
from crm_store.migrate import upgrade_async

log = logging.getLogger("contact_center.app")

CHANNELS_KEY = web.AppKey("channels", ChannelRegistry)


def _utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(timezone.utc)



def _seconds(extra: Any, name: str, default: float) -> float:
    """A positive number of seconds from the environment (``COBROWSE_*``: shorter timers for tests), else ``default``."""
    try:
        value = float(extra.get(name, default))
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default

async def _database(app: web.Application) -> AsyncIterator[None]:
    """Open the database for the app's lifetime: migrate it, load the demo shop if asked, close at the end."""
    settings = app[SETTINGS_KEY]
    if settings.auto_migrate:
        await upgrade_async(settings.database_url)
    db = Database(settings.database_url, echo=settings.sql_echo)
    app[DB_KEY] = db
    if settings.demo_data:
        from crm_store.demo import main_summary_line, seed_demo

        summary = await seed_demo(db, seed=settings.demo_seed, today=app[CLOCK_KEY]().date())
        log.info("demo data: %s", main_summary_line(summary))
    yield
    await db.dispose()


async def _hub(app: web.Application) -> AsyncIterator[None]:
    """Wire the real-time hub: state store (memory or Redis), Socket.IO, the hub service, the router loop."""
    settings = app[SETTINGS_KEY]
    redis_client = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        from contact_center.state.redis_store import RedisStateStore

        redis_client = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=5)
        )
        store: StateStore = RedisStateStore(redis_client, prefix=settings.redis_prefix)
        app[REDIS_PING_KEY] = redis_client.ping
        from contact_center.state.cobrowse_redis import RedisCobrowseStore

        cobrowse_store: CobrowseStore = RedisCobrowseStore(redis_client, prefix=settings.redis_prefix)
    else:
        from contact_center.state.memory import MemoryStateStore
        from contact_center.state.cobrowse_store import MemoryCobrowseStore

        store = MemoryStateStore()
        cobrowse_store = MemoryCobrowseStore()
    sio = app[SIO_KEY]
    messages = open_message_log(app[DB_KEY], commit_interval=settings.message_commit_interval)
    reads = PointReads(app[DB_KEY])
    channels = app[CHANNELS_KEY]
    hub = HubService(app[DB_KEY], store, SioEmitter(sio), node=settings.node_name, offer_timeout=settings.offer_timeout_seconds,
        wrap_up_seconds=settings.wrap_up_seconds, messages=messages, reads=reads, channels=channels,
        default_region=settings.default_phone_region, public_base_url=settings.public_base_url,
    )
    hub.abandon_grace = settings.abandon_grace_seconds
    hub.decline_skip = settings.decline_skip_seconds
    hub.media = app[MEDIA_KEY]
    hub.media_link = media_signer(settings.session_secret, settings.public_base_url or f"http://{settings.host}:{settings.port}")
    bot_client = None
    bot_watch = None
    if settings.rasa_url and any(spec.bot_first or spec.bot_when_sure is not None for spec in channels.specs()):
        from integrations.rasa.client import RasaClient

        bot_client = RasaClient(settings.rasa_url, settings.rasa_token, timeout=settings.bot_timeout_seconds)
        hub.bot = bot_client
        bot_watch = asyncio.get_running_loop().create_task(hub.watch_bot())
    hub.callback_config = app.get(CALLBACK_CONFIG_KEY)  # web callback, when the phone is wired
    app[HUB_KEY] = hub
    await hub.load_queues()
    await hub.rebuild_state()
    customer_ns = CustomerNamespace(
        hub, message_burst=settings.webchat_message_burst, messages_per_second=settings.webchat_messages_per_second,
        identity=app[IDENTITY_KEY],
    )
    agent_ns = AgentNamespace(hub, app[SESSIONS_KEY], time.time)
    # co-browsing and document push: their state is shared (Redis with REDIS_URL), so any hub process serves them
    relay = CobrowseRelay(sio, hub, store=cobrowse_store, secret=settings.session_secret,
                          consent_seconds=_seconds(settings.extra, "COBROWSE_CONSENT_SECONDS", CONSENT_SECONDS),
                          grace_seconds=_seconds(settings.extra, "COBROWSE_GRACE_SECONDS", RECONNECT_GRACE_SECONDS))
    cobrowse = app[COBROWSE_KEY] = install_cobrowse(sio, hub, customer_ns, agent_ns, relay)  # the cobrowse_* events
    pushes = app[DOCUMENTS_KEY] = DocumentPushes(hub, settings.session_secret, base_url=settings.public_base_url,
                                                 channels=app[CHANNELS_KEY], store=cobrowse_store)  # document push (issue 17)
    install_documents(pushes, customer_ns, agent_ns, cobrowse_acked)
    sio.register_namespace(customer_ns)
    sio.register_namespace(agent_ns)
    router = asyncio.get_running_loop().create_task(hub.run_router())
    sweeper = asyncio.get_running_loop().create_task(sweep_ended_sessions(sio, app[SESSIONS_KEY]))
    callback_loop = (asyncio.get_running_loop().create_task(run_callbacks(hub, settings.callback_interval_seconds))
                     if hub.callback_config is not None else None)
    if settings.gc_freeze:
        tune_collector()
    yield
    await cobrowse.stop()
    await stop_tasks([router, sweeper, bot_watch, callback_loop, *hub._bot_tasks])
    if bot_client is not None:
        await bot_client.close()
    await messages.close()
    reads.close()
    if redis_client is not None:
        await redis_client.aclose()


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: whether the hub can reach its database and (with ``REDIS_URL``) Redis; and the bot.

    503 when the database is unreachable (nothing can be stored). Without Redis the hub still serves what it
    can (messages are stored and delivered on this node; routing resumes and the shared state is rebuilt from
    SQL when Redis is back): 200 with ``status: degraded`` and ``redis: false``, so a load balancer keeps it.
    """
    ok = await request.app[DB_KEY].ping()
    body: dict[str, Any] = {"database": ok}
    ping = request.app.get(REDIS_PING_KEY)
    redis_ok = True
    if ping is not None:
        try:
            async with asyncio.timeout(1.0):
                await ping()
        except Exception:  # noqa: BLE001 - unreachable, refused, timed out: all "no"
            redis_ok = False
        body["redis"] = redis_ok
    hub = request.app.get(HUB_KEY)
    body["bot"] = "off" if hub is None or hub.bot is None else ("ready" if hub.bot_ready else "not ready")
    body["status"] = "ok" if ok and redis_ok else "degraded"
    return web.json_response(body, status=200 if ok else 503)


def _session_gate(app: web.Application, settings: Settings) -> SessionGate:
    """Signed cookies with the settings' secret; revocations read and written in the app's SQL database."""

    async def revoke(session_id: str, agent_id: int, expires_at: float) -> None:
        async with app[DB_KEY].transaction() as s:
            await agents_repo.revoke_session(s, session_id, agent_id, datetime.fromtimestamp(expires_at, timezone.utc))

    async def revoked_among(session_ids: Collection[str]) -> set[str]:
        async with app[DB_KEY].session() as s:
            return await agents_repo.sessions_revoked(s, session_ids)

    return SessionGate(SessionSigner(settings.session_secret), revoked_among, revoke)


def build_channels(settings: Settings) -> ChannelRegistry:
    """The channel registry: web chat always (live, no adapter); the bot first on ``BOT_CHANNELS``.

    The providers' channels (SMS, WhatsApp) are added by their wiring with their adapter.
    """
    channels = ChannelRegistry()
    channels.register(replace(WEB_CHAT, bot_first=WEB_CHAT.name in settings.bot_channels))
    return channels


def tune_collector() -> None:
    """The garbage collector as the hub runs it (``GC_FREEZE``, on by default; bench/routing.py does the same).

    Everything built at start (modules, ORM mappings, the app) is long-lived: keep it out of the cyclic
    collector's full passes, which otherwise re-scan it while messages flow; and collect the young
    generation every 10,000 allocations instead of 700 (a relayed message allocates hundreds, a routing
    pass over 10,000 waiting contacts tens of thousands).
    """
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> web.Application:
    """Build the hub's aiohttp application from settings.

    :param settings: where the database and shared state live, tokens, defaults.
    :param clock: the time source (tests pass a fixed clock).
    """
    settings = settings.with_generated_secrets()
    metrics = Metrics()
    # security headers outermost (every answer gets them, errors too); cross-site refusals before any handler
    app = web.Application(
        middlewares=[
            security_headers_middleware(), metrics_middleware(metrics), error_middleware,
            same_origin_middleware(metrics.cross_origin_refused.inc),
        ],
        client_max_size=2 * 1024 * 1024,
    )
    app[SECURITY_KEY] = SecurityConfig.from_settings(settings)
    app.cleanup_ctx.append(throttle_context(settings))
    sessions = _session_gate(app, settings)
    app.middlewares.append(service_token_middleware(settings.service_tokens, sessions))
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[CLOCK_KEY] = clock or _utcnow
    app[SESSIONS_KEY] = sessions
    sio = create_sio(settings.redis_url, list(settings.allowed_origins), channel=f"{settings.redis_prefix}socketio")
    sio.attach(app)
    app[SIO_KEY] = sio
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_hub)
    app.cleanup_ctx.append(evaluation_jobs)  # issue 18: re-rank the fulfilment queue, nightly customer values
    register_supervisor(app, sio)
    add_web_routes(app)
    add_identity_routes(app, verifier_for(settings))  # WIDGET_IDENTITY_SECRET; /dev/widget-identity in demo mode only
    app[MEDIA_KEY] = FileMediaStore(settings.media_dir)
    add_media_routes(app, secret=settings.session_secret, max_bytes=settings.media_max_bytes, agent_of=current_agent)
    channels = app[CHANNELS_KEY] = build_channels(settings)
    wire_twilio(app, settings, channels, db=lambda: app[DB_KEY], hub=lambda: app[HUB_KEY], media=app[MEDIA_KEY])
    wire_email(app, settings, channels, db=lambda: app[DB_KEY], hub=lambda: app[HUB_KEY], media=app[MEDIA_KEY])
    add_cobrowse_routes(app)  # the console's sandboxed co-browsing view
    add_document_routes(app, lambda: app[DOCUMENTS_KEY], current_agent)  # the document library and pushed links
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/api/openapi.json", openapi_handler)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app
