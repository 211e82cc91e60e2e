"""The OpenAPI document of a server, made from the operation table of the HTTP API
(:data:`tuplespace._httpapi.OPERATIONS`) and its schemas."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .._httpapi import COMPONENTS, ERROR_ANSWERS, Operation, Schema

__all__ = ["install", "route_options"]


def route_options(op: Operation) -> dict[str, Any]:
    """The keyword arguments of the FastAPI route of ``op``, documenting it."""
    responses: dict[int | str, Any] = {}
    responses.update(op.answers)
    responses.update(ERROR_ANSWERS)
    return {
        "methods": [op.method],
        "name": op.name,
        "operation_id": op.name,
        "summary": op.summary,
        "openapi_extra": op.request or None,
        "responses": responses,
        "status_code": int(next(iter(op.answers))),
    }


_SPACE_NAME: Schema = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}

_BEARER: Schema = {
    "type": "http",
    "scheme": "bearer",
    "description": "A token of the server's token file (docs/http-api.md, Authentication and permissions).",
}
# A request may come with a token or without one (then with the anonymous permissions).
_TOKEN_OR_NONE: list[Schema] = [{"bearer": []}, {}]
# The operations that read no token.
_OPEN = frozenset({"health"})


def install(app: FastAPI, stores: tuple[str, ...]) -> None:
    """Give ``app`` an OpenAPI document with these schemas; ``stores``: the stores its
    spaces may ask for (durable ones need a data directory)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas.update(COMPONENTS)
        components["securitySchemes"] = {"bearer": _BEARER}
        for item in doc["paths"].values():
            for op in item.values():
                op["responses"].pop("422", None)
                if op["operationId"] not in _OPEN:
                    op["security"] = _TOKEN_OR_NONE
                if op["operationId"] == "put_space":
                    body = op["requestBody"]["content"]["application/json"]["schema"]
                    body["properties"] = {**body["properties"], "store": {"enum": list(stores)}}
                for param in op.get("parameters", []):
                    if param["name"] == "space":
                        param["schema"] = _SPACE_NAME
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
