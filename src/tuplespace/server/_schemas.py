"""The OpenAPI document: JSON schemas of every request and answer.

Requests are not validated against these schemas (handlers check them field by
field, with the wire codec); they describe the API for clients and tools.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .._templates import FORMAL_TYPES
from ._auth import PERMISSIONS

__all__ = ["COMPONENTS", "install", "operation"]

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _tagged(tag: str, payload: Schema) -> Schema:
    return {"type": "object", "properties": {tag: payload}, "required": [tag], "additionalProperties": False}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_PLAIN_KEYS: Schema = {"not": {"pattern": "^\\$"}}

_SCALARS: list[Schema] = [
    {"type": "null"},
    {"type": "boolean"},
    {"type": "integer"},
    {"type": "string"},
    _tagged("$int", {"type": "string", "pattern": "^-?[0-9]+$"}),
    _tagged("$float", {"anyOf": [{"type": "string"}, {"type": "number"}]}),
    _tagged("$bytes", {"type": "string"}),
    _tagged("$time", {"type": "string"}),
    _tagged("$uri", {"type": "string", "minLength": 1}),
    _tagged("$credit", {"type": "string"}),
]

_SECONDS = {"type": "number", "exclusiveMinimum": 0}

COMPONENTS: dict[str, Schema] = {
    "Value": {
        "description": "A value in the wire format (docs/wire-format.md).",
        "anyOf": [
            *_SCALARS,
            {"type": "array", "items": ref("Value")},
            {"type": "object", "propertyNames": _PLAIN_KEYS, "additionalProperties": ref("Value")},
            _tagged("$map", {"type": "object", "additionalProperties": ref("Value")}),
        ],
    },
    "Tuple": {"description": "A tuple: a JSON array of values.", "type": "array", "items": ref("Value")},
    "TemplateField": {
        "description": "A template field (docs/wire-format.md, Templates).",
        "anyOf": [
            *_SCALARS,
            {"type": "array", "items": ref("TemplateField")},
            {"type": "object", "propertyNames": _PLAIN_KEYS, "additionalProperties": ref("TemplateField")},
            _tagged("$map", {"type": "object", "additionalProperties": ref("TemplateField")}),
            _tagged("$any", {"const": True}),
            _tagged("$formal", {"enum": sorted(FORMAL_TYPES)}),
            _tagged(
                "$range",
                {
                    "type": "object",
                    "properties": {
                        "low": ref("Value"),
                        "high": ref("Value"),
                        "include_high": {"type": "boolean"},
                    },
                    "additionalProperties": False,
                },
            ),
            _tagged("$regex", {"type": "string", "maxLength": 4096}),
            _tagged("$prefix", ref("Value")),
            _tagged("$oneof", {"type": "array", "items": ref("Value"), "minItems": 1, "maxItems": 1024}),
            _tagged("$xpath", {"type": "string", "maxLength": 4096}),
        ],
    },
    "Template": {
        "description": "A template: a JSON array of template fields.",
        "type": "array",
        "items": ref("TemplateField"),
    },
    "Lease": {
        "description": "Seconds the tuple stays; null or absent: until it is taken.",
        **_nullable(_SECONDS),
    },
    "Timeout": {
        "description": "Seconds to wait; absent or 0: answer at once; null: wait forever (in long polls).",
        **_nullable({"type": "number", "minimum": 0}),
    },
    "Limit": {
        "description": "The most tuples to answer with.",
        **_nullable({"type": "integer", "minimum": 0}),
    },
    "Permissions": {"type": "array", "items": {"enum": list(PERMISSIONS)}, "uniqueItems": True},
    "LeaseInfo": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "expires_at": _nullable({"type": "number"})},
        "required": ["id", "expires_at"],
    },
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": _nullable({"type": "string"}),
                    "limit": {"type": "string"},
                    "maximum": {"type": "integer"},
                },
                "required": ["code", "message", "field"],
            }
        },
        "required": ["error"],
    },
    "SpaceOptions": {
        "type": "object",
        "properties": {
            "order": {"enum": ["fifo", "lifo", "random"]},
            "capacity": _nullable({"type": "integer", "minimum": 1}),
            "event_retention": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
            "store": {"enum": ["durable", "memory"]},
            "anonymous": ref("Permissions"),
        },
    },
    "Space": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "options": ref("SpaceOptions"),
            "statistics": {"type": "object"},
        },
        "required": ["name", "options"],
    },
    "TokenGrant": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 128},
            "admin": {"type": "boolean"},
            "spaces": {"type": "object", "additionalProperties": ref("Permissions")},
        },
        "required": ["name", "admin", "spaces"],
    },
}


def _body(properties: dict[str, Schema], required: tuple[str, ...] = (), optional: bool = False) -> Schema:
    return {
        "requestBody": {
            "required": not optional,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": list(required),
                        "additionalProperties": False,
                    }
                }
            },
        }
    }


def _answer(description: str, schema: Schema | None = None, media: str = "application/json") -> Schema:
    out: Schema = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def _object(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required)}


_MORE = {"const": True, "description": "The wait was cut short: ask again for the time left."}
_TUPLE_OR_NULL = _nullable(ref("Tuple"))
_FOUND = _object({"tuple": _TUPLE_OR_NULL, "more": _MORE}, ("tuple",))
_TUPLES = _object({"tuples": {"type": "array", "items": ref("Tuple")}, "more": _MORE}, ("tuples",))
_COUNT = _object({"count": {"type": "integer", "minimum": 0}}, ("count",))
_EXPIRES = _object({"expires_at": _nullable({"type": "number"})}, ("expires_at",))
_CLAIM = _object({"id": {"type": "string"}, "expires_at": {"type": "number"}}, ("id", "expires_at"))

_ERRORS = {
    status: _answer(text, ref("Error"))
    for status, text in (
        ("400", "The request is malformed; nothing changed."),
        ("401", "No token, or an unknown or revoked one."),
        ("403", "The token lacks the permission."),
        ("404", "No such space, lease, claim, transaction or token."),
        ("409", "The transaction has ended, or the space exists with other options."),
        ("413", "Past a size, count or nesting limit."),
        ("429", "Too many waiting calls, subscriptions or requests, or a full space."),
        ("503", "The server is shutting down, or its store failed."),
    )
}

_WRITE = {"tuple": ref("Tuple"), "lease": ref("Lease")}
_WRITE_MANY = {"tuples": {"type": "array", "items": ref("Tuple")}, "lease": ref("Lease")}
_FIND = {"template": ref("Template"), "timeout": ref("Timeout")}
_ALL = {"template": ref("Template"), "limit": ref("Limit")}
# A take under a claim, and the claims of earlier takes it confirms.
_UNCONFIRMED = {"type": "array", "items": {"type": "string"}}
_CLAIMING: dict[str, Any] = {"claim": {"type": "boolean"}, "confirm": _UNCONFIRMED}
_ONLY_TEMPLATE = {"template": ref("Template")}
_LEASE_BODY = {"lease": ref("Lease")}
_NO_BODY: Schema = {}

_OPERATIONS: dict[str, tuple[str, Schema, dict[str, Schema]]] = {
    "health": (
        "Is the server up?",
        _NO_BODY,
        {
            "200": _answer(
                "Up.",
                _object({"status": {"const": "ok"}, "version": {"type": "string"}}, ("status", "version")),
            )
        },
    ),
    "metrics": (
        "Metrics for Prometheus.",
        _NO_BODY,
        {"200": _answer("Metrics in the Prometheus text format.", {"type": "string"}, "text/plain")},
    ),
    "list_spaces": (
        "The spaces the token may read.",
        _NO_BODY,
        {
            "200": _answer(
                "The spaces.", _object({"spaces": {"type": "array", "items": ref("Space")}}, ("spaces",))
            )
        },
    ),
    "put_space": (
        "Create a space (or find it with these options).",
        _body(
            {
                "order": {"enum": ["fifo", "lifo", "random"]},
                "capacity": _nullable({"type": "integer", "minimum": 1}),
                "event_retention": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                "store": {"enum": ["durable", "memory"]},
                "anonymous": ref("Permissions"),
            },
            optional=True,
        ),
        {
            "200": _answer("The space exists with these options.", ref("Space")),
            "201": _answer("Created.", ref("Space")),
        },
    ),
    "get_space": (
        "A space, its options and statistics.",
        _NO_BODY,
        {"200": _answer("The space.", ref("Space"))},
    ),
    "delete_space": ("Delete a space and its tuples.", _NO_BODY, {"204": _answer("Deleted.")}),
    "write": (
        "Write a tuple.",
        _body({**_WRITE, "timeout": ref("Timeout")}, ("tuple",)),
        {
            "200": _answer(
                "Written (or, with more, not yet: the space is full).",
                _object({"lease": _nullable(ref("LeaseInfo")), "more": _MORE}, ("lease",)),
            )
        },
    ),
    "write_many": (
        "Write several tuples, all or none.",
        _body(_WRITE_MANY, ("tuples",)),
        {
            "200": _answer(
                "Written.", _object({"leases": {"type": "array", "items": ref("LeaseInfo")}}, ("leases",))
            )
        },
    ),
    "read": (
        "Read a matching tuple (a long poll with a timeout).",
        _body(_FIND, ("template",)),
        {"200": _answer("The tuple, or null.", _FOUND)},
    ),
    "take": (
        "Take a matching tuple (a long poll with a timeout), optionally under a claim.",
        _body(
            {**_FIND, **_CLAIMING},
            ("template",),
        ),
        {
            "200": _answer(
                "The tuple, or null.",
                _object(
                    {
                        "tuple": _TUPLE_OR_NULL,
                        "claim": _CLAIM,
                        "more": _MORE,
                        "unconfirmed": _UNCONFIRMED,
                    },
                    ("tuple",),
                ),
            )
        },
    ),
    "read_all": (
        "Read every matching tuple (at most limit).",
        _body(_ALL, ("template",)),
        {"200": _answer("The tuples.", _TUPLES)},
    ),
    "take_all": (
        "Take every matching tuple (at most limit), optionally under a claim.",
        _body({**_ALL, **_CLAIMING}, ("template",)),
        {
            "200": _answer(
                "The tuples.",
                _object(
                    {
                        "tuples": {"type": "array", "items": ref("Tuple")},
                        "claim": _CLAIM,
                        "more": _MORE,
                        "unconfirmed": _UNCONFIRMED,
                    },
                    ("tuples",),
                ),
            )
        },
    ),
    "count": (
        "Count the matching tuples.",
        _body(_ONLY_TEMPLATE, ("template",)),
        {"200": _answer("The count.", _COUNT)},
    ),
    "replace": (
        "Take a matching tuple and write another, atomically.",
        _body(
            {
                "template": ref("Template"),
                "tuple": ref("Tuple"),
                "lease": ref("Lease"),
                "timeout": ref("Timeout"),
            },
            ("template", "tuple"),
        ),
        {"200": _answer("The tuple taken, or null.", _FOUND)},
    ),
    "write_if_absent": (
        "Write a tuple unless one matches the template, atomically.",
        _body(
            {"template": ref("Template"), "tuple": ref("Tuple"), "lease": ref("Lease")}, ("template", "tuple")
        ),
        {"200": _answer("Whether it was written.", _object({"written": {"type": "boolean"}}, ("written",)))},
    ),
    "confirm_claim": ("Make a claimed take final.", _NO_BODY, {"204": _answer("Confirmed.")}),
    "release_claim": ("Put a claimed tuple back now.", _NO_BODY, {"204": _answer("Released.")}),
    "renew_lease": (
        "Renew the lease of a tuple.",
        _body(_LEASE_BODY, optional=True),
        {"200": _answer("The new expiry.", _EXPIRES)},
    ),
    "cancel_lease": ("Remove a tuple by its lease.", _NO_BODY, {"204": _answer("Removed.")}),
    "begin_transaction": (
        "Start a transaction.",
        _body(
            {"lease": {**_SECONDS, "description": "Seconds until it aborts by itself (default 60)."}},
            optional=True,
        ),
        {
            "200": _answer(
                "The transaction.",
                _object({"id": {"type": "string"}, "expires_at": {"type": "number"}}, ("id", "expires_at")),
            )
        },
    ),
    "tx_write": (
        "Write a tuple at commit.",
        _body(_WRITE, ("tuple",)),
        {"204": _answer("Written at commit.")},
    ),
    "tx_write_many": (
        "Write several tuples at commit.",
        _body(_WRITE_MANY, ("tuples",)),
        {"204": _answer("Written at commit.")},
    ),
    "tx_read": (
        "Read in the transaction.",
        _body(_FIND, ("template",)),
        {"200": _answer("The tuple, or null.", _FOUND)},
    ),
    "tx_take": (
        "Take in the transaction.",
        _body(_FIND, ("template",)),
        {"200": _answer("The tuple, or null.", _FOUND)},
    ),
    "tx_read_all": (
        "Read all in the transaction.",
        _body(_ALL, ("template",)),
        {"200": _answer("The tuples.", _TUPLES)},
    ),
    "tx_take_all": (
        "Take all in the transaction.",
        _body(_ALL, ("template",)),
        {"200": _answer("The tuples.", _TUPLES)},
    ),
    "tx_count": (
        "Count in the transaction.",
        _body(_ONLY_TEMPLATE, ("template",)),
        {"200": _answer("The count.", _COUNT)},
    ),
    "tx_commit": ("Commit.", _body({}, optional=True), {"204": _answer("Committed.")}),
    "tx_abort": ("Abort.", _body({}, optional=True), {"204": _answer("Aborted.")}),
    "tx_renew": (
        "Renew the transaction's lease.",
        _body({"lease": _SECONDS}, ("lease",)),
        {"200": _answer("The new expiry.", _object({"expires_at": {"type": "number"}}, ("expires_at",)))},
    ),
    "events": (
        "The events of matching tuples, as Server-Sent Events.",
        {
            "parameters": [
                {
                    "name": "template",
                    "in": "query",
                    "required": True,
                    "description": "The template, as JSON.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "events",
                    "in": "query",
                    "required": False,
                    "description": "Comma-separated kinds: write, take, expire, cancel.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "description": "Resume after this event.",
                    "schema": {"type": "integer", "minimum": 0},
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Resume after this event.",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
            ]
        },
        {"200": _answer("A stream of events.", {"type": "string"}, "text/event-stream")},
    ),
    "list_tokens": (
        "The tokens (without their secrets).",
        _NO_BODY,
        {
            "200": _answer(
                "The tokens.", _object({"tokens": {"type": "array", "items": ref("TokenGrant")}}, ("tokens",))
            )
        },
    ),
    "create_token": (
        "Create a token.",
        _body(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 128},
                "token": {"type": "string", "minLength": 16},
                "spaces": {"type": "object", "additionalProperties": ref("Permissions")},
                "admin": {"type": "boolean"},
            },
            ("name",),
        ),
        {"201": _answer("The token, with its secret (shown once).", {**ref("TokenGrant")})},
    ),
    "revoke_token": ("Revoke a token, at once.", _NO_BODY, {"204": _answer("Revoked.")}),
}


def operation(name: str) -> dict[str, Any]:
    """The keyword arguments documenting the route ``name``."""
    summary, extra, answers = _OPERATIONS[name]
    status = int(next(iter(answers)))
    responses: dict[int | str, Any] = {}
    responses.update(answers)
    responses.update(_ERRORS)
    return {"summary": summary, "openapi_extra": extra or None, "responses": responses, "status_code": status}


_SPACE_NAME: Schema = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}


def install(app: FastAPI) -> None:
    """Give ``app`` an OpenAPI document with these schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components.update(COMPONENTS)
        for item in doc["paths"].values():
            for op in item.values():
                op["responses"].pop("422", None)
                for param in op.get("parameters", []):
                    if param["name"] == "space":
                        param["schema"] = _SPACE_NAME
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
