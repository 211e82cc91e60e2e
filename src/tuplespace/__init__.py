"""PyTupleSpace: a tuple space for Python.

Threads, coroutines and processes coordinate through a space: they write tuples
into it and read or take them back by pattern, without knowing of each other.

>>> import tuplespace as ts
>>> space = ts.Space()
>>> lease = space.write(("job", 1, "resize"))
>>> space.take(("job", int, str))
('job', 1, 'resize')
"""

import importlib as _importlib
import typing as _typing

from ._aio import AsyncRecord, AsyncRecordWatch, AsyncRules, AsyncSpace, AsyncSubscription, AsyncTransaction
from ._clock import Clock, SimulatedClock, SystemClock
from ._codec import (
    decode,
    decode_template,
    encode,
    encode_template,
    from_wire,
    template_from_wire,
    template_to_wire,
    to_wire,
)
from ._connect import connect, connect_async, connect_server, connect_server_async
from ._errors import (
    CapabilityRevoked,
    Conflict,
    ContainmentCycle,
    EvaluationError,
    EventsLost,
    Forbidden,
    InsufficientCredit,
    InvalidTemplate,
    InvalidValue,
    LimitReached,
    NotAllowed,
    NotFound,
    NotSupported,
    RecordExists,
    RecordInUse,
    RecordNotFound,
    RuleCycle,
    RuleExists,
    RuleNotFound,
    SpaceClosed,
    SpaceFull,
    StoreError,
    Timeout,
    TransactionAborted,
    TransactionError,
    TupleSpaceError,
    Unauthorized,
    UnknownLease,
    Unreachable,
    UnsupportedType,
    ValueTooLarge,
    WireError,
)
from ._events import Change, Event
from ._lease import AsyncLease, Lease
from ._methods import ActiveLimits, Method
from ._mint import Challenge, make_stamp
from ._recordhandles import Record, RecordData, RecordWatch
from ._rules import Lit, RuleInfo, Rules
from ._space import Space, Subscription, Transaction
from ._templates import ANY, OneOf, Pred, Prefix, Range, RecordTemplate, Regex, Template, XPath
from ._text import format, parse, parse_template
from ._upcall import AsyncUpcall, Upcall
from ._values import URI, Credit, Limits, Map
from ._workers import AsyncCleaner, AsyncWorker, Cleaner, Worker, WorkerPool

if _typing.TYPE_CHECKING:
    from ._federation import Node, RemoteRecord, RemoteUpcall, decode_cbor, encode_cbor
    from ._protocols import (
        AsyncLeaseAPI,
        AsyncRecordAPI,
        AsyncRecordWatchAPI,
        AsyncRulesAPI,
        AsyncSpaceAPI,
        AsyncSubscriptionAPI,
        AsyncTransactionAPI,
        AsyncTupleSpaceAPI,
        LeaseAPI,
        RecordAPI,
        RecordWatchAPI,
        RulesAPI,
        SpaceAPI,
        SubscriptionAPI,
        TransactionAPI,
        TupleSpaceAPI,
    )

__all__ = [
    "ANY",
    "ActiveLimits",
    "AsyncCleaner",
    "AsyncLease",
    "AsyncLeaseAPI",
    "AsyncRecord",
    "AsyncRecordAPI",
    "AsyncRecordWatch",
    "AsyncRecordWatchAPI",
    "AsyncRules",
    "AsyncRulesAPI",
    "AsyncSpace",
    "AsyncSpaceAPI",
    "AsyncSubscription",
    "AsyncSubscriptionAPI",
    "AsyncTransaction",
    "AsyncTransactionAPI",
    "AsyncTupleSpaceAPI",
    "AsyncUpcall",
    "AsyncWorker",
    "CapabilityRevoked",
    "Challenge",
    "Change",
    "Cleaner",
    "Clock",
    "Conflict",
    "ContainmentCycle",
    "Credit",
    "EvaluationError",
    "Event",
    "EventsLost",
    "Forbidden",
    "InsufficientCredit",
    "InvalidTemplate",
    "InvalidValue",
    "Lease",
    "LeaseAPI",
    "LimitReached",
    "Limits",
    "Lit",
    "Map",
    "Method",
    "Node",
    "NotAllowed",
    "NotFound",
    "NotSupported",
    "OneOf",
    "Pred",
    "Prefix",
    "Range",
    "Record",
    "RecordAPI",
    "RecordData",
    "RecordExists",
    "RecordInUse",
    "RecordNotFound",
    "RecordTemplate",
    "RecordWatch",
    "RecordWatchAPI",
    "Regex",
    "RemoteRecord",
    "RemoteUpcall",
    "RuleCycle",
    "RuleExists",
    "RuleNotFound",
    "RuleInfo",
    "Rules",
    "RulesAPI",
    "SimulatedClock",
    "Space",
    "SpaceAPI",
    "SpaceClosed",
    "SpaceFull",
    "StoreError",
    "Subscription",
    "SubscriptionAPI",
    "SystemClock",
    "Template",
    "Timeout",
    "Transaction",
    "TransactionAPI",
    "TransactionAborted",
    "TransactionError",
    "TupleSpaceAPI",
    "TupleSpaceError",
    "URI",
    "Unauthorized",
    "UnknownLease",
    "Unreachable",
    "UnsupportedType",
    "Upcall",
    "ValueTooLarge",
    "WireError",
    "Worker",
    "WorkerPool",
    "XPath",
    "connect",
    "connect_async",
    "connect_server",
    "connect_server_async",
    "decode",
    "decode_cbor",
    "decode_template",
    "encode",
    "encode_cbor",
    "encode_template",
    "format",
    "from_wire",
    "make_stamp",
    "parse",
    "parse_template",
    "template_from_wire",
    "template_to_wire",
    "to_wire",
]

__version__ = "0.1.0"

# What an embedded space does not use is imported when first named, and ``import
# tuplespace`` stays as light as the space: a node of the federation (CoAP), and the
# protocols that type a space whatever its kind.
_LAZY: _typing.Final = {
    **dict.fromkeys(("Node", "RemoteRecord", "RemoteUpcall", "decode_cbor", "encode_cbor"), "_federation"),
    **dict.fromkeys(
        (
            "AsyncLeaseAPI",
            "AsyncRecordAPI",
            "AsyncRecordWatchAPI",
            "AsyncRulesAPI",
            "AsyncSpaceAPI",
            "AsyncSubscriptionAPI",
            "AsyncTransactionAPI",
            "AsyncTupleSpaceAPI",
            "LeaseAPI",
            "RecordAPI",
            "RecordWatchAPI",
            "RulesAPI",
            "SpaceAPI",
            "SubscriptionAPI",
            "TransactionAPI",
            "TupleSpaceAPI",
        ),
        "_protocols",
    ),
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tuplespace' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
