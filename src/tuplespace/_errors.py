"""The exceptions of PyTupleSpace, one tree rooted at :class:`TupleSpaceError`.

Where the meaning matches a built-in exception, the built-in is mixed in, so
``except TimeoutError`` and ``except ValueError`` work as a Python user expects::

    TupleSpaceError
     ├── Timeout                 (also TimeoutError)  a blocking call ran out of time
     ├── InvalidValue            (also ValueError)    a tuple or value that cannot be stored
     │    ├── UnsupportedType    (also TypeError)     a value of a type that does not travel
     │    ├── ValueTooLarge                           over a size, field-count or nesting limit
     │    ├── ContainmentCycle                        a record would contain itself
     │    ├── RuleCycle                               a rule could trigger itself
     │    └── RuleExists                              a rule of that name exists already
     ├── InvalidTemplate         (also ValueError)    a template that cannot be compiled
     ├── WireError               (also ValueError)    text that is not valid wire format
     ├── LimitReached                                 a resource limit (waiters, ...) is full
     │    └── SpaceFull                               the space is at its capacity
     ├── EvaluationError         (also ValueError)    an expression or a method failed as it ran
     ├── InsufficientCredit                           an account cannot pay for the operation
     ├── EventsLost                                   events a subscriber asked for are gone
     ├── TransactionError                             the transaction cannot go on
     │    └── TransactionAborted                      it was aborted (lease ran out, ...)
     ├── StoreError                                   the durable store cannot be opened or failed
     ├── NotSupported            (also NotImplementedError) the space's store lacks the operation
     ├── SpaceClosed                                  the space was closed
     ├── Conflict                                     a space or token of that name exists already
     ├── RecordExists                                 a record (or the root) has that path already
     ├── RecordInUse                                  a record that others contain cannot go
     ├── Unreachable             (also ConnectionError) the server cannot be reached
     ├── Unauthorized            (also PermissionError) the server needs a valid token
     │    └── CapabilityRevoked                       the capability was revoked or ran out
     ├── Forbidden               (also PermissionError) the token does not allow this
     │    └── NotAllowed                              the record handle does not allow this
     └── NotFound                (also LookupError)   the server has no such space
          ├── UnknownLease                            the leased thing is gone or expired
          ├── RecordNotFound                          no record at that address (any more)
          └── RuleNotFound       (also KeyError)      the space has no rule of that name

Errors about one part of a value carry ``path``: where in the tuple it is, written
like ``[2]["temp"]`` (an empty string is the whole value).

:data:`ERRORS` is the table of the HTTP API's error codes: for each, the status the
server answers and the class a client raises.  The server answers an exception
with the first code of its class (or of the nearest base class in the table); a
code not in the table is raised as :class:`TupleSpaceError`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

__all__ = [
    "ERRORS",
    "CapabilityRevoked",
    "Conflict",
    "ContainmentCycle",
    "EvaluationError",
    "EventsLost",
    "Forbidden",
    "InsufficientCredit",
    "InvalidTemplate",
    "InvalidValue",
    "LimitReached",
    "NotAllowed",
    "NotFound",
    "NotSupported",
    "RecordExists",
    "RecordInUse",
    "RecordNotFound",
    "RuleCycle",
    "RuleExists",
    "RuleNotFound",
    "SpaceClosed",
    "SpaceFull",
    "StoreError",
    "Timeout",
    "TransactionAborted",
    "TransactionError",
    "TupleSpaceError",
    "Unauthorized",
    "UnknownLease",
    "Unreachable",
    "UnsupportedType",
    "ValueTooLarge",
    "WireError",
    "WireCode",
]


class TupleSpaceError(Exception):
    """The root of every error raised by PyTupleSpace.

    ``code`` is its error code of the HTTP API, one that :data:`ERRORS` gives its class:
    the code a server answered, on an exception a client raises; on one a server
    raises, the code it answers with (None: the first of its class).  ``field`` is the
    part of the request at fault, on one a server raises (None: the one its class
    names, if any)."""

    code: str | None = None
    field: str | None = None


class Timeout(TupleSpaceError, TimeoutError):
    """A blocking operation found nothing before its timeout."""


class _PathError(TupleSpaceError):
    """An error about one part of a value, located by ``path``."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class InvalidValue(_PathError, ValueError):
    """A tuple or value that cannot be stored in a space."""


class UnsupportedType(InvalidValue, TypeError):
    """A value of a type that is not one of the wire types."""


class ValueTooLarge(InvalidValue):
    """A value over one of the limits; ``limit`` names it and ``maximum`` is its value."""

    def __init__(self, message: str, path: str = "", *, limit: str, maximum: int) -> None:
        self.limit = limit
        self.maximum = maximum
        super().__init__(message, path)


class InvalidTemplate(_PathError, ValueError):
    """A template, or one of its fields, that cannot be used for matching."""


class WireError(_PathError, ValueError):
    """Text or JSON that is not valid in the wire format."""


class LimitReached(TupleSpaceError):
    """A resource limit of a space is reached; ``limit`` names it.  ``retry_after``:
    the seconds after which asking again may succeed (a rate limit's), if known."""

    def __init__(self, message: str, *, limit: str, maximum: int, retry_after: float | None = None) -> None:
        self.limit = limit
        self.maximum = maximum
        self.retry_after = retry_after
        super().__init__(message)


class SpaceFull(LimitReached):
    """The space holds as many tuples as its capacity allows, and the write could not wait."""


class EventsLost(TupleSpaceError):
    """Events a subscriber asked for are no longer in the event log.

    ``first_missing`` is the sequence number of the first event that cannot be
    delivered; ``oldest_available`` the oldest the log still holds (resume there,
    knowing that the events in between are gone).
    """

    def __init__(self, first_missing: int, oldest_available: int) -> None:
        self.first_missing = first_missing
        self.oldest_available = oldest_available
        super().__init__(
            f"events from {first_missing} to {oldest_available - 1} are no longer in the event log; "
            f"the oldest available is {oldest_available}"
        )


class TransactionError(TupleSpaceError):
    """The transaction cannot be used for this (it has ended, or it belongs to another space)."""


class TransactionAborted(TransactionError):
    """The transaction was aborted: its writes are discarded and its takes put back."""


class StoreError(TupleSpaceError):
    """The durable store cannot be opened (in use, not ours, newer, damaged) or failed."""


class NotSupported(TupleSpaceError, NotImplementedError):
    """The store that keeps the space does not offer this operation (a space kept in
    Redis has no records or credit yet, a partitioned one no transactions); the
    message names the store or the partitioning."""


class SpaceClosed(TupleSpaceError):
    """The space has been closed; no operation is possible any more."""


class Unreachable(TupleSpaceError, ConnectionError):
    """The server of a remote space cannot be reached (refused, broken, no answer in time)."""


class Unauthorized(TupleSpaceError, PermissionError):
    """The server needs a valid token for this: none was given, or it is unknown or revoked."""


class Forbidden(TupleSpaceError, PermissionError):
    """The token is valid but does not allow this on this space."""


class NotFound(TupleSpaceError, LookupError):
    """The server has no such space (or route, claim, lease or token)."""


class UnknownLease(NotFound):
    """The lease refers to something that is no longer there (taken, expired, cancelled)."""


class Conflict(TupleSpaceError):
    """The server has a space (with other options) or a token of that name already."""


class RecordNotFound(NotFound):
    """No record has that path or address: it never existed, was destroyed or expired,
    or its redirection has ended."""


class RecordExists(TupleSpaceError):
    """A record already has the path that a create, clone or move asked for."""


class RecordInUse(TupleSpaceError):
    """The record is contained in other records (``$refcount`` > 0), so it is not
    destroyed unless forced."""


class ContainmentCycle(InvalidValue):
    """Setting the field would make a record contain itself, directly or through others."""


class RuleCycle(InvalidValue):
    """A rule could trigger itself, directly or through other rules; ``cycle`` names
    the rules around the loop, the new one first and last."""

    def __init__(self, message: str, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(message)


class RuleExists(InvalidValue):
    """The space has a rule of that name already: remove it first."""


class RuleNotFound(NotFound, KeyError):
    """The space has no rule of that name."""

    def __str__(self) -> str:  # a message, not the repr of a missing key
        return str(self.args[0]) if self.args else ""


class EvaluationError(TupleSpaceError, ValueError):
    """An expression of a rule or a method failed as it ran (a type mismatch, a
    missing field, a division by zero, an error raised by the method)."""


class NotAllowed(Forbidden):
    """The record handle (a capability) does not grant this operation.

    ``operation`` names it; ``allowed`` is the set of operations the handle grants.
    """

    def __init__(self, message: str, *, operation: str, allowed: frozenset[str]) -> None:
        self.operation = operation
        self.allowed = allowed
        super().__init__(message)


class CapabilityRevoked(Unauthorized):
    """The capability was revoked, or its lease ran out (``expired`` is then True)."""

    def __init__(self, message: str, *, expired: bool) -> None:
        self.expired = expired
        super().__init__(message)


class InsufficientCredit(TupleSpaceError):
    """The principal's account holds less credit than the operation costs; nothing
    was done.  ``needed`` and ``available`` are the amounts (:class:`~tuplespace.Credit`)."""

    def __init__(self, message: str, *, principal: str, needed: Decimal, available: Decimal) -> None:
        self.principal = principal
        self.needed = needed
        self.available = available
        super().__init__(message)


class WireCode(NamedTuple):
    """An error code of the HTTP API: the ``status`` the server answers it with and
    the ``error`` class a client raises for it."""

    code: str
    status: int
    error: type[TupleSpaceError]


#: The error codes of the HTTP API; the first row of a class is the code the server
#: answers for it.  ``events_lost`` travels in an event stream, as ``first_missing``
#: and ``oldest_available``, not as an answer (it decodes to :class:`EventsLost`).
ERRORS: tuple[WireCode, ...] = (
    WireCode("wire_error", 400, WireError),
    WireCode("invalid_value", 400, InvalidValue),
    WireCode("bad_request", 400, InvalidValue),
    WireCode("unsupported_type", 400, UnsupportedType),
    WireCode("invalid_template", 400, InvalidTemplate),
    WireCode("containment_cycle", 400, ContainmentCycle),
    WireCode("evaluation_error", 400, EvaluationError),
    WireCode("unauthorized", 401, Unauthorized),
    WireCode("capability_revoked", 401, CapabilityRevoked),
    WireCode("insufficient_credit", 402, InsufficientCredit),
    WireCode("forbidden", 403, Forbidden),
    WireCode("not_allowed", 403, NotAllowed),
    WireCode("not_found", 404, NotFound),
    WireCode("unknown_claim", 404, NotFound),
    WireCode("unknown_lease", 404, UnknownLease),
    WireCode("record_not_found", 404, RecordNotFound),
    WireCode("rule_not_found", 404, RuleNotFound),
    WireCode("transaction_ended", 409, TransactionError),
    WireCode("transaction_aborted", 409, TransactionAborted),
    WireCode("unknown_transaction", 404, TransactionError),
    WireCode("space_exists", 409, Conflict),
    WireCode("token_exists", 409, Conflict),
    WireCode("real_clock", 409, Conflict),
    WireCode("record_exists", 409, RecordExists),
    WireCode("record_in_use", 409, RecordInUse),
    WireCode("rule_cycle", 409, RuleCycle),
    WireCode("rule_exists", 409, RuleExists),
    WireCode("value_too_large", 413, ValueTooLarge),
    WireCode("limit_reached", 429, LimitReached),
    WireCode("rate_limited", 429, LimitReached),
    WireCode("space_full", 429, SpaceFull),
    WireCode("shutting_down", 503, SpaceClosed),
    WireCode("not_supported", 501, NotSupported),
    WireCode("store_error", 503, StoreError),
)
