"""Turns domain errors and bad requests into JSON HTTP errors with a reason; nothing leaks a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from crm_store.domain.identity import InvalidAddress
from crm_store.domain.orders import IllegalTransition
from crm_store.domain.validation import ValidationFailed
from crm_store.repositories.conversations import ConversationNotFound
from crm_store.repositories.customers import ContactPointTaken, CustomerNotFound, MergeRefused
from crm_store.repositories.interactions import BadCursor
from crm_store.repositories.orders import OrderNotFound
from crm_store.services import OrderConflict

log = logging.getLogger("contact_center.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """A request the API cannot read (bad JSON, a query parameter of the wrong type)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Forbidden(PermissionError):
    """The caller is known but may not read or do this (an agent and another agent's customer): a 403."""


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """A JSON error body: a machine code, a human message, and optional details."""
    return web.json_response({"error": code, "message": message, **extra}, status=status)


def _map(exc: Exception) -> web.Response | None:
    """The HTTP answer for a known domain error, or None for an unexpected one."""
    if isinstance(exc, ValidationFailed):
        return error_response(422, "validation_failed", str(exc), fields=[e.as_dict() for e in exc.errors])
    if isinstance(exc, InvalidAddress):
        return error_response(
            422, "invalid_address", str(exc), fields=[{"field": str(exc.kind), "reason": exc.reason}]
        )
    if isinstance(exc, Forbidden):
        return error_response(403, "forbidden", str(exc))
    if isinstance(exc, BadRequest):
        fields = [{"field": exc.field, "reason": str(exc)}] if exc.field else []
        return error_response(400, "bad_request", str(exc), fields=fields)
    if isinstance(exc, BadCursor):
        return error_response(400, "bad_request", str(exc), fields=[{"field": "cursor", "reason": str(exc)}])
    if isinstance(exc, (CustomerNotFound, OrderNotFound, ConversationNotFound)):
        return error_response(404, "not_found", str(exc).strip("'\""))
    if isinstance(exc, IllegalTransition):
        return error_response(
            409, "illegal_transition", str(exc), current=str(exc.current), target=str(exc.target)
        )
    if isinstance(exc, (ContactPointTaken, OrderConflict, MergeRefused)):
        return error_response(409, "conflict", str(exc))
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON: 4xx with a reason for the caller's mistakes, 500 for ours."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        mapped = _map(exc)
        if mapped is not None:
            return mapped
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "something went wrong on our side; it has been logged")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 naming the problem."""
    if request.content_length is not None and request.content_length > 1_000_000:
        raise BadRequest("body too large")
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body must be valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi], or a 400 naming it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number", field=name) from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}", field=name)
    return value


def path_int(request: web.Request, name: str) -> int:
    """An integer path parameter (ids), or a 404: a non-number id names nothing."""
    raw = request.match_info.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound(text=f"no such {name.removesuffix('_id')}: {raw[:40]!r}")
    return int(raw)
