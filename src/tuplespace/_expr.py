"""Expressions of rules: a subset of CEL compiled to Python closures.

Rules compute conditions and values from events with expressions in the syntax of
CEL (the Common Expression Language): no loops, no assignment, no access to
anything but the names a rule gives them, so every evaluation ends after a number
of steps bounded by the length of its text.  ``docs/active.md`` explains the
choice (the CEL libraries measured) and lists what is supported::

    t[2] > 30.0 && t[1] in ["kitchen", "hall"]
    kitchen.temp >= 19.0 && kitchen.temp <= 23.0
    t[2] - 30.0
    size(t[1]) > 3 ? t[1] : "short"

An expression is compiled once (:func:`compile_expr`, which raises
:class:`~tuplespace.InvalidValue` naming the offset of a syntax error) into a
function of a dict of names; evaluating it raises :class:`~tuplespace.EvaluationError`
for a type mismatch, a missing key or index, a division by zero or an int past 64
bits.  Values are those of the space: ``==`` is its typed equality (``1 == 1.0``
is false), ints and doubles are ordered together, and arithmetic needs operands of
one type, as in CEL.  An error shows the values it names abbreviated (:mod:`reprlib`),
so its message stays short whatever the event held.
"""

from __future__ import annotations

import datetime as _dt
import functools
import operator
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._errors import EvaluationError, InvalidValue, ValueTooLarge
from ._values import URI, Credit, Map, Value, value_key

__all__ = ["MAX_BUILT", "Expr", "compile_expr"]

Env = Mapping[str, Any]
Code = Callable[[Env], Any]

_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 63) - 1
_MAX_SOURCE: Final = 4096
#: The most characters, bytes or items of a string, bytes or list that ``+`` builds:
#: without it, an expression of a few thousand characters adding a large field to
#: itself would build gigabytes, quadratically, under the space's lock.
MAX_BUILT: Final = 1 << 20

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<float>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
    | (?P<int>0x[0-9a-fA-F]+|\d+)
    | (?P<bytes>[bB](?P<bq>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
    | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])
    )""",
    re.VERBOSE,
)
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _type(v: object) -> str:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "double"
    if t is str:
        return "string"
    if t is bytes:
        return "bytes"
    if v is None:
        return "null"
    if t is tuple or t is list:
        return "list"
    if isinstance(v, Mapping):
        return "map"
    if t is URI:
        return "uri"
    if t is Credit:
        return "credit"
    if isinstance(v, _dt.datetime):
        return "timestamp"
    return t.__name__


def _int(v: int) -> int:
    if not _INT_MIN <= v <= _INT_MAX:
        raise EvaluationError("int overflow: the result is past 64 bits")
    return v


def _same(op: str, a: object, b: object) -> str:
    ta, tb = _type(a), _type(b)
    if ta != tb:
        raise EvaluationError(f"no such overload: {ta} {op} {tb}")
    return ta


_UNITS: Final = {"string": "characters", "bytes": "bytes", "list": "items"}


def _add(a: Any, b: Any) -> Any:
    if type(a) is float and type(b) is float:  # the common case
        return a + b
    t = _same("+", a, b)
    if t == "int":
        return _int(a + b)
    if t == "double":
        return a + b
    if t in ("string", "bytes", "list"):
        n = len(a) + len(b)
        if n > MAX_BUILT:
            raise ValueTooLarge(
                f"{t} + {t} would build a {t} of {n} {_UNITS[t]}, more than {MAX_BUILT}",
                limit="max_built",
                maximum=MAX_BUILT,
            )
        return (*a, *b) if t == "list" else a + b
    raise EvaluationError(f"no such overload: {t} + {t}")


def _arith(op: str) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if type(a) is float and type(b) is float and op != "/" and op != "%":  # the common case
            return a - b if op == "-" else a * b
        t = _same(op, a, b)
        if t == "double":
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                if b == 0:
                    raise EvaluationError("division by zero")
                return a / b
        elif t == "int":
            if op == "-":
                return _int(a - b)
            if op == "*":
                return _int(a * b)
            if b == 0:
                raise EvaluationError("division by zero" if op == "/" else "modulus by zero")
            q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)  # truncated, as in CEL
            return _int(q) if op == "/" else a - q * b
        raise EvaluationError(f"no such overload: {t} {op} {t}")

    return run


_ORDERED: Final = frozenset({"int", "double", "string", "bytes", "bool", "timestamp", "credit"})


_NUMBERS: Final = (int, float)
_COMPARE: Final = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _order(op: str) -> Callable[[Any, Any], bool]:
    compare = _COMPARE[op]

    def run(a: Any, b: Any) -> bool:
        if type(a) not in _NUMBERS or type(b) not in _NUMBERS:  # numbers: the common case
            ta, tb = _type(a), _type(b)
            if not (ta == tb and ta in _ORDERED):
                raise EvaluationError(f"no such overload: {ta} {op} {tb}")
        return bool(compare(a, b))

    return run


def _equal(a: Any, b: Any) -> bool:
    return bool(value_key(a) == value_key(b))


def _in(a: Any, b: Any) -> bool:
    tb = _type(b)
    if tb == "list":
        key = value_key(a)
        return any(value_key(x) == key for x in b)
    if tb == "map":
        return a in b
    raise EvaluationError(f"no such overload: {_type(a)} in {tb}")


_BINARY: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": _add,
    "-": _arith("-"),
    "*": _arith("*"),
    "/": _arith("/"),
    "%": _arith("%"),
    "<": _order("<"),
    "<=": _order("<="),
    ">": _order(">"),
    ">=": _order(">="),
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "in": _in,
}
_FLOAT_OPS: Final = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_LEVELS: Final = (
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"==", "!=", "<", "<=", ">", ">=", "in"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
)


def _size(v: Any) -> int:
    if _type(v) not in ("string", "bytes", "list", "map"):
        raise EvaluationError(f"no such overload: size({_type(v)})")
    return len(v)


def _to_int(v: Any) -> int:
    t = _type(v)
    if t == "int":
        return int(v)
    if t == "double":
        if v != v or not _INT_MIN <= v <= _INT_MAX:
            raise EvaluationError(f"int({reprlib.repr(v)}): out of range")
        return int(v)
    if t == "string":
        try:
            return _int(int(v, 10))
        except ValueError:
            raise EvaluationError(f"int({reprlib.repr(v)}): not an int") from None
    raise EvaluationError(f"no such overload: int({t})")


def _to_double(v: Any) -> float:
    t = _type(v)
    if t in ("int", "double"):
        return float(v)
    if t == "string":
        try:
            return float(v)
        except ValueError:
            raise EvaluationError(f"double({reprlib.repr(v)}): not a number") from None
    raise EvaluationError(f"no such overload: double({t})")


def _to_string(v: Any) -> str:
    t = _type(v)
    if t in ("string", "int", "double", "bool", "uri", "credit"):
        return str(v).lower() if t == "bool" else str(v)
    raise EvaluationError(f"no such overload: string({t})")


_FUNCTIONS: Final[dict[str, Callable[[Any], Any]]] = {
    "size": _size,
    "int": _to_int,
    "double": _to_double,
    "string": _to_string,
}


def _string_method(name: str) -> Callable[[Any, Any], bool]:
    def run(s: Any, x: Any) -> bool:
        _same(f".{name}()", s, x)
        if _type(s) != "string":
            raise EvaluationError(f"no such overload: {_type(s)}.{name}()")
        if name == "startsWith":
            return bool(s.startswith(x))
        if name == "endsWith":
            return bool(s.endswith(x))
        return x in s

    return run


_METHODS: Final = {n: _string_method(n) for n in ("startsWith", "endsWith", "contains")}


def _index(v: Any, k: Any) -> Any:
    tv = _type(v)
    if tv == "list":
        if type(k) is not int:
            raise EvaluationError(f"no such overload: list[{_type(k)}]")
        if not 0 <= k < len(v):
            raise EvaluationError(f"index {k} out of range for a list of {len(v)}")
        return v[k]
    if tv == "map":
        if type(k) is not str:
            raise EvaluationError(f"no such overload: map[{_type(k)}]")
        if k not in v:
            raise EvaluationError(f"no such key: {reprlib.repr(k)}")
        return v[k]
    raise EvaluationError(f"no such overload: {tv}[{_type(k)}]")


def _at(code: Code, k: int) -> Code:
    def run(env: Env) -> Any:
        v = code(env)
        if type(v) is tuple and k < len(v):
            return v[k]
        return _index(v, k)

    return run


def _at_name(name: str, k: int) -> Code:
    """``name[k]``: the name's lookup and the index in one step (``t[2]``)."""

    def run(env: Env) -> Any:
        v = env[name]
        if type(v) is tuple and k < len(v):
            return v[k]
        return _index(v, k)

    return run


def _at_name_with_constant(name: str, k: int, op: str, c: Any) -> Code:
    """``name[k] op c`` in one step (``t[2] > 30.0``) when ``name[k]`` is a number, else
    as :func:`_with_constant` does it."""
    general = _with_constant(op, _at_name(name, k), c)
    compare = _COMPARE.get(op)
    if compare is not None and type(c) in _NUMBERS:

        def ordered(env: Env) -> Any:
            v = env[name]
            if type(v) is tuple and k < len(v):
                a = v[k]
                if type(a) is float or type(a) is int:
                    return compare(a, c)
            return general(env)

        return ordered
    inline = _FLOAT_OPS.get(op)
    if inline is not None and type(c) is float:

        def arith(env: Env) -> Any:
            v = env[name]
            if type(v) is tuple and k < len(v):
                a = v[k]
                if type(a) is float:
                    return inline(a, c)
            return general(env)

        return arith
    return general


def _with_constant(op: str, left: Code, c: Any) -> Code:
    """``left op c`` for a constant ``c``, with the common case of numbers inline
    (``t[2] > 30.0``, ``t[2] - 30.0``); every other case as ``_BINARY[op]`` does it."""
    f = _BINARY[op]
    compare = _COMPARE.get(op)
    if compare is not None and type(c) in _NUMBERS:

        def ordered(env: Env) -> Any:
            a = left(env)
            if type(a) is float or type(a) is int:
                return compare(a, c)
            return f(a, c)

        return ordered
    inline = _FLOAT_OPS.get(op)
    if inline is not None and type(c) is float:

        def arith(env: Env) -> Any:
            a = left(env)
            if type(a) is float:
                return inline(a, c)
            return f(a, c)

        return arith
    return lambda env: f(left(env), c)


def _bool(v: Any, what: str) -> bool:
    if type(v) is not bool:
        raise EvaluationError(f"{what} needs a bool, got {_type(v)}")
    return v


class _Parser:
    """A recursive-descent parser that builds closures as it goes."""

    def __init__(self, source: str, names: frozenset[str] | None) -> None:
        self.names = names
        self.tokens: list[tuple[str, str, int]] = []
        self.used: set[str] = set()
        # The closures of constants, with their values, and of bare names, with the
        # name: the operations on them are compiled into one step.
        self.constants: dict[Code, Any] = {}
        self.bare: dict[Code, str] = {}
        self.indexed: dict[Code, tuple[str, int]] = {}  # name[k] codes: (name, k)
        self.selects: set[tuple[str, str]] = set()
        pos = 0
        source = source.rstrip()
        while pos < len(source):
            m = _TOKEN.match(source, pos)
            if m is None or m.end() == pos:
                raise self.error(f"unexpected character {source[pos]!r}", pos)
            kind = m.lastgroup
            assert kind is not None
            text = m.group("bq") if kind == "bytes" else m.group(kind)
            self.tokens.append((kind, text, m.start(kind)))
            pos = m.end()
        self.tokens.append(("end", "", len(source)))
        self.i = 0

    def error(self, message: str, offset: int) -> InvalidValue:
        return InvalidValue(f"{message} at offset {offset}")  # compile_expr names the field

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        if text is not None and (tok[0] not in ("op", "name") or tok[1] != text):
            raise self.error(f"expected {text!r}, found {tok[1] or 'the end'!r}", tok[2])
        self.i += 1
        return tok

    def at(self, text: str) -> bool:
        kind, value, _ = self.tokens[self.i]
        return kind in ("op", "name") and value == text

    def at_one_of(self, texts: frozenset[str]) -> bool:
        kind, value, _ = self.tokens[self.i]
        return kind in ("op", "name") and value in texts

    def parse(self) -> Code:
        code = self.expr()
        kind, value, offset = self.peek()
        if kind != "end":
            raise self.error(f"unexpected {value!r}", offset)
        return code

    def expr(self) -> Code:
        cond = self.binary(0)
        if not self.at("?"):
            return cond
        self.take("?")
        yes = self.expr()
        self.take(":")
        no = self.expr()
        return lambda env: yes(env) if _bool(cond(env), "?:") else no(env)

    def binary(self, level: int) -> Code:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at_one_of(_LEVELS[level]):
            op = self.take()[1]
            right = self.binary(level + 1)
            if right in self.constants and op in _BINARY:
                c = self.constants[right]
                at = self.indexed.get(left)
                left = _with_constant(op, left, c) if at is None else _at_name_with_constant(*at, op, c)
            else:
                left = self.combine(op, left, right)
        return left

    @staticmethod
    def combine(op: str, left: Code, right: Code) -> Code:
        if op == "&&":
            return lambda env: _bool(left(env), "&&") and _bool(right(env), "&&")
        if op == "||":
            return lambda env: _bool(left(env), "||") or _bool(right(env), "||")
        f = _BINARY[op]
        return lambda env: f(left(env), right(env))

    def unary(self) -> Code:
        if self.at("!"):
            self.take()
            inner = self.unary()
            return lambda env: not _bool(inner(env), "!")
        if self.at("-"):
            self.take()
            kind, value, _ = self.peek()
            if kind in ("int", "float"):  # a negative literal: -9223372036854775808 fits
                self.take()
                literal = -(int(value, 0) if kind == "int" else float(value))
                return self.member(self.constant(literal))
            inner = self.unary()
            return lambda env: _arith("-")(0 if type(v := inner(env)) is int else 0.0, v)
        return self.member(self.primary())

    def member(self, code: Code) -> Code:
        while True:
            if self.at("."):
                self.take()
                kind, name, offset = self.take()
                if kind != "name":
                    raise self.error(f"expected a name after '.', found {name!r}", offset)
                if self.at("("):
                    method = _METHODS.get(name)
                    if method is None:
                        raise self.error(f"unknown method {name!r}", offset)
                    self.take("(")
                    arg = self.expr()
                    self.take(")")
                    code = (lambda c, a, m: lambda env: m(c(env), a(env)))(code, arg, method)
                else:
                    code = (lambda c, k: lambda env: _index(c(env), k))(code, name)
            elif self.at("["):
                self.take()
                kind, value, _ = self.peek()
                if kind == "int" and self.tokens[self.i + 1][1] == "]":  # t[2]: the common case
                    self.take()
                    self.take("]")
                    at = int(value, 0)
                    if code in self.bare:
                        name = self.bare[code]
                        code = _at_name(name, at)
                        self.indexed[code] = (name, at)
                    else:
                        code = _at(code, at)
                    continue
                key = self.expr()
                self.take("]")
                code = (lambda c, k: lambda env: _index(c(env), k(env)))(code, key)
            else:
                return code

    def primary(self) -> Code:
        kind, value, offset = self.take()
        if kind == "int":
            n = int(value, 0)
            if n > _INT_MAX:
                raise self.error(f"int {value} is past 64 bits", offset)
            return self.constant(n)
        if kind == "float":
            x = float(value)
            return self.constant(x)
        if kind in ("str", "bytes"):
            s = self.unquote(value[1:-1], offset)
            literal: Value = s.encode() if kind == "bytes" else s
            return self.constant(literal)
        if kind == "op" and value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "op" and value == "[":
            items = self.items("]")
            return lambda env: tuple(item(env) for item in items)
        if kind == "op" and value == "{":
            return self.map_literal()
        if kind == "name":
            if value in ("true", "false", "null"):
                constant = {"true": True, "false": False, "null": None}[value]
                return self.constant(constant)
            if self.at("("):
                function = _FUNCTIONS.get(value)
                if function is None:
                    raise self.error(f"unknown function {value!r}", offset)
                self.take("(")
                args = self.items(")")
                if len(args) != 1:
                    raise self.error(f"{value}() takes one argument", offset)
                arg = args[0]
                return lambda env: function(arg(env))
            if self.names is not None and value not in self.names:
                known = ", ".join(sorted(self.names)) or "none"
                raise self.error(f"unknown name {value!r} (known: {known})", offset)
            self.used.add(value)
            if self.at(".") and self.tokens[self.i + 1][0] == "name" and self.tokens[self.i + 2][1] != "(":
                self.selects.add((value, self.tokens[self.i + 1][1]))
            name = value
            code = lambda env: env[name]  # noqa: E731
            self.bare[code] = name
            return code
        raise self.error(f"unexpected {value or 'end'!r}", offset)

    def constant(self, value: Any) -> Code:
        code = lambda env: value  # noqa: E731
        self.constants[code] = value
        return code

    def items(self, close: str) -> list[Code]:
        items: list[Code] = []
        while not self.at(close):
            items.append(self.expr())
            if not self.at(close):
                self.take(",")
        self.take(close)
        return items

    def map_literal(self) -> Code:
        pairs: list[tuple[Code, Code]] = []
        while not self.at("}"):
            key = self.expr()
            self.take(":")
            pairs.append((key, self.expr()))
            if not self.at("}"):
                self.take(",")
        self.take("}")

        def build(env: Env) -> Map:
            out: dict[str, Value] = {}
            for k, v in pairs:
                key = k(env)
                if type(key) is not str:
                    raise EvaluationError(f"map keys must be strings, got {_type(key)}")
                out[key] = v(env)
            return Map(out)

        return build

    def unquote(self, body: str, offset: int) -> str:
        out = []
        i = 0
        while i < len(body):
            c = body[i]
            if c == "\\":
                nxt = body[i + 1]
                if nxt not in _ESCAPES:
                    raise self.error(f"unknown escape \\{nxt}", offset + i + 1)
                out.append(_ESCAPES[nxt])
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)


class Expr:
    """A compiled expression: ``expr(env)`` evaluates it over the names in ``env``.

    ``names`` are the names it reads; ``selects`` the ``(name, field)`` pairs it
    reads as ``name.field`` (a Push Logic rule's record fields).
    """

    __slots__ = ("names", "run", "selects", "source")

    def __init__(self, source: str, run: Code, names: frozenset[str], selects: frozenset[tuple[str, str]]):
        self.source = source
        self.run = run
        self.names = names
        self.selects = selects

    def __call__(self, env: Env) -> Any:
        try:
            return self.run(env)
        except RecursionError:
            raise EvaluationError(f"{self.source!r} nests too deeply") from None

    def __repr__(self) -> str:
        return f"Expr({self.source!r})"


def compile_expr(source: object, field: str, names: frozenset[str] | None = None) -> Expr:
    """Compile ``source``; ``names`` (None: any) are the names it may read.

    An expression is a pure function of its names, so one of at most
    ``_CACHED_SOURCE`` characters is compiled once for the last ``_CACHED``
    (source, names) asked for (rules made by a program often share their
    expressions), which bounds what the cache holds to a few MB.

    Raises :class:`InvalidValue` naming ``field`` for text that is not an expression.
    """
    if type(source) is not str:
        raise InvalidValue(f"an expression is a str, not {type(source).__name__}", field)
    if not source.strip():
        raise InvalidValue("the expression is empty", field)
    if len(source) > _MAX_SOURCE:
        raise InvalidValue(f"an expression has at most {_MAX_SOURCE} characters", field)
    try:
        return _compiled(source, names) if len(source) <= _CACHED_SOURCE else _compile(source, names)
    except InvalidValue as exc:
        raise InvalidValue(exc.reason, field) from None


def _compile(source: str, names: frozenset[str] | None) -> Expr:
    parser = _Parser(source, names)
    try:
        run = parser.parse()
    except RecursionError:
        raise InvalidValue("the expression nests too deeply") from None
    return Expr(source, run, frozenset(parser.used), frozenset(parser.selects))


# A compiled expression takes about 300 B per character of its source at most.
_CACHED_SOURCE: Final = 128
_CACHED: Final = 128
_compiled = functools.lru_cache(maxsize=_CACHED)(_compile)
