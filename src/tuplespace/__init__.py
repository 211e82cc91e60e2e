"""PyTupleSpace: a tuple space for Python.

Threads, coroutines and processes coordinate through a space: they write tuples
into it and read or take them back by pattern, without knowing of each other.

>>> import tuplespace as ts
>>> space = ts.Space()
>>> lease = space.write(("job", 1, "resize"))
>>> space.take(("job", int, str))
('job', 1, 'resize')
"""

from ._aio import AsyncRecord, AsyncRecordWatch, AsyncSpace, AsyncSubscription, AsyncTransaction
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
    RecordExists,
    RecordInUse,
    RecordNotFound,
    RuleCycle,
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
from ._federation import Node, RemoteRecord, RemoteUpcall, decode_cbor, encode_cbor
from ._lease import AsyncLease, Lease
from ._methods import ActiveLimits, Method
from ._record import Record, RecordData, RecordWatch
from ._rules import Lit, RuleInfo, Rules
from ._space import Space, Subscription, Transaction
from ._templates import ANY, OneOf, Pred, Prefix, Range, RecordTemplate, Regex, Template, XPath
from ._text import format, parse, parse_template
from ._upcall import AsyncUpcall, Upcall
from ._values import URI, Credit, Limits, Map
from ._workers import AsyncCleaner, AsyncWorker, Cleaner, Worker, WorkerPool

__all__ = [
    "ANY",
    "ActiveLimits",
    "AsyncCleaner",
    "AsyncLease",
    "AsyncRecord",
    "AsyncRecordWatch",
    "AsyncSpace",
    "AsyncSubscription",
    "AsyncTransaction",
    "AsyncUpcall",
    "AsyncWorker",
    "CapabilityRevoked",
    "Conflict",
    "Change",
    "Cleaner",
    "Clock",
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
    "LimitReached",
    "Limits",
    "Lit",
    "Map",
    "Method",
    "Node",
    "NotAllowed",
    "NotFound",
    "OneOf",
    "Pred",
    "Prefix",
    "Range",
    "Record",
    "RecordData",
    "RecordExists",
    "RecordInUse",
    "RecordNotFound",
    "RecordTemplate",
    "RecordWatch",
    "Regex",
    "RemoteRecord",
    "RemoteUpcall",
    "RuleCycle",
    "RuleInfo",
    "Rules",
    "SimulatedClock",
    "Space",
    "SpaceClosed",
    "SpaceFull",
    "StoreError",
    "Subscription",
    "SystemClock",
    "Template",
    "Timeout",
    "Transaction",
    "TransactionAborted",
    "TransactionError",
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
    "parse",
    "parse_template",
    "template_from_wire",
    "template_to_wire",
    "to_wire",
]

__version__ = "0.1.0"
