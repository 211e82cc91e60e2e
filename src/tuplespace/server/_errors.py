"""Errors as the HTTP API answers them: a status and ``{"error": {code, message, field}}``.

Every failure of a request is an :class:`ApiError` by the time it reaches the
client; :func:`api_error` translates the exceptions of the space into one,
prefixing the path an exception carries with the part of the request it came
from (``tuple[2]["temp"]``, ``template[1]``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from .._codec import to_wire
from .._errors import (
    ERRORS,
    CapabilityRevoked,
    InsufficientCredit,
    LimitReached,
    NotAllowed,
    NotFound,
    RecordExists,
    RecordNotFound,
    RuleCycle,
    SpaceClosed,
    TupleSpaceError,
    Unreachable,
    ValueTooLarge,
    WireCode,
    _PathError,
)

__all__ = ["ApiError", "api_error", "coded", "limit_reached", "placed", "request_timeout"]

E = TypeVar("E", bound=TupleSpaceError)
X = TypeVar("X", bound=Exception)


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


def coded(error: E, code: str, field: str | None = None) -> E:
    """``error``, to be answered with ``code`` (one that :data:`~tuplespace._errors.ERRORS`
    gives its class) rather than the first code of its class; ``field``: the part of
    the request at fault, for an error that names none of its own (a ``Conflict``)."""
    error.code = code
    if field is not None:
        error.field = field
    return error


def limit_reached(message: str, limit: str, maximum: int) -> ApiError:
    """429: a client (or a channel) has as much of ``limit`` as it may (a transport's
    limit; the service raises :class:`~tuplespace.LimitReached`)."""
    return ApiError(429, "limit_reached", message, limit=limit, maximum=maximum)


def request_timeout(what: str, seconds: float) -> ApiError:
    """408: ``what`` (a part of a request) did not arrive within ``read_timeout``."""
    message = f"{what} did not arrive in full within {seconds:g} s of its first byte"
    return ApiError(408, "request_timeout", message, limit="read_timeout", maximum=seconds)


def _field(prefix: str | None, path: str) -> str | None:
    if prefix is None:
        return path or None
    return prefix + path


# The row of each class: its first one (reversed, so that the first one is written last).
_ROWS: dict[type[TupleSpaceError], WireCode] = {row.error: row for row in reversed(ERRORS)}
# The row of each code.
_CODES: dict[str, WireCode] = {row.code: row for row in ERRORS}

# The engine names its arguments in the path of an error; such a path is the field.
_ARGUMENTS = frozenset({"lease", "credit", "amount", "timeout", "limit", "since", "max_pending"})

# The errors that name the part of the request at fault (the others name none, or their path).
_NAMED = frozenset({NotFound, RecordNotFound, CapabilityRevoked})


def _row_of(exc: Exception) -> WireCode | None:
    if isinstance(exc, TupleSpaceError) and exc.code is not None:
        row = _CODES.get(exc.code)
        if row is not None and isinstance(exc, row.error):
            return row
    for kind in type(exc).__mro__:
        row = _ROWS.get(kind)
        if row is not None:
            return row
    return None


def _extra(exc: Exception) -> dict[str, Any]:
    """The fields of an error body that some errors carry besides code, message and field."""
    if isinstance(exc, (ValueTooLarge, LimitReached)):
        return {"limit": exc.limit, "maximum": exc.maximum}
    if isinstance(exc, InsufficientCredit):
        return {
            "principal": exc.principal,
            "needed": to_wire(exc.needed),
            "available": to_wire(exc.available),
        }
    if isinstance(exc, NotAllowed):
        return {"operation": exc.operation, "allowed": sorted(exc.allowed)}
    if isinstance(exc, CapabilityRevoked):
        return {"expired": exc.expired}
    if isinstance(exc, RuleCycle):
        return {"cycle": exc.cycle}
    return {}


def api_error(exc: Exception, field: str | None = None, *, shutting_down: bool = False) -> ApiError:
    """The :class:`ApiError` for an exception raised by a space while handling the
    part ``field`` of a request: the code and status of its class in
    :data:`~tuplespace._errors.ERRORS`.  An exception of no class there is raised again."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SpaceClosed) and not shutting_down:
        return ApiError(404, "not_found", "the space was deleted")
    if isinstance(exc, Unreachable):  # the store of a space kept elsewhere (Redis) is out of reach
        return ApiError(503, "store_error", str(exc))
    row = _row_of(exc)
    if row is None:
        raise exc
    if isinstance(exc, SpaceClosed):
        return ApiError(row.status, row.code, "the server is shutting down")
    if isinstance(exc, _PathError):
        if exc.path in _ARGUMENTS:  # an argument of the request, not a place in ``field``
            return ApiError(row.status, row.code, exc.reason, exc.path, **_extra(exc))
        return ApiError(row.status, row.code, exc.reason, _field(field, exc.path), **_extra(exc))
    if isinstance(exc, TupleSpaceError) and exc.field is not None:
        where: str | None = exc.field
    elif row.error in _NAMED:
        where = field
    elif row.error is RecordExists:
        where = "path"
    else:
        where = None
    error = ApiError(row.status, row.code, str(exc), where, **_extra(exc))
    if isinstance(exc, LimitReached) and exc.retry_after is not None:
        error.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return error


def placed(exc: X, field: str | None) -> X:
    """``exc``, raised while handling the part ``field`` of a request (None: the
    request as a whole): the field it names once answered, as :func:`api_error` with
    that field would name it (``tuple[2]["temp"]``, ``template[1]``)."""
    if field is None:
        return exc
    row = _row_of(exc)
    if isinstance(exc, _PathError):
        if row is None or exc.path not in _ARGUMENTS:  # an argument of the request stays as it is
            exc.path = field + exc.path
    elif isinstance(exc, TupleSpaceError) and row is not None and row.error in _NAMED:
        exc.field = field
    return exc
