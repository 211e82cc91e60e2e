"""The CoAP message layer (tuplespace._federation._message, _endpoint): messages
against vectors and aiocoap's codec; repeated requests taking effect once,
separate answers, retransmission, Observe registration and deregistration over
real UDP; and nodes on a simulated network with loss, duplication and
reordering (tests/coapnet.py), where every operation completes or fails clearly
and no effect is lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiocoap
import orjson
import pytest
from aiocoap.numbers.optionnumbers import OptionNumber
from aiocoap.optiontypes import OpaqueOption
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tuplespace as ts
from coapnet import FAST, LossyNetwork
from helpers import PATIENCE, spawn, wait_until
from tuplespace._codec import encode_template
from tuplespace._federation._blockwise import Blocks
from tuplespace._federation._endpoint import MAX_HOST_SILENT, Address, Endpoint, Timers
from tuplespace._federation._message import (
    ACCEPT,
    ACK,
    BAD_OPTION,
    BAD_REQUEST,
    BLOCK1,
    BLOCK2,
    CHANGED,
    CON,
    CONTENT,
    CONTENT_FORMAT,
    CONTINUE,
    CREATED,
    FETCH,
    GET,
    NON,
    NOT_FOUND,
    OBSERVE,
    POST,
    PUT,
    REQUEST_ENTITY_INCOMPLETE,
    RST,
    URI_HOST,
    URI_PATH,
    URI_PORT,
    URI_QUERY,
    Message,
    MessageError,
    block_value,
    decode_block,
)
from tuplespace._federation._node import peer_of
from tuplespace._federation._resources import SpacesResource

FAST_RETRANSMIT = 2  # retransmissions of a request, where a test lets a whole exchange fail

# -- messages -----------------------------------------------------------------------------

VECTORS = [
    # CON GET, mid 0x7d34, no token, Uri-Path "temperature" (RFC 7252 §3, Appendix A's request)
    ("40017d34bb74656d7065726174757265", Message(CON, GET, 0x7D34, b"", [(URI_PATH, b"temperature")])),
    # ACK 2.05 piggybacked, token 0x71, Content-Format 0 (text/plain: zero-length uint), payload
    ("61457d3471c0ff32322e33", Message(ACK, CONTENT, 0x7D34, b"\x71", [(CONTENT_FORMAT, b"")], b"22.3")),
    # RST, empty
    ("70000001", Message(RST, 0, 1)),
    # NON, Observe 0 and Block2 (num 1, more, 1024-byte blocks): deltas 6 and 17 (one extended byte)
    (
        "5001000060d1041e",
        Message(NON, GET, 0, b"", [(OBSERVE, b""), (BLOCK2, bytes((block_value(1, True, 6),)))]),
    ),
    # an option number past 269: two extended bytes of delta
    ("40010000e0002f", Message(CON, GET, 0, b"", [(316, b"")])),
]


def fields(m: Message) -> tuple[Any, ...]:
    return (m.mtype, m.code, m.mid, m.token, m.options, m.payload)


@pytest.mark.parametrize(("hex_", "message"), VECTORS)
def test_message_vectors(hex_: str, message: Message) -> None:
    assert message.encode().hex() == hex_
    assert fields(Message.decode(bytes.fromhex(hex_))) == fields(message)


def test_block_options() -> None:
    assert block_value(2, True, 6) == 0x2E
    assert decode_block(0x2E) == (2, True, 6)
    with pytest.raises(MessageError, match="BERT"):
        decode_block(0x07)


def test_a_block_other_than_the_one_asked_for_is_refused() -> None:
    # The blocks of a FETCH's answer are asked for under its token: a late repeat of an
    # earlier block must not be joined as the next one.
    request = Message(CON, FETCH, 1, b"t", [(URI_PATH, b"x")], b"[]")
    tag = [(4, b"etag")]
    first = Message(ACK, CONTENT, 1, b"t", [*tag, (BLOCK2, bytes((block_value(0, True, 0),)))], b"a" * 16)
    blocks = Blocks(request, first, 1 << 20, lambda: b"new")
    asked = blocks.next_request()
    assert asked is not None
    assert asked.token == b"t"
    assert decode_block(asked.number(BLOCK2) or 0)[0] == 1
    again = Message(ACK, CONTENT, 2, b"t", [*tag, (BLOCK2, bytes((block_value(0, True, 0),)))], b"a" * 16)
    with pytest.raises(MessageError, match="other than the one asked for"):
        blocks.add(again)
    last = Message(ACK, CONTENT, 3, b"t", [*tag, (BLOCK2, bytes((block_value(1, False, 0),)))], b"b" * 3)
    assert blocks.add(last) is None
    assert blocks.whole().payload == b"a" * 16 + b"b" * 3


messages = st.builds(
    Message,
    st.integers(0, 3),
    st.integers(1, 255),
    st.integers(0, 0xFFFF),
    st.binary(max_size=8),
    st.lists(st.tuples(st.integers(0, 3000), st.binary(max_size=300)), max_size=8).map(
        lambda options: sorted(options, key=lambda o: o[0])
    ),
    st.binary(max_size=200),
)


@given(messages)
def test_messages_round_trip(message: Message) -> None:
    assert fields(Message.decode(message.encode())) == fields(message)


def opaque_to_aiocoap(message: Message) -> bool:
    """aiocoap reads the options it knows (Uri-Path, Block2, ...) as typed values."""
    return all(OptionNumber(n).format is OpaqueOption for n, _ in message.options)


@given(messages.filter(opaque_to_aiocoap))
def test_messages_agree_with_aiocoap(message: Message) -> None:
    data = message.encode()
    theirs = aiocoap.Message.decode(data)
    assert (int(theirs.mtype), int(theirs.code), theirs.mid, theirs.token, theirs.payload) == (
        message.mtype,
        message.code,
        message.mid,
        message.token,
        message.payload,
    )
    assert [(int(o.number), o.encode()) for o in theirs.opt.option_list()] == message.options
    mine = aiocoap.Message(code=message.code, payload=message.payload)
    mine.mtype, mine.mid, mine.token = aiocoap.Type(message.mtype), message.mid, message.token
    for number, value in message.options:
        mine.opt.add_option(OpaqueOption(OptionNumber(number), value))
    assert mine.encode() == data


@given(st.binary(max_size=64))
def test_any_bytes_are_a_message_or_a_message_error(data: bytes) -> None:
    with contextlib.suppress(MessageError):
        Message.decode(data)


@given(messages, st.data())
def test_a_message_cut_before_its_payload_is_refused_or_shorter(
    message: Message, data: st.DataObject
) -> None:
    encoded = message.encode()
    end = len(encoded) - len(message.payload) - (1 if message.payload else 0)
    cut = data.draw(st.integers(0, max(0, end - 1)))
    try:
        decoded = Message.decode(encoded[:cut])
    except MessageError:
        return
    assert not decoded.payload  # a cut between options: a message with fewer of them


@pytest.mark.parametrize(
    ("hex_", "error"),
    [
        ("400100", "shorter than a CoAP header"),
        ("80010000", "CoAP version 2"),
        ("49010000", "token length 9"),
        ("42010000aa", "truncated token"),
        ("40010000ff", "a payload marker without a payload"),
        ("40010000b474", "truncated option"),
        ("40010000d0", "truncated option header"),
        ("40010000f0", "option nibble 15"),
        ("60000000ff00", "an empty message with"),
    ],
)
def test_malformed_messages(hex_: str, error: str) -> None:
    with pytest.raises(MessageError, match=error):
        Message.decode(bytes.fromhex(hex_))


# -- one node over real UDP, spoken to datagram by datagram ----------------------------------


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, **FAST) as n:
        yield n


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(PATIENCE)
        yield s


def path(*segments: str) -> list[tuple[int, bytes]]:
    return [(URI_PATH, s.encode()) for s in segments]


def receive(peer: socket.socket) -> Message:
    return Message.decode(peer.recv(4096))


def test_a_repeated_request_takes_effect_once(node: ts.Node, peer: socket.socket) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    put = Message(
        CON, PUT, 0x0101, b"p", [*path("spaces", "home", "kitchen", "temp"), (CONTENT_FORMAT, b"<")]
    )
    put.payload = ts.encode_cbor(22.0)
    address = ("127.0.0.1", node.port)
    answers = []
    for _ in range(3):
        peer.sendto(put.encode(), address)
        answers.append(receive(peer))
    assert kitchen.get("$version") == 2  # one set, not three
    assert [fields(a) for a in answers] == [fields(answers[0])] * 3
    assert answers[0].mtype == ACK
    assert answers[0].mid == 0x0101
    assert ts.decode_cbor(answers[0].payload) == 2
    write = Message(NON, POST, 0x0102, b"w", [*path("spaces", "home"), (CONTENT_FORMAT, b"<")])
    write.payload = ts.encode_cbor(("job", 1))
    for _ in range(3):
        peer.sendto(write.encode(), address)
        assert receive(peer).mtype == NON
    assert node.space("home").count(("job", 1)) == 1


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ([(URI_HOST, b"a"), (URI_HOST, b"b")], "option 3 is given more than once"),
        ([(URI_PORT, b"\x16\x33\x00")], "option 7 is 3 bytes long, at most 2"),
        ([(ACCEPT, b"<"), (ACCEPT, b"2")], "option 17 is given more than once"),
        ([(ACCEPT, b"\x00\x00<")], "option 17 is 3 bytes long, at most 2"),
        ([(BLOCK2, b"\x06"), (BLOCK2, b"\x16")], "option 23 is given more than once"),
        ([(BLOCK1, b"\x00\x00\x00\x06")], "option 27 is 4 bytes long, at most 3"),
        ([(BLOCK1, b"\x06"), (BLOCK1, b"\x16")], "option 27 is given more than once"),
    ],
)
def test_a_critical_option_repeated_or_too_long_is_a_bad_option(
    node: ts.Node, peer: socket.socket, options: list[tuple[int, bytes]], why: str
) -> None:
    """RFC 7252 §5.4.3, §5.4.5: a critical option whose value is longer than its
    format allows, or given twice when it is not repeatable, is not understood."""
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    put = Message(
        CON, PUT, 0x0111, b"p", [*path("spaces", "home", "kitchen", "temp"), (CONTENT_FORMAT, b"<")]
    )
    for number, value in options:
        put.add(number, value)
    put.payload = ts.encode_cbor(22.0)
    peer.sendto(put.encode(), ("127.0.0.1", node.port))
    answer = receive(peer)
    assert (answer.mtype, answer.code, answer.mid, answer.payload) == (ACK, BAD_OPTION, 0x0111, why.encode())
    assert kitchen.all() == ts.Map({"temp": 21.5})
    assert node.endpoint.statistics()["assemblies"] == 0


def test_a_block_of_the_reserved_size_is_refused_and_observes_nothing(
    node: ts.Node, peer: socket.socket
) -> None:
    """SZX 7 is reserved (RFC 7959 §2.2): a GET asking for a block of it, observing
    or not, is answered 4.00 with a diagnostic and registers no observation."""
    node.space("home").create("kitchen", {"temp": 21.5})
    for mid, observe in ((0x0121, []), (0x0122, [(OBSERVE, b"")])):
        get = Message(CON, GET, mid, b"g", [*observe, *path("spaces", "home", "kitchen", "temp")])
        get.add(BLOCK2, block_value(0, False, 7))
        peer.sendto(get.encode(), ("127.0.0.1", node.port))
        answer = receive(peer)
        assert (answer.mtype, answer.code, answer.mid) == (ACK, BAD_REQUEST, mid)
        assert answer.payload == b"block size exponent 7 is reserved (BERT)"
    assert node.statistics()["observations"] == 0
    assert node.endpoint.statistics()["observed"] == 0


def test_an_observation_of_a_path_that_is_not_utf8_is_refused(node: ts.Node, peer: socket.socket) -> None:
    node.space("home").create("kitchen", {"temp": 21.5})
    get = Message(CON, GET, 0x0141, b"u", [(OBSERVE, b""), *path("spaces", "home"), (URI_PATH, b"\xff")])
    peer.sendto(get.encode(), ("127.0.0.1", node.port))
    answer = receive(peer)
    assert (answer.mtype, answer.code, answer.mid) == (ACK, BAD_REQUEST, 0x0141)
    error = {"code": "wire_error", "message": "option 11 is not UTF-8", "field": None}
    assert orjson.loads(answer.payload)["error"] == error
    assert node.statistics()["observations"] == 0


def test_spaces_without_a_space_is_not_found(node: ts.Node, peer: socket.socket) -> None:
    node.space("home")
    for mid, code in ((0x0151, GET), (0x0152, POST), (0x0153, FETCH)):
        peer.sendto(Message(CON, code, mid, b"s", path("spaces")).encode(), ("127.0.0.1", node.port))
        answer = receive(peer)
        assert (answer.mtype, answer.code, answer.mid) == (ACK, NOT_FOUND, mid)
        error = {"code": "not_found", "message": "name a space: /spaces/<space>[/<path>]", "field": None}
        assert orjson.loads(answer.payload)["error"] == error


def test_a_confirmable_of_a_reserved_class_is_reset(node: ts.Node, peer: socket.socket) -> None:
    """Codes of class 1 are neither requests nor responses (RFC 7252 §3): the
    message is rejected, which for a confirmable is a reset (§4.2)."""
    peer.sendto(Message(CON, 1 << 5 | 1, 0x0131, b"r", path("spaces")).encode(), ("127.0.0.1", node.port))
    reset = receive(peer)
    assert (reset.mtype, reset.code, reset.mid, reset.token) == (RST, 0, 0x0131, b"")


def test_an_answer_not_ready_when_the_request_is_repeated_comes_apart(
    node: ts.Node, peer: socket.socket
) -> None:
    jobs = node.space("jobs")
    take = Message(CON, FETCH, 0x0201, b"t", [*path("spaces", "jobs"), (CONTENT_FORMAT, b"2")])
    take.add(URI_QUERY, "op=take").add(URI_QUERY, f"timeout={PATIENCE}")
    take.payload = encode_template(("job", int))
    address = ("127.0.0.1", node.port)
    peer.sendto(take.encode(), address)
    wait_until(lambda: jobs.statistics()["waiters"] == 1, "the take to wait")
    peer.sendto(take.encode(), address)  # the client did not hear back: it repeats
    empty = receive(peer)
    assert (empty.mtype, empty.code, empty.mid) == (ACK, 0, 0x0201)
    jobs.write(("job", 7))
    answer = receive(peer)
    assert (answer.mtype, answer.code, answer.token) == (CON, CONTENT, b"t")
    assert ts.decode_cbor(answer.payload) == ("job", 7)
    peer.sendto(Message(ACK, 0, answer.mid).encode(), address)
    peer.sendto(take.encode(), address)  # a late repeat: acknowledged, nothing taken again
    assert fields(receive(peer)) == fields(empty)
    jobs.write(("job", 8))
    assert jobs.count(("job", int)) == 1


def test_a_separate_answer_is_retransmitted_until_acknowledged(node: ts.Node, peer: socket.socket) -> None:
    jobs = node.space("jobs")
    take = Message(CON, FETCH, 0x0301, b"t", [*path("spaces", "jobs"), (CONTENT_FORMAT, b"2")])
    take.add(URI_QUERY, "op=take")
    take.payload = encode_template(("job", int))
    address = ("127.0.0.1", node.port)
    peer.sendto(take.encode(), address)
    wait_until(lambda: jobs.statistics()["waiters"] == 1, "the take to wait")
    peer.sendto(take.encode(), address)
    assert receive(peer).mtype == ACK
    jobs.write(("job", 1))
    first, again = receive(peer), receive(peer)  # not acknowledged: sent again, the same
    assert first.mtype == CON
    assert fields(again) == fields(first)
    peer.sendto(Message(ACK, 0, first.mid).encode(), address)
    wait_until(lambda: node.endpoint.statistics()["transmissions"] == 0, "the acknowledgement")


def test_a_client_waits_for_an_answer_that_comes_apart(node: ts.Node) -> None:
    jobs = node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE, **FAST) as space:
        taken = spawn(space.take, ("job", int), PATIENCE)
        # The take waits; the client repeats its request and is acknowledged without the answer.
        wait_until(lambda: node.endpoint.statistics()["separate"] == 1, "the empty acknowledgement")
        jobs.write(("job", 3))
        assert taken.result(PATIENCE) == ("job", 3)
        wait_until(lambda: node.endpoint.statistics()["transmissions"] == 0, "the answer acknowledged")
    assert jobs.count(("job", int)) == 0


def test_large_tuples_travel_in_blocks_both_ways(node: ts.Node) -> None:
    jobs = node.space("jobs")
    with ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE, **FAST) as space:
        space.write(("job", "w" * 5000))  # Block1
        jobs.write(("job", "r" * 5000))
        # Block2 answers of a FETCH: kept by the node for the next blocks, not taken again.
        assert {space.take(("job", str), PATIENCE)[1][0] for _ in range(2)} == {"w", "r"}
        assert space.try_take(("job", str)) is None
    assert node.endpoint.statistics()["assemblies"] == 0


# A rule whose JSON definition and whose answer (the rule) span four blocks each.
BIG_RULE: dict[str, Any] = {
    "template": ("reading", str, float),
    "write": [("alarm", "x" * 40, i) for i in range(60)],
}


def test_a_rule_whose_definition_and_answer_span_blocks_is_added_once(node: ts.Node) -> None:
    served = node.space("home")
    with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE, **FAST) as home:
        # Block1 blocks, then the answer's next blocks asked of the answer the node kept.
        added = home.rules.add("big", **BIG_RULE)
        assert (added.name, added.write) == ("big", served.rules.get("big").write)
    assert [r.name for r in served.rules.list()] == ["big"]
    assert node.endpoint.statistics()["bodies"] == 0  # dropped once its last block was asked for


def test_the_blocks_of_a_posts_answer_are_served_under_any_token(node: ts.Node, peer: socket.socket) -> None:
    # A client may ask each block under a token of its own (libcoap does): the node knows the
    # request by its method and options, serves the answer it kept, and never adds the rule again.
    served = node.space("home")
    template = ["reading", {"$formal": "str"}, {"$formal": "float"}]
    rule = orjson.dumps({"name": "big", "template": template, "write": BIG_RULE["write"]})
    options = [*path("spaces", "home", "$rules"), (CONTENT_FORMAT, b"\x32")]
    address = ("127.0.0.1", node.port)
    mids = iter(range(0x0201, 0x0300))

    def exchange(token: bytes, *extra: tuple[int, bytes], payload: bytes = b"") -> Message:
        peer.sendto(Message(CON, POST, next(mids), token, [*options, *extra], payload).encode(), address)
        return receive(peer)

    parts = [rule[i : i + 1024] for i in range(0, len(rule), 1024)]
    assert len(parts) == 4
    for num, part in enumerate(parts):
        more = num < len(parts) - 1
        answer = exchange(bytes((num,)), (BLOCK1, bytes((block_value(num, more, 6),))), payload=part)
        assert answer.code == (CONTINUE if more else CREATED)
    body = answer.payload
    while decode_block(answer.number(BLOCK2) or 0)[1]:
        num = decode_block(answer.number(BLOCK2) or 0)[0] + 1
        answer = exchange(bytes((0x10 + num,)), (BLOCK2, bytes((block_value(num, False, 6),))))
        assert answer.code == CREATED
        body += answer.payload
    assert orjson.loads(body)["rule"]["name"] == "big"
    assert len(body) > 3 * 1024  # four blocks
    assert [r.name for r in served.rules.list()] == ["big"]
    # Once its last block was asked for the answer is gone: a block of it is answered so,
    # and the rule is not added again.
    again = exchange(b"\x20", (BLOCK2, bytes((block_value(1, False, 6),))))
    assert (again.code, again.payload) == (REQUEST_ENTITY_INCOMPLETE, b"that answer is gone")
    assert [r.name for r in served.rules.list()] == ["big"]


def test_an_answer_whose_next_blocks_are_never_asked_for_is_not_kept(
    node: ts.Node, peer: socket.socket
) -> None:
    """The answer of a FETCH kept for its next blocks is dropped MAX_TRANSMIT_WAIT after
    its first block: a client that never asks for the rest leaves nothing held, and
    a block asked for later is answered 4.08."""
    notes = node.space("notes")
    notes.write(("note", "n" * 3000))
    options = [*path("spaces", "notes"), (CONTENT_FORMAT, b"2"), (URI_QUERY, b"op=read_all")]
    address = ("127.0.0.1", node.port)
    peer.sendto(Message(CON, FETCH, 0x0401, b"f", options, encode_template(("note", str))).encode(), address)
    first = receive(peer)
    assert first.code == CONTENT
    assert decode_block(first.number(BLOCK2) or 0) == (0, True, 6)
    assert node.endpoint.statistics()["bodies"] == 1
    time.sleep(node.endpoint.timers.max_transmit_wait)
    rest = Message(CON, FETCH, 0x0402, b"f", list(options)).add(BLOCK2, block_value(1, False, 6))
    peer.sendto(rest.encode(), address)
    answer = receive(peer)
    assert (answer.code, answer.payload) == (REQUEST_ENTITY_INCOMPLETE, b"that answer is gone")
    assert node.endpoint.statistics()["bodies"] == 0
    assert notes.count(("note", str)) == 1


def test_an_observation_ends_on_deregistration_reset_or_silence(node: ts.Node, peer: socket.socket) -> None:
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    address = ("127.0.0.1", node.port)

    def register(token: bytes, mid: int) -> Message:
        get = Message(CON, GET, mid, token, [(OBSERVE, b""), *path("spaces", "home", "kitchen", "temp")])
        peer.sendto(get.encode(), address)
        first = receive(peer)
        assert first.number(OBSERVE) is not None
        return get

    get = register(b"a", 1)
    kitchen.set("temp", 1.0)
    notification = receive(peer)
    assert (notification.mtype, notification.token) == (CON, b"a")
    assert ts.decode_cbor(notification.payload) == 1.0
    peer.sendto(Message(ACK, 0, notification.mid).encode(), address)
    get.mid, get.options = 2, [(OBSERVE, b"\x01"), *get.options[1:]]  # Observe 1: deregister
    peer.sendto(get.encode(), address)
    assert receive(peer).number(OBSERVE) is None
    assert node.statistics()["observations"] == 0

    register(b"b", 3)
    kitchen.set("temp", 2.0)
    peer.sendto(Message(RST, 0, receive(peer).mid).encode(), address)  # not interested any more
    wait_until(lambda: node.statistics()["observations"] == 0, "the reset to end the observation")

    register(b"c", 4)
    kitchen.set("temp", 3.0)  # never acknowledged: retransmitted, then given up
    wait_until(lambda: node.statistics()["observations"] == 0, "the silence to end the observation")


def test_a_token_registered_again_for_another_resource_observes_that_one(
    node: ts.Node, peer: socket.socket
) -> None:
    """RFC 7641 §4.1: a registration under the token of an observation replaces it,
    and its notifications follow the resource it names now."""
    home = node.space("home")
    home.create("kitchen", {"temp": 21.5})
    garden = home.create("garden", {"temp": 5.0})
    address = ("127.0.0.1", node.port)
    for mid, record in ((1, "kitchen"), (2, "garden")):
        get = Message(CON, GET, mid, b"o", [(OBSERVE, b""), *path("spaces", "home", record, "temp")])
        peer.sendto(get.encode(), address)
        assert receive(peer).number(OBSERVE) is not None
    assert node.statistics()["observations"] == 1
    garden.set("temp", 6.0)
    notification = receive(peer)
    assert (notification.mtype, notification.token) == (CON, b"o")
    assert ts.decode_cbor(notification.payload) == 6.0
    peer.sendto(Message(ACK, 0, notification.mid).encode(), address)


def test_a_notification_larger_than_a_block_is_fetched_whole(node: ts.Node) -> None:
    kitchen = node.space("home").create("kitchen", {"note": "a"})
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, **FAST) as other:
        got: list[Any] = []
        upcall = other.record(kitchen.address).on_change(got.append, tag="note")
        kitchen.set("note", "b" * 5000)
        wait_until(lambda: got[-1:] == ["b" * 5000], "the whole note")
        upcall.cancel()


def test_a_silent_peer_is_unreachable_after_the_retransmissions(peer: socket.socket) -> None:
    timers = Timers(0.05)
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, **FAST) as node:
        remote = node.record(f"coap://127.0.0.1:{peer.getsockname()[1]}/spaces/home/kitchen")
        with pytest.raises(ts.Unreachable, match=f"no acknowledgement within {timers.max_transmit_span:g} s"):
            remote.get("temp")
    sent = 0
    peer.settimeout(0.1)
    try:
        while True:
            peer.recv(4096)
            sent += 1
    except TimeoutError:
        pass
    assert sent == 1 + timers.max_retransmit  # the request, then MAX_RETRANSMIT times again


def test_the_endpoint_tables_are_bounded() -> None:
    async def scenario() -> dict[str, int]:
        endpoint = Endpoint(_Echo(), max_exchanges=10, max_assemblies=2)
        sent: list[bytes] = []
        endpoint.connection_made(_Recorder(sent))  # type: ignore[arg-type]
        for mid in range(100):
            endpoint.datagram_received(Message(CON, GET, mid, b"x", path("a")).encode(), ("127.0.0.1", mid))
        for port in range(5):  # block-wise requests begun and never finished
            start = Message(CON, PUT, 200 + port, b"y", [*path("a"), (27, bytes((block_value(0, True, 0),)))])
            start.payload = b"z" * 16
            endpoint.datagram_received(start.encode(), ("127.0.0.1", 1000 + port))
        await asyncio.sleep(0)
        assert len(sent) == 105
        assert Message.decode(sent[-1]).code == CONTINUE  # the oldest assemblies gave way
        endpoint.close()
        return endpoint.statistics()

    statistics = asyncio.run(scenario())
    assert statistics["exchanges"] == 10
    assert statistics["assemblies"] == 2


def test_message_ids_remembered_are_fewer_than_a_peer_goes_through() -> None:
    with pytest.raises(ts.InvalidValue, match="max_exchanges is 1 to 32768"):
        ts.Node("coap://127.0.0.1:0/", max_exchanges=65536)
    with pytest.raises(ts.InvalidValue, match="max_host_exchanges is 1 to 32768"):
        ts.Node("coap://127.0.0.1:0/", max_host_exchanges=0)
    with pytest.raises(ts.InvalidValue, match="max_host_assemblies is a number of requests, at least 1"):
        ts.Node("coap://127.0.0.1:0/", max_host_assemblies=0)
    with pytest.raises(ts.InvalidValue, match="max_assemblies is a number of requests, at least 1"):
        ts.Node("coap://127.0.0.1:0/", max_assemblies=0)
    with pytest.raises(ts.InvalidValue, match="max_age is 1 to"):
        ts.Node("coap://127.0.0.1:0/", max_age=0)


@pytest.fixture
def other_host() -> Iterator[socket.socket]:
    """A peer on another host than 127.0.0.1 (Linux routes all of 127.0.0.0/8 to loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        s.settimeout(PATIENCE)
        yield s


def _flood(sender: socket.socket, node: ts.Node, requests: int, first_mid: int = 0) -> None:
    """``requests`` requests for an unknown path, each answered (4.04) before the next."""
    for mid in range(first_mid, first_mid + requests):
        sender.sendto(Message(CON, GET, mid, b"f", path("nowhere")).encode(), ("127.0.0.1", node.port))
        assert receive(sender).mid == mid


def test_a_host_sending_many_requests_does_not_make_a_node_forget_anothers(
    peer: socket.socket, other_host: socket.socket
) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, max_exchanges=256, **FAST) as node:
        home = node.space("home")
        write = Message(CON, POST, 0x0501, b"w", [*path("spaces", "home"), (CONTENT_FORMAT, b"<")])
        write.payload = ts.encode_cbor(("job", 1))
        peer.sendto(write.encode(), ("127.0.0.1", node.port))
        first = receive(peer)  # as if this ACK were lost: the peer will send its write again
        _flood(other_host, node, node.endpoint.max_exchanges)
        peer.sendto(write.encode(), ("127.0.0.1", node.port))
        assert fields(receive(peer)) == fields(first)
        assert home.count(("job", 1)) == 1


def test_a_host_past_its_share_keeps_its_newest_message_ids(
    peer: socket.socket, other_host: socket.socket
) -> None:
    with ts.Node(
        "coap://127.0.0.1:0/", timeout=PATIENCE, max_exchanges=64, max_host_exchanges=16, **FAST
    ) as node:
        home = node.space("home")
        _flood(peer, node, 24)
        write = Message(CON, POST, 0x0601, b"w", [*path("spaces", "home"), (CONTENT_FORMAT, b"<")])
        write.payload = ts.encode_cbor(("job", 1))
        peer.sendto(write.encode(), ("127.0.0.1", node.port))
        first = receive(peer)
        _flood(peer, node, 15, first_mid=100)  # the write is the oldest of the host's 16 newest
        _flood(other_host, node, 64)
        assert node.endpoint.statistics()["exchanges"] == 32  # each host holds its share
        peer.sendto(write.encode(), ("127.0.0.1", node.port))
        assert fields(receive(peer)) == fields(first)
        assert home.count(("job", 1)) == 1


class _Counting:
    """A site that answers each request with how many it rendered."""

    def __init__(self) -> None:
        self.rendered: list[tuple[Any, int]] = []

    def render(self, request: Message, peer: Any) -> Message:
        self.rendered.append((peer[0], request.mid))
        return Message(code=CONTENT, payload=str(len(self.rendered)).encode())

    def observe(self, request: Message, notify: Any, peer: Any) -> None:
        return None

    def too_large(self, maximum: int) -> Message:
        return Message(code=141)


def test_when_message_ids_fill_the_table_the_host_holding_the_most_forgets_its_oldest() -> None:
    site = _Counting()
    sent = [("10.0.0.3", 1), ("10.0.0.2", 2), ("10.0.0.2", 3), ("10.0.0.2", 4)]
    sent += [("10.0.0.1", 5), ("10.0.0.1", 6), ("10.0.0.1", 7), ("10.0.0.1", 8), ("10.0.0.4", 9)]
    forgotten = ("10.0.0.1", 5)
    repeated = [*(s for s in sent if s != forgotten), forgotten]

    async def scenario() -> None:
        endpoint = Endpoint(site, max_exchanges=8, max_host_exchanges=4)
        endpoint.connection_made(_Recorder([]))  # type: ignore[arg-type]
        for host, mid in [*sent, *repeated]:  # the last sent finds the table full: 10.0.0.1 holds the most
            endpoint.datagram_received(Message(CON, GET, mid, b"x", path("a")).encode(), (host, 5683 + mid))
        endpoint.close()

    asyncio.run(scenario())
    assert site.rendered == [*sent, forgotten]  # the others' repeats were answered, not made again


def test_a_host_beginning_many_block_wise_requests_leaves_room_for_others() -> None:
    async def scenario() -> list[Message]:
        endpoint = Endpoint(_Echo(), max_assemblies=4, max_host_assemblies=2)
        sent: list[bytes] = []
        endpoint.connection_made(_Recorder(sent))  # type: ignore[arg-type]

        def block(mid: int, num: int, more: bool, peer: Address) -> None:
            message = Message(
                CON, PUT, mid, b"y", [*path("a"), (BLOCK1, bytes((block_value(num, more, 0),)))]
            )
            message.payload = bytes((mid,)) * 16
            endpoint.datagram_received(message.encode(), peer)

        for mid in range(10, 20):  # one host begins many and never finishes them
            block(mid, 0, True, ("10.0.0.1", mid))
        block(1, 0, True, ("10.0.0.2", 1))  # another host's request, begun
        block(2, 1, False, ("10.0.0.2", 1))  # and finished
        block(30, 1, False, ("10.0.0.1", 10))  # the first of the many gave way
        await asyncio.sleep(0)
        statistics = endpoint.statistics()
        endpoint.close()
        assert statistics["assemblies"] == 2
        return [Message.decode(d) for d in sent]

    answers = asyncio.run(scenario())
    assert answers[-2].code == CONTENT
    assert answers[-2].payload == b"\x01" * 16 + b"\x02" * 16
    assert answers[-1].code == REQUEST_ENTITY_INCOMPLETE


def test_a_host_asking_for_many_large_answers_leaves_the_others_theirs() -> None:
    async def scenario() -> Message:
        endpoint = Endpoint(_Echo(), max_assemblies=4, max_host_assemblies=2, block_szx=0)  # 16-byte blocks
        sent: list[bytes] = []
        endpoint.connection_made(_Recorder(sent))  # type: ignore[arg-type]

        def post(mid: int, peer: Address, payload: bytes, num: int = 0) -> None:
            message = Message(CON, POST, mid, peer[0].encode(), path("a"), payload)
            if num:
                message.add(BLOCK2, block_value(num, False, 0))
            endpoint.datagram_received(message.encode(), peer)

        post(1, ("10.0.0.2", 1), b"b" * 32)  # its answer is kept for its second block
        for mid in range(10, 20):  # another host's answers, kept too
            post(mid, ("10.0.0.1", mid), b"a" * 32)
        post(2, ("10.0.0.2", 1), b"", num=1)
        await asyncio.sleep(0)
        endpoint.close()
        return Message.decode(sent[-1])

    last = asyncio.run(scenario())
    assert (last.code, last.payload) == (CONTENT, b"b" * 16)


def test_one_host_holds_a_bounded_share_of_the_silent_peers() -> None:
    async def scenario() -> dict[str, int]:
        endpoint = Endpoint(timers=Timers(0.001, max_retransmit=0))
        endpoint.connection_made(_Recorder([]))  # type: ignore[arg-type]
        peers = [("10.0.0.2", 1), *(("10.0.0.1", port) for port in range(1, 301))]
        answers = await asyncio.gather(
            *(endpoint.request(p, GET, path("a")) for p in peers), return_exceptions=True
        )
        assert all(isinstance(a, ts.Unreachable) for a in answers)
        endpoint.close()
        return endpoint.statistics()

    assert asyncio.run(scenario())["silent"] == 1 + MAX_HOST_SILENT  # 10.0.0.1's newest, and 10.0.0.2


class _Echo:
    def render(self, request: Message, peer: Any) -> Message:
        return Message(code=CONTENT, payload=request.payload)

    def observe(self, request: Message, notify: Any, peer: Any) -> None:
        return None

    def too_large(self, maximum: int) -> Message:
        return Message(code=141)


class _Recorder:
    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent

    def sendto(self, data: bytes, address: Any) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=40), max_size=10), st.data())
def test_garbage_and_cut_datagrams_have_no_effect(garbage: list[bytes], data: st.DataObject) -> None:
    base = "coap://127.0.0.1:5683/"
    space = ts.Space(name="home", base_uri=base)
    kitchen = space.create("kitchen", {"temp": 21.5})
    site = SpacesResource({"home": space}, max_observers=4, max_observed=4)
    site.base_uri = base
    put = Message(CON, PUT, 7, b"t", [*path("spaces", "home", "kitchen", "temp"), (CONTENT_FORMAT, b"<")])
    put.payload = ts.encode_cbor(99.0)
    whole = put.encode()
    cut = whole[: data.draw(st.integers(0, len(whole) - len(put.payload) - 1))]  # before the payload

    async def scenario() -> list[bytes]:
        endpoint = Endpoint(site)
        sent: list[bytes] = []
        endpoint.connection_made(_Recorder(sent))  # type: ignore[arg-type]
        for datagram in [*garbage, cut]:
            endpoint.datagram_received(datagram, ("127.0.0.1", 9))
        await asyncio.sleep(0)
        endpoint.close()
        return sent

    answers = asyncio.run(scenario())
    assert kitchen.all() == ts.Map({"temp": 21.5})
    assert kitchen.get("$version") == 1
    for answer in answers:  # a reset, or the answer to what happened to be a request
        assert Message.decode(answer).mtype in (ACK, NON, RST)
    space.close()


# -- nodes on a lossy network ------------------------------------------------------------------


@pytest.fixture
def lossy() -> LossyNetwork:
    return LossyNetwork(17, loss=0.3, duplicate=0.1, delay=0.02)


def test_at_30_percent_loss_sets_complete_or_fail_clearly_and_count_once(lossy: LossyNetwork) -> None:
    with (
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=lossy, **FAST) as node,
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=lossy, **FAST) as other,
    ):
        kitchen = node.space("home").create("kitchen", {"n": 0})
        remote = other.record(kitchen.address)
        done = failed = 0
        for i in range(30):
            try:
                assert remote.set("n", i) >= 2
                done += 1
            except ts.Unreachable:
                failed += 1
        note = "n" * 4000  # four blocks each way
        try:
            remote.set("note", note)
            assert remote.get("note") == note
        except ts.Unreachable:
            failed += 1
        # Each set that completed took effect once; one that failed at most once.
        sets = kitchen.get("$version") - 1 - (kitchen.get("note") is not None)
    assert done <= sets <= done + failed
    assert done >= 20
    assert lossy.lost > 0
    assert lossy.duplicated > 0


def test_at_30_percent_loss_writes_and_takes_are_not_lost_or_doubled(lossy: LossyNetwork) -> None:
    clock = ts.SimulatedClock()
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=lossy, **FAST) as node:
        jobs = node.space("jobs", clock=clock)
        space = ts.connect(node.base_uri + "spaces/jobs", timeout=PATIENCE, network=lossy, **FAST)
        written: set[int] = set()
        unsure: set[int] = set()
        for i in range(25):
            try:
                space.write(("job", i))
                written.add(i)
            except ts.Unreachable:
                unsure.add(i)
        stored = [t[1] for t in jobs.read_all(("job", int))]
        assert len(stored) == len(set(stored))  # none written twice
        assert written <= set(stored) <= written | unsure
        taken: list[int] = []
        for _ in range(len(stored)):
            try:
                found = space.try_take(("job", int))
                assert found is not None
                taken.append(found[1])
            except ts.Unreachable:  # its claim runs out below
                pass
        # One take whose answers are all lost, however the dice fell above.
        jobs.write(("job", 99))
        stored.append(99)
        lossy.drop = lambda source, data: source == ("127.0.0.1", node.port)
        with pytest.raises(ts.Unreachable):
            space.try_take(("job", int))
        lossy.drop = lambda source, data: False
        space.close()
        # A take whose answer never arrived was never confirmed: its claim runs out
        # and its tuple returns.
        clock.advance(30)
        left = [t[1] for t in jobs.read_all(("job", int))]
        assert node.statistics()["held_claims"] == 0
    assert len(taken) == len(set(taken))  # no tuple taken twice
    assert sorted(taken + left) == sorted(stored)  # none lost
    assert lossy.lost > 0


def test_a_rule_whose_blocks_are_lost_on_the_way_is_added_once() -> None:
    network = LossyNetwork(53, duplicate=0.3, delay=0.02)
    lost: list[str] = []

    def once(kind: str) -> bool:
        if kind in lost:
            return False
        lost.append(kind)
        return True

    def a_block_of_each_kind(source: Address, data: bytes) -> bool:
        message = Message.decode(data)
        block1, block2 = message.number(BLOCK1), message.number(BLOCK2)
        if message.code == POST and block1 is not None:
            return decode_block(block1)[0] == 1 and once("request block 1")
        if message.code == CONTINUE and block1 is not None:
            return decode_block(block1)[0] == 2 and once("continue after block 2")
        if message.code == POST and block2 is not None:
            return decode_block(block2)[0] == 2 and once("ask for answer block 2")
        if message.code == CREATED and block2 is not None:
            num, more, _ = decode_block(block2)
            return once(f"answer block {num}") if num in (0, 1) or not more else False
        return False

    network.drop = a_block_of_each_kind
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, **FAST) as node:
        served = node.space("home")
        with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE, network=network, **FAST) as home:
            assert home.rules.add("big", **BIG_RULE).name == "big"
        assert [r.name for r in served.rules.list()] == ["big"]  # the lost blocks asked again, once
        assert node.endpoint.statistics()["bodies"] == 0
    assert sorted(lost) == [
        "answer block 0",  # the answer to the last block of the request: that block sent again
        "answer block 1",
        "answer block 3",  # the last: its answer dropped, the request repeated
        "ask for answer block 2",
        "continue after block 2",
        "request block 1",
    ]
    assert network.duplicated > 0


def test_a_confirmation_that_cannot_get_through_is_sent_again() -> None:
    network = LossyNetwork(11)
    dropped: list[bytes] = []

    def first_confirmations(source: Address, data: bytes) -> bool:
        if b"op=confirm" in data and len(dropped) < 1 + FAST_RETRANSMIT:  # one whole exchange
            dropped.append(data)
            return True
        return False

    options: dict[str, Any] = {
        "timeout": PATIENCE,
        "network": network,
        "max_retransmit": FAST_RETRANSMIT,
        **FAST,
    }
    with ts.Node("coap://127.0.0.1:0/", **options) as node:
        jobs = node.space("jobs")
        jobs.write(("job", 1))
        with ts.connect(node.base_uri + "spaces/jobs", **options) as space:
            network.drop = first_confirmations
            assert space.take(("job", int)) == ("job", 1)
        assert len(dropped) == 1 + FAST_RETRANSMIT
        assert node.statistics()["held_claims"] == 0  # confirmed by the second exchange
        assert jobs.read_all(("job", int)) == []


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_take_whose_answer_is_lost_returns_when_its_claim_runs_out(face: str) -> None:
    network = LossyNetwork(7)
    clock = ts.SimulatedClock()
    options: dict[str, Any] = {"timeout": PATIENCE, "network": network, **FAST}
    with ts.Node("coap://127.0.0.1:0/", claim_lease=20, **options) as node:
        jobs = node.space("jobs", clock=clock)
        jobs.write_many([("job", 1), ("job", 2)])
        url = node.base_uri + "spaces/jobs"

        def take_muted_then_again() -> tuple[Any, ...]:
            async def main() -> tuple[Any, ...]:
                async with await ts.connect_async(url, **options) as space:
                    return await answers(lambda: space.take(("job", int)))

            if face == "async":
                return asyncio.run(main())
            with ts.connect(url, **options) as space:
                return asyncio.run(answers(lambda: asyncio.to_thread(space.take, ("job", int))))

        async def answers(take: Any) -> tuple[Any, ...]:
            network.drop = lambda source, data: source == ("127.0.0.1", node.port)  # its answers
            with pytest.raises(ts.Unreachable):
                await take()
            network.drop = lambda source, data: False
            held = node.statistics()["held_claims"]
            seen = jobs.read_all(("job", int))  # the tuple taken is held, out of everyone's view
            clock.advance(20)
            back = jobs.read_all(("job", int))  # back at its place
            return held, seen, back, await take()

        held, seen, back, again = take_muted_then_again()
        assert (held, seen) == (1, [("job", 2)])
        assert back == [("job", 1), ("job", 2)]
        assert again == ("job", 1)  # taken again, and confirmed: the claim is over
        assert node.statistics()["held_claims"] == 0
        clock.advance(20)
        assert jobs.read_all(("job", int)) == [("job", 2)]


def test_at_30_percent_loss_records_taken_are_not_lost_or_doubled(lossy: LossyNetwork) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=lossy, claim_lease=5, **FAST) as node:
        home = node.space("home")
        made = {home.create(f"jobs/{i}", {"kind": "job", "n": i}).address for i in range(30)}
        taken: list[ts.URI] = []
        failed = 0
        url = node.base_uri + "spaces/home"
        # Fewer retransmissions, so that some exchanges fail whole.
        with ts.connect(
            url, timeout=PATIENCE, network=lossy, max_retransmit=FAST_RETRANSMIT, **FAST
        ) as space:
            for _ in range(len(made)):
                try:
                    found = space.try_take_record({"kind": "job"})
                    assert found is not None
                    taken.append(found.address)
                except ts.Unreachable:
                    failed += 1
        # A take whose answer never arrived was never confirmed: its claim runs out
        # and its record is shown again.
        wait_until(lambda: node.statistics()["held_claims"] == 0, "the unconfirmed claims to run out")
        left = [record.address for record in home.find({"kind": "job"})]
    assert len(taken) == len(set(taken))  # no record taken twice
    assert sorted(map(str, taken + left)) == sorted(map(str, made))  # none lost
    assert failed > 0
    assert lossy.lost > 0


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_take_record_whose_answer_is_lost_returns_when_its_claim_runs_out(face: str) -> None:
    network = LossyNetwork(7)
    options: dict[str, Any] = {
        "timeout": PATIENCE,
        "network": network,
        "max_retransmit": FAST_RETRANSMIT,
        **FAST,
    }
    # The claim outlasts the take's exchange (the client gives up on it first).
    with ts.Node("coap://127.0.0.1:0/", claim_lease=5, **options) as node:
        home = node.space("home")
        first = home.create("jobs/1", {"kind": "job", "n": 1}).address
        home.create("jobs/2", {"kind": "job", "n": 2})
        url = node.base_uri + "spaces/home"

        def take_muted_then_again() -> tuple[Any, ...]:
            async def main() -> tuple[Any, ...]:
                async with await ts.connect_async(url, **options) as space:
                    return await answers(lambda: space.take_record({"kind": "job"}, timeout=0))

            if face == "async":
                return asyncio.run(main())
            with ts.connect(url, **options) as space:
                return asyncio.run(
                    answers(lambda: asyncio.to_thread(space.take_record, {"kind": "job"}, None, 0))
                )

        async def answers(take: Any) -> tuple[Any, ...]:
            network.drop = lambda source, data: source == ("127.0.0.1", node.port)  # its answers
            with pytest.raises(ts.Unreachable):
                await take()
            network.drop = lambda source, data: False
            held = node.statistics()["held_claims"]
            seen = [record.get("n") for record in home.find({"kind": "job"})]  # held, out of view
            await asyncio.to_thread(
                wait_until, lambda: node.statistics()["held_claims"] == 0, "the claim to run out"
            )
            back = [record.get("n") for record in home.find({"kind": "job"})]
            return held, seen, back, await take()

        held, seen, back, again = take_muted_then_again()
        assert (held, seen) == (1, [2])
        assert back == [1, 2]  # shown again as it was
        assert (again.address, again.fields, again.version) == (first, {"kind": "job", "n": 1}, 1)
        assert node.statistics()["held_claims"] == 0  # taken again, and confirmed
        assert [record.get("n") for record in home.find({"kind": "job"})] == [2]


def test_an_observer_that_hears_nothing_registers_again() -> None:
    network = LossyNetwork(3)
    with (
        # Fresh for 3 s: longer than the node takes to give up a notification (1.1 s here).
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, max_age=3, **FAST) as node,
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, **FAST) as other,
    ):
        kitchen = node.space("home").create("kitchen", {"n": 0})
        got: list[Any] = []
        upcall = other.record(kitchen.address).on_change(got.append, tag="n")
        network.loss = 1.0
        kitchen.set("n", 1)  # its notification never arrives: the node drops the observation
        wait_until(lambda: node.statistics()["observations"] == 0, "the observation to be dropped")
        network.loss = 0.0
        wait_until(lambda: got == [1], "the observer to register again and hear the state")
        assert node.statistics()["observations"] == 1
        kitchen.set("n", 2)
        wait_until(lambda: got == [1, 2], "the next notification")
        assert upcall.active
        network.loss = 1.0  # the node is gone: the renewed registration is never answered
        wait_until(lambda: not upcall.active, "the observation to end")
        upcall.cancel()


def test_reordered_and_repeated_notifications_never_go_back_in_time() -> None:
    network = LossyNetwork(5, duplicate=0.3, delay=0.05)
    with (
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, **FAST) as node,
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, network=network, **FAST) as other,
    ):
        kitchen = node.space("home").create("kitchen", {"n": 0})
        got: list[Any] = []
        lock = threading.Lock()

        def seen(value: Any) -> None:
            with lock:
                got.append(value)

        upcall = other.record(kitchen.address).on_change(seen, tag="n")
        for i in range(1, 30):
            kitchen.set("n", i)
        wait_until(lambda: got[-1:] == [29], "the last state")
        upcall.cancel()
    assert got == sorted(got)


# -- congestion control (RFC 7252 §4.7) -------------------------------------------------------


class _Outstanding:
    """Watches a network (as its ``drop``, dropping nothing): the confirmable
    requests sent to ``server`` (or with ``notifications``, the confirmable answers
    it sends) not yet acknowledged, and the most at once (a retransmission sent
    before the ACK was heard does not open it again)."""

    def __init__(self, server: Address, notifications: bool = False) -> None:
        self.server = server
        self.notifications = notifications
        self.open: set[int] = set()
        self.acknowledged: set[int] = set()
        self.most = 0

    def __call__(self, source: Address, data: bytes) -> bool:
        message = Message.decode(data)
        if (source == self.server) != self.notifications:
            if message.mtype in (ACK, RST):
                self.open.discard(message.mid)
                self.acknowledged.add(message.mid)
        elif message.mtype == CON and message.code and (message.code >= 64) == self.notifications:
            if message.mid not in self.acknowledged:
                self.open.add(message.mid)
            self.most = max(self.most, len(self.open))
        return False


def _calls(node: ts.Node, other: ts.Node, address: str, coroutines: int, threads: int) -> list[Any]:
    """Sets of one field of ``address`` from ``other``: ``coroutines`` at once on its
    loop and ``threads`` at once from threads; their results."""
    remote = other.record(address)

    async def many() -> list[Any]:
        peer, options = await peer_of(f"{address}/n")
        options = [*options, (CONTENT_FORMAT, b"<"), (ACCEPT, b"<")]
        endpoint = other.endpoint
        answers = await asyncio.gather(
            *(endpoint.request(peer, PUT, options, ts.encode_cbor(i)) for i in range(coroutines))
        )
        return [answer.code for answer in answers]

    futures = [spawn(remote.set, "n", -i) for i in range(threads)]
    codes = other.call(many())
    return [*codes, *(future.result(PATIENCE) for future in futures)]


def test_never_more_than_nstart_requests_are_outstanding_to_a_peer() -> None:
    network = LossyNetwork(29, delay=0.01)
    options: dict[str, Any] = {"timeout": PATIENCE, "network": network, **FAST}
    with (
        ts.Node("coap://127.0.0.1:0/", **options) as node,
        ts.Node("coap://127.0.0.1:0/", nstart=3, **options) as other,
    ):
        kitchen = node.space("home").create("kitchen", {"n": 0})
        watch = network.drop = _Outstanding(("127.0.0.1", node.port))
        results = _calls(node, other, str(kitchen.address), coroutines=40, threads=8)
        assert results[:40] == [CHANGED] * 40
        assert all(version >= 2 for version in results[40:])
        assert kitchen.get("$version") == 1 + 48
    assert watch.most == 3


def test_many_calls_complete_at_30_percent_loss_nstart_at_a_time() -> None:
    network = LossyNetwork(31, loss=0.3, delay=0.02)
    # Enough retransmissions that no call fails: each effect is checked below.
    options: dict[str, Any] = {
        "timeout": PATIENCE,
        "network": network,
        "ack_timeout": 0.01,
        "max_retransmit": 16,
    }
    with (
        ts.Node("coap://127.0.0.1:0/", **options) as node,
        ts.Node("coap://127.0.0.1:0/", nstart=2, **options) as other,
    ):
        kitchen = node.space("home").create("kitchen", {"n": 0})
        watch = network.drop = _Outstanding(("127.0.0.1", node.port))
        results = _calls(node, other, str(kitchen.address), coroutines=50, threads=10)
        assert results[:50] == [CHANGED] * 50
        assert kitchen.get("$version") == 1 + 60
    assert network.lost > 0
    assert watch.most <= 2


def test_the_retransmissions_of_acknowledged_requests_are_not_kept() -> None:
    with ts.Node("coap://127.0.0.1:0/") as node, ts.Node("coap://127.0.0.1:0/") as other:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})

        async def many() -> None:
            peer, path = await peer_of(f"{kitchen.address}/temp")
            for _ in range(10):
                await asyncio.gather(*(other.endpoint.request(peer, GET, path) for _ in range(50)))

        other.call(many())
        statistics = other.endpoint.statistics()
    assert statistics["transmissions"] == 0
    assert 0 < statistics["scheduled"] <= 2 * 50 + 65  # the acknowledged ones dropped as they pile up


def test_requests_past_the_queue_of_a_peer_are_refused() -> None:
    network = LossyNetwork(37)
    options: dict[str, Any] = {"network": network, "ack_timeout": 0.01, "max_retransmit": 1}
    with ts.Node("coap://127.0.0.1:0/", nstart=1, max_queued=5, probing_rate=1e6, **options) as node:

        async def many() -> list[Any]:
            peer, path = await peer_of("coap://127.0.0.1:29999/spaces/home/kitchen/n")  # nobody there
            calls = (node.endpoint.request(peer, GET, path) for _ in range(20))
            return await asyncio.gather(*calls, return_exceptions=True)

        results = node.call(many())
    refused = [r for r in results if isinstance(r, ts.LimitReached)]
    assert len(refused) == 14  # one outstanding, five waiting their turn
    assert refused[0].limit == "queued"
    assert refused[0].maximum == 5
    assert all(isinstance(r, ts.Unreachable) for r in results if r not in refused)


def test_a_peer_that_stopped_answering_is_probed_at_the_probing_rate() -> None:
    network = LossyNetwork(41)
    sent: list[tuple[float, int]] = []  # when each datagram to the silent peer left, its size

    def record(source: Address, data: bytes) -> bool:
        sent.append((time.monotonic(), len(data)))
        return False

    network.drop = record
    rate = 200.0  # bytes per second
    options: dict[str, Any] = {"network": network, "ack_timeout": 0.01, "max_retransmit": 2}
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, probing_rate=rate, **options) as node:
        address = "coap://127.0.0.1:29999/spaces/home/kitchen"  # nobody there
        remote = node.record(address)
        with pytest.raises(ts.Unreachable, match="no acknowledgement"):
            remote.get("n")
        assert node.endpoint.statistics()["silent"] == 1
        start, before = time.monotonic(), len(sent)
        for _ in range(2):  # from a thread, then from the node's loop
            with pytest.raises(ts.Unreachable, match="no acknowledgement"):
                remote.get("n")

            async def get() -> Any:
                peer, path = await peer_of(f"{address}/n")
                return await node.endpoint.request(peer, GET, path)

            with pytest.raises(ts.Unreachable, match="no acknowledgement"):
                node.call(get())
        end = time.monotonic()
    probes = [size for at, size in sent[before:]]
    assert len(probes) == 4 * 3  # each request, then twice again
    assert sum(probes) <= rate * (end - start) + max(probes)


def test_notifications_to_an_observer_wait_for_its_acknowledgements() -> None:
    network = LossyNetwork(43, delay=0.01)
    options: dict[str, Any] = {"timeout": PATIENCE, "network": network, **FAST}
    with (
        ts.Node("coap://127.0.0.1:0/", nstart=1, **options) as node,
        ts.Node("coap://127.0.0.1:0/", **options) as other,
    ):
        records = [node.space("home").create(f"r{i}", {"n": 0}) for i in range(5)]
        latest: dict[int, Any] = {}
        upcalls = [
            other.record(rec.address).on_change(functools.partial(latest.__setitem__, i), tag="n")
            for i, rec in enumerate(records)
        ]
        watch = network.drop = _Outstanding(("127.0.0.1", node.port), notifications=True)
        for n in range(1, 6):
            for rec in records:
                rec.set("n", n)
        wait_until(lambda: latest == dict.fromkeys(range(5), 5), "the last state of every record")
        for upcall in upcalls:
            upcall.cancel()
    assert watch.most == 1  # five observations of one observer, one notification outstanding


def test_a_silent_peer_that_answers_again_is_no_longer_probed() -> None:
    network = LossyNetwork(47)
    options: dict[str, Any] = {"timeout": PATIENCE, "network": network, "max_retransmit": 1, **FAST}
    with (
        ts.Node("coap://127.0.0.1:0/", **options) as node,
        ts.Node("coap://127.0.0.1:0/", **options) as other,
    ):
        kitchen = node.space("home").create("kitchen", {"n": 0})
        remote = other.record(kitchen.address)
        network.drop = lambda source, data: source == ("127.0.0.1", node.port)  # the node is mute
        with pytest.raises(ts.Unreachable, match="no acknowledgement"):
            remote.set("n", 1)
        assert other.endpoint.statistics()["silent"] == 1
        network.drop = lambda source, data: False
        assert remote.set("n", 2) == 3  # the probe is answered (the first set took effect, once)
        assert other.endpoint.statistics()["silent"] == 0
        assert [remote.set("n", n) for n in range(3, 6)] == [4, 5, 6]
        assert kitchen.get("n") == 5


def test_a_take_waiting_for_a_tuple_is_acknowledged_and_holds_no_turn() -> None:
    # No retransmission: the take is acknowledged empty while it waits, or it fails.
    options: dict[str, Any] = {"timeout": PATIENCE, "max_retransmit": 0}
    with ts.Node("coap://127.0.0.1:0/", **options) as node:
        node.space("jobs")
        with ts.connect(node.base_uri + "spaces/jobs", nstart=1, **options) as space:
            taken = spawn(space.take, ("job", int), PATIENCE)
            wait_until(lambda: node.endpoint.statistics()["separate"] == 1, "the take acknowledged empty")
            space.write(("job", 1))  # its turn: the take is no longer outstanding
            assert taken.result(PATIENCE) == ("job", 1)
