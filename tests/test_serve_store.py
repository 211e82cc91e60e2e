"""``tuplespace serve --store URL``: a server keeps its spaces, and their catalog, in the
store a URL names; with Redis, any number of servers serve the same spaces."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

import tuplespace as ts
from conftest import LiveServer
from helpers import PATIENCE, Process, RedisClusterServers, RedisServer, serving, spawn, wait_until
from tuplespace.server import ServerLimits, create_app
from tuplespace.stores._host import CATALOG


@pytest.fixture
def two_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two ``tuplespace serve --store redis://…`` processes on the session's Redis."""
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--store", redis_server.url]
    with serving(args, tmp_path) as first, serving(args, tmp_path) as second:
        yield first.url(), second.url()
        assert first.stop(signal.SIGTERM) == 0, "".join(first.log)
        assert second.stop(signal.SIGTERM) == 0, "".join(second.log)


def _name() -> str:
    return "jobs-" + uuid.uuid4().hex[:12]


def test_a_take_waiting_behind_one_server_is_woken_by_a_write_through_the_other(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    name = _name()
    with (
        ts.connect(f"{first}/spaces/{name}", store="durable") as taker,
        ts.connect(f"{second}/spaces/{name}") as writer,
    ):
        taken = spawn(taker.take, ("job", int), timeout=PATIENCE)

        def waiting() -> bool:
            answer = httpx.get(f"{first}/spaces/{name}", timeout=PATIENCE).json()
            return bool(answer["statistics"]["waiters"] >= 1)

        wait_until(waiting, "the take to wait behind the first server")
        assert not taken.done()
        writer.write(("job", 7))
        assert taken.result(PATIENCE) == ("job", 7)
        assert writer.count(("job", int)) == 0


def test_a_space_made_through_one_server_is_listed_and_served_by_the_other(
    two_servers: tuple[str, str], redis_server: RedisServer
) -> None:
    first, second = two_servers
    name = _name()
    made = httpx.put(f"{first}/spaces/{name}", json={"order": "lifo", "capacity": 5}, timeout=PATIENCE)
    assert made.status_code == 201, made.text
    listed = {s["name"]: s for s in httpx.get(f"{second}/spaces", timeout=PATIENCE).json()["spaces"]}
    assert listed[name]["options"]["order"] == "lifo"
    assert listed[name]["options"]["capacity"] == 5
    again = httpx.put(f"{second}/spaces/{name}", json={"order": "fifo"}, timeout=PATIENCE)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "space_exists"
    with ts.connect(f"{second}/spaces/{name}") as other, ts.connect(f"{first}/spaces/{name}") as one:
        other.write_many([("a",), ("b",)])
        assert one.read_all((str,)) == [("b",), ("a",)]
    # The space's state is the space of that name in Redis, which a process may open itself.
    with ts.connect(redis_server.space_url(name)) as embedded:
        assert embedded.count((str,)) == 2
        assert embedded.order == "lifo"
    # Dropping it goes through the store: its tuples and its catalog entry leave Redis.
    assert httpx.delete(f"{second}/spaces/{name}", timeout=PATIENCE).status_code == 204
    listed = {s["name"] for s in httpx.get(f"{second}/spaces", timeout=PATIENCE).json()["spaces"]}
    assert name not in listed
    with ts.connect(redis_server.space_url(name)) as embedded:
        assert embedded.count((str,)) == 0


def test_a_record_made_through_one_server_is_found_set_and_watched_through_the_other(
    two_servers: tuple[str, str], redis_server: RedisServer
) -> None:
    first, second = two_servers
    name = _name()
    with ts.connect(f"{first}/spaces/{name}") as one, ts.connect(f"{second}/spaces/{name}") as other:
        made = one.create("sensors/kitchen", {"kind": "temp", "value": 20})
        (found,) = other.find({"kind": "temp"})
        assert found.address == made.address
        assert found.get("value") == 20
        with other.record("sensors/kitchen").watch() as watch, other.watch_records("sensors") as below:
            assert found.set("value", 21) == 2
            made.set("value", 22)
            got = [watch.get(timeout=PATIENCE) for _ in range(2)]
            assert [(c.kind, c.tag, c.value, c.version) for c in got] == [
                ("update", "value", 21, 2),
                ("update", "value", 22, 3),
            ]
            assert below.get(timeout=PATIENCE).value == 21
        assert made.get("value") == 22
        one.create("jobs/1", {"kind": "job"})
        taken = httpx.post(
            f"{second}/spaces/{name}/records/take", json={"template": {"kind": "job"}}, timeout=PATIENCE
        )
        assert taken.status_code == 200, taken.text
        assert taken.json()["record"]["fields"] == {"kind": "job"}
        assert one.find({"kind": "job"}) == []
        other.grant_credit("alice", 5)
        assert one.account("alice") == 5
    # The record is the record of that path in Redis, which a process may open itself.
    with ts.connect(redis_server.space_url(name)) as embedded:
        assert embedded.record("sensors/kitchen").get("value") == 22


def test_a_capability_made_through_one_server_serves_and_is_revoked_through_the_other(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    name = _name()
    with ts.connect(f"{first}/spaces/{name}") as one, ts.connect(f"{second}/spaces/{name}") as other:
        rec = one.create("jobs/1", {"n": 1})
        cap = rec.capability({"set", "refresh"}, lease=3600)
        assert cap.expires_at is not None
        opened = other.record(cap.address)
        assert opened.operations == {"set", "refresh"}
        assert opened.set("n", 2) == 2
        ends = opened.refresh(lease=60)
        assert ends is not None
        assert ends < cap.expires_at  # the record's lease, not the capability's
        with pytest.raises(ts.NotAllowed):
            opened.get("n")
        pinned = other.record("jobs/1")
        revoked = httpx.post(
            f"{second}/spaces/{name}/records/revoke", json={"ref": str(cap.address)}, timeout=PATIENCE
        )
        assert revoked.status_code == 204, revoked.text
        with pytest.raises(ts.CapabilityRevoked):
            one.record(cap.address)
        rec.move("jobs/2")
        assert pinned.get("n") == 2  # a handle names its record by its id, through either server
        one.create("jobs/1", {"n": 9})
        rec.destroy()
        with pytest.raises(ts.RecordNotFound):
            pinned.get("n")


@pytest.fixture
def redis_served(serve: Callable[..., LiveServer], redis_server: RedisServer) -> LiveServer:
    """A server of its own (in this process) keeping its spaces in the session's Redis."""
    return serve(store=redis_server.url, claim_lease=PATIENCE)


def test_a_simulated_clock_kept_in_redis_moved_through_one_server_is_every_servers(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    name = _name()
    made = httpx.put(
        f"{first}/spaces/{name}", json={"clock": "simulated", "charge_rate": "1024"}, timeout=PATIENCE
    )
    assert made.status_code == 201, made.text
    assert made.json()["options"]["clock"] == "simulated"
    seen = httpx.get(f"{second}/spaces/{name}", timeout=PATIENCE).json()
    assert seen["options"]["clock"] == "simulated"
    start = ts.SimulatedClock().now()
    with ts.connect(f"{first}/spaces/{name}") as one, ts.connect(f"{second}/spaces/{name}") as other:
        assert other.clock.now() == start
        one.rules.add("gone", on="expire", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
        other.write(("job", 7), lease=10)
        other.grant_credit("anonymous", 100)
        other.create("r", {"n": 1}, credit=30)  # 3 bytes at 1024 a KiB a second: 3 a second, 10 s
        one.clock.advance(9)  # no real time passes: nothing ran out yet
        assert other.clock.now() == start + 9
        assert other.read_all((str, int)) == [("job", 7)]
        assert other.record("r").get("n") == 1
        other.clock.advance(2)  # through the other server: the lease and the credit ran out
        assert one.clock.now() == start + 11
        assert one.read_all((str, int)) == [("gone", 7)]  # the rule fired on the expiry
        with pytest.raises(ts.RecordNotFound):
            one.record("r")
    assert httpx.get(f"{first}/spaces/{name}/clock", timeout=PATIENCE).json() == {
        "now": start + 11,
        "simulated": True,
    }


def test_a_space_kept_in_redis_on_redis_time_has_no_clock_to_move(redis_served: LiveServer) -> None:
    url = redis_served.space_url()
    assert httpx.put(url, timeout=PATIENCE).status_code == 201
    before = time.time()
    answer = httpx.get(f"{url}/clock", timeout=PATIENCE).json()
    assert answer["simulated"] is False
    assert before - 1 <= answer["now"] <= time.time() + 1  # Redis's time, on this machine
    moved = httpx.post(f"{url}/clock", json={"advance": 5}, timeout=PATIENCE)
    assert moved.status_code == 409, moved.text
    assert moved.json()["error"]["code"] == "real_clock"


def test_a_rule_added_through_one_server_fires_on_a_change_through_the_other(
    two_servers: tuple[str, str],
) -> None:
    first, second = two_servers
    name = _name()
    with ts.connect(f"{first}/spaces/{name}") as one, ts.connect(f"{second}/spaces/{name}") as other:
        one.rules.add("hot", template=("reading", str, float), when="t[2] > 30.0", write=[("alarm", "t[1]")])
        other.write(("reading", "kitchen", 31.5))
        assert other.read_all(("alarm", str)) == [("alarm", "kitchen")]  # when the write returned
        assert [(r.name, r.fired) for r in other.rules.list()] == [("hot", 1)]
        house = one.create("house", {"comfort": None})
        one.create("kitchen", {"temp": 21.0})
        other.rules.add("comfort", set="house.comfort", to="kitchen.temp >= 19.0")
        assert house.get("comfort") is True  # set as the rule was added
        other.record("kitchen").set("temp", 18.0)
        assert house.get("comfort") is False  # when the set through the other server returned
        other.rules.remove("hot")
        one.rules.remove("comfort")
        assert one.rules.list() == []


def test_the_rules_of_a_revoked_token_are_removed_from_the_spaces_kept_in_redis(
    serve: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    tokens = {
        "tokens": [
            {"name": "ops", "token": "admin-token-0123456789", "admin": True},
            {"name": "acme", "token": "writer-token-0123456789", "spaces": {"plant": ["read", "write"]}},
        ]
    }
    server = serve(store=redis_server.url, tokens=tokens)
    url = f"{server.url}/spaces/plant"
    with ts.connect(url, token="admin-token-0123456789") as admin:
        admin.write(("made",))
        with ts.connect(url, token="writer-token-0123456789") as acme:
            acme.rules.add("hot", template=("reading", str), write=[("alarm", "t[1]")])
        admin.rules.add("seen", template=("reading", str), write=[("seen", "t[1]")])
        assert httpx.delete(
            f"{server.url}/tokens/acme", headers={"Authorization": "Bearer admin-token-0123456789"}
        ).is_success
        assert [(r.name, r.principal) for r in admin.rules.list()] == [("seen", "ops")]
        admin.write(("reading", "kitchen"))
        assert admin.read_all((str, str)) == [("reading", "kitchen"), ("seen", "kitchen")]
    assert httpx.delete(url, headers={"Authorization": "Bearer admin-token-0123456789"}).status_code == 204


def test_a_transaction_through_one_server_holds_its_takes_in_redis_for_the_other(
    two_servers: tuple[str, str], redis_server: RedisServer
) -> None:
    first, second = two_servers
    name = _name()
    with (
        ts.connect(f"{first}/spaces/{name}", store="durable") as one,
        ts.connect(f"{second}/spaces/{name}") as other,
    ):
        one.write_many([("job", n) for n in range(3)])
        tx = one.transaction()
        assert tx.take(("job", 1)) == ("job", 1)
        tx.write(("result", 1))
        assert other.read_all((str, int)) == [("job", 0), ("job", 2)]
        tx.abort()
        assert other.read_all((str, int)) == [("job", n) for n in range(3)]
        with one.transaction() as tx:
            assert tx.take(("job", 1)) == ("job", 1)
            tx.write(("result", 1))
        assert other.read_all((str, int)) == [("job", 0), ("job", 2), ("result", 1)]
    with ts.connect(redis_server.space_url(name)) as embedded:
        stats = embedded.statistics()
        assert (stats["transactions"], stats["commits"], stats["aborts"]) == (0, 1, 1)


def test_a_path_a_record_moved_from_costs_its_caller_the_redirect_charge_through_every_server(
    two_servers: tuple[str, str], redis_server: RedisServer
) -> None:
    first, second = two_servers
    name = _name()
    charges = {"redirect_charge": "0.25", "operator": "node"}
    made = httpx.put(f"{first}/spaces/{name}", json=charges, timeout=PATIENCE)
    assert made.status_code == 201, made.text
    assert (
        httpx.get(f"{second}/spaces/{name}", timeout=PATIENCE).json()["options"]["redirect_charge"] == "0.25"
    )
    with ts.connect(f"{first}/spaces/{name}") as one, ts.connect(f"{second}/spaces/{name}") as other:
        one.create("offers/1", {"n": 1}).move("sold/1")
        one.grant_credit("anonymous", "0.3")  # the caller of a server without tokens
        assert other.record("offers/1").get("n") == 1
        assert (one.account("anonymous"), one.account("node")) == (ts.Credit("0.05"), ts.Credit("0.25"))
        assert other.record("sold/1").get("n") == 1  # its own path: free
        with pytest.raises(ts.InsufficientCredit):
            one.record("offers/1")
        assert one.account("anonymous") == ts.Credit("0.05")
    with ts.connect(redis_server.space_url(name)) as embedded:
        assert embedded.redirect_charge == ts.Credit("0.25")
        embedded.grant_credit("buyer", 1)
        assert embedded.record("offers/1", principal="buyer").get("n") == 1
        assert embedded.account("buyer") == ts.Credit("0.75")


def test_a_served_space_kept_in_redis_charges_as_it_was_made_for_every_server_and_process(
    redis_served: LiveServer, redis_server: RedisServer
) -> None:
    url = redis_served.space_url()
    options = {"charge_rate": "0.001024", "creation_charge": "0.5", "operator": "node"}
    with ts.connect(url, store="durable", **options) as served:
        served.grant_credit("alice", 10)
        rec = served.create("r", {"n": 1}, credit=3, principal="alice")  # and 0.5 to create it
        with pytest.raises(ts.InsufficientCredit):
            served.create("s", {"n": 1}, credit=7, principal="alice")
        with ts.connect(redis_server.space_url(url.rpartition("/")[2])) as embedded:
            charges = (embedded.charge_rate, embedded.creation_charge, embedded.operator)
            assert charges == (ts.Credit("0.001024"), ts.Credit("0.5"), "node")
            assert embedded.account("alice") == ts.Credit("6.5")
            rec.destroy()  # all it held is burned
            assert embedded.account("node") == ts.Credit("3.5")
            assert served.account("node") == ts.Credit("3.5")
        with ts.connect(url, store="durable", **options) as again:  # the same options: the same space
            assert again.account("node") == ts.Credit("3.5")
        shown = httpx.get(url, timeout=PATIENCE).json()["options"]
        assert {k: shown[k] for k in options} == options


def test_a_served_space_kept_in_redis_runs_methods_within_the_limits_it_was_made_with(
    redis_served: LiveServer,
) -> None:
    url = redis_served.space_url()
    limits = {"max_firings": 1, "method_steps": 700, "method_ms": 50, "method_memory": 1 << 16}
    with ts.connect(url, store="durable", **limits) as served:
        assert httpx.get(url, timeout=PATIENCE).json()["options"].items() >= limits.items()
        spin = served.create("spin", {"loop": ts.Method("function(self) while true do end end")})
        with pytest.raises(ts.LimitReached) as stopped:
            spin.call("loop")
        assert (stopped.value.limit, stopped.value.maximum) == ("method_steps", 700)


def test_credit_past_what_redis_counts_is_refused_naming_its_field_and_makes_nothing(
    redis_served: LiveServer,
) -> None:
    url = redis_served.space_url()
    assert httpx.put(url, timeout=PATIENCE).status_code == 201
    asked = [
        ("records/create", {"path": "r", "fields": {"x": 1}, "credit": "1e30"}, "credit"),
        ("credit/grant", {"principal": "bob", "amount": "1e30"}, "amount"),
    ]
    for path, body, field in asked:
        answer = httpx.post(f"{url}/{path}", json=body, timeout=PATIENCE)
        assert answer.status_code == 413, answer.text
        error = answer.json()["error"]
        assert (error["code"], error["field"], error["limit"]) == ("value_too_large", field, "credit")
    found = httpx.post(f"{url}/records/find", json={"template": {}}, timeout=PATIENCE)
    assert found.json()["records"] == []
    assert httpx.get(f"{url}/credit/bob", timeout=PATIENCE).json()["balance"] == {"$credit": "0"}


def test_a_claimed_take_of_a_space_kept_in_redis_is_held_until_confirmed_or_released(
    redis_served: LiveServer,
) -> None:
    url = redis_served.space_url()
    with ts.connect(url, store="durable") as space:
        space.write_many([("job", 1), ("job", 2)])
    with httpx.Client(timeout=PATIENCE) as http:
        first = http.post(f"{url}/take", json={"template": ["job", 1], "claim": True}).json()
        second = http.post(f"{url}/take", json={"template": ["job", 2], "claim": True}).json()
        assert first["tuple"] == ["job", 1]
        assert second["tuple"] == ["job", 2]
        assert http.post(f"{url}/count", json={"template": ["job", {"$formal": "int"}]}).json()["count"] == 0
        released = http.post(f"{url}/claims/{first['claim']['id']}/release")
        confirmed = http.post(f"{url}/claims/{second['claim']['id']}/confirm")
        assert (released.status_code, confirmed.status_code) == (204, 204)
        found = http.post(f"{url}/read_all", json={"template": ["job", {"$formal": "int"}]}).json()
        assert found["tuples"] == [["job", 1]]


def test_a_claim_that_runs_out_gives_its_tuples_back(
    serve: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    server = serve(store=redis_server.url, claim_lease=0.05)
    url = server.space_url()
    with ts.connect(url, store="durable") as space:
        space.write_many([("job", 1), ("job", 2)])
        taken = httpx.post(
            f"{url}/take_all", json={"template": ["job", {"$formal": "int"}], "claim": True}, timeout=PATIENCE
        ).json()
        assert taken["tuples"] == [["job", 1], ["job", 2]]
        assert "claim" in taken
        wait_until(lambda: space.count(("job", int)) == 2, "the claimed tuples to come back")


def test_a_read_all_of_a_space_kept_in_redis_is_one_answer_and_a_take_all_goes_on(
    serve: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    server = serve(store=redis_server.url, limits=ServerLimits(max_results=2))
    with ts.connect(server.space_url(), store="durable") as space:
        space.write_many([("n", i) for i in range(5)])
        assert space.read_all(("n", int), limit=2) == [("n", 0), ("n", 1)]
        with pytest.raises(ts.LimitReached, match="read them with a limit"):
            space.read_all(("n", int))
        assert space.take_all(("n", int)) == [("n", i) for i in range(5)]
        assert space.count(("n", int)) == 0


def test_a_take_all_in_a_transaction_of_a_space_kept_in_redis_gives_back_what_each_answer_leaves_out(
    serve: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    server = serve(store=redis_server.url, limits=ServerLimits(max_results=2))
    with ts.connect(server.space_url(), store="durable") as space:
        space.write_many([("n", i) for i in range(5)])
        tx = space.transaction()
        tx.write(("n", 5))
        assert tx.take_all(("n", int)) == [("n", i) for i in range(6)]  # three answers
        assert tx.count(("n", int)) == 0
        assert space.count(("n", int)) == 0
        tx.abort()
        assert space.count(("n", int)) == 5
        assert space.take_all(("n", int)) == [("n", i) for i in range(5)]  # each at its place


def test_serve_takes_a_sqlite_store(tmp_path: Path) -> None:
    db = tmp_path / "kept.db"
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--store", f"sqlite:{db}"]
    with serving(args, tmp_path) as process:
        url = process.url()
        with ts.connect(f"{url}/spaces/jobs", store="durable") as space:
            space.write(("job", 1))
        assert process.stop(signal.SIGTERM) == 0, "".join(process.log)
    with ts.connect(f"sqlite:{db}?space=jobs") as space:
        assert space.read_all(("job", int)) == [("job", 1)]


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["--store", "memory:", "--memory"], 2, "give --store, --data-dir or --memory, one of them"),
        (["--store", "gopher://node"], 2, 'store is "durable", "memory" or the URL of a store'),
        (["--store", "redis://127.0.0.1:1/0?space=x"], 2, "takes no options"),
        (["--store", "redis://127.0.0.1:1/0"], 1, "cannot reach Redis at redis://127.0.0.1:1/0"),
        (["--store", "redis+cluster://127.0.0.1:1"], 1, "cannot reach Redis at redis+cluster://127.0.0.1:1"),
    ],
)
def test_serve_refuses_a_store_it_cannot_use_in_one_line(
    tmp_path: Path, options: list[str], code: int, message: str
) -> None:
    command = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE * 2, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tuplespace serve: ")
    assert message in lines[0]


def test_serve_names_what_is_wrong_with_a_redis_it_reaches_in_one_line(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    guarded = RedisServer(str(tmp_path))
    try:
        with redis.Redis(port=guarded.port) as admin:
            admin.config_set("requirepass", "secret")
        cases = [
            (f"redis://:wrong@127.0.0.1:{guarded.port}/0", "refused the credentials of the URL"),
            (
                redis_server.url.replace("redis://", "redis+cluster://").removesuffix("/0"),
                "is not a Redis Cluster",
            ),
        ]
        for store, message in cases:
            command = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--store", store]
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=PATIENCE * 2, cwd=tmp_path
            )
            assert result.returncode == 1, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert message in lines[0]
            assert "wrong" not in lines[0]
            assert "cannot reach" not in lines[0]
    finally:
        guarded.kill()


def test_a_released_claim_returns_to_its_place_even_into_a_space_filled_meanwhile(
    redis_served: LiveServer,
) -> None:
    url = redis_served.space_url()
    with ts.connect(url, store="durable", capacity=1) as space, httpx.Client(timeout=PATIENCE) as http:
        space.write(("claimed",))
        claimed = http.post(f"{url}/take", json={"template": ["claimed"], "claim": True}).json()
        space.write(("filler",))
        assert http.post(f"{url}/claims/{claimed['claim']['id']}/release").status_code == 204
        assert space.read_all((str,)) == [("claimed",), ("filler",)]  # as an aborted transaction's takes


def test_a_server_keeps_its_spaces_in_a_redis_cluster(
    serve: Callable[..., LiveServer], redis_cluster: RedisClusterServers
) -> None:
    server = serve(store=redis_cluster.url)
    name = _name()
    with ts.connect(server.space_url(name), store="durable", order="lifo") as space:
        space.write_many([("n", 1), ("n", 2)])
        assert space.take(("n", int)) == ("n", 2)
    with ts.connect(redis_cluster.space_url(name)) as embedded:
        assert embedded.read_all(("n", int)) == [("n", 1)]
    assert httpx.delete(server.space_url(name), timeout=PATIENCE).status_code == 204
    with ts.connect(redis_cluster.space_url(name)) as embedded:
        assert embedded.count(("n", int)) == 0


def test_a_server_that_stops_gives_back_the_tuples_it_holds_under_claims(
    redis_server: RedisServer,
) -> None:
    name = _name()
    with LiveServer(store=redis_server.url, claim_lease=PATIENCE) as server:
        url = server.space_url(name)
        with ts.connect(url, store="durable") as space:
            space.write(("job", 1))
        taken = httpx.post(f"{url}/take", json={"template": ["job", 1], "claim": True}, timeout=PATIENCE)
        assert "claim" in taken.json()
        with ts.connect(redis_server.space_url(name)) as embedded:
            assert embedded.count(("job", 1)) == 0
    with ts.connect(redis_server.space_url(name)) as embedded:
        assert embedded.read_all(("job", int)) == [("job", 1)]


def test_a_redis_that_goes_away_is_a_store_error_not_a_failure_of_the_server(
    serve: Callable[..., LiveServer], tmp_path: Path
) -> None:
    redis = RedisServer(str(tmp_path))
    try:
        server = serve(store=redis.url)
        url = server.space_url()
        assert httpx.put(url, timeout=PATIENCE).status_code == 201
        redis.kill()
        answer = httpx.post(f"{url}/write", json={"tuple": ["lost"]}, timeout=PATIENCE)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "store_error"
        assert f"cannot reach Redis at {redis.url}" in answer.json()["error"]["message"]
    finally:
        redis.stop()


def test_a_space_dropped_through_one_server_is_gone_from_the_other_and_its_waits_end(
    redis_server: RedisServer, serve: Callable[..., LiveServer]
) -> None:
    first, second = serve(store=redis_server.url), serve(store=redis_server.url)
    name = _name()
    with ts.connect(second.space_url(name), store="durable") as space:
        space.write(("job", 1))
        waiting = spawn(space.take, ("other",), timeout=PATIENCE)
        wait_until(lambda: httpx.get(second.space_url(name)).json()["statistics"]["waiters"] >= 1, "the take")
        assert httpx.delete(first.space_url(name), timeout=PATIENCE).status_code == 204
        with pytest.raises(ts.NotFound):
            waiting.result(PATIENCE)
    assert httpx.get(second.space_url(name), timeout=PATIENCE).status_code == 404
    assert name not in {s["name"] for s in httpx.get(f"{second.url}/spaces").json()["spaces"]}


def test_a_servers_sqlite_store_takes_its_durability_and_nothing_else(
    serve: Callable[..., LiveServer], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="takes only durability="):
        create_app(store=f"sqlite:{tmp_path / 'a.db'}?order=lifo")
    with pytest.raises(ValueError, match="durability must be one of"):
        create_app(store=f"sqlite:{tmp_path / 'a.db'}?durability=sometimes")
    with pytest.raises(ValueError, match="a data_dir or a store URL, not both"):
        create_app(tmp_path, store=f"sqlite:{tmp_path / 'a.db'}")
    server = serve(store=f"sqlite:{tmp_path / 'full.db'}?durability=full")
    with ts.connect(server.space_url("jobs"), store="durable") as space:
        space.write(("job", 1))
    server.stop()
    with ts.connect(f"sqlite:{tmp_path / 'full.db'}?space=jobs") as space:
        assert space.read_all(("job", int)) == [("job", 1)]


def test_a_catalog_entry_that_disagrees_with_its_space_in_redis_is_a_store_error(
    redis_served: LiveServer, redis_server: RedisServer
) -> None:
    name = _name()
    with ts.connect(redis_server.space_url(name), order="lifo"):
        pass
    entry = {"order": "fifo", "capacity": None, "event_retention": 10_000, "anonymous": []}
    with redis.Redis.from_url(redis_server.url) as client:
        client.hset(CATALOG, name, orjson.dumps(entry))
        try:
            answer = httpx.get(redis_served.space_url(name), timeout=PATIENCE)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "store_error"
            assert "order='lifo'" in answer.json()["error"]["message"]
            listed = httpx.get(f"{redis_served.url}/spaces", timeout=PATIENCE)
            assert listed.status_code == 503
        finally:  # the session's other servers share this catalog
            client.hdel(CATALOG, name)


@contextlib.contextmanager
def _servers_on_redis(
    redis_server: RedisServer, tmp_path: Path, claim_lease: float
) -> Iterator[list[Process]]:
    """Two ``tuplespace serve --store redis://…`` processes on the session's Redis, with
    that ``--claim-lease``; either may be killed by the test."""
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--store", redis_server.url]
    args += ["--claim-lease", str(claim_lease)]
    with serving(args, tmp_path) as first, serving(args, tmp_path) as second:
        yield [first, second]


def test_claims_of_a_server_killed_before_their_confirmation_give_their_tuples_back_at_their_place(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    name = _name()
    with _servers_on_redis(redis_server, tmp_path, 1.0) as (doomed, other):
        url, other_url = f"{doomed.url()}/spaces/{name}", f"{other.url()}/spaces/{name}"
        with ts.connect(other_url, store="durable") as space:
            space.write_many([("job", 1), ("job", 2), ("job", 3)])
        with httpx.Client(timeout=PATIENCE) as http:
            one = http.post(f"{url}/take", json={"template": ["job", 1], "claim": True}).json()
            rest = http.post(f"{url}/take_all", json={"template": ["job", {"$formal": "int"}], "claim": True})
        assert one["tuple"] == ["job", 1]
        assert rest.json()["tuples"] == [["job", 2], ["job", 3]]
        doomed.proc.kill()  # SIGKILL: answered, never confirmed, nothing written back by it
        doomed.proc.wait(PATIENCE)
        with ts.connect(redis_server.space_url(name)) as embedded:
            assert embedded.count(("job", int)) == 0
            wait_until(lambda: embedded.count(("job", int)) == 3, "the claimed tuples to come back")
        with ts.connect(other_url) as space:
            assert space.take_all(("job", int)) == [("job", 1), ("job", 2), ("job", 3)]


def test_claims_taken_through_a_server_killed_since_are_confirmed_through_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    name = _name()
    with _servers_on_redis(redis_server, tmp_path, PATIENCE * 4) as (doomed, other):
        url, other_url = f"{doomed.url()}/spaces/{name}", f"{other.url()}/spaces/{name}"
        with ts.connect(other_url, store="durable") as space:
            space.write_many([("job", 1), ("job", 2), ("job", 3), ("job", 4)])
        with httpx.Client(timeout=PATIENCE) as http:
            one = http.post(f"{url}/take", json={"template": ["job", 1], "claim": True}).json()["claim"]["id"]
            two = http.post(f"{url}/take", json={"template": ["job", 2], "claim": True}).json()["claim"]["id"]
            rest = http.post(f"{url}/take_all", json={"template": ["job", {"$formal": "int"}], "claim": True})
            group = rest.json()["claim"]["id"]
            doomed.proc.kill()
            doomed.proc.wait(PATIENCE)
            # The client's retries go to the other server: the claims' ids name them in Redis.
            assert http.post(f"{other_url}/claims/{one}/confirm").status_code == 204
            riding = http.post(
                f"{other_url}/take", json={"template": ["none"], "timeout": 0, "confirm": [group]}
            )
            assert riding.json() == {"tuple": None}
            assert http.post(f"{other_url}/claims/{two}/release").status_code == 204
            # Each claim's outcome holds whichever server is asked.
            assert http.post(f"{other_url}/claims/{one}/confirm").status_code == 204
            refused = http.post(f"{other_url}/claims/{group}/release")
            assert (refused.status_code, refused.json()["error"]["code"]) == (409, "transaction_ended")
            gone = http.post(f"{other_url}/claims/{two}/confirm")
            assert (gone.status_code, gone.json()["error"]["code"]) == (404, "unknown_claim")
            forged = http.post(f"{other_url}/claims/{one[:-2]}AA/confirm")
            assert (forged.status_code, forged.json()["error"]["code"]) == (404, "unknown_claim")
        with ts.connect(redis_server.space_url(name)) as embedded:
            assert embedded.statistics()["transactions"] == 0  # nothing more comes back
            assert embedded.read_all(("job", int)) == [("job", 2)]
            events = embedded.subscribe(ts.ANY, events=["take"], since=0)
            taken = [events.get(timeout=PATIENCE) for _ in range(3)]
            assert [e.tuple for e in taken if e is not None] == [("job", 1), ("job", 3), ("job", 4)]
            events.close()


def test_a_record_claimed_through_a_server_killed_before_its_confirmation_comes_back_as_it_was(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    name = _name()
    with _servers_on_redis(redis_server, tmp_path, 1.0) as (doomed, other):
        url = f"{doomed.url()}/spaces/{name}"
        with ts.connect(redis_server.space_url(name)) as embedded:
            embedded.create("jobs/1", {"kind": "job", "n": 1}, lease=PATIENCE * 4).set("n", 2)
            with httpx.Client(timeout=PATIENCE) as http:
                taken = http.post(f"{url}/records/take", json={"template": {"kind": "job"}, "claim": True})
            assert taken.status_code == 200, taken.text
            assert taken.json()["record"]["fields"] == {"kind": "job", "n": 2}
            assert "claim" in taken.json()
            doomed.proc.kill()  # SIGKILL: answered, never confirmed
            doomed.proc.wait(PATIENCE)
            # Held for the claim: out of sight, its path still its own.
            assert embedded.find({"kind": "job"}) == []
            with pytest.raises(ts.RecordNotFound):
                embedded.record("jobs/1")
            with pytest.raises(ts.RecordExists):
                embedded.create("jobs/1", {"kind": "impostor"})
            wait_until(lambda: len(embedded.find({"kind": "job"})) == 1, "the claimed record to come back")
            back = embedded.record("jobs/1")
            assert (back.all(), back.get("$version")) == ({"kind": "job", "n": 2}, 2)
            assert back.lifetime_ends() is not None  # its lease too
        with ts.connect(f"{other.url()}/spaces/{name}") as space:
            again = space.take_record({"kind": "job"}, timeout=0)
        assert (again.fields, again.version) == ({"kind": "job", "n": 2}, 2)


def test_a_record_claimed_through_a_server_killed_since_is_confirmed_through_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    name = _name()
    with _servers_on_redis(redis_server, tmp_path, PATIENCE * 4) as (doomed, other):
        url, other_url = f"{doomed.url()}/spaces/{name}", f"{other.url()}/spaces/{name}"
        with ts.connect(redis_server.space_url(name)) as embedded:
            embedded.create("jobs/1", {"kind": "job"})
            embedded.create("jobs/2", {"kind": "job"})
            with httpx.Client(timeout=PATIENCE) as http:
                one = http.post(f"{url}/records/take", json={"template": {"kind": "job"}, "claim": True})
                two = http.post(f"{url}/records/take", json={"template": {"kind": "job"}, "claim": True})
                doomed.proc.kill()
                doomed.proc.wait(PATIENCE)
                assert http.post(f"{other_url}/claims/{one.json()['claim']['id']}/confirm").status_code == 204
                assert http.post(f"{other_url}/claims/{two.json()['claim']['id']}/release").status_code == 204
            assert [str(r.address).rsplit("/", 1)[1] for r in embedded.find({"kind": "job"})] == ["2"]
            with pytest.raises(ts.RecordNotFound):
                embedded.record("jobs/1")
            watch = embedded.watch_records(events=["destroy"], since=0)
            change = watch.get(timeout=PATIENCE)
            assert change is not None
            assert change.path == "jobs/1"
            with pytest.raises(ts.Timeout):  # one destroy event, at the confirmation
                watch.get(timeout=0)
            watch.close()
            assert embedded.statistics()["transactions"] == 0


def test_servers_on_redis_mint_credit_for_a_stamp_once_whichever_is_shown_it(
    serve: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    first, second = serve(store=redis_server.url), serve(store=redis_server.url)
    name = _name()
    with httpx.Client(timeout=PATIENCE) as http:
        made = http.put(first.space_url(name), json={"mint_amount": "0.5", "mint_bits": 6})
        assert made.status_code in (200, 201), made.text
        options = http.get(second.space_url(name)).json()["options"]
        assert (options["mint_amount"], options["mint_bits"]) == ("0.5", 6)
        c = http.post(f"{first.space_url(name)}/credit/challenge").json()
        assert (c["bits"], c["amount"]) == (6, {"$credit": "0.5"})
        assert http.post(f"{second.space_url(name)}/credit/challenge").json()["challenge"] == c["challenge"]
        stamp = {"challenge": c["challenge"], "nonce": ts.make_stamp(c["challenge"], c["bits"])}
        minted = http.post(f"{second.space_url(name)}/credit/mint", json=stamp)
        assert minted.json() == {"principal": "anonymous", "balance": {"$credit": "0.5"}}
        again = http.post(f"{first.space_url(name)}/credit/mint", json=stamp)  # spent, through any server
        assert (again.status_code, again.json()["error"]["field"]) == (400, "nonce")
        stale = http.post(f"{first.space_url(name)}/credit/mint", json={**stamp, "challenge": "0" * 32})
        assert (stale.status_code, stale.json()["error"]["field"]) == (400, "challenge")
        plain = _name()
        assert http.put(first.space_url(plain), json={}).status_code in (200, 201)
        refused = http.post(f"{second.space_url(plain)}/credit/challenge")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    with ts.connect(redis_server.space_url(name)) as embedded:
        assert embedded.account("anonymous") == ts.Credit("0.5")


def test_a_claim_through_one_server_is_ended_through_another_only_with_its_token(
    serve: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    tokens = {
        "tokens": [
            {
                "name": "one",
                "token": "token-one-0123456789",
                "spaces": {"*": ["read", "write", "take", "admin"]},
            },
            {"name": "two", "token": "token-two-0123456789", "spaces": {"*": ["read", "write", "take"]}},
        ]
    }
    first = serve(store=redis_server.url, tokens=tokens, claim_lease=PATIENCE * 4)
    second = serve(store=redis_server.url, tokens=tokens, claim_lease=PATIENCE * 4)
    name = _name()
    one = {"Authorization": "Bearer token-one-0123456789"}
    two = {"Authorization": "Bearer token-two-0123456789"}
    with httpx.Client(timeout=PATIENCE) as http:
        assert http.put(first.space_url(name), json={}, headers=one).status_code == 201
        http.post(f"{first.space_url(name)}/write", json={"tuple": ["job", 1]}, headers=one)
        taken = http.post(
            f"{first.space_url(name)}/take", json={"template": ["job", 1], "claim": True}, headers=one
        )
        claim = taken.json()["claim"]["id"]
        for server in (first, second):
            stranger = http.post(f"{server.space_url(name)}/claims/{claim}/release", headers=two)
            assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "unknown_claim")
        assert http.post(f"{second.space_url(name)}/claims/{claim}/release", headers=one).status_code == 204
        back = http.post(f"{first.space_url(name)}/read_all", json={"template": ["job", 1]}, headers=one)
        assert back.json()["tuples"] == [["job", 1]]
