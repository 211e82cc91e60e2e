"""Security between nodes (tuplespace._federation._oscore, _peers): OSCORE against
the vectors of RFC 8613 Appendix C and aiocoap's client, replayed and forged
requests refused without effect, permissions of anonymous and authenticated
peers, capability addresses from any peer, rate limits per peer, sequence
numbers across restarts, and fuzzed datagrams against a real node."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiocoap
import orjson
import pytest
from aiocoap.numbers.codes import Code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tuplespace as ts
from coapnet import FAST, LossyNetwork
from helpers import PATIENCE, wait_until
from tuplespace._codec import encode_template
from tuplespace._federation._cbor import CBOR, JSON, encode_cbor
from tuplespace._federation._loop import LoopThread
from tuplespace._federation._message import (
    CON,
    CONTENT_FORMAT,
    FETCH,
    GET,
    MAX_AGE,
    OBSERVE,
    OSCORE,
    POST,
    PUT,
    URI_HOST,
    URI_PATH,
    URI_QUERY,
    Message,
)
from tuplespace._federation._oscore import Context, OscoreError, ReplayWindow, decode_option
from tuplespace._federation._peers import RULE_LEVELS, needed
from tuplespace._rate import RateLimiter
from tuplespace.server._service_rules import rule_acts

NODE_FAST = {"timeout": PATIENCE, **FAST}
SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
SALT = bytes.fromhex("9e7ca92223786340")
UNAUTHORIZED, BAD_REQUEST, BAD_OPTION, FORBIDDEN, TOO_MANY = 129, 128, 130, 131, 157

# -- RFC 8613 Appendix C -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "recipient", "id_context", "sender_key", "recipient_key", "common_iv"),
    [
        # C.1.1 (client) and C.1.2 (server)
        (
            "",
            "01",
            None,
            "f0910ed7295e6ad4b54fc793154302ff",
            "ffb14e093c94c9cac9471648b4f98710",
            "4622d4dd6d944168eefb54987c",
        ),
        (
            "01",
            "",
            None,
            "ffb14e093c94c9cac9471648b4f98710",
            "f0910ed7295e6ad4b54fc793154302ff",
            "4622d4dd6d944168eefb54987c",
        ),
        # C.3.1: with an ID context
        (
            "",
            "01",
            "37cbf3210017a2d3",
            "af2a1300a5e95788b356336eeecd2b92",
            "e39a0c7c77b43f03b4b39ab9a268699f",
            "2ca58fb85ff1b81c0b7181b85e",
        ),
    ],
)
def test_key_derivation_follows_the_rfc_vectors(
    sender: str, recipient: str, id_context: str | None, sender_key: str, recipient_key: str, common_iv: str
) -> None:
    context = Context(
        SECRET,
        SALT,
        sender_id=bytes.fromhex(sender),
        recipient_id=bytes.fromhex(recipient),
        id_context=None if id_context is None else bytes.fromhex(id_context),
    )
    assert (context.sender_key.hex(), context.recipient_key.hex()) == (sender_key, recipient_key)
    assert context.common_iv.hex() == common_iv


def test_key_derivation_agrees_with_aiocoap(tmp_path: Path) -> None:
    from aiocoap.oscore import FilesystemSecurityContext

    _aiocoap_context(tmp_path, sender="0a0b", recipient="", salt="")
    theirs = FilesystemSecurityContext(str(tmp_path))
    ours = Context(SECRET, b"", sender_id=b"\x0a\x0b", recipient_id=b"")
    assert (ours.sender_key, ours.recipient_key, ours.common_iv) == (
        theirs.sender_key,
        theirs.recipient_key,
        theirs.common_iv,
    )


def test_a_request_and_its_answers_are_protected_as_the_rfc_vectors() -> None:
    client = Context(SECRET, SALT, sender_id=b"", recipient_id=b"\x01", sequence=20)
    server = Context(SECRET, SALT, sender_id=b"\x01", recipient_id=b"")
    # C.4: GET coap://localhost/tv1, sequence number 20
    request = Message.decode(bytes.fromhex("44015d1f00003974396c6f63616c686f737483747631"))
    protected, partial_iv = client.protect_request(request)
    assert protected.encode().hex() == (
        "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e"
    )
    inner = server.unprotect_request(protected, partial_iv)
    assert (inner.code, inner.path, inner.get(URI_HOST)) == (GET, ("tv1",), b"localhost")
    # C.7 (the request's nonce) and C.8 (a partial IV of the server's own, sequence number 0)
    answer = Message.decode(bytes.fromhex("64455d1f00003974ff48656c6c6f20576f726c6421"))
    sealed = server.protect_response(answer, partial_iv)
    assert sealed.encode().hex() == "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106"
    fresh = server.protect_response(answer, partial_iv, fresh=True)
    assert fresh.encode().hex() == "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"
    for reply in (sealed, fresh):
        opened = client.unprotect_response(reply, partial_iv)
        assert (opened.code, opened.payload) == (69, b"Hello World!")


def test_the_replay_window() -> None:
    window = ReplayWindow()
    for sequence in (0, 5, 3, 40):
        window.check(sequence)
        window.accept(sequence)
    for replayed in (0, 5, 3, 40, 8):  # 8 is 32 below 40: too old to be told apart
        with pytest.raises(OscoreError, match="Replay"):
            window.check(replayed)
    window.check(9)  # within the window, never seen
    restarted = ReplayWindow(floor=100)
    with pytest.raises(OscoreError):
        restarted.check(100)
    restarted.check(101)


@pytest.mark.parametrize("value", ["06", "0214", "e0", "1914", "190102", "1801"])
def test_a_malformed_oscore_option_is_refused(value: str) -> None:
    with pytest.raises(OscoreError):
        decode_option(bytes.fromhex(value))


# -- nodes -----------------------------------------------------------------------------


def _keys(path: Path, *peers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"peers": list(peers)}))
    return path


def _entry(name: str, sender: str, recipient: str, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "master_secret": SECRET.hex(),
        "sender_id": sender,
        "recipient_id": recipient,
        **more,
    }


def _aiocoap_context(folder: Path, sender: str, recipient: str, salt: str = SALT.hex()) -> None:
    folder.mkdir(exist_ok=True)
    settings_ = {"sender-id_hex": sender, "recipient-id_hex": recipient, "secret_hex": SECRET.hex()}
    if salt:
        settings_["salt_hex"] = salt
    (folder / "settings.json").write_text(json.dumps(settings_))


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[ts.Node, Path]]:
    """A node that lets anonymous peers read, knows the peers ``0b`` (read+write) and
    ``0c`` (read), and limits nothing else; with the folder of its keys."""
    keys = _keys(
        tmp_path / "a.json",
        _entry("b", "0a", "0b"),
        _entry("c", "0a", "0c", permissions="read"),
    )
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="read") as node:
        yield node, tmp_path


def _peer_of(node: ts.Node, folder: Path, sender: str, **options: Any) -> ts.Node:
    keys = _keys(folder / f"{sender}.json", _entry("a", sender, "0a", uri=node.base_uri))
    return ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, **options)


class Raw:
    """A CoAP client on a socket of its own: requests protected (or not) by hand."""

    def __init__(self, port: int, context: Context | None = None, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(PATIENCE)
        self.peer = ("127.0.0.1", port)
        self.context = context
        self.mid = 0

    def make(self, code: int, path: str, payload: bytes = b"", **options: Any) -> tuple[Message, bytes]:
        """The datagram of a request (protected with the context) and its partial IV; an
        option given a list is repeated (``o15=["op=take", "tx=…"]``)."""
        self.mid += 1
        message = Message(CON, code, self.mid, self.mid.to_bytes(2, "big"))
        for segment in path.split("/"):
            message.add(URI_PATH, segment)
        for number, value in options.items():
            for one in value if isinstance(value, list) else [value]:
                message.add(int(number.removeprefix("o")), one)
        message.payload = payload
        if self.context is None:
            return message, b""
        return self.context.protect_request(message)

    def opened(self, message: Message, partial_iv: bytes) -> Message:
        """Send a protected request and return its answer, opened."""
        assert self.context is not None
        return self.context.unprotect_response(self.exchange(message), partial_iv)

    def exchange(self, message: Message) -> Message:
        """Send a message and return the answer with its token."""
        self.sock.sendto(message.encode(), self.peer)
        return self.answer(message.token)

    def answer(self, token: bytes) -> Message:
        while True:
            reply = Message.decode(self.sock.recv(65536))
            if reply.token == token and reply.code:
                return reply

    def again(self, message: Message) -> Message:
        """The same request under a new message id: not a repeat of the message layer."""
        self.mid += 1
        return Message(
            message.mtype, message.code, self.mid, message.token, list(message.options), message.payload
        )

    def close(self) -> None:
        self.sock.close()


def _write(raw: Raw, value: Any) -> Message:
    """A request writing ``value`` in the space ``jobs``."""
    message, _ = raw.make(POST, "spaces/jobs", encode_cbor(value), o12=60)
    return message


def _error(answer: Message) -> dict[str, Any]:
    assert answer.get(CONTENT_FORMAT) == bytes((JSON,))
    error: dict[str, Any] = orjson.loads(answer.payload)["error"]
    return error


def test_peers_authenticated_with_oscore_get_set_and_observe(secured: tuple[ts.Node, Path]) -> None:
    node, folder = secured
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    with _peer_of(node, folder, "0b") as b:
        remote = b.record(kitchen.address)
        assert remote.get("temp") == 21.5
        assert remote.set("temp", 22.0) == 2
        assert kitchen.get("temp") == 22.0
        seen: queue.Queue[Any] = queue.Queue()
        upcall = remote.on_change(seen.put, tag="temp")
        kitchen.set("temp", 23.0)
        assert seen.get(timeout=PATIENCE) == 23.0
        upcall.cancel()
        assert node.statistics()["refused_oscore"] == 0
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as anonymous:  # may read only
        assert anonymous.record(kitchen.address).get("temp") == 23.0
        with pytest.raises(ts.Unauthorized, match="anonymous peers may do read"):
            anonymous.record(kitchen.address).set("temp", 0.0)
    assert kitchen.get("temp") == 23.0


def test_protected_answers_and_notifications_larger_than_a_block_arrive_whole(
    secured: tuple[ts.Node, Path],
) -> None:
    node, folder = secured
    kitchen = node.space("home").create("kitchen", {"note": "a" * 3000})
    with _peer_of(node, folder, "0b") as b:
        remote = b.record(kitchen.address)
        assert remote.get("note") == "a" * 3000
        seen: queue.Queue[Any] = queue.Queue()
        upcall = remote.on_change(seen.put, tag="note")
        kitchen.set("note", "b" * 3000)
        assert seen.get(timeout=PATIENCE) == "b" * 3000
        upcall.cancel()
        assert remote.set("note", "c" * 3000) == 3  # a request payload sent block by block
    assert kitchen.get("note") == "c" * 3000
    assert node.statistics()["refused_oscore"] == 0


def test_a_node_without_keys_refuses_protected_requests() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as node:
        node.space("jobs")
        raw = Raw(node.port, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a"))
        try:
            answer = raw.exchange(_write(raw, (1,)))
        finally:
            raw.close()
        assert (answer.code, answer.payload) == (BAD_OPTION, b"option 9 is not understood")
        assert node.space("jobs").count((int,)) == 0


def test_the_permissions_of_anonymous_and_of_each_peer(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "a.json", _entry("c", "0a", "0c", permissions="read"), _entry("d", "0a", "0d"))
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="none") as node:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        node.space("jobs")
        anonymous = Raw(node.port)
        c = Raw(node.port, Context(SECRET, sender_id=b"\x0c", recipient_id=b"\x0a"))
        d = Raw(node.port, Context(SECRET, sender_id=b"\x0d", recipient_id=b"\x0a"))
        try:
            refused = anonymous.exchange(anonymous.make(GET, "spaces/home/kitchen/temp")[0])
            assert refused.code == UNAUTHORIZED
            assert _error(refused)["code"] == "unauthorized"
            message, partial_iv = c.make(GET, "spaces/home/kitchen/temp")
            answer = c.opened(message, partial_iv)
            assert answer.payload == encode_cbor(21.5)
            message, partial_iv = c.make(PUT, "spaces/home/kitchen/temp", encode_cbor(1.0))
            answer = c.opened(message, partial_iv)
            assert answer.code == FORBIDDEN  # protected, as the request was
            assert _error(answer)["code"] == "forbidden"
            assert _error(answer)["message"] == "the peer 'c' may do read"
            # read+write: a tuple written and a field set; not a record created or destroyed
            for code, path, payload in [
                (POST, "spaces/jobs", encode_cbor((1,))),
                (PUT, "spaces/home/kitchen/temp", encode_cbor(2.0)),
                (POST, "spaces/home/pantry", encode_cbor(ts.Map({}))),
            ]:
                message, partial_iv = d.make(code, path, payload, o12=60)
                answer = d.opened(message, partial_iv)
                assert answer.code == (FORBIDDEN if path.endswith("pantry") else {POST: 65, PUT: 68}[code])
        finally:
            for raw in (anonymous, c, d):
                raw.close()
        assert kitchen.get("temp") == 2.0
        assert node.space("jobs").count((int,)) == 1
        with pytest.raises(ts.RecordNotFound):
            node.space("home").record("pantry")
        assert node.statistics()["refused_permission"] == 3


@pytest.mark.parametrize(
    ("code", "path", "payload", "options", "allowed"),
    [
        (GET, "spaces/home/kitchen", b"", {}, True),
        (GET, ".well-known/core", b"", {}, True),
        (FETCH, "spaces/jobs", encode_template((int,)), {"o12": 50, "o15": "op=count"}, True),
        (FETCH, "spaces/jobs", encode_template((int,)), {"o12": 50, "o15": "op=read"}, True),
        (FETCH, "spaces/jobs", encode_template((int,)), {"o12": 50, "o15": "op=take"}, False),
        (FETCH, "spaces/jobs", encode_template((int,)), {"o12": 50, "o15": "op=read_all"}, True),
        (FETCH, "spaces/jobs", encode_template((int,)), {"o12": 50, "o15": "op=take_all"}, False),
        (FETCH, "spaces/jobs", b"[[2],[2]]", {"o12": 50, "o15": "op=write_if_absent"}, False),
        (FETCH, "spaces/jobs", b'[[1],["x"]]', {"o12": 50, "o15": "op=replace"}, False),
        (GET, "spaces/jobs", b"", {}, True),  # statistics
        (FETCH, "spaces/home", b'{"temp":{"$formal":"float"}}', {"o12": 50, "o15": "op=find"}, True),
        (POST, "spaces/jobs", encode_cbor((2,)), {}, False),
        (POST, "spaces/jobs", b"", {"o15": ["op=close", "session=ended-session"]}, True),
        (PUT, "spaces/home/kitchen/temp", encode_cbor(0.0), {}, False),
        (POST, "spaces/home/pantry", encode_cbor(ts.Map({})), {}, False),
        (4, "spaces/home/kitchen", b"", {}, False),  # DELETE
        (GET, "spaces/jobs/$rules", b"", {}, True),
        (GET, "spaces/jobs/$rules/r", b"", {}, True),
        (POST, "spaces/jobs/$rules", b'{"name":"s","template":[{"$formal":"int"}]}', {"o12": 50}, False),
        (4, "spaces/jobs/$rules/r", b"", {}, False),
        (POST, "spaces/home/kitchen/bump", encode_cbor(()), {"o15": "op=call"}, False),
        (GET, "spaces/jobs/$credit", b"", {}, True),
        (GET, "spaces/jobs/$credit", b"", {"o15": "principal=default"}, True),
        (GET, "spaces/jobs/$credit", b"", {"o15": "principal=ops"}, False),
        (POST, "spaces/jobs/$credit/transfer", b'{"to":"ops","amount":"1"}', {"o12": 50}, False),
        (POST, "spaces/jobs/$credit/grant", b'{"amount":"1"}', {"o12": 50}, False),
    ],
)
def test_what_read_allows(
    code: int, path: str, payload: bytes, options: dict[str, Any], allowed: bool
) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="read") as node:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        jobs = node.space("jobs")
        jobs.write((1,))
        jobs.rules.add("r", template=("job", int), write=[("done", "t[1]")])
        raw = Raw(node.port)
        try:
            answer = raw.exchange(raw.make(code, path, payload, **options)[0])
        finally:
            raw.close()
        assert (answer.code >> 5 == 2) is allowed
        if not allowed:
            assert _error(answer)["code"] == "unauthorized"
        assert kitchen.all() == ts.Map({"temp": 21.5})
        assert jobs.count((int,)) == 1
        assert [r.name for r in jobs.rules.list()] == ["r"]
        with pytest.raises(ts.RecordNotFound):
            node.space("home").record("pantry")


def test_the_default_for_anonymous_depends_on_the_bind_address(tmp_path: Path) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as loopback:
        loopback.space("home").create("kitchen", {"temp": 1})
        with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as other:
            assert other.record(loopback.base_uri + "spaces/home/kitchen").set("temp", 2) == 2
    with ts.Node("coap://node.example:5683/", bind=("0.0.0.0", 0), timeout=PATIENCE) as wide:
        wide.space("home").create("kitchen", {"temp": 1})
        raw = Raw(wide.port)
        try:
            assert raw.exchange(raw.make(GET, "spaces/home/kitchen/temp")[0]).code == UNAUTHORIZED
        finally:
            raw.close()
    with pytest.raises(ts.InvalidValue, match="anonymous is one of none, read, read\\+write, all"):
        ts.Node("coap://127.0.0.1:0/", anonymous="write")


BUMP = "function(self, d) self.target = self.target + d return self.target end"


def test_an_oscore_peer_pays_from_its_own_account(tmp_path: Path) -> None:
    keys = _keys(
        tmp_path / "a.json",
        _entry("b", "0a", "0b", permissions="all"),
        _entry("c", "0a", "0c", permissions="read+write"),
    )
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys) as a:  # anonymous: all (loopback)
        charges = {"creation_charge": "5", "redirect_charge": "1", "step_charge": "0.1", "firing_charge": "2"}
        bank = a.space("bank", clock=ts.SimulatedClock(), charge_rate="1024", **charges)
        for principal, amount in (("default", 100), ("b", 100), ("c", 10)):
            bank.grant_credit(principal, amount)
        rec = bank.create("r", {"target": 21.0, "bump": ts.Method(BUMP)}, credit=20)
        jam = bank.create("jam", {"jars": 3}, credit=5)
        assert bank.account("default") == 65
        with _peer_of(a, tmp_path, "0b") as b:
            b.space("house")
            remote = b.record(rec.address)
            remote.refresh(credit=10)
            assert bank.account("b") == 90
            copy = remote.clone("s", credit=10)
            assert (bank.account("b"), copy.get("$credit")) == (75, 10)
            assert remote.call("bump", 1.0) == 22.0
            after_call = bank.account("b")
            assert after_call < 75  # its steps
            old = jam.address
            jam.move(b.base_uri + "spaces/house/jam")
            assert b.record(old).get("jars") == 3  # through the redirection, paid once
            assert bank.account("b") == after_call - 1
            assert bank.account("default") == 65
        c = Raw(a.port, Context(SECRET, sender_id=b"\x0c", recipient_id=b"\x0a"))
        try:
            rule = b'{"name":"paid","template":[{"$formal":"int"}],"write":[["done"]]}'
            answer = c.opened(*c.make(POST, "spaces/bank/$rules", rule, o12=JSON))
            assert answer.code == 0x41  # 2.01
        finally:
            c.close()
        assert bank.rules.get("paid").principal == "c"
        bank.write((7,))
        assert bank.read(("done",), timeout=PATIENCE) == ("done",)
        assert bank.account("c") == 8  # the firing
        with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as anonymous:
            anonymous.record(rec.address).refresh(credit=1)
        assert (bank.account("default"), bank.account("b")) == (64, after_call - 1)


GIVE = "function(self, n) self.given = self.given + n end"
INTAKE = {"name": "intake", "template": ["order", {"$formal": "str"}, {"$formal": "int"}]}
ACTS = {
    "create": {"'orders/' + t[1]": {"qty": "t[2]"}},
    "refresh": {"farm": 3600},
    "call": [["farm", "give", "t[2]"]],
    "take": [["stock", {"$formal": "int"}]],
}
KWARGS = {  # the same, as space.rules.add takes them
    "create": {"'orders/' + t[1]": {"qty": "t[2]"}},
    "refresh": {"farm": 3600},
    "call": [("farm", "give", "t[2]")],
    "take": [("stock", int)],
}


@pytest.mark.parametrize(
    ("acts", "beyond"),
    [
        (("create",), ["create"]),
        (("refresh",), ["refresh"]),
        (("create", "refresh", "call", "take"), ["refresh", "create"]),
        (("call", "take"), []),  # as a direct call and take: read+write
    ],
)
def test_a_rule_added_over_coap_needs_what_it_does_when_it_fires(
    tmp_path: Path, acts: tuple[str, ...], beyond: list[str]
) -> None:
    keys = _keys(
        tmp_path / "a.json",
        _entry("c", "0a", "0c", permissions="read+write"),
        _entry("d", "0a", "0d", permissions="all"),
    )
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="read+write") as node:
        plant = node.space("plant")
        farm = plant.create("farm", {"given": 0, "give": ts.Method(GIVE)})
        rule = orjson.dumps({**INTAKE, **{act: ACTS[act] for act in acts}})
        anonymous = Raw(node.port)
        c = Raw(node.port, Context(SECRET, sender_id=b"\x0c", recipient_id=b"\x0a"))
        d = Raw(node.port, Context(SECRET, sender_id=b"\x0d", recipient_id=b"\x0a"))
        try:
            answer = c.opened(*c.make(POST, "spaces/plant/$rules", rule, o12=JSON))
            if beyond:
                missing = f"a rule that does {', '.join(beyond)} when it fires needs all"
                assert answer.code == FORBIDDEN
                assert _error(answer) == {
                    "code": "forbidden",
                    "message": f"the peer 'c' may do read+write; {missing}",
                    "field": beyond[0],
                }
                refused = anonymous.exchange(anonymous.make(POST, "spaces/plant/$rules", rule, o12=JSON)[0])
                assert refused.code == UNAUTHORIZED
                message = f"anonymous peers may do read+write; {missing}: use OSCORE"
                assert _error(refused)["message"] == message
                kwargs = {act: KWARGS[act] for act in acts}
                with (
                    ts.connect(node.base_uri + "spaces/plant", timeout=PATIENCE) as remote,
                    pytest.raises(ts.Unauthorized, match=missing),
                ):
                    remote.rules.add("intake", template=("order", str, int), **kwargs)
                assert plant.rules.list() == []
                answer = d.opened(*d.make(POST, "spaces/plant/$rules", rule, o12=JSON))
            assert answer.code == 0x41  # 2.01
        finally:
            for raw in (anonymous, c, d):
                raw.close()
        assert plant.rules.get("intake").principal == ("d" if beyond else "c")
        plant.write(("stock", 1))
        plant.write(("order", "a", 4))
        wait_until(lambda: plant.rules.get("intake").fired == 1)
        assert farm.get("given") == (4 if "call" in acts else 0)
        if "create" in acts:
            assert plant.record("orders/a").get("qty") == 4
        else:
            with pytest.raises(ts.RecordNotFound):
                plant.record("orders/a")
        assert node.statistics()["refused_permission"] == (3 if beyond else 0)


def test_what_a_rule_does_needs_what_doing_it_directly_needs() -> None:
    direct = {
        "take": (FETCH, "spaces/jobs", "op=take"),
        "call_record": (POST, "spaces/home/kitchen/bump", "op=call"),
        "create_record": (POST, "spaces/home/pantry", None),
        "refresh_record": (POST, "spaces/home/kitchen", "op=refresh"),
    }
    assert {operation for _, operation in rule_acts(ACTS)} == set(direct) == set(RULE_LEVELS)
    for operation, (code, path, query) in direct.items():
        request = Message(CON, code, 1, b"t")
        for segment in path.split("/"):
            request.add(URI_PATH, segment)
        if query is not None:
            request.add(URI_QUERY, query)
        assert needed(request) == RULE_LEVELS[operation], operation


def test_an_oscore_observation_registers_again_with_a_fresh_request(tmp_path: Path) -> None:
    network = LossyNetwork(11)
    keys = _keys(tmp_path / "a.json", _entry("b", "0a", "0b"))
    # Notifications fresh for 3 s (longer than the node takes to give one up, 1.1 s here):
    # then the peer that heard none registers again.
    with ts.Node("coap://127.0.0.1:0/", keys=keys, network=network, max_age=3, **NODE_FAST) as a:
        kitchen = a.space("home").create("kitchen", {"temp": 20})
        with _peer_of(a, tmp_path, "0b", network=network, **FAST) as b:
            seen: queue.Queue[Any] = queue.Queue()
            upcall = b.record(kitchen.address).on_change(seen.put, tag="temp")
            kitchen.set("temp", 21)
            assert seen.get(timeout=PATIENCE) == 21
            network.drop = lambda source, data: source[1] == a.port  # its notifications are lost
            kitchen.set("temp", 22)
            wait_until(lambda: a.statistics()["observations"] == 0, "the node to give the observation up")
            network.drop = lambda source, data: False
            states = [seen.get(timeout=PATIENCE)]
            while states[-1] != 22:  # registered again, sealed anew: its answer is the state now
                states.append(seen.get(timeout=PATIENCE))
            assert set(states) <= {21, 22}
            kitchen.set("temp", 23)
            assert seen.get(timeout=PATIENCE) == 23
            upcall.cancel()
        assert a.statistics()["refused_oscore"] == 0


def test_capability_addresses_work_from_any_peer(tmp_path: Path) -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="none") as node:
        kitchen = node.space("home").create("kitchen", {"temp": 21.5})
        cap = kitchen.capability({"read", "set"})
        with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as other:
            remote = other.record(cap.address)
            assert remote.get("temp") == 21.5
            remote.set("temp", 3.0)
            with pytest.raises(ts.Unauthorized):
                other.record(kitchen.address).get("temp")
        assert kitchen.get("temp") == 3.0


def test_a_replayed_forged_or_unknown_request_has_no_effect(secured: tuple[ts.Node, Path]) -> None:
    node, _ = secured
    jobs = node.space("jobs")
    b = Raw(node.port, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a"))
    stranger = Raw(node.port, Context(SECRET, sender_id=b"\x0e", recipient_id=b"\x0a"))
    try:
        message = _write(b, (1,))
        assert b.exchange(message).code == 68  # 2.04 outside; 2.01 inside
        assert b.exchange(message).code == 68  # a repeat of the message layer: the same answer
        replayed = b.exchange(b.again(message))
        assert (replayed.code, replayed.payload) == (UNAUTHORIZED, b"Replay detected")
        assert replayed.get(OSCORE) is None  # an error of OSCORE itself is not protected
        forged = b.again(_write(b, (2,)))
        forged.payload = forged.payload[:-1] + bytes((forged.payload[-1] ^ 1,))
        assert b.exchange(forged).code == BAD_REQUEST
        unknown = stranger.exchange(_write(stranger, (3,)))
        assert (unknown.code, unknown.payload) == (UNAUTHORIZED, b"Security context not found")
        # the forged request's sequence number was not taken: the true one is accepted
        assert b.exchange(b.again(_write(b, (4,)))).code == 68
    finally:
        b.close()
        stranger.close()
    assert jobs.count((int,)) == 2
    assert jobs.try_read((2,)) is None
    assert jobs.try_read((3,)) is None
    assert node.statistics()["refused_oscore"] >= 3


def test_the_replay_window_survives_a_restart(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "a.json", _entry("b", "0a", "0b"))
    raw = Raw(0, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a"))
    try:
        with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys) as node:
            node.space("jobs")
            raw.peer = ("127.0.0.1", node.port)
            first = _write(raw, (1,))
            assert raw.exchange(first).code == 68
            port = node.port
        # A clean stop writes the exact numbers (answers reuse the request's nonce: the
        # node sent none of its own).
        assert json.loads((tmp_path / "a.json.state").read_text()) == {"b": {"sender": 0, "recipient": 0}}
        with ts.Node(f"coap://127.0.0.1:{port}/", timeout=PATIENCE, keys=keys) as node:
            jobs = node.space("jobs")
            assert raw.exchange(raw.again(first)).code == UNAUTHORIZED  # replayed after the restart
            assert raw.exchange(_write(raw, (2,))).code == 68
            assert jobs.count((int,)) == 1
    finally:
        raw.close()


def test_an_unclean_stop_reuses_no_sequence_number_and_accepts_no_replay(tmp_path: Path) -> None:
    from tuplespace._federation._peers import REPLAY_STEP, SEQUENCE_STEP, Guard, load_peers

    keys = _keys(tmp_path / "a.json", _entry("b", "0a", "0b"))
    peers, state = load_peers(keys)
    guard = Guard(peers, state, anonymous=0, rate=None, burst=1, max_hosts=1)
    used = {peers[0].context.next_sequence() for _ in range(3)}
    b = Raw(0, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a"))
    b.sock.close()
    requests = [_write(b, (n,)) for n in range(3)]
    for request in requests[:2]:
        refusal, inner, _ = guard.admit(request, ("127.0.0.1", 1))
        assert refusal is None
        assert inner.path == ("spaces", "jobs")
    (again,), _ = load_peers(keys)  # as after a crash: nothing more written
    guard.close()
    assert again.context.sequence == SEQUENCE_STEP
    assert again.context.next_sequence() not in used
    restarted = Guard([again], None, anonymous=0, rate=None, burst=1, max_hosts=1)
    for request in requests:  # replayed, or (the third) numbered within what was written ahead
        refusal, _, _ = restarted.admit(request, ("127.0.0.1", 1))
        assert refusal is not None
        assert refusal.payload == b"Replay detected"
    later = Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a", sequence=2 * REPLAY_STEP + 1)
    b.context = later
    assert restarted.admit(_write(b, (4,)), ("127.0.0.1", 1))[0] is None


def test_the_keys_file_is_checked(tmp_path: Path) -> None:
    cases = [
        ("[]", "an object with a list 'peers'"),
        ('{"peers": [{"name": "b"}]}', "needs master_secret, sender_id and recipient_id"),
        ('{"peers": [{"name": "b", "master_secret": "zz", "sender_id": "", "recipient_id": "01"}]}', "hex"),
        (json.dumps({"peers": [_entry("b", "0a", "0b", permissions="root")]}), "permissions is one of"),
        (json.dumps({"peers": [_entry("b", "0a", "0a")]}), "IDs of a context differ"),
        (json.dumps({"peers": [_entry("b", "0a", "0b"), _entry("c", "0a", "0b")]}), "two peers"),
        (json.dumps({"peers": [_entry("b", "0a", "0b", uri="http://x/")]}), "coap:// base URI"),
        (
            json.dumps(
                {
                    "peers": [
                        _entry("b", "0a", "0b", uri="coap://127.0.0.1/"),
                        _entry("c", "0a", "0c", uri="coap://127.0.0.1:5683/"),
                    ]
                }
            ),
            "two peers of the keys file are at",
        ),
    ]
    for text, message in cases:
        (tmp_path / "k.json").write_text(text)
        with pytest.raises(ts.InvalidValue, match=message):
            ts.Node("coap://127.0.0.1:0/", keys=tmp_path / "k.json")


def test_aiocoap_oscore_client_interoperates(secured: tuple[ts.Node, Path]) -> None:
    node, folder = secured
    kitchen = node.space("home").create("kitchen", {"temp": 21.5})
    node.space("jobs")
    _aiocoap_context(folder / "b-context", sender="0b", recipient="0a", salt="")
    runner = LoopThread("aiocoap-oscore")
    context = runner.call(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]), PATIENCE)
    context.client_credentials.load_from_dict(
        {f"{node.base_uri}*": {"oscore": {"basedir": str(folder / "b-context")}}}
    )

    def request(code: Code, path: str, payload: bytes = b"", **options: Any) -> aiocoap.Message:
        message = aiocoap.Message(code=code, uri=node.base_uri + path, payload=payload, **options)
        response: aiocoap.Message = runner.call(context.request(message).response, PATIENCE)
        return response

    try:
        got = request(Code.GET, "spaces/home/kitchen/temp", accept=50)
        assert (got.code, got.payload) == (Code.CONTENT, b'{"$float":"21.5"}')
        put = request(Code.PUT, "spaces/home/kitchen/temp", encode_cbor(30.0), content_format=60)
        assert put.code == Code.CHANGED  # anonymous peers may only read: this one is "b"
        template = encode_template((int,))
        request(Code.POST, "spaces/jobs", encode_cbor((7,)), content_format=60)
        taken = request(
            Code.FETCH, "spaces/jobs", template, content_format=50, uri_query=["op=take", "timeout=0"]
        )
        assert taken.payload == encode_cbor((7,))
        # Observe: each notification protected with a partial IV of the node's own
        observing = aiocoap.Message(code=Code.GET, uri=node.base_uri + "spaces/home/kitchen/temp", observe=0)

        async def observe() -> tuple[Any, aiocoap.Message, Any]:
            pending = context.request(observing)
            first = await pending.response
            return pending.observation, first, pending.observation.__aiter__()

        async def following(notifications: Any) -> aiocoap.Message:
            notification: aiocoap.Message = await notifications.__anext__()
            return notification

        observation, first, notifications = runner.call(observe(), PATIENCE)
        assert first.payload == encode_cbor(30.0)
        kitchen.set("temp", 31.0)
        assert runner.call(following(notifications), PATIENCE).payload == encode_cbor(31.0)
        observation.cancel()
    finally:
        runner.stop(context.shutdown)
    assert kitchen.get("temp") == 31.0
    assert node.statistics()["refused_oscore"] == 0


def test_rate_limits_per_peer_answer_429_with_max_age() -> None:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, rate=0.001, burst=2) as node:
        node.space("home").create("kitchen", {"temp": 21.5})
        one, two = Raw(node.port), Raw(node.port, host="127.0.0.2")
        try:
            codes = [one.exchange(one.make(GET, "spaces/home/kitchen/temp")[0]).code for _ in range(2)]
            assert codes == [69, 69]
            refused = one.exchange(one.make(GET, "spaces/home/kitchen/temp")[0])
            assert refused.code == TOO_MANY
            assert _error(refused)["code"] == "rate_limited"
            assert refused.number(MAX_AGE) == 1000  # seconds until its next request may come
            # another host has a bucket of its own
            assert two.exchange(two.make(GET, "spaces/home/kitchen/temp")[0]).code == 69
        finally:
            one.close()
            two.close()
        assert node.statistics()["refused_rate"] == 1


def _subscribe(raw: Raw) -> Message:
    """A subscription of ``raw`` to every event of the space ``jobs``: the node's answer."""
    message, _ = raw.make(FETCH, "spaces/jobs", b'{"$any":true}', o6=0, o12=50, o15="op=subscribe")
    return raw.exchange(message)


def test_subscriptions_are_bounded_per_host_whatever_its_ports_and_per_node() -> None:
    with ts.Node("coap://127.0.0.1:0/", max_subscriptions=2, max_node_subscriptions=3, **NODE_FAST) as node:
        node.space("jobs")
        ports = [Raw(node.port) for _ in range(3)]  # one host, three ports
        other, third = Raw(node.port, host="127.0.0.2"), Raw(node.port, host="127.0.0.3")
        try:
            assert [_subscribe(raw).code for raw in ports[:2]] == [69, 69]
            refused = _subscribe(ports[2])
            assert refused.code == TOO_MANY
            assert (_error(refused)["limit"], _error(refused)["maximum"]) == ("subscriptions", 2)
            assert _subscribe(other).code == 69  # another host has its own
            refused = _subscribe(third)
            assert refused.code == TOO_MANY
            assert (_error(refused)["limit"], _error(refused)["maximum"]) == ("node_subscriptions", 3)
            assert node.statistics()["subscriptions"] == 3
        finally:
            for raw in (*ports, other, third):
                raw.close()


def test_values_nested_past_any_depth_are_refused_clearly() -> None:
    with ts.Node("coap://127.0.0.1:0/", **NODE_FAST) as node:
        node.space("jobs")
        raw = Raw(node.port)
        try:
            nested = {
                "arrays": b"\x81" * 20_000 + b"\x01",
                "maps": b"\xa1\x61a" * 20_000 + b"\x01",
                "tags": b"\xd8\x20" * 20_000 + b"\x61a",
            }
            for name, payload in nested.items():
                for request in (
                    raw.make(POST, "spaces/jobs", payload, o12=60)[0],
                    raw.make(FETCH, "spaces/jobs", payload, o12=60, o15="op=read")[0],
                ):
                    answer = raw.exchange(request)
                    assert answer.code in (128, 141), (name, answer)  # 4.00 or 4.13
                    assert _error(answer)["code"] in ("wire_error", "value_too_large"), name
        finally:
            raw.close()
        assert node.space("jobs").count((ts.ANY,)) == 0


def test_a_subscription_with_a_present_of_huge_numbers_is_refused_clearly() -> None:
    with ts.Node("coap://127.0.0.1:0/", **NODE_FAST) as node:
        node.space("jobs")
        raw = Raw(node.port)
        try:
            message, _ = raw.make(FETCH, "spaces/jobs", b'{"$any":true}', o6=0, o12=50)
            for query in ("op=subscribe", "since=0", f"present={'9' * 5000},1"):
                message.add(URI_QUERY, query)
            answer = raw.exchange(message)
            assert answer.code == 128  # 4.00
            assert _error(answer)["field"] == "present"
        finally:
            raw.close()


def test_observations_are_bounded_per_host_whatever_its_ports() -> None:
    with ts.Node("coap://127.0.0.1:0/", max_host_observations=2, **NODE_FAST) as node:
        node.space("home").create("kitchen", {"temp": 21.5})
        ports = [Raw(node.port) for _ in range(3)]  # one host, three ports
        other = Raw(node.port, host="127.0.0.2")
        try:
            answers = [raw.exchange(raw.make(GET, "spaces/home/kitchen", o6=0)[0]) for raw in (*ports, other)]
            assert [a.code for a in answers] == [69] * 4  # each answered
            assert [a.get(OBSERVE) is not None for a in answers] == [True, True, False, True]
            assert node.statistics()["observations"] == 3
        finally:
            for raw in (*ports, other):
                raw.close()


def test_the_table_of_rates_is_bounded() -> None:
    clock = [0.0]
    limiter = RateLimiter(1.0, 1, max_clients=2, clock=lambda: clock[0])
    for host in ("a", "b", "c"):
        assert limiter.take(host) == 0.0
    assert limiter.statistics() == {"clients": 2}
    assert limiter.take("c") == 1.0  # the latest are kept; "a" was dropped and starts full
    assert limiter.take("a") == 0.0
    clock[0] = 0.5
    assert limiter.take("a") == 0.5


# -- fuzzing ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ts.Node, Raw, Message]]:
    """A node that lets only the peer ``0b`` in; the peer's socket, and a protected
    write of the tuple (1,) that took effect (replayed by the fuzzer)."""
    folder = tmp_path_factory.mktemp("fuzz")
    keys = _keys(folder / "a.json", _entry("b", "0a", "0b"))
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="none") as node:
        node.space("jobs")
        node.space("home").create("kitchen", {"temp": 21.5})
        raw = Raw(node.port, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a"))
        first = _write(raw, (1,))
        assert raw.exchange(first).code == 68
        yield node, raw, first
        raw.close()


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 80)),
    # Past the header and the token: OSCORE protects neither (nor the outer code), so a
    # request with another message id or token is a request still.
    st.tuples(st.just("flip"), st.integers(0, 80), st.integers(1, 255)),
    st.tuples(st.just("garbage"), st.binary(max_size=80)),
    st.tuples(st.just("replay"), st.just(0)),
    st.tuples(st.just("unprotected"), st.sampled_from(["spaces/jobs", "spaces/home/kitchen/temp"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations)
def test_fuzzed_datagrams_change_nothing(
    target: tuple[ts.Node, Raw, Message], mutation: tuple[Any, ...]
) -> None:
    node, raw, first = target
    jobs, kitchen = node.space("jobs"), node.space("home").record("kitchen")
    before = (jobs.count((int,)), kitchen.get("$version"), kitchen.all())
    kind = mutation[0]
    if kind == "replay":
        datagram = raw.again(first).encode()
    elif kind == "unprotected":
        plain = Raw(node.port)
        code = POST if mutation[1] == "spaces/jobs" else PUT
        datagram = plain.make(code, mutation[1], encode_cbor((1,)))[0].encode()
        plain.close()
    else:
        good = _write(raw, (1,)).encode()
        if kind == "truncate":
            datagram = good[: mutation[1] % len(good)]
        elif kind == "flip":
            i = 4 + len(first.token) + mutation[1] % (len(good) - 4 - len(first.token))
            datagram = good[:i] + bytes((good[i] ^ mutation[2],)) + good[i + 1 :]
        else:
            datagram = mutation[1]
    raw.sock.sendto(datagram, raw.peer)
    # A probe after it: once it is answered the node has handled the datagram before it.
    probe, partial_iv = raw.make(FETCH, "spaces/jobs", encode_template((int,)), o12=50, o15="op=count")
    answer = raw.opened(probe, partial_iv)
    assert answer.payload == encode_cbor(before[0])
    assert (jobs.count((int,)), kitchen.get("$version"), kitchen.all()) == before


def test_an_answer_of_several_blocks_to_a_thread_request_arrives_whole() -> None:
    """The first block comes to the thread's socket, the others to the node's: both
    are answered (blocks kept by host and token), as OSCORE's are."""
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as node:
        node.space("jobs").write(("x" * 3000,))
        jobs = ts.connect(node.base_uri + "spaces/jobs")
        try:
            assert jobs.read((str,), timeout=0) == ("x" * 3000,)
        finally:
            jobs.close()


def test_a_state_file_that_cannot_be_written_refuses_protected_requests(tmp_path: Path) -> None:
    keys = {"state": "gone/a.state", "peers": [_entry("b", "0a", "0b")]}  # a folder that is not there
    (tmp_path / "a.json").write_text(json.dumps(keys))
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=tmp_path / "a.json") as node:
        jobs = node.space("jobs")
        raw = Raw(node.port, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a"))
        try:
            answer = raw.exchange(_write(raw, (1,)))
        finally:
            raw.close()
        assert (answer.code, answer.payload) == (163, b"the OSCORE state cannot be written")
        assert jobs.count((int,)) == 0


def test_the_options_of_a_space_are_set_over_coap_by_a_peer_allowed_all(tmp_path: Path) -> None:
    keys = _keys(
        tmp_path / "a.json",
        _entry("c", "0a", "0c", permissions="read+write"),
        _entry("d", "0a", "0d", permissions="all"),
    )
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="read+write") as node:
        home = node.space("home")
        body = b'{"firing_charge":"0.5","method_steps":700}'
        c = Raw(node.port, Context(SECRET, sender_id=b"\x0c", recipient_id=b"\x0a"))
        d = Raw(node.port, Context(SECRET, sender_id=b"\x0d", recipient_id=b"\x0a"))
        try:
            answer = c.opened(*c.make(PUT, "spaces/home", body, o12=JSON, o15=b"options"))
            assert answer.code == FORBIDDEN
            assert _error(answer)["message"] == "the peer 'c' may do read+write"
            with (
                ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as remote,
                pytest.raises(ts.Unauthorized),
            ):
                remote.set_options({"firing_charge": "0.5"})
            assert (home.firing_charge, home.rules.limits) == (0, ts.ActiveLimits())
            answer = d.opened(*d.make(PUT, "spaces/home", body, o12=JSON, o15=b"options"))
            assert answer.code == 0x44  # 2.04
        finally:
            c.close()
            d.close()
        assert ts.decode_cbor(answer.payload)["firing_charge"] == home.firing_charge == ts.Credit("0.5")
        assert home.rules.limits == ts.ActiveLimits(method_steps=700)


def test_a_space_s_clock_is_moved_over_coap_only_by_a_peer_allowed_all(tmp_path: Path) -> None:
    keys = _keys(
        tmp_path / "a.json",
        _entry("c", "0a", "0c", permissions="read+write"),
        _entry("d", "0a", "0d", permissions="all"),
    )
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="read+write") as node:
        clock = ts.SimulatedClock()
        node.space("home", clock=clock)
        start = clock.now()
        body = encode_cbor({"advance": 60})
        c = Raw(node.port, Context(SECRET, sender_id=b"\x0c", recipient_id=b"\x0a"))
        d = Raw(node.port, Context(SECRET, sender_id=b"\x0d", recipient_id=b"\x0a"))
        try:
            read = c.opened(*c.make(GET, "spaces/home", o15=b"clock"))
            assert ts.decode_cbor(read.payload) == {"now": start, "simulated": True}
            answer = c.opened(*c.make(POST, "spaces/home", body, o12=CBOR, o15=b"op=advance"))
            assert answer.code == FORBIDDEN
            assert _error(answer)["message"] == "the peer 'c' may do read+write"
            with ts.connect(node.base_uri + "spaces/home", timeout=PATIENCE) as remote:
                assert remote.clock.now() == start
                with pytest.raises(ts.Unauthorized):
                    remote.clock.advance(60)
            assert clock.now() == start
            answer = d.opened(*d.make(POST, "spaces/home", body, o12=CBOR, o15=b"op=advance"))
            assert answer.code == 0x44  # 2.04
        finally:
            c.close()
            d.close()
        assert ts.decode_cbor(answer.payload) == {"now": clock.now()}
        assert clock.now() == start + 60


# -- what a node holds for a peer belongs to it ---------------------------------------------

CREATED, CHANGED, NOT_FOUND, CONFLICT = 65, 68, 132, 137


def _ask(raw: Raw, code: int, payload: bytes, query: list[str]) -> Message:
    """The answer (opened, if protected) of ``code`` on the space ``jobs`` with ``query``;
    a FETCH's payload is a template in JSON, a POST's a value in CBOR."""
    given = JSON if code == FETCH else CBOR
    message, partial_iv = raw.make(code, "spaces/jobs", payload, o12=given, o15=query)
    return raw.exchange(message) if raw.context is None else raw.opened(message, partial_iv)


def _used_in(tx: str) -> list[tuple[int, bytes, list[str]]]:
    """Every use of the transaction ``tx``: writes, reads, takes, renew, abort, commit."""
    template = encode_template((int,))
    return [
        (POST, encode_cbor((3,)), [f"tx={tx}"]),
        (POST, encode_cbor([(3,)]), ["op=write_many", f"tx={tx}"]),
        (FETCH, template, ["op=read", "timeout=0", f"tx={tx}"]),
        (FETCH, template, ["op=take", "timeout=0", f"tx={tx}"]),
        (FETCH, template, ["op=count", f"tx={tx}"]),
        (FETCH, template, ["op=take_all", f"tx={tx}"]),
        (POST, b"", ["op=renew", "lease=600", f"tx={tx}"]),
        (POST, b"", ["op=abort", f"tx={tx}"]),
        (POST, b"", ["op=commit", f"tx={tx}"]),
    ]


def _no_transaction(tx: str) -> dict[str, str | None]:
    """The error body of a transaction id never given (the HTTP API's)."""
    return {"code": "unknown_transaction", "message": f"no transaction {tx} in space 'jobs'", "field": None}


def _unknown(raw: Raw, uses: list[tuple[int, bytes, list[str]]], error: dict[str, str | None]) -> None:
    """Each of ``uses`` sent by ``raw`` is answered 4.04 with ``error``, as an id never given."""
    for code, payload, query in uses:
        answer = _ask(raw, code, payload, query)
        assert (answer.code, _error(answer)) == (NOT_FOUND, error), query


@pytest.fixture
def owned(tmp_path: Path) -> Iterator[tuple[ts.Node, dict[str, Raw]]]:
    """A node knowing the OSCORE peers ``b`` and ``c`` (read+write), letting anonymous
    peers read and write; with clients: ``b``, ``c``, ``anonymous`` (on ``b``'s host),
    ``same_host`` (another port of that host) and ``elsewhere`` (another host)."""
    keys = _keys(tmp_path / "a.json", _entry("b", "0a", "0b"), _entry("c", "0a", "0c"))
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="read+write") as node:
        raws = {
            "b": Raw(node.port, Context(SECRET, sender_id=b"\x0b", recipient_id=b"\x0a")),
            "c": Raw(node.port, Context(SECRET, sender_id=b"\x0c", recipient_id=b"\x0a")),
            "anonymous": Raw(node.port),
            "same_host": Raw(node.port),
            "elsewhere": Raw(node.port, host="127.0.0.2"),
        }
        try:
            yield node, raws
        finally:
            for raw in raws.values():
                raw.close()


def test_a_transaction_over_coap_is_used_only_by_the_oscore_peer_that_began_it(
    owned: tuple[ts.Node, dict[str, Raw]],
) -> None:
    node, raws = owned
    jobs = node.space("jobs")
    jobs.write((2,))
    b = raws["b"]
    begun = _ask(b, POST, b"", ["op=begin"])
    assert begun.code == CREATED
    tx = ts.decode_cbor(begun.payload)[0]
    assert _ask(b, POST, encode_cbor((1,)), [f"tx={tx}"]).code == CHANGED
    taken = _ask(b, FETCH, encode_template((2,)), ["op=take", "timeout=0", f"tx={tx}"])
    assert ts.decode_cbor(taken.payload) == (2,)
    unknown = _no_transaction(tx)
    for other in ("c", "anonymous", "elsewhere"):  # another key; anonymous, from b's host too
        _unknown(raws[other], _used_in(tx), unknown)
    assert (jobs.count((int,)), node.statistics()["held_transactions"]) == (0, 1)
    assert _ask(b, POST, b"", ["op=commit", f"tx={tx}"]).code == CHANGED
    assert (jobs.count((1,)), jobs.count((2,)), jobs.count((3,))) == (1, 0, 0)  # exactly b's
    again = _ask(b, POST, b"", ["op=commit", f"tx={tx}"])
    assert (again.code, _error(again)["code"]) == (CONFLICT, "transaction_ended")  # to b
    _unknown(raws["c"], _used_in(tx)[-1:], unknown)  # how it ended is b's to know


def test_an_anonymous_peer_s_transaction_is_its_host_s_whatever_its_port(
    owned: tuple[ts.Node, dict[str, Raw]],
) -> None:
    node, raws = owned
    jobs = node.space("jobs")
    anonymous, same_host = raws["anonymous"], raws["same_host"]
    tx = ts.decode_cbor(_ask(anonymous, POST, b"", ["op=begin"]).payload)[0]
    write = anonymous.make(POST, "spaces/jobs", encode_cbor((1,)), o12=CBOR, o15=[f"tx={tx}"])[0]
    assert anonymous.exchange(write).code == CHANGED
    assert anonymous.exchange(write).code == CHANGED  # a retransmission: written once
    unknown = _no_transaction(tx)
    for other in ("b", "elsewhere"):  # an OSCORE peer of the same host; another host
        _unknown(raws[other], _used_in(tx), unknown)
    assert _ask(same_host, POST, encode_cbor((4,)), [f"tx={tx}"]).code == CHANGED  # the client's new port
    assert _ask(same_host, POST, b"", ["op=commit", f"tx={tx}"]).code == CHANGED
    assert (jobs.count((1,)), jobs.count((3,)), jobs.count((4,))) == (1, 0, 1)


def test_a_claim_over_coap_is_confirmed_only_by_its_taker(owned: tuple[ts.Node, dict[str, Raw]]) -> None:
    node, raws = owned
    jobs = node.space("jobs")
    for taker in ("b", "anonymous"):
        jobs.write((5,))
        answer = _ask(raws[taker], FETCH, encode_template((5,)), ["op=take", "timeout=0", "claim=1"])
        claimed = ts.decode_cbor(answer.payload)
        assert claimed["tuple"] == (5,)
        confirm = [(POST, b"", ["op=confirm", f"claim={claimed['claim']}"])]
        unknown = {
            "code": "unknown_claim",
            "message": f"no claim {claimed['claim']} (it ran out or was released: what it took went back)",
            "field": None,
        }
        for other in {"b": ("c", "anonymous", "elsewhere"), "anonymous": ("b", "elsewhere")}[taker]:
            _unknown(raws[other], confirm, unknown)
        assert node.statistics()["held_claims"] == 1  # still the taker's, unconfirmed
        assert _ask(raws[taker], *confirm[0]).code == CHANGED
        assert _ask(raws[taker], *confirm[0]).code == CHANGED  # confirmed already: told so, to its taker
        _unknown(raws["elsewhere"], confirm, unknown)
        assert (node.statistics()["held_claims"], jobs.count((5,))) == (0, 0)


def test_a_session_over_coap_is_closed_only_by_its_client(owned: tuple[ts.Node, dict[str, Raw]]) -> None:
    node, raws = owned
    jobs = node.space("jobs")
    b = raws["b"]
    query = ["op=take", "session=b-session-1"]
    waiting, partial_iv = b.make(FETCH, "spaces/jobs", encode_template((6,)), o12=JSON, o15=query)
    b.sock.sendto(waiting.encode(), b.peer)
    wait_until(lambda: node.statistics()["session_calls"] == 1)
    for other in ("c", "anonymous", "elsewhere"):  # another key; anonymous, from b's host too
        closed = _ask(raws[other], POST, b"", ["op=close", "session=b-session-1"])
        assert closed.code == CHANGED  # their own session of that id, which held nothing
    assert node.statistics()["session_calls"] == 1
    jobs.write((6,))
    answer = b.context.unprotect_response(b.answer(waiting.token), partial_iv)  # type: ignore[union-attr]
    assert ts.decode_cbor(answer.payload) == (6,)
    assert _ask(b, POST, b"", ["op=close", "session=b-session-1"]).code == CHANGED
    late = _ask(b, FETCH, encode_template((6,)), query)
    assert (late.code, _error(late)["code"]) == (BAD_REQUEST, "bad_request")  # b's own close holds


# -- a space over CoAP whose client is an OSCORE peer (ts.connect("coap://…", keys=…)) ---


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[ts.Node, Path]]:
    """A node that serves no anonymous peer and knows the peers ``0b`` (``worker``,
    read+write) and ``0c`` (``reader``, read); with the folder of its keys."""
    keys = _keys(
        tmp_path / "node.json",
        _entry("worker", "0a", "0b"),
        _entry("reader", "0a", "0c", permissions="read"),
    )
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="none") as node:
        yield node, tmp_path


def _client_keys(node: ts.Node, folder: Path, sender: str, **more: Any) -> Path:
    """The keys file of a client whose ID is ``sender``: the node is its peer ``node``."""
    return _keys(folder / f"client-{sender}.json", _entry("node", sender, "0a", uri=node.base_uri, **more))


def test_a_client_with_keys_is_an_oscore_peer_of_the_node(guarded: tuple[ts.Node, Path]) -> None:
    node, folder = guarded
    served = node.space("jobs")
    kitchen = node.space("jobs").create("kitchen", {"temp": 21.5})
    url = node.base_uri + "spaces/jobs"
    with ts.connect(url, timeout=PATIENCE) as anonymous, pytest.raises(ts.Unauthorized):
        anonymous.write(("job", 0))
    refused = node.statistics()["refused_permission"]  # the write, and the end of its session
    with ts.connect(url, keys=_client_keys(node, folder, "0b"), timeout=PATIENCE) as jobs:
        sub = jobs.subscribe(("job", int))
        jobs.write(("job", 1))
        assert served.count(("job", int)) == 1
        assert next(sub).tuple == ("job", 1)
        assert jobs.take(("job", int), timeout=PATIENCE) == ("job", 1)  # and its claim confirmed
        assert served.count(("job", int)) == 0
        taken = next(sub)
        assert (taken.kind, taken.tuple) == ("take", ("job", 1))
        with jobs.transaction() as tx:
            tx.write(("job", 2))
            assert tx.take(("job", 2)) == ("job", 2)
            tx.write(("job", 3))
        assert served.read_all(("job", int)) == [("job", 3)]
        jobs.rules.add("done", template=("job", int), write=[("done", "t[1]")])
        jobs.write(("job", 4))
        assert served.read(("done", 4), timeout=PATIENCE) == ("done", 4)
        remote = jobs.record("kitchen")  # a record handle of the space: its requests protected too
        assert remote.get("temp") == 21.5
        assert remote.set("temp", 22.0) == 2
        seen: queue.Queue[Any] = queue.Queue()
        upcall = remote.on_change(seen.put, tag="temp")
        changes = jobs.watch_records()
        kitchen.set("temp", 23.0)
        assert seen.get(timeout=PATIENCE) == 23.0
        assert next(changes).kind == "update"
        upcall.cancel()
        changes.close()
        big = "x" * 3000  # block by block, both ways
        jobs.write(("big", big))
        assert jobs.read(("big", str), timeout=0) == ("big", big)
        assert jobs.read_options()["order"] == served.order
        assert jobs.clock.now() > 0
        sub.close()
    assert kitchen.get("temp") == 23.0
    assert node.statistics()["refused_oscore"] == 0
    assert node.statistics()["refused_permission"] == refused


def test_a_client_allowed_read_only_is_forbidden_to_write(guarded: tuple[ts.Node, Path]) -> None:
    node, folder = guarded
    served = node.space("jobs")
    served.write(("job", 1))
    keys = _client_keys(node, folder, "0c")
    with ts.connect(node.base_uri + "spaces/jobs", keys=keys, timeout=PATIENCE) as jobs:
        assert jobs.read(("job", int), timeout=0) == ("job", 1)
        with pytest.raises(ts.Forbidden, match="the peer 'reader' may do read"):
            jobs.write(("job", 2))
        with pytest.raises(ts.Forbidden, match="the peer 'reader' may do read"):
            jobs.take(("job", int), timeout=0)
    assert served.read_all(("job", int)) == [("job", 1)]
    assert node.statistics()["refused_permission"] == 2


@pytest.mark.parametrize(
    ("sender", "secret", "diagnostic"),
    [
        ("0b", "ff" * 16, "Decryption failed"),  # a wrong master secret
        ("0e", SECRET.hex(), "Security context not found"),  # keys the node does not know
    ],
)
def test_a_client_whose_keys_the_node_does_not_know_gets_unauthorized(
    guarded: tuple[ts.Node, Path], sender: str, secret: str, diagnostic: str
) -> None:
    node, folder = guarded
    served = node.space("jobs")
    keys = _client_keys(node, folder, sender, master_secret=secret)
    with ts.connect(node.base_uri + "spaces/jobs", keys=keys, timeout=PATIENCE) as jobs:
        with pytest.raises(ts.Unauthorized, match=f"'node' \\(coap://.*\\) refused .*: {diagnostic}"):
            jobs.write(("job", 1))
        with pytest.raises(ts.Unauthorized, match=diagnostic):
            jobs.subscribe(("job", int))
    assert served.count(("job", int)) == 0
    assert node.statistics()["refused_oscore"] >= 2


def test_an_async_client_with_keys_is_an_oscore_peer_of_the_node(guarded: tuple[ts.Node, Path]) -> None:
    node, folder = guarded
    served = node.space("jobs")
    keys = _client_keys(node, folder, "0b")

    async def main() -> None:
        async with await ts.connect_async(node.base_uri + "spaces/jobs", keys=keys, timeout=PATIENCE) as jobs:
            sub = jobs.subscribe(("job", int))
            await sub
            await jobs.write(("job", 1))
            assert (await sub.get(timeout=PATIENCE)).tuple == ("job", 1)
            assert await jobs.take(("job", int), timeout=PATIENCE) == ("job", 1)
            async with jobs.transaction() as tx:
                await tx.write(("job", 2))
            await jobs.rules.add("done", template=("job", int), write=[("done", "t[1]")])
            await jobs.write(("job", 3))
            await sub.close()
        reader_keys = _client_keys(node, folder, "0c")
        async with await ts.connect_async(node.base_uri + "spaces/jobs", keys=reader_keys) as reader:
            with pytest.raises(ts.Forbidden, match="the peer 'reader' may do read"):
                await reader.write(("job", 4))

    asyncio.run(main())
    assert served.read(("done", 3), timeout=PATIENCE) == ("done", 3)
    assert sorted(served.read_all(("job", int))) == [("job", 2), ("job", 3)]
    assert node.statistics()["refused_oscore"] == 0


def test_a_client_pays_from_its_own_account(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "node.json", _entry("worker", "0a", "0b", permissions="all"))
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=keys, anonymous="none") as node:
        bank = node.space("bank", clock=ts.SimulatedClock(), charge_rate="1024", creation_charge="5")
        for principal in ("default", "worker"):
            bank.grant_credit(principal, 100)
        url = node.base_uri + "spaces/bank"
        with ts.connect(url, keys=_client_keys(node, tmp_path, "0b"), timeout=PATIENCE) as client:
            record = client.create("r", {"n": 1}, credit=10)
            assert record.get("n") == 1
            assert client.account("worker") == 85  # its own account: named without "all" too
            client.rules.add("paid", template=("job", int), write=[("done",)])
        assert bank.account("worker") == 85
        assert bank.account("default") == 100
        assert bank.rules.get("paid").principal == "worker"


def test_a_client_s_sequence_numbers_survive_its_restart(guarded: tuple[ts.Node, Path]) -> None:
    node, folder = guarded
    served = node.space("jobs")
    keys = _client_keys(node, folder, "0b")
    url = node.base_uri + "spaces/jobs"
    with ts.connect(url, keys=keys, timeout=PATIENCE) as first:
        for n in range(3):
            first.write(("job", n))
    # A clean close writes the exact number (three writes, the end of their session): the
    # next client resumes past the first's.
    assert json.loads((folder / "client-0b.json.state").read_text())["node"]["sender"] == 4
    with ts.connect(url, keys=keys, timeout=PATIENCE) as second:
        second.write(("job", 3))
        assert second.count(("job", int)) == 4
    # Without the state file a client would reuse the numbers the node accepted: refused.
    (folder / "client-0b.json.state").unlink()
    with (
        ts.connect(url, keys=keys, timeout=PATIENCE) as forgetful,
        pytest.raises(ts.Unauthorized, match="Replay detected"),
    ):
        forgetful.write(("job", 5))
    assert served.count(("job", int)) == 4


def test_a_closed_client_s_statistics_use_no_sequence_number_twice(guarded: tuple[ts.Node, Path]) -> None:
    node, folder = guarded
    served = node.space("jobs")
    keys = _client_keys(node, folder, "0b")
    url = node.base_uri + "spaces/jobs"
    first = ts.connect(url, keys=keys, timeout=PATIENCE)
    first.write(("job", 1))
    first.close()
    assert first.statistics()["closed"] is True  # asked protected, its numbers written down too
    with ts.connect(url, keys=keys, timeout=PATIENCE) as second:
        second.write(("job", 2))
    assert served.count(("job", int)) == 2
    assert node.statistics()["refused_oscore"] == 0


def test_a_number_used_after_a_clean_stop_is_reserved_first(tmp_path: Path) -> None:
    from tuplespace._federation._peers import SEQUENCE_STEP, Guard, load_peers

    keys = _keys(tmp_path / "a.json", _entry("b", "0a", "0b"))
    peers, state = load_peers(keys)
    guard = Guard(peers, state, anonymous=0, rate=None, burst=1, max_hosts=1)
    for _ in range(3):
        peers[0].context.next_sequence()
    guard.close()
    assert json.loads((tmp_path / "a.json.state").read_text())["b"]["sender"] == 3
    assert peers[0].context.next_sequence() == bytes((3,))  # used once written down ahead
    assert json.loads((tmp_path / "a.json.state").read_text())["b"]["sender"] == 3 + SEQUENCE_STEP


def test_a_client_s_subscription_registers_again_under_oscore(tmp_path: Path) -> None:
    network = LossyNetwork(3)
    keys = _keys(tmp_path / "node.json", _entry("worker", "0a", "0b"))
    # Fresh for 3 s: longer than the node takes to give up a notification (1.1 s here).
    with ts.Node(
        "coap://127.0.0.1:0/", keys=keys, anonymous="none", network=network, max_age=3, **NODE_FAST
    ) as node:
        jobs = node.space("jobs")
        client_keys = _client_keys(node, tmp_path, "0b")
        with ts.connect(
            node.base_uri + "spaces/jobs", keys=client_keys, timeout=PATIENCE, network=network, **FAST
        ) as space:
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
        assert node.statistics()["refused_oscore"] == 0


def test_an_answer_that_does_not_verify_is_an_error(tmp_path: Path) -> None:
    impostor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # answers in the node's place
    impostor.bind(("127.0.0.1", 0))
    impostor.settimeout(PATIENCE)
    port = impostor.getsockname()[1]
    keys = _keys(tmp_path / "client.json", _entry("node", "0b", "0a", uri=f"coap://127.0.0.1:{port}/"))
    answers = [
        Message(code=68, options=[(OSCORE, b"")], payload=bytes(20)),  # a tag that does not verify
        Message(code=69, options=[(CONTENT_FORMAT, bytes((CBOR,)))], payload=encode_cbor(1)),  # unprotected
    ]

    def answer() -> None:
        for forged in answers:
            data, client = impostor.recvfrom(65536)
            request = Message.decode(data)
            assert request.get(OSCORE) is not None  # the client's request is protected
            forged.mtype, forged.mid, forged.token = 2, request.mid, request.token  # ACK
            impostor.sendto(forged.encode(), client)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        with ts.connect(f"coap://127.0.0.1:{port}/spaces/jobs", keys=keys, timeout=PATIENCE) as jobs:
            with pytest.raises(ts.Unreachable, match="fails OSCORE: Decryption failed"):
                jobs.count((int,))
            with pytest.raises(ts.Unreachable, match="an unprotected answer to a protected request"):
                jobs.count((int,))
    finally:
        thread.join()
        impostor.close()


def test_a_client_s_keys_file_is_checked(guarded: tuple[ts.Node, Path]) -> None:
    node, folder = guarded
    url = node.base_uri + "spaces/jobs"
    bad = _keys(folder / "bad.json", _entry("node", "0b", "0a", master_secret="zz"))
    with pytest.raises(
        ts.InvalidValue, match=r"the keys file '.*bad.json': peers\[0\]\.master_secret is a hex"
    ):
        ts.connect(url, keys=bad)
    with pytest.raises(ts.InvalidValue, match=r"the keys file '.*missing.json' cannot be read"):
        ts.connect(url, keys=folder / "missing.json")
    elsewhere = _keys(folder / "elsewhere.json", _entry("other", "0b", "0a", uri="coap://127.0.0.1:9/"))
    with pytest.raises(ts.InvalidValue, match="has no peer whose uri is the node's base URI"):
        ts.connect(url, keys=elsewhere)

    async def main() -> None:
        with pytest.raises(ts.InvalidValue, match="has no peer whose uri is the node's base URI"):
            await ts.connect_async(url, keys=elsewhere)

    asyncio.run(main())
