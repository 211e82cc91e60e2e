"""Credit powers active tuples (docs/active.md#credit): method steps and firings are
paid by principals, burned credit goes to the operator's account, exactly."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tuplespace as ts
from conftest import LIMITS_HERE, REDIRECT_PAID

SUM = "function(self, n) local s = 0 for i = 1, n do s = s + i end self.total = s return s end"


@pytest.fixture
def counter(make_space: Callable[..., Any]) -> tuple[Any, Any]:
    """A record with methods, in a space whose method steps cost 0.001 credit each."""
    space = make_space(step_charge="0.001")
    return space, space.create(
        "counter",
        {
            "target": 21.0,
            "total": 0,
            "bump": ts.Method("function(self, d) self.target = self.target + d return self.target end"),
            "sum": ts.Method(SUM),
            "spin": ts.Method("function(self) write('spun') while true do end end"),
            "fail": ts.Method("function(self) self.target = 0.0 error('no') end"),
        },
    )


def test_method_steps_cost_the_caller_in_hundreds(counter: tuple[Any, Any]) -> None:
    space, rec = counter
    space.grant_credit("ops", 10)
    assert rec.call("bump", 0.5, principal="ops") == 21.5
    assert space.account("ops") == ts.Credit("9.9")  # a short method pays for one hundred steps
    assert space.account("operator") == ts.Credit("0.1")
    assert rec.call("sum", 1000, principal="ops") == 500500
    paid = ts.Credit("9.9") - space.account("ops")
    assert paid > 1
    assert paid % ts.Credit("0.1") == 0
    assert space.account("ops") + space.account("operator") == 10
    with pytest.raises(ts.InsufficientCredit):
        rec.call("bump", 0.5)  # the default principal holds nothing


def test_a_call_runs_only_the_steps_its_principal_can_pay_for(counter: tuple[Any, Any]) -> None:
    space, rec = counter
    space.grant_credit("ops", 1)  # ten hundreds: the method may run 900 steps
    with pytest.raises(ts.InsufficientCredit) as info:
        rec.call("sum", 100_000, principal="ops")
    assert "ran out of credit" in str(info.value)
    assert "900 steps" in str(info.value)
    assert (info.value.principal, info.value.available) == ("ops", ts.Credit(1))
    assert rec.get("total") == 0
    assert space.account("ops") == 0  # the thousand steps it ran
    assert space.account("operator") == 1


def test_a_call_that_cannot_pay_a_hundred_steps_does_not_run(counter: tuple[Any, Any]) -> None:
    space, rec = counter
    space.grant_credit("ops", "0.099")
    with pytest.raises(ts.InsufficientCredit) as info:
        rec.call("bump", 1.0, principal="ops")
    assert (info.value.needed, info.value.available) == (ts.Credit("0.1"), ts.Credit("0.099"))
    assert "nothing ran" in str(info.value)
    assert (rec.get("target"), space.account("ops"), space.account("operator")) == (
        21.0,
        ts.Credit("0.099"),
        0,
    )


@pytest.mark.embedded(LIMITS_HERE)
def test_a_stopped_or_failing_method_pays_for_what_it_ran(counter: tuple[Any, Any]) -> None:
    space, rec = counter
    space.rules.limits = ts.ActiveLimits(method_steps=1000)
    space.grant_credit("ops", 100)
    with pytest.raises(ts.LimitReached) as info:
        rec.call("spin", principal="ops")
    assert info.value.limit == "method_steps"
    assert space.account("ops") == ts.Credit("98.9")  # stopped at the hook past 1000 steps: 1100
    assert space.count(("spun",)) == 0
    with pytest.raises(ts.EvaluationError):
        rec.call("fail", principal="ops")
    assert (rec.get("target"), space.account("ops")) == (21.0, ts.Credit("98.8"))
    with pytest.raises(ts.InvalidValue):
        rec.call("bump", [1], principal="ops")  # refused before it runs: free
    assert space.account("ops") + space.account("operator") == 100


def test_paid_steps_are_durable(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/spaces.db?space=s"
    space = ts.connect(url)
    space.rules.step_charge = "0.01"
    space.grant_credit("ops", 5)
    rec = space.create("r", {"n": 0, "inc": ts.Method("function(self) self.n = self.n + 1 end")})
    rec.call("inc", principal="ops")
    space.close()
    space = ts.connect(url)
    try:
        assert (space.account("ops"), space.account("operator")) == (4, 1)
        assert space.record("r").get("n") == 1
    finally:
        space.close()


def test_a_space_starts_with_the_charges_and_max_firings_it_was_made_with_and_keeps_them(
    tmp_path: Path,
) -> None:
    options = {"firing_charge": "0.5", "step_charge": "0.001", "max_firings": 7, "redirect_charge": "2"}
    url = f"sqlite://{tmp_path}/spaces.db?space=s"
    space = ts.connect(url, **options)
    try:
        rules = space.rules
        assert (rules.firing_charge, rules.step_charge, rules.limits.max_firings) == (
            ts.Credit("0.5"),
            ts.Credit("0.001"),
            7,
        )
        assert space.redirect_charge == ts.Credit(2)
    finally:
        space.close()
    space = ts.connect(url)  # the file keeps them
    try:
        assert (space.firing_charge, space.step_charge, space.max_firings, space.redirect_charge) == (
            ts.Credit("0.5"),
            ts.Credit("0.001"),
            7,
            ts.Credit(2),
        )
    finally:
        space.close()
    with pytest.raises(ValueError, match="has max_firings=7"):
        ts.connect(url, max_firings=8)
    for bad in ({"firing_charge": "-1"}, {"step_charge": "x"}, {"max_firings": 0}, {"redirect_charge": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ts.Space(**bad)


CHANGED = ts.ActiveLimits(max_firings=9, method_steps=700, method_ms=50, method_memory=1 << 16)


def test_the_charges_and_limits_changed_on_an_open_durable_space_are_kept(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/spaces.db?space=s&firing_charge=0.5&method_steps=5000"
    space = ts.connect(url)
    try:
        assert space.rules.limits == ts.ActiveLimits(method_steps=5000)
        space.rules.firing_charge = "0.25"
        space.rules.step_charge = "0.001"
        space.rules.limits = CHANGED
    finally:
        space.close()
    space = ts.connect(url.replace("0.5", "0.25").replace("5000", "700"))
    try:
        rules = space.rules
        assert (rules.firing_charge, rules.step_charge) == (ts.Credit("0.25"), ts.Credit("0.001"))
        assert rules.limits == CHANGED
        space.grant_credit("default", 10)
        counter = space.create("c", {"n": 0, "spin": ts.Method("function(self) while true do end end")})
        with pytest.raises(ts.LimitReached) as stopped:
            counter.call("spin")
        assert (stopped.value.limit, stopped.value.maximum) == ("method_steps", 700)
    finally:
        space.close()
    for change in ("firing_charge", "step_charge", "limits"):  # a closed space changes nothing
        with pytest.raises(ts.SpaceClosed):
            setattr(space.rules, change, CHANGED if change == "limits" else "9")
    assert (space.rules.firing_charge, space.rules.step_charge) == (ts.Credit("0.25"), ts.Credit("0.001"))
    with pytest.raises(ValueError, match=r"has firing_charge='0\.25'; it cannot be opened with '0\.5'"):
        ts.connect(url)  # the value it was made with is no longer its own
    with pytest.raises(ValueError, match="method_ms"):
        ts.Space(method_ms=0)


@pytest.mark.embedded(REDIRECT_PAID)
def test_a_path_a_record_moved_away_from_costs_its_caller_the_redirect_charge(
    make_space: Callable[..., Any],
) -> None:
    space = make_space(redirect_charge="0.25")
    made = space.create("offers/1", {"price": 9})
    old = str(made.address)
    space.record("offers/1").move("sold/1")
    space.grant_credit("buyer", 1)
    assert space.record("offers/1", principal="buyer").get("price") == 9
    assert (space.account("buyer"), space.account("operator")) == (ts.Credit("0.75"), ts.Credit("0.25"))
    space.record("sold/1", principal="buyer").set("price", 10)  # its own path: free
    assert space.account("buyer") == ts.Credit("0.75")
    space.record(old, principal="buyer")  # its old address
    assert space.account("buyer") == ts.Credit("0.5")
    with pytest.raises(ts.InsufficientCredit) as info:
        space.record("offers/1")  # the default principal holds nothing
    assert (info.value.principal, info.value.needed) == ("default", ts.Credit("0.25"))
    free = make_space()  # without the charge, a redirection is followed for nothing
    free.create("a", {"n": 1}).move("b")
    assert free.record("a").get("n") == 1


def test_a_rule_without_credit_stops_and_says_so(make_space: Callable[..., Any]) -> None:
    space = make_space(firing_charge="0.5")
    space.rules.add(
        "hot", template=("reading", float), when="t[1] > 30.0", write=[("alarm", "t[1]")], principal="ops"
    )
    space.grant_credit("ops", 1)
    for reading in (31.0, 32.0, 33.0, 34.0):
        space.write(("reading", reading))
    assert space.read_all(("alarm", float)) == [("alarm", 31.0), ("alarm", 32.0)]
    info = space.rules.get("hot")
    assert (info.state, info.fired, info.failed) == ("stopped", 2, 2)
    assert isinstance(info.last_error, ts.InsufficientCredit)
    assert space.read_all(("rule_stopped", str, str)) == [("rule_stopped", "hot", "ops")]  # once per stop
    assert space.account("operator") == 1
    space.grant_credit("ops", "0.5")
    assert space.rules.get("hot").state == "stopped"  # until a firing is paid
    space.write(("reading", 35.0))
    assert space.rules.list()[0].state == "active"
    space.write(("reading", 36.0))
    assert space.rules.get("hot").state == "stopped"  # stopped again, and says so again
    assert space.count(("rule_stopped", "hot", "ops")) == 2


# -- conservation -------------------------------------------------------------------------------

PRINCIPALS = ("a", "b", "operator")
OPS = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(PRINCIPALS), st.integers(0, 50)),
    st.tuples(
        st.just("transfer"), st.sampled_from(PRINCIPALS), st.sampled_from(PRINCIPALS), st.integers(1, 30)
    ),
    st.tuples(st.just("create"), st.sampled_from(PRINCIPALS), st.integers(0, 4), st.integers(1, 20)),
    st.tuples(st.just("set"), st.integers(0, 4), st.text("xyz", max_size=30)),
    st.tuples(st.just("refresh"), st.sampled_from(PRINCIPALS), st.integers(0, 4), st.integers(0, 9)),
    st.tuples(st.just("destroy"), st.integers(0, 4)),
    st.tuples(st.just("advance"), st.sampled_from((0.1, 0.37, 1.0, 2.5))),
    st.tuples(st.just("reading"), st.floats(20.0, 40.0)),
    st.tuples(st.just("call"), st.sampled_from(PRINCIPALS), st.integers(0, 300)),
    st.just(("mint",)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=40))
def test_credit_is_conserved(ops: list[tuple[Any, ...]]) -> None:
    """What the accounts (the operator's too) and the records hold changes only by
    what is granted and minted, whatever the space charges and burns, to the last
    decimal, under a simulated clock."""
    clock = ts.SimulatedClock()
    space = ts.Space(clock=clock, charge_rate="0.3", creation_charge="0.07", mint_amount="0.013", mint_bits=1)
    space.rules.firing_charge = "0.011"
    space.rules.step_charge = "0.00007"
    space.rules.add(
        "hot", template=("reading", float), when="t[1] > 30.0", write=[("alarm", "t[1]")], principal="b"
    )
    paths = [f"r/{i}" for i in range(5)]
    space.grant_credit("a", 100)
    total = Decimal(100)

    def held() -> Decimal:
        out = sum((space.account(p) for p in PRINCIPALS), Decimal(0))
        for path in [*paths, "calc"]:
            with contextlib.suppress(ts.RecordNotFound):
                out += space.record(path).get("$credit")
        return out

    space.create("calc", {"n": 0, "sum": ts.Method(SUM)}, credit=5, principal="a")
    for op in ops:
        kind = op[0]
        try:
            if kind == "grant":
                space.grant_credit(op[1], op[2])
                total += op[2]
            elif kind == "transfer":
                space.transfer_credit(op[1], op[2], op[3])
            elif kind == "create":
                space.create(paths[op[2]], {"v": "x"}, credit=op[3], principal=op[1])
            elif kind == "set":
                space.record(paths[op[1]]).set("v", op[2])
            elif kind == "refresh":
                space.record(paths[op[2]]).refresh(credit=op[3], principal=op[1])
            elif kind == "destroy":
                space.record(paths[op[1]]).destroy()
            elif kind == "advance":
                clock.advance(op[1])
            elif kind == "reading":
                space.write(("reading", op[1]))
            elif kind == "call":
                space.record("calc").call("sum", op[2], principal=op[1])
            else:
                c = space.credit_challenge()
                space.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits), principal="b")
                total += Decimal("0.013")
        except (ts.InsufficientCredit, ts.RecordNotFound, ts.RecordExists):
            pass
        assert held() == total, op
    space.close()
