"""Credit over HTTP (docs/http-api.md, "Records"): transfers from the caller's own
account, minting for proof of work without any token, and the Python client's
methods of the same names as the embedded space's."""

from __future__ import annotations

from collections.abc import Iterator

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
        {"name": "acme", "token": WRITER, "spaces": {"bank": ["read", "write"]}},
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
