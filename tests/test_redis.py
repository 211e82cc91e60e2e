"""Spaces kept in Redis, beyond the contract tests: several processes share one space,
a write in one wakes a take blocked in another, and a Redis that goes away is an error,
never a hang.  Every test talks to a real redis-server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import tuplespace as ts
from helpers import PATIENCE, RedisClusterServers, RedisServer, spawn, wait_for_waiters, wait_until
from tuplespace import ANY
from tuplespace.stores._redis import FUNCTIONS, LIBRARY, READ_AHEAD_BYTES, partition_of, prefix

# A child process: opens the space at argv[1], runs the code given after it.
CHILD = """
import sys
import tuplespace as ts
from tuplespace import ANY
space = ts.connect(sys.argv[1])
{code}
space.close()
"""


def run_child(url: str, code: str) -> subprocess.Popen[str]:
    """Start a Python process that runs ``code`` on the space ``url`` (``space``)."""
    source = CHILD.format(code=textwrap.dedent(code))
    return subprocess.Popen(
        [sys.executable, "-c", source, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(child: subprocess.Popen[str]) -> str:
    """What ``child`` printed; fails if it failed."""
    out, err = child.communicate(timeout=PATIENCE)
    assert child.returncode == 0, err
    return out


LUA_KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in"}
LUA_KEYWORDS |= {"local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}
# What Redis gives a script (the libraries it loads, KEYS and ARGV).
LUA_GLOBALS = {"KEYS", "ARGV", "redis", "string", "table", "math", "bit", "cjson", "cmsgpack", "struct"}
LUA_GLOBALS |= {"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawget", "rawset"}
LUA_GLOBALS |= {"select", "setmetatable", "tonumber", "tostring", "type", "unpack"}
# What a chunk defines: its locals and functions' parameters, then its loop variables.
LUA_DEFINED = (r"\blocal\s+(?:function\s+)?([\w\s,]+?)\s*(?:=|\n|\()", r"\bfunction\s*\w*\s*\(([^)]*)\)")
LUA_LOOPS = r"\bfor\s+([\w\s,]+?)\s*(?:=|\bin\b)"


def undefined_names(lua: str) -> set[str]:
    """The names a Lua chunk reads that neither it defines (locals, parameters, loop
    variables) nor Redis gives every script."""
    code = re.sub(r"--[^\n]*|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", "''", lua)
    defined = set()
    for pattern in (*LUA_DEFINED, LUA_LOOPS):
        for match in re.finditer(pattern, code):
            defined |= set(re.findall(r"\w+", match[1]))
    read = set()
    for match in re.finditer(r"[A-Za-z_]\w*", code):
        before, after = code[: match.start()].rstrip(), code[match.end() :].lstrip()
        field = before.endswith((".", ":")) and not before.endswith("..")
        constructor_key = before.endswith(("{", ",")) and re.match(r"=[^=]", after)
        if not field and not constructor_key:
            read.add(match[0])
    return read - defined - LUA_KEYWORDS - LUA_GLOBALS


def test_the_library_defines_every_name_it_uses() -> None:
    """The functions and state the scripts share are made once, in the library: every
    name a function reads is one of them, or one of its own."""
    lua = LIBRARY.split("\n", 1)[1]  # after its first line, "#!lua name=<its name>"
    assert undefined_names(lua) == set()
    dropped = lua.replace("local function alive(id)", "local function unused(id)")
    assert undefined_names(dropped) == {"alive"}
    state = re.findall(r"^local ([\w, ]+)$", lua[: lua.index("\nlocal function")], re.MULTILINE)
    functions = re.findall(r"^local function (\w+)", lua, re.MULTILINE)
    declared = [name.strip() for line in state for name in line.split(",")] + functions
    assert len(declared) == len(set(declared))  # no name of the prelude is defined twice
    assert {"KEYS", "ARGV", "now", "ev_last", "charges"} <= set(declared)


LIBRARY_NAME = LIBRARY.split("name=", 1)[1].split("\n", 1)[0]


def functions_loaded(node: redis.Redis) -> set[str]:
    """The names of the functions of the library of the scripts that ``node`` holds."""
    return {f[1].decode() for library in node.function_list(LIBRARY_NAME) for f in library[5]}


def test_a_redis_makes_the_scripts_once_and_gets_them_again_once_it_lost_them(url: str, space: Any) -> None:
    """The scripts are a Redis Functions library, loaded by the first call that finds
    Redis without it (a Redis new, flushed, or restarted without its data)."""
    raw = redis.Redis.from_url(url.partition("?")[0])
    space.write(("job", 1))
    assert functions_loaded(raw) == set(FUNCTIONS.values())
    raw.function_flush()
    assert functions_loaded(raw) == set()
    space.write(("job", 2))
    assert space.take_all(("job", int)) == [("job", 1), ("job", 2)]
    assert functions_loaded(raw) == set(FUNCTIONS.values())
    raw.close()


def test_each_master_of_a_cluster_gets_the_scripts_it_runs(redis_cluster: RedisClusterServers) -> None:
    """On a Redis Cluster, the master of each space's slot loads the library at its first call."""
    for n in range(12):
        with ts.connect(redis_cluster.space_url(f"functions-{n}")) as space:
            space.write(("job", n))
    masters = 0
    for port, process in zip(redis_cluster.ports, redis_cluster.processes, strict=True):
        if process.poll() is None:
            node = redis.Redis(port=port)
            if node.info("replication")["role"] == "master" and node.dbsize() > 0:
                masters += 1
                assert functions_loaded(node) == set(FUNCTIONS.values())
            node.close()
    assert masters == 3


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    return redis_server.space_url()


@pytest.fixture
def space(url: str) -> Iterator[Any]:
    with ts.connect(url) as space:
        yield space


def test_two_processes_share_one_space(url: str, space: Any) -> None:
    finished(run_child(url, 'space.write_many([("job", n) for n in range(3)])'))
    assert space.take_all(("job", int)) == [("job", 0), ("job", 1), ("job", 2)]
    space.write(("reply", "from the parent"))
    assert finished(run_child(url, 'print(space.take(("reply", str), timeout=0)[1])')) == "from the parent\n"
    assert space.count((ANY, ANY)) == 0


def test_a_take_blocked_here_is_woken_by_a_write_in_another_process(url: str, space: Any) -> None:
    taker = spawn(space.take, ("job", int))
    wait_for_waiters(space, 1)
    finished(run_child(url, 'space.write(("other", 1)); space.write(("job", 7))'))
    assert taker.result(PATIENCE) == ("job", 7)
    assert space.read_all((ANY, ANY)) == [("other", 1)]


def test_a_take_blocked_in_another_process_is_woken_by_a_write_here(url: str, space: Any) -> None:
    child = run_child(url, 'space.write(("ready",)); print(space.take(("job", int))[1])')
    assert space.take(("ready",), timeout=PATIENCE) == ("ready",)
    space.write(("job", 42))
    assert finished(child) == "42\n"
    assert space.count(("job", ANY)) == 0


def test_takers_in_two_processes_share_the_tuples_without_duplicates(url: str, space: Any) -> None:
    code = """
    got = []
    while True:
        t = space.take(("job", ANY))
        if t[1] is None:
            break
        got.append(t[1])
    print(" ".join(map(str, got)))
    """
    children = [run_child(url, code) for _ in range(2)]
    space.write_many([("job", n) for n in range(200)])
    space.write_many([("job", None), ("job", None)])
    taken = [int(n) for child in children for n in finished(child).split()]
    assert sorted(taken) == list(range(200))
    assert space.count(("job", ANY)) == 0


# -- records, shared by every process on the Redis ------------------------------------------------


def test_a_record_created_in_another_process_is_found_set_and_watched_here(url: str, space: Any) -> None:
    finished(run_child(url, 'space.create("sensors/kitchen", {"temp": 21.5, "unit": "C"})'))
    [rec] = space.find({"unit": "C"}, under="sensors")
    assert rec == space.record("sensors/kitchen")
    with rec.watch() as watch:
        assert finished(run_child(url, 'print(space.record("sensors/kitchen").set("temp", 22.0))')) == "2\n"
        change = watch.get(timeout=PATIENCE)
    assert (change.kind, change.path, change.tag, change.value, change.version) == (
        "update",
        "sensors/kitchen",
        "temp",
        22.0,
        2,
    )
    assert rec.all() == {"temp": 22.0, "unit": "C"}
    assert space.find({"temp": 21.5}) == []


def test_a_record_take_waiting_here_is_woken_by_a_set_in_another_process(url: str, space: Any) -> None:
    space.create("job", {"state": "new"})
    taker = spawn(space.take_record, {"state": "ready"}, None, PATIENCE)
    wait_until(lambda: space.statistics()["record_takers"] == 1, "the taker to wait")
    finished(run_child(url, 'space.record("job").set("state", "ready")'))
    assert taker.result(PATIENCE).fields == {"state": "ready"}
    assert space.statistics()["records"] == 0


def test_record_takers_in_two_processes_share_the_records_without_duplicates(url: str, space: Any) -> None:
    code = """
    got = []
    while True:
        n = space.take_record({"kind": "job"}).fields["n"]
        if n is None:
            break
        got.append(n)
    print(" ".join(map(str, got)))
    """
    children = [run_child(url, code) for _ in range(2)]
    for n in range(50):
        space.create(f"jobs/{n}", {"kind": "job", "n": n})
    space.create("end/1", {"kind": "job", "n": None})
    space.create("end/2", {"kind": "job", "n": None})
    taken = [int(n) for child in children for n in finished(child).split()]
    assert sorted(taken) == list(range(50))
    assert space.find({"kind": "job"}) == []


def test_a_record_moved_in_another_process_is_found_at_its_new_path_and_its_old_one(
    url: str, space: Any
) -> None:
    rec = space.create("inbox/1", {"n": 1})
    finished(run_child(url, 'space.record("inbox/1").move("done/1", redirect_lease=None)'))
    assert space.record("done/1") == rec
    assert str(space.record("inbox/1").address).endswith("/done/1")
    assert rec.get("$version") == 2
    assert space.find({"n": 1}, under="done") == [rec]
    assert space.find({"n": 1}, under="inbox") == []
    space.create("inbox/1", {"n": 2})  # takes the path over from the redirection
    assert space.record("inbox/1").get("n") == 2


def test_containment_holds_across_processes(url: str, space: Any) -> None:
    part = space.create("parts/1", {"kind": "bolt"})
    code = """
    part = space.record("parts/1")
    order = space.create("orders/1", {"part": part})
    print(part.get("$refcount"), order.get("$level"))
    try:
        part.set("loop", order)
    except ts.ContainmentCycle:
        print("cycle refused")
    """
    assert finished(run_child(url, code)) == "1 1\ncycle refused\n"
    with pytest.raises(ts.RecordInUse):
        part.destroy()
    order = space.record("orders/1")
    assert order.get("part") == part.address
    assert space.record("$").get("TUPS") == {"orders/1": order.address}
    part.move("parts/2")
    assert order.get("part") == part.address
    part.destroy(force=True)
    assert order.get("part") is None
    assert order.get("$level") == 0


def test_a_watch_waiting_through_a_capability_ends_when_another_process_revokes_it(
    url: str, space: Any
) -> None:
    rec = space.create("offers/1", {"price": 10})
    cap = rec.capability({"watch"})
    with space.record(cap.address).watch() as watch:
        waiting = spawn(watch.get, timeout=PATIENCE)
        assert finished(run_child(url, f"space.revoke_capability({str(cap.address)!r})")) == ""
        assert waiting.result(PATIENCE) is None
        assert watch.closed


def test_a_capability_made_here_gives_its_rights_in_another_process(url: str, space: Any) -> None:
    rec = space.create("offers/1", {"price": 10})
    cap = rec.capability({"read", "set"})
    code = f"""
    offer = space.record({str(cap.address)!r})
    print(sorted(offer.operations), offer.get("price"), offer.set("price", 9))
    try:
        offer.destroy()
    except ts.NotAllowed:
        print("destroy refused")
    """
    assert finished(run_child(url, code)) == "['read', 'set'] 10 2\ndestroy refused\n"
    assert rec.get("price") == 9
    cap.revoke()
    code = f"""
    try:
        space.record({str(cap.address)!r})
    except ts.CapabilityRevoked:
        print("revoked")
    """
    assert finished(run_child(url, code)) == "revoked\n"
    assert space.statistics()["capabilities"] == 0


def test_closing_the_space_ends_its_waiting_record_takes_and_watches(url: str) -> None:
    space = ts.connect(url)
    takers = [spawn(space.take_record, {"state": "ready"}, None, PATIENCE) for _ in range(2)]
    wait_until(lambda: space.statistics()["record_takers"] == 2, "the takers to wait")
    watch = space.watch_records()
    space.close()
    for taker in takers:
        with pytest.raises(ts.SpaceClosed):
            taker.result(PATIENCE)
    assert watch.get(timeout=PATIENCE) is None


def test_transfers_from_two_processes_move_credit_exactly(url: str, space: Any) -> None:
    space.grant_credit("alice", "100.000000001")
    code = """
    for _ in range(50):
        space.transfer_credit("alice", "bob", "0.5")
    """
    children = [run_child(url, code) for _ in range(2)]
    for child in children:
        finished(child)
    assert (space.account("alice"), space.account("bob")) == (ts.Credit("50.000000001"), ts.Credit(50))
    with pytest.raises(ts.InsufficientCredit):
        space.transfer_credit("alice", "bob", 51)
    rec = space.create("r", {"n": 1}, credit="2.5")
    rec.refresh(credit=1)
    assert finished(run_child(url, 'print(space.record("r").get("$credit"))')) == "3.5\n"


def test_a_record_whose_credit_runs_out_is_collected_once_whichever_processes_look(url: str) -> None:
    charging = url + "&charge_rate=1024&creation_charge=0.5&operator=node"  # 1 credit/s per byte
    with ts.connect(charging) as space:
        space.grant_credit("alice", 2000)
        brief = space.create("brief", {"n": 1}, credit="0.5", principal="alice")  # 7 bytes: 7 credit/s
        box = space.create("box", {"item": brief.address}, credit=1000, principal="alice")
        with space.watch_records() as watch:
            code = """
            import time
            deadline = time.monotonic() + 60
            while space.statistics()["records"] > 1 and time.monotonic() < deadline:
                space.account("node"), space.read_records({})
            print(space.statistics()["records"], space.operator)
            """
            children = [run_child(url, code) for _ in range(2)]
            assert [finished(child) for child in children] == ["1 node\n"] * 2
            seen = [(c.kind, c.path, c.tag) for c in (watch.get(timeout=PATIENCE) for _ in range(2))]
        assert sorted(seen) == [("expire", "brief", None), ("update", "box", "item")]
        assert box.get("item") is None
        box.destroy()
        assert space.account("alice") + space.account("node") == 2000
        assert space.account("node") > 1001


def test_two_processes_charging_one_record_charge_it_once(url: str) -> None:
    with ts.connect(url + "&charge_rate=1024") as space:
        space.grant_credit("alice", 10_000)
        space.grant_credit("bob", 10_000)
        rec = space.create("r", {"n": 1}, credit=3000, principal="alice")  # 3 credit/s
        code = """
        rec = space.record("r")
        for i in range(40):
            rec.set("n", i % 2 + 8)
            rec.refresh(credit="0.5", principal="bob")
            space.account("operator")
        space.transfer_credit("operator", "carol", "0.000000001")
        """
        children = [run_child(url, code) for _ in range(2)]
        for child in children:
            finished(child)
        assert space.account("bob") == 10_000 - 40
        assert 0 < rec.get("$credit") < 3040
        rec.destroy()
        assert sum(space.account(p) for p in ("alice", "bob", "carol", "operator")) == 20_000


def test_a_space_following_a_simulated_clock_has_its_time_for_every_process(
    url: str, redis_cluster: RedisClusterServers
) -> None:
    clock = ts.SimulatedClock()
    with ts.connect(url + "&charge_rate=1024", clock=clock) as space:
        space.grant_credit("alice", 100)
        space.create("r", {"n": 1}, credit=30, principal="alice")  # 3 credit/s: 10 s
        space.write(("job", 1), lease=5)
        clock.advance(4)
        code = """
        rec = space.record("r")
        print(rec.get("$credit"), rec.get("$lifetime"), space.count(("job", ANY)))
        """
        assert finished(run_child(url, code)) == "18 6.0 1\n"
        with ts.connect(url, clock=ts.SimulatedClock()) as behind:  # a clock behind moves nothing
            assert behind.record("r").get("$credit") == 18
        clock.advance(6)
        assert (
            finished(run_child(url, 'print(space.statistics()["records"], space.count(("job", ANY)))'))
            == "0 0\n"
        )
        assert space.account("operator") == 30
    with pytest.raises(ValueError, match="SimulatedClock"):
        ts.connect(url, clock=ts.SystemClock())
    with pytest.raises(ValueError, match="partitioned"):
        ts.connect(redis_cluster.space_url() + "&partitions=2&route=0", clock=clock)


def test_an_advance_of_the_clock_here_times_out_the_calls_waiting_in_another_process(url: str) -> None:
    code = """
    import time
    from concurrent.futures import ThreadPoolExecutor
    space.follow(ts.SimulatedClock())  # a clock of its own, never advanced: the parent moves the time
    def outcome(call, *args):
        try:
            return repr(call(*args))
        except ts.Timeout:
            return "timed out"
    with ThreadPoolExecutor() as pool:
        take = pool.submit(outcome, space.take, ("job", 1), 300)
        read = pool.submit(outcome, space.read, ("job", int), 600)
        while space.statistics()["waiters"] < 2:
            time.sleep(0.01)
        print("waiting", flush=True)
        print("take", take.result(), flush=True)
        print("read", read.result(), flush=True)
    """
    clock = ts.SimulatedClock()
    with ts.connect(url, clock=clock) as space:
        child = run_child(url, code)
        try:
            assert child.stdout is not None
            assert spawn(child.stdout.readline).result(PATIENCE) == "waiting\n"
            clock.advance(300)
            assert spawn(child.stdout.readline).result(PATIENCE) == "take timed out\n"
            clock.advance(299)  # short of the read's deadline: it sees the write that follows
            space.write(("job", 2))
            assert finished(child) == "read ('job', 2)\n"
        finally:
            child.kill()
            child.wait()
        assert space.clock_now() == (clock.now(), True)


def test_a_script_looks_for_ended_leases_only_once_one_may_have_ended(url: str) -> None:
    """No script looks for ended leases or registrations (``ZRANGEBYSCORE`` of ``exp``
    and ``wexp``) while none can have ended; a lease renewed shorter ends when it says."""
    stats = redis.Redis.from_url(url.partition("?")[0])

    def scans() -> int:
        return int(stats.info("commandstats").get("cmdstat_zrangebyscore", {}).get("calls", 0))

    clock = ts.SimulatedClock()
    with ts.connect(url, clock=clock) as space:
        space.write(("job", 0))
        before = scans()
        space.write(("job", 1), lease=100).renew(5)
        space.write(("job", 2), lease=50)
        space.write(("job", 3))
        assert scans() == before
        clock.advance(6)
        space.write(("job", 4))
        assert scans() > before
        assert space.statistics()["expired"] == 1
        clock.advance(50)
        assert space.take_all(("job", ANY)) == [("job", 0), ("job", 3), ("job", 4)]
        assert space.statistics()["expired"] == 2
    stats.close()


def test_the_charges_of_a_space_are_kept_in_redis_for_every_process(url: str) -> None:
    with ts.connect(url, charge_rate="0.5", creation_charge=2, operator="node") as space:
        with ts.connect(url) as again:
            assert (again.charge_rate, again.creation_charge, again.operator) == (
                ts.Credit("0.5"),
                ts.Credit(2),
                "node",
            )
        with pytest.raises(
            ValueError, match=r"^space '[^']+' has charge_rate='0.5'; it cannot be opened with '1'$"
        ):
            ts.connect(url, charge_rate=1)
        with pytest.raises(ValueError, match="operator"):
            ts.connect(url, operator="other")
        space.grant_credit("alice", 3)
        with pytest.raises(ts.InsufficientCredit) as info:
            space.create("r", {"n": 1}, credit=2, principal="alice")
        assert (info.value.needed, info.value.available) == (ts.Credit(4), ts.Credit(3))
    for option in ("charge_rate=-1", "charge_rate=0.0000000001", "creation_charge=x", "operator="):
        with pytest.raises(ValueError, match=option.partition("=")[0]):
            ts.connect(f"{url}-other&{option}")


@pytest.mark.parametrize(
    "options", [{"order": "lifo"}, {"capacity": 5}, {"order": "random", "capacity": None}]
)
def test_a_space_opened_with_other_options_is_the_error_sqlite_gives(
    redis_server: RedisServer, tmp_path: Path, options: dict[str, Any]
) -> None:
    errors = []
    for url in (redis_server.space_url(), f"sqlite:///{tmp_path}/spaces.db?space=jobs"):
        name = url.rpartition("space=")[2]
        with ts.connect(url, capacity=10), pytest.raises(ValueError, match="cannot be opened with") as info:
            ts.connect(url, **options)
        errors.append(str(info.value).replace(repr(name), "'jobs'"))
    assert errors[0] == errors[1]


def test_a_record_whose_lease_ends_expires_for_every_process(url: str, space: Any) -> None:
    with space.watch_records() as watch:
        finished(run_child(url, 'space.create("brief", {"n": 1}, lease=0.1)'))
        assert [watch.get(timeout=PATIENCE).kind for _ in range(2)] == ["create", "expire"]
    with pytest.raises(ts.RecordNotFound):
        space.record("brief")
    assert space.statistics()["records"] == 0


def test_a_space_keeps_the_options_it_was_made_with(url: str, space: Any) -> None:
    with pytest.raises(ValueError, match="order='fifo'"):
        ts.connect(url, order="lifo")
    with ts.connect(url) as again:
        assert again.order == "fifo"
    with ts.connect(url.replace("?space=", "?order=lifo&capacity=2&space=") + "-other") as other:
        assert (other.order, other.capacity) == ("lifo", 2)


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("order=newest", "order"),
        ("capacity=0", "capacity"),
        ("capacity=x", "capacity"),
        ("event_retention=0", "event_retention"),
        ("event_retention_bytes=-1", "event_retention_bytes"),
        ("space=a%7Bb%7D", "space"),
        ("durability=full", "durability"),
    ],
)
def test_invalid_options_are_refused(redis_server: RedisServer, option: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ts.connect(f"{redis_server.url}?{option}")


def test_a_redis_that_goes_away_is_an_error_for_waiting_and_later_calls(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path))
    try:
        with ts.connect(server.space_url()) as space:
            space.write(("job", 1))
            taker = spawn(space.take, ("other",))
            wait_for_waiters(space, 1)
            server.kill()
            with pytest.raises(ts.Unreachable) as info:
                taker.result(PATIENCE)
            assert isinstance(info.value, ConnectionError)
            assert server.url in str(info.value)
            with pytest.raises(ts.Unreachable):
                space.write(("job", 2))
            with pytest.raises(ts.Unreachable):
                space.take(("job", int), timeout=PATIENCE)
    finally:
        server.kill()


def test_a_redis_that_is_not_there_is_an_error_at_once(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path))
    server.kill()
    with pytest.raises(ts.Unreachable):
        ts.connect(server.space_url())


# -- what an operator may get wrong ---------------------------------------------------------


def test_wrong_credentials_are_a_store_error_that_never_shows_the_password(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path))
    try:
        with redis.Redis(port=server.port) as admin:
            admin.config_set("requirepass", "secret")
        url = server.space_url("jobs")
        for given in ("", ":wrong@", "bob:wrong@"):
            with pytest.raises(
                ts.StoreError, match="refused the credentials of the URL for space 'jobs'"
            ) as info:
                ts.connect(url.replace("//", "//" + given, 1))
            assert "wrong" not in str(info.value)
        with ts.connect(url.replace("//", "//:secret@", 1)) as space:
            space.write(("job",))
            assert "secret" not in repr(space)
    finally:
        server.kill()


@pytest.mark.parametrize("database", ["abc", "-1"])
def test_a_database_that_is_not_a_number_is_refused(redis_server: RedisServer, database: str) -> None:
    with pytest.raises(ValueError, match=f"the database must be a number .*not '{database}'"):
        ts.connect(f"redis://127.0.0.1:{redis_server.port}/{database}?space=jobs")


def test_a_database_redis_does_not_have_is_a_store_error_naming_it(redis_server: RedisServer) -> None:
    with pytest.raises(ts.StoreError, match=r"/99: Redis has no such database .* for space 'jobs'"):
        ts.connect(f"redis://127.0.0.1:{redis_server.port}/99?space=jobs")


def test_a_rediss_url_at_a_redis_without_tls_says_what_it_needs(redis_server: RedisServer) -> None:
    with pytest.raises(ts.Unreachable, match="a rediss:// URL needs a Redis that speaks TLS on that port"):
        ts.connect(redis_server.space_url().replace("redis://", "rediss://"))


def test_a_cluster_url_at_a_single_redis_and_the_reverse_are_store_errors(
    redis_server: RedisServer, redis_cluster: RedisClusterServers
) -> None:
    single = redis_server.url.replace("redis://", "redis+cluster://").removesuffix("/0") + "?space=jobs"
    node = redis_cluster.url.replace("redis+cluster://", "redis://") + "/0?space="
    with pytest.raises(ts.StoreError, match="is not a Redis Cluster: open space 'jobs' with a redis:// URL"):
        ts.connect(single)
    for name in "abcdefgh":  # spaces on the slots of that node, and of the others
        with pytest.raises(
            ts.StoreError, match=f"is a node of a Redis Cluster: open space '{name}' with a redis\\+"
        ):
            ts.connect(node + name)

    async def main() -> None:
        with pytest.raises(ts.StoreError, match="is not a Redis Cluster"):
            await ts.connect_async(single)
        for name in "abcdefgh":
            with pytest.raises(ts.StoreError, match="is a node of a Redis Cluster"):
                await ts.connect_async(node + name)

    asyncio.run(main())


def test_a_key_of_the_space_another_client_changed_is_a_store_error_naming_the_space(
    url: str, space: Any
) -> None:
    space.write(("job", 1))
    name = url.rpartition("space=")[2]
    with redis.Redis.from_url(url.partition("?")[0]) as other:
        other.delete(prefix(name) + ":tup")
        other.set(prefix(name) + ":tup", "mine now")
    for call in (lambda: space.write(("job", 2)), lambda: space.read_all(("job", int))):
        with pytest.raises(ts.StoreError, match=f"a key of space '{name}' holds another kind of value"):
            call()


def test_a_space_whose_redis_lost_its_data_is_a_store_error_until_opened_again(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path))
    url = server.space_url("jobs")
    try:
        with redis.Redis(port=server.port) as admin, ts.connect(url, capacity=2, order="lifo") as space:
            space.write(("job", 1))
            admin.flushdb()  # as a restart without its data: the scripts stay loaded
            calls = [lambda: space.write(("job", 2)), lambda: space.try_take(("job", int))]
            calls += [
                lambda: space.count(("job", int)),
                lambda: space.transaction(lease=PATIENCE).take(("job", 1)),
            ]
            for call in calls:
                with pytest.raises(
                    ts.StoreError, match=r"space 'jobs' is no longer in Redis at .*: open it again"
                ):
                    call()
            assert admin.keys(prefix("jobs") + "*") == []  # not made anew, without its options
            with ts.connect(url, capacity=2, order="lifo") as again:
                again.write_many([("job", 3), ("job", 4)])
                with pytest.raises(ts.SpaceFull):
                    again.write(("job", 5), timeout=0)
                assert again.take(("job", int)) == ("job", 4)
    finally:
        server.kill()


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_a_redis_that_evicts_keys_when_full_is_refused_at_open(tmp_path: Path, policy: str) -> None:
    server = RedisServer(str(tmp_path))
    try:
        with redis.Redis(port=server.port) as admin:
            admin.config_set("maxmemory-policy", policy)
            with ts.connect(server.space_url("jobs")) as space:  # without maxmemory, nothing is evicted
                space.write(("job",))
            admin.config_set("maxmemory", 100 << 20)
            with pytest.raises(ts.StoreError, match=f"evicts keys when full \\(maxmemory-policy {policy}"):
                ts.connect(server.space_url("jobs"))
    finally:
        server.kill()


def test_a_full_redis_refuses_a_write_whole_and_the_space_is_still_read_and_drained(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path))
    try:
        with (
            redis.Redis(port=server.port) as admin,
            ts.connect(server.space_url(), event_retention=10) as space,
        ):
            space.write(("job", 0, ""))
            admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 200_000)

            def fill() -> None:
                for n in range(1, 10_000):
                    space.write(("job", n, "x" * 1000))

            with pytest.raises(
                ts.StoreError, match=r"is full .* changed nothing \(reads and takes still run\)"
            ):
                fill()
            written = space.count(("job", int, str))
            with pytest.raises(ts.StoreError, match="is full"):
                space.write_many([("batch", n) for n in range(1000)])
            assert space.count(("batch", int)) == 0  # nothing half-written
            assert space.read(("job", 0, str)) == ("job", 0, "")
            assert space.take(("job", 0, str)) == ("job", 0, "")
            assert space.try_take(("job", 1, str)) == ("job", 1, "x" * 1000)
            with space.transaction(lease=PATIENCE) as tx:
                assert tx.take(("job", 2, str)) == ("job", 2, "x" * 1000)
            assert [t[1] for t in space.take_all(("job", int, str))] == list(range(3, written))
    finally:
        server.kill()


def test_a_subscription_sees_the_events_of_every_process_and_another_resumes_after_it(
    url: str, space: Any
) -> None:
    sub = space.subscribe(("job", int))
    waiting = spawn(sub.get)
    finished(run_child(url, 'space.write(("job", 1)); space.take(("job", 1))'))
    events = [waiting.result(PATIENCE), sub.get(timeout=PATIENCE)]
    assert [(e.kind, e.tuple) for e in events] == [("write", ("job", 1)), ("take", ("job", 1))]
    assert events[1].seq == events[0].seq + 1
    sub.close()
    space.write(("job", 2))
    code = f"""
    e = space.subscribe(("job", int), since={sub.last_seq}).get(timeout=0)
    print(e.seq, e.kind, e.tuple)
    """
    assert finished(run_child(url, code)) == f"{sub.last_seq + 1} write ('job', 2)\n"


def test_a_commit_that_only_takes_tells_the_processes_listening(redis_server: RedisServer) -> None:
    """A commit that writes nothing logs its take events and says so on the space's
    channel, so that subscriptions waiting in any process read on (claims of servers on
    Redis are such commits); before, they slept until some other change."""
    name = "listened-" + os.urandom(6).hex()
    listener = redis.Redis(host="127.0.0.1", port=redis_server.port).pubsub()
    listener.ssubscribe(prefix(name) + ":ch")
    with ts.connect(redis_server.space_url(name)) as space:
        space.write(("job", 1))
        with space.transaction() as tx:
            tx.take(("job", 1))
        deadline = time.monotonic() + PATIENCE
        told = []
        while b"r 0" not in told and time.monotonic() < deadline:
            message = listener.get_message(timeout=1.0)
            if message is not None and message["type"] == "smessage":
                told.append(message["data"])
        assert b"r 0" in told, told
        with space.subscribe(("job", int), since=0) as sub:
            assert [sub.get(timeout=0).kind, sub.get(timeout=0).kind] == ["write", "take"]
    listener.close()


def test_the_event_log_in_redis_is_bounded_in_bytes(redis_server: RedisServer) -> None:
    with ts.connect(redis_server.space_url(), event_retention_bytes=1 << 20) as space:
        base = space.statistics()["last_event"]
        sub = space.subscribe(("big", int, bytes), since=base)
        payload = b"x" * 300_000
        for i in range(5):
            space.write(("big", i, payload))
            space.take(("big", i, bytes))
            stats = space.statistics()
            assert stats["logged_bytes"] <= 1 << 20
        assert stats["logged_events"] == 2  # 600 kB of the 3 MB written and taken
        with pytest.raises(ts.EventsLost) as info:
            sub.get(timeout=0)
        assert (info.value.first_missing, info.value.oldest_available) == (base + 1, base + 9)
        assert [(e.kind, e.tuple[1]) for e in (sub.get(timeout=0), sub.get(timeout=0))] == [
            ("write", 4),
            ("take", 4),
        ]
    with ts.connect(redis_server.space_url(), event_retention_bytes=0) as space:
        space.write_many([("a",), ("b",)])
        assert space.statistics()["logged_events"] == 1  # the latest event is always kept


def keys_by_master(cluster: RedisClusterServers, url: str) -> dict[int, list[bytes]]:
    """The keys of the space ``url`` that each master of ``cluster`` holds, by its port."""
    held = {}
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            if node.info("replication")["role"] == "master":
                held[port] = node.keys("{ts:" + url.rpartition("=")[2] + "}*")
    return held


def holder(cluster: RedisClusterServers, url: str) -> int:
    """The port of the master that holds the space ``url``."""
    return next(port for port, keys in keys_by_master(cluster, url).items() if keys)


def test_a_space_on_a_redis_cluster_lives_on_one_node_and_wakes_other_processes(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url()
    with ts.connect(url) as space:
        child = run_child(url, 'space.write(("ready",)); print(space.take(("job", int))[1])')
        assert space.take(("ready",), timeout=PATIENCE) == ("ready",)
        sub = space.subscribe(("job", int), since=0)
        space.write(("job", 42))
        assert finished(child) == "42\n"
        assert [(e.kind, e.tuple) for e in (sub.get(timeout=PATIENCE), sub.get(timeout=PATIENCE))] == [
            ("write", ("job", 42)),
            ("take", ("job", 42)),
        ]
        held = keys_by_master(redis_cluster, url)
        assert len(held) == 3
        assert sorted(len(keys) > 0 for keys in held.values()) == [False, False, True]


def test_a_transaction_whose_process_was_killed_gives_its_tuples_back_at_their_place(
    url: str, space: Any
) -> None:
    jobs = [("job", n) for n in range(5)]
    space.write_many(jobs)
    child = run_child(
        url,
        """
        import time
        tx = space.transaction(lease=3)
        tx.take(("job", 1))
        tx.take(("job", int))
        tx.write(("result", 1))
        print("held", flush=True)
        time.sleep(600)
        """,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "held\n"
    assert space.read_all((str, int)) == [("job", 2), ("job", 3), ("job", 4)]
    assert space.statistics()["transactions"] == 1
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=PATIENCE)
    # No process looks after the dead one's transaction: the next call past its lease gives
    # its tuples back, and the take waiting here is woken by them.
    assert space.take(("job", 1), timeout=PATIENCE) == ("job", 1)
    assert space.read_all((str, int)) == jobs[:1] + jobs[2:]
    stats = space.statistics()
    assert (stats["transactions"], stats["aborts"]) == (0, 1)


def test_a_claim_is_ended_from_any_process_by_its_transaction_and_tag_and_its_outcome_kept(
    url: str, space: Any
) -> None:
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    kept, gone = space.claim("tag-1", PATIENCE * 4, PATIENCE), space.claim("tag-2", PATIENCE * 4, PATIENCE)
    assert kept.take(("job", 1)) == ("job", 1)
    assert gone.take_all(("job", int)) == [("job", 2), ("job", 3)]
    with ts.connect(url) as other:  # as another process (another server) would
        assert other.end_claim(kept.id, "tag-2", True, PATIENCE) is None  # another claim's tag
        assert other.end_claim(kept.id, "tag-1", True, PATIENCE) == "committed"
        assert other.end_claim(gone.id, "tag-2", False, PATIENCE) == "aborted"
        assert other.end_claim(kept.id, "tag-1", False, PATIENCE) == "committed"  # as it was
        assert other.end_claim(gone.id, "tag-2", True, PATIENCE) == "aborted"
        assert other.end_claim("999999", "tag-1", True, PATIENCE) is None
    assert space.read_all((str, int)) == [("job", 2), ("job", 3)]
    stats = space.statistics()
    assert (stats["transactions"], stats["commits"], stats["aborts"]) == (0, 1, 1)
    given_to_nobody = space.claim("tag-3", PATIENCE * 4, PATIENCE)
    with pytest.raises(ts.TransactionError, match="takes only"):
        given_to_nobody.write(("result", 1))
    assert given_to_nobody.take(("job", 2)) == ("job", 2)
    given_to_nobody.abort()  # the tuple goes back, and the claim is forgotten
    assert space.end_claim(given_to_nobody.id, "tag-3", True, PATIENCE) is None
    assert space.read_all((str, int)) == [("job", 2), ("job", 3)]


def test_a_claim_holds_the_records_it_takes_out_of_sight_until_it_ends(url: str, space: Any) -> None:
    space.create("jobs/1", {"kind": "job"})
    space.create("jobs/2", {"kind": "job"}, lease=PATIENCE * 4)
    kept, back = space.claim("tag-1", PATIENCE * 4, PATIENCE), space.claim("tag-2", PATIENCE * 4, PATIENCE)
    assert str(space.try_take_record({"kind": "job"}, claim=kept).address).endswith("/jobs/1")
    assert str(space.take_record({"kind": "job"}, timeout=0, claim=back).address).endswith("/jobs/2")
    with ts.connect(url) as other:  # as another process sees them: held, their paths their own
        assert other.find({"kind": "job"}) == []
        assert other.try_take_record({"kind": "job"}) is None
        with pytest.raises(ts.RecordNotFound):
            other.record("jobs/1")
        with pytest.raises(ts.RecordExists):
            other.create("jobs/2", {"kind": "impostor"})
        back.abort()  # as it was, with its lease
        assert [str(r.address).rsplit("/", 1)[1] for r in other.find({"kind": "job"})] == ["2"]
        assert other.record("jobs/2").lifetime_ends() is not None
        kept.commit()  # destroyed, with its one destroy event
        with pytest.raises(ts.RecordNotFound):
            other.record("jobs/1")
        destroyed = other.watch_records(events=["destroy"], since=0)
        change = destroyed.get(timeout=PATIENCE)
        assert change is not None
        assert change.path == "jobs/1"
        destroyed.close()
        assert other.record("jobs/2").get("kind") == "job"
    ended = space.claim("tag-3", 0.2, PATIENCE)
    assert space.try_take_record({"kind": "job"}, claim=ended) is not None
    wait_until(lambda: space.find({"kind": "job"}) != [], "the record back once the claim ran out")
    with pytest.raises(ts.TransactionAborted):
        space.try_take_record({"kind": "job"}, claim=ended)
    assert space.statistics()["transactions"] == 0


def test_a_transaction_in_one_process_hides_its_takes_and_writes_from_another_until_commit(
    url: str, space: Any
) -> None:
    space.write_many([("job", 1), ("job", 2)])
    tx = space.transaction()
    assert tx.take(("job", int)) == ("job", 1)
    tx.write(("result", 1))
    assert finished(run_child(url, "print(space.read_all((str, int)))")) == "[('job', 2)]\n"
    tx.commit()
    assert finished(run_child(url, "print(space.read_all((str, int)))")) == "[('job', 2), ('result', 1)]\n"


def test_calls_waiting_inside_a_transaction_end_when_it_is_aborted_or_its_lease_runs_out(space: Any) -> None:
    tx = space.transaction()
    waiting = [spawn(tx.take, ("job", int)), spawn(tx.read, ("other",), timeout=600)]
    waiting.append(spawn(tx.take_all, ("job", int), timeout=600))
    wait_for_waiters(space, 3)
    tx.abort()
    for call in waiting:
        with pytest.raises(ts.TransactionAborted):
            call.result(PATIENCE)
    assert space.statistics()["waiters"] == 0
    short = space.transaction(lease=1)
    with pytest.raises(ts.TransactionAborted, match="lease ran out"):
        short.take(("job", int))
    assert short.state == "aborted"
    with pytest.raises(ts.InvalidValue, match="should its process die"):
        space.transaction(lease=None)
    space.write(("job", 1))
    assert space.read_all(("job", int)) == [("job", 1)]


def test_an_async_transaction_begins_when_entered_and_commits_or_aborts_with_its_block(url: str) -> None:
    async def main() -> None:
        aspace = await ts.connect_async(url)
        try:
            await aspace.write_many([("job", 1), ("job", 2)])
            tx = aspace.transaction()
            assert (await aspace.statistics())["transactions"] == 0  # not begun yet
            async with tx:
                assert (await aspace.statistics())["transactions"] == 1
                assert await tx.take(("job", int)) == ("job", 1)
                await tx.write(("result", 1))
                assert await aspace.read_all((str, int)) == [("job", 2)]
            assert tx.state == "committed"
            assert await aspace.read_all((str, int)) == [("job", 2), ("result", 1)]
            failing = aspace.transaction()

            async def fail_inside() -> None:
                async with failing:
                    assert await failing.take(("job", int)) == ("job", 2)
                    raise RuntimeError("failed")

            with pytest.raises(RuntimeError):
                await fail_inside()
            assert failing.state == "aborted"
            assert await aspace.read_all((str, int)) == [("job", 2), ("result", 1)]
        finally:
            await aspace.close()

    asyncio.run(main())


def test_the_transactions_open_in_a_process_are_bounded_and_those_run_out_make_room(url: str) -> None:
    with ts.connect(url, max_waiters=2) as space:
        open_ones = [space.transaction(lease=1), space.transaction(lease=1)]
        with pytest.raises(ts.LimitReached, match="transactions are open"):
            space.transaction()
        wait_until(lambda: all(tx.state == "aborted" for tx in open_ones), "their leases to run out")
        with space.transaction() as tx:
            tx.write(("job", 1))
        assert space.read_all(("job", int)) == [("job", 1)]


def test_a_transaction_across_partitions_reaches_each_and_a_dead_holder_gives_every_tuple_back(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url() + "&partitions=4&route=1"
    jobs = [("job", f"k{n}", n) for n in range(8)]  # in every partition
    with ts.connect(url) as space:
        space.write_many(jobs)
        sub = space.subscribe(ANY)
        with space.transaction() as tx:
            assert sorted(t[2] for t in tx.take_all(("job", str, int))) == list(range(8))
            tx.write(("done", "all", 8))
            assert space.count(("job", ANY, ANY)) == 0
            with pytest.raises(ts.Timeout):
                sub.get(timeout=0)  # nothing before the commit
        assert space.read_all(("done", ANY, ANY)) == [("done", "all", 8)]
        events = [sub.get(timeout=PATIENCE) for _ in range(9)]
        assert sorted((e.kind, e.tuple) for e in events) == sorted(
            [("take", t) for t in jobs] + [("write", ("done", "all", 8))]
        )
        # A process that dies holding tuples of every partition: each comes back when
        # the transaction's lease runs out there.
        space.write_many(jobs)
        child = run_child(
            url,
            """
            import os
            tx = space.transaction(lease=1)
            print(len(tx.take_all(("job", str, int))), flush=True)
            os._exit(0)
            """,
        )
        assert finished(child).strip() == "8"
        wait_until(lambda: space.count(("job", ANY, ANY)) == 8, "the dead process's tuples back")
        tx = space.transaction()
        assert len(tx.take_all(("job", str, int))) == 8
        tx.abort()  # in every partition
        assert sorted(space.read_all(("job", ANY, ANY))) == sorted(jobs)
        with pytest.raises(ts.NotSupported, match="partitioned by field 1"):
            space.claim("tag", 1.0, 1.0)


def test_takes_blocked_in_several_processes_are_served_in_the_order_they_began(url: str, space: Any) -> None:
    registered = redis.Redis.from_url(url.partition("?")[0])
    waiting_in_redis = "{ts:" + url.rpartition("=")[2] + "}:w"
    children = []
    for n in range(3):
        children.append(run_child(url, 'print(space.take(("job", ANY))[1])'))
        wait_until(lambda n=n: registered.hlen(waiting_in_redis) == n + 1, f"{n + 1} takes waiting in Redis")
    space.write_many([("job", n) for n in range(3)])
    assert [finished(child) for child in children] == ["0\n", "1\n", "2\n"]
    assert registered.hlen(waiting_in_redis) == 0
    assert space.count((ANY, ANY)) == 0
    registered.close()


def test_take_alls_and_takes_blocked_in_several_processes_are_served_in_the_order_they_began(
    url: str, space: Any
) -> None:
    registered = redis.Redis.from_url(url.partition("?")[0])
    waiting_in_redis = "{ts:" + url.rpartition("=")[2] + "}:w"

    def waiting(n: int) -> None:
        wait_until(lambda: registered.hlen(waiting_in_redis) == n, f"{n} calls waiting in Redis")

    first = run_child(url, 'print(space.take(("job", ANY))[1])')
    waiting(1)
    group = run_child(url, 'print([t[1] for t in space.take_all(("job", ANY), limit=3, timeout=None)])')
    waiting(2)
    here = spawn(space.take_all, ("job", ANY), timeout=None)
    waiting(3)
    last = run_child(url, 'print(space.take(("job", ANY))[1])')
    waiting(4)
    space.write_many([("job", n) for n in range(6)])
    assert finished(first) == "0\n"
    assert finished(group) == "[1, 2, 3]\n"
    assert here.result(PATIENCE) == [("job", 4), ("job", 5)]
    assert registered.hlen(waiting_in_redis) == 1  # the last take waits on
    space.write(("job", 6))
    assert finished(last) == "6\n"
    assert space.count((ANY, ANY)) == 0
    registered.close()


def test_a_tuple_handed_to_a_take_whose_process_died_returns_to_the_space(url: str, space: Any) -> None:
    registered = redis.Redis.from_url(url.partition("?")[0])
    waiting_in_redis = "{ts:" + url.rpartition("=")[2] + "}:w"
    child = run_child(url, 'space.take(("job", ANY))')
    wait_until(lambda: registered.hlen(waiting_in_redis) == 1, "the take waiting in Redis")
    child.kill()
    child.communicate(timeout=PATIENCE)
    space.write(("job", 1))  # handed to the dead process's take, until its registration runs out
    assert space.count(("job", ANY)) == 0
    assert space.take(("job", ANY), timeout=PATIENCE) == ("job", 1)
    registered.close()


def test_a_killed_cluster_master_is_an_error_then_its_replica_serves_the_space(tmp_path: Path) -> None:
    cluster = RedisClusterServers(str(tmp_path))  # one of its own: a node is killed
    try:
        url = cluster.space_url()
        with ts.connect(url + "&durability=replicated") as replicated:  # on the replica before the kill
            replicated.write_many([("job", n) for n in range(3)])
        with ts.connect(url) as space:
            taker = spawn(space.take, ("other",))
            wait_for_waiters(space, 1)
            cluster.kill(holder(cluster, url))
            with pytest.raises(ts.Unreachable):
                taker.result(PATIENCE)
            deadline = time.monotonic() + PATIENCE
            while True:  # until the replica has taken over the slot (2 s of silence, then a vote)
                try:
                    taken = space.take_all(("job", int))
                    break
                except ts.Unreachable:
                    assert time.monotonic() < deadline, "no replica took over the space's slot"
                    time.sleep(0.1)
            assert taken == [("job", n) for n in range(3)]  # written before the crash: replicated
            space.write(("job", 3))
            assert space.take(("job", int), timeout=PATIENCE) == ("job", 3)
    finally:
        cluster.stop()


def test_a_tuple_handed_to_a_take_waiting_in_redis_is_not_seen_by_readers_that_came_after(space: Any) -> None:
    taker = spawn(space.take, ("job", ANY))
    wait_for_waiters(space, 1)
    reader = spawn(space.read, ("job", int))
    wait_for_waiters(space, 2)
    space.write(("job", 1))
    space.write(("job", 2))
    assert taker.result(PATIENCE) == ("job", 1)
    assert reader.result(PATIENCE) == ("job", 2)


def test_a_take_waiting_in_redis_counts_as_waiting_once_redis_has_registered_it(url: str) -> None:
    """Its place among the calls waiting in its process is the moment Redis registered
    it: a call counted after it is served after it."""
    registered = redis.Redis.from_url(url.partition("?")[0])
    waiting_in_redis = "{ts:" + url.rpartition("=")[2] + "}:w"

    async def counted(aspace: Any) -> None:
        while (await aspace.statistics())["waiters"] == 0:
            await asyncio.sleep(0.01)

    async def main() -> list[Any]:
        seen: list[Any] = []
        async with await ts.connect_async(url) as aspace:
            # The first take sends its find script alone, the next its BLPOP right behind it.
            for n in range(2):
                taker = asyncio.create_task(aspace.take(("job", ANY)))
                await asyncio.sleep(0)  # it has sent its find script, whose answer is not read yet
                seen.append((await aspace.statistics())["waiters"])
                await asyncio.wait_for(counted(aspace), PATIENCE)
                seen.append(registered.hlen(waiting_in_redis))
                await aspace.write(("job", n))
                seen.append(await asyncio.wait_for(taker, PATIENCE))
        return seen

    assert asyncio.run(main()) == [0, 1, ("job", 0), 0, 1, ("job", 1)]
    registered.close()


def test_a_take_sends_its_pop_with_its_find_script_only_after_one_that_waited(url: str, space: Any) -> None:
    """A take whose template Redis matches alone and that finds a tuple at once runs one
    script: its BLPOP travels with the script only when the take before it waited."""
    stats = redis.Redis.from_url(url.partition("?")[0])

    def pops() -> int:
        return int(stats.info("commandstats").get("cmdstat_blpop", {}).get("calls", 0))

    space.write_many([("job", n) for n in range(3)])
    before = pops()
    assert [space.take(("job", ANY)) for _ in range(3)] == [("job", 0), ("job", 1), ("job", 2)]
    assert pops() == before
    taker = spawn(space.take, ("job", ANY))
    wait_for_waiters(space, 1)
    space.write(("job", 3))
    assert taker.result(PATIENCE) == ("job", 3)
    space.write_many([("job", 4), ("job", 5)])
    before = pops()
    assert space.take(("job", ANY)) == ("job", 4)  # after a take that waited: with its pop
    assert pops() == before + 1
    assert space.take(("job", ANY)) == ("job", 5)  # after one that found at once: alone
    assert pops() == before + 1
    stats.close()


def test_a_space_keeps_its_cfg_as_a_hash_table(url: str, space: Any) -> None:
    """Every script reads and sets a dozen fields of ``cfg``: Redis keeps it as a hash
    table (where each is found at once), not as a listpack scanned for each."""
    raw = redis.Redis.from_url(url.partition("?")[0])
    key = "{ts:" + url.rpartition("=")[2] + "}:cfg"
    space.write(("job", 1))
    assert raw.object("encoding", key) == b"hashtable"
    raw.close()


def test_a_find_by_one_index_key_walks_it_without_counting_it_first(url: str, space: Any) -> None:
    """A take or read whose candidates are one sorted set walks it at once (no ``ZCARD``):
    an empty set answers as one holding no match does."""
    stats = redis.Redis.from_url(url.partition("?")[0])

    def sizes() -> int:
        return int(stats.info("commandstats").get("cmdstat_zcard", {}).get("calls", 0))

    space.write_many([("job", 1), ("other", 2)])
    before = sizes()
    assert space.read(("job", ANY)) == ("job", 1)
    assert space.take(("job", ANY)) == ("job", 1)
    assert space.try_take(("job", ANY)) is None
    assert space.try_read(("none", ANY)) is None
    assert space.take_all((str, int)) == [("other", 2)]
    assert sizes() == before
    assert space.count(("job", ANY)) == 0  # a count reads the size
    stats.close()


def test_present_tuples_matched_by_redis_are_looked_up_one_at_a_time(url: str, space: Any) -> None:
    space.write_many([("job", 1), ("other", 1), ("job", 2), ("job", 3)])
    sub = space.subscribe(("job", ANY), existing=True)
    assert sub.statistics()["presenting"]
    first = sub.get(timeout=PATIENCE)
    finished(run_child(url, 'space.take(("job", 2)); space.write(("job", 4))'))
    events = [first] + [sub.get(timeout=PATIENCE) for _ in range(3)]
    assert [(e.kind, e.tuple) for e in events] == [
        ("present", ("job", 1)),
        ("present", ("job", 3)),
        ("take", ("job", 2)),
        ("write", ("job", 4)),
    ]
    assert not sub.statistics()["presenting"]
    assert events[0].seq == events[1].seq == events[2].seq - 1
    sub.close()


@pytest.mark.parametrize("order", ["fifo", "lifo"])
def test_present_tuples_are_found_past_batches_of_candidates_that_do_not_match(
    redis_server: RedisServer, order: str
) -> None:
    with ts.connect(redis_server.space_url(), order=order) as space:
        space.write_many([("job", "x")] * 600 + [("job", 1)] + [("job", "y")] * 600 + [("job", 2)])
        with space.subscribe(("job", int), existing=True) as sub:
            space.write(("job", 3))
            events = [sub.get(timeout=PATIENCE) for _ in range(3)]
    present = [("present", ("job", 1)), ("present", ("job", 2))]
    assert [(e.kind, e.tuple) for e in events] == (present if order == "fifo" else present[::-1]) + [
        ("write", ("job", 3))
    ]


@pytest.mark.parametrize("partitions", ["", "&partitions=3&route=1"])
def test_a_subscription_reads_ahead_a_bounded_number_of_bytes(url: str, partitions: str) -> None:
    big = "x" * (100 << 10)
    fit = READ_AHEAD_BYTES // len(big)
    with ts.connect(url + partitions) as space:
        sub = space.subscribe(("big", int, str), max_pending=10_000)
        watch = space.watch_records(max_pending=10_000)
        for n in range(3 * fit):  # one after the other: in this order in every partition
            space.write(("big", n, big))
            space.create(f"r{n}", {"text": big})
        assert sub.get(timeout=PATIENCE).tuple[1] == 0
        assert sub.statistics()["pending"] < fit  # of the 3 * fit logged, a few MiB
        assert [sub.get(timeout=PATIENCE).tuple[1] for _ in range(3 * fit - 1)] == list(range(1, 3 * fit))
        assert watch.get(timeout=PATIENCE).path == "r0"
        assert watch.statistics()["pending"] < fit
        assert [watch.get(timeout=PATIENCE).path for _ in range(3 * fit - 1)] == [
            f"r{n}" for n in range(1, 3 * fit)
        ]


def test_subscribe_any_presents_every_arity_in_order_skipping_tuples_whose_lease_ended(
    redis_server: RedisServer, space: Any
) -> None:
    client = redis.Redis.from_url(redis_server.url)

    def leases_ended() -> bool:
        seconds, micros = client.time()
        last = client.zrange(f"{{ts:{space.name}}}:exp", -1, -1, withscores=True)
        return not last or last[0][1] < seconds * 1000 + micros // 1000

    space.write(("a",))
    # More than the scripts of two lookups run out (64 each), so the third meets ended leases.
    space.write_many([("leased", n) for n in range(200)], lease=0.5)
    space.write_many([(), ("b", 1)])
    with space.subscribe(ANY, existing=True) as sub:
        wait_until(leases_ended, "the leases to end")
        events = [sub.get(timeout=PATIENCE) for _ in range(203)]
    client.close()
    assert [(e.kind, e.tuple) for e in events[:3]] == [
        ("present", ("a",)),
        ("present", ()),
        ("present", ("b", 1)),
    ]
    assert sorted(e.tuple[1] for e in events[3:] if e.kind == "expire") == list(range(200))


# -- a space spread over partitions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("partitions=0&route=0", "partitions must be an int from 1 to 256, got 0"),
        ("partitions=257&route=0", "partitions must be an int from 1 to 256, got 257"),
        ("partitions=x&route=0", "option partitions must be an integer, got 'x'"),
        ("partitions=4", "route must name the field"),
        ("partitions=4&route=-1", "route must be an int from 0 to 255"),
        ("partitions=4&route=256", "route must be an int from 0 to 255"),
        ("partitions=4&route=one", "option route must be an integer, got 'one'"),
        ("route=1", "route=1 needs partitions > 1"),
    ],
)
def test_invalid_partitions_are_refused(redis_server: RedisServer, options: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ts.connect(f"{redis_server.url}?{options}")


def test_a_partitioned_space_keeps_each_tuple_in_the_partition_of_its_route_field(
    redis_cluster: RedisClusterServers,
) -> None:
    name = "spread"  # its 8 slots (840 to 14539) are on each of the 3 masters
    url = redis_cluster.space_url(name) + "&partitions=8&route=1"
    raw = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
    with ts.connect(url) as space:
        space.write_many([("job", f"key-{n}", n) for n in range(40)])
        held = {i: raw.hlen("{ts:" + name + (f":{i}" if i else "") + "}:tup") for i in range(8)}
        assert sum(held.values()) == 40
        assert sum(n > 0 for n in held.values()) > 1
        masters = {str(raw.get_node_from_key("{ts:" + name + (f":{i}" if i else "") + "}")) for i in range(8)}
        assert len(masters) == 3  # the partitions are on every master
        assert space.count(("job", ANY, ANY)) == 40
        assert space.statistics()["tuples"] == 40
        with pytest.raises(ts.InvalidValue, match="another partition"):
            space.replace(("job", "key-1", ANY), ("job", "key-2", 1), timeout=0)
        assert space.read(("job", "key-7", int), timeout=0) == ("job", "key-7", 7)
        assert space.take(("job", "key-8", ANY), timeout=0) == ("job", "key-8", 8)
        taken = space.take_all(("job", str, int), limit=30)
        assert len(set(taken)) == len(taken) == 30
        assert sorted(t[2] for t in taken + space.take_all(("job", ANY, ANY))) == sorted(set(range(40)) - {8})
        with pytest.raises(ValueError, match="partitions=8, route=1"):
            ts.connect(redis_cluster.space_url(name))
        with pytest.raises(ValueError, match="partitions=8, route=1"):
            ts.connect(redis_cluster.space_url(name) + "&partitions=4&route=1")
    raw.close()


def test_takes_without_the_route_field_wait_on_every_partition_and_never_take_twice(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url() + "&partitions=4&route=1"
    code = """
    got = []
    while True:
        t = space.take(("job", ANY))
        if t[1] is None:
            break
        got.append(t[1])
    print(" ".join(map(str, got)))
    """
    with ts.connect(url) as space:
        here = [spawn(space.take, ("job", int)) for _ in range(2)]
        wait_for_waiters(space, 2)
        assert space.statistics()["waiters"] == 2  # each waits in all 4 partitions, counted once
        children = [run_child(url, code) for _ in range(2)]
        for n in range(200):
            space.write(("job", n))
        # Partitions are served in turn, not in the order of writes: the ends come last.
        wait_until(lambda: space.count(("job", ANY)) == 0, "every job taken")
        space.write_many([("job", None), ("job", None)])
        taken = [t[1] for t in (here[0].result(PATIENCE), here[1].result(PATIENCE))]
        taken += [int(n) for child in children for n in finished(child).split()]
        assert sorted(taken) == list(range(200))
        assert space.count(("job", ANY)) == 0
        assert space.statistics()["waiters"] == 0


def test_a_read_without_the_route_field_is_woken_by_a_write_to_any_partition(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url() + "&partitions=4&route=0"
    with ts.connect(url) as space:
        readers = [spawn(space.read, (str, int)) for _ in range(2)]
        wait_for_waiters(space, 2)
        finished(run_child(url, 'space.write(("b", 2))'))
        assert [r.result(PATIENCE) for r in readers] == [("b", 2), ("b", 2)]
        assert space.take((str, int), timeout=0) == ("b", 2)


def test_one_subscription_orders_the_events_of_every_partition_alike_everywhere_and_resumes_exactly(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url() + "&partitions=4&route=1"
    with ts.connect(url) as space, ts.connect(url) as other:
        here = space.subscribe(ANY)
        there = other.subscribe(("job", ANY, ANY))
        child = run_child(url, 'for n in range(60): space.write(("job", f"c{n}", n))')
        writer = spawn(lambda: [other.write(("job", f"o{n}", n)) for n in range(60)])
        for n in range(60):  # one process's writes, one after the other, to every partition
            space.write(("job", f"s{n}", n))
        finished(child)
        writer.result(PATIENCE)
        seen = [here.get(timeout=PATIENCE) for _ in range(180)]
        assert [(e.seq, e.tuple) for e in seen] == [
            (e.seq, e.tuple) for e in (there.get(timeout=PATIENCE) for _ in range(180))
        ]
        assert [e.seq for e in seen] == sorted({e.seq for e in seen})
        for source in "sco":  # each writer's changes in the order it made them
            assert [e.tuple[2] for e in seen if e.tuple[1][0] == source] == list(range(60))
        here.close()
        # Resumed in another process, after any of them: the rest, each once.
        resumed = finished(
            run_child(
                url,
                f"""
                sub = space.subscribe(ANY, since={seen[99].seq})
                print(*[sub.get(timeout=30).seq for _ in range(80)])
                try:
                    print("more", sub.get(timeout=0))
                except ts.Timeout:
                    print("no more")
                """,
            )
        )
        assert resumed.split("\n")[:2] == [" ".join(str(e.seq) for e in seen[100:]), "no more"]
        replay = other.subscribe(ANY, since=0)
        assert [replay.get(timeout=PATIENCE).seq for _ in range(180)] == [e.seq for e in seen]
        latest = space.statistics()["last_event"]
        assert latest >= seen[-1].seq
        after = space.subscribe(ANY, since=latest)
        child = run_child(url, 'space.write(("job", "late", 0))')
        finished(child)
        assert after.get(timeout=PATIENCE).tuple == ("job", "late", 0)
        assert there.get(timeout=PATIENCE).seq > seen[-1].seq
        assert space.statistics()["subscribers"] == 1


def test_a_subscription_resumed_in_a_quiet_partition_misses_none_of_its_next_events(
    redis_server: RedisServer,
) -> None:
    name = redis_server.space_url().rpartition("=")[2]
    url = redis_server.space_url(name) + "&partitions=4&route=1"
    raw = redis.Redis(port=redis_server.port)

    def partition() -> int:  # of the one tuple written into an empty space
        return next(i for i in range(4) if raw.hexists("{ts:" + name + (f":{i}" if i else "") + "}:tup", "1"))

    keys = {}  # a route value for the first and the last partition
    for n in range(64):
        with ts.connect(url) as probe:
            probe.write(("probe", f"v{n}"))
            keys.setdefault(partition(), f"v{n}")
            probe.take(("probe", f"v{n}"))
        raw.delete(*raw.keys("{ts:" + name + "*"))
        if 0 in keys and 3 in keys:
            break
    with ts.connect(url) as busy:
        sub = busy.subscribe(("job", keys[3], ANY))
        for n in range(50):  # the last partition's seqs run far ahead of the first's
            busy.write(("job", keys[3], n))
        since = [sub.get(timeout=PATIENCE) for _ in range(50)][-1].seq
    with ts.connect(url) as resumed:  # a process that knows nothing of the other seqs
        events = resumed.subscribe(ANY, since=since)
        finished(run_child(url, f'space.write(("job", "{keys[0]}", 0))'))  # so does this one
        assert events.get(timeout=PATIENCE).tuple == ("job", keys[0], 0)
    raw.close()


def test_a_partitioned_log_too_short_for_since_raises_events_lost(redis_server: RedisServer) -> None:
    url = redis_server.space_url() + "&partitions=2&route=1&event_retention=5"
    with ts.connect(url) as space:
        space.write_many([("n", "k", i) for i in range(10)])  # one partition keeps the last 5 of them
        with pytest.raises(ts.EventsLost) as info:
            space.subscribe(("n", str, int), since=0)
        sub = space.subscribe(("n", str, int), since=info.value.oldest_available - 1)
        events = [sub.get(timeout=PATIENCE) for _ in range(5)]
        assert [e.tuple[2] for e in events] == list(range(5, 10))
        assert events[0].seq == info.value.oldest_available
        assert info.value.first_missing < info.value.oldest_available


def test_the_arities_of_a_partitioned_space_are_those_of_its_partitions(redis_server: RedisServer) -> None:
    url = redis_server.space_url() + "&partitions=3&route=0"
    with ts.connect(url) as space:
        space.write_many([("a",), ("b", 1), ("c", 1, 2), ("d", 1)])  # routed by their first field
        assert space.statistics()["arities"] == [1, 2, 3]
        space.take(("c", int, int))
        assert space.statistics()["arities"] == [1, 2]


def test_a_partitioned_space_with_a_capacity_is_full_across_its_partitions(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url() + "&partitions=4&route=0&capacity=3"
    with ts.connect(url) as space:
        assert space.capacity == 3
        space.write_many([("a",), ("b",)])
        space.write(("c",), timeout=0)
        with pytest.raises(ts.SpaceFull) as info:
            space.write(("d",), timeout=0)
        assert (info.value.limit, info.value.maximum) == ("capacity", 3)
        assert finished(run_child(url, 'print(space.take(("a",), timeout=0))')) == "('a',)\n"
        with pytest.raises(ts.SpaceFull, match="2 tuples do not fit"):
            space.write_many([("d",), ("e",)])
        assert sorted(space.read_all((str,))) == [("b",), ("c",)]
        space.write(("d",), timeout=0)  # the room the other process made
        # A writer waiting for room is one waiting writer, woken by a take in any
        # partition, from any process.
        writer = spawn(space.write, ("e",))
        wait_for_waiters(space, 1)
        stats = space.statistics()
        assert (stats["tuples"], stats["waiters"], stats["waiting_writers"]) == (3, 1, 1)
        assert finished(run_child(url, 'space.take(("b",), timeout=0)')) == ""
        writer.result(PATIENCE)
        assert sorted(space.read_all((str,))) == [("c",), ("d",), ("e",)]
        assert space.statistics()["waiting_writers"] == 0
        with pytest.raises(ts.SpaceFull):
            space.write(("f",), timeout=0)


def test_processes_writing_at_once_fill_a_partitioned_space_to_its_capacity_exactly(
    redis_cluster: RedisClusterServers,
) -> None:
    url = redis_cluster.space_url() + "&partitions=4&route=1&capacity=7"
    code = """
    written = 0
    for i in range(12):
        try:
            space.write(("job", f"{sys.argv[2]}-{i}"), timeout=0)
            written += 1
        except ts.SpaceFull:
            pass
    print(written)
    """
    with ts.connect(url) as space:
        children = []
        for name in ("x", "y", "z"):
            source = CHILD.format(code=textwrap.dedent(code))
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", source, url, name],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        assert sum(int(finished(child)) for child in children) == 7
        assert space.count(("job", str)) == 7
        assert space.statistics()["tuples"] == 7


def test_write_if_absent_into_a_partitioned_space_with_a_capacity_takes_room(
    redis_server: RedisServer,
) -> None:
    with ts.connect(redis_server.space_url() + "&partitions=4&route=0&capacity=2") as space:
        assert space.write_if_absent((str,), ("c",))
        with pytest.raises(ts.SpaceFull):
            space.write_many([("d",), ("e",)])
        assert not space.write_if_absent((str,), ("d",))  # ("c",) matches
        space.write(("d",), timeout=0)
        assert not space.write_if_absent(("c",), ("e",))
        with pytest.raises(ts.SpaceFull):
            space.write_if_absent(("e",), ("e",))
        assert sorted(space.read_all((str,))) == [("c",), ("d",)]


def test_a_take_in_a_transaction_frees_room_in_a_partitioned_space(redis_server: RedisServer) -> None:
    with ts.connect(redis_server.space_url() + "&partitions=4&route=0&capacity=2") as space:
        space.write_many([("a",), ("b",)])
        tx = space.transaction()
        assert tx.take(("a",)) == ("a",)
        space.write(("c",), timeout=0)
        with pytest.raises(ts.SpaceFull):
            space.write(("d",), timeout=0)
        tx.abort()  # back, even into a full space
        assert sorted(space.read_all((str,))) == [("a",), ("b",), ("c",)]
        space.take(("a",))
        with pytest.raises(ts.SpaceFull):
            space.write(("d",), timeout=0)
        space.take(("b",))
        space.write(("d",), timeout=0)
        assert sorted(space.read_all((str,))) == [("c",), ("d",)]
    with ts.connect(redis_server.space_url() + "&partitions=4&route=0&capacity=4") as space:
        space.write_many([("a",), ("b",)])
        tx = space.transaction()
        assert sorted(tx.take_all((str,))) == [("a",), ("b",)]
        space.write_many([("c",), ("d",), ("e",)])
        tx.abort()  # the tuples put back hold room at once
        with pytest.raises(ts.SpaceFull):
            space.write(("f",), timeout=0)
        assert space.count((str,)) == 5


# A child that reserves room for ("a",) with a lease of 1 ms, then stops before its
# write in the partition: prints "reserved" and waits for a line (or the end) on stdin.
PAUSED_WRITER = """
import sys
import tuplespace.stores._redis_sync as store
store.RESERVATION_LEASE = 1
for part in space.core.serving(None):
    def paused(*args, write=part.core.write):
        print("reserved", flush=True)
        {then}
        return write(*args)
    part.core.write = paused
try:
    space.write(("a",), timeout=0)
    print("written")
except ts.SpaceFull:
    print("full")
"""


def _reservations(redis_server: RedisServer, url: str) -> int:
    raw = redis.Redis(port=redis_server.port)
    try:
        return raw.zcard("{ts:" + url.rpartition("space=")[2].partition("&")[0] + "}:res")
    finally:
        raw.close()


def test_room_reserved_by_a_process_killed_before_it_wrote_comes_back(redis_server: RedisServer) -> None:
    url = redis_server.space_url() + "&partitions=4&route=0&capacity=1"
    with ts.connect(url) as space:
        child = run_child(url, PAUSED_WRITER.format(then="import os; os._exit(0)"))
        assert finished(child) == "reserved\n"
        assert _reservations(redis_server, url) == 1  # it died holding room
        space.write(("b",), timeout=PATIENCE)
        assert _reservations(redis_server, url) == 0
        assert space.read_all((str,)) == [("b",)]
        with pytest.raises(ts.SpaceFull):
            space.write(("c",), timeout=0)


def test_a_write_whose_reservation_ran_out_and_was_cancelled_is_refused(redis_server: RedisServer) -> None:
    url = redis_server.space_url() + "&partitions=4&route=0&capacity=1"
    with ts.connect(url) as space:
        source = CHILD.format(code=PAUSED_WRITER.format(then="sys.stdin.readline()"))
        child = subprocess.Popen(
            [sys.executable, "-c", source, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "reserved\n"
        space.write(("b",), timeout=PATIENCE)  # cancels the reservation whose lease ran out
        assert finished(child) == "full\n"  # its write refused, it found the space full
        assert space.read_all((str,)) == [("b",)]
        assert _reservations(redis_server, url) == 0


def test_write_if_absent_looks_in_every_partition_its_template_can_match(redis_server: RedisServer) -> None:
    with ts.connect(redis_server.space_url() + "&partitions=4&route=1") as space:
        names = [f"node-{n}" for n in range(8)]  # in more than one partition
        assert space.write_if_absent(("lock", ANY), ("lock", names[0])) is True
        assert [space.write_if_absent(("lock", ANY), ("lock", name)) for name in names[1:]] == [False] * 7
        assert space.write_if_absent(("lock", "node-5"), ("owner", "node-5")) is True  # absent
        assert space.read_all((str, str)) in (
            [("lock", "node-0"), ("owner", "node-5")],
            [("owner", "node-5"), ("lock", "node-0")],
        )
        space.take(("lock", ANY))
        assert space.write_if_absent(("lock", ANY), ("lock", names[3])) is True
        assert space.read_all(("lock", ANY)) == [("lock", names[3])]


# -- durability -------------------------------------------------------------------------------------


def replica_of(cluster: RedisClusterServers, master: int) -> int:
    """The port of the replica of the master on port ``master``."""
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            replication = node.info("replication")
            if replication["role"] == "slave" and replication["master_port"] == master:
                return port
    raise AssertionError(f"the master on port {master} has no replica")


def test_a_replicated_change_is_acknowledged_once_a_replica_has_it(
    redis_cluster: RedisClusterServers,
) -> None:
    plain = redis_cluster.space_url()
    url = plain + "&durability=replicated"
    with ts.connect(url) as space:
        space.write(("job", 0))
        key = "{ts:" + plain.rpartition("=")[2] + "}:tup"
        replica = redis.Redis(
            port=replica_of(redis_cluster, holder(redis_cluster, plain)), single_connection_client=True
        )
        replica.execute_command("READONLY")
        for n in range(1, 20):
            space.write(("job", n))
            assert replica.hlen(key) == n + 1  # there as soon as the write returned
        taker = spawn(space.take, ("done", int))
        wait_for_waiters(space, 1)
        finished(run_child(url, 'space.write(("done", 1))'))
        assert taker.result(PATIENCE) == ("done", 1)
        assert len(space.take_all(("job", int))) == 20
        assert replica.hlen(key) == 0
        replica.close()


def test_a_replicated_change_that_no_replica_acknowledged_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    master = RedisServer(str(tmp_path / "master"))
    replica = RedisServer(str(tmp_path / "replica"))
    try:
        url = master.space_url()
        with pytest.raises(ts.StoreError, match="no replica acknowledged the change"):
            ts.connect(url + "&durability=replicated")  # a Redis without replicas
        with redis.Redis(port=replica.port) as node:
            node.replicaof("127.0.0.1", master.port)
            wait_until(lambda: node.info("replication")["master_link_status"] == "up", "the replica to sync")
        with ts.connect(url + "&durability=replicated") as space:
            space.write(("job", 1))
            replica.kill()
            with pytest.raises(ts.StoreError, match="no replica acknowledged the change"):
                space.write(("job", 2))
        with ts.connect(url) as plain:
            assert plain.take_all(("job", int)) == [("job", 1), ("job", 2)]  # the second: on the master only
    finally:
        replica.kill()
        master.kill()


# -- failures ---------------------------------------------------------------------------------------

WRITER = """
n = 0
try:
    while True:
        space.write(("job", n))
        print(n, flush=True)  # acknowledged
        n += 1
except ts.Unreachable:
    pass
"""


def test_every_acknowledged_write_survives_a_sigkill_of_redis_with_appendfsync_always(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path), persist=True)
    url = server.space_url() + "&partitions=4&route=1"
    try:
        with ts.connect(url) as space:
            waiting = spawn(space.take, ("never", ANY))  # across the 4 partitions
            wait_for_waiters(space, 1)
            writer = run_child(url, WRITER)
            assert writer.stdout is not None
            for _ in range(300):
                writer.stdout.readline()
            server.kill()
            with pytest.raises(ts.Unreachable):
                waiting.result(PATIENCE)
            acknowledged = {int(n) for n in finished(writer).split()} | set(range(300))
        server = RedisServer(str(tmp_path), persist=True, port=server.port)
        with ts.connect(url) as space:
            present = [t[1] for t in space.read_all(("job", int))]
        assert len(set(present)) == len(present)
        assert acknowledged <= set(present)  # nothing acknowledged is lost
        assert set(present) <= acknowledged | {max(acknowledged) + 1}  # and the one in flight, maybe
    finally:
        server.kill()


def test_a_redis_that_stops_answering_is_an_error_within_the_call_timeout(tmp_path: Path) -> None:
    server = RedisServer(str(tmp_path))
    try:
        with (
            ts.connect(server.space_url()) as space,
            ts.connect(server.space_url() + "&partitions=2&route=0") as spread,
        ):
            space.write(("job", 1))
            waiting = [spawn(space.take, ("other",))]  # waits in Redis
            wait_for_waiters(space, 1)
            waiting.append(spawn(space.read, (str, float)))  # waits for what is published
            wait_for_waiters(space, 2)
            waiting.append(spawn(spread.take, (str,)))  # waits for what any partition publishes
            wait_for_waiters(spread, 1)
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                calls = [*waiting, spawn(space.write, ("job", 2)), spawn(space.take, ("job", 1))]
                for call in calls:  # within 5 s (a look) and CONNECT_TIMEOUT (10 s), not a hang
                    with pytest.raises(ts.Unreachable, match="cannot reach Redis"):
                        call.result(PATIENCE)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
    finally:
        server.kill()


def test_a_cluster_master_killed_under_load_loses_no_replicated_write(tmp_path: Path) -> None:
    cluster = RedisClusterServers(str(tmp_path))  # one of its own: a node is killed
    try:
        plain = cluster.space_url()
        urls = {"async": plain, "replicated": plain + "&durability=replicated"}  # one space, two ways
        acknowledged: dict[str, list[int]] = {kind: [] for kind in urls}
        failed = dict.fromkeys(urls, 0)
        unreplicated = threading.Event()  # a replicated write refused: its master has no replica
        attempted = dict.fromkeys(urls, 0)
        stop = threading.Event()

        def load(kind: str) -> None:
            with ts.connect(urls[kind]) as space:
                while not stop.is_set():
                    n = attempted[kind]
                    attempted[kind] += 1
                    try:
                        space.write((kind, n))
                        acknowledged[kind].append(n)
                    except (ts.Unreachable, ts.StoreError) as exc:
                        failed[kind] += 1  # in doubt: made or not
                        if "no replica acknowledged" in str(exc):
                            unreplicated.set()
                        stop.wait(0.05)

        writers = [spawn(load, kind) for kind in urls]
        wait_until(lambda: min(map(len, acknowledged.values())) >= 200, "writes before the crash")
        dead = holder(cluster, plain)
        cluster.kill(dead)
        crashed = len(acknowledged["async"])
        # The replica took over: the space takes writes again, but a replicated write is
        # refused (StoreError), the new master having no replica of its own.
        wait_until(lambda: len(acknowledged["async"]) >= crashed + 200, "writes after the failover")
        wait_until(unreplicated.is_set, "a replicated write refused after the failover")
        stop.set()
        for writer in writers:
            writer.result(PATIENCE)
        live = next(port for port in cluster.ports if port != dead)  # the URL's node may be the dead one
        with ts.connect(plain.replace(f":{cluster.ports[0]}", f":{live}", 1)) as space:
            present = {kind: [t[1] for t in space.read_all((kind, int))] for kind in urls}
        report = {
            kind: {
                "attempted": attempted[kind],
                "acknowledged": len(acknowledged[kind]),
                "failed": failed[kind],
                "present": len(present[kind]),
                "acknowledged_lost": len(set(acknowledged[kind]) - set(present[kind])),
            }
            for kind in urls
        }
        print(report)  # docs/scaling.md reports a run
        for kind in urls:
            assert len(set(present[kind])) == len(present[kind])  # no write made twice
            assert set(present[kind]) <= set(range(attempted[kind]))
            assert len(present[kind]) >= len(acknowledged[kind]) - report[kind]["acknowledged_lost"]
        assert report["replicated"]["acknowledged_lost"] == 0
    finally:
        cluster.stop()


# -- rules ----------------------------------------------------------------------------------------

HOT = """
space.rules.add("hot", template=("reading", str, float), when="t[2] > 30.0",
                write=[("alarm", "t[1]", "t[2] - 30.0")])
"""


def test_a_write_in_one_process_fires_a_rule_added_in_another_and_the_rule_outlives_it(
    url: str, space: Any
) -> None:
    space.write(("reading", "before", 40.0))  # before the rule: nothing to fire
    finished(run_child(url, HOT))
    space.write(("reading", "kitchen", 31.5))
    assert space.read_all(("alarm", str, float)) == [("alarm", "kitchen", 1.5)]  # when write returned
    with ts.connect(url) as again:  # a process that opens the space later has the rule
        assert [(r.name, r.level, r.fired) for r in again.rules.list()] == [("hot", 1, 1)]
        again.rules.remove("hot")
    space.write(("reading", "hall", 50.0))
    assert space.count(("alarm", str, float)) == 1
    assert space.rules.list() == []


def test_two_processes_writing_at_once_fire_each_reaction_exactly_once_in_event_order(
    url: str, space: Any
) -> None:
    space.rules.add("hot", template=("reading", str, int), write=[("alarm", "t[1]", "t[2]")])
    code = """
        space.write(("ready", "{who}"))
        space.read(("go",))
        for i in range(100):
            space.write(("reading", "{who}", i))
        """
    writers = [run_child(url, code.format(who=who)) for who in "ab"]
    for _ in writers:
        space.take(("ready", str), timeout=PATIENCE)
    space.write(("go",))  # both write from here on, each running the reactions it can
    for child in writers:
        finished(child)
    alarms = space.read_all(("alarm", str, int))
    assert sorted(alarms) == sorted(("alarm", who, i) for who in "ab" for i in range(100))
    assert space.rules.get("hot").fired == 200
    with space.subscribe((str, str, int), since=0) as events:
        logged = [events.get(timeout=0).tuple for _ in range(400)]  # type: ignore[union-attr]
    readings = [t[1:] for t in logged if t[0] == "reading"]
    assert [t[1:] for t in logged if t[0] == "alarm"] == readings  # in the order of their events


def test_a_take_in_a_process_that_knows_no_rules_is_reacted_to_by_another(url: str, space: Any) -> None:
    space.rules.add("gone", on="take", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
    space.write(("job", 1))
    assert finished(run_child(url, 'print(space.take(("job", int), timeout=0))')) == "('job', 1)\n"
    assert space.count(("gone", int)) == 0  # nobody ran the reaction yet
    assert space.rules.fire() == 2  # the events of the take, then of the write of ("gone", 1)
    assert space.rules.fire() == 0  # once
    assert space.read_all(("gone", int)) == [("gone", 1)]
    info = space.rules.get("gone")
    assert (info.fired, info.failed) == (1, 0)


def test_a_failed_firing_is_told_to_every_process_with_its_error(url: str, space: Any) -> None:
    finished(
        run_child(
            url,
            """
            space.rules.add("claim", template=("order", int), take=[(ts.Lit("stock"), "t[1]")],
                            write=[(ts.Lit("shipped"), "t[1]")])
            space.write(("order", 5))
            """,
        )
    )
    info = space.rules.get("claim")
    assert (info.fired, info.failed) == (0, 1)
    assert isinstance(info.last_error, ts.EvaluationError)
    assert "take: no tuple matches" in str(info.last_error)
    assert space.read_all((ANY, ANY)) == [("order", 5)]


def partitioned_url(redis_server: RedisServer) -> str:
    """A space of 4 partitions routed by field 0: ("reading", ...) is kept in partition 1,
    ("alarm", ...) in partition 2, and the rules in partition 0."""
    assert (partition_of("reading", 4), partition_of("alarm", 4)) == (1, 2)
    return redis_server.space_url() + "&partitions=4&route=0"


def test_a_write_of_another_process_into_another_partition_fires_a_rule_once(
    redis_server: RedisServer,
) -> None:
    url = partitioned_url(redis_server)
    with ts.connect(url) as spread:
        spread.rules.add(
            "hot", template=("reading", str, float), when="t[2] > 30.0", write=[("alarm", "t[1]")]
        )
        finished(
            run_child(
                url, 'space.write(("reading", "kitchen", 31.0)); space.write(("reading", "hall", 12.0))'
            )
        )
        assert spread.rules.fire() == 0  # the child knew of the rule from its writes, and ran it
        assert spread.read_all(("alarm", str)) == [("alarm", "kitchen")]
        info = spread.rules.get("hot")
        assert (info.fired, info.failed) == (1, 0)


# The child runs a reaction and is killed as it calls the script KILL_AT; the firings it
# announces have a lease of 0.3 s.
KILLED_FIRING = """
import os
import tuplespace.stores._redis_rules_sync as rules
rules.FIRING_LEASE = 300
for core in [space.core, *(part.core for part in space.core.serving(None))]:
    def dying(script, args, call=core.call):
        if script == {kill_at!r}:
            os._exit(9)
        return call(script, args)
    core.call = dying
space.write(("order", 1))
"""


def ship(space: Any) -> None:
    """A rule on an order (kept in partition 0) that takes its stock (in partition 2) and
    writes its invoice (in partition 1)."""
    assert (partition_of("order", 4), partition_of("stock", 4), partition_of("invoice", 4)) == (0, 2, 1)
    space.rules.add("ship", template=("order", int), take=[("stock", "t[1]")], write=[("invoice", "t[1]")])


@pytest.mark.parametrize("capacity", ["", "&capacity=6"])
@pytest.mark.parametrize("kill_at", ["rule_hold", "rule_fire", "rule_owed", "rule_paid"])
def test_a_firing_whose_process_was_killed_midway_is_completed_once_by_another(
    redis_server: RedisServer, kill_at: str, capacity: str
) -> None:
    url = partitioned_url(redis_server) + capacity
    with ts.connect(url) as spread:
        ship(spread)
        spread.write_many([("stock", 1), ("stock", 2)])
        child = run_child(url, KILLED_FIRING.format(kill_at=kill_at))
        child.communicate(timeout=PATIENCE)
        assert child.returncode == 9
        decided = kill_at in ("rule_owed", "rule_paid")  # in the first partition
        assert spread.rules.get("ship").fired == decided
        assert spread.count(("invoice", int)) == (kill_at == "rule_paid")  # made in partition 1 or not
        # This process completes the firing, or gives back what the child held once the
        # lease of its announcement ran out, and fires it again.
        wait_until(lambda: spread.rules.fire() + spread.rules.get("ship").fired > 0, "the firing")
        spread.write(("order", 2))  # fires for this one after
        assert spread.read_all(("invoice", int)) == [("invoice", 1), ("invoice", 2)]
        assert spread.count(("stock", int)) == 0
        info = spread.rules.get("ship")
        assert (info.fired, info.failed) == (2, 0)
        with spread.subscribe((str, int), since=0) as events:  # each taken and written once, in order
            seen = [events.get(timeout=0) for _ in range(8)]
            with pytest.raises(ts.Timeout):
                events.get(timeout=0)
        assert [(e.kind, e.tuple) for e in seen if e is not None][2:] == [
            ("write", ("order", 1)),
            ("take", ("stock", 1)),
            ("write", ("invoice", 1)),
            ("write", ("order", 2)),
            ("take", ("stock", 2)),
            ("write", ("invoice", 2)),
        ]
        # 4 tuples, and the room the child reserved for its order, until that reservation's
        # lease ends: the room reserved for the invoices came back, and no more.
        if capacity:
            spread.write(("done", 1), timeout=0)
            with pytest.raises(ts.SpaceFull):
                spread.write(("done", 2), timeout=0)


def test_a_reaction_of_a_partitioned_space_takes_in_other_partitions_or_fails_whole(
    redis_server: RedisServer,
) -> None:
    with ts.connect(partitioned_url(redis_server)) as spread:
        spread.rules.add(
            "ship",
            template=("order", int),
            take=[("stock", "t[1]")],
            write=[("invoice", "t[1]", "100 / (t[1] - 2)")],
        )
        spread.write_many([("stock", 1), ("stock", 2)])
        spread.write(("order", 1))  # takes its stock in partition 2, writes in partition 1
        spread.write(("order", 2))  # the stock is held, then the write divides by zero: given back
        spread.write(("order", 3))  # no stock 3: nothing held, nothing done
        assert spread.read_all(("invoice", int, int)) == [("invoice", 1, -100)]
        assert spread.read_all(("stock", int)) == [("stock", 2)]
        info = spread.rules.get("ship")
        assert (info.fired, info.failed) == (1, 2)
        assert spread.statistics()["tuples"] == 5


def test_reactions_of_two_processes_at_once_take_and_write_in_other_partitions_once_each(
    redis_server: RedisServer,
) -> None:
    url = partitioned_url(redis_server)
    with ts.connect(url) as spread:
        ship(spread)
        spread.write_many([("stock", n) for n in range(40)])
        children = [run_child(url, f"for n in range({k}, 40, 2): space.write(('order', n))") for k in (0, 1)]
        for child in children:
            finished(child)
        wait_until(lambda: spread.rules.fire() >= 0 and spread.rules.get("ship").fired == 40, "40 firings")
        assert sorted(spread.read_all(("invoice", int))) == [("invoice", n) for n in range(40)]
        assert spread.count(("stock", int)) == 0
        assert spread.rules.get("ship").failed == 0
        with spread.subscribe(("stock", int), since=0) as events:  # each stock taken once
            kinds = [events.get(timeout=0).kind for _ in range(80)]
            with pytest.raises(ts.Timeout):
                events.get(timeout=0)
        assert kinds.count("take") == 40


def test_a_push_rule_added_to_a_full_partitioned_space_sets_its_field_at_once(
    redis_server: RedisServer,
) -> None:
    with ts.connect(partitioned_url(redis_server) + "&capacity=2") as spread:
        spread.write_many([("done", 1), ("done", 2)])
        spread.take(("done", 1), timeout=0)  # the count of its partition, as last read, is 2 still
        spread.write(("reading", "x", 1.0), timeout=0)
        spread.create("sensor", {"t": 1.0})
        house = spread.create("house", {"hot": None})
        spread.rules.add("hot", set="house.hot", to="s.t > 0.5", using={"s": "sensor"})
        assert house.get("hot") is True
        spread.record("sensor").set("t", 0.0)
        assert house.get("hot") is False


def test_a_reaction_to_expiries_in_another_partition_fires_while_nobody_calls(
    redis_server: RedisServer,
) -> None:
    with ts.connect(partitioned_url(redis_server)) as spread:
        spread.rules.add("gone", on="expire", template=("reading", int), write=[(ts.Lit("alarm"), "t[1]")])
        spread.write(("reading", 1), lease=0.2)  # in partition 1; the alarm in partition 2
        assert spread.take(("alarm", int), timeout=PATIENCE) == ("alarm", 1)  # waiting is not calling
        assert spread.rules.get("gone").fired == 1


def test_reactions_of_a_partitioned_space_with_a_capacity_keep_to_it(redis_server: RedisServer) -> None:
    with ts.connect(partitioned_url(redis_server) + "&capacity=3") as spread:
        ship(spread)
        spread.rules.add("echo", template=("note", int), write=[("invoice", "t[1]")])
        spread.write_many([("stock", 1), ("stock", 2)])
        spread.write(("order", 1), timeout=0)  # full: its firing takes a stock and writes an invoice
        assert spread.read_all(("invoice", int)) == [("invoice", 1)]
        spread.take(("order", 1), timeout=0)
        spread.write(("note", 7), timeout=0)  # full again: the invoice of its reaction does not fit
        info = spread.rules.get("echo")
        assert (info.fired, info.failed) == (0, 1)
        assert isinstance(info.last_error, ts.SpaceFull)
        assert spread.statistics()["tuples"] == 3
        assert len(spread.take_all((str, int))) == 3
        for n in range(3):  # the room reserved for the firings' writes came back
            spread.write(("done", n), timeout=0)
        with pytest.raises(ts.SpaceFull):
            spread.write(("done", 3), timeout=0)
        spread.take_all(("done", int))
        counter = spread.create("counter", {"log": ts.Method("function(self) write('alarm', 'x') end")})
        counter.call("log")  # written in partition 2, counted in the first
        spread.write(("done", 1), timeout=0)
        spread.write(("done", 2), timeout=0)
        with pytest.raises(ts.SpaceFull):
            counter.call("log")
        assert spread.read_all(("alarm", str)) == [("alarm", "x")]
        assert spread.statistics()["tuples"] == 3


BUMP = "function(self, d) self.target = self.target + d write('bumped', self.target) return self.target end"


def test_methods_called_in_two_processes_lose_no_update_and_their_writes_fire_rules(
    url: str, space: Any
) -> None:
    thermo = space.create("thermostat", {"target": 0.0, "bump": ts.Method(BUMP)})
    space.rules.add("seen", template=("bumped", float), write=[(ts.Lit("seen"), "t[1]")])
    child = run_child(url, 'for _ in range(40): space.record("thermostat").call("bump", 1.0)')
    for _ in range(40):
        thermo.call("bump", 1.0)
    finished(child)
    assert thermo.get("target") == 80.0
    assert sorted(t[1] for t in space.read_all(("bumped", float))) == [float(n) for n in range(1, 81)]
    assert space.count(("seen", float)) == 80
    assert space.rules.get("seen").fired == 80


def test_a_record_set_in_one_process_fires_a_rule_added_in_another_once(url: str, space: Any) -> None:
    space.rules.add("log", path="sensors/kitchen", tag="temp", write=[(ts.Lit("temp"), "value")])
    space.rules.add("ends", on={"create", "destroy"}, path="sensors/kitchen", write=[("kind",)])
    finished(
        run_child(
            url,
            'kitchen = space.create("sensors/kitchen", {"temp": 21.0})\n'
            'kitchen.set("temp", 22.5)\n'
            'kitchen.set("unit", "C")\n'
            "kitchen.destroy()",
        )
    )
    space.rules.fire()
    space.rules.fire()  # nothing left to run
    assert space.read_all(("temp", float)) == [("temp", 22.5)]
    assert space.read_all((str,)) == [("create",), ("destroy",)]
    assert [(r.name, r.fired) for r in space.rules.list()] == [("ends", 2), ("log", 1)]


def test_a_reaction_sets_a_field_once_per_event_and_fails_on_a_missing_record(url: str, space: Any) -> None:
    house = space.create("house", {"temp": None})
    space.rules.add("copy", path="sensors/kitchen", tag="temp", set={"house.temp": "value"})
    space.rules.add("seen", path="house", tag="temp", write=[(ts.Lit("house"), "value")])
    with house.watch() as watch:
        finished(run_child(url, 'k = space.create("sensors/kitchen", {"temp": 21.0})\nk.set("temp", 23.5)'))
        space.rules.fire()
        change = watch.get(timeout=PATIENCE)
    assert (change.kind, change.tag, change.value) == ("update", "temp", 23.5)
    assert house.get("temp") == 23.5
    assert space.read_all(("house", float)) == [("house", 23.5)]
    house.destroy()
    space.record("sensors/kitchen").set("temp", 19.0)
    copy = space.rules.get("copy")
    assert (copy.fired, copy.failed) == (1, 1)
    assert "no record at 'house'" in str(copy.last_error)


def test_a_push_rule_added_in_one_process_is_kept_true_by_sets_in_another_once_each(
    url: str, space: Any
) -> None:
    kitchen = space.create("sensors/kitchen", {"temp": 21.0})
    house = space.create("house", {"comfort": None})
    with house.watch() as watch:
        finished(
            run_child(
                url,
                'space.rules.add("comfort", set="house.comfort", to="k.temp >= 19.0 && k.temp <= 23.0",'
                ' using={"k": "sensors/kitchen"})',
            )
        )
        assert house.get("comfort") is True  # set as the rule was added
        # A process that never looked at the rules sets what the rule reads: its set runs it.
        finished(
            run_child(
                url,
                'k = space.record("sensors/kitchen")\n'
                "for t in (25.0, 26.0, 22.0, 18.0):\n"
                '    k.set("temp", t)\n'
                '    print(space.record("house").get("comfort"))',
            )
        )
        changes = [watch.get(timeout=PATIENCE) for _ in range(4)]
        with pytest.raises(ts.Timeout):
            watch.get(timeout=0)
    assert [(c.tag, c.value) for c in changes] == [
        ("comfort", True),
        ("comfort", False),
        ("comfort", True),
        ("comfort", False),
    ]  # 26.0 left it False: not set again
    kitchen.set("unit", "C")  # a field the rule does not read
    info = space.rules.get("comfort")
    assert (info.kind, info.level, info.fired, info.failed) == ("push", 1, 5, 0)
    assert space.rules.fire() == 0  # each change's firing ran once, in the process that made it


def test_a_push_rule_fires_when_another_process_creates_or_destroys_a_record_it_reads(
    url: str, space: Any
) -> None:
    house = space.create("house", {"comfort": None})
    space.rules.add("comfort", set="house.comfort", to="kitchen.temp >= 19.0")
    info = space.rules.get("comfort")  # as it was added, it could not read the kitchen
    assert (info.fired, info.failed) == (0, 1)
    assert isinstance(info.last_error, ts.RecordNotFound)
    finished(run_child(url, 'space.create("kitchen", {"temp": 21.0})'))
    assert house.get("comfort") is True
    finished(run_child(url, 'space.record("kitchen").destroy()'))
    info = space.rules.get("comfort")
    assert (info.fired, info.failed) == (1, 2)
    assert space.rules.fire() == 0


def test_a_record_taken_in_a_process_that_knows_no_rules_fires_the_rules_reading_it(
    url: str, space: Any
) -> None:
    space.create("jobs/j1", {"n": 1})
    house = space.create("house", {"jobs": None})
    space.rules.add("ended", on="destroy", path="jobs/j1", write=[("kind", "path")])
    space.rules.add("count", set="house.jobs", to="j.n", using={"j": "jobs/j1"})
    assert house.get("jobs") == 1
    assert finished(run_child(url, 'print(space.try_take_record({}, under="jobs").fields["n"])')) == "1\n"
    assert space.read_all(("destroy", str)) == [("destroy", "jobs/j1")]  # when the take returned
    count = space.rules.get("count")
    assert (count.fired, count.failed) == (1, 1)  # the record it reads is gone
    assert isinstance(count.last_error, ts.RecordNotFound)
    assert space.rules.fire() == 0


def test_the_sets_of_a_push_rule_follow_the_changes_of_two_processes_writing_at_once(
    url: str, space: Any
) -> None:
    space.create("a", {"n": 0})
    space.create("b", {"n": 0})
    space.create("sum", {"n": 0})
    space.rules.add("sum", set="sum.n", to="a.n + b.n")
    code = """
        space.write(("ready", "{who}"))
        space.read(("go",))
        r = space.record("{who}")
        for i in range(1, 31):
            r.set("n", i)
        """
    writers = [run_child(url, code.format(who=who)) for who in "ab"]
    for _ in writers:
        space.take(("ready", str), timeout=PATIENCE)
    space.write(("go",))
    for child in writers:
        finished(child)
    assert space.record("sum").get("n") == 60  # the latest firing read both as they are now
    assert space.rules.get("sum").fired == 61  # as the rule was added, then once per set


def test_a_reaction_reads_the_records_it_names_in_redis_as_they_are_when_it_fires(
    url: str, space: Any
) -> None:
    farm = space.create("jobs/farm", {"total": 0, "done": 0})
    space.rules.add(
        "sum",
        template=("result", int, int),
        using={"farm": "jobs/farm"},
        when="t[2] >= 0",
        set={"jobs/farm.total": "farm.total + t[2]", "jobs/farm.done": "farm.done + 1"},
    )
    code = "for job, value in {jobs}:\n    space.write(('result', job, value))"
    children = [run_child(url, code.format(jobs=jobs)) for jobs in ([(1, 10), (2, 20)], [(3, -5), (4, 12)])]
    for child in children:
        finished(child)
    space.rules.fire()
    assert (farm.get("total"), farm.get("done")) == (42, 3)
    info = space.rules.get("sum")
    assert (info.level, info.fired, info.failed) == (1, 3, 0)  # what it reads does not fire it
    space.rules.add("lost", template=("x",), using={"gone": "nowhere"}, write=[("y", "gone.a")])
    space.write(("x",))
    lost = space.rules.get("lost")
    assert lost.failed == 1
    assert isinstance(lost.last_error, ts.RecordNotFound)
    assert space.count(("y", ANY)) == 0


def test_a_reaction_that_would_give_a_record_too_many_fields_fails_and_changes_nothing(
    url: str, space: Any
) -> None:
    most = ts.Limits().max_fields
    full = space.create("full", {f"f{i}": i for i in range(most)})
    space.rules.add("more", template=("more", int), write=[("seen", "t[1]")], set={"full.extra": "t[1]"})
    space.rules.add("same", template=("same", int), set={"full.f0": "t[1]"})
    space.write(("more", 1))
    space.write(("same", 7))
    info = space.rules.get("more")
    assert (info.fired, info.failed) == (0, 1)
    assert isinstance(info.last_error, ts.ValueTooLarge)
    assert info.last_error.limit == "max_fields"
    assert space.count(("seen", int)) == 0  # nor its write
    assert "extra" not in full.all()
    assert full.get("f0") == 7  # a field it has already is set


def test_a_take_just_after_the_first_rule_is_added_runs_its_reactions(url: str, space: Any) -> None:
    space.write(("job", 1))
    space.rules.add("gone", on="take", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
    assert space.rules.known
    space.take(("job", int))
    assert space.read_all(("gone", int)) == [("gone", 1)]  # when take returned


def test_processes_with_rules_react_to_expiries_as_leases_end_once_across_them(url: str, space: Any) -> None:
    space.rules.add("gone", on="expire", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
    space.rules.add("ended", on="expire", path="leased/k", write=[("kind", "path")])
    with ts.connect(url) as other:
        assert [r.name for r in other.rules.list()] == ["ended", "gone"]  # it runs a timer too
        finished(
            run_child(
                url,
                'space.write(("job", 1), lease=0.2)\n'
                'space.write(("job", 2), lease=0.3)\n'
                'space.create("leased/k", {"temp": 1.0}, lease=0.2)',
            )
        )
        # Nobody calls: waiting is not calling, the processes' timers run the reactions.
        assert space.take(("gone", int), timeout=PATIENCE) == ("gone", 1)
        assert space.take(("gone", int), timeout=PATIENCE) == ("gone", 2)
        assert space.take(("expire", str), timeout=PATIENCE) == ("expire", "leased/k")
        assert space.rules.fire() == 0
        assert other.rules.fire() == 0
    assert space.count((ANY, ANY)) == 0  # each once
    assert [(r.name, r.fired) for r in space.rules.list()] == [("ended", 1), ("gone", 2)]


def test_a_method_whose_writes_do_not_fit_changes_nothing(url: str) -> None:
    with ts.connect(url.replace("?space=", "?capacity=1&space=")) as full:
        full.write(("filler",))
        thermo = full.create("thermostat", {"target": 21.0, "bump": ts.Method(BUMP)})
        with pytest.raises(ts.SpaceFull, match="nothing changed"):
            thermo.call("bump", 1.0)
        assert thermo.all() == {"target": 21.0, "bump": ts.Method(BUMP)}
        assert full.read_all((ANY,)) == [("filler",)]


def test_async_rules_of_a_space_kept_in_redis(url: str, space: Any) -> None:
    async def main() -> list[ts.Tuple]:
        async with await ts.connect_async(url) as aspace:
            await aspace.rules.add("hot", template=("reading", str, float), write=[("alarm", "t[1]")])
            await aspace.write(("reading", "kitchen", 1.0))
            assert [r.name for r in await aspace.rules.list()] == ["hot"]
            return await aspace.read_all(("alarm", str))

    assert asyncio.run(main()) == [("alarm", "kitchen")]
    space.write(("reading", "hall", 2.0))  # a sync process fires the rule an async one added
    assert space.read_all(("alarm", str)) == [("alarm", "kitchen"), ("alarm", "hall")]


def test_a_process_killed_while_it_writes_and_fires_leaves_each_reaction_done_once_or_to_do(
    url: str, space: Any
) -> None:
    space.rules.add("hot", template=("reading", int), write=[("alarm", "t[1]")])
    child = run_child(url, "i = 0\nwhile True:\n    space.write(('reading', i))\n    i += 1")
    wait_until(lambda: space.count(("alarm", int)) >= 50, "the child's reactions to run")
    child.kill()  # wherever it is: between a write and its firing, or in a firing
    child.communicate(timeout=PATIENCE)
    space.rules.fire()  # what it left undone
    readings = space.read_all(("reading", int))
    alarms = space.read_all(("alarm", int))
    assert [t[1] for t in alarms] == [t[1] for t in readings]
    assert space.rules.get("hot").fired == len(readings)


def test_one_call_runs_the_reactions_of_at_most_max_firings_events(url: str, space: Any) -> None:
    space.rules.add("gone", on="take", template=("job", int), write=[(ts.Lit("gone"), "t[1]")])
    space.write_many([("job", 1), ("job", 2)])
    finished(run_child(url, 'space.take_all(("job", int))'))  # a process that knows no rules
    space.rules.limits = ts.ActiveLimits(max_firings=3)
    assert space.rules.fire() == 3  # the two takes, the write of ("gone", 1)
    assert space.rules.fire() == 1  # the write of ("gone", 2)
    assert space.read_all(("gone", int)) == [("gone", 1), ("gone", 2)]


def test_a_damaged_rule_in_redis_is_a_store_error_naming_it_and_writes_go_on(
    url: str, space: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    space.rules.add("hot", template=("reading", int), write=[("alarm", "t[1]")])
    key = "{ts:" + url.rsplit("=", 1)[1] + "}"
    raw = redis.Redis.from_url(redis_server.url)
    raw.hset(key + ":rules", "broken", "3 0 {not json")
    raw.hincrby(key + ":cfg", "rulev", 1)
    raw.close()
    with pytest.raises(ts.StoreError, match=r"the rule 'broken' of space .* in Redis is damaged"):
        space.rules.list()
    with ts.connect(url) as other, caplog.at_level("WARNING", "tuplespace"):
        other.write(("reading", 1))  # written; its reactions wait for rules that can be read
        assert "were not run" in caplog.text
        assert "'broken'" in caplog.text
    assert space.read_all(("reading", int)) == [("reading", 1)]
