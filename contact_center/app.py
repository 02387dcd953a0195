"""The composition root: ``create_app(settings)`` wires the adapters to the ports and mounts the routes.

This is the only module that chooses concrete adapters (SQLite or PostgreSQL today; in-process or
Redis state when the hub arrives), from :class:`~contact_center.settings.Settings`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

from aiohttp import web

from contact_center.api.auth import service_token_middleware
from contact_center.api.errors import error_middleware
from contact_center.api.openapi import openapi_handler
from contact_center.api.routes import ROUTES
from contact_center.keys import CLOCK_KEY, DB_KEY, METRICS_KEY, SETTINGS_KEY
from contact_center.metrics import Metrics, metrics_handler, metrics_middleware
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.migrate import upgrade_async

log = logging.getLogger("contact_center.app")


def _utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(timezone.utc)


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


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the hub can reach its database, 503 when not."""
    ok = await request.app[DB_KEY].ping()
    return web.json_response({"status": "ok" if ok else "degraded", "database": ok}, status=200 if ok else 503)


def create_app(settings: Settings, *, clock: Callable[[], datetime] | None = None) -> web.Application:
    """Build the hub's aiohttp application from settings.

    :param settings: where the database and shared state live, tokens, defaults.
    :param clock: the time source (tests pass a fixed clock).
    """
    settings = settings.with_generated_secrets()
    metrics = Metrics()
    app = web.Application(
        middlewares=[metrics_middleware(metrics), error_middleware, service_token_middleware(settings.service_tokens)],
        client_max_size=2 * 1024 * 1024,
    )
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[CLOCK_KEY] = clock or _utcnow
    app.cleanup_ctx.append(_database)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/api/openapi.json", openapi_handler)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app
