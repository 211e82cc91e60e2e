"""Active tuples: reactions and Push Logic rules as data, their levels, and sandboxed methods."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE
from tuplespace._expr import compile_expr

ROOT = Path(__file__).resolve().parent.parent
READING = ("reading", str, float)


def hot(space: Any) -> ts.RuleInfo:
    return space.rules.add(
        "hot",
        on="write",
        template=READING,
        when="t[2] > 30.0",
        write=[("alarm", "t[1]", "t[2] - 30.0")],
    )


# -- reactions -------------------------------------------------------------------------------


def test_a_reaction_fires_once_per_matching_event_in_event_order(space: Any) -> None:
    hot(space)
    for room, temp in (("kitchen", 31.0), ("hall", 35.5), ("attic", 40.0)):
        space.write(("reading", room, temp))
    assert space.read_all(("alarm", str, float)) == [
        ("alarm", "kitchen", 1.0),
        ("alarm", "hall", 5.5),
        ("alarm", "attic", 10.0),
    ]
    assert space.rules.get("hot").fired == 3
    # each alarm was written right after its reading: events alternate
    with space.subscribe((str, str, float), since=0) as events:
        names = [events.get(timeout=0).tuple[0] for _ in range(6)]  # type: ignore[union-attr]
    assert names == ["reading", "alarm"] * 3


def test_a_false_condition_fires_nothing(space: Any) -> None:
    hot(space)
    space.write(("reading", "kitchen", 30.0))
    space.write(("reading", "kitchen", 12.5))
    space.write(("other", "kitchen", 99.0))
    assert space.count(("alarm", str, float)) == 0
    assert space.rules.get("hot").fired == 0
    assert space.rules.get("hot").failed == 0


def test_a_reaction_fires_on_takes_and_expiries_of_its_template() -> None:
    clock = ts.SimulatedClock()
    space = ts.Space(clock=clock)
    space.rules.add("gone", on={"take", "expire"}, template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
    space.write(("job", 1))
    space.write(("job", 2), lease=10)
    space.take(("job", 1))
    clock.advance(11)
    assert space.read_all(("gone", int)) == [("gone", 1), ("gone", 2)]


def test_a_reaction_to_expiries_fires_on_the_real_clock_while_nobody_calls() -> None:
    space = ts.Space()
    space.rules.add("gone", on="expire", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
    space.write(("job", 1), lease=0.2)
    assert space.take(("gone", int), timeout=PATIENCE) == ("gone", 1)  # waiting is not calling
    space.close()


def test_a_reactions_operations_are_one_step(space: Any) -> None:
    space.rules.add(
        "claim",
        template=("order", int),
        take=[(ts.Lit("stock"), "t[1]")],
        write=[(ts.Lit("shipped"), "t[1]"), (ts.Lit("invoice"), "t[1]", "100 / (t[1] - 2)")],
    )
    space.write(("stock", 1))
    space.write(("order", 1))  # takes the stock, writes both
    assert space.read_all((str, int)) == [("order", 1), ("shipped", 1)]
    assert space.read_all(("invoice", int, int)) == [("invoice", 1, -100)]

    space.write(("order", 5))  # no stock 5: the take fails, nothing is written
    space.write(("stock", 2))
    space.write(("order", 2))  # the stock is taken, then the second write divides by zero
    info = space.rules.get("claim")
    assert (info.fired, info.failed) == (1, 2)
    assert isinstance(info.last_error, ts.EvaluationError)
    assert "division by zero" in str(info.last_error)
    assert space.read_all(("stock", int)) == [("stock", 2)]  # put back
    assert space.count(("shipped", int)) == 1
    assert space.count(("invoice", int, int)) == 1


def test_one_write_touches_only_the_rules_it_can_fire() -> None:
    space = ts.Space()
    for i in range(1000):
        space.rules.add(f"job-{i}", template=("job", i), write=[(ts.Lit("done"), "t[1]")])
    space.write(("job", 7))
    fired = {r.name: r.fired for r in space.rules.list() if r.fired}
    assert fired == {"job-7": 1}
    assert space.read_all(("done", int)) == [("done", 7)]


def test_bad_rules_are_refused_naming_the_field(space: Any) -> None:
    with pytest.raises(ts.InvalidValue, match=r"unknown name 'tt'") as info:
        space.rules.add("hot", template=READING, write=[("alarm", "tt[1]")])
    assert info.value.path == "write[0][1]"
    with pytest.raises(ts.InvalidValue, match="offset 6") as info:
        space.rules.add("hot", template=READING, when="t[2] >", write=[(1,)])
    assert info.value.path == "when"
    with pytest.raises(ts.InvalidValue, match="on="):
        space.rules.add("hot", on="update", template=READING, write=[(1,)])
    with pytest.raises(ts.InvalidValue, match="does something"):
        space.rules.add("hot", template=READING)
    with pytest.raises(ts.InvalidValue, match="name"):
        space.rules.add("a b", template=READING, write=[(1,)])
    hot(space)
    with pytest.raises(ts.RuleExists, match="already"):
        hot(space)
    assert [r.name for r in space.rules.list()] == ["hot"]


def test_a_removed_rule_fires_no_more(space: Any) -> None:
    hot(space)
    space.rules.remove("hot")
    space.write(("reading", "kitchen", 50.0))
    assert space.count(("alarm", str, float)) == 0
    assert space.rules.list() == []
    with pytest.raises(KeyError, match="no rule named 'hot'"):
        space.rules.remove("hot")
    with pytest.raises(ts.RuleNotFound):
        space.rules.get("hot")


def test_removing_a_rule_leaves_the_others_firing(space: Any) -> None:
    hot(space)
    space.rules.add("cold", template=READING, when="t[2] < 10.0", write=[("frost", "t[1]")])
    space.rules.remove("cold")
    space.write(("reading", "kitchen", 31.0))
    assert space.read_all(("alarm", str, float)) == [("alarm", "kitchen", 1.0)]


def test_a_reactions_tuple_is_checked_and_bounded_like_any_write() -> None:
    space = ts.Space(capacity=3, limits=ts.Limits(max_bytes=200))

    def react(*fields: str) -> ts.RuleInfo:
        if space.rules.list():
            space.rules.remove("hot")
        space.rules.add("hot", template=READING, when="t[2] > 30.0", write=[(ts.Lit("alarm"), *fields)])
        space.write(("reading", "x" * 60, 31.0))
        space.take(("reading", str, float))
        return space.rules.get("hot")

    info = react("t[1]", "t[2] * 1e308")
    assert (info.fired, info.failed) == (0, 1)
    assert isinstance(info.last_error, ts.InvalidValue)
    assert "finite" in str(info.last_error)
    info = react("t[1] + t[1] + t[1]", "t[2] - 30.0")  # 180 characters: past max_bytes
    assert (info.fired, info.failed) == (0, 1)
    assert isinstance(info.last_error, ts.ValueTooLarge)
    space.write(("reading", "hall", 1.0))
    space.write(("reading", "attic", 2.0))
    info = react("t[2] - 30.0")  # the third tuple: its alarm finds the space full
    assert (info.fired, info.failed) == (0, 1)
    assert isinstance(info.last_error, ts.SpaceFull)
    assert space.count(("alarm", ts.ANY)) == space.count(("alarm", ts.ANY, ts.ANY)) == 0
    assert space.count(READING) == 2


def test_a_condition_that_is_not_a_bool_is_a_failed_firing(space: Any) -> None:
    space.rules.add("odd", template=READING, when="t[1]", write=[(ts.Lit("alarm"), "t[1]")])
    space.write(("reading", "kitchen", 31.0))
    info = space.rules.get("odd")
    assert (info.fired, info.failed) == (0, 1)
    assert "when= gave str, not bool" in str(info.last_error)
    assert space.count(("alarm", str)) == 0


def test_a_reaction_to_record_events_reads_the_change(space: Any) -> None:
    space.rules.add(
        "log",
        path="sensors/kitchen",
        tag="temp",
        when="value > 30.0",
        write=[(ts.Lit("hot"), "path", "value")],
    )
    space.rules.add("gone", on={"create", "destroy"}, path="sensors/kitchen", write=[("kind",)])
    kitchen = space.create("sensors/kitchen", {"temp": 21.0, "unit": "C"})
    kitchen.set("temp", 31.5)
    kitchen.set("unit", "F")  # another field
    kitchen.set("temp", 20.0)  # the condition is false
    kitchen.destroy()
    assert space.read_all(("hot", str, float)) == [("hot", "sensors/kitchen", 31.5)]
    assert space.read_all((str,)) == [("create",), ("destroy",)]
    assert [r.path for r in space.rules.list()] == ["sensors/kitchen"] * 2
    with pytest.raises(ts.InvalidValue, match=r"template .* or a path"):
        space.rules.add("both", template=("x",), path="a", write=[(1,)])
    with pytest.raises(ts.InvalidValue, match="on="):
        space.rules.add("bad", on="write", path="a", write=[(1,)])


def test_rules_on_record_fields_are_refused_in_a_cycle(space: Any) -> None:
    space.rules.add("sum", set="house.total", to="house.a + 1.0")
    with pytest.raises(ts.RuleCycle) as info:
        space.rules.add("back", path="house", tag="total", set={"house.a": "value"})
    assert info.value.cycle == ["back", "sum", "back"]
    with pytest.raises(ts.RuleCycle):
        space.rules.add("self", path="house", set={"house.b": "value"})  # any field of house
    space.rules.add("fine", path="house", tag="total", set={"other.copy": "value"})
    assert [(r.name, r.level) for r in space.rules.list()] == [("sum", 1), ("fine", 2)]


# -- levels -------------------------------------------------------------------------------------


def test_a_rule_that_would_trigger_itself_is_refused_naming_the_cycle(space: Any) -> None:
    with pytest.raises(ts.RuleCycle, match=r"'count' could trigger itself: count -> count") as direct:
        space.rules.add("count", template=("n", int), write=[(ts.Lit("n"), "t[1] + 1")])
    assert direct.value.cycle == ["count", "count"]
    hot(space)
    space.rules.add("page", template=("alarm", str, float), write=[(ts.Lit("page"), "t[1]")])
    with pytest.raises(ts.RuleCycle) as through:
        space.rules.add("echo", template=("page", str), write=[(ts.Lit("reading"), "t[1]", 31.0)])
    assert through.value.cycle == ["echo", "hot", "page", "echo"]
    assert "echo -> hot -> page -> echo" in str(through.value)
    assert isinstance(through.value, ValueError)
    assert [r.name for r in space.rules.list()] == ["hot", "page"]
    assert [r.level for r in space.rules.list()] == [1, 2]


def test_push_rules_on_fields_are_refused_in_a_cycle(space: Any) -> None:
    space.rules.add("b", set="x.b", to="x.a + 1")
    with pytest.raises(ts.RuleCycle) as info:
        space.rules.add("a", set="x.a", to="x.b + 1")
    assert info.value.cycle == ["a", "b", "a"]


def test_a_storm_stops_at_max_firings_with_a_clear_error() -> None:
    space = ts.Space()
    space.rules.limits = ts.ActiveLimits(max_firings=4)
    space.rules.add("fan", template=("a", int), write=[(ts.Lit("b"), f"t[1] * 10 + {i}") for i in range(5)])
    space.rules.add("leaf", template=("b", int), write=[(ts.Lit("c"), "t[1]")])
    space.write(("a", 1))
    # fan (1) and three of the five leaves ran; the other two were dropped
    assert space.count(("b", int)) == 5
    assert space.read_all(("c", int)) == [("c", 10), ("c", 11), ("c", 12)]
    error = space.rules.get("leaf").last_error
    assert isinstance(error, ts.LimitReached)
    assert error.limit == "max_firings"
    assert "more than 4 firings" in str(error)
    assert space.rules.statistics()["storms"] == 1
    space.write(("a", 2))  # each operation has its own budget
    assert space.count(("c", int)) == 6


def test_limits_are_an_active_limits_and_a_bad_one_changes_nothing() -> None:
    space = ts.Space()
    with pytest.raises(ts.InvalidValue, match="limits is an ActiveLimits, got dict"):
        space.rules.limits = {"max_firings": 5}  # type: ignore[assignment]
    assert space.rules.limits == ts.ActiveLimits()


def test_a_write_of_many_tuples_many_rules_watch_keeps_no_more_firings_than_it_can_run() -> None:
    space = ts.Space()
    space.rules.limits = ts.ActiveLimits(max_firings=10)
    for i in range(100):
        space.rules.add(f"r{i:02}", template=("x", int), when="t[1] < 0", write=[(ts.Lit("y"), "t[1]")])
    batch = [("x", i) for i in range(2000)]  # 200,000 firings, of which 10 can run
    tracemalloc.start()
    try:
        space.write_many(batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # a queue of 200,000 firings would hold more than 12 MB
    error = space.rules.get("r10").last_error
    assert isinstance(error, ts.LimitReached)
    assert "199990 firings were not run, from rule 'r10' on" in str(error)
    assert space.count(("x", int)) == 2000


def test_each_firing_costs_its_principal_credit_and_stops_without_it(make_space: Callable[..., Any]) -> None:
    space = make_space(firing_charge="0.02")
    space.rules.add(
        "hot",
        template=READING,
        when="t[2] > 30.0",
        write=[(ts.Lit("alarm"), "t[1]", "t[2] - 30.0")],
        principal="ops",
    )
    space.grant_credit("ops", "0.05")
    space.write(("reading", "cold", 10.0))  # the condition is false: nothing to pay
    for room in ("a", "b", "c"):
        space.write(("reading", room, 31.0))
    assert space.read_all(("alarm", str, float)) == [("alarm", "a", 1.0), ("alarm", "b", 1.0)]
    assert space.account("ops") == ts.Credit("0.01")
    info = space.rules.get("hot")
    assert (info.fired, info.failed, info.principal) == (2, 1, "ops")
    assert isinstance(info.last_error, ts.InsufficientCredit)
    space.grant_credit("ops", 1)
    space.write(("reading", "d", 31.0))
    assert space.count(("alarm", str, float)) == 3
    assert space.account("ops") == ts.Credit("0.99")
    assert space.account("operator") == ts.Credit("0.06")


def test_the_firing_and_step_charges_are_checked() -> None:
    space = ts.Space(step_charge="0.001")
    assert space.rules.step_charge == ts.Credit("0.001")
    with pytest.raises(ts.InvalidValue):
        space.rules.firing_charge = "-1"
    with pytest.raises(ts.InvalidValue):
        space.rules.step_charge = "-0.1"
    for option in ("firing_charge", "step_charge"):
        with pytest.raises(ValueError, match=option):
            ts.Space(**{option: "-1"})


# -- Push Logic ---------------------------------------------------------------------------------


def test_a_push_rule_keeps_a_field_a_function_of_others(space: Any) -> None:
    kitchen = space.create("sensors/kitchen", {"temp": 21.0})
    house = space.create("house", {"comfort": None})
    space.rules.add(
        "comfort",
        set="house.comfort",
        to="kitchen.temp >= 19.0 && kitchen.temp <= 23.0",
        using={"kitchen": "sensors/kitchen"},
    )
    assert house.get("comfort") is True
    kitchen.set("temp", 25.0)
    assert house.get("comfort") is False
    version = house.get("$version")
    kitchen.set("temp", 26.0)  # still False: the field is not set again
    assert house.get("$version") == version
    kitchen.set("unit", "C")  # a field the rule does not read
    assert space.rules.get("comfort").fired == 3


# -- methods ------------------------------------------------------------------------------------

BUMP = "function(self, d) self.target = self.target + d return self.target end"


def thermostat(space: Any, source: str = BUMP) -> Any:
    return space.create("thermostat", {"target": 21.0, "mode": "heat", "bump": ts.Method(source)})


def test_a_method_reads_and_sets_the_records_fields(space: Any) -> None:
    thermo = thermostat(space)
    assert thermo.call("bump", 0.5) == 21.5
    assert thermo.get("target") == 21.5
    thermo.set("log", ts.Method('function(self) write("bumped", self.mode, self.target) self.n = 1 end'))
    assert thermo.call("log") is None
    assert space.read_all(("bumped", str, float)) == [("bumped", "heat", 21.5)]
    assert thermo.get("n") == 1


def test_a_method_is_a_map_on_the_wire() -> None:
    method = ts.Method(BUMP)
    assert ts.to_wire(method) == {"$map": {"$method": {"lang": "lua", "source": BUMP}}}
    space = ts.Space()
    assert ts.Method.of(thermostat(space).get("bump")) == method
    with pytest.raises(ts.InvalidValue, match="language"):
        ts.Method(BUMP, lang="python")


@pytest.mark.parametrize(
    ("limits", "source", "limit"),
    [
        (
            ts.ActiveLimits(method_steps=10_000),
            "function(self) self.target = 0 while true do end end",
            "method_steps",
        ),
        (
            ts.ActiveLimits(method_steps=1 << 62, method_ms=50),
            "function(self) self.target = 0 while true do end end",
            "method_ms",
        ),
        (
            ts.ActiveLimits(method_steps=1 << 62, method_memory=1 << 16),
            "function(self) self.target = 0 local t = {} for i = 1, 1e9 do t[i] = i end end",
            "method_memory",
        ),
        (
            ts.ActiveLimits(method_steps=1 << 62, method_memory=1 << 16),
            "function(self) self.target = 0 return string.rep('x', 1 << 20) end",
            "method_memory",
        ),
    ],
)
def test_each_limit_stops_a_runaway_method_and_nothing_changes(
    limits: ts.ActiveLimits, source: str, limit: str
) -> None:
    space = ts.Space()
    space.rules.limits = limits
    thermo = thermostat(space, source.replace("self.target = 0", 'self.target = 0 write("x")'))
    before = thermo.snapshot()
    with pytest.raises(ts.LimitReached, match="nothing changed") as info:
        thermo.call("bump")
    assert info.value.limit == limit
    assert thermo.snapshot() == before
    assert space.count(("x",)) == 0
    thermo.set("bump", ts.Method(BUMP))  # the sandbox is fine afterwards
    assert thermo.call("bump", 1.0) == 22.0


SMALL_MEMORY = """
import tuplespace as ts
space = ts.Space(method_memory=int(__import__("sys").argv[1]))
long = "function(self, a) local s = '" + "x" * 60_000 + "' return a end"
rec = space.create("r", {"short": ts.Method("function(self, a) return a end"), "long": ts.Method(long)})
for tag in ("short", "long"):
    try:
        rec.call(tag, "y" * 1000)
    except ts.LimitReached as exc:
        print(tag, exc.limit)
"""


@pytest.mark.parametrize("memory", [1, 4096, 16384, 1 << 16])
def test_a_method_memory_too_small_for_the_call_itself_stops_it_at_that_limit(memory: int) -> None:
    done = subprocess.run([sys.executable, "-c", SMALL_MEMORY, str(memory)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # the process goes on
    assert (
        done.stdout.split("\n")
        == ["short method_memory", "long method_memory", ""][(1 if memory == 1 << 16 else 0) :]
    )


@pytest.mark.parametrize(
    ("source", "limits"),
    [
        ("function(self) self.target = 0 while true do end end", ("method_steps", "method_ms")),
        ("function(self) self.target = 0 return string.rep('x', 1 << 21) end", ("method_memory",)),
    ],
    ids=["loop", "memory"],
)
def test_a_runaway_method_stops_at_the_spaces_limits_and_changes_nothing(
    space: Any, source: str, limits: tuple[str, ...]
) -> None:
    thermo = thermostat(space, source)
    with pytest.raises(ts.LimitReached, match="nothing changed") as info:
        thermo.call("bump")
    assert info.value.limit in limits
    assert thermo.get("target") == 21.0


@pytest.mark.parametrize(
    "body",
    [
        "return os.time()",
        "return io.open('/etc/passwd')",
        "return load('return 1')()",
        "return require('os')",
        "return debug.getinfo(1)",
        "return pcall(error, 'x')",
        "return coroutine.create(print)",
        "return ('x'):find('x')",
        "return string.dump(print)",
        "return math.random()",
        "string.rep = nil",
        "return python.eval('1')",
    ],
)
def test_the_sandbox_has_no_way_out(body: str) -> None:
    space = ts.Space()
    thermo = thermostat(space, f"function(self) self.target = 0 {body} end")
    with pytest.raises(ts.EvaluationError, match="nothing changed"):
        thermo.call("bump")
    assert thermo.get("target") == 21.0


def test_a_failing_method_changes_nothing_and_bad_calls_say_why(space: Any) -> None:
    thermo = thermostat(space, "function(self) self.target = 99 error('boom') end")
    with pytest.raises(ts.EvaluationError, match="boom"):
        thermo.call("bump")
    assert thermo.get("target") == 21.0
    with pytest.raises(ts.InvalidValue, match="holds no method"):
        thermo.call("mode")
    thermo.set("bump", ts.Method("def bump(self, d):\n    self.target = self.target + d"))
    with pytest.raises(
        ts.EvaluationError, match=r"not a Lua function expression .* function\(self, \.\.\.\)"
    ):
        thermo.call("bump", 1.0)
    assert thermo.get("target") == 21.0
    with pytest.raises(ts.InvalidValue) as info:
        thermo.call("bump", [1, 2])
    assert info.value.path == "args[0]"


def test_a_read_only_handle_calls_no_method(space: Any) -> None:
    thermo = thermostat(space)
    with pytest.raises(ts.NotAllowed):
        space.record(thermo.read_only().address).call("bump")
    assert thermo.get("target") == 21.0


def test_async_records_call_methods_and_async_spaces_have_rules() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        hot(aspace.space)
        assert [r.name for r in await aspace.rules.list()] == ["hot"]
        await aspace.write(("reading", "kitchen", 32.0))
        assert await aspace.try_read(("alarm", str, float)) == ("alarm", "kitchen", 2.0)
        thermo = await aspace.create("thermostat", {"target": 21.0, "bump": ts.Method(BUMP)})
        assert await thermo.call("bump", 1.5) == 22.5

    asyncio.run(main())


# -- expressions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("t[2] > 30", True),
        ("t[2] - 30.0", 1.5),
        ("size(t[1]) > 3 ? t[1] : 'short'", "kitchen"),
        ("t[1] in ['kitchen', 'hall']", True),
        ("-7 / 2", -3),
        ("-7 % 2", -1),
        ("1 == 1.0", False),
        ("{'a': t[2]}.a", 31.5),
        ("t[1].startsWith('kit') && !t[1].endsWith('x')", True),
        ("b'ab' + b'c'", b"abc"),
        ("string(int(t[2]))", "31"),
        ("t[2] * 2.0 + 1.0", 64.0),
        ("t[2] >= 31 && t[2] < 31.6", True),
        ("t[1] + '!'", "kitchen!"),
        ("t[1] > 'a'", True),
        ("[t[2], 1][1] - 3", -2),
    ],
)
def test_expressions_evaluate_with_the_spaces_values(source: str, value: object) -> None:
    result = compile_expr(source, "e")({"t": ("reading", "kitchen", 31.5)})
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "+", "-", "*"])
@pytest.mark.parametrize("constant", ["30", "30.0"])
def test_an_indexed_name_against_a_constant_means_what_any_operand_does(op: str, constant: str) -> None:
    # t[0] op c is evaluated in one step; [t[0]][0] op c takes the general way
    one_step = compile_expr(f"t[0] {op} {constant}", "e")
    general = compile_expr(f"[t[0]][0] {op} {constant}", "e")
    for value in (31.5, 29, 30, 1 << 62, True, "x", None, (1,)):
        env = {"t": (value,)}
        assert outcome(one_step, env) == outcome(general, env), value


def outcome(expr: Any, env: dict[str, Any]) -> tuple[type, object]:
    """What ``expr`` gives over ``env``: the type and value, or the error's type and text."""
    try:
        result = expr(env)
    except ts.EvaluationError as exc:
        return type(exc), str(exc)
    return type(result), result


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("t[1] + 1", "no such overload: string + int"),
        ("t[9]", "index 9 out of range"),
        ("1 / 0", "division by zero"),
        ("9223372036854775807 + 1", "int overflow"),
        ("t[2] && true", "needs a bool"),
        ("t[1] > 30.0", "no such overload: string > double"),
        ("t[1] - 30.0", "no such overload: string - double"),
        ("(t[2] + 0.5) / 0.0", "division by zero"),
        ("true > 1", "no such overload: bool > int"),
    ],
)
def test_expression_errors_are_clear(source: str, message: str) -> None:
    with pytest.raises(ts.EvaluationError, match=re.escape(message)):
        compile_expr(source, "e")({"t": ("reading", "kitchen", 31.5)})


# -- durability -----------------------------------------------------------------------------------


def test_rules_and_what_they_did_survive_a_restart_of_a_durable_space(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    space = ts.connect(url)
    hot(space)
    space.rules.add(
        "ship", template=("order", int), take=[(ts.Lit("stock"), "t[1]")], write=[("'shipped'", "t[1]")]
    )
    space.rules.add("gone", on="take", template=("stock", ts.ANY), write=[(ts.Lit("restock"), "t[1]")])
    space.rules.add("warm", path="kitchen", tag="temp", when="value > 24.0", write=[("'warm'", "value")])
    space.rules.add("keep", template=("tmp", float), write=[(ts.Lit("kept"), "t[1]")])
    space.create("kitchen", {"temp": 21.0})
    space.create("house", {"comfort": None})
    space.rules.add("comfort", set="house.comfort", to="kitchen.temp < 23.0", principal="ops")
    space.rules.remove("keep")
    space.write(("reading", "kitchen", 31.0))
    space.write(("stock", 7))
    space.write(("order", 7))
    before = [
        (r.name, r.level, r.template, r.when, r.write, r.take, r.set, r.principal) for r in space.rules.list()
    ]
    space.close()

    space = ts.connect(url)
    try:
        after = [
            (r.name, r.level, r.template, r.when, r.write, r.take, r.set, r.principal)
            for r in space.rules.list()
        ]
        assert [a[0] for a in after] == ["comfort", "hot", "ship", "warm", "gone"]
        assert [a[1:2] + a[3:4] + a[6:] for a in after] == [b[1:2] + b[3:4] + b[6:] for b in before]
        # each firing happened once, and loading the rules fires nothing again
        assert space.read_all(("alarm", str, float)) == [("alarm", "kitchen", 1.0)]
        assert space.read_all((str, int)) == [("order", 7), ("shipped", 7), ("restock", 7)]
        space.write(("reading", "hall", 32.0))
        space.write(("stock", 8))
        space.write(("order", 8))
        space.write(("tmp", 1.0))  # its rule was removed
        space.record("kitchen").set("temp", 25.0)
        assert space.count(("alarm", str, float)) == 2
        assert space.read_all((str, int)) == [
            *[("order", 7), ("shipped", 7), ("restock", 7)],
            *[("order", 8), ("shipped", 8), ("restock", 8)],
        ]
        assert space.count(("kept", float)) == 0
        assert space.record("house").get("comfort") is False
        assert space.read_all(("warm", float)) == [("warm", 25.0)]
    finally:
        space.close()


CHILD = """
import sys, tuplespace as ts
space = ts.connect(sys.argv[1])
if not space.rules.list():
    space.rules.add("hot", template=("reading", int, float), when="t[2] > 30.0", write=[("'alarm'", "t[1]")])
start = space.count(("reading", int, float))
print("ready", flush=True)
for i in range(start, start + 1_000_000):
    space.write(("reading", i, 31.0 if i % 2 else 20.0))
    if i % 50 == 0:
        print(i, flush=True)
"""


def test_a_reaction_is_committed_with_what_set_it_off_across_kills(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            seen = 0
            while seen < 3:  # killed after at least 150 more writes, at no chosen moment
                assert child.stdout.readline(), "the child ended"
                seen += 1
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        space = ts.connect(url)
        try:
            readings = {t[1] for t in space.read_all(("reading", int, float)) if t[2] > 30.0}
            alarms = [t[1] for t in space.read_all(("alarm", int))]
            assert len(readings) > 0
            assert sorted(alarms) == sorted(readings)  # each once, none without its reading
            assert space.rules.get("hot").fired == len(alarms)  # counted in the same commits
        finally:
            space.close()


# The hook of this child is registered before the space has rules, so it runs before
# theirs: when a write has set off a firing (its event queued it) that has not run yet.
KILLED_BETWEEN = """
import os, signal, sys, tuplespace as ts
space = ts.connect(sys.argv[1])
rules, kill_at, firings = space.rules, int(sys.argv[2]), [0]

def kill_between_the_write_and_its_firing():
    if rules.pending:
        firings[0] += 1
        if firings[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

space.after_operations(kill_between_the_write_and_its_firing)
rules.add("hot", template=("reading", int, float), when="t[2] > 30.0", write=[("'alarm'", "t[1]")])
for i in range(1_000_000):
    space.write(("reading", i, 31.0 if i % 3 else 20.0))
    print(i, flush=True)
"""


@pytest.mark.parametrize("kill_at", [1, 2, 3, 59])
def test_killed_between_a_write_and_its_firing_neither_is_kept(tmp_path: Path, kill_at: int) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BETWEEN, url, str(kill_at)], capture_output=True, text=True
    )
    assert child.returncode == -9, child.stderr
    acknowledged = [int(line) for line in child.stdout.split()]
    assert acknowledged == list(range(kill_at - 1))  # the write of the kill_at-th never returned
    hot = [i for i in acknowledged if i % 3]
    space = ts.connect(url)
    try:
        readings = sorted(t[1] for t in space.read_all(("reading", int, float)) if t[2] > 30.0)
        alarms = sorted(t[1] for t in space.read_all(("alarm", int)))
        assert readings == alarms == hot  # each acknowledged write once, with its one reaction
        assert space.rules.get("hot").fired == len(hot)
        space.write(("reading", -1, 40.0))  # and the rule goes on
        assert space.count(("alarm", -1)) == 1
    finally:
        space.close()


START = 1_700_000_000.0
LEASED = """
import os, signal, sys, tuplespace as ts
space = ts.connect(sys.argv[1], clock=ts.SimulatedClock(float(sys.argv[2])))
if sys.argv[3] == "write":
    space.rules.add("close", on="expire", template=("auction", int), write=[("'closed'", "t[1]")])
    space.rules.add("lapsed", path="lots/lamp", on="expire", write=[("'lapsed'", "path")])
    for i in range(50):
        space.write(("auction", i), lease=10)
    space.create("lots/lamp", {"best": 12.0}, lease=10)
os.kill(os.getpid(), signal.SIGKILL)  # whether the store wrote what opening it did, or not
"""


def test_a_lease_that_ran_out_while_the_space_was_down_fires_its_reactions_once(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    wrote = subprocess.run([sys.executable, "-c", LEASED, url, str(START), "write"], capture_output=True)
    assert wrote.returncode == -9, wrote.stderr
    later = str(START + 20)  # every lease has run out: opened, and killed at once, twice
    for _ in range(2):
        opened = subprocess.run([sys.executable, "-c", LEASED, url, later, "open"], capture_output=True)
        assert opened.returncode == -9, opened.stderr
    for _ in range(2):
        space = ts.connect(url, clock=ts.SimulatedClock(START + 20))
        try:
            assert space.count(("auction", int)) == 0
            assert sorted(t[1] for t in space.read_all(("closed", int))) == list(range(50))
            assert space.read_all(("lapsed", str)) == [("lapsed", "lots/lamp")]
            assert space.find({"best": float}) == []
        finally:
            space.close()


def test_what_each_rule_did_survives_reopening_a_durable_space(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s&firing_charge=1"
    space = ts.connect(url)
    space.grant_credit("ops", 2)
    space.rules.add(
        "hot", template=READING, when="t[2] > 30.0", write=[("alarm", "t[1]", "t[2] - 30.0")], principal="ops"
    )
    space.rules.add("odd", template=("n", int), write=[("half", "t[1] / 0")])
    space.create("kitchen", {"temp": 21.0})
    space.create("house", {"comfort": None})
    space.grant_credit("default", 10)
    space.rules.add("comfort", set="house.comfort", to="kitchen.temp < 23.0")
    space.record("kitchen").set("temp", 25.0)
    for reading in (31.0, 32.0, 33.0, 20.0):
        space.write(("reading", "hall", reading))
    space.write(("n", 1))
    space.rules.add("gone", template=("g",), write=[("went",)])
    space.write(("g",))
    space.rules.remove("gone")
    before = {r.name: (r.fired, r.failed, repr(r.last_error), r.state) for r in space.rules.list()}
    assert before == {
        "hot": (2, 2, repr(space.rules.get("hot").last_error), "stopped"),
        "odd": (0, 1, repr(space.rules.get("odd").last_error), "active"),
        "comfort": (2, 0, "None", "active"),
    }
    space.close()

    space = ts.connect(url)
    try:
        after = {r.name: (r.fired, r.failed, repr(r.last_error), r.state) for r in space.rules.list()}
        assert after == before
        assert isinstance(space.rules.get("hot").last_error, ts.InsufficientCredit)
        assert isinstance(space.rules.get("odd").last_error, ts.EvaluationError)
        space.write(("reading", "hall", 34.0))  # still stopped: said once, before the restart
        assert space.read_all(("rule_stopped", str, str)) == [("rule_stopped", "hot", "ops")]
        space.grant_credit("ops", 1)
        space.write(("reading", "hall", 35.0))
        space.rules.add("gone", template=("g",), write=[("went",)])  # a new rule of an old name
        space.write(("g",))
        assert [(r.name, r.fired, r.failed, r.state) for r in space.rules.list()] == [
            ("comfort", 2, 0, "active"),
            ("gone", 1, 0, "active"),
            ("hot", 3, 3, "active"),
            ("odd", 0, 1, "active"),
        ]
    finally:
        space.close()


def test_a_durable_space_refuses_a_rule_it_cannot_keep(tmp_path: Path) -> None:
    space = ts.connect(f"sqlite://{tmp_path / 'spaces.db'}?space=s")
    try:
        with pytest.raises(ts.InvalidValue, match="wire format"):
            space.rules.add("odd", template=(ts.Pred(lambda v: True),), write=[(1,)])
        assert space.rules.list() == []
    finally:
        space.close()


# -- the worked example of docs/active.md -------------------------------------------------------


def test_the_thermostat_of_the_docs_runs_as_shown() -> None:
    example = ROOT / "examples" / "thermostat.py"
    docs = (ROOT / "docs" / "active.md").read_text()
    assert example.read_text().split('"""\n', 2)[-1].strip() in docs
    result = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True)
    output = re.search(r"It prints:\n\n```\n(.*?)```", docs, re.DOTALL)
    assert output is not None
    assert result.stdout == output[1]


def test_a_bare_word_is_a_constant_unless_it_names_what_the_rule_knows() -> None:
    space = ts.Space()
    space.rules.add("w", template=("x", int), write=[("word", "t", ts.Lit("t"), "'t[1]'", "true")])
    space.write(("x", 1))
    assert space.read_all(("word", ts.ANY, str, str, bool)) == [("word", ("x", 1), "t", "t[1]", True)]


def test_a_reaction_reads_the_records_it_names_as_they_are_when_it_fires() -> None:
    space = ts.Space()
    farm = space.create("jobs/farm", {"total": 0, "done": 0})
    space.rules.add(
        "sum",
        template=("result", int, int),
        using={"farm": "jobs/farm"},
        when="t[2] >= 0",
        set={"jobs/farm.total": "farm.total + t[2]", "jobs/farm.done": "farm.done + 1"},
    )
    for job, value in ((1, 10), (2, 20), (3, -5), (4, 12)):
        space.write(("result", job, value))
    assert farm.get("total") == 42
    assert farm.get("done") == 3
    assert space.rules.get("sum").level == 1  # what it reads of the record does not fire it
    with pytest.raises(ts.InvalidValue, match="using"):
        space.rules.add("bad", template=("x",), using={"t": "jobs/farm"}, write=[("y",)])
    with pytest.raises(ts.InvalidValue, match="using"):
        space.rules.add("bad", template=("x",), using={"no-name": "jobs/farm"}, write=[("y",)])
    space.rules.add("lost", template=("x",), using={"gone": "nowhere"}, write=[("y", "gone.a")])
    space.write(("x",))
    assert space.rules.get("lost").failed == 1
    assert isinstance(space.rules.get("lost").last_error, ts.RecordNotFound)


def test_what_a_reaction_names_with_using_is_kept_by_a_durable_space(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    space = ts.connect(url)
    space.create("farm", {"total": 0})
    space.rules.add(
        "sum", template=("result", int), using={"f": "farm"}, set={"farm.total": "f.total + t[1]"}
    )
    space.write(("result", 5))
    space.close()
    space = ts.connect(url)
    try:
        space.write(("result", 7))
        assert space.record("farm").get("total") == 12
    finally:
        space.close()


# -- reactions on records: refresh, create, call ---------------------------------------------------


def farm(space: Any) -> Any:
    """A record whose method counts the jobs given to it and creates a record for each."""
    return space.create(
        "farm",
        {
            "given": 0,
            "give": ts.Method(
                "function(self, job) self.given = self.given + 1 "
                "create('jobs/' .. job, {job = job, done = false}) return self.given end"
            ),
        },
        lease=60,
    )


def test_a_reaction_refreshes_creates_and_calls_in_one_step(space: Any) -> None:
    farm(space)
    space.rules.add(
        "intake",
        template=("order", str, int),
        write=[(ts.Lit("taken"), "t[1]")],
        refresh={"farm": 3600},
        create={"'orders/' + t[1]": {"qty": "t[2]", "state": "new"}},
        call=[("farm", "give", "t[1]")],
    )
    assert space.record("farm").get("$lifetime") <= 60
    space.write(("order", "a1", 3))
    assert space.record("farm").get("$lifetime") > 3000  # refreshed
    assert space.record("orders/a1").get("qty") == 3
    assert space.record("orders/a1").get("state") == "new"
    assert space.record("jobs/a1").get("done") is False  # created by the method the reaction called
    assert space.record("farm").get("given") == 1
    assert space.read_all(("taken", str)) == [("taken", "a1")]
    info = space.rules.get("intake")
    assert (info.fired, info.failed) == (1, 0)
    assert info.refresh == {"farm": 3600}
    assert info.call == (("farm", "give", "t[1]"),)

    space.write(("order", "a1", 5))  # orders/a1 is taken: nothing of the firing happens
    info = space.rules.get("intake")
    assert (info.fired, info.failed) == (1, 1)
    assert isinstance(info.last_error, ts.RecordExists)
    assert space.record("farm").get("given") == 1
    assert space.record("orders/a1").get("qty") == 3
    assert space.count(("taken", str)) == 1


def test_a_record_a_reaction_creates_holds_the_address_of_another_as_a_process_would(space: Any) -> None:
    kitchen = space.create("kitchen", {"temp": 21.0})
    space.create("hall", {"temp": 18.0})
    space.rules.add(
        "room", template=("room", str), create={"'rooms/' + t[1]": {"place": kitchen.address, "name": "t[1]"}}
    )
    space.write(("room", "a"))
    room = space.record("rooms/a")
    assert room.get("place") == kitchen.address
    assert space.record(room.get("place")).get("temp") == 21.0
    with pytest.raises(ts.RecordInUse):  # the new record contains the kitchen
        kitchen.destroy()
    kitchen.move("cooking")
    assert str(room.get("place")).endswith("/cooking")
    kitchen.destroy(force=True)  # the address it held goes with it
    assert room.get("place") is None
    space.write(("room", "b"))  # it names no record now: the firing fails, creating nothing
    assert isinstance(space.rules.get("room").last_error, ts.RecordNotFound)
    assert space.find({"name": "b"}) == []


def test_a_reaction_gives_a_record_a_new_lease(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sim_space.create("farm", {"n": 0}, lease=10)
    sim_space.rules.add("keep", template=("alive",), refresh={"farm": "double(size(t)) * 100.0"})
    clock.advance(5)
    sim_space.write(("alive",))
    clock.advance(50)
    assert sim_space.record("farm").get("n") == 0  # lives 100 s from the firing
    clock.advance(50)
    with pytest.raises(ts.RecordNotFound):
        sim_space.record("farm")
    sim_space.rules.add("gone", template=("dead",), refresh={"farm": 10})
    sim_space.rules.add("bad", template=("dead",), refresh={"other": -1}, write=[(ts.Lit("nope"),)])
    sim_space.create("other", {})
    sim_space.write(("dead",))
    assert isinstance(sim_space.rules.get("gone").last_error, ts.RecordNotFound)
    assert isinstance(sim_space.rules.get("bad").last_error, ts.InvalidValue)
    assert sim_space.count(("nope",)) == 0


def test_a_reaction_that_creates_or_calls_is_levelled_and_refused_in_a_cycle(space: Any) -> None:
    farm(space)
    space.rules.add("count", path="farm", tag="given", write=[(ts.Lit("given"), "value")])
    with pytest.raises(ts.RuleCycle) as called:  # a call sets every field of its record
        space.rules.add("again", path="farm", tag="given", call=[("farm", "give", "'x'")])
    assert called.value.cycle == ["again", "again"]
    space.rules.add("give", template=("order", str), call=[("farm", "give", "t[1]")])
    with pytest.raises(ts.RuleCycle) as through:
        space.rules.add("reorder", template=("given", int), write=[(ts.Lit("order"), "'again'")])
    assert through.value.cycle == ["reorder", "give", "count", "reorder"]
    with pytest.raises(ts.RuleCycle) as made:  # creating the record it reacts to the creation of
        space.rules.add("twice", path="copy", on="create", create={"copy": {"n": 1}})
    assert made.value.cycle == ["twice", "twice"]
    space.rules.add("watch", path="orders/x", on="create", write=[(ts.Lit("made"), "path")])
    space.rules.add("make", template=("make", str), create={"'orders/' + t[1]": {"n": 1}})
    levels = {r.name: r.level for r in space.rules.list()}
    assert levels["make"] < levels["watch"]  # a computed path may be any record's
    space.write(("make", "x"))
    assert space.read_all(("made", str)) == [("made", "orders/x")]


def test_a_reaction_that_calls_pays_the_firing_and_the_steps_from_its_principal() -> None:
    space = ts.Space()
    space.rules.firing_charge = "0.5"
    space.rules.step_charge = "0.001"  # a method's steps are paid in hundreds: 0.1 a hundred
    farm(space)
    space.rules.add("give", template=("order", str), call=[("farm", "give", "t[1]")], principal="ops")
    space.grant_credit("ops", "0.65")
    space.write(("order", "a"))  # one firing, a hundred steps
    assert space.account("ops") == ts.Credit("0.05")
    assert space.record("jobs/a").get("job") == "a"
    space.write(("order", "b"))  # cannot pay: nothing happens
    info = space.rules.get("give")
    assert (info.fired, info.failed, info.state) == (1, 1, "stopped")
    assert isinstance(info.last_error, ts.InsufficientCredit)
    assert space.record("farm").get("given") == 1
    with pytest.raises(ts.RecordNotFound):
        space.record("jobs/b")


def test_a_method_creates_records_with_its_other_changes(space: Any) -> None:
    jobs = farm(space)
    assert jobs.call("give", "j1") == 1
    assert space.record("jobs/j1").get("job") == "j1"
    with pytest.raises(ts.RecordExists):  # its path is taken: nothing of the call happens
        jobs.call("give", "j1")
    assert jobs.get("given") == 1
    jobs.set("bad", ts.Method("function(self) create('x', {nested = {1, 2}}) self.given = 9 end"))
    with pytest.raises(ts.EvaluationError, match="nil, a boolean, a number or a string"):
        jobs.call("bad")
    jobs.set("loose", ts.Method("function(self) self.given = 7 create('a b', {}) end"))
    with pytest.raises(ts.InvalidValue):
        jobs.call("loose")
    assert jobs.get("given") == 1
    with pytest.raises(ts.RecordNotFound):
        space.record("x")


def test_a_method_that_creates_without_end_stops_at_its_limits_and_creates_nothing(space: Any) -> None:
    jobs = farm(space)
    jobs.set("flood", ts.Method("function(self) for i = 1, 1e9 do create('f/' .. i, {i = i}) end end"))
    with pytest.raises(ts.LimitReached) as info:
        jobs.call("flood")
    assert info.value.limit in ("method_steps", "method_memory", "method_ms")
    with pytest.raises(ts.RecordNotFound):
        space.record("f/1")


def test_reactions_on_records_fire_once_across_restarts_of_a_durable_space(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    space = ts.connect(url)
    farm(space)
    space.rules.add(
        "intake",
        template=("order", str),
        refresh={"farm": "60.0 * 60.0"},
        create={"'orders/' + t[1]": {"n": 1, "by": ts.Lit("t[1]")}},
        call=[("farm", "give", "t[1]")],
    )
    space.write(("order", "a"))
    space.close()
    space = ts.connect(url)
    try:
        assert space.rules.get("intake").create["'orders/' + t[1]"]["n"] == 1
        space.write(("order", "b"))
        assert space.record("farm").get("given") == 2
        assert space.record("orders/b").get("by") == "t[1]"
        assert space.record("jobs/a").get("job") == "a"
        assert space.rules.get("intake").fired == 2  # counted across the restart
    finally:
        space.close()


MAKER = """
import sys, tuplespace as ts
space = ts.connect(sys.argv[1])
if not space.rules.list():
    space.create("farm", {"given": 0, "give": ts.Method(
        "function(self, job) self.given = self.given + 1 create('jobs/' .. job, {job = job}) end")})
    space.rules.add("intake", template=("order", int), when="t[1] % 2 == 1",
                    create={"'orders/' + string(t[1])": {"n": "t[1]"}}, call=[("farm", "give", "t[1]")])
start = space.count(("order", int))
print("ready", flush=True)
for i in range(start, start + 1_000_000):
    space.write(("order", i))
    if i % 20 == 0:
        print(i, flush=True)
"""


def test_a_reaction_that_creates_and_calls_is_committed_with_what_set_it_off_across_kills(
    tmp_path: Path,
) -> None:
    url = f"sqlite://{tmp_path / 'spaces.db'}?space=s"
    for _ in range(2):
        child = subprocess.Popen([sys.executable, "-c", MAKER, url], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            for _ in range(3):  # killed after at least 40 more writes, at no chosen moment
                assert child.stdout.readline(), "the child ended"
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        space = ts.connect(url)
        try:
            odd = sorted(t[1] for t in space.read_all(("order", int)) if t[1] % 2)
            assert odd
            orders = [space.record(f"orders/{i}").get("n") for i in odd]
            jobs = [space.record(f"jobs/{i}").get("job") for i in odd]
            assert orders == odd
            assert jobs == odd  # each created by the method, once
            assert space.record("farm").get("given") == len(odd)
            assert space.record("farm").get("given") == len(space.find({"n": int}))
        finally:
            space.close()
