"""Events: every change of a space, numbered, logged, and fed to subscribers.

Written once against the ``space`` fixtures, so they run over every way of running
a space (the asyncio way through the adapter of the conformance kit, ``tuplespace.testing``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace import ANY
from tuplespace._events import MAX_PENDING_BYTES, MAX_SPACE_PENDING_BYTES


def drain(sub: Any) -> list[ts.Event]:
    """The events a subscription has ready now, without waiting."""
    events = []
    while True:
        try:
            event = sub.get(timeout=0)
        except ts.Timeout:
            return events
        if event is None:
            return events
        events.append(event)


def changes(events: list[ts.Event]) -> list[tuple[str, tuple[Any, ...]]]:
    return [(e.kind, e.tuple) for e in events]


def step(space: Any) -> int:
    """How far apart the seqs of a space's events that follow each other are at most (a
    space partitioned in Redis numbers each partition's events ``partitions`` apart)."""
    return int(space.statistics().get("partitions", 1))


def assert_consecutive(events: list[ts.Event], first: int) -> None:
    assert [e.seq for e in events] == list(range(first, first + len(events)))


# -- kinds and order ---------------------------------------------------------------


def test_every_change_is_an_event_with_a_strictly_increasing_seq(
    sim_space: Any, clock: ts.SimulatedClock
) -> None:
    space = sim_space
    start = clock.now()
    before = space.statistics()["last_event"]
    sub = space.subscribe((ANY, ANY))
    space.write(("a", 1), lease=10)
    space.write(("b", 2))
    clock.advance(2)
    lease = space.write(("c", 3))
    assert space.take(("b", 2)) == ("b", 2)
    lease.cancel()
    clock.advance(8)

    events = drain(sub)
    assert changes(events) == [
        ("write", ("a", 1)),
        ("write", ("b", 2)),
        ("write", ("c", 3)),
        ("take", ("b", 2)),
        ("cancel", ("c", 3)),
        ("expire", ("a", 1)),
    ]
    assert_consecutive(events, before + 1)
    assert [e.time for e in events] == [start, start, start + 2, start + 2, start + 2, start + 10]
    assert all(isinstance(e, ts.Event) for e in events)
    assert sub.last_seq == events[-1].seq
    stats = space.statistics()
    assert stats["last_event"] == events[-1].seq
    assert stats["subscribers"] == 1
    assert sub.statistics()["delivered"] == 6
    assert sub.statistics()["pending"] == 0


def test_a_waiting_take_all_woken_by_a_write_many_takes_after_the_writes(space: Any) -> None:
    sub = space.subscribe(("job", int))
    taker = spawn(space.take_all, ("job", int), timeout=None)
    wait_for_waiters(space, 1)
    space.write_many([("job", 1), ("job", 2)])
    assert taker.result(PATIENCE) == [("job", 1), ("job", 2)]
    assert changes([sub.get(timeout=PATIENCE) for _ in range(4)]) == [
        ("write", ("job", 1)),
        ("write", ("job", 2)),
        ("take", ("job", 1)),
        ("take", ("job", 2)),
    ]
    assert space.statistics()["takes"] == 2


def test_a_subscription_sees_only_events_after_it_began(space: Any) -> None:
    space.write(("job", 0))
    sub = space.subscribe(("job", int))
    assert drain(sub) == []
    space.write(("job", 1))
    assert changes(drain(sub)) == [("write", ("job", 1))]


def test_waits_and_leases_too_long_for_a_thread_are_forever(space: Any) -> None:
    # 1e308 seconds is past what a thread can wait (threading.TIMEOUT_MAX): it never ends.
    sub = space.subscribe(("x",), lease=1e308)
    sub.renew(1e308)
    got = spawn(sub.get, 1e308)
    taken = spawn(space.take, ("y",), 1e308)
    wait_for_waiters(space, 1)
    space.write(("x",))
    space.write(("y",))
    assert got.result(PATIENCE).tuple == ("x",)
    assert taken.result(PATIENCE) == ("y",)
    sub.close()


def test_a_template_filters_the_events(space: Any) -> None:
    jobs = space.subscribe(("job", int))
    tagged = space.subscribe((ANY, ANY, "urgent"))
    space.write_many([("job", 1), ("job", "x"), ("other", 2), ("job", 2, "urgent"), ("job", 3)])
    space.take(("job", 3))
    space.take(("job", ANY, ANY))
    assert changes(drain(jobs)) == [
        ("write", ("job", 1)),
        ("write", ("job", 3)),
        ("take", ("job", 3)),
    ]
    assert changes(drain(tagged)) == [
        ("write", ("job", 2, "urgent")),
        ("take", ("job", 2, "urgent")),
    ]


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ({"take"}, [("take", ("job", 1))]),
        ("take", [("take", ("job", 1))]),
        ({"write", "cancel"}, [("write", ("job", 1)), ("write", ("job", 2)), ("cancel", ("job", 2))]),
    ],
    ids=["set", "one-name", "two-kinds"],
)
def test_events_filters_the_kinds(space: Any, kinds: Any, expected: list[Any]) -> None:
    sub = space.subscribe(("job", int), events=kinds)
    space.write(("job", 1))
    space.take(("job", 1))
    space.write(("job", 2)).cancel()
    assert changes(drain(sub)) == expected


@pytest.mark.parametrize("kinds", [set(), {"update"}, {"write", "destroy"}])
def test_unknown_or_no_event_kinds_are_refused(space: Any, kinds: set[str]) -> None:
    with pytest.raises(ts.InvalidValue):
        space.subscribe(("job", int), events=kinds)
    assert space.statistics()["subscribers"] == 0


def test_a_write_handed_to_a_waiting_taker_gives_write_then_take(space: Any) -> None:
    sub = space.subscribe(("job", int))
    taker = spawn(space.take, ("job", int))
    wait_for_waiters(space, 1)
    space.write(("job", 1))
    assert taker.result(PATIENCE) == ("job", 1)
    events = drain(sub)
    assert changes(events) == [("write", ("job", 1)), ("take", ("job", 1))]
    assert events[1].seq == events[0].seq + step(space)  # nothing between them in their partition


def test_a_take_cancelled_before_it_receives_its_tuple_takes_nothing_and_emits_nothing() -> None:
    space = ts.Space()
    sub = space.subscribe(("job", int))

    async def cancelled_take() -> None:
        taker = asyncio.create_task(ts.AsyncSpace(space).take(("job", int)))
        while space.statistics()["waiters"] == 0:
            await asyncio.sleep(0)
        space.write(("job", 1))  # handed to the waiting take...
        taker.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await taker

    asyncio.run(cancelled_take())
    assert space.read_all(("job", int)) == [("job", 1)]
    assert changes(drain(sub)) == [("write", ("job", 1))]  # it never left the space
    assert space.statistics()["takes"] == 0
    assert space.take(("job", int)) == ("job", 1)
    assert changes(drain(sub)) == [("take", ("job", 1))]


def test_a_waiting_read_served_by_a_write_is_counted_as_a_read(space: Any) -> None:
    reader = spawn(space.read, ("job", int))
    wait_for_waiters(space, 1)
    space.write(("job", 1))
    assert reader.result(PATIENCE) == ("job", 1)
    space.read(("job", int))
    assert space.statistics()["reads"] == 2


# -- what is present -------------------------------------------------------------------


def test_existing_gives_every_tuple_present_first_then_the_live_events(space: Any) -> None:
    space.write_many([("job", 1), ("noise", 0), ("job", 2), ("job", "x"), ("job", 3)])
    before = space.statistics()["last_event"]
    with space.subscribe(("job", int), existing=True) as sub:
        space.write(("job", 4))
        space.write(("noise", 1))
        events = [next(sub) for _ in range(4)]
    assert changes(events) == [
        ("present", ("job", 1)),
        ("present", ("job", 2)),
        ("present", ("job", 3)),
        ("write", ("job", 4)),
    ]
    assert [e.seq for e in events[:3]] == [before] * 3
    assert before < events[3].seq <= before + step(space)


def test_any_in_place_of_a_template_watches_every_tuple_whatever_its_arity(space: Any) -> None:
    space.write_many([("a",), (), (1, 2)])
    wide = tuple(range(256))
    with space.subscribe(ANY, existing=True) as sub:
        present = [next(sub) for _ in range(3)]
        space.write(("b", 1, 2.5))
        space.write(wide)
        space.take(("a",))
        live = [next(sub) for _ in range(3)]
    assert changes(present) == [("present", ("a",)), ("present", ()), ("present", (1, 2))]
    assert changes(live) == [("write", ("b", 1, 2.5)), ("write", wide), ("take", ("a",))]


def test_present_events_come_whatever_kinds_are_asked_for(space: Any) -> None:
    space.write(("job", 1))
    with space.subscribe(("job", int), events={"take"}, existing=True) as sub:
        space.write(("job", 2))
        space.take(("job", 2))
        assert changes([next(sub), next(sub)]) == [("present", ("job", 1)), ("take", ("job", 2))]


def test_resuming_after_a_present_event_gives_the_live_events_only(space: Any) -> None:
    space.write_many([("job", 1), ("job", 2)])
    sub = space.subscribe(("job", int), existing=True)
    first = next(sub)
    assert first.kind == "present"
    assert sub.last_seq == first.seq
    sub.close()
    space.write(("job", 3))
    with space.subscribe(("job", int), since=first.seq) as resumed:
        assert changes([next(resumed)]) == [("write", ("job", 3))]


def test_a_lifo_space_presents_its_tuples_newest_first(make_space: Any) -> None:
    space = make_space(order="lifo")
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    with space.subscribe(("job", int), existing=True) as sub:
        space.write(("job", 4))
        assert changes([next(sub) for _ in range(4)]) == [
            ("present", ("job", 3)),
            ("present", ("job", 2)),
            ("present", ("job", 1)),
            ("write", ("job", 4)),
        ]


def test_an_empty_space_has_nothing_present(space: Any) -> None:
    with space.subscribe(("job", int), existing=True) as sub:
        space.write(("job", 1))
        assert changes([next(sub)]) == [("write", ("job", 1))]


@pytest.mark.parametrize("existing", [1, "yes", None])
def test_existing_is_true_or_false(space: Any, existing: Any) -> None:
    with pytest.raises(ts.InvalidValue) as caught:
        space.subscribe(("job", int), existing=existing)
    assert caught.value.path == "existing"


def test_existing_with_since_is_refused(space: Any) -> None:
    space.write(("job", 1))
    with pytest.raises(ts.InvalidValue, match="since") as caught:
        space.subscribe(("job", int), existing=True, since=0)
    assert caught.value.path == "existing"


def test_a_write_racing_with_the_start_of_a_subscription_is_seen_exactly_once(space: Any) -> None:
    count = 300
    writer = spawn(lambda: [space.write(("job", n)) for n in range(count)])
    wait_until(lambda: space.count(("job", int)) > 0, "the first writes")
    with space.subscribe(("job", int), events={"write"}, existing=True) as sub:
        writer.result(PATIENCE)
        space.write(("job", -1))
        seen = []
        for event in sub:
            if event.tuple == ("job", -1):
                break
            seen.append((event.kind, event.tuple[1]))
    numbers = [n for _, n in seen]
    assert sorted(numbers) == list(range(count))  # each once, as present or as written
    kinds = [kind for kind, _ in seen]
    assert kinds == sorted(kinds, key=lambda k: k != "present")  # the present ones first


def test_a_tuple_that_leaves_before_its_turn_is_not_reported_present(space: Any) -> None:
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    sub = space.subscribe(("job", int), existing=True)
    assert changes([sub.get(timeout=0)]) == [("present", ("job", 1))]
    space.take(("job", 2))
    assert changes(drain(sub)) == [("present", ("job", 3)), ("take", ("job", 2))]


def test_present_events_take_no_room_among_max_pending(space: Any) -> None:
    space.write_many([("job", n) for n in range(10)])
    sub = space.subscribe(("job", int), existing=True, max_pending=2)
    assert sub.statistics()["presenting"]
    for n in range(10, 15):
        space.write(("job", n))
    assert sub.statistics()["pending"] == 2
    events = drain(sub)
    assert changes(events) == [("present", ("job", n)) for n in range(10)] + [
        ("write", ("job", n)) for n in range(10, 15)
    ]
    assert not sub.statistics()["presenting"]


def test_a_tuple_put_back_by_an_aborted_transaction_is_still_reported_present(space: Any) -> None:
    space.write_many([("job", 1), ("job", 2)])
    tx = space.transaction()
    assert tx.take(("job", 1)) == ("job", 1)
    sub = space.subscribe(("job", int), existing=True)
    tx.abort()
    assert changes(drain(sub)) == [("present", ("job", 1)), ("present", ("job", 2))]


# -- resuming ------------------------------------------------------------------------


def test_resuming_with_since_misses_nothing(space: Any) -> None:
    sub = space.subscribe(("job", ANY))
    space.write_many([("job", 0), ("job", 1), ("job", 2)])
    seen = [next(sub), next(sub)]
    last = sub.last_seq
    assert last == seen[-1].seq
    sub.close()

    space.write(("other", 0))
    space.take(("job", 0))
    space.write(("job", 3))
    resumed = space.subscribe(("job", ANY), since=last)
    assert resumed.last_seq == last
    space.write(("job", 4))
    events = drain(resumed)
    assert changes(events) == [
        ("write", ("job", 2)),
        ("take", ("job", 0)),
        ("write", ("job", 3)),
        ("write", ("job", 4)),
    ]
    assert last < events[0].seq <= last + step(space)
    assert [e.seq for e in events] == sorted({e.seq for e in events})


def test_since_zero_replays_the_whole_log(space: Any) -> None:
    space.write_many([("a",), ("b",)])
    space.take(("a",))
    sub = space.subscribe((str,), since=0)
    assert changes(drain(sub)) == [("write", ("a",)), ("write", ("b",)), ("take", ("a",))]


def test_since_the_latest_event_replays_nothing(space: Any) -> None:
    space.write(("a",))
    sub = space.subscribe((str,), since=space.statistics()["last_event"])
    assert drain(sub) == []
    space.write(("b",))
    assert changes(drain(sub)) == [("write", ("b",))]


def test_since_older_than_the_log_raises_events_lost_at_once(make_space: Any) -> None:
    space = make_space(event_retention=5)
    base = space.statistics()["last_event"]
    space.write_many([("n", i) for i in range(10)])  # events base+1 .. base+10; the log keeps the last 5
    assert space.statistics()["logged_events"] == 5
    with pytest.raises(ts.EventsLost) as info:
        space.subscribe(("n", int), since=base + 2)
    assert info.value.first_missing == base + 3
    assert info.value.oldest_available == base + 6
    assert isinstance(info.value, ts.TupleSpaceError)
    with pytest.raises(ts.EventsLost) as info:
        space.subscribe(("n", int), since=base + 4)
    assert (info.value.first_missing, info.value.oldest_available) == (base + 5, base + 6)
    assert space.statistics()["subscribers"] == 0

    sub = space.subscribe(("n", int), since=base + 5)
    events = drain(sub)
    assert [e.tuple for e in events] == [("n", i) for i in range(5, 10)]
    assert_consecutive(events, base + 6)


def test_since_ahead_of_the_latest_event_is_refused(space: Any) -> None:
    space.write(("a",))
    latest = space.statistics()["last_event"]
    with pytest.raises(ts.InvalidValue) as info:
        space.subscribe((str,), since=latest + 1)
    assert isinstance(info.value, ValueError)
    for since in (-1, 1.5, True, "3"):
        with pytest.raises(ts.InvalidValue):
            space.subscribe((str,), since=since)
    assert space.statistics()["subscribers"] == 0


# -- slow subscribers ------------------------------------------------------------------


def test_a_slow_subscriber_catches_up_from_the_log_without_missing_an_event(space: Any) -> None:
    base = space.statistics()["last_event"]
    sub = space.subscribe(("job", int), max_pending=3)
    expected: list[tuple[str, tuple[Any, ...]]] = []
    for n in range(12):
        space.write(("job", n))
        space.write(("noise", n))
        expected.append(("write", ("job", n)))
        if n % 3 == 0:
            space.take(("job", n))
            expected.append(("take", ("job", n)))
    stats = sub.statistics()
    assert stats["pending"] == 3
    assert stats["overflows"] == 1
    assert stats["gap_from"] == base + 6  # the fourth event on a job: the first not queued

    got = [next(sub) for _ in range(5)]
    space.write(("job", 100))  # written while the subscriber is still behind
    expected.append(("write", ("job", 100)))
    got += drain(sub)
    assert changes(got) == expected
    assert [e.seq for e in got] == sorted({e.seq for e in got})
    stats = sub.statistics()
    assert (stats["pending"], stats["gap_from"], stats["delivered"]) == (0, None, len(expected))
    assert stats["last_seq"] == got[-1].seq

    space.write(("job", 101))
    assert changes(drain(sub)) == [("write", ("job", 101))]


def test_a_subscriber_behind_the_log_gets_events_lost_then_goes_on(make_space: Any) -> None:
    space = make_space(event_retention=5)
    base = space.statistics()["last_event"]
    sub = space.subscribe((str, int), max_pending=2)
    space.write_many([("n", i) for i in range(10)])  # the log keeps base+6 .. base+10
    assert [next(sub).tuple for _ in range(2)] == [("n", 0), ("n", 1)]
    with pytest.raises(ts.EventsLost) as info:
        next(sub)
    assert info.value.first_missing == base + 3
    assert info.value.oldest_available == base + 6
    events = drain(sub)
    assert [e.tuple for e in events] == [("n", i) for i in range(5, 10)]
    assert_consecutive(events, base + 6)
    space.write(("n", 10))
    assert [e.tuple for e in drain(sub)] == [("n", 10)]


def test_a_subscriber_that_lost_events_keeps_only_what_matches(make_space: Any) -> None:
    space = make_space(event_retention=4)
    sub = space.subscribe(("keep", int), max_pending=1)
    for n in range(6):
        space.write(("keep", n))
        space.write(("drop", n))
    assert next(sub).tuple == ("keep", 0)
    with pytest.raises(ts.EventsLost):
        sub.get(timeout=0)
    assert [e.tuple for e in drain(sub)] == [("keep", 4), ("keep", 5)]


# -- the end of a subscription -------------------------------------------------------


def test_a_subscription_lease_ends_it(sim_space: Any, clock: ts.SimulatedClock) -> None:
    space = sim_space
    sub = space.subscribe(("job", int), lease=10)
    space.write(("job", 1))
    assert [e.tuple for e in drain(sub)] == [("job", 1)]
    clock.advance(9.5)
    assert not sub.closed
    clock.advance(0.5)
    assert sub.closed
    assert sub.get() is None
    assert list(sub) == []
    space.write(("job", 2))
    assert list(sub) == []
    assert space.statistics()["subscribers"] == 0
    assert sub.statistics()["closed"] is True


def test_a_renewed_subscription_lease_lasts_longer(sim_space: Any, clock: ts.SimulatedClock) -> None:
    sub = sim_space.subscribe(("job", int), lease=10)
    clock.advance(8)
    sub.renew(10)
    clock.advance(8)
    assert not sub.closed
    sim_space.write(("job", 1))
    assert [e.tuple for e in drain(sub)] == [("job", 1)]
    clock.advance(2)
    assert sub.closed
    with pytest.raises(ts.UnknownLease):
        sub.renew(10)


@pytest.mark.embedded("the count of subscriptions just after one ended")
def test_a_subscription_lease_ends_a_waiting_iteration_with_nobody_calling(space: Any) -> None:
    sub = space.subscribe(("job", int), lease=0.05)
    iteration = spawn(list, sub)
    assert iteration.result(PATIENCE) == []
    assert sub.closed
    assert space.statistics()["subscribers"] == 0


@pytest.mark.embedded("the count of subscriptions just after one ended")
def test_close_ends_an_iteration_in_another_thread(space: Any) -> None:
    sub = space.subscribe(("job", int))
    iteration = spawn(lambda: [e.tuple for e in sub])
    space.write(("job", 1))
    wait_until(lambda: sub.statistics()["delivered"] == 1, "the event to be delivered")
    sub.close()
    assert iteration.result(PATIENCE) == [("job", 1)]
    assert sub.closed
    assert sub.get(timeout=0) is None
    space.write(("job", 2))
    assert sub.statistics()["pending"] == 0
    assert space.statistics()["subscribers"] == 0
    sub.close()  # closing twice is harmless


@pytest.mark.embedded("the count of subscriptions just after one ended")
def test_a_subscription_is_a_context_manager(space: Any) -> None:
    with space.subscribe(("job", int)) as sub:
        space.write(("job", 1))
        assert next(sub).tuple == ("job", 1)
    assert sub.closed
    assert space.statistics()["subscribers"] == 0


def test_closing_the_space_ends_every_subscription(space: Any) -> None:
    sub = space.subscribe(("job", int))
    iteration = spawn(list, sub)
    space.close()
    assert iteration.result(PATIENCE) == []
    assert sub.closed
    with pytest.raises(ts.SpaceClosed):
        space.subscribe(("job", int))


def test_too_many_subscriptions_are_refused(make_space: Any) -> None:
    space = make_space(max_subscribers=2)
    first = space.subscribe(("a",))
    space.subscribe(("b",))
    with pytest.raises(ts.LimitReached) as info:
        space.subscribe(("c",))
    assert (info.value.limit, info.value.maximum) == ("max_subscribers", 2)
    assert space.statistics()["subscribers"] == 2
    first.close()
    third = space.subscribe(("c",))
    space.write(("c",))
    assert [e.tuple for e in drain(third)] == [("c",)]


# -- transactions ------------------------------------------------------------------------


def test_events_of_a_transaction_appear_at_commit_only(space: Any) -> None:
    space.write_many([("job", 1), ("job", 2)])
    sub = space.subscribe((str, int))
    with space.transaction() as tx:
        assert tx.take(("job", int)) == ("job", 1)
        tx.write(("result", 1))
        tx.write(("result", 2), lease=60)
        assert drain(sub) == []
    events = drain(sub)
    assert changes(events) == [("take", ("job", 1)), ("write", ("result", 1)), ("write", ("result", 2))]
    if step(space) == 1:  # one script (a partitioned space commits in each partition in turn)
        assert events[2].seq == events[0].seq + 2


def test_an_aborted_transaction_emits_no_event(space: Any) -> None:
    space.write(("job", 1))
    sub = space.subscribe((str, int))
    before = space.statistics()["last_event"]
    tx = space.transaction()
    tx.take(("job", 1))
    tx.write(("result", 1))
    tx.abort()
    assert drain(sub) == []
    assert space.statistics()["last_event"] == before
    assert space.read_all((str, int)) == [("job", 1)]


def test_a_tuple_handed_to_a_waiting_transaction_take_gives_its_take_event_at_commit(space: Any) -> None:
    sub = space.subscribe(("job", int))
    tx = space.transaction()
    taker = spawn(tx.take, ("job", int))
    wait_for_waiters(space, 1)
    space.write(("job", 1))
    assert taker.result(PATIENCE) == ("job", 1)
    assert changes(drain(sub)) == [("write", ("job", 1))]
    tx.commit()
    assert changes(drain(sub)) == [("take", ("job", 1))]


# -- expiry ------------------------------------------------------------------------------


def test_expire_events_come_with_nobody_calling(space: Any) -> None:
    sub = space.subscribe(("presence", str), events={"expire"})
    lease = space.write(("presence", "node-1"), lease=0.05)
    event = spawn(sub.get).result(PATIENCE)
    assert event is not None
    assert (event.kind, event.tuple) == ("expire", ("presence", "node-1"))
    assert event.time >= lease.expires_at
    assert space.count(("presence", str)) == 0


def test_expire_events_come_exactly_at_advance(sim_space: Any, clock: ts.SimulatedClock) -> None:
    space = sim_space
    sub = space.subscribe(("presence", str), events={"expire"})
    lease = space.write(("presence", "node-1"), lease=10)
    clock.advance(9.5)
    with pytest.raises(ts.Timeout):
        sub.get(timeout=0)
    waiting = spawn(sub.get)
    clock.advance(0.5)
    event = waiting.result(PATIENCE)
    assert (event.kind, event.tuple, event.time) == ("expire", ("presence", "node-1"), lease.expires_at)
    assert space.statistics()["expired"] == 1


# -- asyncio ------------------------------------------------------------------------------


def test_async_for_over_an_async_subscription() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace()
        async with aspace.subscribe(("job", int)) as sub:
            seen: list[tuple[str, tuple[Any, ...]]] = []

            async def collect() -> None:
                async for event in sub:
                    seen.append((event.kind, event.tuple))

            task = asyncio.create_task(collect())
            await aspace.write(("job", 1))
            await aspace.write(("other", 1))
            assert await aspace.take(("job", int)) == ("job", 1)
            await aspace.write(("job", 2))
            async with asyncio.timeout(PATIENCE):
                while sub.statistics()["delivered"] < 3:
                    await asyncio.sleep(0)
        await asyncio.wait_for(task, PATIENCE)  # leaving the block closed it: the loop ended
        assert seen == [("write", ("job", 1)), ("take", ("job", 1)), ("write", ("job", 2))]
        assert sub.closed
        assert (await aspace.statistics())["subscribers"] == 0

    asyncio.run(main())


def test_an_async_subscription_resumes_and_reports_lost_events() -> None:
    async def main() -> None:
        aspace = ts.AsyncSpace(event_retention=3)
        sub = aspace.subscribe((str, int), max_pending=1)
        await aspace.write_many([("n", i) for i in range(6)])
        assert (await sub.get(timeout=0)).tuple == ("n", 0)
        with pytest.raises(ts.EventsLost) as info:
            await sub.get(timeout=0)
        assert (info.value.first_missing, info.value.oldest_available) == (2, 4)
        assert [(await sub.get()).tuple for _ in range(3)] == [("n", 3), ("n", 4), ("n", 5)]
        with pytest.raises(ts.Timeout):
            await sub.get(timeout=0)
        last = sub.last_seq
        await sub.close()
        await aspace.write(("n", 6))
        resumed = aspace.subscribe((str, int), since=last)
        assert (await resumed.get()).tuple == ("n", 6)

    asyncio.run(main())


def test_the_event_log_is_bounded_in_bytes_and_a_lagging_subscriber_is_told(make_space: Any) -> None:
    assert ts.Space().statistics()["logged_bytes"] == 0
    space = make_space(event_retention_bytes=1 << 20)
    base = space.statistics()["last_event"]
    sub = space.subscribe(("big", int, bytes), max_pending=1)
    payload = b"x" * 300_000
    for i in range(10):  # 3 MB written and taken: the log keeps the last MiB of it
        space.write(("big", i, payload))
        assert space.take(("big", i, bytes)) == ("big", i, payload)
        stats = space.statistics()
        assert stats["logged_bytes"] <= 1 << 20
    assert stats["tuples"] == 0
    assert stats["logged_events"] < 10
    assert next(sub).tuple == ("big", 0, payload)
    with pytest.raises(ts.EventsLost) as info:
        next(sub)
    assert info.value.first_missing == base + 2
    assert info.value.oldest_available == stats["last_event"] - stats["logged_events"] + 1
    assert [e.kind for e in drain(sub)][-2:] == ["write", "take"]


def test_a_slow_subscriber_queues_at_most_max_pending_bytes_and_misses_nothing() -> None:
    space = ts.Space(limits=ts.Limits(max_bytes=2 * MAX_PENDING_BYTES))
    sub = space.subscribe(("big", int, str))
    payload = "x" * (1 << 19)  # one string: the space holds it once, each event counts it
    n = 2 * MAX_PENDING_BYTES // len(payload)
    for i in range(n):
        space.write(("big", i, payload))
    stats = sub.statistics()
    assert stats["pending_bytes"] <= MAX_PENDING_BYTES < n * len(payload)
    assert stats["pending"] < n
    assert stats["overflows"] == 1
    events = drain(sub)  # the rest is refilled from the log
    assert [e.tuple[1] for e in events] == list(range(n))
    assert_consecutive(events, events[0].seq)
    assert sub.statistics()["pending_bytes"] == 0
    # One event is always queued, whatever its size.
    space.write(("big", n, "x" * (MAX_PENDING_BYTES + 1)))
    assert sub.statistics()["pending"] == 1
    assert len(next(sub).tuple[2]) == MAX_PENDING_BYTES + 1


def test_the_subscribers_of_a_space_queue_at_most_max_space_pending_bytes_together() -> None:
    space = ts.Space()
    payload = "x" * (1 << 19)  # one string: the space holds it once, each event counts it
    per_feed = MAX_PENDING_BYTES // len(payload)  # the events that fill one feed
    subs, written = [], 0
    for _ in range(MAX_SPACE_PENDING_BYTES // MAX_PENDING_BYTES + 6):
        subs.append((written, space.subscribe(("big", int, str))))
        for _ in range(per_feed):
            space.write(("big", written, payload))
            written += 1
    held = sum(sub.statistics()["pending_bytes"] for _, sub in subs)
    assert held <= MAX_SPACE_PENDING_BYTES + len(subs) * len(payload)  # one event each, always
    for first, sub in subs:  # each gets every event since it began, the rest from the log
        events = drain(sub)
        assert [e.tuple[1] for e in events] == list(range(first, written))
        sub.close()
    assert sum(sub.statistics()["pending_bytes"] for _, sub in subs) == 0


def test_event_retention_bytes_comes_from_a_url() -> None:
    space = ts.connect("memory:?event_retention_bytes=0")
    space.write(("a",))
    assert space.statistics()["logged_events"] == 1  # a tuple in the space costs its log nothing
    space.take(("a",))
    assert space.statistics()["logged_events"] == 0
    with pytest.raises(ValueError, match="event_retention_bytes"):
        ts.Space(event_retention_bytes=-1)
