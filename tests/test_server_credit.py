"""Credit over HTTP (docs/http-api.md, "Records"): transfers from the caller's own
account, minting for proof of work without any token, the Python client's
methods of the same names as the embedded space's, and what a space's options
charge for: a method's steps, a rule's firings, a path a record moved from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tuplespace as ts
from test_server import client, error, running
from tuplespace.server import Server

ADMIN = "admin-token-0123456789"
WRITER = "writer-token-0123456789"
TOKENS = {
    "tokens": [
        {"name": "ops", "token": ADMIN, "admin": True},
        {"name": "acme", "token": WRITER, "spaces": {"bank": ["read", "write"], "works": ["read", "write"]}},
    ]
}


@pytest.fixture
def server() -> Iterator[Server]:
    with running(tokens=TOKENS) as s:
        yield s


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with client(server, ADMIN) as c:
        c.put("/spaces/bank", json={"mint_amount": "0.5", "mint_bits": 6, "operator": "node"})
        c.post("/spaces/bank/credit/grant", json={"principal": "acme", "amount": 10})
        yield c


def test_a_caller_transfers_from_its_own_account(server: Server, admin: httpx.Client) -> None:
    with client(server, WRITER) as acme:
        answer = acme.post("/spaces/bank/credit/transfer", json={"to": "bob", "amount": "2.5"})
        assert answer.json() == {"principal": "acme", "balance": {"$credit": "7.5"}}
        assert admin.get("/spaces/bank/credit/bob").json()["balance"] == {"$credit": "2.5"}
        body = error(
            acme.post("/spaces/bank/credit/transfer", json={"to": "bob", "amount": 8}),
            402,
            "insufficient_credit",
        )
        assert (body["needed"], body["available"]) == ({"$credit": "8"}, {"$credit": "7.5"})
        error(
            acme.post("/spaces/bank/credit/transfer", json={"principal": "bob", "to": "acme", "amount": 1}),
            403,
            "forbidden",
        )
        assert (
            error(
                acme.post("/spaces/bank/credit/transfer", json={"to": "bob", "amount": -1}),
                400,
                "invalid_value",
            )["field"]
            == "amount"
        )
        assert (
            error(
                acme.post("/spaces/bank/credit/transfer", json={"to": "", "amount": 1}), 400, "bad_request"
            )["field"]
            == "to"
        )
        error(
            acme.post("/spaces/bank/credit/transfer", json={"to": "bob", "amount": 1, "x": 1}),
            400,
            "bad_request",
        )
        error(acme.post("/spaces/nowhere/credit/transfer", json={"to": "bob", "amount": 1}), 404, "not_found")
    # an admin moves credit out of any account
    answer = admin.post(
        "/spaces/bank/credit/transfer", json={"principal": "bob", "to": "acme", "amount": "2.5"}
    )
    assert answer.json() == {"principal": "bob", "balance": {"$credit": "0"}}
    assert admin.get("/spaces/bank/credit/acme").json()["balance"] == {"$credit": "10"}


def test_a_transfer_of_nothing_to_a_long_name_or_of_no_amount_is_refused_naming_its_field(
    server: Server, admin: httpx.Client
) -> None:
    transfer = "/spaces/bank/credit/transfer"
    accounts = admin.get("/spaces/bank").json()["statistics"]["accounts"]
    with client(server, WRITER) as acme:
        for nothing in (0, "0", "-0", {"$credit": "0"}):
            body = error(acme.post(transfer, json={"to": "bob", "amount": nothing}), 400, "invalid_value")
            assert (body["field"], body["message"]) == (
                "amount",
                "a transfer moves an amount of credit more than 0",
            )
        body = error(acme.post(transfer, json={"to": "bob", "amount": None}), 400, "bad_request")
        assert body["field"] == "amount"
        body = error(acme.post(transfer, json={"to": "b" * 129, "amount": 1}), 400, "bad_request")
        assert body["field"] == "to"
        assert "1 to 128 characters" in body["message"]
        assert admin.get("/spaces/bank").json()["statistics"]["accounts"] == accounts  # none made
        assert acme.post(transfer, json={"to": "b" * 128, "amount": 1}).status_code == 200
    body = error(
        admin.post("/spaces/bank/credit/grant", json={"principal": "b" * 129, "amount": 1}),
        400,
        "invalid_value",
    )
    assert body["field"] == "principal"
    assert admin.get("/spaces/bank/credit/acme").json()["balance"] == {"$credit": "9"}


def test_a_grant_of_no_amount_is_refused_naming_its_field_as_over_coap(admin: httpx.Client) -> None:
    for nothing in ({"principal": "acme", "amount": None}, {"principal": "acme"}):
        body = error(admin.post("/spaces/bank/credit/grant", json=nothing), 400, "bad_request")
        assert body["field"] == "amount"
    assert admin.get("/spaces/bank/credit/acme").json()["balance"] == {"$credit": "10"}


def test_an_anonymous_caller_mints_by_proof_of_work(server: Server, admin: httpx.Client) -> None:
    options = admin.get("/spaces/bank").json()["options"]
    assert (options["mint_amount"], options["mint_bits"], options["operator"]) == ("0.5", 6, "node")
    with client(server) as nobody:
        c = nobody.post("/spaces/bank/credit/challenge").json()
        assert (c["bits"], c["amount"]) == (6, {"$credit": "0.5"})
        nonce = ts.make_stamp(c["challenge"], c["bits"])
        stamp = {"challenge": c["challenge"], "nonce": nonce}
        answer = nobody.post("/spaces/bank/credit/mint", json=stamp)
        assert answer.json() == {"principal": "anonymous", "balance": {"$credit": "0.5"}}
        assert (
            error(nobody.post("/spaces/bank/credit/mint", json=stamp), 400, "invalid_value")["field"]
            == "nonce"
        )
        stale = {"challenge": "0" * 32, "nonce": nonce}
        assert (
            error(nobody.post("/spaces/bank/credit/mint", json=stale), 400, "invalid_value")["field"]
            == "challenge"
        )
        error(nobody.post("/spaces/bank/credit/mint", json={**stamp, "principal": "acme"}), 403, "forbidden")
        error(nobody.post("/spaces/bank/credit/mint", json={"challenge": c["challenge"]}), 400, "bad_request")
        assert nobody.get("/spaces/bank/credit/anonymous").json()["balance"] == {"$credit": "0.5"}
    admin.put("/spaces/plain", json={})
    error(admin.post("/spaces/plain/credit/challenge"), 403, "forbidden")
    error(admin.put("/spaces/other", json={"mint_bits": 0}), 400, "bad_request")
    error(admin.put("/spaces/other", json={"operator": ""}), 400, "bad_request")


def test_the_python_client_transfers_and_mints(server: Server, admin: httpx.Client) -> None:
    with ts.connect(f"{server.url}/spaces/bank", token=WRITER) as space:
        assert space.transfer_credit("acme", "bob", 3) == ts.Credit(7)
        with pytest.raises(ts.InsufficientCredit):
            space.transfer_credit("acme", "bob", 100)
        c = space.credit_challenge()
        assert (c.bits, c.amount) == (6, ts.Credit("0.5"))
        assert space.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits)) == ts.Credit("7.5")
        with pytest.raises(ts.InvalidValue):
            space.mint_credit(c.challenge, "not-a-stamp-" * 6)
        assert space.account("acme") == ts.Credit("7.5")


# -- what a space charges for -------------------------------------------------------------------

BUMP = ts.Method("function(self, d) self.target = self.target + d return self.target end")
PAID = {"step_charge": "0.001", "firing_charge": "0.5", "redirect_charge": "0.25", "operator": "node"}


@pytest.fixture
def works(server: Server) -> Iterator[httpx.Client]:
    """A space whose steps, firings and redirections cost credit; acme holds 10."""
    with client(server, ADMIN) as admin:
        assert (
            admin.put("/spaces/works", json=PAID).json()["options"] | PAID
            == admin.get("/spaces/works").json()["options"]
        )
        admin.post("/spaces/works/credit/grant", json={"principal": "acme", "amount": 10})
        yield admin


def balances(admin: httpx.Client, *principals: str) -> list[str]:
    return [admin.get(f"/spaces/works/credit/{p}").json()["balance"]["$credit"] for p in principals]


def test_a_method_called_over_http_is_paid_by_the_caller(server: Server, works: httpx.Client) -> None:
    with ts.connect(server.url + "/spaces/works", token=WRITER) as acme:
        thermo = acme.create("thermostat", {"target": 21.0, "bump": BUMP})
        assert thermo.call("bump", 0.5) == 21.5  # a short method pays for one hundred steps
        assert thermo.get("target") == 21.5
        assert balances(works, "acme", "node") == ["9.9", "0.1"]
        with pytest.raises(ts.Forbidden):
            thermo.call("bump", 0.5, principal="ops")  # only an admin charges another account
        cap = thermo.capability(["set"])
    with ts.connect(server.url + "/spaces/works") as nobody:  # a capability needs no token...
        with pytest.raises(ts.InsufficientCredit) as info:
            nobody.record(cap.address).call("bump", 1.0)
        assert info.value.principal == "anonymous"  # ...and its caller pays
    assert balances(works, "acme", "node") == ["9.9", "0.1"]
    with ts.connect(server.url + "/spaces/works", token=ADMIN) as admin:
        assert admin.record("thermostat").call("bump", 1.0, principal="acme") == 22.5
    assert balances(works, "acme", "node") == ["9.8", "0.2"]


def test_a_call_over_http_says_what_stopped_it_and_changes_nothing(
    server: Server, works: httpx.Client
) -> None:
    with ts.connect(server.url + "/spaces/works", token=WRITER) as acme:
        acme.create(
            "m",
            {
                "target": 1.0,
                "bump": BUMP,
                "loop": ts.Method("function(self) self.target = 0 while true do end end"),
            },
        )
    with client(server, WRITER) as http:
        call = "/spaces/works/records/call"
        assert (
            error(http.post(call, json={"ref": "m", "tag": "target"}), 400, "invalid_value")["field"] == "tag"
        )
        body = error(http.post(call, json={"ref": "m", "tag": "bump", "args": [[1]]}), 400, "invalid_value")
        assert body["field"] == "args[0]"
        assert error(http.post(call, json={"ref": "m", "tag": "bump", "args": 1}), 400, "bad_request")[
            "field"
        ] == ("args")
        error(http.post(call, json={"ref": "m"}), 400, "bad_request")
        body = error(http.post(call, json={"ref": "m", "tag": "loop"}), 402, "insufficient_credit")
        assert body["principal"] == "acme"  # 10 credit pays for 9,900 of the 100,000 steps allowed
        error(http.post(call, json={"ref": "nothing", "tag": "bump"}), 404, "record_not_found")
        got = http.post("/spaces/works/records/get", json={"ref": "m", "tags": ["target"]})
        assert got.json() == {"values": [{"$float": "1"}]}  # the loop changed nothing


def test_a_path_a_record_moved_from_costs_the_caller_the_redirect_charge(
    server: Server, works: httpx.Client
) -> None:
    with client(server, WRITER) as http:
        http.post("/spaces/works/records/create", json={"path": "offers/1", "fields": {"n": 1}})
        http.post("/spaces/works/records/move", json={"ref": "offers/1", "path": "sold/1"})
        assert balances(works, "acme", "node") == ["10", "0"]
        assert http.post("/spaces/works/records/get", json={"ref": "offers/1"}).json()["record"][
            "fields"
        ] == {"n": 1}
        assert balances(works, "acme", "node") == ["9.75", "0.25"]
        http.post("/spaces/works/records/set", json={"ref": "sold/1", "tag": "n", "value": 2})  # its own path
        http.post("/spaces/works/records/set", json={"ref": "offers/1", "tag": "n", "value": 3})
        assert balances(works, "acme", "node") == ["9.5", "0.5"]
    with ts.connect(server.url + "/spaces/works", token=WRITER) as acme:
        rec = acme.record("offers/1")  # the handle follows the record by its number from then on
        assert (rec.get("n"), rec.get("n")) == (3, 3)
        assert balances(works, "acme") == ["9.25"]
    with client(server) as nobody:
        error(nobody.post("/spaces/works/records/get", json={"ref": "offers/1"}), 401, "unauthorized")


def test_a_rules_firings_are_paid_at_the_spaces_firing_charge(server: Server, works: httpx.Client) -> None:
    with ts.connect(server.url + "/spaces/works", token=WRITER) as acme:
        acme.rules.add("hot", template=("reading", float), when="t[1] > 30.0", write=[("alarm", "t[1]")])
        acme.write(("reading", 31.0))
        acme.write(("reading", 32.0))
        assert acme.count(("alarm", float)) == 2
    assert balances(works, "acme", "node") == ["9", "1"]


def test_a_spaces_max_firings_is_set_over_http_within_bounds(server: Server) -> None:
    with client(server, ADMIN) as admin:
        assert admin.put("/spaces/storm", json={"max_firings": 2}).json()["options"]["max_firings"] == 2
        for bad in (0, 100_001, "5", 2.0):
            assert error(admin.put("/spaces/x", json={"max_firings": bad}), 400, "bad_request")["field"] == (
                "max_firings"
            )
        for key in ("redirect_charge", "firing_charge", "step_charge"):
            assert error(admin.put("/spaces/x", json={key: "-1"}), 400, "invalid_value")["field"] == key
    with ts.connect(server.url + "/spaces/storm", token=ADMIN) as storm:
        storm.rules.add(
            "fan", template=("a", int), write=[(ts.Lit("b"), f"t[1] * 10 + {i}") for i in range(3)]
        )
        storm.rules.add("leaf", template=("b", int), write=[(ts.Lit("c"), "t[1]")])
        storm.write(("a", 1))
        assert storm.read_all(("c", int)) == [("c", 10)]  # fan and one leaf: two firings
        error_body = storm.rules.get("leaf").last_error
        assert isinstance(error_body, ts.LimitReached)
        assert error_body.limit == "max_firings"


def test_what_a_method_may_do_is_set_over_http_within_bounds_and_kept(tmp_path: Path) -> None:
    limits = {"method_steps": 700, "method_ms": 50, "method_memory": 1 << 16}
    with running(tmp_path / "data", tokens=TOKENS) as server, client(server, ADMIN) as admin:
        assert admin.put("/spaces/lab", json=limits).json()["options"].items() >= limits.items()
        for key, most in (("method_steps", 10_000_000), ("method_ms", 1000), ("method_memory", 16 << 20)):
            for bad in (0, most + 1, "5", 2.0, None):
                body = error(admin.put("/spaces/x", json={key: bad}), 400, "bad_request")
                assert body["field"] == key
                assert f"from 1 to {most}" in body["message"]
        assert (
            error(admin.put("/spaces/lab", json={"method_ms": 60}), 409, "space_exists")["field"]
            == "method_ms"
        )
        default = admin.put("/spaces/plain", json={"store": "memory"}).json()["options"]
        assert (default["method_steps"], default["method_ms"], default["method_memory"]) == (
            100_000,
            100,
            1 << 20,
        )
    with running(tmp_path / "data", tokens=TOKENS) as server:
        with client(server, ADMIN) as admin:
            assert admin.get("/spaces/lab").json()["options"].items() >= limits.items()
        with ts.connect(server.url + "/spaces/lab", token=ADMIN) as lab:
            spin = lab.create("spin", {"loop": ts.Method("function(self) while true do end end")})
            with pytest.raises(ts.LimitReached) as stopped:
                spin.call("loop")
            assert (stopped.value.limit, stopped.value.maximum) == ("method_steps", 700)
            with pytest.raises(ts.LimitReached) as stopped:
                lab.create(
                    "big", {"grow": ts.Method("function(self) return string.rep('x', 1 << 17) end")}
                ).call("grow")
            assert (stopped.value.limit, stopped.value.maximum) == ("method_memory", 1 << 16)
