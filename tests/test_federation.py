"""Nodes over real UDP sockets on 127.0.0.1: records served as CoAP resources, and
handles on a peer's records (tuplespace.Node, docs/federation.md)."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiocoap
import orjson
import pytest
from aiocoap import CON, Message
from aiocoap.numbers.codes import Code

import tuplespace as ts
from helpers import PATIENCE, wait_until
from tuplespace._federation._loop import LoopThread


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as n:
        yield n


@pytest.fixture
def other() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as n:
        yield n


@pytest.fixture
def aiocoap_client() -> Iterator[tuple[LoopThread, aiocoap.Context]]:
    """aiocoap, an independent CoAP client, on a loop of its own."""
    runner = LoopThread("aiocoap-client")
    context = runner.call(aiocoap.Context.create_client_context(transports=["udp6"]), PATIENCE)
    yield runner, context
    runner.stop(context.shutdown)


@pytest.fixture
def coap(aiocoap_client: tuple[LoopThread, aiocoap.Context]) -> Callable[..., Message]:
    """``coap(method, uri, payload, **options)``: one request from aiocoap and its response."""
    runner, context = aiocoap_client

    def request(method: str, uri: str, payload: bytes = b"", **options: Any) -> Message:
        message = Message(code=Code[method], uri=uri, payload=payload, **options)
        response: Message = runner.call(context.request(message).response, PATIENCE)
        return response

    return request


def test_aiocoap_observes_and_moves_values_block_by_block(
    node: ts.Node, aiocoap_client: tuple[LoopThread, aiocoap.Context], coap: Callable[..., Message]
) -> None:
    runner, context = aiocoap_client
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    uri = f"{kitchen.address}/temp"
    note = "n" * 3000
    put = coap("PUT", f"{kitchen.address}/note", ts.encode_cbor(note), content_format=60)
    assert put.code == Code.CHANGED  # sent in Block1 blocks by aiocoap
    assert kitchen.get("note") == note
    got = coap("GET", f"{kitchen.address}/note")
    assert ts.decode_cbor(got.payload) == note  # fetched in Block2 blocks
    assert got.opt.block2 is not None

    answered = threading.Event()

    async def observe() -> list[Any]:
        request = context.request(Message(code=Code.GET, uri=uri, observe=0))
        first = await request.response
        answered.set()
        states = [ts.decode_cbor(first.payload)]
        assert first.opt.observe is not None
        async for notification in request.observation:
            states.append(ts.decode_cbor(notification.payload))
            if states[-1] == 3.0:
                request.observation.cancel()
                break
        return states

    watching = asyncio.run_coroutine_threadsafe(observe(), runner.loop)
    wait_until(lambda: node.statistics()["observations"] == 1, "the observation")
    assert answered.wait(PATIENCE)  # the first answer tells the value as the observation began
    for value in (1.0, 2.0, 3.0):
        kitchen.set("temp", value)
    states = watching.result(PATIENCE)
    assert states[0] == 21.5
    assert states[-1] == 3.0
    assert states[1:] == sorted(states[1:])  # never back in time


def test_aiocoap_adds_a_rule_whose_definition_and_answer_span_blocks(
    node: ts.Node, coap: Callable[..., Message]
) -> None:
    home = node.space("home")
    rule = {
        "name": "big",
        "template": ["reading", {"$formal": "str"}, {"$formal": "float"}],
        "write": [["alarm", "x" * 40, i] for i in range(60)],
    }
    # Sent in Block1 blocks; the answer's next blocks come from the answer the node kept.
    added = coap("POST", node.base_uri + "spaces/home/$rules", orjson.dumps(rule), content_format=50)
    assert added.code == Code.CREATED
    assert added.opt.block2 is not None  # fetched in Block2 blocks
    assert orjson.loads(added.payload)["rule"]["write"] == rule["write"]
    assert [r.name for r in home.rules.list()] == ["big"]
    assert node.endpoint.statistics()["bodies"] == 0


def test_aiocoap_subscribes_with_a_template_in_cbor(
    node: ts.Node, aiocoap_client: tuple[LoopThread, aiocoap.Context]
) -> None:
    runner, context = aiocoap_client
    jobs = node.space("jobs")
    template = ts.encode_cbor(("job", ts.Map({"$formal": "int"})))
    uri = node.base_uri + "spaces/jobs?op=subscribe&events=write"

    async def subscribe() -> list[Any]:
        fetch = Message(code=Code.FETCH, uri=uri, observe=0, payload=template, content_format=60)
        request = context.request(fetch)
        first = await request.response
        assert first.opt.observe is not None, first
        assert ts.decode_cbor(first.payload)["events"] == ()
        async for notification in request.observation:
            events = ts.decode_cbor(notification.payload)["events"]
            if events:
                request.observation.cancel()
                return list(events)
        return []

    watching = asyncio.run_coroutine_threadsafe(subscribe(), runner.loop)
    wait_until(lambda: node.statistics()["subscriptions"] == 1, "the subscription")
    jobs.write(("job", 1.5))  # does not match: a float
    jobs.write(("job", 2))
    events = watching.result(PATIENCE)
    assert [event["tuple"] for event in events] == [("job", 2)]


def error_body(response: Message) -> dict[str, Any]:
    assert response.opt.content_format == 50
    error: dict[str, Any] = orjson.loads(response.payload)["error"]
    return error


def test_a_record_is_addressed_under_the_node_base_uri(node: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    assert node.base_uri.startswith("coap://127.0.0.1:")
    assert not node.base_uri.endswith(":0/")
    assert kitchen.address == ts.URI(node.base_uri + "spaces/home/kitchen")
    assert node.space("home") is node.space("home")
    assert node.space("home").record("$").get("ME") == ts.URI(node.base_uri)


def test_a_node_is_named_by_one_address_and_bound_to_another(other: ts.Node) -> None:
    with ts.Node("coap://gateway.example:5683/", bind=("127.0.0.1", 0), timeout=PATIENCE) as node:
        assert node.base_uri == "coap://gateway.example:5683/"
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        assert kitchen.address == ts.URI("coap://gateway.example:5683/spaces/home/kitchen")
        remote = other.record(f"coap://127.0.0.1:{node.port}/spaces/home/kitchen")
        assert remote.get("$PK") == kitchen.address
        assert remote.set("temp", 22.0) == 2


def test_a_node_base_uri_is_checked() -> None:
    for bad in ("http://127.0.0.1:5683/", "coap://127.0.0.1:5683/x", "coap:///"):
        with pytest.raises(ts.InvalidValue):
            ts.Node(bad)


def test_a_space_name_is_one_segment(node: ts.Node) -> None:
    with pytest.raises(ts.InvalidValue):
        node.space("a/b")
    node.space("a")
    with pytest.raises(ts.InvalidValue):
        node.space("a", capacity=3)


def test_a_remote_handle_gets_and_sets_a_peer_record(node: ts.Node, other: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5, "unit": "C"})
    remote = other.record(str(kitchen.address))
    assert remote.address == kitchen.address
    assert remote.get("temp") == 21.5
    assert remote.get("$version") == 1
    assert remote.get("humidity") is None
    assert remote.get("humidity", 40) == 40
    assert remote.set("temp", 22.0) == 2
    assert kitchen.get("temp") == 22.0
    assert type(remote.get("temp")) is float
    assert remote.all() == ts.Map({"temp": 22.0, "unit": "C"})
    assert remote.view("unit", "$version") == ("C", 2)
    remote.set("sensor", (1, True, ts.Credit("0.5"), b"\x00"))
    assert kitchen.get("sensor") == (1, True, ts.Credit("0.5"), b"\x00")


def test_a_record_path_may_have_several_segments(node: ts.Node, other: ts.Node) -> None:
    rec = node.space("home").create("floor/kitchen", {"temp": 1})
    assert other.record(rec.address).get("temp") == 1
    other.record(rec.address).set("temp", 2)
    assert rec.get("temp") == 2


def test_the_peer_errors_are_raised(node: ts.Node, other: ts.Node) -> None:
    space = node.space("home", limits=ts.Limits(max_bytes=64))
    kitchen = space.create("kitchen", {"temp": 21.5})
    with pytest.raises(ts.RecordNotFound):
        other.record(node.base_uri + "spaces/home/cellar").get("temp")
    with pytest.raises(ts.NotFound):
        other.record(node.base_uri + "spaces/nowhere/cellar").get("temp")
    reader = other.record(kitchen.read_only().address)
    assert reader.get("temp") == 21.5
    with pytest.raises(ts.NotAllowed) as caught:
        reader.set("temp", 0.0)
    assert caught.value.operation == "set"
    with pytest.raises(ts.ValueTooLarge) as too_large:
        other.record(kitchen.address).set("temp", "x" * 100)
    assert too_large.value.limit == "max_bytes"
    with pytest.raises(ts.InvalidValue):
        other.record(kitchen.address).set("bad.tag", 1)
    assert kitchen.all() == ts.Map({"temp": 21.5})


def test_a_remote_handle_is_a_value(node: ts.Node, other: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    remote = other.record(kitchen.address)
    house = other.space("house").create("house", {"kitchen": remote})
    assert house.get("kitchen") == kitchen.address
    assert other.record(house.get("kitchen")) == remote
    assert ts.decode_cbor(ts.encode_cbor((remote,))) == (kitchen.address,)


def test_on_change_calls_with_each_new_state(node: ts.Node, other: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    temps: list[Any] = []
    states: list[Any] = []
    remote = other.record(kitchen.address)
    by_field = remote.on_change(temps.append, tag="temp")
    by_record = remote.on_change(states.append)
    assert node.statistics()["observations"] == 2
    kitchen.set("temp", 22.0)
    wait_until(lambda: temps == [22.0], "the field's observer to be told")
    wait_until(lambda: states == [ts.Map({"temp": 22.0})], "the record's observer to be told")
    kitchen.set("unit", "C")  # not the observed field
    wait_until(lambda: len(states) == 2, "the record's observer to be told again")
    kitchen.set("temp", 23.0)
    wait_until(lambda: temps[-1] == 23.0, "the field's observer to be told again")
    assert temps == [22.0, 23.0]
    kitchen.destroy()
    wait_until(lambda: not by_field.active and not by_record.active, "the observations to end")
    assert by_field.statistics() == {"calls": 2, "errors": 0}


def test_a_slow_function_is_given_the_latest_state(node: ts.Node, other: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"n": 0})
    entered, gate = threading.Event(), threading.Event()
    seen: list[Any] = []

    def slow(n: Any) -> None:
        entered.set()
        gate.wait(PATIENCE)
        seen.append(n)

    upcall = other.record(kitchen.address).on_change(slow, tag="n")
    kitchen.set("n", 1)
    wait_until(entered.is_set, "the first call")
    for n in range(2, 6):
        kitchen.set("n", n)
    # The states 2 to 5 arrive while fn is busy; only the latest waits for it.
    wait_until(lambda: upcall._pending == [5], "the latest state to arrive")
    gate.set()
    wait_until(lambda: seen == [1, 5], "the latest state to be given")
    upcall.cancel()
    assert not upcall.active


def test_a_handle_that_may_not_watch_cannot_observe(node: ts.Node, other: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    reader = other.record(kitchen.capability({"read"}).address)
    assert reader.get("temp") == 21.5
    with pytest.raises(ts.NotAllowed) as caught:
        reader.on_change(print)
    assert caught.value.operation == "watch"
    assert node.statistics()["observations"] == 0


def test_closing_the_node_ends_its_observations(node: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as other:
        upcall = other.record(kitchen.address).on_change(print)
    assert not upcall.active
    upcall.cancel()


def test_observations_are_bounded() -> None:
    with (
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_observers=1, max_observed=1) as node,
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as other,
    ):
        home = node.space("home")
        kitchen, cellar = home.create("kitchen", {"temp": 1}), home.create("cellar", {"temp": 2})
        first = other.record(kitchen.address).on_change(print)
        with pytest.raises(ts.LimitReached):
            other.record(kitchen.address).on_change(print, tag="temp")
        with pytest.raises(ts.LimitReached):
            other.record(cellar.address).on_change(print)
        assert node.statistics()["observations"] == 1
        first.cancel()


def test_a_gone_peer_is_unreachable(other: ts.Node) -> None:
    node = ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE)
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    remote = other.record(kitchen.address)
    assert remote.get("temp") == 21.5
    node.close()
    with pytest.raises(ts.Unreachable):
        remote.get("temp")


def test_a_silent_peer_is_unreachable_after_the_timeout() -> None:
    # A UDP socket that receives and never answers: no ICMP error, only silence.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        with (
            ts.Node("coap://127.0.0.1:0/", timeout=0.5) as node,
            pytest.raises(ts.Unreachable, match=r"no answer within 0\.5 s"),
        ):
            node.record(f"coap://127.0.0.1:{port}/spaces/home/kitchen").get("temp")


def test_records_are_created_and_destroyed_over_coap(node: ts.Node, coap: Callable[..., Message]) -> None:
    home = node.space("home")
    uri = node.base_uri + "spaces/home/garden"
    created = coap("POST", uri, ts.encode_cbor({"temp": 12.5}), content_format=60)
    assert created.code == Code.CREATED
    assert created.opt.location_path == ("spaces", "home", "garden")
    assert home.record("garden").all() == ts.Map({"temp": 12.5})
    again = coap("POST", uri, ts.encode_cbor({}), content_format=60)
    assert again.code == Code.CONFLICT
    assert error_body(again)["code"] == "record_exists"
    home.create("house", {"garden": home.record("garden")})
    in_use = coap("DELETE", uri)
    assert in_use.code == Code.CONFLICT
    assert error_body(in_use)["code"] == "record_in_use"
    assert coap("DELETE", uri, uri_query=["force=1"]).code == Code.DELETED
    with pytest.raises(ts.RecordNotFound):
        home.record("garden")
    assert coap("DELETE", uri).code == Code.NOT_FOUND


def test_content_formats(node: ts.Node, coap: Callable[..., Message]) -> None:
    node.space("home").create("kitchen", {"temp": 21.5})
    uri = node.base_uri + "spaces/home/kitchen"
    cbor = coap("GET", uri + "/temp")
    assert cbor.code == Code.CONTENT
    assert cbor.opt.content_format == 60
    assert cbor.payload == bytes.fromhex("f94d60")
    as_json = coap("GET", uri, accept=50)
    assert as_json.opt.content_format == 50
    assert as_json.payload == b'{"temp":{"$float":"21.5"}}'
    view = coap("GET", uri, accept=50, uri_query=["tags=temp,$version"])
    assert view.payload == b'{"$map":{"$version":1,"temp":{"$float":"21.5"}}}'
    put = coap("PUT", uri + "/temp", b'{"$float":"3"}', content_format=50, accept=50)
    assert put.code == Code.CHANGED
    assert put.payload == b"2"
    assert coap("GET", uri, accept=40).code == Code.NOT_ACCEPTABLE
    unsupported = coap("PUT", uri + "/temp", b"3", content_format=0)
    assert unsupported.code == Code.UNSUPPORTED_CONTENT_FORMAT
    garbage = coap("PUT", uri + "/temp", b"\x9f\x01", content_format=60)
    assert garbage.code == Code.BAD_REQUEST
    assert error_body(garbage)["code"] == "wire_error"
    assert coap("PUT", uri, ts.encode_cbor(1)).code == Code.METHOD_NOT_ALLOWED
    assert coap("PATCH", uri, ts.encode_cbor(1)).code == Code.METHOD_NOT_ALLOWED
    assert coap("GET", uri, uri_query=["colour=red"]).code == Code.BAD_REQUEST
    assert coap("DELETE", node.base_uri + "spaces/home").code == Code.METHOD_NOT_ALLOWED
    statistics = coap("GET", node.base_uri + "spaces/home", accept=50)  # a space's
    assert statistics.code == Code.CONTENT
    assert b'"records":1' in statistics.payload
    assert coap("GET", node.base_uri + "spaces/nowhere/x").code == Code.NOT_FOUND
    assert node.space("home").record("kitchen").get("temp") == 3.0


def test_request_payloads_are_bounded(other: ts.Node) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_request_bytes=3000) as node:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        remote = other.record(kitchen.address)
        remote.set("note", "x" * 2000)  # block-wise: larger than one datagram
        assert kitchen.get("note") == "x" * 2000
        with pytest.raises(ts.ValueTooLarge) as caught:
            remote.set("note", "y" * 5000)
        assert caught.value.limit == "max_request_bytes"
        assert caught.value.maximum == 3000
        assert kitchen.get("note") == "x" * 2000
        assert remote.get("note") == "x" * 2000  # block-wise answer


def test_the_root_record_and_the_resource_list(
    node: ts.Node, other: ts.Node, coap: Callable[..., Message]
) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    root = other.record(node.base_uri + "spaces/home/$")
    assert root.get("TUPS") == ts.Map({"kitchen": kitchen.address})
    assert root.get("ME") == ts.URI(node.base_uri)
    with pytest.raises(ts.NotAllowed):
        root.set("ME", 1)
    core = coap("GET", node.base_uri + ".well-known/core")
    assert core.code == Code.CONTENT
    assert b'</spaces/home>;rt="tuplespace.space";obs' in core.payload


def test_the_resource_list_is_in_link_format_only(node: ts.Node, coap: Callable[..., Message]) -> None:
    node.space("home")
    uri = node.base_uri + ".well-known/core"
    assert coap("GET", uri, accept=40).code == Code.CONTENT
    for accept in (50, 60):
        refused = coap("GET", uri, accept=accept)
        assert refused.code == Code.NOT_ACCEPTABLE
        assert error_body(refused)["code"] == "content_format"


def test_garbage_datagrams_change_nothing(node: ts.Node, other: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    port = node.port
    rnd = random.Random(17)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for n in range(200):
            peer.sendto(rnd.randbytes(n % 40), ("127.0.0.1", port))
        # A well-formed PUT whose payload is garbage CBOR is answered 4.00, and changes nothing.
        put = Message(code=Code.PUT, payload=b"\x9f\x01")
        put.token = b"t"
        put.mtype = CON
        put.mid = 0x1234
        put.opt.uri_path = ("spaces", "home", "kitchen", "temp")
        peer.sendto(put.encode(), ("127.0.0.1", port))
        peer.settimeout(PATIENCE)
        answer = Message.decode(peer.recv(2048))
        while answer.token != b"t":  # answers to random bytes that happened to be requests
            answer = Message.decode(peer.recv(2048))
    assert answer.code == Code.BAD_REQUEST
    assert kitchen.all() == ts.Map({"temp": 21.5})
    assert other.record(kitchen.address).get("temp") == 21.5
