"""Subscriptions to a node's space over CoAP: events carried by Observe, each
notification going on from the one before, resumed after the last event held when
one goes missing, against real nodes (on 127.0.0.1, or on the simulated lossy
network of tests/coapnet.py).  The events contract runs over the coap ways too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import tuplespace as ts
from coapnet import FAST, LossyNetwork
from helpers import PATIENCE, spawn, wait_until


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as n:
        yield n


def test_events_come_in_order_once_each(node: ts.Node) -> None:
    jobs = node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
        jobs.write(("job", 0))
        sub = space.subscribe(("job", int), existing=True)
        begun = sub.last_seq
        assert begun == jobs.statistics()["last_event"]
        events = [next(sub)]  # read before the take: a tuple gone before its turn is not present
        jobs.write(("job", 1))
        jobs.write(("other", 1))
        jobs.take(("job", 0))
        events += [next(sub) for _ in range(2)]
        assert [(e.kind, e.tuple) for e in events] == [
            ("present", ("job", 0)),
            ("write", ("job", 1)),
            ("take", ("job", 0)),
        ]
        assert events[0].seq == begun
        assert sub.last_seq == events[-1].seq
        stats = sub.statistics()
        assert (stats["delivered"], stats["pending"], stats["registrations"]) == (3, 0, 1)
        assert node.statistics()["subscriptions"] == 1
        sub.close()
        assert sub.closed
        assert sub.get(timeout=0) is None
        wait_until(lambda: node.statistics()["subscriptions"] == 0, "the node to end the subscription")
        assert jobs.statistics()["subscribers"] == 0


def test_a_lost_notification_is_made_up_by_registering_again_from_the_last_event() -> None:
    network = LossyNetwork(3)
    # Fresh for 3 s: longer than the node takes to give up a notification (1.1 s here).
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, max_age=3, **FAST) as node:
        jobs = node.space("jobs")
        space = ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE, network=network, **FAST)
        sub = space.subscribe(("job", int))
        jobs.write(("job", 1))
        assert next(sub).tuple == ("job", 1)
        network.loss = 1.0
        jobs.write(("job", 2))  # its notification never arrives: the node drops the observation
        wait_until(lambda: node.statistics()["subscriptions"] == 0, "the observation to be dropped")
        network.loss = 0.0
        jobs.write(("job", 3))
        assert [next(sub).tuple for _ in range(2)] == [("job", 2), ("job", 3)]
        assert sub.statistics()["registrations"] >= 2
        jobs.write(("job", 4))
        assert next(sub).tuple == ("job", 4)
        with pytest.raises(ts.Timeout):
            sub.get(timeout=0.2)  # nothing twice
        space.close()
        assert sub.closed


def test_present_events_are_resumed_after_a_lost_notification() -> None:
    network = LossyNetwork(5)
    # One event a notification; fresh for 3 s: longer than the node takes to give one up.
    with ts.Node(
        "coap://127.0.0.1:0/", timeout=PATIENCE, network=network, max_age=3, max_notification_bytes=1, **FAST
    ) as node:
        jobs = node.space("jobs")
        jobs.write_many([("job", i) for i in range(6)])
        jobs.write(("other", 0))
        notified: list[bytes] = []  # the node's notifications of present events, each once

        def drop(source: tuple[str, int], data: bytes) -> bool:
            if source[1] != node.port or b"present" not in data:
                return False
            if data not in notified:
                notified.append(data)
            return len(notified) > 2 and data == notified[2]  # the third, however often sent

        network.drop = drop
        space = ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE, network=network, **FAST)
        sub = space.subscribe(("job", int), existing=True)
        got = [sub.get(timeout=PATIENCE) for _ in range(6)]
        assert [(e.kind, e.tuple[1]) for e in got] == [("present", i) for i in range(6)]
        assert sub.statistics()["registrations"] >= 2  # the node gave up a notification
        jobs.write(("job", 6))
        jobs.take(("job", 0))
        assert [(e.kind, e.tuple[1]) for e in (next(sub), next(sub))] == [("write", 6), ("take", 0)]
        with pytest.raises(ts.Timeout):
            sub.get(timeout=0.2)  # nothing twice
        space.close()


def test_at_30_percent_loss_no_event_is_lost_or_doubled() -> None:
    lossy = LossyNetwork(17, loss=0.3, duplicate=0.1, delay=0.02)
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=lossy, max_age=3, **FAST) as node:
        jobs = node.space("jobs")
        space = ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE, network=lossy, **FAST)
        sub = None
        while sub is None:  # subscribing completes, or fails clearly and is done again
            with contextlib.suppress(ts.Unreachable):
                sub = space.subscribe(("job", int), events={"write", "take"})
        expected: list[tuple[str, int]] = []
        got: list[ts.Event] = []
        for i in range(40):
            jobs.write(("job", i), lease=60)
            expected.append(("write", i))
            if i % 4 == 0:
                jobs.take(("job", i))
                expected.append(("take", i))
            if i >= 20:  # many events in a notification, then a notification at a time
                got += [next(sub) for _ in range(len(expected) - len(got))]
        assert [(e.kind, e.tuple[1]) for e in got] == expected
        assert [e.seq for e in got] == sorted({e.seq for e in got})
        with pytest.raises(ts.Timeout):
            sub.get(timeout=0.5)
        space.close()
    assert lossy.lost > 0
    assert lossy.duplicated > 0


def test_since_past_the_log_raises_events_lost_at_once(node: ts.Node) -> None:
    jobs = node.space("jobs", event_retention=5)
    jobs.write_many([("n", i) for i in range(10)])  # events 1 .. 10; the log keeps 6 .. 10
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
        with pytest.raises(ts.EventsLost) as info:
            space.subscribe(("n", int), since=2)
        assert (info.value.first_missing, info.value.oldest_available) == (3, 6)
        wait_until(lambda: node.statistics()["subscriptions"] == 0, "the node to end the subscription")
        sub = space.subscribe(("n", int), since=5)
        assert [next(sub).tuple for _ in range(5)] == [("n", i) for i in range(5, 10)]


def test_a_reader_behind_is_told_of_events_the_log_dropped_then_goes_on(node: ts.Node) -> None:
    jobs = node.space("jobs", event_retention=5)
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
        sub = space.subscribe(("n", int), max_pending=1)
        jobs.write(("n", 0))
        # One event waits here: the observation ends until the reader takes it.
        wait_until(lambda: node.statistics()["subscriptions"] == 0, "the observation to end")
        jobs.write_many([("n", i) for i in range(1, 11)])  # events 2 .. 11; the log keeps 7 .. 11
        assert next(sub).tuple == ("n", 0)
        with pytest.raises(ts.EventsLost) as info:
            next(sub)
        assert (info.value.first_missing, info.value.oldest_available) == (2, 7)
        assert [next(sub).tuple for _ in range(5)] == [("n", i) for i in range(6, 11)]
        assert sub.last_seq == 11


def test_a_peers_host_subscribes_to_a_bounded_number_of_streams() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_subscriptions=2) as node:
        jobs = node.space("jobs")
        url = node.base_uri + "spaces/jobs"
        with ts.connect(url, timeout=PATIENCE) as one, ts.connect(url, timeout=PATIENCE) as other:
            first = one.subscribe(("a",))
            theirs = other.subscribe(("c",))
            with pytest.raises(ts.LimitReached) as info:
                one.subscribe(("c",))
            assert (info.value.limit, info.value.maximum) == ("subscriptions", 2)
            with pytest.raises(ts.LimitReached):
                other.subscribe(("c",))  # from another port of the same host
            first.close()
            wait_until(lambda: node.statistics()["subscriptions"] == 1, "the first to end")
            mine = one.subscribe(("c",))
            jobs.write(("c",))
            assert next(mine).tuple == next(theirs).tuple == ("c",)


def test_the_spaces_bound_on_subscribers_holds_for_every_peer(node: ts.Node) -> None:
    node.space("jobs", max_subscribers=1)
    url = node.base_uri + "spaces/jobs"
    with ts.connect(url, timeout=PATIENCE) as one, ts.connect(url, timeout=PATIENCE) as other:
        one.subscribe(("a",))
        with pytest.raises(ts.LimitReached) as info:
            other.subscribe(("a",))
        assert (info.value.limit, info.value.maximum) == ("max_subscribers", 1)
    # Closing the space deregisters its subscriptions at the node.
    wait_until(lambda: node.statistics()["subscriptions"] == 0, "the node to end the subscription")


def test_events_wait_at_the_node_bounded_in_bytes_and_all_arrive() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_notification_bytes=1) as node:
        jobs = node.space("jobs")
        with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
            sub = space.subscribe(("job", int, str))
            jobs.write_many([("job", i, "x" * 2000) for i in range(20)])  # more than a block each
            assert [next(sub).tuple[1] for _ in range(20)] == list(range(20))


def test_a_subscription_lease_ends_it_and_renews(node: ts.Node) -> None:
    node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
        sub = space.subscribe(("job", int), lease=0.05)
        assert spawn(list, sub).result(PATIENCE) == []
        assert sub.closed
        with pytest.raises(ts.UnknownLease):
            sub.renew(10)
        kept = space.subscribe(("job", int), lease=0.05)
        kept.renew(None)
        with pytest.raises(ts.Timeout):
            kept.get(timeout=0.2)
        assert not kept.closed


def test_a_template_the_node_cannot_read_or_an_unknown_space_is_refused(node: ts.Node) -> None:
    node.space("jobs")
    with ts.connect(node.base_uri + "spaces/gone", timeout=PATIENCE) as space, pytest.raises(ts.NotFound):
        space.subscribe(("job", int))
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
        with pytest.raises(ts.InvalidTemplate):
            space.subscribe((ts.Pred(lambda x: True),))
        with pytest.raises(ts.InvalidValue):
            space.subscribe(("job",), since=10)  # ahead of the latest event
    assert node.statistics()["subscriptions"] == 0


def test_a_space_closed_at_the_node_ends_its_subscriptions(node: ts.Node) -> None:
    jobs = node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
        sub = space.subscribe(("job", int))
        jobs.write(("job", 1))
        assert next(sub).tuple == ("job", 1)
        jobs.close()
        with pytest.raises(ts.NotFound, match="its space is closed"):
            next(sub)
        assert list(sub) == []
        assert sub.closed
        assert node.statistics()["subscriptions"] == 0


def test_the_asyncio_face_iterates_on_the_callers_loop(node: ts.Node) -> None:
    jobs = node.space("jobs")

    async def main() -> list[Any]:
        async with await ts.connect_async(node.base_uri + "spaces/gone", timeout=PATIENCE) as gone:
            pending = gone.subscribe(("job", int))  # begins when awaited, entered or first read
            with pytest.raises(ts.NotFound):
                await pending
            assert pending.closed
        async with await ts.connect_async(node.base_uri + "spaces/jobs", timeout=PATIENCE) as space:
            async with space.subscribe(("job", int)) as sub:
                await space.write(("job", 1))
                jobs.write(("job", 2))
                seen = []
                async for event in sub:
                    seen.append(event.tuple)
                    if len(seen) == 2:
                        break
            assert sub.closed
            return seen

    assert asyncio.run(main()) == [("job", 1), ("job", 2)]
