"""The handlers of rules and of a space's clock (docs/active.md over docs/http-api.md,
"Rules" and "Simulated time").

A rule travels as its JSON definition (:mod:`tuplespace._rulewire`): the data
``space.rules.add`` takes, values and templates in the wire format, expressions as
strings.  Reading a space's rules needs ``read`` on it; adding and removing them
``write``, and adding one also needs what it does when it fires (:func:`rule_acts`):
``take`` for a rule that takes tuples, and what refreshing, creating records and
calling their methods need for one that does.  A rule's firings are paid
by its principal: the caller's own account, or another that only an admin of the
space may name.

A space created with ``"clock": "simulated"`` keeps its time on a
:class:`~tuplespace.SimulatedClock`, which an admin of the space moves forward: its
leases, waits, rules and credit then run faster than real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .._aio import AsyncRules, AsyncSpace
from .._clock import Clock, SimulatedClock
from .._errors import Conflict, InvalidValue, RuleNotFound, TupleSpaceError, ValueTooLarge
from .._httpapi import OPERATION
from .._rules import RuleInfo, Rules
from .._rulewire import definition_from_wire, info_to_wire
from .._space import Space
from .._values import Limits
from ._errors import api_error, coded
from ._hosting import SpaceInfo
from ._requests import ServiceRequest
from ._service import NO_CONTENT, Answer, json_answer
from ._service_records import RecordRoutes

if TYPE_CHECKING:
    from ..stores import AsyncRedisRules

__all__ = [
    "RuleRoutes",
    "add_rule",
    "advance_seconds",
    "advance_space_clock",
    "clock_reading",
    "get_rule",
    "kept_rules",
    "list_rules",
    "remove_kept_rules_of",
    "remove_rules_of",
    "remove_rule",
    "rule_acts",
    "rule_definition",
    "rule_out",
    "rules_of",
]

_MOST_ADVANCE = 3.15e9  # a hundred years, in seconds
# What a rule does when it fires, beyond adding it: the key of its definition that
# says so, and the operation of the table (``OPERATION``) that does the same directly.
_ACTS = (
    ("take", "take"),
    ("refresh", "refresh_record"),
    ("create", "create_record"),
    ("call", "call_record"),
)


def _error_out(exc: TupleSpaceError) -> dict[str, Any]:
    try:
        error: dict[str, Any] = api_error(exc).body()["error"]
    except TupleSpaceError:  # a failure of no code of the error table
        return {"code": "error", "message": str(exc), "field": None}
    return error


def remove_rules_of(spaces: list[Space], principal: str) -> None:
    """Remove from ``spaces`` the rules whose principal is ``principal`` (a token of that
    name was revoked: what it set running stops).  Blocks: call it from a worker thread."""
    for space in spaces:
        rules = space.rules
        for rule in rules.list():
            if rule.principal == principal:
                with contextlib.suppress(RuleNotFound):  # removed meanwhile by a request
                    rules.remove(rule.name)


async def remove_kept_rules_of(infos: list[SpaceInfo], principal: str) -> None:
    """Remove from the spaces kept in Redis among ``infos`` the rules whose principal is
    ``principal`` (see :func:`remove_rules_of`)."""
    for info in infos:
        kept = kept_rules(info)
        if kept is None:
            continue
        for rule in await kept.list():
            if rule.principal == principal:
                with contextlib.suppress(RuleNotFound):  # removed meanwhile, through any server
                    await kept.remove(rule.name)


def kept_rules(info: SpaceInfo) -> AsyncRedisRules | None:
    """The rules of a space kept in Redis (None: an embedded space, ``space.rules``)."""
    if info.space is not None:
        return None
    face = info.aspace
    assert not isinstance(face, AsyncSpace)
    return face.rules


def rule_out(info: RuleInfo) -> dict[str, Any]:
    """A rule as the API answers it: its definition, level, counts and last error."""
    out = info_to_wire(info)
    out["last_error"] = None if info.last_error is None else _error_out(info.last_error)
    return out


def rules_of(info: SpaceInfo) -> AsyncRules | AsyncRedisRules:
    """The rules of the hosted space ``info``, embedded or kept in Redis."""
    kept = kept_rules(info)
    return info.local("rules").rules if kept is None else kept


# Each operation on rules, whatever transport asks: the space's rules (``space.rules``:
# of a node's embedded space, whose calls that change them wait for the disk in a
# thread; of a server's, awaited, embedded or kept in Redis), what the request says,
# and the account that pays a rule's firings, which the transport has already checked
# its caller may name.  Each answers a JSON-ready dict (the HTTP API's answer) or
# raises an error of the tree.


async def list_rules(rules: Rules | AsyncRules | AsyncRedisRules) -> dict[str, Any]:
    """The operation ``list_rules``: every rule of the space, by level, then by name."""
    found = rules.list() if isinstance(rules, Rules) else await rules.list()
    return {"rules": [rule_out(r) for r in found]}


async def get_rule(rules: Rules | AsyncRules | AsyncRedisRules, name: str) -> dict[str, Any]:
    """The operation ``get_rule``: the rule ``name`` (RuleNotFound if there is none)."""
    rule = rules.get(name) if isinstance(rules, Rules) else await rules.get(name)
    return {"rule": rule_out(rule)}


def rule_definition(body: dict[str, Any], limits: Limits, max_bytes: int) -> tuple[str, dict[str, Any]]:
    """The name and the arguments of ``space.rules.add`` that the JSON definition
    ``body`` holds (its transport has checked its keys: the fields of the operation
    ``add_rule``), its values within ``limits``: ValueTooLarge past ``max_bytes`` of JSON, else the
    errors of :func:`~tuplespace._rulewire.definition_from_wire`, naming the field."""
    size = len(orjson.dumps(body))
    if size > max_bytes:
        message = f"the rule is {size} bytes of JSON, more than {max_bytes}"
        raise ValueTooLarge(message, limit="max_rule_bytes", maximum=max_bytes)
    return definition_from_wire(body, limits)


def rule_acts(definition: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What a rule does when it fires, which its author must be allowed to do: for each
    key of its definition that makes it take tuples (``take``), refresh, create
    records or call their methods (``refresh``, ``create``, ``call``), that key and
    the operation of the table doing the same directly (``take``,
    ``refresh_record``, ``create_record``, ``call_record``).  ``definition`` is its
    JSON definition or the arguments :func:`rule_definition` makes of it: they agree
    on these keys (an empty one does nothing).

    >>> rule_acts({"name": "r", "take": [["job", {"$formal": "int"}]], "create": {}})
    [('take', 'take')]
    """
    return [(key, operation) for key, operation in _ACTS if definition.get(key)]


async def add_rule(
    rules: Rules | AsyncRules | AsyncRedisRules, name: str, args: dict[str, Any], principal: str
) -> dict[str, Any]:
    """The operation ``add_rule``: add the rule of :func:`rule_definition`, paid by
    ``principal``, within the ``max_rules`` of ``rules``; the rule added."""
    if isinstance(rules, Rules):
        added = await asyncio.to_thread(rules.add, name, principal=principal, **args)
    else:
        added = await rules.add(name, principal=principal, **args)
    return {"rule": rule_out(added)}


async def remove_rule(rules: Rules | AsyncRules | AsyncRedisRules, name: str) -> None:
    """The operation ``remove_rule``: remove the rule ``name`` (RuleNotFound if there is none)."""
    if isinstance(rules, Rules):
        await asyncio.to_thread(rules.remove, name)
    else:
        await rules.remove(name)


class RuleRoutes(RecordRoutes):
    """Rules over HTTP and the channel: list, add, get and remove a space's rules; and its clock."""

    async def list_rules(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["list_rules"]), space)
        return json_answer(await list_rules(rules_of(info)))

    async def add_rule(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["add_rule"])
        name, args = rule_definition(body, self.limits.wire, self.limits.max_rule_bytes)
        for _, operation in rule_acts(args):  # a rule does what its author may do
            await self.authorize(caller, space, OPERATION[operation])
        target = await self.space(caller, space, info)
        principal = self._principal(caller, target, body)
        rules = rules_of(target)
        rules.max_rules = self.limits.max_rules
        return json_answer(await add_rule(rules, name, args, principal), 201)

    async def get_rule(self, space: str, name: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["get_rule"]), space)
        return json_answer(await get_rule(rules_of(info), name))

    async def remove_rule(self, space: str, name: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["remove_rule"]), space)
        await remove_rule(rules_of(info), name)
        return NO_CONTENT

    # -- simulated time ----------------------------------------------------------------------------

    async def get_clock(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["get_clock"]), space)
        if info.space is None:  # kept in Redis, with its time
            now, simulated = await info.kept().clock_now()
            return json_answer({"now": now, "simulated": simulated})
        return json_answer(clock_reading(info.space.clock))

    async def advance_clock(self, space: str, request: ServiceRequest) -> Answer:
        _, info, body = await self._begin(request, space, OPERATION["advance_clock"])
        seconds = advance_seconds(body["advance"])
        info = self._existing(info, space)
        if info.space is not None:
            return json_answer(await advance_space_clock(info.space, space, seconds))
        now = await info.kept().advance_clock(seconds)  # kept in Redis, with its time
        if now is None:
            raise _real_clock(space)
        return json_answer({"now": now})


def clock_reading(clock: Clock) -> dict[str, Any]:
    """The time of a space on ``clock`` as it travels (``GET /spaces/{space}/clock``):
    ``{"now": seconds since the epoch, "simulated": bool}``."""
    return {"now": clock.now(), "simulated": clock.simulated}


def advance_seconds(seconds: Any) -> float:
    """The ``advance`` of a request moving a space's clock (``POST
    /spaces/{space}/clock``), checked: a number of seconds above 0, at most a hundred
    years; else :class:`~tuplespace.InvalidValue` naming ``advance`` (400 bad_request)."""
    if type(seconds) not in (int, float) or not 0 < seconds <= _MOST_ADVANCE:
        message = f"advance is a number of seconds above 0, at most {_MOST_ADVANCE:g}"
        raise coded(InvalidValue(message, "advance"), "bad_request")
    return float(seconds)


async def advance_space_clock(space: Space, name: str, seconds: float) -> dict[str, Any]:
    """Move the clock of the embedded ``space`` (named ``name``) ``seconds`` forward,
    what falls due run meanwhile (in a thread: it takes the space's lock), and answer
    its new time as it travels (``{"now": t}``); :class:`~tuplespace.Conflict`
    (409 real_clock) for a space on the system clock."""
    clock = space.clock
    if not isinstance(clock, SimulatedClock):
        raise _real_clock(name)
    await asyncio.to_thread(clock.advance, seconds)
    return {"now": clock.now()}


def _real_clock(name: str) -> Conflict:
    message = (
        f'space {name!r} runs on the system clock; a space created with "clock": "simulated" '
        "has a clock to move"
    )
    return coded(Conflict(message), "real_clock")
