"""The record routes of the HTTP API (docs/http-api.md, "Records"): every route with
good and bad input, capabilities used without any token, find filtering, record
changes as Server-Sent Events, and credit over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import tuplespace as ts
from helpers import PATIENCE
from test_client import Proxy, new_name
from test_server import client, error, running
from tuplespace.server import Server, ServerLimits
from tuplespace.testing import LiveServer

ADMIN = "admin-token-0123456789"
WRITER = "writer-token-0123456789"
READER = "reader-token-0123456789"
TOKENS = {
    "tokens": [
        {"name": "ops", "token": ADMIN, "admin": True},
        {"name": "acme", "token": WRITER, "spaces": {"market": ["read", "write", "take", "subscribe"]}},
        {"name": "peek", "token": READER, "spaces": {"market": ["read"]}},
    ]
}
R = "/spaces/market/records"


@pytest.fixture
def server() -> Iterator[Server]:
    with running(tokens=TOKENS, long_poll=5.0) as s:
        yield s


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with client(server, ADMIN) as c:
        c.put("/spaces/market", json={"creation_charge": "1"})
        yield c


@pytest.fixture
def acme(server: Server, admin: httpx.Client) -> Iterator[httpx.Client]:
    admin.post("/spaces/market/credit/grant", json={"principal": "acme", "amount": 100})
    with client(server, WRITER) as c:
        yield c


@pytest.fixture
def nobody(server: Server) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


def create(http: httpx.Client, path: str, fields: dict[str, Any]) -> dict[str, Any]:
    response = http.post(R + "/create", json={"path": path, "fields": fields})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["record"]
    return record


def read(http: httpx.Client, ref: str) -> dict[str, Any]:
    response = http.post(R + "/get", json={"ref": ref})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()["record"]
    return record


def uri(wire: dict[str, Any]) -> str:
    text: str = wire["$uri"]
    return text


def test_create_read_set_and_the_record_answered(acme: httpx.Client) -> None:
    record = create(acme, "offers/1", {"price": {"$credit": "9.5"}, "qty": 100})
    assert uri(record["address"]) == "tuplespace://local/spaces/market/offers/1"
    assert record["version"] == 1
    assert record["tags"] == ["price", "qty"]
    assert record["computed"] == {"$credit": {"$credit": "0"}, "$lifetime": None, "$refcount": 0, "$level": 0}
    assert acme.post(R + "/set", json={"ref": "offers/1", "tag": "qty", "value": 90}).json() == {"version": 2}
    values = acme.post(R + "/get", json={"ref": "offers/1", "tags": ["qty", "$version", "none"]}).json()
    assert values == {"values": [90, 2, None]}
    got = acme.post(R + "/get", json={"ref": "offers/1", "tags": ["none"], "default": "x"}).json()
    assert got == {"values": ["x"]}
    assert acme.get("/spaces/market/credit/acme").json()["balance"] == {"$credit": "99"}


def test_bad_input_is_refused_precisely_and_changes_nothing(acme: httpx.Client) -> None:
    create(acme, "r", {"n": 1})
    cases = [
        ("/create", {"path": "r", "fields": {"n": 2}}, 409, "record_exists", "path"),
        ("/create", {"path": "s", "fields": [1]}, 400, "wire_error", "fields"),
        (
            "/create",
            {"path": "s", "fields": {"temp": {"$float": "nan"}}},
            400,
            "wire_error",
            'fields["temp"]',
        ),
        ("/create", {"path": "s", "fields": {"a.b": 1}}, 400, "invalid_value", 'fields["a.b"]'),
        (
            "/create",
            {"path": "s", "fields": {"$map": {"$version": 1}}},
            400,
            "invalid_value",
            'fields["$version"]',
        ),
        ("/create", {"path": "s/", "fields": {"n": 1}}, 400, "invalid_value", "path"),
        ("/create", {"path": "s", "fields": {"n": 1}, "credit": "-1"}, 400, "invalid_value", "credit"),
        ("/create", {"path": "s", "fields": {"n": 1}, "lease": -1}, 400, "invalid_value", "lease"),
        ("/create", {"path": "s", "fields": {"n": 1}, "colour": 1}, 400, "bad_request", "colour"),
        ("/set", {"ref": "r", "tag": "$version", "value": 1}, 400, "invalid_value", "tag"),
        ("/set", {"ref": "r", "tag": "", "value": 1}, 400, "invalid_value", "tag"),
        ("/set", {"ref": "r", "tag": "n", "value": [1, {"$nope": 1}]}, 400, "wire_error", "value[1]"),
        (
            "/set",
            {"ref": "r", "tag": "n", "value": {"a": {"$float": "nan"}}},
            400,
            "wire_error",
            'value["a"]',
        ),
        (
            "/set",
            {"ref": "r", "tag": "me", "value": {"$uri": "tuplespace://local/spaces/market/r"}},
            400,
            "containment_cycle",
            "value",
        ),
        ("/set", {"ref": "nowhere", "tag": "n", "value": 1}, 404, "record_not_found", "ref"),
        ("/set", {"ref": 5, "tag": "n", "value": 1}, 400, "bad_request", "ref"),
        ("/get", {"ref": "r", "tags": []}, 400, "bad_request", "tags"),
        ("/get", {"ref": "r", "tags": ["n", "$nope"]}, 400, "invalid_value", "tags[1]"),
        ("/get", {"ref": "r", "tags": ["a.b"]}, 400, "invalid_value", "tags[0]"),
        ("/get", {"ref": "r", "id": -1}, 400, "bad_request", "id"),
        ("/find", {"template": ["n"]}, 400, "invalid_template", "template"),
        ("/find", {"template": {"n": {"$range": 1}}}, 400, "wire_error", 'template["n"]'),
        ("/move", {"ref": "r", "path": "bad path"}, 400, "invalid_value", "path"),
        ("/clone", {"ref": "r", "path": ".s"}, 400, "invalid_value", "path"),
        ("/capability", {"ref": "r", "operations": ["fly"]}, 400, "invalid_value", "operations"),
        ("/revoke", {"ref": "r"}, 400, "bad_request", "ref"),
    ]
    for route, body, status, code, field in cases:
        body_error = error(acme.post(R + route, json=body), status, code)
        assert body_error["field"] == field, (route, body, body_error)
    waited = error(acme.post(R + "/take", json={"template": {}, "timeout": -1}), 400, "invalid_value")
    assert waited == {
        "code": "invalid_value",
        "message": "timeout is a number of seconds >= 0 or null",
        "field": "timeout",
    }
    record = read(acme, "r")
    assert (record["version"], record["fields"]) == (1, {"n": 1})
    assert acme.post(R + "/find", json={"template": {}}).json()["records"] == [record]


def test_a_space_that_charges_blames_the_missing_credit(admin: httpx.Client) -> None:
    admin.put("/spaces/bank", json={"charge_rate": "1024"})
    refused = admin.post("/spaces/bank/records/create", json={"path": "r", "fields": {"n": 1}})
    assert error(refused, 400, "invalid_value")["field"] == "credit"
    assert admin.post("/spaces/bank/records/find", json={"template": {}}).json()["records"] == []


def test_a_record_in_use_and_forced_destruction(acme: httpx.Client) -> None:
    child = create(acme, "child", {"n": 1})
    create(acme, "parent", {"c": child["address"]})
    error(acme.post(R + "/destroy", json={"ref": "child"}), 409, "record_in_use")
    assert acme.post(R + "/destroy", json={"ref": "child", "force": True}).status_code == 204
    assert read(acme, "parent")["fields"] == {"c": None}


def test_clone_move_and_the_id_that_pins_a_record(acme: httpx.Client) -> None:
    record = create(acme, "a", {"n": 1})
    rid = record["id"]
    copy = acme.post(R + "/clone", json={"ref": "a", "path": "b"})
    assert copy.status_code == 201
    assert copy.json()["record"]["fields"] == {"n": 1}
    moved = acme.post(R + "/move", json={"ref": "a", "path": "c", "redirect_lease": 0}).json()
    assert uri(moved["address"]).endswith("/c")
    assert moved["version"] == 2
    error(acme.post(R + "/get", json={"ref": "a"}), 404, "record_not_found")
    assert read(acme, "c")["id"] == rid
    # the id names the record wherever it went, and nothing once it is gone
    assert acme.post(R + "/get", json={"ref": "a", "id": rid}).json()["record"]["version"] == 2
    assert acme.post(R + "/destroy", json={"ref": "c"}).status_code == 204
    create(acme, "c", {"n": "new"})
    error(acme.post(R + "/get", json={"ref": "c", "id": rid}), 404, "record_not_found")


def test_refresh_and_the_root(acme: httpx.Client) -> None:
    create(acme, "r", {"n": 1})
    assert acme.post(R + "/refresh", json={"ref": "r", "lease": 60}).json()["expires_at"] is not None
    error(acme.post(R + "/refresh", json={"ref": "r"}), 400, "invalid_value")
    root = read(acme, "$")
    assert root["tags"] == ["ME", "TUPS"]
    body = error(acme.post(R + "/set", json={"ref": "$", "tag": "x", "value": 1}), 403, "not_allowed")
    assert body["allowed"] == ["read", "watch"]


def test_find_and_take_need_the_space_s_permissions(
    acme: httpx.Client, server: Server, nobody: httpx.Client
) -> None:
    for i in range(3):
        create(acme, f"offers/{i}", {"item": "steel", "n": i})
    create(acme, "other/x", {"item": "steel"})
    found = acme.post(
        R + "/find", json={"template": {"item": "steel", "n": {"$any": True}}, "under": "offers"}
    )
    assert [r["fields"]["n"] for r in found.json()["records"]] == [0, 1, 2]
    assert (
        len(acme.post(R + "/find", json={"template": {"item": "steel"}, "limit": 2}).json()["records"]) == 2
    )
    with client(server, READER) as peek:
        assert len(peek.post(R + "/find", json={"template": {"item": "steel"}}).json()["records"]) == 4
        error(peek.post(R + "/take", json={"template": {"item": "steel"}}), 403, "forbidden")
    error(nobody.post(R + "/find", json={"template": {"item": "steel"}}), 401, "unauthorized")
    taken = acme.post(R + "/take", json={"template": {"item": "steel"}, "under": "offers"}).json()["record"]
    assert uri(taken["address"]).endswith("/offers/0")
    assert acme.post(R + "/take", json={"template": {"item": "copper"}, "timeout": 0.05}).json() == {
        "record": None
    }


def test_a_capability_works_without_any_token(acme: httpx.Client, nobody: httpx.Client) -> None:
    create(acme, "r", {"n": 1})
    answer = acme.post(R + "/capability", json={"ref": "r", "operations": ["read", "set"], "lease": 600})
    assert answer.status_code == 201
    cap = uri(answer.json()["address"])
    assert "/$cap/" in cap
    assert answer.json()["operations"] == ["read", "set"]
    opened = nobody.post(R + "/open", json={"ref": cap}).json()["handle"]
    assert opened["operations"] == ["read", "set"]
    assert "id" not in opened
    assert nobody.post(R + "/set", json={"ref": cap, "tag": "n", "value": 5}).json() == {"version": 2}
    assert read(nobody, cap)["fields"] == {"n": 5}
    for route, body in (
        ("/destroy", {}),
        ("/clone", {"path": "copy"}),
        ("/refresh", {"lease": 10}),
        ("/move", {"path": "elsewhere"}),
        ("/capability", {"operations": ["read"]}),
    ):
        error(nobody.post(R + route, json={"ref": cap, **body}), 403, "not_allowed")
    error(nobody.post(R + "/get", json={"ref": "r"}), 401, "unauthorized")
    error(nobody.post(R + "/revoke", json={"ref": cap}), 401, "unauthorized")
    ro = uri(acme.post(R + "/read_only", json={"ref": "r"}).json()["address"])
    error(nobody.post(R + "/set", json={"ref": ro, "tag": "n", "value": 0}), 403, "not_allowed")
    assert acme.post(R + "/revoke", json={"ref": cap}).status_code == 204
    body = error(nobody.post(R + "/get", json={"ref": cap}), 401, "capability_revoked")
    assert body["expired"] is False
    assert read(acme, "r")["fields"] == {"n": 5}


def test_credit_over_http(server: Server, admin: httpx.Client, nobody: httpx.Client) -> None:
    admin.put("/spaces/bank", json={"charge_rate": "1024", "creation_charge": "5"})
    assert admin.get("/spaces/bank").json()["options"]["charge_rate"] == "1024"
    error(admin.put("/spaces/bank", json={"charge_rate": "1"}), 409, "space_exists")
    error(admin.put("/spaces/other", json={"charge_rate": "-1"}), 400, "invalid_value")
    error(admin.put("/spaces/other", json={"charge_rate": 1.5}), 400, "bad_request")
    with client(server, WRITER) as acme:
        error(
            acme.post("/spaces/bank/credit/grant", json={"principal": "acme", "amount": 5}), 403, "forbidden"
        )
        assert admin.post("/spaces/bank/credit/grant", json={"principal": "acme", "amount": 10}).json() == {
            "principal": "acme",
            "balance": {"$credit": "10"},
        }
        error(
            admin.post("/spaces/bank/credit/grant", json={"principal": "acme", "amount": -1}),
            400,
            "invalid_value",
        )
        assert acme.get("/spaces/bank/credit/acme").json()["balance"] == {"$credit": "10"}
        error(acme.get("/spaces/bank/credit/peek"), 403, "forbidden")
        # acme holds write on market only: the bank's records are the admin's to make
        body = {"path": "r", "fields": {"n": 1}, "credit": 30, "principal": "acme"}
        body_error = error(admin.post("/spaces/bank/records/create", json=body), 402, "insufficient_credit")
        assert (body_error["principal"], body_error["needed"], body_error["available"]) == (
            "acme",
            {"$credit": "35"},
            {"$credit": "10"},
        )
        error(admin.post("/spaces/bank/records/get", json={"ref": "r"}), 404, "record_not_found")
        assert admin.get("/spaces/bank/credit/acme").json()["balance"] == {"$credit": "10"}


def events(lines: Iterator[str], n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The next ``n`` events of a stream's lines: (id, kind, data)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if fields:
                out.append((fields["id"], fields["event"], json.loads(fields["data"])))
                fields = {}
                if len(out) == n:
                    return out
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    return out


def test_record_changes_stream_and_resume_by_last_event_id(acme: httpx.Client, server: Server) -> None:
    create(acme, "sensors/a", {"t": 1})
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {WRITER}"}, timeout=PATIENCE)
        )
        response = stack.enter_context(stream.stream("GET", R + "/events", params={"under": "sensors"}))
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == ": subscribed"
        for t in (2, 3):
            acme.post(R + "/set", json={"ref": "sensors/a", "tag": "t", "value": t})
        got = events(lines, 2)
    assert [(kind, data["tag"], data["value"]) for _, kind, data in got] == [
        ("update", "t", 2),
        ("update", "t", 3),
    ]
    first_id = got[0][0]
    with (
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {WRITER}"}, timeout=PATIENCE
        ) as again,
        again.stream(
            "GET", R + "/events", params={"ref": "sensors/a"}, headers={"Last-Event-ID": first_id}
        ) as resumed,
    ):
        acme.post(R + "/destroy", json={"ref": "sensors/a"})
        assert [(kind, data["value"]) for _, kind, data in events(resumed.iter_lines(), 2)] == [
            ("update", 3),
            ("destroy", None),
        ]
    error(acme.get(R + "/events", params={"events": "fly"}), 400, "bad_request")
    error(acme.get(R + "/events", params={"ref": "sensors/a", "under": "x"}), 400, "bad_request")


def test_a_capability_with_watch_streams_without_a_token(acme: httpx.Client, server: Server) -> None:
    create(acme, "r", {"n": 1})
    watch = uri(acme.post(R + "/capability", json={"ref": "r", "operations": ["watch"]}).json()["address"])
    read_only = uri(acme.post(R + "/capability", json={"ref": "r", "operations": ["read"]}).json()["address"])
    with client(server) as nobody:
        error(nobody.get(R + "/events", params={"ref": read_only}), 403, "not_allowed")
        error(nobody.get(R + "/events"), 401, "unauthorized")
        with nobody.stream("GET", R + "/events", params={"ref": watch}) as response:
            assert response.status_code == 200
            acme.post(R + "/set", json={"ref": "r", "tag": "n", "value": 2})
            assert [kind for _, kind, _ in events(response.iter_lines(), 1)] == ["update"]


def test_revoking_a_capability_ends_the_streams_watching_through_it(
    acme: httpx.Client, server: Server
) -> None:
    create(acme, "r", {"n": 1})
    revoked, kept = (
        uri(acme.post(R + "/capability", json={"ref": "r", "operations": ["watch"]}).json()["address"])
        for _ in range(2)
    )
    with (
        client(server) as nobody,
        nobody.stream("GET", R + "/events", params={"ref": revoked}) as ending,
        nobody.stream("GET", R + "/events", params={"ref": kept}) as going_on,
    ):
        ending_lines, going_on_lines = ending.iter_lines(), going_on.iter_lines()
        assert next(ending_lines) == next(going_on_lines) == ": subscribed"
        assert acme.post(R + "/revoke", json={"ref": revoked}).status_code == 204
        assert [line for line in ending_lines if line and not line.startswith(":")] == []  # it ended
        acme.post(R + "/set", json={"ref": "r", "tag": "n", "value": 2})
        assert [kind for _, kind, _ in events(going_on_lines, 1)] == ["update"]
    url = f"{server.url}/spaces/market"
    with ts.connect(url, token=WRITER) as owner, ts.connect(url) as holder:
        cap = owner.record("r").capability({"watch"})
        with holder.record(cap.address).watch() as watch:
            cap.revoke()
            with pytest.raises(ts.CapabilityRevoked):
                watch.get(timeout=PATIENCE)


def test_revoking_a_token_ends_its_record_watches(
    acme: httpx.Client, admin: httpx.Client, server: Server
) -> None:
    create(acme, "r", {"n": 1})
    with (
        client(server, WRITER) as stream,
        stream.stream("GET", R + "/events", params={"ref": "r"}) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == ": subscribed"
        assert admin.delete("/tokens/acme").status_code == 204
        assert [line for line in lines if line and not line.startswith(":")] == []  # it ended


def test_the_python_binding_uses_a_capability_without_a_token(acme: httpx.Client, server: Server) -> None:
    url = f"{server.url}/spaces/market"
    with ts.connect(url, token=WRITER) as owner:
        rec = owner.create("shared", {"n": 1})
        cap = rec.capability({"read", "set"})
    with ts.connect(url) as stranger:
        theirs = stranger.record(cap.address)
        assert theirs.operations == frozenset({"read", "set"})
        assert theirs.set("n", 2) == 2
        with pytest.raises(ts.NotAllowed):
            theirs.destroy()
        with pytest.raises(ts.Unauthorized):
            stranger.find({"n": 2})
    with ts.connect(url, token=WRITER) as owner:
        cap_handle = owner.record("shared").capability({"read"})
        cap_handle.revoke()
        with pytest.raises(ts.CapabilityRevoked):
            owner.record(cap_handle.address)
        with pytest.raises(ts.InsufficientCredit):
            owner.create("costly", {"n": 1}, credit=1000)
        assert owner.account("acme") < 100


# -- claimed takes ----------------------------------------------------------------------------


def test_a_taken_record_whose_answer_is_lost_comes_back_as_it_was(serve: Any) -> None:
    server = serve(claim_lease=1.0)
    cutter = Proxy(server)
    name = new_name()
    try:
        with (
            ts.connect(server.space_url(name), store="memory") as other,
            ts.connect(cutter.space_url(name)) as space,
        ):
            other.create("jobs/1", {"kind": "job", "n": 1})
            other.record("jobs/1").set("n", 2)
            before = other.record("jobs/1").snapshot()
            assert space.count(("warm",)) == 0  # the connection the take will use
            cutter.swallow = True
            with pytest.raises(ts.Unreachable, match="cannot reach"):
                space.try_take_record({"kind": "job"})  # held by its claim; the answer never arrives
            assert other.try_take_record({"kind": "job"}) is None
            after = other.take_record({"kind": "job"}, timeout=PATIENCE)  # once the claim ran out
            assert (after.address, after.fields, after.version) == (before.address, before.fields, 2)
    finally:
        cutter.close()


def test_a_confirmed_record_take_is_final_and_destroys_once(serve: Any) -> None:
    server = serve(claim_lease=0.3)
    name = new_name()
    with (
        ts.connect(server.space_url(name), store="memory", confirm_delay=PATIENCE) as space,
        space.watch_records() as watch,
    ):
        space.create("jobs/1", {"kind": "job"})
        assert space.take_record({"kind": "job"}).fields == {"kind": "job"}
        assert space.client_statistics()["unconfirmed_claims"] == 1
        space.create("mid", {"n": 0})
        assert space.try_take_record({"kind": "nothing"}) is None  # the confirmation rides along
        stats = space.client_statistics()
        assert (stats["unconfirmed_claims"], stats["claims_confirmed_riding"]) == (0, 1)
        time.sleep(0.6)  # past the claim's lease
        assert space.try_take_record({"kind": "job"}) is None
        space.create("end", {"n": 0})
        got = [watch.get(timeout=PATIENCE) for _ in range(4)]
    assert [(c.kind, c.path) for c in got] == [
        ("create", "jobs/1"),
        ("create", "mid"),
        ("destroy", "jobs/1"),
        ("create", "end"),
    ]


def test_record_claims_are_confirmed_and_released_by_their_routes(acme: httpx.Client) -> None:
    create(acme, "jobs/1", {"kind": "job"})
    create(acme, "jobs/2", {"kind": "job"})
    first = acme.post(R + "/take", json={"template": {"kind": "job"}, "claim": True}).json()
    assert uri(first["record"]["address"]).endswith("/jobs/1")
    assert set(first["claim"]) == {"id", "expires_at"}
    second = acme.post(R + "/take", json={"template": {"kind": "job"}, "claim": True}).json()
    assert uri(second["record"]["address"]).endswith("/jobs/2")
    assert acme.post(f"/spaces/market/claims/{first['claim']['id']}/release").status_code == 204
    assert acme.post(f"/spaces/market/claims/{second['claim']['id']}/confirm").status_code == 204
    error(acme.post(f"/spaces/market/claims/{second['claim']['id']}/release"), 409, "transaction_ended")
    again = acme.post(
        R + "/take",
        json={"template": {"kind": "job"}, "claim": True, "confirm": [first["claim"]["id"], "nope"]},
    ).json()
    assert uri(again["record"]["address"]).endswith("/jobs/1")
    assert again["unconfirmed"] == [first["claim"]["id"], "nope"]
    assert acme.post(
        R + "/take", json={"template": {"kind": "job"}, "confirm": [again["claim"]["id"]]}
    ).json() == {"record": None}
    assert acme.post(R + "/find", json={"template": {"kind": "job"}}).json() == {"records": []}


def test_the_text_form_of_a_remote_record(http_server: LiveServer) -> None:
    with ts.connect(http_server.space_url()) as space:
        rec = space.create("plant/boiler", {"temp": 71.5, "unit": "C"})
        rec.set("temp", 72.0)
        text = ts.format(rec)
        assert text.startswith('{$PK: uri"')
        assert "$version: 2" in text
        assert "temp: 72.0" in text
        assert ts.parse(text) == rec.snapshot()

    async def main() -> None:
        aspace = await ts.connect_async(http_server.space_url())
        async with aspace:
            arec = await aspace.create("plant/pump", {"on": True})
            with pytest.raises(TypeError, match=r"await record\.snapshot"):
                ts.format(arec)
            assert ts.parse(ts.format(await arec.snapshot())) == await arec.snapshot()

    asyncio.run(main())


def test_a_find_answers_at_most_max_answer_bytes_of_records() -> None:
    with running(limits=ServerLimits(max_answer=1000)) as server, client(server) as http:
        for i in range(5):
            assert http.post(
                "/spaces/s/records/create", json={"path": f"r/{i}", "fields": {"blob": "x" * 300}}
            )
        found = http.post("/spaces/s/records/find", json={"template": {"blob": {"$any": True}}})
        answer = found.json()
        assert 1 < len(answer["records"]) < 5
        assert answer["more"] is True
        assert len(json.dumps(answer["records"], separators=(",", ":"))) <= 1000
        one = http.post("/spaces/s/records/find", json={"template": {"blob": {"$any": True}}, "limit": 1})
        assert len(one.json()["records"]) == 1
        assert "more" not in one.json()
