"""Errors as the HTTP API answers them: a status and ``{"error": {code, message, field}}``.

Every failure of a request is an :class:`ApiError` by the time it reaches the
client; :func:`api_error` translates the exceptions of the space into one,
prefixing the path an exception carries with the part of the request it came
from (``tuple[2]["temp"]``, ``template[1]``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from .._codec import to_wire
from .._errors import (
    CapabilityRevoked,
    ContainmentCycle,
    Forbidden,
    InsufficientCredit,
    InvalidTemplate,
    InvalidValue,
    LimitReached,
    NotAllowed,
    NotFound,
    RecordExists,
    RecordInUse,
    RecordNotFound,
    SpaceClosed,
    SpaceFull,
    StoreError,
    TransactionAborted,
    TransactionError,
    Unauthorized,
    UnknownLease,
    UnsupportedType,
    ValueTooLarge,
    WireError,
)

__all__ = ["ApiError", "api_error", "error_response", "limit_reached", "request_timeout"]


class ApiError(Exception):
    """A request that failed: its HTTP ``status``, a ``code``, a message and the
    offending ``field`` of the request (None: the request as a whole)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field, **self.extra}}


def limit_reached(message: str, limit: str, maximum: int) -> ApiError:
    """429: a client (or a channel) has as much of ``limit`` as it may."""
    return ApiError(429, "limit_reached", message, limit=limit, maximum=maximum)


def request_timeout(what: str, seconds: float) -> ApiError:
    """408: ``what`` (a part of a request) did not arrive within ``read_timeout``."""
    message = f"{what} did not arrive in full within {seconds:g} s of its first byte"
    return ApiError(408, "request_timeout", message, limit="read_timeout", maximum=seconds)


def _field(prefix: str | None, path: str) -> str | None:
    if prefix is None:
        return path or None
    return prefix + path


def api_error(exc: Exception, field: str | None = None, *, shutting_down: bool = False) -> ApiError:
    """The :class:`ApiError` for an exception raised by a space while handling the
    part ``field`` of a request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValueTooLarge):
        return ApiError(
            413,
            "value_too_large",
            exc.reason,
            _field(field, exc.path),
            limit=exc.limit,
            maximum=exc.maximum,
        )
    if isinstance(exc, WireError):
        return ApiError(400, "wire_error", exc.reason, _field(field, exc.path))
    if isinstance(exc, UnsupportedType):
        return ApiError(400, "unsupported_type", exc.reason, _field(field, exc.path))
    if isinstance(exc, InvalidTemplate):
        return ApiError(400, "invalid_template", exc.reason, _field(field, exc.path))
    if isinstance(exc, ContainmentCycle):
        return ApiError(400, "containment_cycle", exc.reason, _field(field, exc.path))
    if isinstance(exc, InvalidValue):
        # The engine names its arguments (lease, credit, timeout, limit, since) in the path.
        if exc.path in ("lease", "credit", "timeout", "limit", "since", "max_pending"):
            return ApiError(400, "invalid_value", exc.reason, exc.path)
        return ApiError(400, "invalid_value", exc.reason, _field(field, exc.path))
    if isinstance(exc, SpaceFull):
        return ApiError(429, "space_full", str(exc), None, limit=exc.limit, maximum=exc.maximum)
    if isinstance(exc, LimitReached):
        return limit_reached(str(exc), exc.limit, exc.maximum)
    if isinstance(exc, UnknownLease):
        return ApiError(404, "unknown_lease", str(exc))
    if isinstance(exc, TransactionAborted):
        return ApiError(409, "transaction_aborted", str(exc))
    if isinstance(exc, TransactionError):
        return ApiError(409, "transaction_ended", str(exc))
    if isinstance(exc, RecordNotFound):
        return ApiError(404, "record_not_found", str(exc), field)
    if isinstance(exc, RecordExists):
        return ApiError(409, "record_exists", str(exc), "path")
    if isinstance(exc, RecordInUse):
        return ApiError(409, "record_in_use", str(exc))
    if isinstance(exc, InsufficientCredit):
        return ApiError(
            402,
            "insufficient_credit",
            str(exc),
            None,
            principal=exc.principal,
            needed=to_wire(exc.needed),
            available=to_wire(exc.available),
        )
    if isinstance(exc, NotAllowed):
        return ApiError(
            403, "not_allowed", str(exc), None, operation=exc.operation, allowed=sorted(exc.allowed)
        )
    if isinstance(exc, CapabilityRevoked):
        return ApiError(401, "capability_revoked", str(exc), field, expired=exc.expired)
    if isinstance(exc, Unauthorized):
        return ApiError(401, "unauthorized", str(exc))
    if isinstance(exc, Forbidden):
        return ApiError(403, "forbidden", str(exc))
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc), field)
    if isinstance(exc, StoreError):
        return ApiError(503, "store_error", str(exc))
    if isinstance(exc, SpaceClosed):
        if shutting_down:
            return ApiError(503, "shutting_down", "the server is shutting down")
        return ApiError(404, "not_found", "the space was deleted")
    raise exc


def error_response(error: ApiError) -> Response:
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers or None,
    )
