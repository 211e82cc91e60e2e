"""Credit through a node's space over CoAP (docs/federation.md, "Credit over CoAP"): the
accounts of ``ts.connect("coap://…")`` with the node's permissions, records paid by
an account, minting by proof of work from an anonymous peer, and bad requests refused
clearly; against real nodes on 127.0.0.1 (tests/test_credit.py runs over the coap ways too)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest

import tuplespace as ts
from helpers import PATIENCE
from test_server import client, running
from tuplespace._federation._message import CONTENT_FORMAT, DELETE, GET, POST, URI_PATH, URI_QUERY, Message
from tuplespace._federation._resources import coap_code

RATE = "1024"  # 1 credit per second per byte: a record "r" {"n": 1} burns 3 credit/s


@pytest.fixture
def node() -> Iterator[ts.Node]:
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as n:
        yield n


def test_records_over_coap_are_paid_by_the_account_named(node: ts.Node) -> None:
    clock = ts.SimulatedClock()
    served = node.space("bank", clock=clock, charge_rate=RATE, creation_charge="5")
    with ts.connect(node.base_uri + "spaces/bank", timeout=PATIENCE) as bank:
        assert bank.grant_credit("alice", 100) == 100
        rec = bank.create("r", {"n": 1}, credit=30, principal="alice")
        assert (bank.account("alice"), bank.account("operator")) == (65, 5)
        assert rec.get("$lifetime") == 10.0
        clock.advance(9)
        rec.refresh(credit=12, principal="alice")
        assert (bank.account("alice"), rec.get("$credit"), rec.get("$lifetime")) == (53, 15, 5.0)
        copy = rec.clone("s", credit=30, principal="alice")
        assert (copy.get("$lifetime"), bank.account("alice")) == (10.0, 18)
        with pytest.raises(ts.InsufficientCredit) as info:
            bank.create("t", {"n": 1}, credit=30, principal="alice")
        assert (info.value.principal, info.value.needed, info.value.available) == ("alice", 35, 18)
        with pytest.raises(ts.InsufficientCredit):
            bank.create("t", {"n": 1}, credit=1)  # the space's default account has nothing
        assert bank.transfer_credit("alice", "default", 8) == 10
        bank.create("t", {"n": 1}, credit=1)
        assert bank.account("default") == 2
    assert (served.account("alice"), served.account("default")) == (10, 2)
    assert [str(r.address).rsplit("/", 1)[1] for r in served.find({"n": 1})] == ["r", "s", "t"]


def test_credit_over_coap_follows_the_nodes_permissions() -> None:
    options = {"mint_amount": "0.5", "mint_bits": 4}
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="none") as nobody:
        served = nobody.space("bank", **options)
        served.grant_credit("alice", 10)
        with ts.connect(nobody.base_uri + "spaces/bank", timeout=PATIENCE) as bank:
            c = bank.credit_challenge()  # anyone may mint by proof of work, into the default account
            assert (c.bits, c.amount) == (4, ts.Credit("0.5"))
            assert bank.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits)) == ts.Credit("0.5")
            with pytest.raises(ts.Unauthorized):
                bank.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits), principal="alice")
            with pytest.raises(ts.Unauthorized):
                bank.account("default")
        assert (served.account("default"), served.account("alice")) == (ts.Credit("0.5"), 10)
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="read") as reader:
        served = reader.space("bank", **options)
        served.grant_credit("default", 3)
        with ts.connect(reader.base_uri + "spaces/bank", timeout=PATIENCE) as bank:
            assert bank.account("default") == 3
            with pytest.raises(ts.Unauthorized):
                bank.account("alice")  # another account: for a peer allowed all
            with pytest.raises(ts.Unauthorized):
                bank.transfer_credit("default", "bob", 1)
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, anonymous="read+write") as writer:
        served = writer.space("bank", **options)
        served.grant_credit("default", 3)
        served.grant_credit("alice", 10)
        with ts.connect(writer.base_uri + "spaces/bank", timeout=PATIENCE) as bank:
            assert bank.transfer_credit("default", "bob", 1) == 2
            with pytest.raises(ts.Unauthorized):
                bank.transfer_credit("alice", "bob", 1)
            with pytest.raises(ts.Unauthorized):
                bank.grant_credit("default", 1)
        assert (served.account("default"), served.account("bob"), served.account("alice")) == (2, 1, 10)


def test_minting_over_coap_spends_each_stamp_once(node: ts.Node) -> None:
    served = node.space("bank", mint_amount="0.25", mint_bits=4)
    node.space("free")
    with ts.connect(node.base_uri + "spaces/bank", timeout=PATIENCE) as bank:
        c = bank.credit_challenge()
        stamp = ts.make_stamp(c.challenge, c.bits)
        assert bank.mint_credit(c.challenge, stamp, principal="alice") == ts.Credit("0.25")
        with pytest.raises(ts.InvalidValue, match="spent already"):
            bank.mint_credit(c.challenge, stamp, principal="alice")
        with pytest.raises(ts.InvalidValue) as info:
            bank.mint_credit("not-a-challenge", stamp)
        assert info.value.path == "challenge"
    assert served.account("alice") == ts.Credit("0.25")
    with ts.connect(node.base_uri + "spaces/free", timeout=PATIENCE) as free, pytest.raises(ts.Forbidden):
        free.credit_challenge()


def test_the_credit_resource_refuses_bad_requests_clearly(node: ts.Node) -> None:
    served = node.space("bank")
    served.grant_credit("default", 5)

    def send(code: int, path: tuple[str, ...], payload: bytes, *options: tuple[int, bytes]) -> Message:
        request = [*((URI_PATH, s.encode()) for s in ("spaces", *path)), *options]
        return node.endpoint.request_blocking(("127.0.0.1", node.port), code, request, payload, PATIENCE)

    def field(answer: Message) -> str:
        assert answer.code == 0x80  # 4.00
        found: str = orjson.loads(answer.payload)["error"]["field"]
        return found

    json = (CONTENT_FORMAT, b"\x32")
    transfer = ("bank", "$credit", "transfer")
    assert send(POST, transfer, b'{"to":"bob","amount":"1"}').code == 0x8F  # 4.15: a body is JSON
    assert field(send(POST, transfer, b'{"to":"bob","amount":"1","principal":"x"}', json)) == "principal"
    assert field(send(POST, transfer, b'{"to":"bob"}', json)) == "amount"
    assert field(send(POST, transfer, b'{"to":"","amount":"1"}', json)) == "to"
    assert field(send(POST, transfer, b'{"to":"bob","amount":"0"}', json)) == "amount"
    assert field(send(POST, transfer, b'{"to":"bob","amount":1.5}', json)) == "amount"
    assert field(
        send(POST, ("bank", "$credit", "grant"), b'{"amount":"1"}', json, (URI_QUERY, b"principal="))
    ) == ("principal")
    too_long = (URI_QUERY, b"principal=" + b"p" * 129)  # longer than any account's name
    assert field(send(GET, ("bank", "$credit"), b"", too_long)) == "principal"
    for carried in (b"carried=2", b"carried=1"):  # carried=1 goes with credit=, for a record moving here
        created = send(POST, ("bank", "r"), b"\xa0", (CONTENT_FORMAT, b"\x3c"), (URI_QUERY, carried))
        assert field(created) == "carried"
    with pytest.raises(ts.RecordNotFound):
        served.record("r")
    assert send(GET, transfer, b"").code == 0x85  # 4.05
    assert send(DELETE, ("bank", "$credit"), b"").code == 0x85
    assert send(GET, ("bank", "$credit", "nothing"), b"").code == 0x84  # 4.04
    assert send(GET, ("nowhere", "$credit"), b"").code == 0x84
    assert (served.account("default"), served.statistics()["accounts"]) == (5, 1)
    answer = send(POST, transfer, b'{"to":"bob","amount":"1"}', json)
    assert answer.code == 0x44  # 2.04
    assert orjson.loads(answer.payload) == {"principal": "default", "balance": {"$credit": "4"}}
    assert served.account("bob") == 1


def test_the_asyncio_face_has_the_credit_calls(node: ts.Node) -> None:
    served = node.space("bank", mint_amount="1", mint_bits=2)

    async def main() -> list[ts.Credit]:
        async with await ts.connect_async(node.base_uri + "spaces/bank", timeout=PATIENCE) as bank:
            c = await bank.credit_challenge()
            minted = await bank.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits))
            return [
                minted,
                await bank.grant_credit("alice", 2),
                await bank.transfer_credit("alice", "bob", 1),
            ]

    assert asyncio.run(main()) == [1, 2, 1]
    assert (served.account("default"), served.account("alice"), served.account("bob")) == (1, 1, 1)


# -- migration -------------------------------------------------------------------------------


@pytest.fixture
def two() -> Iterator[tuple[ts.Node, ts.Node]]:
    with (
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as a,
        ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as b,
    ):
        yield a, b


def test_a_record_moving_to_another_node_carries_its_credit(two: tuple[ts.Node, ts.Node]) -> None:
    a, b = two
    clock = ts.SimulatedClock()
    home = a.space("home", clock=clock, charge_rate=RATE, creation_charge="1")
    house = b.space("house", clock=clock, charge_rate=RATE, creation_charge="2")
    free = b.space("free")
    home.grant_credit("alice", 100)
    kitchen = home.create("r", {"n": 1}, credit=30, principal="alice")
    pantry = home.create("p", {"n": 2}, credit=30, principal="alice")
    clock.advance(4)  # each stores 3 bytes: drained 4 s * 3 credit/s, 18 left
    with pytest.raises(ts.InsufficientCredit) as info:  # the creation charge there: nobody pays it
        kitchen.move(b.base_uri + "spaces/house/r")
    assert (info.value.principal, info.value.needed) == ("default", 2)
    assert (kitchen.get("$credit"), home.account("operator")) == (18, 26)
    with pytest.raises(ts.RecordNotFound):
        house.record("r")
    house.grant_credit("default", 2)
    kitchen.move(b.base_uri + "spaces/house/r")
    moved = house.record("r")
    assert (moved.get("$credit"), moved.get("$lifetime")) == (18, 6.0)
    assert (house.account("default"), house.account("operator")) == (0, 2)
    # Here, what it drained was burned and what it held left: alice + operator + pantry + 18 = 100.
    assert (home.account("alice"), home.account("operator"), pantry.get("$credit")) == (38, 26, 18)
    pantry.move(b.base_uri + "spaces/free/p")  # a space that does not charge keeps it as it is
    assert (free.record("p").get("$credit"), free.record("p").get("$lifetime")) == (18, None)
    assert (home.account("operator"), home.statistics()["records"]) == (26, 0)
    clock.advance(6)
    with pytest.raises(ts.RecordNotFound):
        moved.get("n")
    assert house.account("operator") == 20  # the creation charge, and the 18 it burned there


def test_a_redirected_access_to_a_record_that_moved_away_pays_the_redirect_charge(
    two: tuple[ts.Node, ts.Node],
) -> None:
    a, b = two
    home = a.space("home", redirect_charge="0.5")
    b.space("house")
    home.grant_credit("default", 1)
    jam = home.create("jam", {"jars": 3})
    jam.move(b.base_uri + "spaces/house/jam")
    old = [(URI_PATH, s.encode()) for s in ("spaces", "home", "jam", "jars")]

    def access() -> Message:
        return b.endpoint.request_blocking(("127.0.0.1", a.port), GET, old, b"", PATIENCE)

    for left in ("0.5", "0"):
        answer = access()
        assert answer.code == 0x84  # 4.04, and where it went
        assert orjson.loads(answer.payload)["error"]["moved_to"] == b.base_uri + "spaces/house/jam"
        assert home.account("default") == ts.Credit(left)
    answer = access()
    assert answer.code == 0x83  # 4.03
    assert orjson.loads(answer.payload)["error"]["code"] == "insufficient_credit"
    with ts.connect(a.base_uri + "spaces/home", timeout=PATIENCE) as remote_home:
        with pytest.raises(ts.InsufficientCredit):
            remote_home.record("jam")
        home.grant_credit("default", 1)
        followed = remote_home.record("jam")  # a handle follows the redirection, paid once
        assert followed.get("jars") == 3
        assert str(followed.address) == b.base_uri + "spaces/house/jam"
    assert home.account("default") == ts.Credit("0.5")


def test_rules_and_credit_refuse_a_bad_body_over_coap_as_over_http(node: ts.Node) -> None:
    """Both transports call the server's operations on rules and credit: a bad body
    answers the same error (code, message, field) over CoAP as over HTTP, where the
    CoAP request names its principal, if any, in the query instead of the body."""
    node.space("bank")
    rule = {"name": "r", "template": [{"$formal": "int"}]}
    cases: list[tuple[str, dict[str, object]]] = [
        ("rules", {**rule, "writes": [["done"]]}),
        ("rules", {**rule, "write": [[{"$float": "x"}]]}),
        ("rules", {"template": rule["template"], "write": [["done"]]}),
        ("rules", {**rule, "write": [["x" * (16 << 10)]]}),
        ("credit/transfer", {"to": "bob"}),
        ("credit/transfer", {"to": "", "amount": "1"}),
        ("credit/transfer", {"to": "bob", "amount": "0"}),
        ("credit/transfer", {"to": "bob", "amount": 1.5}),
        ("credit/transfer", {"to": "bob", "amount": None}),
        ("credit/grant", {"amount": None}),
        ("credit/grant", {"amount": {"$credit": "x"}}),
        ("credit/mint", {"challenge": "not-a-challenge", "nonce": "0"}),
    ]
    with running() as server, client(server) as http:
        assert http.put("/spaces/bank", json={}).status_code == 201
        for what, body in cases:
            named = {"principal": "default"} if what == "credit/grant" else {}  # required over HTTP
            over_http = http.post(f"/spaces/bank/{what}", json={**named, **body})
            resource = (
                "spaces",
                "bank",
                *what.replace("rules", "$rules").replace("credit", "$credit").split("/"),
            )
            over_coap = node.endpoint.request_blocking(
                ("127.0.0.1", node.port),
                POST,
                [*((URI_PATH, s.encode()) for s in resource), (CONTENT_FORMAT, b"\x32")],
                orjson.dumps(body),
                PATIENCE,
            )
            assert over_http.status_code >= 400, (what, body)
            assert over_coap.code == coap_code(over_http.status_code), (what, body)
            expected = over_http.json()
            # the fields a CoAP body may hold are the HTTP API's but principal
            expected["error"]["message"] = expected["error"]["message"].replace("principal, ", "")
            assert orjson.loads(over_coap.payload) == expected, (what, body)
    assert node.space("bank").rules.list() == []
    assert node.space("bank").statistics()["accounts"] == 0
