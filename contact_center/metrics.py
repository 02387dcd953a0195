"""Prometheus metrics of the hub: HTTP traffic and business counters, on a registry per app."""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The hub's metrics, kept on their own registry so several apps in one process do not clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "cc_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "cc_http_request_seconds", "HTTP request latency by route", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.orders_placed = Counter(
            "cc_orders_placed_total", "Orders placed, by channel", ["channel"], registry=self.registry
        )
        self.login_failures = Counter(
            "cc_login_failures_total",
            "Refused logins: credentials (wrong password or unknown user, told apart nowhere), throttled, locked",
            ["reason"], registry=self.registry,
        )
        self.login_lockouts = Counter(
            "cc_login_lockouts_total", "Accounts or client addresses locked after too many failed logins", ["scope"],
            registry=self.registry,
        )
        self.cross_origin_refused = Counter(
            "cc_cross_origin_refused_total", "State-changing requests refused as cross-site (403 cross_origin)",
            registry=self.registry,
        )
        self.db_up = Gauge("cc_database_up", "1 when the database answered the last health check", registry=self.registry)

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)


def metrics_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that counts and times every request by its route template (not its raw path)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            metrics.http_requests.labels(request.method, route, str(status)).inc()
            metrics.http_latency.labels(route).observe(time.perf_counter() - start)

    return middleware


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    from contact_center.keys import DB_KEY, METRICS_KEY

    metrics = request.app[METRICS_KEY]
    metrics.db_up.set(1 if await request.app[DB_KEY].ping() else 0)
    resp = web.Response(body=metrics.render())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


__all__ = ["Metrics", "metrics_middleware", "metrics_handler", "CONTENT_TYPE_LATEST"]
