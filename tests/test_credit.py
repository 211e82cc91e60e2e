"""Credit (docs/records.md): accounts pay for records, records drain credit while they
store bytes, and a record whose credit runs out expires, exactly on time."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE
from tuplespace._credit import MAX_ACCOUNTS, MAX_PRINCIPAL

# charge_rate 1024 credit per second per KiB is 1 credit per second per byte, so a
# record's burn rate is its size: "r" + "n" + "1" stores 3 bytes, burns 3 credit/s.
RATE = "1024"


@pytest.fixture
def bank(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> Any:
    """A space that charges for storage and creation, on the simulated clock."""
    return make_space(clock=clock, charge_rate=RATE, creation_charge="5")


@pytest.fixture
def live_bank(make_space: Callable[..., Any]) -> Any:
    """A space that charges for storage and creation, on the wall clock (or Redis's)."""
    return make_space(charge_rate=RATE, creation_charge="5")


def test_credit_is_off_by_default(space: Any) -> None:
    rec = space.create("r", {"n": 1}, credit=100)
    assert rec.get("$credit") == ts.Credit(100)
    assert rec.get("$lifetime") is None
    assert space.account("default") == 0
    rec.refresh(credit=5)
    assert rec.get("$credit") == ts.Credit(105)


def test_creating_debits_the_principal(bank: Any) -> None:
    assert bank.grant_credit("alice", 100) == ts.Credit(100)
    rec = bank.create("r", {"n": 1}, credit=30, principal="alice")
    assert bank.account("alice") == ts.Credit(65)  # 30 for the record, 5 for creating it
    assert rec.get("$credit") == ts.Credit(30)
    assert rec.get("$lifetime") == 10.0


def test_not_enough_credit_writes_nothing(live_bank: Any) -> None:
    bank = live_bank
    bank.grant_credit("bob", 10)
    before = bank.statistics()["last_event"]
    with pytest.raises(ts.InsufficientCredit) as info:
        bank.create("r", {"n": 1}, credit=30, principal="bob")
    assert (info.value.needed, info.value.available, info.value.principal) == (
        ts.Credit(35),
        ts.Credit(10),
        "bob",
    )
    assert isinstance(info.value, ts.TupleSpaceError)
    with pytest.raises(ts.RecordNotFound):
        bank.record("r")
    assert bank.account("bob") == ts.Credit(10)
    assert bank.statistics()["last_event"] == before
    with pytest.raises(ts.InsufficientCredit):
        bank.create("r", {"n": 1}, credit=1)  # the default principal has nothing


def test_credit_drains_and_the_record_expires_exactly_when_it_runs_out(
    bank: Any, clock: ts.SimulatedClock
) -> None:
    bank.grant_credit("alice", 100)
    rec = bank.create("r", {"n": 1}, credit=30, principal="alice")
    watch = rec.watch()
    clock.advance(4)
    assert rec.get("$credit") == ts.Credit(18)
    assert rec.get("$lifetime") == 6.0
    clock.advance(5.5)
    assert rec.get("$credit") == ts.Credit("1.5")
    clock.advance(0.5)
    with pytest.raises(ts.RecordNotFound):
        rec.get("n")
    change = watch.get(timeout=PATIENCE)
    assert change.kind == "expire"
    assert change.time == clock.now()


def test_a_record_expires_with_nobody_calling(bank: Any, clock: ts.SimulatedClock) -> None:
    bank.grant_credit("alice", 100)
    bank.create("r", {"n": 1}, credit=3, principal="alice")
    with bank.watch_records() as watch:
        clock.advance(1)
        assert watch.get(timeout=PATIENCE).kind == "expire"
    assert bank.statistics()["records"] == 0


def test_a_bigger_value_burns_faster(bank: Any, clock: ts.SimulatedClock) -> None:
    bank.grant_credit("alice", 100)
    rec = bank.create("r", {"n": 1}, credit=30, principal="alice")
    clock.advance(2)  # 24 left
    rec.set("n", 12345)  # 7 bytes now: 7 credit/s
    assert rec.get("$credit") == ts.Credit(24)
    assert rec.get("$lifetime") == pytest.approx(24 / 7)
    rec.set("n", 1)  # back to 3 bytes
    assert rec.get("$lifetime") == 8.0
    clock.advance(8)
    with pytest.raises(ts.RecordNotFound):
        rec.get("n")


def test_refresh_adds_credit_from_the_account(bank: Any, clock: ts.SimulatedClock) -> None:
    bank.grant_credit("alice", 100)
    rec = bank.create("r", {"n": 1}, credit=30, principal="alice")
    clock.advance(9)
    rec.refresh(credit=12, principal="alice")
    assert bank.account("alice") == ts.Credit(53)
    assert rec.get("$credit") == ts.Credit(15)
    assert rec.get("$lifetime") == 5.0
    with pytest.raises(ts.InsufficientCredit):
        rec.refresh(credit=1000, principal="alice")
    assert rec.get("$credit") == ts.Credit(15)


def test_a_lease_buys_its_seconds(bank: Any, clock: ts.SimulatedClock) -> None:
    bank.grant_credit("alice", 100)
    rec = bank.create("r", {"n": 1}, lease=10, principal="alice")
    assert bank.account("alice") == ts.Credit(65)
    assert rec.get("$lifetime") == 10.0
    clock.advance(6)
    rec.refresh(lease=10, principal="alice")  # 12 left, 30 needed: 18 more
    assert bank.account("alice") == ts.Credit(47)
    assert rec.get("$lifetime") == 10.0
    rec.refresh(lease=2, principal="alice")  # has enough already: costs nothing
    assert bank.account("alice") == ts.Credit(47)


def test_a_record_in_a_charging_space_must_be_funded(live_bank: Any) -> None:
    bank = live_bank
    bank.grant_credit("alice", 100)
    with pytest.raises(ts.InvalidValue, match="credit"):
        bank.create("r", {"n": 1}, principal="alice")
    assert bank.account("alice") == ts.Credit(100)


def test_a_lease_pays_for_its_seconds_and_the_record_expires_when_its_credit_runs_out(live_bank: Any) -> None:
    bank = live_bank
    bank.grant_credit("alice", 100)
    with bank.watch_records() as watch:
        bank.create("brief", {"n": 1}, lease=0.25, principal="alice")  # 7 bytes for 0.25 s: 1.75
        assert bank.account("alice") == ts.Credit("93.25")
        assert [watch.get(timeout=PATIENCE).kind for _ in range(2)] == ["create", "expire"]
    with pytest.raises(ts.RecordNotFound):
        bank.record("brief")
    assert (bank.account("alice"), bank.account("operator")) == (ts.Credit("93.25"), ts.Credit("6.75"))


def test_a_record_drains_what_it_holds_and_every_bit_burned_goes_to_the_operator(live_bank: Any) -> None:
    bank = live_bank
    bank.grant_credit("alice", 1000)
    rec = bank.create("r", {"n": 1}, credit=600, principal="alice")  # 3 credit/s: 200 s
    rec.refresh(lease=300, principal="alice")  # 900 needed: alice pays what it lacks
    paid = ts.Credit(395) - bank.account("alice")
    assert 300 <= paid < 900
    assert 0 < rec.get("$credit") <= 900
    assert 0 < rec.get("$lifetime") <= 300
    rec.refresh(lease=2, principal="alice")  # has enough: costs nothing
    assert bank.account("alice") == ts.Credit(395) - paid
    rec.set("n", 12345)  # 7 bytes from now on
    assert 0 < rec.get("$lifetime") < 900 / 7
    rec.destroy()
    assert bank.account("alice") + bank.account("operator") == 1000


def test_clone_is_paid_like_a_creation(bank: Any) -> None:
    bank.grant_credit("alice", 100)
    rec = bank.create("r", {"n": 1}, credit=30, principal="alice")
    copy = rec.clone("s", credit=30, principal="alice")
    assert copy.get("$lifetime") == 10.0
    assert bank.account("alice") == ts.Credit(30)
    with pytest.raises(ts.InsufficientCredit):
        rec.clone("t", credit=30, principal="alice")


def test_a_creation_charge_alone_does_not_drain(make_space: Callable[..., Any]) -> None:
    space = make_space(creation_charge="2.5")
    space.grant_credit("alice", 10)
    rec = space.create("r", {"n": 1}, credit=1, principal="alice")
    assert space.account("alice") == ts.Credit("6.5")
    assert rec.get("$lifetime") is None
    assert rec.get("$credit") == ts.Credit(1)


def test_fractions_of_credit(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> None:
    space = make_space(clock=clock, charge_rate="0.001")
    space.grant_credit("alice", "1")
    rec = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"}, credit="0.5", principal="alice")
    size = len("sensors/kitchen") + len("temp") + len(ts.encode(21.5)) + len("unit") + len(ts.encode("C"))
    burn = Decimal("0.001") * size / 1024
    clock.advance(100)
    assert rec.get("$credit") == ts.Credit((Decimal("0.5") - burn * 100).quantize(Decimal("1e-9")))
    assert rec.get("$lifetime") == pytest.approx(float(Decimal("0.5") / burn) - 100)


def test_accounts(space: Any) -> None:
    assert space.account("nobody") == 0
    assert space.grant_credit("carol", "1.25") == ts.Credit("1.25")
    assert space.grant_credit("carol", 2) == ts.Credit("3.25")
    assert space.account("carol") == ts.Credit("3.25")
    for bad in (-1, 1.5, "x"):
        with pytest.raises(ts.InvalidValue):
            space.grant_credit("carol", bad)
    with pytest.raises(ts.InvalidValue):
        space.grant_credit("", 1)


def test_the_charging_options_are_checked() -> None:
    for bad in (-1, 0.5, "nope"):
        with pytest.raises(ValueError, match="charge_rate"):
            ts.Space(charge_rate=bad)


def scenario(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> list[Any]:
    space = make_space(clock=clock, charge_rate="37.5", creation_charge="0.01")
    space.grant_credit("a", 1000)
    seen: list[Any] = []
    with space.watch_records() as watch:
        recs = [
            space.create(f"r/{i}", {"v": i * 1.5, "s": "x" * i}, credit=i + 1, principal="a")
            for i in range(8)
        ]
        for step in range(40):
            clock.advance(0.75)
            for i, rec in enumerate(recs):
                try:
                    if (step + i) % 3 == 0:
                        rec.set("s", "y" * ((step * i) % 13))
                    seen.append((i, rec.get("$credit"), rec.get("$lifetime")))
                except ts.RecordNotFound:
                    seen.append((i, "gone"))
        while True:
            try:
                seen.append(tuple(watch.get(timeout=0)))
            except ts.Timeout:
                break
    seen.append(space.account("a"))
    return seen


def test_credit_is_deterministic_under_a_simulated_clock(
    make_space: Callable[..., Any], clock: ts.SimulatedClock
) -> None:
    first = scenario(make_space, clock)
    second = scenario(make_space, ts.SimulatedClock())
    assert first == second
    assert any(item[1] == "gone" for item in first if isinstance(item, tuple) and len(item) == 2)
    assert any(isinstance(item, tuple) and len(item) == 7 and item[1] == "expire" for item in first)


def test_the_charging_options_come_from_a_url() -> None:
    space = ts.connect("memory:?charge_rate=1024&creation_charge=0.5&base_uri=tuplespace://n1.example/")
    assert isinstance(space, ts.Space)
    assert (space.charge_rate, space.creation_charge) == (ts.Credit(1024), ts.Credit("0.5"))
    assert space.base_uri == "tuplespace://n1.example/"
    space.grant_credit("p", 10)
    rec = space.create("r", {"n": 1}, lease=1, principal="p")  # 3 bytes for 1 s: 3, and 0.5 to create
    assert str(rec.address) == "tuplespace://n1.example/spaces/default/r"
    assert space.account("p") == ts.Credit("6.5")
    space.close()


# -- transfers and the operator's account ---------------------------------------------------------


def test_a_transfer_moves_credit_exactly_and_all_or_nothing(space: Any) -> None:
    space.grant_credit("alice", "10.000000001")
    assert space.transfer_credit("alice", "bob", "0.000000001") == ts.Credit(10)
    assert (space.account("alice"), space.account("bob")) == (ts.Credit(10), ts.Credit("0.000000001"))
    with pytest.raises(ts.InsufficientCredit) as info:
        space.transfer_credit("alice", "bob", "10.5")
    assert (info.value.needed, info.value.available) == (ts.Credit("10.5"), ts.Credit(10))
    assert (space.account("alice"), space.account("bob")) == (ts.Credit(10), ts.Credit("0.000000001"))
    for bad in (-1, 0.5, "x", None):
        with pytest.raises(ts.InvalidValue):
            space.transfer_credit("alice", "bob", bad)
    with pytest.raises(ts.InvalidValue):
        space.transfer_credit("alice", "", 1)
    assert space.transfer_credit("alice", "alice", 10) == ts.Credit(10)
    assert space.account("alice") == ts.Credit(10)


def test_a_space_keeps_at_most_max_accounts() -> None:
    space = ts.Space(mint_amount="1", mint_bits=1)
    most = MAX_ACCOUNTS
    for i in range(most - 1):
        space.grant_credit(f"p{i}", 1)
    space.grant_credit("alice", 3)
    with pytest.raises(ts.LimitReached) as info:
        space.transfer_credit("alice", "newcomer", 1)
    assert (info.value.limit, info.value.maximum) == ("max_accounts", most)
    assert space.account("alice") == ts.Credit(3)  # all or nothing
    with pytest.raises(ts.LimitReached):
        space.grant_credit("newcomer", 1)
    c = space.credit_challenge()
    with pytest.raises(ts.LimitReached):
        space.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits), principal="newcomer")
    assert space.transfer_credit("alice", "p0", 1) == ts.Credit(2)  # an account kept takes more
    space.transfer_credit("alice", space.operator, 1)  # the operator's account is always kept
    assert space.statistics()["accounts"] == most + 1


def test_a_transfer_moves_more_than_nothing_between_named_accounts(space: Any) -> None:
    space.grant_credit("alice", 1)
    for nothing in (0, "0", "-0", ts.Credit(0)):
        with pytest.raises(ts.InvalidValue) as info:
            space.transfer_credit("alice", "bob", nothing)
        assert info.value.path == "amount"
    with pytest.raises(ts.InvalidValue) as info:
        space.transfer_credit("alice", "b" * (MAX_PRINCIPAL + 1), 1)
    assert f"1 to {MAX_PRINCIPAL} characters" in str(info.value)
    with pytest.raises(ts.InvalidValue):
        space.grant_credit("b" * (MAX_PRINCIPAL + 1), 1)
    assert space.statistics()["accounts"] == 1  # nothing made an account for bob
    assert space.transfer_credit("alice", "b" * MAX_PRINCIPAL, 1) == 0


def test_burned_credit_goes_to_the_operator(bank: Any, clock: ts.SimulatedClock) -> None:
    bank.grant_credit("alice", 100)
    rec = bank.create("r", {"n": 1}, credit=30, principal="alice")  # burns 3 credit/s
    assert bank.account("operator") == ts.Credit(5)  # the creation charge
    clock.advance(2)
    assert bank.account("operator") == ts.Credit(11)  # and what the record drained
    rec.set("n", 12)  # 4 bytes from now on: the record settles
    clock.advance(1)
    assert (rec.get("$credit"), bank.account("operator")) == (ts.Credit(20), ts.Credit(15))
    rec.destroy()  # what it held is burned too
    assert bank.account("operator") == ts.Credit(35)
    assert bank.account("alice") + bank.account("operator") == 100
    bank.transfer_credit("operator", "alice", 35)
    assert (bank.account("operator"), bank.account("alice")) == (0, 100)


def test_the_operator_can_spend_what_records_drained(
    make_space: Callable[..., Any], clock: ts.SimulatedClock
) -> None:
    space = make_space(clock=clock, charge_rate=RATE, operator="node")
    assert ts.Space().operator == "operator"
    space.grant_credit("alice", 100)
    rec = space.create("r", {"n": 1}, credit=30, principal="alice")
    clock.advance(4)
    assert (space.account("node"), space.account("operator")) == (12, 0)
    assert space.transfer_credit("node", "bob", 12) == 0  # the records settle first
    assert (rec.get("$credit"), rec.get("$lifetime")) == (18, 6.0)
    clock.advance(6)
    with pytest.raises(ts.RecordNotFound):
        rec.get("n")
    assert (space.account("node"), space.account("bob"), space.account("alice")) == (18, 12, 70)


def test_the_operator_and_its_account_survive_a_restart(tmp_path: Path) -> None:
    clock = ts.SimulatedClock()
    url = f"sqlite://{tmp_path}/spaces.db?space=s"
    space = ts.connect(url, clock=clock, charge_rate=RATE, creation_charge=1, operator="node")
    space.grant_credit("alice", 100)
    space.create("r", {"n": 1}, credit=30, principal="alice")
    clock.advance(2)
    space.transfer_credit("alice", "bob", 9)
    space.close()
    with pytest.raises(ValueError, match="operator"):
        ts.connect(url, clock=clock, operator="other")
    clock.advance(3)
    space = ts.connect(url, clock=clock)
    try:
        assert space.operator == "node"
        assert (space.account("node"), space.account("alice"), space.account("bob")) == (16, 60, 9)
        clock.advance(10)  # the record ran out: all it held was burned
        assert space.account("node") == 31
    finally:
        space.close()
