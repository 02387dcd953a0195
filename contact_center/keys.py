"""Typed keys of the aiohttp application's state (``app[DB_KEY]`` keeps its type)."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from aiohttp import web

from contact_center.metrics import Metrics
from contact_center.settings import Settings
from crm_store.db import Database

SETTINGS_KEY = web.AppKey("settings", Settings)
DB_KEY = web.AppKey("db", Database)
METRICS_KEY = web.AppKey("metrics", Metrics)
CLOCK_KEY = web.AppKey("clock", Callable[[], datetime])
