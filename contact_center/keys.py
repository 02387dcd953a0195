"""Typed keys of the aiohttp application's state (``app[DB_KEY]`` keeps its type)."""

from __future__ import annotations

from datetime import datetime
from typing import Awaitable, Callable

from aiohttp import web

from contact_center.metrics import Metrics
from contact_center.settings import Settings
from crm_store.db import Database

SETTINGS_KEY = web.AppKey("settings", Settings)
DB_KEY = web.AppKey("db", Database)
METRICS_KEY = web.AppKey("metrics", Metrics)
CLOCK_KEY = web.AppKey("clock", Callable[[], datetime])
# Redis's PING, when the hub shares state through Redis (GET /healthz says whether it answers)
REDIS_PING_KEY = web.AppKey("redis_ping", Callable[[], Awaitable[object]])

from contact_center.sessions import SessionGate  # noqa: E402

SESSIONS_KEY = web.AppKey("sessions", SessionGate)

import socketio  # noqa: E402

from contact_center.hub.service import HubService  # noqa: E402

SIO_KEY = web.AppKey("sio", socketio.AsyncServer)
HUB_KEY = web.AppKey("hub", HubService)
