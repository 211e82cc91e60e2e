"""The HTTP API as data: the operation table, and the JSON schemas of every request and answer.

:data:`OPERATIONS` names each operation once: its method, its literal path, the
fields of its request with their types and limits (as JSON schemas), and its
answers.  The server's routes, its OpenAPI document (``server/_openapi.py``), the
fields each handler allows, the channel's dispatch and the Python client's
requests are all made from it.  It needs nothing but the wire format's own
modules, so the client imports it without the server's dependencies.

Requests are not validated against these schemas (handlers check them field by
field, with the wire codec); they describe the API for clients and tools, as strictly
as the handlers check it: a request they allow is one the server takes (with the
default limits), which tests/test_openapi.py has schemathesis look for.  Each tagged
value and template field is a component of its own, so code generators make a class
of each.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ._codec import _BASE64_TEXT
from ._credit import MAX_PRINCIPAL
from ._lease import MIN_LEASE
from ._names import MAX_PATH, MAX_SEGMENTS, SEGMENT_PATTERN, TAG_PATTERN
from ._recordstore import COMPUTED_TAGS
from ._templates import FORMAL_TYPES
from ._values import DEFAULT_LIMITS, MAX_INT_BITS

__all__ = [
    "COMPONENTS",
    "ERROR_ANSWERS",
    "MAX_API_FIRINGS",
    "MAX_API_METHOD_LIMITS",
    "MAX_COUNTER",
    "MAX_EVENT_RETENTION_BYTES",
    "OPERATION",
    "OPERATIONS",
    "PERMISSIONS",
    "Operation",
]

Schema = dict[str, Any]

# What a token may do on a space.
PERMISSIONS = ("read", "write", "take", "subscribe", "admin")
# The most a client may ask a space to keep of its events, in bytes.
MAX_EVENT_RETENTION_BYTES = 1 << 30
# The permissions one of which lets a caller begin, commit, abort or renew a transaction
# (each operation in it then needs its own).
_TRANSACTION = ("read", "take", "write")
# The most firings one operation of a served space may set off (each queued one is held).
MAX_API_FIRINGS = 100_000
# The most a method of a served space may run: steps, CPU milliseconds (it holds the
# space's lock meanwhile) and bytes of memory (each call may hold that much).
MAX_API_METHOD_LIMITS = {"method_steps": 10_000_000, "method_ms": 1_000, "method_memory": 16 << 20}


@dataclass(frozen=True)
class Operation:
    """One operation of the HTTP API, served by the handler of its ``name``.

    ``request`` is the OpenAPI of its request (a JSON body, or parameters);
    ``answers`` its answers by status, the first the one of success.  ``fields``
    and ``required`` are the keys its JSON body may and must hold; ``streams``: its
    answer is a stream of events (``text/event-stream``), which only HTTP carries.

    ``needs`` are the permissions (of :data:`PERMISSIONS`) the caller's token must
    grant on the space, every one of them, and ``one_of`` those of which it must
    grant one at least; the server checks them before the operation acts.  An
    operation whose path names no space needs an admin token when ``needs`` holds
    ``"admin"`` (on a server that checks tokens).  A record named by a capability's
    address needs no permission (the capability is one); what depends on the request
    (an admin to name another's account, take for a rule that takes) the handler
    checks besides."""

    name: str
    method: str
    path: str
    summary: str
    request: Schema
    answers: dict[str, Schema]
    needs: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    fields: frozenset[str] = field(init=False)
    required: tuple[str, ...] = field(init=False)
    streams: bool = field(init=False)

    def __post_init__(self) -> None:
        body = self.request.get("requestBody", {}).get("content", {}).get("application/json", {})
        schema = body.get("schema", {})
        object.__setattr__(self, "fields", frozenset(schema.get("properties", ())))
        object.__setattr__(self, "required", tuple(schema.get("required", ())))
        success = next(iter(self.answers.values()))
        object.__setattr__(self, "streams", "text/event-stream" in success.get("content", {}))


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _tagged(tag: str, payload: Schema, description: str | None = None) -> Schema:
    out: Schema = {
        "type": "object",
        "properties": {tag: payload},
        "required": [tag],
        "additionalProperties": False,
    }
    if description is not None:
        out["description"] = description
    return out


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _whole(pattern: re.Pattern[str]) -> str:
    """A pattern of the codec as a JSON Schema ``pattern``, which searches rather than matches."""
    return f"^(?:{pattern.pattern})$"


def _inner(name: str) -> Schema:
    """The recursive component ``name``, from inside itself.

    To a validator ``not: {not: S}`` is S; to a code generator it is an untyped value, so
    that generators that build a component before anything may refer to it (and give up on
    a union that holds itself) still build the nested arrays and objects."""
    return {"not": {"not": ref(name)}}


_PLAIN_KEYS: Schema = {"not": {"pattern": "^\\$"}}

# The most fields of a tuple or map, and items of an array (the server's default limit).
_FIELDS_MAX = DEFAULT_LIMITS.max_fields
# The digits of an int as text: any 308 digits are below 2^1024.
_INT_DIGITS = len(str(2**MAX_INT_BITS)) - 1
# A bare JSON integer: one that fits in 64 bits (larger ones are {"$int": ...}).
_INT: Schema = {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1}

# An instant as RFC 3339 text.  The server also takes 29 February, the years before 1000
# and 9999; the pattern leaves them out so that every text it allows is a valid instant.
_TIME = (
    "^(?:[1-8][0-9]{3}|9(?:[0-8][0-9]{2}|9[0-8][0-9]|99[0-8]))-"
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?"
    "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _digits_at_most(bound: str) -> str:
    """A pattern of the (non-empty) digit strings that, after a decimal point, are at most ``bound``."""
    below = [f"{bound[:i]}[0-{int(d) - 1}][0-9]*" for i, d in enumerate(bound) if d != "0"]
    start = ""  # the beginnings of bound: 7, 79, 797, ...
    for d in reversed(bound):
        start = f"{d}(?:{start})?" if start else d
    return f"(?:{'|'.join([*below, start])})"


# A float as text (the JSON number grammar) that cannot round to infinity: below 1e221 in
# any spelling, and up to the largest double (1.7976931348623157e+308) as d.ddde+NNN.
_FLOAT = (
    "^-?(?:(?:0|[1-9][0-9]{0,20})(?:\\.[0-9]+)?(?:[eE](?:-[0-9]+|\\+?(?:[0-9]{1,2}|1[0-9]{2})))?"
    "|[1-9](?:\\.[0-9]+)?[eE]\\+?(?:2[0-9]{2}|30[0-7])"
    f"|1(?:\\.{_digits_at_most(str(sys.float_info.max)[2:].split('e')[0])})?[eE]\\+?308)$"
)
# An amount of credit as decimal text: at most 40 digits, so at most 40 significant ones.
_DECIMAL = "^[0-9]{1,20}(?:\\.[0-9]{1,20})?$"
# The same, above 0: a digit other than 0 before the point, or after it.
_POSITIVE = "^(?:0{0,19}[1-9][0-9]{0,19}(?:\\.[0-9]{1,20})?|0{1,20}\\.[0-9]{0,19}[1-9][0-9]{0,19})$"
# The name of an account: what a token is named, or another an admin names.
_PRINCIPAL: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_PRINCIPAL}
# A number a request counts with (a record's id, a limit): a JSON integer of at most 63 bits.
MAX_COUNTER = 2**63 - 1
_COUNTER: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_COUNTER}
# A number in a query: at most 18 digits.
_SEQUENCE: Schema = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
_TAG: Schema = {"type": "string", "pattern": _whole(TAG_PATTERN)}
_PATH: Schema = {
    "type": "string",
    "maxLength": MAX_PATH,
    "pattern": f"^{SEGMENT_PATTERN.pattern}(?:/{SEGMENT_PATTERN.pattern}){{0,{MAX_SEGMENTS - 1}}}$",
}
# The address of a record (or a capability): a URI.
_ADDRESS: Schema = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://[^\\x00-\\x20\\x7f]+$"}
_CAPABILITY: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://[^\\x00-\\x20\\x7f]*/\\$cap/[^\\x00-\\x20\\x7f]+$",
}

# The values of the wire format (docs/wire-format.md) that JSON has no type for: each a
# component of its own, which generated clients make a class of.
_TAGGED_VALUES: dict[str, Schema] = {
    "IntValue": _tagged(
        "$int",
        {"type": "string", "pattern": f"^-?[0-9]{{1,{_INT_DIGITS}}}$"},
        "An int of at most 1024 bits (past 2^53 written only so).",
    ),
    "FloatValue": _tagged(
        "$float",
        {"anyOf": [{"type": "string", "pattern": _FLOAT}, {"type": "number"}]},
        "A float (finite).",
    ),
    "BytesValue": _tagged("$bytes", {"type": "string", "pattern": _whole(_BASE64_TEXT)}, "Bytes, in base64."),
    "TimeValue": _tagged("$time", {"type": "string", "pattern": _TIME}, "An instant."),
    "UriValue": _tagged(
        "$uri",
        {"type": "string", "minLength": 1, "maxLength": 8192, "pattern": "^[^\\x00-\\x20\\x7f]+$"},
        "The address of a named tuple or record.",
    ),
    "CreditValue": _tagged("$credit", {"type": "string", "pattern": _DECIMAL}, "An amount of credit."),
}
_SCALARS: list[Schema] = [
    {"type": "null"},
    {"type": "boolean"},
    _INT,
    {"type": "string"},
    *(ref(name) for name in _TAGGED_VALUES),
]


def _maps(name: str, what: str) -> dict[str, Schema]:
    """The components of the maps of ``name``, keys starting with $ or not."""
    return {
        f"Object{name}": {
            "description": f"A map of {what}s (keys not starting with $).",
            "type": "object",
            "propertyNames": _PLAIN_KEYS,
            "maxProperties": _FIELDS_MAX,
            "additionalProperties": ref(name),
        },
        f"Map{name}": _tagged(
            "$map",
            {"type": "object", "maxProperties": _FIELDS_MAX, "additionalProperties": ref(name)},
            f"A map of {what}s, keys of any kind.",
        ),
    }


def _containers(name: str) -> list[Schema]:
    """The arrays and maps of the recursive component ``name``."""
    return [
        {"type": "array", "items": _inner(name), "maxItems": _FIELDS_MAX},
        ref(f"Object{name}"),
        ref(f"Map{name}"),
    ]


def _bounds(kind: Schema) -> Schema:
    """A ``$range`` between two values of one kind, at least one of them given."""
    return {
        "type": "object",
        "properties": {"low": _nullable(kind), "high": _nullable(kind), "include_high": {"type": "boolean"}},
        "additionalProperties": False,
        "anyOf": [
            {"properties": {"low": kind}, "required": ["low"]},
            {"properties": {"high": kind}, "required": ["high"]},
        ],
    }


_LEASE_SECONDS = {"type": "number", "minimum": MIN_LEASE}

# An amount of credit as decimal text or a JSON integer.
_AMOUNTS: list[Schema] = [
    {"type": "string", "pattern": _DECIMAL},
    {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
]

_NUMBER: Schema = {"anyOf": [_INT, ref("IntValue"), ref("FloatValue"), ref("CreditValue")]}

# The template fields that are not values, each a component of its own.
_TEMPLATE_FIELDS: dict[str, Schema] = {
    "AnyField": _tagged("$any", {"type": "boolean", "const": True}, "Every value."),
    "FormalField": _tagged("$formal", {"enum": sorted(FORMAL_TYPES)}, "Every value of the type."),
    "RangeField": _tagged(
        "$range",
        {
            "anyOf": [
                _bounds(_NUMBER),
                _bounds({"type": "string"}),
                _bounds(ref("BytesValue")),
                _bounds(ref("TimeValue")),
            ]
        },
        "The values from low to high (of one kind: numbers, str, bytes or times).",
    ),
    "RegexField": _tagged(
        "$regex",
        {"type": "string", "format": "regex", "maxLength": 4096},
        "The str values the pattern finds.",
    ),
    "PrefixField": _tagged(
        "$prefix",
        {"anyOf": [{"type": "string"}, ref("BytesValue"), ref("UriValue")]},
        "The str, bytes or uri values that start with it.",
    ),
    "OneOfField": _tagged(
        "$oneof",
        {"type": "array", "items": ref("Value"), "minItems": 1, "maxItems": 1024},
        "One of the values.",
    ),
    "XPathField": _tagged(
        "$xpath",
        {"type": "string", "format": "xpath", "minLength": 1, "maxLength": 4096},
        "The XML documents it selects in.",
    ),
}

COMPONENTS: dict[str, Schema] = {
    **_TAGGED_VALUES,
    **_maps("Value", "value"),
    "Value": {
        "description": "A value in the wire format (docs/wire-format.md).",
        "anyOf": [*_SCALARS, *_containers("Value")],
    },
    "Tuple": {
        "description": "A tuple: a JSON array of values.",
        "type": "array",
        "items": ref("Value"),
        "maxItems": _FIELDS_MAX,
    },
    **_TEMPLATE_FIELDS,
    **_maps("TemplateField", "template field"),
    "TemplateField": {
        "description": "A template field (docs/wire-format.md, Templates).",
        "anyOf": [*_SCALARS, *_containers("TemplateField"), *(ref(n) for n in _TEMPLATE_FIELDS)],
    },
    "Template": {
        "description": "A template: a JSON array of template fields.",
        "type": "array",
        "items": ref("TemplateField"),
        "maxItems": _FIELDS_MAX,
    },
    "Lease": {
        "description": "Seconds the tuple stays; null or absent: until it is taken.",
        **_nullable(_LEASE_SECONDS),
    },
    "Timeout": {
        "description": "Seconds to wait; absent or 0: answer at once; null: wait forever (in long polls).",
        **_nullable({"type": "number", "minimum": 0}),
    },
    "Limit": {
        "description": "The most tuples to answer with.",
        **_nullable(_COUNTER),
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
            "capacity": _nullable({**_COUNTER, "minimum": 1}),
            "event_retention": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
            "event_retention_bytes": {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_RETENTION_BYTES},
            "store": {"enum": ["durable", "memory"]},
            "anonymous": ref("Permissions"),
            "clock": {"enum": ["system", "simulated"]},
        },
    },
    "Credit": {
        "description": "An amount of credit: a wire credit, a decimal string or an integer.",
        "anyOf": [
            ref("CreditValue"),
            *_AMOUNTS,
        ],
    },
    "PositiveCredit": {
        "description": "An amount of credit above 0: a wire credit, a decimal string or an integer.",
        "anyOf": [
            _tagged("$credit", {"type": "string", "pattern": _POSITIVE}),
            {"type": "string", "pattern": _POSITIVE},
            {"type": "integer", "minimum": 1, "maximum": 2**64 - 1},
        ],
    },
    "Ref": {
        "description": "A record: its path, its address, or a capability's address.",
        "anyOf": [ref("Path"), _ADDRESS],
    },
    "Path": {
        "description": "A record's path: segments of A-Z a-z 0-9 . _ ~ - joined by /, none starting with .",
        **_PATH,
    },
    "Tag": {"description": "The tag of a record's field.", **_TAG},
    "RecordId": {
        "description": "The record's number (from an answer): the request names that record only.",
        **_COUNTER,
    },
    "RecordTemplate": {
        "description": "A record template: a JSON object from tags to template fields.",
        "type": "object",
        "propertyNames": _TAG,
        "additionalProperties": ref("TemplateField"),
    },
    "RecordData": {
        "type": "object",
        "properties": {
            "address": ref("UriValue"),
            "version": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "fields": ref("Value"),
        },
        "required": ["address", "version", "tags", "fields"],
    },
    "Record": {
        "description": "What a record holds and its computed tags, at one instant.",
        "allOf": [
            ref("RecordData"),
            {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "minimum": 0},
                    "computed": {"type": "object", "additionalProperties": ref("Value")},
                },
                "required": ["computed"],
            },
        ],
    },
    "Handle": {
        "description": "A handle on a record: its address and what it allows.",
        "type": "object",
        "properties": {
            "address": ref("UriValue"),
            "id": {"type": "integer", "minimum": 0},
            "operations": {"type": "array", "items": {"type": "string"}},
            "expires_at": _nullable({"type": "number"}),
        },
        "required": ["address", "operations", "expires_at"],
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


def _body(
    properties: dict[str, Schema],
    required: tuple[str, ...] = (),
    optional: bool = False,
    some_of: tuple[str, ...] = (),
    with_one: tuple[str, str] | None = None,
) -> Schema:
    """A JSON request body; ``some_of``: properties of which at least one is given, not null;
    ``with_one``: a property that goes only with a one-item array of the other."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    if some_of:
        schema["not"] = {"properties": {name: {"type": "null"} for name in some_of}}
    if with_one:
        alone, many = with_one
        schema["dependentSchemas"] = {alone: {"properties": {many: {"maxItems": 1}}, "required": [many]}}
    return {"requestBody": {"required": not optional, "content": {"application/json": {"schema": schema}}}}


def _answer(description: str, schema: Schema | None = None, media: str = "application/json") -> Schema:
    out: Schema = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def _object(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required)}


_MORE = {
    "type": "boolean",
    "const": True,
    "description": "The wait was cut short: ask again for the time left.",
}
_TUPLE_OR_NULL = _nullable(ref("Tuple"))
_FOUND = _object({"tuple": _TUPLE_OR_NULL, "more": _MORE}, ("tuple",))
_CUT = {
    "type": "boolean",
    "const": True,
    "description": "The answer was cut short by a limit of the server (more match), or, with no "
    "tuples, its wait was cut short: ask again (for the time left).",
}
_CURSOR = {
    "type": "string",
    "pattern": "^[0-9]{1,20}$",
    "description": "Where a cut read_all stopped: send it back as cursor to read on (opaque).",
}
_TUPLES = _object({"tuples": {"type": "array", "items": ref("Tuple")}, "more": _CUT}, ("tuples",))
_PAGE = _object(
    {"tuples": {"type": "array", "items": ref("Tuple")}, "more": _CUT, "cursor": _CURSOR}, ("tuples",)
)
_COUNT = _object({"count": {"type": "integer", "minimum": 0}}, ("count",))
_EXPIRES = _object({"expires_at": _nullable({"type": "number"})}, ("expires_at",))
# A balance: any amount of credit, in canonical form (docs/wire-format.md, credit).
_BALANCE = _tagged("$credit", {"type": "string", "pattern": "^[0-9]+(?:\\.[0-9]+)?$", "maxLength": 100})
_CLAIM = _object({"id": {"type": "string"}, "expires_at": {"type": "number"}}, ("id", "expires_at"))

# The answers of errors, every operation's.
ERROR_ANSWERS = {
    status: _answer(text, ref("Error"))
    for status, text in (
        ("400", "The request is malformed; nothing changed."),
        ("401", "No token, or an unknown or revoked one."),
        ("403", "The token lacks the permission, or a web page of another origin sent the request."),
        ("404", "No such space, lease, claim, transaction or token."),
        ("402", "The account cannot pay; nothing was written."),
        ("409", "The transaction has ended, the space exists with other options, or a record is in the way."),
        ("413", "Past a size, count or nesting limit."),
        ("415", "The body was not sent as application/json."),
        ("421", "The Host is not a name this server serves."),
        ("429", "Too many waiting calls, subscriptions or requests, or a full space."),
        ("503", "The server is shutting down, or its store failed."),
    )
}

_WRITE = {"tuple": ref("Tuple"), "lease": ref("Lease")}
_WRITE_MANY = {"tuples": {"type": "array", "items": ref("Tuple")}, "lease": ref("Lease")}
_FIND = {"template": ref("Template"), "timeout": ref("Timeout")}
_ALL = {"template": ref("Template"), "limit": ref("Limit"), "timeout": ref("Timeout")}
# A take under a claim, and the claims of earlier takes it confirms.
_UNCONFIRMED = {"type": "array", "items": {"type": "string"}}
_CLAIMING: dict[str, Any] = {"claim": {"type": "boolean"}, "confirm": _UNCONFIRMED}
_ONLY_TEMPLATE = {"template": ref("Template")}
_LEASE_BODY = {"lease": ref("Lease")}
_NO_BODY: Schema = {}
_AMOUNT: Schema = {"anyOf": _AMOUNTS}
_REF = {"ref": ref("Ref"), "id": ref("RecordId")}
_FIELDS: Schema = {
    "description": "The record's fields: a JSON object from tags to values.",
    "type": "object",
    "propertyNames": _TAG,
    "maxProperties": _FIELDS_MAX,
    "additionalProperties": ref("Value"),
}
_RECORD = _object({"record": ref("Record")}, ("record",))
_PAID = {"credit": ref("Credit"), "lease": ref("Lease"), "principal": _PRINCIPAL}
_WHERE = {
    "template": ref("RecordTemplate"),
    "under": _nullable(
        {"anyOf": [{"const": ""}, {"type": "string", "pattern": _PATH["pattern"][:-1] + "/*$"}]}
    ),
}
_CHANGE_PARAMETERS: list[Schema] = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }
    for name, description, schema in (
        ("under", "Only the records below this path.", {"type": "string"}),
        ("events", "Comma-separated kinds: create, update, move, destroy, expire.", {"type": "string"}),
        ("since", "Resume after this event.", _SEQUENCE),
        ("ref", "Watch this one record (a path, an address or a capability's address).", {"type": "string"}),
        ("id", "The record's number (with a path or address).", _SEQUENCE),
    )
] + [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "description": "Resume after this event.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
    }
]

# -- rules (docs/active.md) -------------------------------------------------------------------------

_TUPLE_EVENTS = ["cancel", "expire", "take", "write"]
_RECORD_EVENTS = ["create", "destroy", "expire", "move", "update"]
_EXPRESSION: Schema = {
    "description": "A CEL expression (docs/active.md, Expressions), or a bare word that names "
    "nothing the rule knows (that word).",
    "type": "string",
    "format": "cel",
    "minLength": 1,
    "maxLength": 4096,
}
_PATH_INNER = _PATH["pattern"][1:-1]
_TARGET: Schema = {
    "description": "A record's field: its path, a dot, its tag.",
    "type": "string",
    "pattern": f"^{_PATH_INNER}\\.{TAG_PATTERN.pattern}$",
}
# What a reaction does: at least one of writing, taking, setting, refreshing, creating and calling.
_DOES: Schema = {
    "anyOf": [
        {"required": ["write"], "properties": {"write": {"minItems": 1}}},
        {"required": ["take"], "properties": {"take": {"minItems": 1}}},
        {"required": ["set"], "properties": {"set": {"minProperties": 1}}},
        {"required": ["refresh"], "properties": {"refresh": {"minProperties": 1}}},
        {"required": ["create"], "properties": {"create": {"minProperties": 1}}},
        {"required": ["call"], "properties": {"call": {"minItems": 1}}},
    ]
}
# A reaction's operations on records.
_RECORD_OPERATIONS: Schema = {
    "refresh": {
        "description": "Records given a new lease: a record's path -> the lease, in seconds (a number, "
        "or an expression giving one).",
        "type": "object",
        "propertyNames": _PATH,
        "additionalProperties": ref("RuleField"),
    },
    "create": {
        "description": "Records created: a path (or an expression giving one) -> the record's fields, "
        "each a constant or an expression.",
        "type": "object",
        "propertyNames": {"anyOf": [_PATH, ref("Expression")]},
        "additionalProperties": {
            "type": "object",
            "propertyNames": _TAG,
            "additionalProperties": ref("RuleField"),
        },
    },
    "call": {
        "description": "Methods called: arrays of a record's path, the tag of its method, the arguments.",
        "type": "array",
        "items": {
            "type": "array",
            "prefixItems": [_PATH, _TAG],
            "items": ref("RuleField"),
            "minItems": 2,
            "maxItems": _FIELDS_MAX,
        },
    },
}


def _on(kinds: list[str]) -> Schema:
    return {"anyOf": [{"enum": kinds}, {"type": "array", "items": {"enum": kinds}, "minItems": 1}]}


def _absent(*keys: str) -> list[Schema]:
    return [{"not": {"required": [key]}} for key in keys]


_REACTION: Schema = {
    "when": _nullable(ref("Expression")),
    "write": {"type": "array", "items": ref("RuleTuple")},
    "take": {"type": "array", "items": ref("RuleTemplate")},
    "set": {
        "type": "object",
        "propertyNames": _TARGET,
        "additionalProperties": ref("Expression"),
    },
    **_RECORD_OPERATIONS,
}
_RULE_BODY: Schema = {
    "type": "object",
    "properties": {
        "name": ref("RuleName"),
        "on": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "template": ref("Template"),
        "path": ref("Path"),
        "tag": _nullable(ref("Tag")),
        "when": _nullable(ref("Expression")),
        "write": {"type": "array"},
        "take": {"type": "array"},
        "set": {"type": ["string", "object"]},
        "refresh": {"type": "object"},
        "create": {"type": "object"},
        "call": {"type": "array"},
        "to": ref("Expression"),
        "using": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": ref("Path"),
        },
        "principal": _PRINCIPAL,
    },
    "required": ["name"],
    "additionalProperties": False,
    "oneOf": [
        {
            "description": "A reaction to the events of tuples matching its template.",
            "properties": {"on": _on(_TUPLE_EVENTS), **_REACTION},
            "required": ["template"],
            "allOf": [*_absent("path", "tag", "to"), _DOES],
        },
        {
            "description": "A reaction to the changes of the record at its path.",
            "properties": {"on": _on(_RECORD_EVENTS), **_REACTION},
            "required": ["path"],
            "allOf": [*_absent("template", "to"), _DOES],
        },
        {
            "description": "A Push Logic rule: the field set is kept the value of to.",
            "properties": {"set": _TARGET},
            "required": ["set", "to"],
            "allOf": _absent(
                "on", "template", "path", "tag", "when", "write", "take", "refresh", "create", "call"
            ),
        },
    ],
}
_RULE_ANSWER = _object({"rule": ref("Rule")}, ("rule",))
_RULE_COMPONENTS: dict[str, Schema] = {
    "Expression": _EXPRESSION,
    "RuleName": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
    "RuleField": {
        "description": "A field of a tuple a rule writes: an expression (a string), or a constant.",
        "anyOf": [
            ref("Expression"),
            *(x for x in _SCALARS if x != {"type": "string"}),
            *_containers("Value"),
        ],
    },
    "RuleTuple": {"type": "array", "items": ref("RuleField"), "maxItems": _FIELDS_MAX},
    "RuleTemplateField": {
        "description": "A field of a template a rule takes with: an expression (a string), "
        "or a template field.",
        "anyOf": [
            ref("Expression"),
            *(x for x in _SCALARS if x != {"type": "string"}),
            *_containers("TemplateField"),
            *(ref(n) for n in _TEMPLATE_FIELDS),
        ],
    },
    "RuleTemplate": {"type": "array", "items": ref("RuleTemplateField"), "maxItems": _FIELDS_MAX},
    "Rule": {
        "description": "A rule: its definition, its level, how often it fired and failed, and its "
        "last failure (an error body, or null).",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["reaction", "record", "push"]},
            "on": {"type": "array", "items": {"type": "string"}},
            "template": _nullable(ref("Template")),
            "path": _nullable({"type": "string"}),
            "tag": _nullable({"type": "string"}),
            "when": _nullable({"type": "string"}),
            "write": {"type": "array", "items": ref("RuleTuple")},
            "take": {"type": "array", "items": ref("RuleTemplate")},
            "set": {
                "anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]
            },
            **_RECORD_OPERATIONS,
            "to": {"type": "string"},
            "using": {"type": "object", "additionalProperties": {"type": "string"}},
            "principal": {"type": "string"},
            "level": {"type": "integer", "minimum": 1},
            "fired": {"type": "integer", "minimum": 0},
            "state": {"enum": ["active", "stopped"]},
            "failed": {"type": "integer", "minimum": 0},
            "last_error": _nullable({"type": "object"}),
        },
        "required": ["name", "kind", "principal", "level", "fired", "failed", "state", "last_error"],
    },
}
COMPONENTS.update(_RULE_COMPONENTS)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "health",
        "GET",
        "/health",
        "Is the server up?",
        _NO_BODY,
        {
            "200": _answer(
                "Up.",
                _object({"status": {"const": "ok"}, "version": {"type": "string"}}, ("status", "version")),
            )
        },
    ),
    Operation(
        "metrics",
        "GET",
        "/metrics",
        "Metrics for Prometheus.",
        _NO_BODY,
        {"200": _answer("Metrics in the Prometheus text format.", {"type": "string"}, "text/plain")},
        needs=("admin",),
    ),
    Operation(
        "list_spaces",
        "GET",
        "/spaces",
        "The spaces the token may read.",
        _NO_BODY,
        {
            "200": _answer(
                "The spaces.", _object({"spaces": {"type": "array", "items": ref("Space")}}, ("spaces",))
            )
        },
    ),
    Operation(
        "put_space",
        "PUT",
        "/spaces/{space}",
        "Create a space (or find it with these options).",
        _body(
            {
                "order": {"enum": ["fifo", "lifo", "random"]},
                "capacity": _nullable({**_COUNTER, "minimum": 1}),
                "event_retention": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                "event_retention_bytes": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_EVENT_RETENTION_BYTES,
                },
                "store": {"enum": ["durable", "memory"]},
                "anonymous": ref("Permissions"),
                "charge_rate": _AMOUNT,
                "creation_charge": _AMOUNT,
                "clock": {"enum": ["system", "simulated"]},
                "operator": {"type": "string", "minLength": 1},
                "mint_amount": _AMOUNT,
                "mint_bits": {"type": "integer", "minimum": 1, "maximum": 64},
                "redirect_charge": _AMOUNT,
                "firing_charge": _AMOUNT,
                "step_charge": _AMOUNT,
                "max_firings": {"type": "integer", "minimum": 1, "maximum": MAX_API_FIRINGS},
                **{
                    key: {"type": "integer", "minimum": 1, "maximum": most}
                    for key, most in MAX_API_METHOD_LIMITS.items()
                },
            },
            optional=True,
        ),
        {
            "200": _answer("The space exists with these options.", ref("Space")),
            "201": _answer("Created.", ref("Space")),
        },
        needs=("admin",),
    ),
    Operation(
        "get_space",
        "GET",
        "/spaces/{space}",
        "A space, its options and statistics.",
        _NO_BODY,
        {"200": _answer("The space.", ref("Space"))},
        needs=("read",),
    ),
    Operation(
        "delete_space",
        "DELETE",
        "/spaces/{space}",
        "Delete a space and its tuples.",
        _NO_BODY,
        {"204": _answer("Deleted.")},
        needs=("admin",),
    ),
    Operation(
        "write",
        "POST",
        "/spaces/{space}/write",
        "Write a tuple.",
        _body({**_WRITE, "timeout": ref("Timeout")}, ("tuple",)),
        {
            "200": _answer(
                "Written (or, with more, not yet: the space is full).",
                _object({"lease": _nullable(ref("LeaseInfo")), "more": _MORE}, ("lease",)),
            )
        },
        needs=("write",),
    ),
    Operation(
        "write_many",
        "POST",
        "/spaces/{space}/write_many",
        "Write several tuples, all or none.",
        _body(_WRITE_MANY, ("tuples",)),
        {
            "200": _answer(
                "Written.", _object({"leases": {"type": "array", "items": ref("LeaseInfo")}}, ("leases",))
            )
        },
        needs=("write",),
    ),
    Operation(
        "read",
        "POST",
        "/spaces/{space}/read",
        "Read a matching tuple (a long poll with a timeout).",
        _body(_FIND, ("template",)),
        {"200": _answer("The tuple, or null.", _FOUND)},
        needs=("read",),
    ),
    Operation(
        "take",
        "POST",
        "/spaces/{space}/take",
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
        needs=("take",),
    ),
    Operation(
        "read_all",
        "POST",
        "/spaces/{space}/read_all",
        "Read every matching tuple (at most limit), an answer at a time: one cut short by "
        "max_results or max_answer gives a cursor to read on from.  With a timeout, a long poll: "
        "waits for a first match when there is none.",
        _body({**_ALL, "cursor": _nullable(_CURSOR)}, ("template",)),
        {"200": _answer("The tuples.", _PAGE)},
        needs=("read",),
    ),
    Operation(
        "take_all",
        "POST",
        "/spaces/{space}/take_all",
        "Take every matching tuple (at most limit), optionally under a claim; an answer cut short "
        "by max_results or max_answer says more: ask again for the rest.  With a timeout, a long "
        "poll: when nothing matches, the first write that brings matches answers with them all.",
        _body({**_ALL, **_CLAIMING}, ("template",)),
        {
            "200": _answer(
                "The tuples.",
                _object(
                    {
                        "tuples": {"type": "array", "items": ref("Tuple")},
                        "claim": _CLAIM,
                        "more": _CUT,
                        "unconfirmed": _UNCONFIRMED,
                    },
                    ("tuples",),
                ),
            )
        },
        needs=("take",),
    ),
    Operation(
        "count",
        "POST",
        "/spaces/{space}/count",
        "Count the matching tuples.",
        _body(_ONLY_TEMPLATE, ("template",)),
        {"200": _answer("The count.", _COUNT)},
        needs=("read",),
    ),
    Operation(
        "replace",
        "POST",
        "/spaces/{space}/replace",
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
        needs=("take", "write"),
    ),
    Operation(
        "write_if_absent",
        "POST",
        "/spaces/{space}/write_if_absent",
        "Write a tuple unless one matches the template, atomically.",
        _body(
            {"template": ref("Template"), "tuple": ref("Tuple"), "lease": ref("Lease")}, ("template", "tuple")
        ),
        {"200": _answer("Whether it was written.", _object({"written": {"type": "boolean"}}, ("written",)))},
        needs=("write",),
    ),
    Operation(
        "confirm_claim",
        "POST",
        "/spaces/{space}/claims/{claim}/confirm",
        "Make a claimed take final.",
        _NO_BODY,
        {"204": _answer("Confirmed.")},
        needs=("take",),
    ),
    Operation(
        "release_claim",
        "POST",
        "/spaces/{space}/claims/{claim}/release",
        "Put a claimed tuple back now.",
        _NO_BODY,
        {"204": _answer("Released.")},
        needs=("take",),
    ),
    Operation(
        "renew_lease",
        "POST",
        "/spaces/{space}/leases/{lease_id}/renew",
        "Renew the lease of a tuple.",
        _body(_LEASE_BODY, optional=True),
        {"200": _answer("The new expiry.", _EXPIRES)},
        needs=("write",),
    ),
    Operation(
        "cancel_lease",
        "DELETE",
        "/spaces/{space}/leases/{lease_id}",
        "Remove a tuple by its lease.",
        _NO_BODY,
        {"204": _answer("Removed.")},
        needs=("write",),
    ),
    Operation(
        "begin_transaction",
        "POST",
        "/spaces/{space}/transactions",
        "Start a transaction.",
        _body(
            {"lease": {**_LEASE_SECONDS, "description": "Seconds until it aborts by itself (default 60)."}},
            optional=True,
        ),
        {
            "200": _answer(
                "The transaction.",
                _object({"id": {"type": "string"}, "expires_at": {"type": "number"}}, ("id", "expires_at")),
            )
        },
        one_of=_TRANSACTION,
    ),
    Operation(
        "tx_write",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/write",
        "Write a tuple at commit.",
        _body(_WRITE, ("tuple",)),
        {"204": _answer("Written at commit.")},
        needs=("write",),
    ),
    Operation(
        "tx_write_many",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/write_many",
        "Write several tuples at commit.",
        _body(_WRITE_MANY, ("tuples",)),
        {"204": _answer("Written at commit.")},
        needs=("write",),
    ),
    Operation(
        "tx_read",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/read",
        "Read in the transaction.",
        _body(_FIND, ("template",)),
        {"200": _answer("The tuple, or null.", _FOUND)},
        needs=("read",),
    ),
    Operation(
        "tx_take",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/take",
        "Take in the transaction.",
        _body(_FIND, ("template",)),
        {"200": _answer("The tuple, or null.", _FOUND)},
        needs=("take",),
    ),
    Operation(
        "tx_read_all",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/read_all",
        "Read all in the transaction.",
        _body(_ALL, ("template",)),
        {"200": _answer("The tuples.", _TUPLES)},
        needs=("read",),
    ),
    Operation(
        "tx_take_all",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/take_all",
        "Take all in the transaction.",
        _body(_ALL, ("template",)),
        {"200": _answer("The tuples.", _TUPLES)},
        needs=("take",),
    ),
    Operation(
        "tx_count",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/count",
        "Count in the transaction.",
        _body(_ONLY_TEMPLATE, ("template",)),
        {"200": _answer("The count.", _COUNT)},
        needs=("read",),
    ),
    Operation(
        "tx_commit",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/commit",
        "Commit.",
        _body({}, optional=True),
        {"204": _answer("Committed.")},
        one_of=_TRANSACTION,
    ),
    Operation(
        "tx_abort",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/abort",
        "Abort.",
        _body({}, optional=True),
        {"204": _answer("Aborted.")},
        one_of=_TRANSACTION,
    ),
    Operation(
        "tx_renew",
        "POST",
        "/spaces/{space}/transactions/{tx_id}/renew",
        "Renew the transaction's lease.",
        _body({"lease": _LEASE_SECONDS}, ("lease",)),
        {"200": _answer("The new expiry.", _object({"expires_at": {"type": "number"}}, ("expires_at",)))},
        one_of=_TRANSACTION,
    ),
    Operation(
        "events",
        "GET",
        "/spaces/{space}/events",
        "The events of matching tuples, as Server-Sent Events.",
        {
            "parameters": [
                {
                    "name": "template",
                    "in": "query",
                    "required": True,
                    "description": 'The template, as JSON; {"$any": true} alone: every tuple.',
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
                    "schema": _SEQUENCE,
                },
                {
                    "name": "existing",
                    "in": "query",
                    "required": False,
                    "description": (
                        "First an event of kind present for every matching tuple already there "
                        "(not with since; not resent when resumed with Last-Event-ID)."
                    ),
                    "schema": {"type": "boolean"},
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
        needs=("subscribe",),
    ),
    Operation(
        "create_record",
        "POST",
        "/spaces/{space}/records/create",
        "Create a record.",
        _body({"path": ref("Path"), "fields": _FIELDS, **_PAID}, ("path", "fields")),
        {"201": _answer("Created.", _RECORD)},
        needs=("write",),
    ),
    Operation(
        "open_record",
        "POST",
        "/spaces/{space}/records/open",
        "Open a record by path, address or capability address.",
        _body(_REF, ("ref",)),
        {"200": _answer("The handle.", _object({"handle": ref("Handle")}, ("handle",)))},
        needs=("read",),
    ),
    Operation(
        "get_record",
        "POST",
        "/spaces/{space}/records/get",
        "Read a record whole, or some of its fields (and computed tags).",
        _body(
            {
                **_REF,
                "tags": {
                    "type": "array",
                    "items": {"anyOf": [ref("Tag"), {"enum": list(COMPUTED_TAGS)}]},
                    "minItems": 1,
                    "maxItems": _FIELDS_MAX,
                },
                "default": ref("Value"),
            },
            ("ref",),
            with_one=("default", "tags"),
        ),
        {
            "200": _answer(
                "The record, or the values of the tags asked for.",
                {
                    "anyOf": [
                        _RECORD,
                        _object({"values": {"type": "array", "items": ref("Value")}}, ("values",)),
                    ]
                },
            )
        },
        needs=("read",),
    ),
    Operation(
        "set_record",
        "POST",
        "/spaces/{space}/records/set",
        "Set one field of a record, atomically.",
        _body({**_REF, "tag": ref("Tag"), "value": ref("Value")}, ("ref", "tag", "value")),
        {
            "200": _answer(
                "The record's new version.", _object({"version": {"type": "integer"}}, ("version",))
            )
        },
        needs=("write",),
    ),
    Operation(
        "call_record",
        "POST",
        "/spaces/{space}/records/call",
        "Run the method a field of a record holds, in the sandbox; the caller's account (or the"
        " principal an admin names) pays for its steps.",
        _body(
            {
                **_REF,
                "tag": ref("Tag"),
                "args": _nullable({"type": "array", "items": ref("Value"), "maxItems": _FIELDS_MAX}),
                "principal": _PRINCIPAL,
            },
            ("ref", "tag"),
        ),
        {"200": _answer("What the method returned.", _object({"value": ref("Value")}, ("value",)))},
        needs=("write",),
    ),
    Operation(
        "refresh_record",
        "POST",
        "/spaces/{space}/records/refresh",
        "Refinance a record: add credit, or give it a lease.",
        _body({**_REF, **_PAID}, ("ref",), some_of=("credit", "lease")),
        {"200": _answer("When it expires now.", _EXPIRES)},
        needs=("write",),
    ),
    Operation(
        "clone_record",
        "POST",
        "/spaces/{space}/records/clone",
        "Copy a record to a new path.",
        _body({**_REF, "path": ref("Path"), **_PAID}, ("ref", "path")),
        {"201": _answer("The copy.", _RECORD)},
        needs=("write",),
    ),
    Operation(
        "move_record",
        "POST",
        "/spaces/{space}/records/move",
        "Give a record a new path; the old one redirects for redirect_lease seconds.",
        _body(
            {**_REF, "path": ref("Path"), "redirect_lease": _nullable({"type": "number", "minimum": 0})},
            ("ref", "path"),
        ),
        {
            "200": _answer(
                "The record's new address and version.",
                _object(
                    {"address": ref("UriValue"), "version": {"type": "integer"}},
                    ("address", "version"),
                ),
            )
        },
        needs=("write",),
    ),
    Operation(
        "destroy_record",
        "POST",
        "/spaces/{space}/records/destroy",
        "Destroy a record.",
        _body({**_REF, "force": {"type": "boolean"}}, ("ref",)),
        {"204": _answer("Destroyed.")},
        needs=("write",),
    ),
    Operation(
        "make_capability",
        "POST",
        "/spaces/{space}/records/capability",
        "Make a capability: an address that allows some operations on the record.",
        _body(
            {
                **_REF,
                "operations": {
                    "type": "array",
                    "items": {"enum": ["read", "set", "refresh", "clone", "destroy", "watch"]},
                    "minItems": 1,
                },
                "lease": ref("Lease"),
            },
            ("ref", "operations"),
        ),
        {"201": _answer("The capability.", ref("Handle"))},
        needs=("write",),
    ),
    Operation(
        "read_only_record",
        "POST",
        "/spaces/{space}/records/read_only",
        "The record's read-only capability ($RO).",
        _body(_REF, ("ref",)),
        {"200": _answer("The capability.", ref("Handle"))},
        needs=("write",),
    ),
    Operation(
        "revoke_capability",
        "POST",
        "/spaces/{space}/records/revoke",
        "Revoke a capability.",
        _body({"ref": {"description": "The capability's address.", **_CAPABILITY}}, ("ref",)),
        {"204": _answer("Revoked.")},
        needs=("write",),
    ),
    Operation(
        "find_records",
        "POST",
        "/spaces/{space}/records/find",
        "The records matching a template (oldest first).",
        _body({**_WHERE, "limit": ref("Limit")}, ("template",)),
        {
            "200": _answer(
                "The records.",
                _object({"records": {"type": "array", "items": ref("Record")}, "more": _CUT}, ("records",)),
            )
        },
        needs=("read",),
    ),
    Operation(
        "take_record",
        "POST",
        "/spaces/{space}/records/take",
        "Take the oldest matching record (a long poll with a timeout), optionally under a claim.",
        _body({**_WHERE, "timeout": ref("Timeout"), **_CLAIMING}, ("template",)),
        {
            "200": _answer(
                "What the record held, or null.",
                _object(
                    {
                        "record": _nullable(ref("RecordData")),
                        "claim": _CLAIM,
                        "more": _MORE,
                        "unconfirmed": _UNCONFIRMED,
                    },
                    ("record",),
                ),
            )
        },
        needs=("take",),
    ),
    Operation(
        "record_events",
        "GET",
        "/spaces/{space}/records/events",
        "The changes of records, as Server-Sent Events.",
        {"parameters": _CHANGE_PARAMETERS},
        {"200": _answer("A stream of changes.", {"type": "string"}, "text/event-stream")},
        needs=("subscribe",),
    ),
    Operation(
        "grant_credit",
        "POST",
        "/spaces/{space}/credit/grant",
        "Add credit to an account.",
        _body(
            {"principal": _PRINCIPAL, "amount": ref("Credit")},
            ("principal", "amount"),
        ),
        {
            "200": _answer(
                "The new balance.",
                _object(
                    {"principal": {"type": "string"}, "balance": _BALANCE},
                    ("principal", "balance"),
                ),
            )
        },
        needs=("admin",),
    ),
    Operation(
        "transfer_credit",
        "POST",
        "/spaces/{space}/credit/transfer",
        "Move credit from the caller's account (or, for an admin, the principal's) to another.",
        _body(
            {
                "principal": _PRINCIPAL,
                "to": _PRINCIPAL,
                "amount": ref("PositiveCredit"),
            },
            ("to", "amount"),
        ),
        {
            "200": _answer(
                "The new balance of the account the credit left.",
                _object(
                    {"principal": {"type": "string"}, "balance": _BALANCE},
                    ("principal", "balance"),
                ),
            )
        },
    ),
    Operation(
        "credit_challenge",
        "POST",
        "/spaces/{space}/credit/challenge",
        "The challenge to make proof-of-work stamps on (docs/active.md, Minting).",
        _NO_BODY,
        {
            "200": _answer(
                "The challenge, the zero bits a stamp needs, what it mints and until when it is accepted.",
                _object(
                    {
                        "challenge": {"type": "string"},
                        "bits": {"type": "integer", "minimum": 1, "maximum": 64},
                        "amount": _BALANCE,
                        "expires": {"type": "number"},
                    },
                    ("challenge", "bits", "amount", "expires"),
                ),
            )
        },
    ),
    Operation(
        "mint_credit",
        "POST",
        "/spaces/{space}/credit/mint",
        "Mint credit into the caller's account (or, for an admin, the principal's) for a stamp.",
        _body(
            {
                "principal": _PRINCIPAL,
                "challenge": {"type": "string", "minLength": 1},
                "nonce": {"type": "string", "minLength": 1, "maxLength": 64},
            },
            ("challenge", "nonce"),
        ),
        {
            "200": _answer(
                "The new balance.",
                _object(
                    {"principal": {"type": "string"}, "balance": _BALANCE},
                    ("principal", "balance"),
                ),
            )
        },
    ),
    Operation(
        "get_account",
        "GET",
        "/spaces/{space}/credit/{principal}",
        "The credit in an account.",
        _NO_BODY,
        {
            "200": _answer(
                "The balance.",
                _object(
                    {"principal": {"type": "string"}, "balance": _BALANCE},
                    ("principal", "balance"),
                ),
            )
        },
    ),
    Operation(
        "list_rules",
        "GET",
        "/spaces/{space}/rules",
        "The space's rules, by level, then by name.",
        _NO_BODY,
        {
            "200": _answer(
                "The rules.", _object({"rules": {"type": "array", "items": ref("Rule")}}, ("rules",))
            )
        },
        needs=("read",),
    ),
    Operation(
        "add_rule",
        "POST",
        "/spaces/{space}/rules",
        "Add a rule (docs/active.md); 409 rule_cycle if it could trigger itself, naming the cycle.",
        {"requestBody": {"required": True, "content": {"application/json": {"schema": _RULE_BODY}}}},
        {"201": _answer("The rule added.", _RULE_ANSWER)},
        needs=("write",),
    ),
    Operation(
        "get_rule",
        "GET",
        "/spaces/{space}/rules/{name}",
        "A rule of the space.",
        _NO_BODY,
        {"200": _answer("The rule.", _RULE_ANSWER)},
        needs=("read",),
    ),
    Operation(
        "remove_rule",
        "DELETE",
        "/spaces/{space}/rules/{name}",
        "Remove a rule of the space.",
        _NO_BODY,
        {"204": _answer("Removed.")},
        needs=("write",),
    ),
    Operation(
        "get_clock",
        "GET",
        "/spaces/{space}/clock",
        "The space's time, and whether its clock is simulated.",
        _NO_BODY,
        {
            "200": _answer(
                "The time.",
                _object({"now": {"type": "number"}, "simulated": {"type": "boolean"}}, ("now", "simulated")),
            )
        },
        needs=("read",),
    ),
    Operation(
        "advance_clock",
        "POST",
        "/spaces/{space}/clock",
        "Move a simulated clock forward (admin); 409 real_clock for a space on the system clock.",
        _body({"advance": {"type": "number", "exclusiveMinimum": 0, "maximum": 3.15e9}}, ("advance",)),
        {"200": _answer("The new time.", _object({"now": {"type": "number"}}, ("now",)))},
        needs=("admin",),
    ),
    Operation(
        "list_tokens",
        "GET",
        "/tokens",
        "The tokens (without their secrets).",
        _NO_BODY,
        {
            "200": _answer(
                "The tokens.", _object({"tokens": {"type": "array", "items": ref("TokenGrant")}}, ("tokens",))
            )
        },
        needs=("admin",),
    ),
    Operation(
        "create_token",
        "POST",
        "/tokens",
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
        needs=("admin",),
    ),
    Operation(
        "revoke_token",
        "DELETE",
        "/tokens/{name}",
        "Revoke a token, at once.",
        _NO_BODY,
        {"204": _answer("Revoked.")},
        needs=("admin",),
    ),
)


# The operations by name.
OPERATION: dict[str, Operation] = {op.name: op for op in OPERATIONS}
