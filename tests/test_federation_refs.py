"""Containment across nodes over real UDP on 127.0.0.1: references registered with the
held record's node, cycles refused, levels carried, refreshes batched per peer, lapsed
references and the records they kept collected, and the $sys records
(docs/federation.md, "Containment across nodes" and "System records")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import socket
from collections.abc import Callable, Iterator

import orjson
import pytest

import tuplespace as ts
from helpers import PATIENCE, wait_until
from tuplespace._federation._message import ACCEPT, CON, CONTENT_FORMAT, GET, OBSERVE, POST, URI_PATH, Message

# Short timers: a test waits for what they make happen, never for a time.
TIMERS = {"timeout": PATIENCE, "refresh_period": 0.05, "reference_lifetime": 4.0}
QUIET = {"refresh_period": 3600, "reference_lifetime": 3600}  # nothing refreshed, nothing lapses
NodeMaker = Callable[..., ts.Node]


@pytest.fixture
def make() -> Iterator[NodeMaker]:
    nodes: list[ts.Node] = []

    def make(base: str = "coap://127.0.0.1:0/", **options: object) -> ts.Node:
        node = ts.Node(base, **{**TIMERS, **options})  # type: ignore[arg-type]
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.close()


def refcount(record: ts.Record) -> object:
    return record.get("$refcount")


def test_a_record_of_another_node_is_held_and_counted(make: NodeMaker) -> None:
    a, b = make(**QUIET), make(**QUIET)
    kitchen = a.space("home").create("kitchen", {"temp": 21.5})
    house = b.space("house").create("house", {})
    house.set("kitchen", b.record(kitchen.address))
    assert house.get("kitchen") == kitchen.address
    assert refcount(kitchen) == 1
    assert house.get("$level") == 1
    assert "kitchen" not in a.space("home").record("$").get("TUPS")
    # Its address as a value holds it too, from a creation; one holder counts once.
    flat = b.space("house").create("flat", {"k": kitchen.address, "again": kitchen.address})
    assert refcount(kitchen) == 2
    assert flat.get("$level") == 1
    with pytest.raises(ts.RecordInUse, match=r"contained in 2 record"):
        kitchen.destroy()
    # A record of another space of the same node is held the same way.
    shed = a.space("garden").create("shed", {"kitchen": kitchen.address})
    assert refcount(kitchen) == 3
    assert shed.get("$level") == 1


def test_a_field_naming_no_record_of_the_peer_is_refused(make: NodeMaker) -> None:
    a, b = make(), make()
    a.space("home")
    house = b.space("house").create("house", {})
    with pytest.raises(ts.RecordNotFound):
        house.set("kitchen", ts.URI(a.base_uri + "spaces/home/nothing"))
    with pytest.raises(ts.RecordNotFound):
        b.space("house").create("flat", {"k": ts.URI(a.base_uri + "spaces/home/nothing")})
    assert "kitchen" not in house.all()
    # A capability's address, the root's and a field's are values like any other.
    kitchen = a.space("home").create("kitchen", {})
    cap = kitchen.capability({"read"})
    house.set("cap", cap.address)
    house.set("root", ts.URI(a.base_uri + "spaces/home/$"))
    assert refcount(kitchen) == 0
    assert house.get("$level") == 0


def test_a_cycle_across_nodes_is_refused_and_named(make: NodeMaker) -> None:
    a, b = make(**QUIET), make(**QUIET)
    kitchen = a.space("home").create("kitchen", {})
    house = b.space("house").create("house", {"kitchen": kitchen.address})
    with pytest.raises(ts.ContainmentCycle) as raised:
        kitchen.set("house", house.address)
    assert str(kitchen.address) in str(raised.value)
    assert str(house.address) in str(raised.value)
    assert "house" not in kitchen.all()
    assert refcount(house) == 0
    # Through records of the held record's node: kitchen -> shelf -> house -> kitchen.
    shelf = a.space("home").create("shelf", {})
    home = b.space("house").create("home", {})
    shelf.set("home", home.address)
    kitchen.set("shelf", shelf.address)
    with pytest.raises(ts.ContainmentCycle, match="through shelf"):
        home.set("kitchen", kitchen.address)
    assert refcount(kitchen) == 1


def test_levels_travel_with_the_refreshes(make: NodeMaker) -> None:
    a, b = make(), make()
    kitchen = a.space("home").create("kitchen", {})
    house = b.space("house").create("house", {"kitchen": kitchen.address})
    street = b.space("house").create("street", {"house": house.address})
    assert (house.get("$level"), street.get("$level")) == (1, 2)
    pantry = a.space("home").create("pantry", {})
    kitchen.set("pantry", pantry.address)
    assert kitchen.get("$level") == 1
    wait_until(lambda: street.get("$level") == 3, "the kitchen's new level to reach the street")
    assert house.get("$level") == 2


def test_refreshes_are_batched_per_peer(make: NodeMaker) -> None:
    a, b, holder = make(**QUIET), make(**QUIET), make(**QUIET)
    at_a = [a.space("home").create(f"r{i}", {}) for i in range(300)]
    at_b = b.space("home").create("only", {})
    space = holder.space("house")
    for i, rec in enumerate(at_a):
        space.create(f"h{i}", {"x": rec.address})
    space.create("hb", {"x": at_b.address})
    # 300 references at a: two requests of at most 256; one at b: one request.
    assert holder.call(holder.references.refresh()) == 3
    assert {refcount(r) for r in at_a} == {1}
    assert refcount(at_b) == 1


def test_a_reference_lapses_when_its_holder_drops_it_or_dies(make: NodeMaker) -> None:
    a, b = make(), make()
    kitchen = a.space("home").create("kitchen", {})
    house = b.space("house").create("house", {"kitchen": kitchen.address})
    flat = b.space("house").create("flat", {"kitchen": kitchen.address})
    assert refcount(kitchen) == 2
    house.set("kitchen", None)
    wait_until(lambda: refcount(kitchen) == 1, "the dropped reference to lapse")
    b.close()
    wait_until(lambda: refcount(kitchen) == 0, "the dead holder's reference to lapse")
    assert "kitchen" in a.space("home").record("$").get("TUPS")
    del flat


def test_a_held_record_outlives_its_lease_and_is_collected_when_let_go(make: NodeMaker) -> None:
    a, b = make(), make()
    kitchen = a.space("home").create("kitchen", {"temp": 21.5}, lease=3600)
    house = b.space("house").create("house", {"kitchen": kitchen.address})
    kitchen.refresh(lease=0.001)
    wait_until(lambda: kitchen.get("$lifetime") == 0, "the kitchen's lease to end")
    assert kitchen.get("temp") == 21.5  # held: not collected
    events = kitchen.watch()
    house.set("kitchen", None)
    change = events.get(timeout=PATIENCE)
    assert change.kind == "expire"
    with pytest.raises(ts.RecordNotFound):
        kitchen.get("temp")


def test_a_destroyed_held_record_leaves_none_in_its_holder(make: NodeMaker) -> None:
    a, b = make(), make()
    kitchen = a.space("home").create("kitchen", {})
    house = b.space("house").create("house", {"kitchen": kitchen.address, "keep": 1})
    kitchen.destroy(force=True)
    wait_until(lambda: house.get("kitchen") is None, "the holder to learn the kitchen is gone")
    assert house.get("$level") == 0


def test_references_are_bounded(make: NodeMaker) -> None:
    a, b = make(max_references=1, **QUIET), make(max_peers=1, **QUIET)
    kitchen = a.space("home").create("kitchen", {})
    b.space("house").create("house", {"kitchen": kitchen.address})
    with pytest.raises(ts.LimitReached) as raised:
        b.space("house").create("flat", {"kitchen": kitchen.address})
    assert raised.value.limit == "references"
    assert refcount(kitchen) == 1
    c = make()
    elsewhere = c.space("home").create("x", {})
    with pytest.raises(ts.InvalidValue, match="max_peers"):
        b.space("house").create("far", {"x": elsewhere.address})


def post_refs(node: ts.Node, payload: bytes) -> Message:
    """``POST /$refs`` to ``node``, as a holder's node sends it."""
    options = [(URI_PATH, b"$refs"), (CONTENT_FORMAT, bytes((60,)))]
    return node.endpoint.request_blocking(("127.0.0.1", node.port), POST, options, payload, PATIENCE)


def refs(holder_base: str, *entries: tuple[object, ...]) -> bytes:
    return ts.encode_cbor({"from": holder_base, "refs": entries})  # type: ignore[arg-type]


def test_garbage_sent_to_refs_is_refused(make: NodeMaker) -> None:
    a = make()
    kitchen = a.space("home").create("kitchen", {})
    for payload in (b"", b"\xff", ts.encode_cbor({"from": "x"}), ts.encode_cbor({"from": 1, "refs": ()})):
        assert post_refs(a, payload).code == 0x80  # 4.00
    # An entry that is not a reference is answered as refused; the others are held.
    good = ("spaces/house/h", 0, "spaces/home/kitchen")
    answer = post_refs(a, refs("coap://127.0.0.1:1/", ("x",), good, (1, 2, 3)))
    first, second, third = ts.decode_cbor(answer.payload)  # type: ignore[misc]
    assert first[0] == 400
    assert second == 0
    assert third[0] == 400
    assert refcount(kitchen) == 1
    options = [(URI_PATH, b"$reach"), (CONTENT_FORMAT, bytes((60,)))]
    for body in (
        b"",
        ts.encode_cbor({"holder": "x"}),
        ts.encode_cbor({"holder": "x", "level": 0, "records": ("a",), "hops": 1}),
    ):
        answer = a.endpoint.request_blocking(("127.0.0.1", a.port), POST, options, body, PATIENCE)
        assert answer.code == 0x80  # 4.00
    search = {
        "holder": "coap://127.0.0.1:1/spaces/s/r",
        "level": -1,
        "records": ("spaces/home/kitchen",),
        "hops": 0,
    }
    answer = a.endpoint.request_blocking(
        ("127.0.0.1", a.port), POST, options, ts.encode_cbor(search), PATIENCE
    )
    assert ts.decode_cbor(answer.payload) is None


def test_refs_and_reach_take_and_answer_cbor_only(make: NodeMaker) -> None:
    """A reference asked for in another format than CBOR, or sent in one, is refused
    (4.06, 4.15) and not held."""
    a = make()
    kitchen = a.space("home").create("kitchen", {})
    good = refs("coap://127.0.0.1:1/", ("spaces/house/h", 0, "spaces/home/kitchen"))
    search = ts.encode_cbor({"holder": "coap://127.0.0.1:1/spaces/s/r", "level": 0, "records": (), "hops": 1})
    for resource, payload in ((b"$refs", good), (b"$reach", search)):
        for option, given, code in ((ACCEPT, 50, 0x86), (CONTENT_FORMAT, 50, 0x8F)):
            options = [(URI_PATH, resource), (CONTENT_FORMAT, bytes((60,))), (ACCEPT, bytes((60,)))]
            options = [(n, bytes((given,)) if n == option else v) for n, v in options]
            answer = a.endpoint.request_blocking(("127.0.0.1", a.port), POST, options, payload, PATIENCE)
            assert answer.code == code  # 4.06 Not Acceptable, 4.15 Unsupported Content-Format
            assert orjson.loads(answer.payload)["error"]["code"] == "content_format"
    assert refcount(kitchen) == 0


def test_a_cycle_two_nodes_make_at_once_is_broken_at_the_next_refresh(make: NodeMaker) -> None:
    a, b = make(**QUIET), make(**QUIET)
    kitchen = a.space("home").create("kitchen", {})
    house = b.space("house").create("house", {})
    # a registers its kitchen as a holder of the house (as it does before setting a field) ...
    entry = ("spaces/home/kitchen", 0, "spaces/house/house")
    assert ts.decode_cbor(post_refs(b, refs(a.base_uri, entry)).payload) == (0,)
    # ... and before that set is done, the house is set to hold the kitchen: both pass.
    house.set("kitchen", kitchen.address)
    assert refcount(house) == 1
    assert refcount(kitchen) == 1
    # The next refresh of the kitchen's hold finds the cycle: refused, and the hold dropped.
    ((status, body),) = ts.decode_cbor(post_refs(b, refs(a.base_uri, entry)).payload)  # type: ignore[misc]
    assert status == 400
    assert b'"containment_cycle"' in body
    assert refcount(house) == 0


def test_sys_records_tell_the_node_its_peers_and_the_time(make: NodeMaker) -> None:
    gone = make()
    gone_base = gone.base_uri
    gone.close()
    b = make()
    a = make(peers=[b.base_uri, gone_base])
    node = a.record(a.base_uri + "$sys/node").all()
    assert node["base_uri"] == ts.URI(a.base_uri)
    assert node["refresh_period"] == 0.05
    assert node["reference_lifetime"] == 4.0
    assert isinstance(node["id"], str)
    assert len(node["id"]) == 16
    clock = b.record(a.base_uri + "$sys/clock").get("now")
    assert isinstance(clock, datetime.datetime)
    assert clock.tzinfo is not None

    def peers() -> ts.Map:
        found: ts.Map = b.record(a.base_uri + "$sys/peers").all()
        return found

    wait_until(lambda: peers()[b.base_uri]["alive"] is True, "the live peer to answer a probe")
    assert peers()[gone_base]["alive"] is False
    assert peers()[gone_base]["answered"] is None
    assert peers()[b.base_uri]["configured"] is True
    listing = a.record(a.base_uri + "$sys").all()
    assert listing["clock"] == ts.URI(a.base_uri + "$sys/clock")
    with pytest.raises(ts.RecordNotFound):
        a.record(a.base_uri + "$sys/nothing").all()
    with pytest.raises(ts.TupleSpaceError):
        a.record(a.base_uri + "$sys/node").set("id", "x")


def test_an_observer_of_sys_peers_is_told_when_a_peer_stops_and_comes_back(make: NodeMaker) -> None:
    c = make()
    c_base = c.base_uri
    a = make(peers=[c_base])
    b = make()
    peers = a.base_uri + "$sys/peers"

    def alive() -> bool:
        state: bool = b.record(peers).all()[c_base]["alive"]
        return state

    wait_until(alive, "c to answer a probe")
    states: list[ts.Map] = []
    upcall = b.record(peers).on_change(states.append)
    c_states: list[ts.Map] = []  # c's field only
    field = b.record(peers).on_change(c_states.append, tag=c_base)
    try:
        c.close()
        wait_until(lambda: states and states[-1][c_base]["alive"] is False, "the news that c stopped")
        wait_until(lambda: c_states and c_states[-1]["alive"] is False, "the news on c's field")
        assert not alive()
        again = make(c_base)  # c again, at the same address
        assert again.base_uri == c_base
        wait_until(lambda: states[-1][c_base]["alive"] is True, "the news that c is back")
        wait_until(lambda: c_states[-1]["alive"] is True, "the news on c's field that c is back")
        told, c_told = len(states), len(c_states)
        # Its answers to the probes move its "answered" round after round: no news.
        seen = b.record(peers).all()[c_base]["answered"]
        for _ in range(3):
            wait_until(lambda: b.record(peers).all()[c_base]["answered"] > seen, "another probe")  # noqa: B023
            seen = b.record(peers).all()[c_base]["answered"]
        assert len(states) == told
        # A peer that holds a record of a's is added: news for the record, not for c's field.
        d = make()
        d.space("house").create("house", {"kitchen": a.space("home").create("kitchen", {}).address})
        wait_until(lambda: d.base_uri in states[-1], "the news of a new peer")
        assert states[-1][d.base_uri]["alive"] is True
        assert len(c_states) == c_told
        assert a.statistics()["observations"] == 2
    finally:
        upcall.cancel()
        field.cancel()
    wait_until(lambda: a.statistics()["observations"] == 0, "the observations to end")


def test_sys_node_and_clock_are_observed_within_the_bounds(make: NodeMaker) -> None:
    a = make(max_host_observations=2, **QUIET)
    b = make(**QUIET)
    times: list[object] = []
    clock = b.record(a.base_uri + "$sys/clock").on_change(times.append)
    spaces: list[object] = []
    node = b.record(a.base_uri + "$sys/node").on_change(spaces.append, tag="spaces")
    try:
        wait_until(lambda: len(times) >= 2, "the clock to be told twice")
        first, second = (t["monotonic"] for t in times[:2])  # type: ignore[index]
        assert first < second
        a.space("home")
        wait_until(lambda: spaces == [("home",)], "the news of a new space")
        # A third observation from b's host is past max_host_observations: answered without Observe.
        with pytest.raises(ts.LimitReached):
            b.record(a.base_uri + "$sys/peers").on_change(print)
        assert b.record(a.base_uri + "$sys/peers").all() == {}
        assert a.statistics()["observations"] == 2
    finally:
        clock.cancel()
    wait_until(lambda: a.statistics()["observations"] == 1, "the clock's observation to end")
    assert a.statistics()["observed_records"] == 1  # $sys/node's
    # An observation ended makes room; what names no system record is refused as when read.
    peers = b.record(a.base_uri + "$sys/peers").on_change(print)
    peers.cancel()
    with pytest.raises(ts.RecordNotFound):
        b.record(a.base_uri + "$sys/nothing").on_change(print)
    with pytest.raises(ts.TupleSpaceError, match="no field"):
        b.record(a.base_uri + "$sys/node").on_change(print, tag="nothing")
    node.cancel()
    # A watch reads a space's log of changes, which the system records have not.
    with pytest.raises(ts.TupleSpaceError, match="read with GET"):
        b.record(a.base_uri + "$sys/node").watch()


def test_an_observer_of_the_sys_clock_that_goes_away_is_dropped(make: NodeMaker) -> None:
    a = make(**QUIET)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as observer:
        observer.settimeout(PATIENCE)
        register = Message(CON, GET, 0x77, b"clock").add(OBSERVE, 0)
        register.add(URI_PATH, "$sys").add(URI_PATH, "clock")
        observer.sendto(register.encode(), ("127.0.0.1", a.port))
        first = Message.decode(observer.recv(2048))
        assert first.number(OBSERVE) is not None
        assert a.statistics()["observed_records"] == 1
    # Its port is closed: the next notification fails, which ends the observation and its timer.
    wait_until(lambda: a.statistics()["observed_records"] == 0, "the observation to end")
    assert a.statistics()["observations"] == 0


def test_a_peer_sets_a_reference_over_coap(make: NodeMaker) -> None:
    a, b, client = make(), make(), make()
    kitchen = a.space("home").create("kitchen", {})
    house = b.space("house").create("house", {})
    assert client.record(house.address).set("kitchen", client.record(kitchen.address)) == 2
    assert refcount(kitchen) == 1
    assert house.get("$level") == 1
    options = [(URI_PATH, s.encode()) for s in ("spaces", "house", "flat")]
    options.append((CONTENT_FORMAT, bytes((60,))))
    payload = ts.encode_cbor({"kitchen": kitchen.address})
    created = client.endpoint.request_blocking(("127.0.0.1", b.port), POST, options, payload, PATIENCE)
    assert created.code == 0x41  # 2.01
    assert refcount(kitchen) == 2
    with pytest.raises(ts.ContainmentCycle):
        client.record(kitchen.address).set("house", house.address)


def test_the_node_loop_never_waits_on_itself(make: NodeMaker) -> None:
    a = make()
    said: concurrent.futures.Future[str] = concurrent.futures.Future()

    def inside() -> None:
        try:
            a.call(asyncio.sleep(0))
        except RuntimeError as exc:
            said.set_result(str(exc))

    a.loop.call_soon_threadsafe(inside)
    assert "it would wait on itself" in said.result(PATIENCE)


def test_a_record_moves_to_another_node(make: NodeMaker) -> None:
    a, b, c = make(), make(), make()
    home = a.space("home")
    kitchen = home.create("kitchen", {"temp": 21.5}, lease=3600)
    house = home.create("house", {"kitchen": kitchen.address})
    street = c.space("city").create("street", {"kitchen": kitchen.address})
    remote = c.record(kitchen.address)
    reader_address = kitchen.capability({"read"}, lease=3600).address
    read_only = c.record(reader_address)
    b.space("house").create("taken", {})
    changes = kitchen.watch()
    new_address = ts.URI(b.base_uri + "spaces/house/kitchen")
    kitchen.move(str(new_address))
    change = changes.get(timeout=PATIENCE)
    assert change is not None
    assert (change.kind, change.value) == ("move", new_address)
    moved = b.space("house").record("kitchen")
    assert moved.get("temp") == 21.5
    assert 0 < moved.get("$lifetime") <= 3600  # type: ignore[operator]  # the lease it had left
    assert b.space("house").record("taken").get("$lifetime") is None
    # The record that contained it here holds it there; a remote handle follows it.
    assert house.get("kitchen") == new_address
    assert house.get("$level") == 1
    assert remote.get("temp") == 21.5
    assert remote.address == new_address
    assert remote.set("temp", 22.0) == 2
    # A holder on a third node follows at its next refresh, and is counted there.
    wait_until(lambda: street.get("kitchen") == new_address, "the street to follow the kitchen")
    wait_until(lambda: moved.get("$refcount") == 2, "the street to hold the kitchen where it is")
    with pytest.raises(ts.RecordNotFound):
        kitchen.get("temp")
    assert "kitchen" not in home.record("$").get("TUPS")
    # Its capabilities were made again there: their old addresses lead to them.
    assert read_only.get("temp") == 22.0
    assert read_only.address != reader_address
    assert str(read_only.address).startswith(b.base_uri + "spaces/house/$cap/")
    with pytest.raises(ts.NotAllowed):
        read_only.set("temp", 1.0)
    # The old address answers with the new one.
    old = [(URI_PATH, s.encode()) for s in ("spaces", "home", "kitchen", "temp")]
    answer = c.endpoint.request_blocking(("127.0.0.1", a.port), GET, old, b"", PATIENCE)
    assert answer.code == 0x84  # 4.04
    assert orjson.loads(answer.payload)["error"]["moved_to"] == str(new_address)


def test_an_observation_follows_its_record_to_another_node(make: NodeMaker) -> None:
    a, b, c = make(), make(), make()
    kitchen = a.space("home").create("kitchen", {"temp": 21.5})
    b.space("house")
    old_address = kitchen.address
    states: list[object] = []
    temps: list[object] = []
    whole = c.record(old_address).on_change(states.append)
    field = c.record(old_address).on_change(temps.append, tag="temp")
    kitchen.set("temp", 22.0)
    wait_until(lambda: temps == [22.0], "the first change")
    new_address = ts.URI(b.base_uri + "spaces/house/kitchen")
    kitchen.move(str(new_address))
    moved = b.space("house").record("kitchen")
    moved.set("temp", 23.0)
    # Redirected, not ended: the observations go on where the record is now.
    wait_until(lambda: temps[-1:] == [23.0], "the change made where the record moved")
    wait_until(lambda: states[-1:] == [{"temp": 23.0}], "the record's state where it moved")
    assert whole.active
    assert field.active
    assert b.statistics()["observations"] == 2
    # An observation registered at the old address is redirected there too.
    late: list[object] = []
    again = c.record(old_address).on_change(late.append, tag="temp")
    moved.set("temp", 24.0)
    wait_until(lambda: late == [24.0], "the change seen from the old address")
    for upcall in (whole, field, again):
        upcall.cancel()
    wait_until(lambda: b.statistics()["observations"] == 0, "the observations to end")


def test_a_watch_follows_its_record_to_another_node(make: NodeMaker) -> None:
    a, b, c = make(), make(), make()
    kitchen = a.space("home").create("kitchen", {"temp": 21.5})
    b.space("house")
    old_address = kitchen.address
    with c.record(old_address).watch() as watch:
        kitchen.set("temp", 22.0)
        change = watch.get(timeout=PATIENCE)
        assert change is not None
        assert (change.kind, change.value) == ("update", 22.0)
        new_address = ts.URI(b.base_uri + "spaces/house/kitchen")
        kitchen.move(str(new_address))
        moved = b.space("house").record("kitchen")
        moved.set("temp", 23.0)  # there, maybe before the watch is
        change = watch.get(timeout=PATIENCE)
        assert change is not None
        assert (change.kind, change.value) == ("move", new_address)
        # Watched there from its arrival on (that node numbers its own events).
        change = watch.get(timeout=PATIENCE)
        assert change is not None
        assert (change.kind, change.value) == ("update", 23.0)
        # A watch asked at the old address is redirected there too.
        assert b.statistics()["subscriptions"] == 1
        with c.record(old_address).watch() as late:
            assert b.statistics()["subscriptions"] == 2  # registered there when it began
            moved.destroy()
            for each in (watch, late):
                change = each.get(timeout=PATIENCE)
                assert change is not None
                assert change.kind == "destroy"
                assert each.get(timeout=PATIENCE) is None  # ended with its record
    wait_until(lambda: b.statistics()["subscriptions"] == 0, "the watches to end")


def test_a_move_without_redirection_or_onto_a_taken_path(make: NodeMaker) -> None:
    a, b = make(), make()
    home = a.space("home")
    pantry = home.create("pantry", {"jam": 3})
    b.space("house").create("taken", {})
    with pytest.raises(ts.RecordExists):
        pantry.move(b.base_uri + "spaces/house/taken")
    assert pantry.get("jam") == 3
    with pytest.raises(ts.InvalidValue, match="spaces/<space>/<path>"):
        pantry.move(b.base_uri + "elsewhere")
    remote = b.record(pantry.address)
    pantry.move(b.base_uri + "spaces/house/pantry", redirect_lease=0)
    with pytest.raises(ts.RecordNotFound):
        remote.get("jam")
    assert b.space("house").record("pantry").get("jam") == 3
    # An address of its own space is a move within it.
    shelf = home.create("shelf", {})
    shelf.move(a.base_uri + "spaces/home/shelf2")
    assert shelf.address == ts.URI(a.base_uri + "spaces/home/shelf2")


def test_a_cycle_through_a_third_node_is_refused(make: NodeMaker) -> None:
    a, b, c = make(), make(), make()
    x = a.space("s").create("x", {})
    y = b.space("s").create("y", {})
    z = c.space("s").create("z", {})
    y.set("z", z.address)
    x.set("y", y.address)
    with pytest.raises(ts.ContainmentCycle, match=f"through {y.address}"):
        z.set("x", x.address)
    assert refcount(x) == 0
    # The way back may end in the setter's own space: x -> y -> w, w set to hold x.
    w = a.space("s").create("w", {})
    y.set("w", w.address)
    wait_until(lambda: x.get("$level") == 2, "y's level to reach x")
    with pytest.raises(ts.ContainmentCycle, match=f"through {y.address}"):
        w.set("x", x.address)
    assert "x" not in w.all()


def test_a_cycle_closed_on_stale_levels_is_broken_by_the_refreshes(make: NodeMaker) -> None:
    a, b, c = make(**QUIET), make(**QUIET), make(**QUIET)
    x = a.space("s").create("x", {})
    y = b.space("s").create("y", {})
    z = c.space("s").create("z", {})
    x.set("y", y.address)  # x learns y's level, 0
    y.set("z", z.address)  # y is at level 1 now, which x does not know yet
    z.set("x", x.address)  # so the search below x stops at y: the cycle closes
    assert (refcount(x), refcount(y), refcount(z)) == (1, 1, 1)
    nodes = (a, b, c)

    def broken() -> bool:
        for node in nodes:
            node.call(node.references.refresh())
        return 0 in (refcount(x), refcount(y), refcount(z))

    wait_until(broken, "a refresh to find the cycle")
    holders = [r for r in (x, y, z) if any(isinstance(v, ts.URI) for v in r.all().values())]
    assert len(holders) == 3  # the fields keep their addresses; one is a plain value now
    assert max(r.get("$level") for r in (x, y, z)) <= 3


def test_a_held_record_whose_credit_ran_out_is_collected_when_let_go(make: NodeMaker) -> None:
    a, b = make(), make()
    home = a.space("home", charge_rate=1)
    home.grant_credit("default", 10)
    kitchen = home.create("kitchen", {"temp": 21.5}, credit=5)  # minutes at its size
    house = b.space("house").create("house", {"kitchen": kitchen.address})
    kitchen.set("blob", "x" * 100_000)  # about 100 credit a second now: gone in 0.05 s
    wait_until(lambda: kitchen.get("$credit") == 0, "the kitchen's credit to run out")
    assert kitchen.get("temp") == 21.5  # held: not collected
    events = kitchen.watch()
    house.set("kitchen", None)
    change = events.get(timeout=PATIENCE)
    assert change is not None
    assert change.kind == "expire"


def test_the_timers_and_bounds_are_checked() -> None:
    for option, bad in [
        ("refresh_period", 0),
        ("reference_lifetime", -1),
        ("refresh_period", True),
        ("max_references", 0),
        ("max_peers", 1.5),
    ]:
        with pytest.raises(ts.InvalidValue, match=option):
            ts.Node("coap://127.0.0.1:0/", **{option: bad})  # type: ignore[arg-type]
    with pytest.raises(ts.InvalidValue, match="a peer is named by a coap://host:port/ URI"):
        ts.Node("coap://127.0.0.1:0/", peers=["http://x/"])


def test_a_peer_slow_to_answer_delays_no_other(make: NodeMaker) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # reads nothing, answers nothing
        silent.bind(("127.0.0.1", 0))
        b = make()
        holder = make(timeout=4 * PATIENCE, peers=[f"coap://127.0.0.1:{silent.getsockname()[1]}/"])
        kitchen = b.space("home").create("kitchen", {})
        holder.space("house").create("house", {"kitchen": kitchen.address})

        def answered() -> datetime.datetime:
            peers = holder.record(holder.base_uri + "$sys/peers").all()
            when: datetime.datetime = peers[b.base_uri]["answered"]
            return when

        # Round after round b answers, while the probe of the silent peer waits.
        for _ in range(3):
            before = answered()
            wait_until(lambda: answered() > before, "b to be refreshed again")  # noqa: B023
