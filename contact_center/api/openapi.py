"""The OpenAPI 3.1 document of /api/, generated from the same route table that builds the router."""

from __future__ import annotations

from typing import Any, Iterable

from aiohttp import web

from contact_center.api.routes import ROUTES, Route

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}},
    },
}


def _generic(r: Route) -> dict[int, str]:
    """The errors any such operation can answer (docs/subsystems/http-api.md, Errors): 400 for a query parameter or
    body it cannot read, 404 for a path id that names nothing, 422 for a body that does not validate."""
    out: dict[int, str] = {}
    if any(p.where == "query" for p in r.params) or r.body is not None:
        out[400] = "a query parameter or the body cannot be read (the field and the reason)"
    if any(p.where == "path" for p in r.params):
        out[404] = "no such resource"
    if r.body is not None:
        out[422] = "the body does not validate (each field and the reason)"
    return out


def build_openapi(routes: Iterable[Route] = ROUTES) -> dict[str, Any]:
    """The OpenAPI document describing every route in ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.__name__,
            "tags": [r.tag],
            "parameters": [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "description": p.description, "schema": {"type": p.type}}
                for p in r.params
            ],
            "responses": {
                str(code): (
                    {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                    if code >= 400 else {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}
                )
                for code, text in sorted({**_generic(r), **r.responses, 401: "missing or bad service token"}.items())
            },
        }
        if r.auth:
            op["security"] = [{"serviceToken": []}]
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": r.body}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Contact centre hub API", "version": "0.1.0",
                 "description": "Customers, the contact repository, the catalogue and orders."},
        "paths": paths,
        "components": {
            "securitySchemes": {"serviceToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return web.json_response(build_openapi())
