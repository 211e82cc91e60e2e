"""Watching records and using capabilities through a space over CoAP: a record's
changes and a space's records' changes carried by Observe (docs/federation.md,
"Subscriptions over Observe"), against real nodes (on 127.0.0.1, or on the simulated
lossy network of tests/coapnet.py); capabilities and their revocation as the node
allows them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tuplespace as ts
from coapnet import FAST, LossyNetwork
from helpers import PATIENCE, wait_until


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as n:
        yield n


def _until_done(call: Callable[[], Any]) -> Any:
    """What ``call`` returns once it completes: on a lossy network a request may fail
    clearly (Unreachable), and is then made again."""
    while True:
        with contextlib.suppress(ts.Unreachable):
            return call()


def test_at_30_percent_loss_every_change_comes_once_in_order_and_the_watch_ends() -> None:
    lossy = LossyNetwork(23, loss=0.3, duplicate=0.1, delay=0.02)
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=lossy, max_age=3, **FAST) as node:
        home = node.space("home")
        kitchen = home.create("rooms/kitchen", {"temp": 0})
        space = ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE, network=lossy, **FAST)
        remote = _until_done(lambda: space.record("rooms/kitchen"))
        watch = _until_done(remote.watch)
        rooms = _until_done(lambda: space.watch_records(under="rooms", events={"create", "update"}))
        got: list[ts.Change] = []
        for i in range(1, 31):
            kitchen.set("temp", i)  # at the node: each change once
            if i >= 15:  # many changes in a notification, then a notification at a time
                got += [watch.get(timeout=PATIENCE) for _ in range(i - len(got))]
        assert [(c.kind, c.tag, c.value, c.version) for c in got] == [
            ("update", "temp", i, i + 1) for i in range(1, 31)
        ]
        assert [c.seq for c in got] == sorted({c.seq for c in got})
        home.create("rooms/hall", {"temp": 1})
        home.create("garden", {"temp": 2})  # not below rooms
        wide = [rooms.get(timeout=PATIENCE) for _ in range(31)]
        assert [(c.path, c.kind, c.value) for c in wide] == [
            *(("rooms/kitchen", "update", i) for i in range(1, 31)),
            ("rooms/hall", "create", {"temp": 1}),
        ]
        kitchen.destroy()
        assert watch.get(timeout=PATIENCE).kind == "destroy"
        assert watch.get(timeout=PATIENCE) is None  # the watch ended with its record
        assert watch.closed
        with pytest.raises(ts.Timeout):
            rooms.get(timeout=0.5)  # nothing twice
        space.close()
    assert lossy.lost > 0
    assert lossy.duplicated > 0


def test_a_watch_resumes_from_the_nodes_log_after_a_lost_notification() -> None:
    network = LossyNetwork(5)
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, max_age=3, **FAST) as node:
        rec = node.space("home").create("kitchen", {"n": 0})
        with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE, network=network, **FAST) as space:
            watch = space.record("kitchen").watch()
            rec.set("n", 1)
            assert watch.get(timeout=PATIENCE).value == 1
            network.loss = 1.0
            rec.set("n", 2)  # its notification never arrives: the node drops the observation
            wait_until(lambda: node.statistics()["subscriptions"] == 0, "the observation to be dropped")
            network.loss = 0.0
            rec.set("n", 3)
            assert [watch.get(timeout=PATIENCE).value for _ in range(2)] == [2, 3]
            assert watch.statistics()["registrations"] >= 2
            with pytest.raises(ts.Timeout):
                watch.get(timeout=0.2)  # nothing twice
        assert watch.closed
        wait_until(lambda: node.statistics()["subscriptions"] == 0, "the node to end the watch")


def test_a_nodes_handle_watches_a_record_of_a_peer_until_the_node_closes(node: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 20})
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as other:
        remote = other.record(kitchen.address)
        watch = remote.watch(max_pending=10)
        kitchen.set("temp", 21)
        change = watch.get(timeout=PATIENCE)
        assert (change.kind, change.path, change.tag, change.value) == ("update", "kitchen", "temp", 21)
        assert node.statistics()["subscriptions"] == 1
    assert watch.closed
    wait_until(lambda: node.statistics()["subscriptions"] == 0, "the node to end the watch")


def test_watches_are_bounded_and_refused_with_reasons(node: ts.Node) -> None:
    rec = node.space("home").create("kitchen", {"n": 0})
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
        reader = space.record(rec.capability({"read"}).address)
        with pytest.raises(ts.NotAllowed):
            reader.watch()  # a capability without watch
        watcher = space.record(rec.capability({"watch"}).address)
        with watcher.watch() as watch:
            rec.set("n", 1)
            assert watch.get(timeout=PATIENCE).value == 1
        with pytest.raises(ts.InvalidValue):
            space.watch_records(events={"write"})  # a tuple event, not a change
        with pytest.raises(ts.InvalidValue):
            space.record("kitchen").watch(max_pending=0)
        kitchen = space.record("kitchen")
        rec.destroy()
        with pytest.raises(ts.RecordNotFound):
            kitchen.watch()
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_subscriptions=1) as small:
        small.space("home").create("a", {"n": 0})
        with ts.connect(small.base_uri + "spaces/home", timeout=PATIENCE) as space:
            space.watch_records()
            with pytest.raises(ts.LimitReached) as info:
                space.record("a").watch()
            assert (info.value.limit, info.value.maximum) == ("subscriptions", 1)


def test_a_peer_allowed_only_to_read_uses_capabilities_but_neither_makes_nor_revokes_them() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="read") as node:
        rec = node.space("home").create("kitchen", {"n": 1})
        cap = rec.capability({"read", "set"})
        with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
            theirs = space.record(cap.address)
            assert theirs.operations == {"read", "set"}
            assert theirs.is_capability
            theirs.set("n", 2)  # a capability's address allows what it grants
            assert rec.get("n") == 2
            full = space.record("kitchen")
            assert full.operations >= {"read", "set", "capability"}
            with pytest.raises(ts.Unauthorized):
                full.capability({"read"})
            with pytest.raises(ts.Unauthorized):
                full.read_only()
            # Even a handle made as its owner's: revoking needs write on the node.
            forged = ts.RemoteRecord(space, cap.address, frozenset({"read", "set"}), owner=True)
            with pytest.raises(ts.Unauthorized):
                forged.revoke()
            assert theirs.get("n") == 2
        assert node.spaces["home"].statistics()["capabilities"] == 1
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as node:
        node.space("home").create("kitchen", {"n": 1})
        with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as space:
            mine = space.record("kitchen").capability({"read"}, lease=600)
            assert mine.operations == {"read"}
            with pytest.raises(ts.NotAllowed):
                space.record(mine.address).revoke()  # only the handle that made it
            mine.revoke()
            with pytest.raises(ts.CapabilityRevoked):
                mine.get("n")
            with pytest.raises(ts.CapabilityRevoked):
                mine.revoke()
