"""Records (docs/records.md): named tuples with an address, tagged fields, containment,
capabilities, watches and associative lookup.

Written once against the ``space`` fixture; they run over every way of running a space,
the remote ones included, except where ``tuplespace.testing.needs_embedding`` says why not.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_until
from tuplespace.testing import Way


def changes(watch: Any, n: int) -> list[ts.Change]:
    """The next ``n`` changes of a watch."""
    return [watch.get(timeout=PATIENCE) for _ in range(n)]


def prefix(space: Any) -> str:
    """The start of the addresses of the records of ``space``."""
    return str(space.record("$").get("$PK"))[:-1]


# -- creating and reading ------------------------------------------------------------------


def test_create_then_read_a_field_a_view_and_all(space: Any) -> None:
    rec = space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})
    assert rec.get("temp") == 21.5
    assert rec.view("unit", "temp") == ("C", 21.5)
    assert rec.all() == {"temp": 21.5, "unit": "C"}
    assert isinstance(rec.all(), ts.Map)
    assert rec.tags() == ["temp", "unit"]
    assert rec.get("$version") == 1


def test_the_address_is_the_base_uri_the_space_and_the_path(space: Any, way: Way) -> None:
    rec = space.create("sensors/kitchen", {"temp": 21.5})
    me = space.record("$").get("ME")
    assert isinstance(me, ts.URI)
    assert str(me) == way.base_uri(space)
    assert isinstance(rec.address, ts.URI)
    assert str(rec.address).startswith(str(me) + "spaces/")
    assert str(rec.address).endswith("/sensors/kitchen")
    assert rec.get("$PK") == rec.address
    assert space.record(rec.address) == rec
    assert space.record(str(rec.address)) == rec
    assert space.record("sensors/kitchen") == rec


def test_the_base_uri_and_the_name_are_options_of_the_space(make_space: Callable[..., Any]) -> None:
    space = make_space(base_uri="tuplespace://node-7.example/")
    rec = space.create("a", {"x": 1})
    assert str(rec.address).startswith("tuplespace://node-7.example/spaces/")
    assert space.record("$").get("ME") == ts.URI("tuplespace://node-7.example/")
    named = ts.Space(name="jobs")
    assert str(named.create("a", {"x": 1}).address) == "tuplespace://local/spaces/jobs/a"
    with pytest.raises(ValueError, match="base_uri"):
        ts.Space(base_uri="not-absolute")


def test_a_missing_field_reads_as_the_default(space: Any) -> None:
    rec = space.create("r", {"a": 1})
    assert rec.get("b") is None
    assert rec.get("b", 7) == 7
    assert rec.view("a", "b") == (1, None)


@pytest.mark.parametrize("tag", ["", "a.b", "a/b", "$x", "x y", "é", "a" * 129, "tab\t", 7, None], ids=repr)
def test_tags_have_a_restricted_character_set(space: Any, tag: Any) -> None:
    with pytest.raises(ts.InvalidValue):
        space.create("r", {tag: 1})
    rec = space.create("ok", {"a": 1})
    with pytest.raises(ts.InvalidValue):
        rec.set(tag, 1)
    assert rec.all() == {"a": 1}
    with pytest.raises(ts.RecordNotFound):
        space.record("r")


@pytest.mark.parametrize("tag", ["a", "A-b_9", "9", "-", "x" * 128])
def test_valid_tags(space: Any, tag: str) -> None:
    rec = space.create("r", {tag: 1})
    assert rec.get(tag) == 1


@pytest.mark.parametrize(
    "path",
    [
        *("", "/a", "a/", "a//b", ".", "..", "a/../b", ".hidden", "a b", "a?b", "a#b", "$", "$cap/x", "é"),
        "/".join(["a"] * 33),
        "a" * 1025,
    ],
    ids=repr,
)
def test_paths_are_checked(space: Any, path: str) -> None:
    with pytest.raises(ts.InvalidValue):
        space.create(path, {"a": 1})


def test_values_are_the_wire_types_and_are_checked(space: Any) -> None:
    import datetime as dt

    fields = {
        "n": None,
        "b": True,
        "i": 2**70,
        "f": 1.5,
        "s": "café",
        "y": b"\x00\xff",
        "t": dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC),
        "u": ts.URI("https://example.org/x"),
        "c": ts.Credit("12.50"),
        "tup": (1, "two", (3.0,)),
        "m": {"k": [1, 2]},
    }
    rec = space.create("all", fields)
    got = rec.all()
    assert got["m"] == ts.Map({"k": (1, 2)})
    assert got["tup"] == (1, "two", (3.0,))
    assert type(got["i"]) is int
    with pytest.raises(ts.UnsupportedType):
        rec.set("x", object())
    with pytest.raises(ts.InvalidValue) as info:
        rec.set("x", float("nan"))
    assert '["x"]' in str(info.value)
    with pytest.raises(ts.InvalidValue):
        space.create("bad", {"x": {1: 2}})


def test_fields_must_be_a_mapping(space: Any) -> None:
    with pytest.raises(ts.InvalidValue):
        space.create("r", [("a", 1)])


def test_a_path_holds_one_record(space: Any) -> None:
    space.create("r", {"a": 1})
    with pytest.raises(ts.RecordExists):
        space.create("r", {"a": 2})
    assert space.record("r").get("a") == 1


def test_an_unknown_path_is_not_found(space: Any) -> None:
    with pytest.raises(ts.RecordNotFound) as info:
        space.record("nowhere")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, ts.NotFound)
    with pytest.raises(ts.RecordNotFound):
        space.record("tuplespace://elsewhere/spaces/x/r")


def test_computed_tags(space: Any) -> None:
    rec = space.create("r", {"a": 1})
    assert rec.view("$PK", "$version", "$credit", "$lifetime", "$refcount", "$level") == (
        rec.address,
        1,
        ts.Credit(0),
        None,
        0,
        0,
    )
    with pytest.raises(ts.InvalidValue, match="computed"):
        rec.get("$nope")
    with pytest.raises(ts.InvalidValue):
        rec.set("$version", 5)


# -- setting ---------------------------------------------------------------------------------


def test_set_changes_one_field_and_the_version(space: Any) -> None:
    rec = space.create("r", {"temp": 21.5, "unit": "C"})
    assert rec.set("temp", 22.0) == 2
    assert rec.set("new", "tag") == 3
    assert rec.all() == {"temp": 22.0, "unit": "C", "new": "tag"}
    assert rec.tags() == ["temp", "unit", "new"]
    assert rec.get("$version") == 3


def test_other_handles_see_a_set_at_once(space: Any) -> None:
    rec = space.create("r", {"n": 0})
    other = space.record("r")
    rec.set("n", 1)
    assert other.get("n") == 1


def test_concurrent_sets_are_each_atomic(make_space: Callable[..., Any]) -> None:
    space = make_space()
    rec = space.create("counter", {"a": 0, "b": 0})
    barrier = threading.Barrier(4)

    def work(k: int) -> None:
        barrier.wait(PATIENCE)
        for i in range(200):
            rec.set("a" if k % 2 else "b", i)

    futures = [spawn(work, k) for k in range(4)]
    for f in futures:
        f.result(PATIENCE)
    assert rec.get("$version") == 1 + 4 * 200


# -- watching ----------------------------------------------------------------------------------


def test_watch_gives_every_change_in_order(space: Any) -> None:
    rec = space.create("r", {"temp": 20.0})
    with rec.watch() as watch:
        for t in (21.0, 22.0, 23.0):
            rec.set("temp", t)
        got = changes(watch, 3)
    assert [(c.kind, c.tag, c.value, c.version) for c in got] == [
        ("update", "temp", 21.0, 2),
        ("update", "temp", 22.0, 3),
        ("update", "temp", 23.0, 4),
    ]
    assert [c.seq for c in got] == sorted(c.seq for c in got)
    assert {c.path for c in got} == {"r"}


def test_a_watch_resumes_after_a_sequence_number(space: Any) -> None:
    rec = space.create("r", {"n": 0})
    with rec.watch() as watch:
        rec.set("n", 1)
        first = watch.get(timeout=PATIENCE)
    rec.set("n", 2)
    rec.set("n", 3)
    with rec.watch(since=first.seq) as resumed:
        assert [c.value for c in changes(resumed, 2)] == [2, 3]


def test_a_watch_sees_only_its_record(space: Any) -> None:
    a = space.create("a", {"n": 0})
    b = space.create("b", {"n": 0})
    with a.watch() as watch:
        b.set("n", 1)
        a.set("n", 2)
        assert watch.get(timeout=PATIENCE).value == 2


def test_a_watch_ends_when_the_record_is_destroyed(space: Any) -> None:
    rec = space.create("r", {"n": 0})
    watch = rec.watch()
    rec.set("n", 1)
    rec.destroy()
    assert [c.kind for c in changes(watch, 2)] == ["update", "destroy"]
    assert watch.get(timeout=PATIENCE) is None
    assert watch.closed


def test_a_watch_waits_for_a_change_in_another_thread(space: Any) -> None:
    rec = space.create("r", {"n": 0})
    with rec.watch() as watch:
        got = spawn(watch.get, PATIENCE)
        rec.set("n", 5)
        assert got.result(PATIENCE).value == 5


def test_a_slow_watcher_is_bounded_and_catches_up_from_the_log(space: Any) -> None:
    rec = space.create("r", {"n": 0})
    with rec.watch(max_pending=3) as watch:
        for i in range(1, 11):
            rec.set("n", i)
        assert watch.statistics()["pending"] <= 3
        assert [c.value for c in changes(watch, 10)] == list(range(1, 11))


def test_a_watcher_that_fell_behind_the_log_learns_what_it_lost(make_space: Callable[..., Any]) -> None:
    space = make_space(event_retention=5)
    rec = space.create("r", {"n": 0})
    with rec.watch(max_pending=1) as watch:
        for i in range(1, 20):
            rec.set("n", i)
        assert watch.get(timeout=PATIENCE).value == 1
        with pytest.raises(ts.EventsLost):
            watch.get(timeout=PATIENCE)


def test_watch_records_below_a_path(space: Any) -> None:
    with space.watch_records(under="sensors") as watch:
        space.create("sensors/a", {"n": 0})
        space.create("rooms/b", {"n": 0})
        space.record("sensors/a").set("n", 1)
        got = changes(watch, 2)
    assert [(c.kind, c.path) for c in got] == [("create", "sensors/a"), ("update", "sensors/a")]
    assert got[0].value == {"n": 0}


def test_record_events_share_the_numbering_of_tuple_events_but_not_their_subscriptions(
    space: Any,
) -> None:
    with space.subscribe((ts.ANY,)) as tuples, space.watch_records() as records:
        space.write(("one",))
        space.create("r", {"n": 0})
        space.write(("two",))
        t1, t2 = tuples.get(timeout=PATIENCE), tuples.get(timeout=PATIENCE)
        r = records.get(timeout=PATIENCE)
        assert (t1.tuple, t2.tuple) == (("one",), ("two",))
        assert t1.seq < r.seq < t2.seq
    # A tuple subscription replaying the log skips record events.
    with space.subscribe((ts.ANY,), since=0) as replay:
        assert [replay.get(timeout=PATIENCE).tuple for _ in range(2)] == [("one",), ("two",)]


# -- finding and taking ----------------------------------------------------------------------


def test_find_by_a_template_over_some_tags(space: Any) -> None:
    a = space.create("sensors/a", {"unit": "C", "temp": 21.5})
    space.create("sensors/b", {"unit": "F", "temp": 70.0})
    c = space.create("sensors/c", {"unit": "C", "temp": 25.0, "extra": 1})
    space.create("sensors/d", {"unit": "C", "temp": 35.0})
    space.create("rooms/e", {"unit": "C", "temp": 22.0})
    space.create("sensors/f", {"temp": 22.0})
    found = space.find({"unit": "C", "temp": ts.Range(20, 30)}, under="sensors/")
    assert found == [a, c]
    assert space.find({"unit": "C", "temp": ts.Range(20, 30)}, under="sensors") == [a, c]
    assert len(space.find({"unit": "C", "temp": ts.Range(20, 30)})) == 3
    assert space.find({"unit": "C"}, limit=1) == [a]
    assert space.find({"extra": ts.ANY}) == [c]
    assert space.find({"unit": "K"}) == []
    assert space.find({"temp": float}, under="rooms") == [space.record("rooms/e")]


def test_find_sees_sets(space: Any) -> None:
    rec = space.create("r", {"state": "open"})
    rec.set("state", "closed")
    assert space.find({"state": "open"}) == []
    assert space.find({"state": "closed"}) == [rec]


def test_find_returns_the_oldest_first(space: Any) -> None:
    recs = [space.create(f"r{i}", {"k": "x" if i % 2 else "y"}) for i in range(6)]
    recs[4].set("k", "x")  # enters the "x" bucket last, yet is older than r5
    assert space.find({"k": "x"}) == [recs[1], recs[3], recs[4], recs[5]]


def test_find_with_an_exact_value_uses_the_index(embedded_space: Any) -> None:
    space = embedded_space
    for i in range(2000):
        space.create(f"r/{i}", {"id": i, "kind": "even" if i % 2 == 0 else "odd"})
    before = space.statistics()["record_scans"]
    assert [r.get("id") for r in space.find({"id": 1234})] == [1234]
    assert space.statistics()["record_scans"] - before == 1
    before = space.statistics()["record_scans"]
    assert len(space.find({"id": ts.Range(10, 20), "kind": "even"})) == 5
    assert space.statistics()["record_scans"] - before == 1000  # the smaller bucket: "even"


def test_find_checks_its_template(space: Any) -> None:
    with pytest.raises(ts.InvalidTemplate):
        space.find({"a.b": 1})
    with pytest.raises(ts.InvalidTemplate):
        space.find([("a", 1)])
    with pytest.raises(ts.InvalidTemplate) as info:
        space.find({"a": 1, "b": (1, object())})
    assert info.value.path == '["b"][1]'


def test_try_take_record_removes_the_oldest_match(space: Any) -> None:
    space.create("offers/1", {"item": "steel", "price": 10})
    space.create("offers/2", {"item": "steel", "price": 9})
    taken = space.try_take_record({"item": "steel"}, under="offers")
    assert isinstance(taken, ts.RecordData)
    assert taken.fields == {"item": "steel", "price": 10}
    assert str(taken.address).endswith("/offers/1")
    with pytest.raises(ts.RecordNotFound):
        space.record("offers/1")
    assert space.try_take_record({"item": "copper"}) is None


def test_take_record_waits_for_a_match(space: Any) -> None:
    taker = spawn(space.take_record, {"state": "ready"}, None, PATIENCE)
    rec = space.create("job", {"state": "new"})
    wait_until(lambda: space.statistics()["record_takers"] == 1, "the taker to wait")
    rec.set("state", "ready")
    assert taker.result(PATIENCE).fields == {"state": "ready"}
    stats = space.statistics()
    assert (stats["record_takers"], stats["records_held"], stats["records"]) == (0, 0, 0)


def test_take_record_waits_through_more_changes_than_the_log_keeps(make_space: Callable[..., Any]) -> None:
    space = make_space(event_retention=2)
    other = space.create("other", {"n": 0})
    taker = spawn(space.take_record, {"state": "ready"}, None, PATIENCE)
    wait_until(lambda: space.statistics()["record_takers"] == 1, "the taker to wait")
    for i in range(50):
        other.set("n", i)
    space.create("job", {"state": "ready"})
    assert taker.result(PATIENCE).fields == {"state": "ready"}


def test_take_record_times_out(space: Any) -> None:
    with pytest.raises(ts.Timeout):
        space.take_record({"state": "ready"}, timeout=0)
    with pytest.raises(ts.Timeout):
        space.take_record({"state": "ready"}, timeout=0.05)
    assert space.statistics()["record_takers"] == 0


def test_waiting_record_takes_are_bounded(make_space: Callable[..., Any]) -> None:
    space = make_space(max_waiters=1)
    taker = spawn(space.take_record, {"kind": "job"}, None, PATIENCE)
    wait_until(lambda: space.statistics()["record_takers"] == 1, "the taker to wait")
    with pytest.raises(ts.LimitReached) as info:
        space.take_record({"kind": "job"}, timeout=PATIENCE)
    assert (info.value.limit, info.value.maximum) == ("max_waiters", 1)
    assert space.try_take_record({"kind": "job"}) is None  # one that does not wait is not bounded
    space.create("jobs/1", {"kind": "job"})
    assert taker.result(PATIENCE).fields == {"kind": "job"}
    assert space.statistics()["record_takers"] == 0


def test_blocked_record_takes_are_served_in_arrival_order(space: Any) -> None:
    takers = []
    for i in range(4):
        takers.append(spawn(space.take_record, {"kind": "job"}, "jobs", PATIENCE))
        wait_until(lambda i=i: space.statistics()["record_takers"] == i + 1, f"taker {i} to wait")
    picky = spawn(space.take_record, {"kind": "job", "n": 9}, None, PATIENCE)
    wait_until(lambda: space.statistics()["record_takers"] == 5, "the picky taker to wait")
    space.create("elsewhere/1", {"kind": "job", "n": 0})  # below no taker's under but the picky one's
    assert space.statistics()["record_takers"] == 5
    assert space.try_take_record({"kind": "job"}) is not None
    for i in range(4):
        space.create(f"jobs/{i}", {"kind": "job", "n": i})
        assert takers[i].result(PATIENCE).fields == {"kind": "job", "n": i}
        assert all(not t.done() for t in takers[i + 1 :])
    space.create("jobs/9", {"kind": "job", "n": 9})
    assert str(picky.result(PATIENCE).address).endswith("/jobs/9")
    stats = space.statistics()
    assert (stats["record_takers"], stats["records_held"], stats["records"]) == (0, 0, 0)


def test_a_set_hands_the_record_to_the_oldest_taker_it_now_matches(space: Any) -> None:
    first = spawn(space.take_record, {"state": "ready"}, None, PATIENCE)
    wait_until(lambda: space.statistics()["record_takers"] == 1, "the first taker to wait")
    second = spawn(space.take_record, {"state": "ready"}, None, PATIENCE)
    wait_until(lambda: space.statistics()["record_takers"] == 2, "the second taker to wait")
    a, b = space.create("a", {"state": "new"}), space.create("b", {"state": "new"})
    b.set("state", "ready")
    assert str(first.result(PATIENCE).address).endswith("/b")
    a.set("state", "ready")
    assert str(second.result(PATIENCE).address).endswith("/a")


# -- the root record ---------------------------------------------------------------------------


def test_the_root_lists_the_top_level_records_and_the_base_uri(space: Any, way: Way) -> None:
    a = space.create("a", {"n": 1})
    b = space.create("x/b", {"n": 2})
    space.create("c", {"holds": b.address})
    root = space.record("$")
    assert root.tags() == ["ME", "TUPS"]
    tups = root.get("TUPS")
    assert list(tups) == ["a", "c"]
    assert tups["a"] == a.address
    assert root.get("ME") == ts.URI(way.base_uri(space))
    # a newcomer walks the space from the top
    seen = []
    todo = list(tups.values())
    while todo:
        rec = space.record(todo.pop(0))
        seen.append(rec.address)
        todo.extend(v for v in rec.all().values() if isinstance(v, ts.URI))
    assert sorted(map(str, seen)) == sorted(map(str, [a.address, b.address, space.record("c").address]))


def test_the_root_can_only_be_read_and_watched(space: Any) -> None:
    root = space.record("$")
    assert root.operations == frozenset({"read", "watch"})
    for call in (
        lambda: root.set("x", 1),
        lambda: root.destroy(),
        lambda: root.move("elsewhere"),
        lambda: root.clone("copy"),
        lambda: root.refresh(credit=1),
    ):
        with pytest.raises(ts.NotAllowed):
            call()
    with pytest.raises(ts.InvalidValue):
        space.create("r", {"x": root.get("$PK")})


# -- clone, move, destroy, leases ---------------------------------------------------------------


def test_clone_copies_the_fields_into_a_new_record(space: Any) -> None:
    rec = space.create("a", {"n": 1})
    rec.set("n", 2)
    copy = rec.clone("b")
    assert copy.all() == {"n": 2}
    assert copy.get("$version") == 1
    copy.set("n", 3)
    assert rec.get("n") == 2
    with pytest.raises(ts.RecordExists):
        rec.clone("b")


def test_move_leaves_a_redirection(sim_space: Any, clock: ts.SimulatedClock) -> None:
    space = sim_space
    rec = space.create("sensors/kitchen", {"n": 1})
    old = rec.address
    rec.move("sensors/k1", redirect_lease=60)
    assert str(rec.address).endswith("/sensors/k1")
    assert rec.get("$version") == 2
    assert space.record("sensors/kitchen") == rec
    assert space.record(old).address == rec.address
    assert space.statistics()["redirections"] == 1
    clock.advance(60)
    with pytest.raises(ts.RecordNotFound):
        space.record("sensors/kitchen")
    assert space.statistics()["redirections"] == 0


def test_a_move_can_leave_no_redirection_or_a_lasting_one(space: Any) -> None:
    a = space.create("a", {"n": 1})
    a.move("a2", redirect_lease=0)
    with pytest.raises(ts.RecordNotFound):
        space.record("a")
    b = space.create("b", {"n": 1})
    b.move("b2", redirect_lease=None)
    assert space.record("b") == b
    space.create("b", {"n": "new"})  # a record may take the path back
    assert space.record("b").get("n") == "new"


def test_move_to_a_taken_path_is_refused(space: Any) -> None:
    a = space.create("a", {"n": 1})
    space.create("b", {"n": 2})
    with pytest.raises(ts.RecordExists):
        a.move("b")
    assert str(a.address).endswith("/a")


def test_a_moved_record_is_watched_and_found_at_its_new_path(space: Any) -> None:
    rec = space.create("a", {"k": "v"})
    with rec.watch() as watch:
        rec.move("b/c")
        change = watch.get(timeout=PATIENCE)
    assert (change.kind, change.path, change.value) == ("move", "b/c", "a")
    assert space.find({"k": "v"}, under="b") == [rec]
    assert space.find({"k": "v"}, under="a") == []


def test_destroy_removes_the_record(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    other = space.record("r")
    rec.destroy()
    for call in (lambda: rec.get("n"), lambda: other.all(), lambda: rec.set("n", 2), lambda: rec.destroy()):
        with pytest.raises(ts.RecordNotFound):
            call()
    assert space.find({"n": 1}) == []
    fresh = space.create("r", {"n": 2})
    assert fresh != rec
    with pytest.raises(ts.RecordNotFound):
        rec.get("n")  # a handle names one record, not a path


def test_a_lease_ends_a_record_exactly_on_time(sim_space: Any, clock: ts.SimulatedClock) -> None:
    space = sim_space
    rec = space.create("r", {"n": 1}, lease=10)
    assert rec.get("$lifetime") == 10.0
    watch = rec.watch()
    clock.advance(9.5)
    assert rec.get("$lifetime") == 0.5
    clock.advance(0.5)
    with pytest.raises(ts.RecordNotFound):
        rec.get("n")
    assert watch.get(timeout=PATIENCE).kind == "expire"
    assert space.statistics()["records_expired"] == 1


def test_refresh_gives_a_new_lease(sim_space: Any, clock: ts.SimulatedClock) -> None:
    rec = sim_space.create("r", {"n": 1}, lease=10)
    clock.advance(5)
    assert rec.refresh(lease=20) == clock.now() + 20
    clock.advance(19)
    assert rec.get("n") == 1
    clock.advance(1)
    with pytest.raises(ts.RecordNotFound):
        rec.get("n")


def test_refresh_needs_credit_or_a_lease(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    with pytest.raises(ts.InvalidValue):
        rec.refresh()


@pytest.mark.parametrize("lease", [1e-300, 5e-324, 1e-7])
def test_a_lease_shorter_than_the_least_is_refused_naming_it_for_tuples_and_records(
    space: Any, lease: float
) -> None:
    # Each would end before it began: a record created so would answer "gone" at once.
    with pytest.raises(ts.InvalidValue, match="MIN_LEASE") as info:
        space.write(("a",), lease=lease)
    assert info.value.path == "lease"
    with pytest.raises(ts.InvalidValue, match="MIN_LEASE") as info:
        space.create("r", {"n": 1}, lease=lease)
    assert info.value.path == "lease"
    rec = space.create("r", {"n": 1})
    with pytest.raises(ts.InvalidValue, match="MIN_LEASE"):
        rec.refresh(lease=lease)
    with pytest.raises(ts.InvalidValue, match="MIN_LEASE"):
        space.write(("b",)).renew(lease)
    assert space.count(("a",)) == 0
    assert space.count(("b",)) == 1
    assert rec.get("n") == 1


# -- containment ------------------------------------------------------------------------------


def test_a_field_holding_an_address_contains_that_record(space: Any) -> None:
    sensor = space.create("sensors/t1", {"temp": 20.0})
    room = space.create("rooms/kitchen", {"sensor": sensor.address})
    house = space.create("house", {"kitchen": room.address})
    assert (sensor.get("$refcount"), sensor.get("$level")) == (1, 0)
    assert (room.get("$refcount"), room.get("$level")) == (1, 1)
    assert (house.get("$refcount"), house.get("$level")) == (0, 2)
    other = space.create("other", {"a": sensor.address, "b": sensor.address})
    assert sensor.get("$refcount") == 2  # records, not fields
    other.set("a", "plain")
    assert sensor.get("$refcount") == 2
    other.set("b", None)
    assert sensor.get("$refcount") == 1
    room.set("sensor", 0)
    assert (room.get("$level"), house.get("$level"), sensor.get("$refcount")) == (0, 1, 0)


def test_a_record_cannot_contain_itself(space: Any) -> None:
    a = space.create("a", {"n": 1})
    with pytest.raises(ts.ContainmentCycle) as info:
        a.set("me", a.address)
    assert isinstance(info.value, ValueError)
    b = space.create("b", {"a": a.address})
    c = space.create("c", {"b": b.address})
    with pytest.raises(ts.ContainmentCycle):
        a.set("c", c.address)
    with pytest.raises(ts.ContainmentCycle):
        a.set("b", b.address)
    assert a.all() == {"n": 1}
    assert a.get("$version") == 1
    d = space.create("d", {"n": 2})
    a.set("d", d.address)  # no cycle: fine
    assert (a.get("$level"), b.get("$level"), c.get("$level")) == (1, 2, 3)


def test_a_cycle_through_a_long_chain_is_found(space: Any) -> None:
    chain = [space.create("r0", {"n": 0})]
    for i in range(1, 50):
        chain.append(space.create(f"r{i}", {"below": chain[-1].address}))
    assert chain[-1].get("$level") == 49
    with pytest.raises(ts.ContainmentCycle):
        chain[0].set("top", chain[-1].address)
    side = space.create("side", {"n": 0})
    chain[0].set("side", side.address)
    assert chain[-1].get("$level") == 50


def test_an_address_of_no_record_of_this_space_is_refused(space: Any) -> None:
    ghost = prefix(space) + "no/such"
    with pytest.raises(ts.RecordNotFound):
        space.create("r", {"x": ts.URI(ghost)})
    rec = space.create("r", {"x": ts.URI("tuplespace://elsewhere/spaces/x/y")})
    assert rec.get("x") == ts.URI("tuplespace://elsewhere/spaces/x/y")
    assert rec.get("$level") == 0


def test_destroying_a_container_leaves_what_it_contained(space: Any) -> None:
    child = space.create("child", {"n": 1})
    parent = space.create("parent", {"c": child.address})
    parent.destroy()
    assert child.get("$refcount") == 0
    assert "child" in space.record("$").get("TUPS")


def test_a_contained_record_is_destroyed_only_when_forced(space: Any) -> None:
    child = space.create("child", {"n": 1})
    parent = space.create("parent", {"c": child.address, "d": child.address, "x": 1})
    with pytest.raises(ts.RecordInUse):
        child.destroy()
    assert child.get("n") == 1
    with parent.watch() as watch:
        child.destroy(force=True)
        got = changes(watch, 2)
    assert parent.all() == {"c": None, "d": None, "x": 1}
    assert [(c.kind, c.tag, c.value) for c in got] == [("update", "c", None), ("update", "d", None)]
    assert parent.get("$level") == 0


def test_a_contained_record_that_expires_empties_the_fields_that_held_it(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    child = sim_space.create("child", {"n": 1}, lease=5)
    parent = sim_space.create("parent", {"c": child.address})
    clock.advance(5)
    assert parent.get("c") is None
    assert parent.get("$version") == 2


def test_a_move_changes_the_addresses_its_containers_hold(space: Any) -> None:
    child = space.create("child", {"n": 1})
    parent = space.create("parent", {"c": child.address})
    child.move("moved")
    assert parent.get("c") == child.address
    assert str(parent.get("c")).endswith("/moved")
    assert child.get("$refcount") == 1


def test_a_redirected_address_is_stored_as_the_current_one(space: Any) -> None:
    child = space.create("child", {"n": 1})
    old = child.address
    child.move("moved")
    parent = space.create("parent", {"c": old})
    assert parent.get("c") == child.address


def test_take_record_leaves_contained_records(space: Any) -> None:
    child = space.create("a", {"kind": "x"})
    space.create("b", {"kind": "y", "c": child.address})
    assert space.try_take_record({"kind": "x"}) is None
    assert space.try_take_record({"kind": "y"}) is not None
    assert space.try_take_record({"kind": "x"}) is not None


# -- capabilities -------------------------------------------------------------------------------


def handle_of(space: Any, clock: ts.SimulatedClock, kind: str) -> tuple[Any, Any]:
    """A record and a handle of the given kind on it."""
    rec = space.create("r", {"n": 1})
    if kind == "full":
        return rec, rec
    if kind == "opened by path":
        return rec, space.record("r")
    if kind == "read_only":
        return rec, rec.read_only()
    if kind == "read_only opened by address":
        return rec, space.record(rec.read_only().address)
    if kind.startswith("capability "):
        ops = set(kind.split(" ", 1)[1].split("+"))
        return rec, rec.capability(ops, lease=100)
    if kind == "revoked":
        cap = rec.capability({"read", "set", "refresh", "clone", "destroy", "watch"})
        cap.revoke()
        return rec, cap
    if kind == "expired":
        cap = rec.capability({"read", "set", "refresh", "clone", "destroy", "watch"}, lease=10)
        clock.advance(10)
        return rec, cap
    raise AssertionError(kind)


HANDLES = [
    "full",
    "opened by path",
    "read_only",
    "read_only opened by address",
    "capability read",
    "capability set",
    "capability refresh",
    "capability clone",
    "capability destroy",
    "capability watch",
    "capability read+set+refresh+clone+destroy+watch",
    "revoked",
    "expired",
]

OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "read": lambda h: (h.get("n"), h.view("n"), h.all(), h.tags(), h.snapshot()),
    "set": lambda h: h.set("n", 2),
    "refresh": lambda h: h.refresh(lease=50),
    "clone": lambda h: h.clone("copy"),
    "destroy": lambda h: h.destroy(),
    "watch": lambda h: h.watch().close(),
    "move": lambda h: h.move("elsewhere"),
    "capability": lambda h: h.capability({"read"}),
    "read_only": lambda h: h.read_only(),
}


def allowed(kind: str) -> set[str]:
    full = set(OPERATIONS)
    if kind in ("full", "opened by path"):
        return full
    if kind.startswith("read_only"):
        return {"read", "watch"}
    if kind.startswith("capability "):
        return set(kind.split(" ", 1)[1].split("+"))
    return set()


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("kind", HANDLES)
def test_every_operation_against_every_kind_of_handle(
    sim_space: Any, clock: ts.SimulatedClock, kind: str, operation: str
) -> None:
    rec, h = handle_of(sim_space, clock, kind)
    if operation in allowed(kind):
        OPERATIONS[operation](h)
        return
    if kind in ("revoked", "expired") and operation not in ("move", "capability", "read_only"):
        with pytest.raises(ts.CapabilityRevoked) as revoked:
            OPERATIONS[operation](h)
        assert isinstance(revoked.value, PermissionError)
        assert revoked.value.expired is (kind == "expired")
    else:
        with pytest.raises(ts.NotAllowed) as refused:
            OPERATIONS[operation](h)
        assert isinstance(refused.value, PermissionError)
        assert refused.value.operation in (operation, "capability")
    # a refused operation changed nothing
    assert rec.all() == {"n": 1}
    assert rec.get("$version") == 1


def test_a_capability_has_an_unguessable_address_of_its_own(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    cap = rec.capability({"read"})
    other = rec.capability({"read"})
    assert cap.address != other.address != rec.address
    head, token = str(cap.address).rsplit("/", 1)
    assert head == prefix(space) + "$cap"  # the record's path is not in it
    assert len(token) >= 32
    assert cap.operations == frozenset({"read"})
    assert rec.operations >= {"read", "set", "move", "capability"}
    assert cap.is_capability
    assert not rec.is_capability


def test_whoever_opens_a_capability_address_gets_its_rights(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    cap = rec.capability({"read", "set"})
    theirs = space.record(cap.address)
    assert theirs.operations == frozenset({"read", "set"})
    theirs.set("n", 5)
    assert rec.get("n") == 5
    with pytest.raises(ts.NotAllowed):
        theirs.destroy()
    with pytest.raises(ts.NotAllowed):
        theirs.revoke()  # only the one who made it revokes it
    cap.revoke()
    with pytest.raises(ts.CapabilityRevoked):
        theirs.get("n")


@pytest.mark.embedded(
    "over HTTP the binding resumes the ended stream and the server refuses the revoked capability "
    "(test_server_records.py)"
)
def test_a_watch_through_a_capability_ends_when_the_capability_does(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    revoked = rec.capability({"watch"})
    kept = rec.capability({"watch"})
    with (
        space.record(revoked.address).watch() as through_revoked,
        space.record(kept.address).watch() as through_kept,
        rec.watch() as own,
    ):
        revoked.revoke()
        assert through_revoked.get(timeout=PATIENCE) is None
        assert through_revoked.closed
        rec.set("n", 2)
        assert [c.value for c in (through_kept.get(timeout=PATIENCE), own.get(timeout=PATIENCE))] == [2, 2]


def test_a_watch_through_a_capability_ends_when_its_lease_does(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    rec = sim_space.create("r", {"n": 1})
    cap = rec.capability({"watch"}, lease=30)
    with cap.watch() as watch:
        clock.advance(30)
        with pytest.raises(ts.CapabilityRevoked):
            cap.get("n")
        assert watch.get(timeout=PATIENCE) is None


def test_a_capability_follows_its_record_through_a_move(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    cap = rec.capability({"read"})
    rec.move("elsewhere", redirect_lease=0)
    assert cap.get("n") == 1


def test_a_capability_lease_ends_it(sim_space: Any, clock: ts.SimulatedClock) -> None:
    rec = sim_space.create("r", {"n": 1})
    cap = rec.capability({"read"}, lease=30)
    assert cap.expires_at == clock.now() + 30
    clock.advance(29)
    assert cap.get("n") == 1
    clock.advance(1)
    with pytest.raises(ts.CapabilityRevoked) as info:
        cap.get("n")
    assert info.value.expired
    assert sim_space.statistics()["capabilities"] == 0


def test_the_read_only_handle_is_one_per_record_until_revoked(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    ro = rec.read_only()
    assert rec.read_only().address == ro.address
    assert ro.get("n") == 1
    ro.revoke()
    fresh = rec.read_only()
    assert fresh.address != ro.address
    with pytest.raises(ts.CapabilityRevoked):
        ro.get("n")


def test_a_full_handle_cannot_be_revoked(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    with pytest.raises(ts.NotAllowed):
        rec.revoke()


def test_capabilities_of_a_destroyed_record_are_gone(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    cap = rec.capability({"read"})
    rec.destroy()
    with pytest.raises(ts.RecordNotFound):
        cap.get("n")
    assert space.statistics()["capabilities"] == 0


def test_a_capability_cannot_grant_what_is_not_an_operation(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    with pytest.raises(ts.InvalidValue):
        rec.capability({"read", "fly"})
    with pytest.raises(ts.InvalidValue):
        rec.capability(set())


def test_an_unknown_capability_address_is_refused(space: Any) -> None:
    with pytest.raises(ts.CapabilityRevoked):
        space.record(prefix(space) + "$cap/not-a-token")


# -- life cycle -----------------------------------------------------------------------------------


def test_closing_the_space_ends_watches(make_space: Callable[..., Any]) -> None:
    space = make_space()
    rec = space.create("r", {"n": 1})
    watch = rec.watch()
    wide = space.watch_records()
    space.close()
    assert watch.get(timeout=PATIENCE) is None
    assert wide.get(timeout=PATIENCE) is None
    with pytest.raises(ts.SpaceClosed):
        rec.get("n")
    with pytest.raises(ts.SpaceClosed):
        space.create("s", {"n": 1})


def test_statistics_count_records(space: Any) -> None:
    rec = space.create("r", {"n": 1})
    rec.capability({"read"})
    stats = space.statistics()
    assert (stats["records"], stats["capabilities"], stats["accounts"]) == (1, 1, 0)
    assert stats["tuples"] == 0


# -- asyncio -------------------------------------------------------------------------------------


def test_async_records_are_awaited_and_watched_with_async_for() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        rec = await aspace.create("r", {"n": 0})
        assert isinstance(rec, ts.AsyncRecord)

        async def setter() -> None:
            for i in range(1, 4):
                await rec.set("n", i)

        got = []
        async with rec.watch() as watch:
            task = asyncio.create_task(setter())
            async for change in watch:
                got.append(change.value)
                if len(got) == 3:
                    break
            await task
        assert got == [1, 2, 3]
        assert await aspace.find({"n": 3}) == [rec]
        assert await rec.view("n", "$version") == (3, 4)
        ro = await rec.read_only()
        with pytest.raises(ts.NotAllowed):
            await ro.set("n", 0)
        assert (await aspace.record(ro.address)).operations == frozenset({"read", "watch"})
        waiter = asyncio.create_task(aspace.take_record({"kind": "job"}, timeout=PATIENCE))
        await asyncio.sleep(0.01)
        await aspace.create("jobs/1", {"kind": "job"})
        assert (await waiter).fields == {"kind": "job"}
        with pytest.raises(ts.Timeout):
            await aspace.take_record({"kind": "job"}, timeout=0.01)
        assert (await aspace.statistics())["record_takers"] == 0
        await aspace.close()

    asyncio.run(main())


def test_async_blocked_record_takes_are_served_in_arrival_order() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        takers = []
        for i in range(4):
            takers.append(asyncio.create_task(aspace.take_record({"kind": "job"}, timeout=PATIENCE)))
            await asyncio.sleep(0)
            assert (await aspace.statistics())["record_takers"] == i + 1
        for i in range(4):
            await aspace.create(f"jobs/{i}", {"kind": "job", "n": i})
            assert (await takers[i]).fields == {"kind": "job", "n": i}
            assert all(not t.done() for t in takers[i + 1 :])
        assert (await aspace.statistics())["record_takers"] == 0
        await aspace.close()

    asyncio.run(main())


def test_a_record_handed_to_a_cancelled_taker_goes_to_the_next_one_intact() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        watch = aspace.watch_records()
        first = asyncio.create_task(aspace.take_record({"kind": "job"}))
        await asyncio.sleep(0)
        second = asyncio.create_task(aspace.take_record({"kind": "job"}))
        await asyncio.sleep(0)
        aspace.space.create("jobs/1", {"kind": "job"})  # handed to the first taker, which has not run yet
        assert (await aspace.statistics())["records_held"] == 1
        assert await aspace.find({"kind": "job"}) == []  # held: no lookup sees it
        first.cancel()
        taken = await second
        assert (str(taken.address), taken.fields, taken.version) == (
            "tuplespace://local/spaces/default/jobs/1",
            {"kind": "job"},
            1,
        )
        with pytest.raises(asyncio.CancelledError):
            await first
        assert [(await watch.get(timeout=PATIENCE)).kind for _ in range(2)] == ["create", "destroy"]
        stats = await aspace.statistics()
        assert (stats["record_takers"], stats["records_held"], stats["records"]) == (0, 0, 0)
        await aspace.close()

    asyncio.run(main())


def test_closing_the_space_ends_a_blocked_record_take() -> None:
    space = ts.Space()
    taker = spawn(space.take_record, {"kind": "job"})
    wait_until(lambda: space.statistics()["record_takers"] == 1, "the taker to wait")
    space.close()
    with pytest.raises(ts.SpaceClosed):
        taker.result(PATIENCE)


# -- a handle is a value -------------------------------------------------------------------------


def test_a_handle_stands_for_its_address_wherever_one_goes(space: Any) -> None:
    a = space.create("a", {"n": 1})
    b = space.create("b", {"n": 2, "child": a})
    assert b.get("child") == a.address
    assert a.get("$refcount") == 1
    b.set("other", a)
    assert b.get("other") == a.address
    assert [r.address for r in space.find({"child": a})] == [b.address]
    assert space.record(a).address == a.address
    assert space.record(a.read_only()).operations == frozenset({"read", "watch"})
    space.write(("ref", a))
    assert space.take(("ref", a), timeout=PATIENCE) == ("ref", a.address)
    with pytest.raises(ts.ContainmentCycle):
        a.set("loop", b)
    with pytest.raises(ts.UnsupportedType if isinstance(space, ts.Space) else TypeError):
        space.record(object())
