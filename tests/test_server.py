"""The HTTP server (docs/http-api.md), through httpx against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_until
from tuplespace._httpapi import OPERATIONS, PERMISSIONS
from tuplespace._recordstore import DEFAULT_BASE_URI
from tuplespace._sqlite import SqliteHost
from tuplespace._values import DEFAULT_LIMITS
from tuplespace.client._common import tls_context
from tuplespace.server import Server, ServerLimits, create_app
from tuplespace.server._requests import ServiceRequest

ANY = {"$any": True}


@contextlib.contextmanager
def running(data_dir: Path | None = None, **options: Any) -> Iterator[Server]:
    """A server on a free port of 127.0.0.1, stopped (gracefully) on leaving."""
    server = Server(create_app(data_dir, **options), port=0)
    thread = server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()
        thread.join(PATIENCE)
        assert not thread.is_alive(), "the server did not stop"


@contextlib.contextmanager
def client(server: Server, token: str | None = None) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=server.url, headers=headers, timeout=PATIENCE, verify=tls_context()) as c:
        yield c


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running(tmp_path / "data", long_poll=5.0, claim_lease=5.0) as s:
        yield s


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    return body


def stats(http: httpx.Client, space: str) -> dict[str, Any]:
    r = http.get(f"/spaces/{space}")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["statistics"]
    return result


def all_tuples(http: httpx.Client, space: str, arity: int) -> list[Any]:
    r = http.post(f"/spaces/{space}/read_all", json={"template": [ANY] * arity})
    assert r.status_code == 200, r.text
    result: list[Any] = r.json()["tuples"]
    return result


def test_the_server_package_exports_what_it_lists() -> None:
    import inspect
    import pkgutil

    import tuplespace.server as server_package

    public = {name for name in vars(server_package) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(server_package, name))}
    assert sorted(public - modules) == sorted(server_package.__all__)
    assert all(m.name.startswith("_") for m in pkgutil.iter_modules(server_package.__path__))


# -- health, spaces ---------------------------------------------------------------------------


def test_health(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok", "version": ts.__version__}


def test_health_answers_while_a_costly_xpath_runs_and_that_ends_at_its_limit(
    server: Server, http: httpx.Client
) -> None:
    # Every element against every element: seconds of evaluation if nothing stops it.
    doc = "<r>" + "<a><b>x</b></a>" * 10_000 + "</r>"
    assert http.post("/spaces/xml/write", json={"tuple": ["doc", doc]}).status_code == 200
    costly = {"template": ["doc", {"$xpath": "count(//*[count(//*) > 0])"}]}
    answers = [spawn(http.post, f"/spaces/xml/{op}", json=costly) for op in ("count", "read_all", "take")]
    with client(server) as other:
        while not all(a.done() for a in answers):
            assert other.get("/health").status_code == 200
    limits = set()
    for answer in answers:
        body = error(answer.result(), 429, "limit_reached")
        limits.add((body["limit"], body["maximum"]))
    # Each evaluates in turn: on a loaded machine, the last may reach the wall-clock cap waiting.
    assert ("max_match_ms", 100) in limits <= {("max_match_ms", 100), ("max_match_wall_ms", 1000)}
    assert http.post("/spaces/xml/count", json={"template": ["doc", {"$formal": "str"}]}).json() == {
        "count": 1
    }


def test_json_answers_say_their_type_and_length(http: httpx.Client) -> None:
    for r in (
        http.post("/spaces/jobs/write", json={"tuple": ["job", 1]}),
        http.post("/spaces/jobs/take", json={"template": ["job", 2], "timeout": 0}),
        http.post("/spaces/jobs/write", json={"tuple": "not an array"}),
    ):
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content) > 0
        assert r.json()


def test_put_get_list_delete_a_space(http: httpx.Client) -> None:
    r = http.put("/spaces/jobs", json={"order": "lifo", "capacity": 10, "event_retention": 5})
    assert r.status_code == 201
    options = {
        "order": "lifo",
        "capacity": 10,
        "event_retention": 5,
        "event_retention_bytes": 64 << 20,
        "store": "durable",
        "anonymous": [],
        "charge_rate": "0",
        "creation_charge": "0",
        "clock": "system",
        "operator": "operator",
        "mint_amount": "0",
        "mint_bits": 20,
        "redirect_charge": "0",
        "firing_charge": "0",
        "step_charge": "0",
        "max_firings": 1000,
        "method_steps": 100_000,
        "method_ms": 100,
        "method_memory": 1 << 20,
    }
    assert r.json() == {"name": "jobs", "options": options}
    assert http.put("/spaces/jobs", json={"order": "lifo"}).status_code == 200
    assert http.put("/spaces/jobs").status_code == 200
    assert error(http.put("/spaces/jobs", json={"order": "fifo"}), 409, "space_exists")["field"] == "order"
    got = http.get("/spaces/jobs").json()
    assert got["options"] == options
    assert got["statistics"]["tuples"] == 0
    assert [s["name"] for s in http.get("/spaces").json()["spaces"]] == ["jobs"]
    assert http.delete("/spaces/jobs").status_code == 204
    error(http.get("/spaces/jobs"), 404, "not_found")
    error(http.delete("/spaces/jobs"), 404, "not_found")
    assert http.get("/spaces").json() == {"spaces": []}


def test_space_options_are_checked(http: httpx.Client) -> None:
    assert error(http.put("/spaces/s", json={"order": "sideways"}), 400, "bad_request")["field"] == "order"
    assert error(http.put("/spaces/s", json={"capacity": 0}), 400, "bad_request")["field"] == "capacity"
    assert error(http.put("/spaces/s", json={"colour": "red"}), 400, "bad_request")["field"] == "colour"
    assert (
        error(http.put("/spaces/s", json={"anonymous": ["fly"]}), 400, "bad_request")["field"] == "anonymous"
    )
    not_an_object = http.put("/spaces/s", content=b"[1]", headers={"Content-Type": "application/json"})
    assert error(not_an_object, 400, "bad_request")
    assert error(http.put("/spaces/-bad", json={}), 400, "bad_request")["field"] == "space"
    assert http.get("/spaces").json() == {"spaces": []}


def test_a_memory_server_has_no_durable_spaces(tmp_path: Path) -> None:
    with running(store="memory") as server, client(server) as http:
        assert error(http.put("/spaces/s", json={"store": "durable"}), 400, "bad_request")["field"] == "store"
        assert http.put("/spaces/s").json()["options"]["store"] == "memory"


def test_a_space_is_created_on_first_use(http: httpx.Client) -> None:
    assert http.post("/spaces/fresh/write", json={"tuple": ["x"]}).status_code == 200
    assert http.get("/spaces/fresh").json()["options"]["order"] == "fifo"


def test_a_deleted_durable_space_can_be_made_anew_with_other_options(http: httpx.Client) -> None:
    http.put("/spaces/s", json={"order": "fifo"})
    http.post("/spaces/s/write_many", json={"tuples": [["a"], ["b", 1]]})
    assert http.delete("/spaces/s").status_code == 204
    assert http.put("/spaces/s", json={"order": "lifo"}).status_code == 201
    assert all_tuples(http, "s", 1) == []
    assert all_tuples(http, "s", 2) == []


def test_a_deleted_durable_space_leaves_no_row_in_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(data) as server, client(server) as http:
        assert http.put("/spaces/gone", json={}).status_code == 201
        assert http.post("/spaces/gone/write", json={"tuple": ["a", 1]}).status_code == 200
        assert (
            http.post("/spaces/gone/records/create", json={"path": "p/1", "fields": {"n": 1}}).status_code
            == 201
        )
        assert http.post("/spaces/gone/records/move", json={"ref": "p/1", "path": "p/2"}).status_code == 200
        assert http.put("/spaces/kept", json={}).status_code == 201
        assert http.post("/spaces/kept/write", json={"tuple": ["b"]}).status_code == 200
        assert http.delete("/spaces/gone").status_code == 204
    con = sqlite3.connect(data / "spaces.db")
    try:
        spaces = [r[0] for r in con.execute("SELECT name FROM spaces")]
        assert spaces == ["kept"]
        for table in ("tuples", "records", "redirections"):
            assert [r[0] for r in con.execute(f"SELECT DISTINCT space FROM {table}")] in ([], ["kept"]), table
        assert con.execute("SELECT retired, entry FROM catalog WHERE name = 'gone'").fetchall() == [(1, None)]
    finally:
        con.close()


def test_the_service_is_called_without_a_transport_and_raises_errors_of_the_tree() -> None:
    """The handlers take a ServiceRequest, whichever transport made it (here none), and
    raise the errors of the tree that each transport answers in its own way."""

    def request(body: bytes) -> ServiceRequest:
        async def receive(most: int) -> tuple[bytes, int]:
            return body, len(body)

        return ServiceRequest(None, "192.0.2.7", receive, lambda gone: lambda: None)

    async def main() -> None:
        app = create_app(limits=ServerLimits(rate=0.001, burst=2))
        async with app.router.lifespan_context(app):
            api = app.state.api
            answer = await api.write("s", request=request(b'{"tuple": ["a"]}'))
            assert (answer.status_code, orjson.loads(answer.body)) == (
                200,
                {"lease": {"id": 1, "expires_at": None}},
            )
            with pytest.raises(ts.InvalidValue) as refused:
                await api.write("s", request=request(b'{"tuple": ["a"], "colour": 1}'))
            assert (refused.value.code, refused.value.path) == ("bad_request", "colour")
            with pytest.raises(ts.LimitReached) as limited:
                await api.count("s", request=request(b'{"template": ["a"]}'))
            assert (limited.value.code, limited.value.limit) == ("rate_limited", "rate")
            assert limited.value.retry_after is not None
            assert limited.value.retry_after > 0

    asyncio.run(main())


def test_a_space_whose_catalog_row_failed_leaves_nothing_to_a_later_one(tmp_path: Path) -> None:
    # The catalog row of a new space fails to be written (as if the server were killed
    # before it): the space's own row goes with it, so a later space of that name
    # starts clean, with its own options.
    data = tmp_path / "data"
    with running(data):
        pass
    con = sqlite3.connect(data / "spaces.db")
    con.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON catalog BEGIN SELECT RAISE(ABORT, 'the disk failed'); END"
    )
    con.commit()
    con.close()
    host = SqliteHost(f"sqlite:{data / 'spaces.db'}", DEFAULT_LIMITS, DEFAULT_BASE_URI)
    assert host.catalog() == {}
    with pytest.raises(sqlite3.IntegrityError, match="the disk failed"):
        host.open("jobs", {"capacity": 1, "event_retention": 5}, True)
    host.close()
    con = sqlite3.connect(data / "spaces.db")
    try:
        assert con.execute("SELECT name FROM spaces").fetchall() == []
        con.execute("DROP TRIGGER fail")
        con.commit()
    finally:
        con.close()
    with running(data) as server, client(server) as http:
        assert http.put("/spaces/jobs", json={}).status_code == 201
        options = http.get("/spaces/jobs").json()["options"]
        assert (options["capacity"], options["event_retention"]) == (None, 10_000)
        assert http.post("/spaces/jobs/write_many", json={"tuples": [["a"], ["b"]]}).status_code == 200


def test_durable_spaces_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(data) as server, client(server) as http:
        http.put(
            "/spaces/kept",
            json={
                "order": "lifo",
                "event_retention": 7,
                "anonymous": ["read"],
                "charge_rate": "0.50",
                "redirect_charge": "0.25",
                "firing_charge": "0.01",
                "step_charge": "0.000001",
                "max_firings": 50,
            },
        )
        http.put("/spaces/gone", json={"store": "memory"})
        http.post("/spaces/kept/write", json={"tuple": ["a", {"$bytes": "AP8="}]})
    with running(data) as server, client(server) as http:
        got = http.get("/spaces/kept").json()
        assert got["options"] == {
            "order": "lifo",
            "capacity": None,
            "event_retention": 7,
            "event_retention_bytes": 64 << 20,
            "store": "durable",
            "anonymous": ["read"],
            "charge_rate": "0.5",
            "creation_charge": "0",
            "clock": "system",
            "operator": "operator",
            "mint_amount": "0",
            "mint_bits": 20,
            "redirect_charge": "0.25",
            "firing_charge": "0.01",
            "step_charge": "0.000001",
            "max_firings": 50,
            "method_steps": 100_000,
            "method_ms": 100,
            "method_memory": 1 << 20,
        }
        assert all_tuples(http, "kept", 2) == [["a", {"$bytes": "AP8="}]]
        error(http.get("/spaces/gone"), 404, "not_found")


def test_two_thousand_spaces_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = {}
    with running(data) as server, client(server) as http:
        for i in range(2000):
            options = {"order": "lifo"} if i % 7 == 0 else {"event_retention": i} if i % 11 == 0 else {}
            assert http.put(f"/spaces/s{i}", json=options).status_code == 201
            expected[f"s{i}"] = http.get(f"/spaces/s{i}").json()["options"]
        for i in range(0, 2000, 13):  # deleted, and some made anew
            assert http.delete(f"/spaces/s{i}").status_code == 204
            del expected[f"s{i}"]
        for i in range(0, 2000, 26):
            http.post(f"/spaces/s{i}/write", json={"tuple": ["fresh", i]})
            expected[f"s{i}"] = http.get(f"/spaces/s{i}").json()["options"]
        http.put("/spaces/mem", json={"store": "memory"})
    with running(data) as server, client(server) as http:
        listed = {s["name"]: s["options"] for s in http.get("/spaces").json()["spaces"]}
        assert listed == expected
        assert all_tuples(http, "s26", 2) == [["fresh", 26]]


def _json_catalog_data_dir(data: Path) -> None:
    """A data directory as servers before the catalog table left it: ``spaces.json``
    lists the spaces; ``spaces.db`` (schema version 2) holds them, and rows of deleted
    spaces (``kept`` was deleted once, ``gone`` twice)."""
    from tuplespace import _sqlite

    data.mkdir()
    con = sqlite3.connect(data / "spaces.db", isolation_level=None)
    try:
        _sqlite._create_v1(con)
        _sqlite._add_records_v2(con)
        options = '{"order":"lifo","capacity":null,"charge_rate":"0","creation_charge":"0"}'
        for i, (storage, t) in enumerate([("kept", ["old"]), ("kept~1", ["new", 1]), ("gone~1", ["stale"])]):
            con.execute("INSERT INTO spaces VALUES (?, 100, 100, ?)", (storage, options))
            con.execute("INSERT INTO tuples VALUES (?, ?, ?, NULL)", (storage, i + 1, ts.encode(tuple(t))))
        con.execute(f"PRAGMA application_id = {_sqlite.APPLICATION_ID}")
        con.execute("PRAGMA user_version = 2")
    finally:
        con.close()
    entry = {"storage": "kept~1", "order": "lifo", "capacity": None, "event_retention": 7}
    entry["anonymous"] = ["read"]
    catalog = {"version": 1, "spaces": {"kept": entry}, "retired": {"kept": 1, "gone": 2}}
    (data / "spaces.json").write_text(json.dumps(catalog))


def test_a_data_directory_with_a_json_catalog_keeps_its_spaces(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _json_catalog_data_dir(data)
    with running(data) as server, client(server) as http:
        assert [s["name"] for s in http.get("/spaces").json()["spaces"]] == ["kept"]
        options = http.get("/spaces/kept").json()["options"]
        assert (options["order"], options["event_retention"], options["anonymous"]) == ("lifo", 7, ["read"])
        assert all_tuples(http, "kept", 1) == []
        assert all_tuples(http, "kept", 2) == [["new", 1]]
    # The catalog now lives in the store's file: the old one is set aside.
    assert not (data / "spaces.json").exists()
    (data / "spaces.json.migrated").unlink()
    with running(data) as server, client(server) as http:
        assert all_tuples(http, "kept", 2) == [["new", 1]]
        assert http.put("/spaces/gone").status_code == 201  # a new space, not a deleted one
        assert all_tuples(http, "gone", 1) == []


def test_a_second_server_on_the_same_directory_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(data) as server, client(server) as http:
        http.put("/spaces/s")
        with pytest.raises(RuntimeError), running(data):
            pass


# -- operations -------------------------------------------------------------------------------

VALUES = [
    None,
    True,
    -7,
    {"$int": "123456789012345678901234567890"},
    {"$float": "0.1"},
    "café",
    {"$bytes": "AP8="},
    {"$time": "2024-05-01T12:00:00.5Z"},
    {"$uri": "sensors/kitchen"},
    {"$credit": "12.5"},
    [1, [2, "x"]],
    {"temp": {"$float": "21.5"}, "unit": "C"},
    {"$map": {"$k": 1}},
]


def test_every_wire_type_round_trips(http: httpx.Client) -> None:
    r = http.post("/spaces/s/write", json={"tuple": ["all", *VALUES]})
    assert r.status_code == 200, r.text
    assert http.post("/spaces/s/read", json={"template": ["all", *VALUES]}).json() == {
        "tuple": ["all", *VALUES]
    }
    template = ["all", *([ANY] * len(VALUES))]
    assert http.post("/spaces/s/take", json={"template": template}).json() == {"tuple": ["all", *VALUES]}


def test_write_read_take_count(http: httpx.Client) -> None:
    r = http.post("/spaces/s/write", json={"tuple": ["job", 1], "lease": 60})
    lease = r.json()["lease"]
    assert isinstance(lease["id"], int)
    assert lease["expires_at"] > time.time()
    r = http.post("/spaces/s/write_many", json={"tuples": [["job", 2], ["job", 3]]})
    assert [x["expires_at"] for x in r.json()["leases"]] == [None, None]
    job = ["job", {"$formal": "int"}]
    assert http.post("/spaces/s/count", json={"template": job}).json() == {"count": 3}
    assert http.post("/spaces/s/read", json={"template": job}).json() == {"tuple": ["job", 1]}
    assert http.post("/spaces/s/take", json={"template": job}).json() == {"tuple": ["job", 1]}
    assert http.post("/spaces/s/read_all", json={"template": job}).json() == {
        "tuples": [["job", 2], ["job", 3]]
    }
    assert http.post("/spaces/s/read_all", json={"template": job, "limit": 1}).json() == {
        "tuples": [["job", 2]]
    }
    assert http.post("/spaces/s/take_all", json={"template": job}).json() == {
        "tuples": [["job", 2], ["job", 3]]
    }
    assert http.post("/spaces/s/take", json={"template": job}).json() == {"tuple": None}
    assert http.post("/spaces/s/read", json={"template": job}).json() == {"tuple": None}


def test_templates_of_every_kind(http: httpx.Client) -> None:
    http.post(
        "/spaces/s/write_many", json={"tuples": [["t", 5, "crop", {"a": 1, "b": 2}], ["t", 50, "x", {}]]}
    )
    template = [
        {"$prefix": "t"},
        {"$range": {"low": 1, "high": 10}},
        {"$regex": "^cr"},
        {"a": {"$oneof": [1, 2]}},
    ]
    assert http.post("/spaces/s/read_all", json={"template": template}).json() == {
        "tuples": [["t", 5, "crop", {"a": 1, "b": 2}]]
    }


def test_replace_and_write_if_absent(http: httpx.Client) -> None:
    http.post("/spaces/s/write", json={"tuple": ["counter", 1]})
    r = http.post("/spaces/s/replace", json={"template": ["counter", ANY], "tuple": ["counter", 2]})
    assert r.json() == {"tuple": ["counter", 1]}
    assert all_tuples(http, "s", 2) == [["counter", 2]]
    r = http.post("/spaces/s/replace", json={"template": ["none"], "tuple": ["x"]})
    assert r.json() == {"tuple": None}
    body = {"template": ["leader", ANY], "tuple": ["leader", "n1"]}
    assert http.post("/spaces/s/write_if_absent", json=body).json() == {"written": True}
    assert http.post("/spaces/s/write_if_absent", json={**body, "tuple": ["leader", "n2"]}).json() == {
        "written": False
    }
    assert http.post("/spaces/s/read", json={"template": ["leader", ANY]}).json() == {
        "tuple": ["leader", "n1"]
    }


def test_a_waiting_take_gets_a_later_write(server: Server, http: httpx.Client) -> None:
    http.put("/spaces/s")
    waiting = spawn(http.post, "/spaces/s/take", json={"template": ["job", ANY], "timeout": None})
    wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take to wait")
    http.post("/spaces/s/write", json={"tuple": ["job", 7]})
    assert waiting.result(PATIENCE).json() == {"tuple": ["job", 7]}
    assert stats(http, "s")["tuples"] == 0


def test_a_waiting_replace_gets_a_later_write(http: httpx.Client) -> None:
    http.put("/spaces/s")
    body = {"template": ["n", ANY], "tuple": ["n", "next"], "timeout": 60}
    waiting = spawn(http.post, "/spaces/s/replace", json=body)
    wait_until(lambda: stats(http, "s")["waiters"] == 1, "the replace to wait")
    http.post("/spaces/s/write", json={"tuple": ["n", "first"]})
    assert waiting.result(PATIENCE).json() == {"tuple": ["n", "first"]}
    assert all_tuples(http, "s", 2) == [["n", "next"]]


def test_a_timeout_that_runs_out_answers_null(http: httpx.Client) -> None:
    assert http.post("/spaces/s/read", json={"template": ["x"], "timeout": 0.05}).json() == {"tuple": None}
    assert http.post("/spaces/s/take", json={"template": ["x"], "timeout": 0.05}).json() == {"tuple": None}


@pytest.mark.parametrize("claim", [False, True])
def test_a_group_wait_that_runs_out_answers_no_tuples(http: httpx.Client, claim: bool) -> None:
    for op in ("read_all", "take_all"):
        r = http.post(f"/spaces/s/{op}", json={"template": ["x"], "timeout": 0.05})
        assert r.json() == {"tuples": []}
    r = http.post("/spaces/s/take_all", json={"template": ["x"], "timeout": 0.05, "claim": claim})
    assert r.json() == {"tuples": []}
    assert stats(http, "s")["transactions"] == 0


def test_a_wait_longer_than_the_long_poll_answers_more(tmp_path: Path) -> None:
    with running(long_poll=0.05) as server, client(server) as http:
        for timeout in (None, 3600):
            for op in ("read", "take"):
                r = http.post(f"/spaces/s/{op}", json={"template": ["x"], "timeout": timeout})
                assert r.json() == {"tuple": None, "more": True}
        r = http.post("/spaces/s/replace", json={"template": ["x"], "tuple": ["y"], "timeout": None})
        assert r.json() == {"tuple": None, "more": True}
        for op in ("read_all", "take_all"):
            r = http.post(f"/spaces/s/{op}", json={"template": ["x"], "timeout": None})
            assert r.json() == {"tuples": [], "more": True}
        assert all_tuples(http, "s", 1) == []


def test_a_full_space_pushes_back(tmp_path: Path) -> None:
    with running(long_poll=0.05) as server, client(server) as http:
        http.put("/spaces/s", json={"capacity": 1})
        http.post("/spaces/s/write", json={"tuple": ["a"]})
        assert error(http.post("/spaces/s/write", json={"tuple": ["b"]}), 429, "space_full")
        r = http.post("/spaces/s/write", json={"tuple": ["b"], "timeout": None})
        assert r.json() == {"lease": None, "more": True}
        waited = error(
            http.post("/spaces/s/write", json={"tuple": ["b"], "timeout": 0.01}), 429, "space_full"
        )
        # A write that waited in vain names the capacity, as one that could not wait does.
        assert (waited["limit"], waited["maximum"]) == ("capacity", 1)
        error(http.post("/spaces/s/write_many", json={"tuples": [["b"], ["c"]]}), 429, "space_full")
        assert all_tuples(http, "s", 1) == [["a"]]


def test_a_waiting_write_gets_room(http: httpx.Client) -> None:
    http.put("/spaces/s", json={"capacity": 1})
    http.post("/spaces/s/write", json={"tuple": ["a"]})
    waiting = spawn(http.post, "/spaces/s/write", json={"tuple": ["b"], "timeout": 60})
    wait_until(lambda: stats(http, "s")["waiting_writers"] == 1, "the write to wait")
    http.post("/spaces/s/take", json={"template": ["a"]})
    assert waiting.result(PATIENCE).json()["lease"]["expires_at"] is None
    assert all_tuples(http, "s", 1) == [["b"]]


def test_many_results_are_cut_at_max_results(tmp_path: Path) -> None:
    with running(limits=ServerLimits(max_results=2)) as server, client(server) as http:
        http.post("/spaces/s/write_many", json={"tuples": [["n", i] for i in range(5)]})
        template = ["n", ANY]
        first = http.post("/spaces/s/read_all", json={"template": template}).json()
        assert first == {"tuples": [["n", 0], ["n", 1]], "more": True, "cursor": first["cursor"]}
        assert http.post("/spaces/s/read_all", json={"template": template, "limit": 2}).json() == {
            "tuples": [["n", 0], ["n", 1]]
        }
        assert http.post("/spaces/s/take_all", json={"template": template}).json()["more"] is True
        assert http.post("/spaces/s/take_all", json={"template": template}).json()["more"] is True
        assert http.post("/spaces/s/take_all", json={"template": template}).json() == {"tuples": [["n", 4]]}


def test_a_group_wait_answers_what_fits_and_leaves_the_rest(tmp_path: Path) -> None:
    with running(limits=ServerLimits(max_results=2)) as server, client(server) as http:
        http.put("/spaces/s")
        template = ["n", ANY]
        for op in ("read_all", "take_all"):
            waiting = spawn(http.post, f"/spaces/s/{op}", json={"template": template, "timeout": 60})
            wait_until(lambda: stats(http, "s")["waiters"] == 1, "the call to wait")
            http.post("/spaces/s/write_many", json={"tuples": [["n", i] for i in range(3)]})
            answer = waiting.result(PATIENCE).json()
            assert answer["tuples"] == [["n", 0], ["n", 1]]
            assert answer["more"] is True
            if op == "read_all":
                rest = http.post(
                    "/spaces/s/read_all", json={"template": template, "cursor": answer["cursor"]}
                )
                assert rest.json() == {"tuples": [["n", 2]]}
                http.post("/spaces/s/take_all", json={"template": template, "limit": 3})
                http.post("/spaces/s/take_all", json={"template": template, "limit": 3})
        assert all_tuples(http, "s", 2) == [["n", 2]]


def pages(http: httpx.Client, space: str, template: list[Any], **body: Any) -> list[list[Any]]:
    """The second fields of the tuples of every answer of a read_all, each read on from
    the cursor of the one before for the limit left; every answer is checked to hold at
    most 1,000 bytes of tuples (the max_answer of the servers here) or a single tuple."""
    out: list[list[Any]] = []
    cursor = None
    while True:
        r = http.post(f"/spaces/{space}/read_all", json={"template": template, "cursor": cursor, **body})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert len(answer["tuples"]) == 1 or len(orjson.dumps(answer["tuples"])) <= 1000
        out.append([t[1] for t in answer["tuples"]])
        if "limit" in body:
            body["limit"] -= len(answer["tuples"])
        if "more" not in answer:
            assert "cursor" not in answer
            return out
        assert answer["more"] is True
        cursor = answer["cursor"]


def test_answers_are_bounded_in_bytes_and_a_read_goes_on_from_its_cursor() -> None:
    with running(limits=ServerLimits(max_answer=1000)) as server, client(server) as http:
        big = "x" * 300  # about 320 bytes a tuple: 3 tuples an answer
        template = ["n", ANY, ANY]
        for name, order in (("f", "fifo"), ("l", "lifo"), ("r", "random")):
            assert http.put(f"/spaces/{name}", json={"order": order}).status_code == 201
            http.post(f"/spaces/{name}/write_many", json={"tuples": [["n", i, big] for i in range(10)]})
        assert pages(http, "f", template) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
        assert pages(http, "f", template, limit=5) == [[0, 1, 2], [3, 4]]
        assert pages(http, "l", template) == [[9, 8, 7], [6, 5, 4], [3, 2, 1], [0]]
        # A random space answers every match once (each answer shuffled).
        shuffled = pages(http, "r", template)
        assert len(shuffled) == 4
        seen = list(itertools.chain(*shuffled))
        assert sorted(seen) == list(range(10))
        chosen = list(itertools.chain(*pages(http, "r", template, limit=5)))
        assert len(set(chosen)) == 5

        # A cursor is a place in the order: what is written after it is met (FIFO), what
        # is taken is not, nothing twice.
        first = http.post("/spaces/f/read_all", json={"template": template}).json()
        http.post("/spaces/f/take", json={"template": ["n", 4, ANY]})
        http.post("/spaces/f/write", json={"tuple": ["n", 10, big]})
        rest = http.post("/spaces/f/read_all", json={"template": template, "cursor": first["cursor"]})
        assert [t[1] for t in rest.json()["tuples"]] == [3, 5, 6]
        assert pages(http, "f", template) == [[0, 1, 2], [3, 5, 6], [7, 8, 9], [10]]
        newest = http.post("/spaces/l/read_all", json={"template": template}).json()
        http.post("/spaces/l/write", json={"tuple": ["n", 10, big]})
        rest = http.post("/spaces/l/read_all", json={"template": template, "cursor": newest["cursor"]})
        assert [t[1] for t in rest.json()["tuples"]] == [6, 5, 4]

        # Small tuples are measured by groups: a group is cut where its tuples pass the limit.
        mixed = (
            [["n", i, ""] for i in range(20)] + [["n", 99, "y" * 900]] + [["n", i, ""] for i in range(20, 25)]
        )
        http.post("/spaces/v/write_many", json={"tuples": mixed})
        walked = pages(http, "v", template)
        assert walked[0] == list(range(20))
        assert list(itertools.chain(*walked)) == [t[1] for t in mixed]

        # A tuple larger than max_answer is answered alone.
        http.post("/spaces/f/write", json={"tuple": ["n", 11, "y" * 2000]})
        assert pages(http, "f", ["n", 11, ANY]) == [[11]]

        for bad in ("abc", "", 5, "1" * 21, "\u0663"):
            error(
                http.post("/spaces/f/read_all", json={"template": template, "cursor": bad}),
                400,
                "bad_request",
            )


def test_take_all_answers_are_bounded_in_bytes_and_taken_again(tmp_path: Path) -> None:
    with running(limits=ServerLimits(max_answer=1000)) as server, client(server) as http:
        big = "x" * 300
        http.post("/spaces/s/write_many", json={"tuples": [["n", i, big] for i in range(10)]})
        template = ["n", ANY, ANY]
        taken = http.post("/spaces/s/take_all", json={"template": template, "limit": 4}).json()
        assert [t[1] for t in taken["tuples"]] == [0, 1, 2]
        assert taken["more"] is True
        assert "cursor" not in taken
        assert stats(http, "s")["tuples"] == 7
        claimed = http.post("/spaces/s/take_all", json={"template": template, "claim": True}).json()
        assert [t[1] for t in claimed["tuples"]] == [3, 4, 5]
        assert claimed["more"] is True
        assert http.post(f"/spaces/s/claims/{claimed['claim']['id']}/confirm").status_code == 204

        tx = http.post("/spaces/s/transactions", json={"lease": 30}).json()
        base = f"/spaces/s/transactions/{tx['id']}"
        read = http.post(f"{base}/read_all", json={"template": template}).json()
        assert ([t[1] for t in read["tuples"]], read["more"]) == ([6, 7, 8], True)
        assert "cursor" not in read
        taken = http.post(f"{base}/take_all", json={"template": template}).json()
        assert ([t[1] for t in taken["tuples"]], taken["more"]) == ([6, 7, 8], True)
        assert http.post(f"{base}/take_all", json={"template": template}).json() == {
            "tuples": [["n", 9, big]]
        }
        assert http.post(f"{base}/commit").status_code == 204
        assert stats(http, "s")["tuples"] == 0


# -- leases -------------------------------------------------------------------------------------


def test_renew_and_cancel_a_lease(http: httpx.Client) -> None:
    lease = http.post("/spaces/s/write", json={"tuple": ["p"], "lease": 30}).json()["lease"]
    r = http.post(f"/spaces/s/leases/{lease['id']}/renew", json={"lease": None})
    assert r.json() == {"expires_at": None}
    r = http.post(f"/spaces/s/leases/{lease['id']}/renew", json={"lease": 100})
    assert r.json()["expires_at"] > time.time() + 50
    assert stats(http, "s")["leased_tuples"] == 1
    assert http.delete(f"/spaces/s/leases/{lease['id']}").status_code == 204
    assert all_tuples(http, "s", 1) == []
    error(http.delete(f"/spaces/s/leases/{lease['id']}"), 404, "unknown_lease")
    error(http.post(f"/spaces/s/leases/{lease['id']}/renew", json={"lease": 1}), 404, "unknown_lease")
    error(http.post("/spaces/s/leases/nope/renew", json={"lease": 1}), 400, "bad_request")


def test_a_lease_runs_out(http: httpx.Client) -> None:
    http.post("/spaces/s/write", json={"tuple": ["short"], "lease": 0.05})
    wait_until(lambda: all_tuples(http, "s", 1) == [], "the lease to run out")
    assert stats(http, "s")["expired"] == 1


# -- claims ---------------------------------------------------------------------------------------


@pytest.fixture
def short_claims(tmp_path: Path) -> Iterator[Server]:
    with running(tmp_path / "data", long_poll=5.0, claim_lease=1.0) as s:
        yield s


def test_an_unconfirmed_claim_returns_the_tuple_to_its_place(short_claims: Server) -> None:
    with client(short_claims) as http:
        http.post("/spaces/s/write_many", json={"tuples": [["job", 1], ["job", 2]]})
        r = http.post("/spaces/s/take", json={"template": ["job", ANY], "claim": True}).json()
        assert r["tuple"] == ["job", 1]
        assert isinstance(r["claim"]["id"], str)
        assert len(r["claim"]["id"]) >= 16
        assert all_tuples(http, "s", 2) == [["job", 2]]
        wait_until(lambda: len(all_tuples(http, "s", 2)) == 2, "the claim to run out")
        assert all_tuples(http, "s", 2) == [["job", 1], ["job", 2]]
        error(http.post(f"/spaces/s/claims/{r['claim']['id']}/confirm"), 404, "unknown_claim")
        assert http.post(f"/spaces/s/claims/{r['claim']['id']}/release").status_code == 204


def test_a_confirmed_claim_is_final(short_claims: Server) -> None:
    with client(short_claims) as http:
        http.post("/spaces/s/write", json={"tuple": ["job", 1]})
        claim = http.post("/spaces/s/take", json={"template": ["job", ANY], "claim": True}).json()["claim"]
        assert http.post(f"/spaces/s/claims/{claim['id']}/confirm").status_code == 204
        assert http.post(f"/spaces/s/claims/{claim['id']}/confirm").status_code == 204
        error(http.post(f"/spaces/s/claims/{claim['id']}/release"), 409, "transaction_ended")
        # Nothing holds the tuple any more, so nothing can bring it back.
        assert stats(http, "s")["transactions"] == 0
        assert all_tuples(http, "s", 2) == []


def test_confirmations_ride_on_the_next_take(http: httpx.Client) -> None:
    http.post("/spaces/s/write_many", json={"tuples": [["job", 1], ["job", 2], ["job", 3]]})
    take = {"template": ["job", ANY], "claim": True}
    gone = http.post("/spaces/s/take", json=take).json()
    assert gone["tuple"] == ["job", 1]
    http.post(f"/spaces/s/claims/{gone['claim']['id']}/release")
    first = http.post("/spaces/s/take", json=take).json()
    assert first["tuple"] == ["job", 1]
    second = http.post(
        "/spaces/s/take", json={**take, "confirm": [first["claim"]["id"], gone["claim"]["id"]]}
    )
    assert second.json()["tuple"] == ["job", 2]
    assert second.json()["unconfirmed"] == [gone["claim"]["id"]]
    third = http.post("/spaces/s/take", json={**take, "confirm": [second.json()["claim"]["id"]]}).json()
    assert third["tuple"] == ["job", 3]
    assert "unconfirmed" not in third
    http.post(f"/spaces/s/claims/{third['claim']['id']}/release")
    assert all_tuples(http, "s", 2) == [["job", 3]]


def test_release_returns_the_tuple_now(server: Server, http: httpx.Client) -> None:
    http.post("/spaces/s/write", json={"tuple": ["job", 1]})
    claim = http.post("/spaces/s/take", json={"template": ["job", ANY], "claim": True}).json()["claim"]
    assert http.post(f"/spaces/s/claims/{claim['id']}/release").status_code == 204
    assert all_tuples(http, "s", 2) == [["job", 1]]
    assert http.post(f"/spaces/s/claims/{claim['id']}/release").status_code == 204
    error(http.post("/spaces/s/claims/no-such-claim/release"), 404, "unknown_claim")


def test_a_waiting_claimed_take_gets_a_later_write(http: httpx.Client) -> None:
    http.put("/spaces/s")
    waiting = spawn(
        http.post, "/spaces/s/take", json={"template": ["job", ANY], "claim": True, "timeout": 60}
    )
    wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take to wait")
    http.post("/spaces/s/write", json={"tuple": ["job", 7]})
    r = waiting.result(PATIENCE).json()
    assert r["tuple"] == ["job", 7]
    assert http.post(f"/spaces/s/claims/{r['claim']['id']}/confirm").status_code == 204
    assert stats(http, "s")["tuples"] == 0


def test_a_waiting_claimed_take_all_gets_a_write_many_under_one_claim(http: httpx.Client) -> None:
    http.put("/spaces/s")
    http.post("/spaces/s/write", json={"tuple": ["other", 0]})
    body = {"template": ["job", ANY], "claim": True, "timeout": 60, "limit": 3}
    waiting = spawn(http.post, "/spaces/s/take_all", json=body)
    wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take_all to wait")
    http.post("/spaces/s/write_many", json={"tuples": [["job", i] for i in range(4)]})
    r = waiting.result(PATIENCE).json()
    assert r["tuples"] == [["job", 0], ["job", 1], ["job", 2]]
    assert all_tuples(http, "s", 2) == [["other", 0], ["job", 3]]
    assert http.post(f"/spaces/s/claims/{r['claim']['id']}/release").status_code == 204
    assert all_tuples(http, "s", 2) == [["other", 0], ["job", 0], ["job", 1], ["job", 2], ["job", 3]]


def _send_and_drop(
    server: Server, body: dict[str, Any], http: httpx.Client, space: str, operation: str = "take"
) -> None:
    """Send a take that waits, then close the connection while it waits."""
    data = json.dumps(body).encode()
    request = (
        f"POST /spaces/{space}/{operation} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock:
        sock.sendall(request)
        wait_until(lambda: stats(http, space)["waiters"] == 1, "the take to wait")
    wait_until(lambda: stats(http, space)["waiters"] == 0, "the wait to be withdrawn")


@pytest.mark.parametrize("operation", ["take", "take_all"])
@pytest.mark.parametrize("claim", [False, True])
def test_a_connection_cut_during_a_long_poll_take_loses_nothing(
    server: Server, http: httpx.Client, claim: bool, operation: str
) -> None:
    http.put("/spaces/s")
    body = {"template": ["job", ANY], "timeout": None, "claim": claim}
    _send_and_drop(server, body, http, "s", operation)
    http.post("/spaces/s/write", json={"tuple": ["job", 1]})
    assert all_tuples(http, "s", 2) == [["job", 1]]
    assert stats(http, "s")["transactions"] == 0


# -- transactions ---------------------------------------------------------------------------------


def test_a_committed_transaction(http: httpx.Client) -> None:
    http.post("/spaces/s/write", json={"tuple": ["job", 1]})
    tx = http.post("/spaces/s/transactions", json={"lease": 30}).json()
    assert tx["expires_at"] > time.time()
    base = f"/spaces/s/transactions/{tx['id']}"
    assert http.post(f"{base}/take", json={"template": ["job", ANY]}).json() == {"tuple": ["job", 1]}
    assert http.post(f"{base}/write", json={"tuple": ["result", 1]}).status_code == 204
    assert http.post(f"{base}/write_many", json={"tuples": [["log", 1]]}).status_code == 204
    assert http.post(f"{base}/read", json={"template": ["result", ANY]}).json() == {"tuple": ["result", 1]}
    assert http.post(f"{base}/count", json={"template": [ANY, ANY]}).json() == {"count": 2}
    assert http.post(f"{base}/read_all", json={"template": ["log", ANY]}).json() == {"tuples": [["log", 1]]}
    assert all_tuples(http, "s", 2) == []  # nothing visible outside before commit
    assert http.post(f"{base}/renew", json={"lease": 60}).json()["expires_at"] > time.time() + 30
    assert http.post(f"{base}/commit").status_code == 204
    assert all_tuples(http, "s", 2) == [["result", 1], ["log", 1]]
    error(http.post(f"{base}/commit"), 409, "transaction_ended")


def test_an_aborted_transaction_puts_back_what_it_took(http: httpx.Client) -> None:
    http.post("/spaces/s/write_many", json={"tuples": [["job", 1], ["job", 2]]})
    tx = http.post("/spaces/s/transactions").json()
    base = f"/spaces/s/transactions/{tx['id']}"
    assert http.post(f"{base}/take_all", json={"template": ["job", ANY]}).json() == {
        "tuples": [["job", 1], ["job", 2]]
    }
    http.post(f"{base}/write", json={"tuple": ["result", 1]})
    assert http.post(f"{base}/abort").status_code == 204
    assert all_tuples(http, "s", 2) == [["job", 1], ["job", 2]]
    error(http.post(f"{base}/take", json={"template": ["job", ANY]}), 409, "transaction_aborted")


def test_a_vanished_clients_transaction_aborts_by_its_lease(http: httpx.Client) -> None:
    http.post("/spaces/s/write", json={"tuple": ["job", 1]})
    tx = http.post("/spaces/s/transactions", json={"lease": 1.0}).json()
    taken = http.post(f"/spaces/s/transactions/{tx['id']}/take", json={"template": ["job", ANY]})
    assert taken.json() == {"tuple": ["job", 1]}
    wait_until(lambda: all_tuples(http, "s", 2) == [["job", 1]], "the transaction to abort")
    error(http.post(f"/spaces/s/transactions/{tx['id']}/commit"), 409, "transaction_aborted")


def test_a_transaction_waits_like_its_twin(http: httpx.Client) -> None:
    tx = http.post("/spaces/s/transactions").json()
    base = f"/spaces/s/transactions/{tx['id']}"
    waiting = spawn(http.post, f"{base}/take", json={"template": ["job", ANY], "timeout": 60})
    wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take to wait")
    http.post("/spaces/s/write", json={"tuple": ["job", 1]})
    assert waiting.result(PATIENCE).json() == {"tuple": ["job", 1]}
    http.post(f"{base}/abort")
    assert all_tuples(http, "s", 2) == [["job", 1]]


def test_a_transaction_take_all_waits_and_its_abort_puts_back(http: httpx.Client) -> None:
    tx = http.post("/spaces/s/transactions").json()
    base = f"/spaces/s/transactions/{tx['id']}"
    waiting = spawn(http.post, f"{base}/take_all", json={"template": ["job", ANY], "timeout": 60})
    wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take_all to wait")
    http.post("/spaces/s/write_many", json={"tuples": [["job", 1], ["job", 2]]})
    assert waiting.result(PATIENCE).json() == {"tuples": [["job", 1], ["job", 2]]}
    assert all_tuples(http, "s", 2) == []
    http.post(f"{base}/abort")
    assert all_tuples(http, "s", 2) == [["job", 1], ["job", 2]]


def test_unknown_transactions(http: httpx.Client) -> None:
    http.put("/spaces/s")
    error(http.post("/spaces/s/transactions/nope/commit"), 404, "unknown_transaction")
    error(http.post("/spaces/s/transactions/nope/read", json={"template": []}), 404, "unknown_transaction")
    error(http.post("/spaces/s/transactions", json={"lease": None}), 400, "invalid_value")
    error(http.post("/spaces/s/transactions", json={"lease": -1}), 400, "invalid_value")


# -- events -----------------------------------------------------------------------------------


class Events:
    """Reads a Server-Sent Events stream in a thread: ``(id, event, data)`` items,
    ``("", "comment", text)`` for comments, and None when the stream ends.

    It speaks HTTP over its own socket, so that :meth:`close` cuts the connection
    at once, as a client that goes away does.
    """

    def __init__(self, server: Server, path: str, headers: dict[str, str] | None = None) -> None:
        self.items: queue.Queue[tuple[str, str, Any] | None] = queue.Queue()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.sock.settimeout(None)
        self._file = self.sock.makefile("rb")
        status_line = self._file.readline().decode()
        self.status = int(status_line.split()[1])
        while self._file.readline().strip():
            pass
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        """The body, undoing the chunked transfer encoding."""
        while True:
            size = int(self._file.readline().split(b";")[0], 16)
            if size == 0:
                return
            yield self._file.read(size)
            self._file.readline()

    def _lines(self) -> Iterator[str]:
        pending = b""
        for chunk in self._chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode()

    def _run(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self._lines():
                if line.startswith(":"):
                    self.items.put(("", "comment", line[1:].strip()))
                elif line:
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")
                elif fields:
                    self.items.put(
                        (fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"]))
                    )
                    fields = {}
        except (OSError, ValueError):  # the connection was cut
            pass
        finally:
            self.items.put(None)

    def next(self, skip_comments: bool = True) -> tuple[str, str, Any] | None:
        while True:
            item = self.items.get(timeout=PATIENCE)
            if item is None or not skip_comments or item[1] != "comment":
                return item

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(PATIENCE)
        self._file.close()
        self.sock.close()


def events_path(space: str, template: list[Any], **params: Any) -> str:
    query = urllib.parse.urlencode({"template": json.dumps(template), **params})
    return f"/spaces/{space}/events?{query}"


def test_events_arrive_and_resume_with_last_event_id(server: Server, http: httpx.Client) -> None:
    http.put("/spaces/s")
    stream = Events(server, events_path("s", ["job", ANY]))
    try:
        assert stream.next(skip_comments=False) == ("", "comment", "subscribed")
        http.post("/spaces/s/write", json={"tuple": ["job", 1]})
        http.post("/spaces/s/write", json={"tuple": ["other"]})
        http.post("/spaces/s/take", json={"template": ["job", 1]})
        first = stream.next()
        second = stream.next()
        assert first is not None
        assert second is not None
        assert first[:2] == ("1", "write")
        assert first[2]["tuple"] == ["job", 1]
        assert first[2]["seq"] == 1
        assert first[2]["kind"] == "write"
        assert isinstance(first[2]["time"], float)
        assert second[:2] == ("3", "take")
    finally:
        stream.close()
    http.post("/spaces/s/write", json={"tuple": ["job", 2]})  # missed while away
    resumed = Events(server, events_path("s", ["job", ANY]), {"Last-Event-ID": "1"})
    try:
        assert [resumed.next()[:2] for _ in range(2)] == [("3", "take"), ("4", "write")]  # type: ignore[index]
    finally:
        resumed.close()
    again = Events(server, events_path("s", ["job", ANY], since=3, events="write"))
    try:
        item = again.next()
        assert item is not None
        assert item[:2] == ("4", "write")
    finally:
        again.close()


def test_a_stream_with_existing_sends_the_tuples_present_first_and_never_again_on_resuming(
    server: Server, http: httpx.Client
) -> None:
    http.put("/spaces/s")
    for n in (1, 2):
        http.post("/spaces/s/write", json={"tuple": ["job", n]})
    http.post("/spaces/s/write", json={"tuple": ["other", 0]})
    stream = Events(server, events_path("s", ["job", ANY], existing="true", events="write"))
    try:
        assert stream.status == 200
        assert stream.next(skip_comments=False) == ("", "comment", "subscribed")
        present = [stream.next() for _ in range(2)]
        assert [(p[0], p[1], p[2]["tuple"], p[2]["seq"]) for p in present] == [  # type: ignore[index]
            ("3", "present", ["job", 1], 3),
            ("3", "present", ["job", 2], 3),
        ]
        http.post("/spaces/s/write", json={"tuple": ["job", 3]})
        assert stream.next()[:2] == ("4", "write")  # type: ignore[index]
    finally:
        stream.close()
    http.post("/spaces/s/write", json={"tuple": ["job", 4]})  # written while away
    # A reconnect names the last event received: the live events go on, nothing present again.
    resumed = Events(server, events_path("s", ["job", ANY], existing="true"), {"Last-Event-ID": "3"})
    try:
        assert [resumed.next()[:2] for _ in range(2)] == [("4", "write"), ("5", "write")]  # type: ignore[index]
    finally:
        resumed.close()
    query = {"template": '["job", 1]', "existing": "true", "since": "1"}
    refused = http.get("/spaces/s/events", params=query)
    assert error(refused, 400, "bad_request")["field"] == "existing"
    refused = http.get("/spaces/s/events", params={"template": '["job", 1]', "existing": "yes"})
    assert error(refused, 400, "bad_request")["field"] == "existing"


def test_the_event_log_of_a_served_space_is_bounded_in_bytes(server: Server, http: httpx.Client) -> None:
    field = error(http.put("/spaces/s", json={"event_retention_bytes": -1}), 400, "bad_request")["field"]
    assert field == "event_retention_bytes"
    created = http.put("/spaces/s", json={"event_retention_bytes": 1 << 20, "store": "memory"})
    assert created.json()["options"]["event_retention_bytes"] == 1 << 20
    payload = "x" * 300_000
    for i in range(10):  # 3 MB written and taken
        http.post("/spaces/s/write", json={"tuple": ["big", i, payload]})
        assert http.post("/spaces/s/take", json={"template": ["big", i, ANY]}).json()["tuple"] is not None
    stats = http.get("/spaces/s").json()["statistics"]
    assert stats["logged_bytes"] <= 1 << 20
    assert stats["logged_events"] < 10
    oldest = stats["last_event"] - stats["logged_events"] + 1
    stream = Events(server, events_path("s", ["big", ANY, ANY], since=0))
    try:
        assert stream.next() == (str(oldest - 1), "lost", {"first_missing": 1, "oldest_available": oldest})
    finally:
        stream.close()


def test_a_resume_past_the_event_log_says_what_was_lost(server: Server, http: httpx.Client) -> None:
    http.put("/spaces/s", json={"event_retention": 2})
    http.post("/spaces/s/write_many", json={"tuples": [["n", i] for i in range(5)]})
    stream = Events(server, events_path("s", ["n", ANY], since=1))
    try:
        assert stream.next() == ("3", "lost", {"first_missing": 2, "oldest_available": 4})
        assert [stream.next()[0] for _ in range(2)] == ["4", "5"]  # type: ignore[index]
    finally:
        stream.close()


def test_idle_streams_get_keep_alive_comments_and_end_with_their_space(tmp_path: Path) -> None:
    with running(heartbeat=0.02) as server, client(server) as http:
        http.put("/spaces/s")
        stream = Events(server, events_path("s", [ANY]))
        try:
            stream.next(skip_comments=False)
            assert stream.next(skip_comments=False) == ("", "comment", "keep-alive")
            http.delete("/spaces/s")
            while stream.next(skip_comments=True) is not None:
                pass
        finally:
            stream.close()


def test_a_closed_stream_ends_its_subscription(server: Server, http: httpx.Client) -> None:
    http.put("/spaces/s")
    stream = Events(server, events_path("s", [ANY]))
    assert stats(http, "s")["subscribers"] == 1
    stream.close()
    wait_until(lambda: stats(http, "s")["subscribers"] == 0, "the subscription to end")


def test_event_requests_are_checked(server: Server, http: httpx.Client) -> None:
    http.put("/spaces/s")
    error(http.get("/spaces/s/events"), 400, "bad_request")
    error(http.get("/spaces/s/events", params={"template": "[1"}), 400, "wire_error")
    error(http.get("/spaces/s/events", params={"template": '[{"$nope": 1}]'}), 400, "wire_error")
    error(
        http.get("/spaces/s/events", params={"template": "[]", "events": "write,explode"}), 400, "bad_request"
    )
    error(http.get("/spaces/s/events", params={"template": "[]", "since": "99"}), 400, "invalid_value")
    error(http.get("/spaces/s/events", params={"template": "[]", "since": "-1"}), 400, "bad_request")
    # Digits other than ASCII ones are not a number here (int() fails on some of them).
    for digit in ("\u00b2", "\u0661"):
        refused = error(
            http.get("/spaces/s/events", params={"template": "[]", "since": digit}), 400, "bad_request"
        )
        assert refused["field"] == "since"
        refused = error(
            http.get("/spaces/s/records/events", params={"ref": "r", "id": digit}), 400, "bad_request"
        )
        assert refused["field"] == "id"
    given_twice = [("template", "[]"), ("since", "0"), ("since", "1")]
    twice = error(http.get("/spaces/s/events", params=given_twice), 400, "bad_request")
    assert twice["field"] == "since"
    assert "more than once" in twice["message"]
    assert stats(http, "s")["subscribers"] == 0


# -- authentication ------------------------------------------------------------------------------

ADMIN = "admin-secret-0123456789"
WORKER = "worker-secret-0123456789"
READER = "reader-secret-0123456789"
TOKENS = {
    "tokens": [
        {"name": "ops", "token": ADMIN, "admin": True},
        {"name": "worker", "token": WORKER, "spaces": {"jobs": ["read", "take", "write", "subscribe"]}},
        {"name": "reader", "token": READER, "spaces": {"*": ["read"]}},
    ]
}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    with running(tmp_path / "data", tokens=path, long_poll=5.0) as s:
        yield s, path


def test_requests_without_a_good_token_are_refused(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, ADMIN) as admin:
        admin.put("/spaces/jobs")
    with client(server) as anonymous:
        assert anonymous.get("/health").status_code == 200
        error(anonymous.post("/spaces/jobs/write", json={"tuple": ["x"]}), 401, "unauthorized")
        error(anonymous.get("/spaces/jobs"), 401, "unauthorized")
        error(anonymous.get("/metrics"), 401, "unauthorized")
    with client(server, "not-a-token-at-all") as stranger:
        error(stranger.get("/spaces"), 401, "unauthorized")
    with httpx.Client(base_url=server.url, headers={"Authorization": "Basic abc"}) as basic:
        error(basic.get("/spaces"), 401, "unauthorized")
    with client(server, READER) as reader:
        assert reader.get("/spaces/jobs").status_code == 200
        error(reader.post("/spaces/jobs/write", json={"tuple": ["x"]}), 403, "forbidden")
        error(reader.post("/spaces/jobs/take", json={"template": ["x"]}), 403, "forbidden")
        error(reader.put("/spaces/other"), 403, "forbidden")
        error(reader.get("/metrics"), 403, "forbidden")
        error(reader.get("/tokens"), 403, "forbidden")
    with client(server, WORKER) as worker:
        assert worker.post("/spaces/jobs/write", json={"tuple": ["x"]}).status_code == 200
        assert worker.post("/spaces/jobs/take", json={"template": ["x"]}).json() == {"tuple": ["x"]}
        error(worker.delete("/spaces/jobs"), 403, "forbidden")
        error(worker.get("/spaces/other"), 403, "forbidden")
        assert [s["name"] for s in worker.get("/spaces").json()["spaces"]] == ["jobs"]


def test_only_a_token_that_may_create_a_space_creates_it_on_first_use(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, WORKER) as worker:
        error(worker.post("/spaces/jobs/write", json={"tuple": ["x"]}), 404, "not_found")
    with client(server, ADMIN) as admin:
        assert admin.post("/spaces/new/write", json={"tuple": ["x"]}).status_code == 200
        assert admin.get("/metrics").status_code == 200


def test_anonymous_permissions_per_space(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, ADMIN) as admin:
        admin.put("/spaces/public", json={"anonymous": ["read", "subscribe"]})
        admin.post("/spaces/public/write", json={"tuple": ["news"]})
    with client(server) as anonymous:
        assert anonymous.post("/spaces/public/read", json={"template": ["news"]}).json() == {
            "tuple": ["news"]
        }
        error(anonymous.post("/spaces/public/take", json={"template": ["news"]}), 401, "unauthorized")
        assert [s["name"] for s in anonymous.get("/spaces").json()["spaces"]] == ["public"]


def test_the_token_api_and_revocation_take_effect_at_once(secured: tuple[Server, Path]) -> None:
    server, path = secured
    with client(server, ADMIN) as admin:
        admin.put("/spaces/jobs")
        r = admin.post("/tokens", json={"name": "temp", "spaces": {"jobs": ["read"]}})
        assert r.status_code == 201, r.text
        secret = r.json()["token"]
        assert r.json()["spaces"] == {"jobs": ["read"]}
        error(admin.post("/tokens", json={"name": "temp"}), 409, "token_exists")
        error(admin.post("/tokens", json={"name": "x", "spaces": {"jobs": ["fly"]}}), 400, "bad_request")
        error(admin.post("/tokens", json={"name": "x", "token": "short"}), 400, "bad_request")
        names = [t["name"] for t in admin.get("/tokens").json()["tokens"]]
        assert names == ["ops", "reader", "temp", "worker"]
        assert all("token" not in t for t in admin.get("/tokens").json()["tokens"])
        with client(server, secret) as temp:
            assert temp.get("/spaces/jobs").status_code == 200
            assert admin.delete("/tokens/temp").status_code == 204
            error(temp.get("/spaces/jobs"), 401, "unauthorized")
        error(admin.delete("/tokens/temp"), 404, "not_found")
        assert admin.delete("/tokens/worker").status_code == 204
    saved = json.loads(path.read_text())
    assert [t["name"] for t in saved["tokens"]] == ["ops", "reader"]


def test_revoking_a_token_ends_its_waiting_takes_and_its_streams(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, ADMIN) as admin, client(server, WORKER) as worker:
        admin.put("/spaces/jobs")
        take = {"template": ["job", ANY], "timeout": None}
        waiting = [
            spawn(worker.post, "/spaces/jobs/take", json=take),
            spawn(worker.post, "/spaces/jobs/take", json={**take, "claim": True}),
        ]
        bearer = {"Authorization": f"Bearer {WORKER}"}
        streams = [
            Events(server, events_path("jobs", ["job", ANY]), bearer),
            Events(server, "/spaces/jobs/records/events", bearer),
        ]
        try:
            for stream in streams:
                assert stream.status == 200
                assert stream.next(skip_comments=False) == ("", "comment", "subscribed")
            wait_until(lambda: stats(admin, "jobs")["waiters"] == 2, "the takes to wait")
            assert admin.delete("/tokens/worker").status_code == 204
            for call in waiting:
                assert error(call.result(PATIENCE), 401, "unauthorized")["message"] == "the token was revoked"
            for stream in streams:
                assert stream.next() is None  # the stream ended
        finally:
            for stream in streams:
                stream.close()
        admin.post("/spaces/jobs/write", json={"tuple": ["job", 1]})
        assert all_tuples(admin, "jobs", 2) == [["job", 1]]
        assert stats(admin, "jobs")["subscribers"] == 0
        assert len(server.api.token_work) == 0


def test_a_request_whose_token_is_revoked_before_it_waits_does_not_wait(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, ADMIN) as admin, client(server, WORKER) as worker:
        admin.put("/spaces/jobs")
        # A body that has not all arrived holds the request after its token was checked.
        body = json.dumps({"template": ["job"], "timeout": None}).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock:
            head = (
                f"POST /spaces/jobs/take HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {WORKER}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body[:5])
            wait_until(lambda: server.api.requests >= 2, "the request to begin")
            assert admin.delete("/tokens/worker").status_code == 204
            sock.sendall(body[5:])
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401"), answer
        assert worker.post("/spaces/jobs/take", json={"template": ["job"]}).status_code == 401


def test_the_token_file_is_read_again_at_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    with running(tokens=path) as server, client(server, ADMIN) as admin:
        secret = admin.post("/tokens", json={"name": "kept", "admin": True}).json()["token"]
    assert secret not in path.read_text()  # only its digest is stored
    with running(tokens=path) as server, client(server, secret) as kept:
        assert kept.get("/tokens").status_code == 200


def test_a_transaction_belongs_to_its_token(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, ADMIN) as admin, client(server, WORKER) as worker:
        admin.put("/spaces/jobs")
        tx = worker.post("/spaces/jobs/transactions").json()
        error(admin.post(f"/spaces/jobs/transactions/{tx['id']}/commit"), 404, "unknown_transaction")
        assert worker.post(f"/spaces/jobs/transactions/{tx['id']}/commit").status_code == 204
        # How it ended is told to its token only.
        error(admin.post(f"/spaces/jobs/transactions/{tx['id']}/commit"), 404, "unknown_transaction")
        error(worker.post(f"/spaces/jobs/transactions/{tx['id']}/commit"), 409, "transaction_ended")


def test_a_claim_belongs_to_its_token(secured: tuple[Server, Path]) -> None:
    server, _ = secured
    with client(server, ADMIN) as admin, client(server, WORKER) as worker:
        admin.put("/spaces/jobs")
        worker.post("/spaces/jobs/write", json={"tuple": ["job", 1]})
        claim = worker.post("/spaces/jobs/take", json={"template": ["job", ANY], "claim": True}).json()[
            "claim"
        ]
        error(admin.post(f"/spaces/jobs/claims/{claim['id']}/confirm"), 404, "unknown_claim")
        assert worker.post(f"/spaces/jobs/claims/{claim['id']}/confirm").status_code == 204
        # Once confirmed, another token is told nothing of it: neither confirmed nor final.
        error(admin.post(f"/spaces/jobs/claims/{claim['id']}/confirm"), 404, "unknown_claim")
        error(admin.post(f"/spaces/jobs/claims/{claim['id']}/release"), 404, "unknown_claim")
        assert worker.post(f"/spaces/jobs/claims/{claim['id']}/confirm").status_code == 204
        error(worker.post(f"/spaces/jobs/claims/{claim['id']}/release"), 409, "transaction_ended")


def test_without_tokens_every_request_may_do_everything(server: Server, http: httpx.Client) -> None:
    error(http.get("/tokens"), 404, "not_found")
    with client(server, "any-token-at-all") as other:
        assert other.post("/spaces/s/write", json={"tuple": ["x"]}).status_code == 200
        assert other.delete("/spaces/s").status_code == 204


def test_bad_token_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tokens"):
        create_app(tokens={"tokens": [{"name": "x", "token": "short"}]})
    with pytest.raises(ValueError, match="two tokens"):
        create_app(tokens={"tokens": [{"name": "x", "token": ADMIN}, {"name": "x", "token": WORKER}]})
    with pytest.raises(ValueError, match="cannot read"):
        create_app(tokens=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        create_app(tokens=tmp_path / "bad.json")


# -- browsers and the network -------------------------------------------------------------------

EVIL = "http://evil.example"


def test_a_page_of_another_origin_cannot_make_the_server_act(tmp_path: Path) -> None:
    with running(store="memory", cors_origins=["https://app.example"]) as server, client(server) as http:
        own = f"http://127.0.0.1:{server.port}"
        # What any page can send without asking first: a text/plain POST.
        plain = {"Origin": EVIL, "Content-Type": "text/plain"}
        refused = error(
            http.post("/spaces/s/write", content='{"tuple": ["x"]}', headers=plain), 403, "forbidden"
        )
        assert refused["field"] == "Origin"
        assert EVIL in refused["message"]
        error(http.post("/spaces/s/write", json={"tuple": ["x"]}, headers={"Origin": EVIL}), 403, "forbidden")
        error(
            http.post("/spaces/s/take", json={"template": [ANY]}, headers={"Origin": "null"}),
            403,
            "forbidden",
        )
        error(
            http.get("/spaces/s/events", params={"template": "[]"}, headers={"Origin": EVIL}),
            403,
            "forbidden",
        )
        assert http.get("/spaces").json() == {"spaces": []}  # nothing was created
        assert http.post("/spaces/s/write", json={"tuple": ["x"]}, headers={"Origin": own}).status_code == 200
        allowed = http.post(
            "/spaces/s/write", json={"tuple": ["x"]}, headers={"Origin": "https://app.example"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert http.post("/spaces/s/count", json={"template": [ANY]}).json() == {"count": 2}
    with running(store="memory") as server, client(server) as http:
        origin = {"Origin": "https://app.example"}
        error(http.post("/spaces/s/write", json={"tuple": ["x"]}, headers=origin), 403, "forbidden")
        local = {"Host": f"localhost:{server.port}", "Origin": f"http://localhost:{server.port}"}
        assert http.post("/spaces/s/write", json={"tuple": ["x"]}, headers=local).status_code == 200


def test_a_request_body_is_json(server: Server, http: httpx.Client) -> None:
    content = json.dumps({"tuple": ["x"]})
    for headers in (
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {},
    ):
        refused = error(
            http.post("/spaces/s/write", content=content, headers=headers), 415, "unsupported_media_type"
        )
        assert refused["field"] == "Content-Type"
        assert "application/json" in refused["message"]
    refused = error(
        http.put("/spaces/t", content=b"{}", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert "'text/plain'" in refused["message"]
    assert http.get("/spaces").json() == {"spaces": []}
    typed = {"Content-Type": "application/json; charset=utf-8"}
    assert http.post("/spaces/s/write", content=content, headers=typed).status_code == 200
    # Requests without a body need no type.
    assert http.put("/spaces/t").status_code == 201
    assert http.delete("/spaces/t").status_code == 204
    assert http.post("/spaces/s/count", json={"template": [ANY]}).json() == {"count": 1}


def test_only_the_hosts_the_server_serves_are_answered(tmp_path: Path) -> None:
    with running(store="memory", allowed_hosts=["tuples.example"]) as server, client(server) as http:
        port = server.port
        for host in (
            "evil.example",
            f"evil.example:{port}",
            f"127.0.0.1.evil.example:{port}",
            "localhost.evil",
        ):
            refused = error(http.get("/health", headers={"Host": host}), 421, "misdirected_request")
            assert refused["field"] == "Host"
            assert "--allowed-host" in refused["message"]
        # A page of a rebound name that calls "its own" server is refused before anything acts.
        rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        error(
            http.post("/spaces/s/write", json={"tuple": ["x"]}, headers=rebound), 421, "misdirected_request"
        )
        served = (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "10.1.2.3:8765")
        for host in (*served, "tuples.example", f"Tuples.Example.:{port}"):
            assert http.get("/health", headers={"Host": host}).status_code == 200, host
        assert http.post("/spaces/s/count", json={"template": [ANY]}).json() == {"count": 0}
    with running(store="memory", allowed_hosts=["*"]) as server, client(server) as http:
        assert http.get("/health", headers={"Host": "any.example"}).status_code == 200
    with pytest.raises(ValueError, match="allowed host"):
        create_app(allowed_hosts=["tuples.example:8765"])


# -- limits and malformed input ------------------------------------------------------------------


def test_malformed_input_changes_nothing(http: httpx.Client) -> None:
    http.post("/spaces/s/write", json={"tuple": ["keep", 1]})
    before = all_tuples(http, "s", 2)
    bad = [
        ("write", b"{", 400, "wire_error", None),
        ("write", b"[]", 400, "bad_request", None),
        ("write", b"", 400, "bad_request", None),
        ("write", {"tuple": ["x", 1.5]}, 400, "wire_error", "tuple[1]"),
        ("write", {"tuple": ["x", {"$float": "NaN"}]}, 400, "wire_error", "tuple[1]"),
        ("write", {"tuple": ["x", {"$uri": ""}]}, 400, "invalid_value", "tuple[1]"),
        ("write", {"tuple": ["x", {"t": {"$bytes": "QR=="}}]}, 400, "wire_error", 'tuple[1]["t"]'),
        ("write", {"tuple": "x"}, 400, "wire_error", "tuple"),
        ("write", {"tuple": ["x"], "lease": -1}, 400, "invalid_value", "lease"),
        ("write", {"tuple": ["x"], "lease": "soon"}, 400, "bad_request", "lease"),
        ("write", {"tuple": ["x"], "colour": 1}, 400, "bad_request", "colour"),
        ("write", {}, 400, "bad_request", "tuple"),
        ("write_many", {"tuples": [["ok"], ["x", 2.5]]}, 400, "wire_error", "tuples[1][1]"),
        ("write_many", {"tuples": "x"}, 400, "bad_request", "tuples"),
        ("read", {"template": ["x", {"$regex": "("}]}, 400, "invalid_template", "template[1]"),
        ("read", {"template": ["x", {"$range": {}}]}, 400, "invalid_template", "template[1]"),
        ("take", {"template": ["x"], "timeout": -1}, 400, "invalid_value", "timeout"),
        ("take", {"template": ["x"], "claim": "yes"}, 400, "bad_request", "claim"),
        ("take", {"template": ["x"], "confirm": "id"}, 400, "bad_request", "confirm"),
        ("take", {"template": "x"}, 400, "wire_error", "template"),
        ("take_all", {"template": ["keep", ANY], "limit": -1}, 400, "bad_request", "limit"),
        ("replace", {"template": ["keep", ANY], "tuple": ["x", 0.5]}, 400, "wire_error", "tuple[1]"),
        ("write_if_absent", {"template": ["no"], "tuple": ["x", 0.5]}, 400, "wire_error", "tuple[1]"),
    ]
    for op, body, status, code, field in bad:
        if isinstance(body, bytes):
            r = http.post(f"/spaces/s/{op}", content=body, headers={"Content-Type": "application/json"})
        else:
            r = http.post(f"/spaces/s/{op}", json=body)
        assert error(r, status, code)["field"] == field, (op, body)
    assert all_tuples(http, "s", 2) == before
    assert all_tuples(http, "s", 1) == []
    assert stats(http, "s")["takes"] == 0


def test_wire_limits(tmp_path: Path) -> None:
    limits = ServerLimits(
        wire=ts.Limits(max_fields=4, max_depth=3, max_bytes=1000), max_body=2000, max_batch=3
    )
    with running(limits=limits) as server, client(server) as http:
        body = error(http.post("/spaces/s/write", json={"tuple": [1, 2, 3, 4, 5]}), 413, "value_too_large")
        assert (body["limit"], body["maximum"], body["field"]) == ("max_fields", 4, "tuple")
        body = error(http.post("/spaces/s/write", json={"tuple": [[[[1]]]]}), 413, "value_too_large")
        assert body["limit"] == "max_depth"
        body = error(http.post("/spaces/s/write", json={"tuple": ["x" * 1500]}), 413, "value_too_large")
        assert body["limit"] == "max_bytes"
        body = error(http.post("/spaces/s/write", json={"tuple": ["x" * 3000]}), 413, "value_too_large")
        assert (body["limit"], body["maximum"]) == ("max_body", 2000)
        body = error(http.post("/spaces/s/write_many", json={"tuples": [[1]] * 4}), 413, "value_too_large")
        assert (body["limit"], body["field"]) == ("max_batch", "tuples")
        chunked = http.post(
            "/spaces/s/write",
            content=iter([b'{"tuple": ["', b"x" * 2500, b'"]}']),
            headers={"Content-Type": "application/json"},
        )
        assert error(chunked, 413, "value_too_large")["limit"] == "max_body"
        assert all_tuples(http, "s", 1) == []


def test_waiting_calls_per_client_are_limited(tmp_path: Path) -> None:
    with running(limits=ServerLimits(max_waiting=1)) as server, client(server) as http:
        http.put("/spaces/s")
        waiting = spawn(http.post, "/spaces/s/take", json={"template": ["x"], "timeout": 60})
        wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take to wait")
        body = error(
            http.post("/spaces/s/read", json={"template": ["y"], "timeout": 60}), 429, "limit_reached"
        )
        assert (body["limit"], body["maximum"]) == ("max_waiting", 1)
        http.post("/spaces/s/write", json={"tuple": ["x"]})
        assert waiting.result(PATIENCE).json() == {"tuple": ["x"]}
        assert http.post("/spaces/s/read", json={"template": ["x"], "timeout": 0.01}).json() == {
            "tuple": None
        }


def test_subscriptions_and_transactions_per_client_are_limited(tmp_path: Path) -> None:
    limits = ServerLimits(max_subscriptions=1, max_transactions=1)
    with running(limits=limits) as server, client(server) as http:
        http.put("/spaces/s")
        stream = Events(server, events_path("s", [ANY]))
        try:
            body = error(http.get("/spaces/s/events", params={"template": "[]"}), 429, "limit_reached")
            assert body["limit"] == "max_subscriptions"
        finally:
            stream.close()
        tx = http.post("/spaces/s/transactions").json()
        body = error(http.post("/spaces/s/transactions"), 429, "limit_reached")
        assert body["limit"] == "max_transactions"
        http.post("/spaces/s/write", json={"tuple": ["x"]})
        error(http.post("/spaces/s/take", json={"template": ["x"], "claim": True}), 429, "limit_reached")
        http.post(f"/spaces/s/transactions/{tx['id']}/commit")
        assert http.post("/spaces/s/take", json={"template": ["x"], "claim": True}).json()["tuple"] == ["x"]


def test_requests_per_client_are_limited(tmp_path: Path) -> None:
    with running(limits=ServerLimits(rate=0.001, burst=3)) as server, client(server) as http:
        for _ in range(3):
            assert http.get("/spaces").status_code == 200
        r = http.get("/spaces")
        assert error(r, 429, "rate_limited")["limit"] == "rate"
        assert int(r.headers["Retry-After"]) >= 1


def test_requests_with_unknown_tokens_are_rate_limited_by_address() -> None:
    limits = ServerLimits(rate=0.001, burst=100)
    with running(tokens=TOKENS, limits=limits) as server, client(server, "guess-0123456789abcdef") as http:
        statuses = [http.get("/spaces/s").status_code for _ in range(300)]
        assert statuses[:100] == [401] * 100
        assert statuses[100:] == [429] * 200
        r = http.get("/spaces", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200  # a good token has its own allowance


def test_unknown_paths_and_methods_answer_json(http: httpx.Client) -> None:
    error(http.get("/nowhere"), 404, "not_found")
    error(http.patch("/spaces/s"), 405, "method_not_allowed")


# -- shutting down, metrics, OpenAPI ------------------------------------------------------------


def test_shutdown_answers_waiting_calls_ends_streams_and_releases_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(create_app(data, long_poll=600.0), port=0)
    thread = server.start_in_thread()
    with client(server) as http:
        http.put("/spaces/s")
        http.post("/spaces/s/write", json={"tuple": ["claimed"]})
        claim = http.post("/spaces/s/take", json={"template": ["claimed"], "claim": True}).json()
        assert claim["tuple"] == ["claimed"]
        tx = http.post("/spaces/s/transactions").json()
        http.post(f"/spaces/s/transactions/{tx['id']}/write", json={"tuple": ["uncommitted"]})
        waiting = spawn(http.post, "/spaces/s/take", json={"template": ["never"], "timeout": None})
        stream = Events(server, events_path("s", [ANY]))
        wait_until(lambda: stats(http, "s")["waiters"] == 1, "the take to wait")
        server.stop()
        assert waiting.result(PATIENCE).json() == {"tuple": None, "more": True}
        while stream.next() is not None:
            pass
        stream.close()
        thread.join(PATIENCE)
        assert not thread.is_alive()
    # The file is released: it opens again, and the claimed tuple is back.
    space = ts.connect(f"sqlite:///{data / 'spaces.db'}?space=s")
    try:
        assert space.read_all((ts.ANY,)) == [("claimed",)]
    finally:
        space.close()


def test_metrics(http: httpx.Client) -> None:
    http.post("/spaces/jobs/write_many", json={"tuples": [["a"], ["b"]]})
    text = http.get("/metrics").text
    assert 'tuplespace_tuples{space="jobs"} 2.0' in text
    assert 'tuplespace_writes_total{space="jobs"} 2.0' in text
    assert "tuplespace_http_requests_total" in text


def test_the_openapi_document_describes_the_request_bodies(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    write = doc["paths"]["/spaces/{space}/write"]["post"]
    schema = write["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["tuple"]
    assert schema["properties"]["tuple"] == {"$ref": "#/components/schemas/Tuple"}
    assert "Template" in doc["components"]["schemas"]
    assert "422" not in write["responses"]
    take = doc["paths"]["/spaces/{space}/take"]["post"]
    assert set(take["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "template",
        "timeout",
        "claim",
        "confirm",
    }


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    import hypothesis
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    with running(tmp_path / "data", long_poll=0.01, claim_lease=0.05) as server:
        with client(server) as http:
            doc = http.get("/openapi.json").json()
            http.put("/spaces/a")
        schema = schemathesis.openapi.from_dict(doc)
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok)
            operations.append(result.ok())
        tested = 0
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        for operation, mode in itertools.product(operations, modes):
            if operation.path.endswith("/events"):
                continue  # a stream that lasts: tested above

            @hypothesis.settings(
                max_examples=15,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(hypothesis.HealthCheck),
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                response = case.call(base_url=server.url, timeout=PATIENCE)
                case.validate_response(response, checks=checks)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body.
                assert mode is schemathesis.GenerationMode.NEGATIVE
                continue
            tested += 1
        assert tested >= 60


# The operations that need no permission: each checks what it needs from its request.
_OPEN_TO_ALL = {
    "health",
    "list_spaces",  # lists the spaces the caller may read
    "transfer_credit",  # an admin to move another's credit
    "credit_challenge",
    "mint_credit",  # a stamp is its own price; an admin to mint into another's account
    "get_account",  # an admin to see another's account
}


def test_every_operation_answers_403_naming_the_permission_its_row_of_the_table_needs() -> None:
    """A token with every permission but one the operation table says the operation
    needs (or with none of those it needs one of) is refused, naming the permission; a
    token with just those it needs is not refused."""
    asks: list[tuple[Any, str, tuple[str, ...]]] = []  # operation, permission named, token's
    enough: list[tuple[Any, tuple[str, ...]]] = []  # operation, token's
    for op in OPERATIONS:
        if "{space}" not in op.path:
            if op.needs:
                asks.append((op, "admin", tuple(PERMISSIONS)))
            continue
        for needed in op.needs:
            asks.append((op, f"may not {needed} ", tuple(p for p in PERMISSIONS if p != needed)))
        if op.one_of:
            others = tuple(p for p in PERMISSIONS if p not in op.one_of)
            asks.append((op, f"may not {op.one_of[0]} ", others))
        enough += [(op, op.needs)] if op.needs else [(op, (p,)) for p in op.one_of]
    assert {op.name for op in OPERATIONS if not op.needs and not op.one_of} == _OPEN_TO_ALL
    enough.sort(key=lambda ask: ask[0].name == "delete_space")  # the space stays to the end
    grants: dict[tuple[str, ...], str] = {}
    for perms in [perms for _, _, perms in asks] + [perms for _, perms in enough]:
        grants.setdefault(perms, f"token-{len(grants)}-0123456789abcdef")
    tokens = {
        "tokens": [
            {"name": "admin", "token": ADMIN, "admin": True},
            *(
                {"name": f"t{i}", "token": t, "spaces": {"*": list(p)}}
                for i, (p, t) in enumerate(grants.items())
            ),
        ]
    }
    params = {"space": "s", "tx_id": "x", "claim": "x", "lease_id": "1", "name": "r", "principal": "p"}
    with running(tokens=tokens) as server:
        with client(server, ADMIN) as admin:
            assert admin.put("/spaces/s").status_code == 201
        for op, named, perms in asks:
            with client(server, grants[perms]) as http:
                body = {key: "a" for key in op.required} if op.fields else None
                answer = http.request(op.method, op.path.format(**params), json=body)
                error = answer.json()["error"]
                assert (answer.status_code, error["code"]) == (403, "forbidden"), (op.name, perms)
                assert named in error["message"], (op.name, error["message"])
        for op, perms in enough:
            with client(server, grants[perms]) as http:
                body = {key: "a" for key in op.required} if op.fields else None
                with http.stream(op.method, op.path.format(**params), json=body) as answer:
                    assert answer.status_code not in (401, 403), (op.name, perms, answer.read())
