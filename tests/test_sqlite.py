"""The durable store (docs/storage.md): what a SQLite file keeps across restarts,
which files it refuses, and how it commits many operations at once.

The contract tests already run every operation on a SQLite file; these tests are
about what only a durable store has: a second life after close, a crash or a
second process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace import _sqlite

APPLICATION_ID = 0x54535043


def url(path: Path, space: str = "s", **query: object) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"sqlite://{path}?space={space}{extra}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "spaces.db"


@pytest.fixture
def opened() -> Iterator[list[ts.Space]]:
    """Spaces a test opened; whatever is still open at its end is closed."""
    spaces: list[ts.Space] = []
    yield spaces
    for space in spaces:
        space.close()


def stored_rows(path: Path, space: str = "s") -> list[tuple[int, bytes, float | None]]:
    """The rows of a space's tuples, read with sqlite3 (the store must be closed)."""
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT seq, data, expires FROM tuples WHERE space = ? ORDER BY seq", (space,)
        ).fetchall()
    finally:
        con.close()


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new Python process; its output, whatever its exit status."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=PATIENCE, check=False
    )


OPEN_ELSEWHERE = """
import sys
import tuplespace as ts
try:
    space = ts.connect(sys.argv[1])
except ts.StoreError as exc:
    print("StoreError:", exc)
else:
    print("opened", sorted(space.read_all((str, int))))
    space.close()
"""


def the_file(path: Path) -> Any:
    """The store's open file (for tests that watch its committer)."""
    return _sqlite._FILES[os.path.realpath(path)]


def count_commits(path: Path) -> list[str]:
    """From now on, every COMMIT the store's connection runs is appended to the list."""
    commits: list[str] = []
    the_file(path).db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    return commits


class Gate:
    """Holds the store's committer before it writes, until opened; it opens by itself
    after PATIENCE seconds, so a test that never opens it still ends."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        self.held = threading.Event()  # the committer has come to the gate
        file = the_file(path)
        write = file.write

        def gated(*args: Any) -> None:
            self.held.set()
            self.opened.wait(PATIENCE)
            write(*args)

        monkeypatch.setattr(file, "write", gated)

    def open(self) -> None:
        self.opened.set()


VALUES: list[tuple[Any, ...]] = [
    ("none", None),
    ("bool", True, False),
    ("int", 1, -(2**70)),
    ("float", 1.0, -0.5),
    ("str", "", "día"),
    ("bytes", b"\x00\xff"),
    ("nested", (1, ("a", b"b")), ()),
    ("time", datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)),
    ("uri", ts.URI("tuple://node/a/b")),
    ("credit", ts.Credit("12.50")),
    ("map", ts.Map({"temp": 21.5, "unit": "C"})),
]


# -- what a restart keeps ----------------------------------------------------------------


def test_restart_keeps_every_tuple_with_its_values_and_its_place(db: Path) -> None:
    space = ts.connect(url(db))
    space.write_many(VALUES)
    space.write(("job", 2), lease=3600)
    space.write(("job", 1))
    space.close()

    space = ts.connect(url(db))
    taken = [space.take((str, *[ts.ANY] * (len(t) - 1))) for t in VALUES]
    assert [ts.encode(t) for t in taken] == [ts.encode(t) for t in VALUES]  # typed: 1.0 is not 1
    space.write(("job", 0))  # written after the restart: after the older jobs
    assert space.take_all(("job", int)) == [("job", 2), ("job", 1), ("job", 0)]
    space.close()


def test_taken_tuples_stay_taken_and_new_ones_come_after_the_old(db: Path) -> None:
    for n in range(3):
        space = ts.connect(url(db))
        space.write_many([("item", n, k) for k in range(10)])
        assert space.take(("item", int, int)) == ("item", 0, n)  # the oldest
        space.close()
    space = ts.connect(url(db))
    remaining = space.take_all(("item", int, int))
    space.close()
    assert remaining == [("item", n, k) for n in range(3) for k in range(10)][3:]


def test_a_lifo_space_takes_the_newest_first_after_a_restart(db: Path) -> None:
    space = ts.connect(url(db), order="lifo")
    space.write_many([("n", k) for k in range(5)])
    space.close()
    space = ts.connect(url(db))
    assert space.order == "lifo"
    space.write(("n", 5))
    assert [space.take(("n", int))[1] for _ in range(6)] == [5, 4, 3, 2, 1, 0]
    space.close()


def test_sequence_numbers_of_tuples_and_events_keep_increasing_across_restarts(db: Path) -> None:
    last_seq = last_event = 0
    for n in range(4):
        space = ts.connect(url(db))
        with space.subscribe(("x", int)) as events:
            leases = [space.write(("x", k)) for k in range(3)]
            space.take_all(("x", int), limit=2 if n % 2 else None)  # some restarts leave no rows
            latest = space.statistics()["last_event"]
            seen = [events.get(timeout=PATIENCE)]
            while seen[-1].seq < latest and len(seen) < 10:
                seen.append(events.get(timeout=PATIENCE))
        assert min(lease.seq for lease in leases) > last_seq
        assert [e.seq for e in seen] == list(range(last_event + 1, latest + 1))
        last_seq = max(lease.seq for lease in leases)
        last_event = latest
        space.close()


def test_resuming_events_across_a_restart_reports_them_lost(db: Path) -> None:
    space = ts.connect(url(db))
    space.write_many([("x", 1), ("x", 2)])
    last = space.statistics()["last_event"]
    space.close()
    space = ts.connect(url(db))
    try:
        with pytest.raises(ts.EventsLost):
            space.subscribe(("x", int), since=last - 1)
        with space.subscribe(("x", int), since=last) as events:  # nothing missed
            space.write(("x", 3))
            event = events.get(timeout=PATIENCE)
        assert (event.seq, event.kind, event.tuple) == (last + 1, "write", ("x", 3))
    finally:
        space.close()


def test_transactions_survive_a_restart_committed_or_not_at_all(db: Path) -> None:
    space = ts.connect(url(db))
    space.write_many([("job", 1), ("job", 2), ("job", 3)])
    with space.transaction() as tx:
        tx.take(("job", 1))
        tx.write(("done", 1))
    aborted = space.transaction()
    aborted.take(("job", 2))
    aborted.write(("done", 2))
    aborted.abort()
    unfinished = space.transaction()
    unfinished.take(("job", 3))
    unfinished.write(("done", 3))
    space.close()  # aborts the unfinished transaction

    space = ts.connect(url(db))
    assert space.read_all((str, int)) == [("job", 2), ("job", 3), ("done", 1)]
    space.close()


def test_a_commit_that_does_not_fit_leaves_the_file_as_before_it(db: Path) -> None:
    space = ts.connect(url(db), capacity=2)
    space.write_many([("job", 1), ("job", 2)])
    tx = space.transaction()
    tx.take(("job", 1))
    tx.write_many([("done", 1), ("done", 2)])
    with pytest.raises(ts.SpaceFull):
        tx.commit()
    space.close()

    space = ts.connect(url(db))
    assert space.read_all((str, int)) == [("job", 1), ("job", 2)]
    space.close()


# -- leases are absolute times -------------------------------------------------------------

START = 1_700_000_000.0


def test_leases_are_stored_as_absolute_expiry_times(db: Path) -> None:
    clock = ts.SimulatedClock(START)
    space = ts.connect(url(db), clock=clock)
    short = space.write(("short",), lease=100)
    renewed = space.write(("renewed",), lease=100)
    space.write(("forever",))
    cancelled = space.write(("cancelled",), lease=100)
    clock.advance(10)
    renewed.renew(500)
    cancelled.cancel()
    space.close()
    assert (short.expires_at, renewed.expires_at) == (START + 100, START + 510)
    assert [(row[0], row[2]) for row in stored_rows(db)] == [
        (short.seq, START + 100),
        (renewed.seq, START + 510),
        (renewed.seq + 1, None),
    ]

    # The process is down for a while: the leases count on.
    space = ts.connect(url(db), clock=ts.SimulatedClock(START + 99))
    assert space.read_all((str,)) == [("short",), ("renewed",), ("forever",)]
    space.close()
    space = ts.connect(url(db), clock=ts.SimulatedClock(START + 101))
    assert space.read_all((str,)) == [("renewed",), ("forever",)]
    space.close()
    space = ts.connect(url(db), clock=ts.SimulatedClock(START + 600))
    assert space.read_all((str,)) == [("forever",)]
    space.close()
    # ... and what ran out while it was down is gone from the file too.
    assert [row[2] for row in stored_rows(db)] == [None]


def test_a_tuple_whose_lease_ran_out_while_the_process_was_down_is_gone(db: Path) -> None:
    space = ts.connect(url(db))
    expires = space.write(("brief",), lease=0.05).expires_at
    space.write(("stays",))
    space.close()
    assert expires is not None
    wait_until(lambda: time.time() > expires, "the lease to run out")
    space = ts.connect(url(db))
    assert space.read_all((str,)) == [("stays",)]
    space.close()
    assert len(stored_rows(db)) == 1


def test_expired_tuples_are_deleted_from_the_file(db: Path) -> None:
    clock = ts.SimulatedClock(START)
    space = ts.connect(url(db), clock=clock)
    space.write_many([("temp", k) for k in range(100)], lease=10)
    space.write(("kept", 0))
    clock.advance(11)
    space.write(("kept", 1))  # an operation after the expiry
    space.close()
    assert len(stored_rows(db)) == 2


def test_expired_tuples_are_deleted_from_the_file_in_real_time(db: Path) -> None:
    space = ts.connect(url(db))
    space.write_many([("temp", k) for k in range(100)], lease=0.05)
    wait_until(lambda: space.count(("temp", int)) == 0, "the leases to run out")
    space.write(("kept",))
    space.close()
    assert len(stored_rows(db)) == 1


# -- many spaces, one file, one process ------------------------------------------------------


def test_the_spaces_of_one_file_are_independent(db: Path) -> None:
    a = ts.connect(url(db, "a"))
    b = ts.connect(url(db, "b"), order="lifo", capacity=3)
    a.write_many([("x", k) for k in range(3)])
    b.write_many([("x", k) for k in range(3)])
    assert a.take(("x", int)) == ("x", 0)
    assert b.take(("x", int)) == ("x", 2)
    a.write(("x", 9))
    with pytest.raises(ts.SpaceFull):
        b.write_many([("y",), ("y",)])
    a.close()
    b.write(("x", 3))  # b works on with a closed
    assert ts.connect(url(db, "b")) is b
    a = ts.connect(url(db, "a"))
    assert (a.order, a.capacity, b.order, b.capacity) == ("fifo", None, "lifo", 3)
    assert a.read_all(("x", int)) == [("x", 1), ("x", 2), ("x", 9)]
    assert b.read_all(("x", int)) == [("x", 3), ("x", 1), ("x", 0)]
    a.close()
    b.close()
    assert len(stored_rows(db, "a")) == len(stored_rows(db, "b")) == 3


def test_spaces_open_and_close_while_another_space_of_the_file_is_busy(db: Path) -> None:
    busy = ts.connect(url(db, "busy"))

    def write(n: int) -> None:
        for k in range(n):
            busy.write(("w", k))

    writer = spawn(write, 2000)
    for n in range(20):
        other = ts.connect(url(db, f"other{n % 4}"))
        other.write_many([("o", n, k) for k in range(20)])
        other.take(("o", int, int))
        other.close()
    writer.result(PATIENCE)
    busy.close()
    busy = ts.connect(url(db, "busy"))
    assert busy.read_all(("w", int)) == [("w", k) for k in range(2000)]
    busy.close()
    for m in range(4):
        other = ts.connect(url(db, f"other{m}"))
        assert other.count(("o", int, int)) == 5 * 19
        other.close()


def test_connecting_twice_to_a_space_gives_the_same_space(
    db: Path, opened: list[ts.Space], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(db.parent)
    space = ts.connect(url(db))
    opened.append(space)
    assert ts.connect(url(db)) is space
    assert ts.connect(f"sqlite:{db.name}?space=s") is space  # the same file, named relatively
    other = ts.connect(url(db, "t"))
    opened.append(other)
    assert other is not space
    with pytest.raises(ValueError, match="order"):
        ts.connect(url(db), order="lifo")
    with pytest.raises(ValueError, match="durability"):
        ts.connect(url(db, durability="full"))


def test_a_space_closed_twice_leaves_its_reopened_successor_working(db: Path, opened: list[ts.Space]) -> None:
    opened.append(ts.connect(url(db, "other")))  # keeps the file open
    first = ts.connect(url(db))
    first.close()
    second = ts.connect(url(db))
    assert second is not first
    opened.append(second)
    first.close()  # closing a closed space again does nothing
    spawn(second.write, ("still", "works")).result(PATIENCE)  # returns once durable
    assert spawn(second.take, ("still", str)).result(PATIENCE) == ("still", "works")


def test_a_file_closing_in_one_thread_can_be_opened_at_once_in_another(db: Path) -> None:
    for n in range(100):
        space = ts.connect(url(db, "a"))
        space.write(("x", n))
        closing = spawn(space.close)  # the last space of the file: the file is released
        other = ts.connect(url(db, "b"))  # never "in use by another process"
        other.write(("y", n))
        closing.result(PATIENCE)
        other.close()
    space = ts.connect(url(db, "a"))
    assert space.count(("x", int)) == 100
    space.close()


def test_the_options_of_a_space_are_stored_with_it(db: Path) -> None:
    ts.connect(url(db), order="lifo", capacity=3).close()
    space = ts.connect(url(db))
    assert (space.order, space.capacity) == ("lifo", 3)
    space.close()
    with pytest.raises(ValueError, match="order"):
        ts.connect(url(db), order="fifo")
    with pytest.raises(ValueError, match="capacity"):
        ts.connect(url(db), capacity=4)
    # A refused open leaves nothing of the file open: another process may open it.
    assert run_python(OPEN_ELSEWHERE, url(db)).stdout.startswith("opened")
    space = ts.connect(url(db), order="lifo", capacity=3)
    space.close()


# -- one process at a time -------------------------------------------------------------


def test_a_second_process_gets_a_store_error_until_the_first_closes(db: Path) -> None:
    ts.connect(url(db)).close()
    space = ts.connect(url(db))  # an existing file, not written to yet
    try:
        for name in ("s", "another"):
            result = run_python(OPEN_ELSEWHERE, url(db, name))
            assert result.stdout.startswith("StoreError:"), result.stdout + result.stderr
            assert "in use" in result.stdout
        space.write(("written", 1))
        assert "in use" in run_python(OPEN_ELSEWHERE, url(db)).stdout
        assert space.take(("written", int)) == ("written", 1)  # the first process goes on
        space.write(("written", 2))
    finally:
        space.close()
    result = run_python(OPEN_ELSEWHERE, url(db))
    assert result.stdout.strip() == "opened [('written', 2)]", result.stdout + result.stderr


# -- files that are not ours -----------------------------------------------------------


def sqlite_file(*statements: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        con = sqlite3.connect(path)
        for statement in statements:
            con.execute(statement)
        con.commit()
        con.close()

    return make


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def our_store(path: Path) -> None:
    space = ts.connect(url(path))
    space.write_many([("t", k, "x" * 300) for k in range(2000)])
    space.close()


def damaged(offset: Callable[[int], int], size: int = 4096) -> Callable[[Path], None]:
    """Our store with ``size`` bytes of noise at ``offset(file size)`` (pages are 4096 bytes)."""

    def make(path: Path) -> None:
        our_store(path)
        with open(path, "r+b") as f:
            f.seek(offset(path.stat().st_size))
            f.write(random.Random(size).randbytes(size))

    return make


def garbled_tuple(path: Path) -> None:
    """Our store with the bytes of one tuple no longer valid; every page is sound."""
    our_store(path)
    data = path.read_bytes()
    at = data.index(ts.encode(("t", 1000, "x" * 300))) + 5
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(b"\xff\xfe\xfd")


def truncated(path: Path) -> None:
    our_store(path)
    os.truncate(path, path.stat().st_size // 2)


NOT_OURS = {
    "random bytes": (random_bytes, "not a PyTupleSpace store"),
    "another application_id": (
        sqlite_file("PRAGMA application_id = 12345", "CREATE TABLE t (x)"),
        "not a PyTupleSpace store",
    ),
    "another application_id, empty": (sqlite_file("PRAGMA application_id = 12345"), "not a PyTupleSpace"),
    "other tables": (sqlite_file("CREATE TABLE spaces (x)", "INSERT INTO spaces VALUES (1)"), "not a PyT"),
    "other tables in WAL mode": (sqlite_file("PRAGMA journal_mode = WAL", "CREATE TABLE t (x)"), "not a PyT"),
    "a newer schema": (
        sqlite_file(f"PRAGMA application_id = {APPLICATION_ID}", "PRAGMA user_version = 99"),
        "schema version 99",
    ),
    "a damaged header": (damaged(lambda size: 0, 100), "not a PyTupleSpace store"),
    "a damaged schema page": (damaged(lambda size: 100, 3900), "damaged"),
    "a damaged page in the middle": (damaged(lambda size: size // 8192 * 4096), "damaged"),
    "a damaged last page": (damaged(lambda size: size - 4096), "damaged"),
    "a garbled tuple": (garbled_tuple, "damaged"),
    "a truncated file": (truncated, "damaged"),
}


@pytest.mark.parametrize("make", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_a_file_that_is_not_a_sound_store_of_ours_is_refused_and_left_untouched(
    tmp_path: Path, make: tuple[Callable[[Path], None], str]
) -> None:
    build, message = make
    path = tmp_path / "file.db"
    build(path)
    before = path.read_bytes()
    files = sorted(os.listdir(tmp_path))
    for _ in range(2):  # the refusal holds nothing open: a second try is refused the same way
        with pytest.raises(ts.StoreError, match=message):
            ts.connect(url(path))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == files
    assert os.path.realpath(path) not in _sqlite._FILES


def test_an_empty_file_becomes_a_store(db: Path) -> None:
    db.touch()
    space = ts.connect(url(db))
    space.write(("first",))
    space.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert con.execute("PRAGMA user_version").fetchone() == (_sqlite.SCHEMA_VERSION,)
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        stored = {"spaces", "tuples", "records", "accounts", "capabilities", "redirections"}
        stored |= {"catalog", "rules", "rule_counts"}
        assert tables == stored
    finally:
        con.close()
    assert len(stored_rows(db)) == 1


def test_a_file_in_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(ts.StoreError, match="does not exist"):
        ts.connect(url(tmp_path / "nowhere" / "spaces.db"))


# -- durability ------------------------------------------------------------------------


@pytest.mark.parametrize(("durability", "synchronous"), [("normal", 1), ("full", 2)])
def test_durability_sets_how_sqlite_syncs(db: Path, durability: str, synchronous: int) -> None:
    space = ts.connect(url(db, durability=durability))
    try:
        assert the_file(db).db.execute("PRAGMA synchronous").fetchone() == (synchronous,)
        space.write_many([("d", k) for k in range(10)])
        space.take(("d", 0))
        with space.transaction() as tx:
            tx.take(("d", 1))
            tx.write(("d", 10))
    finally:
        space.close()
    space = ts.connect(url(db))  # either setting writes the same file
    assert space.take_all(("d", int)) == [("d", k) for k in range(2, 11)]
    space.close()


@pytest.mark.parametrize("durability", ["paranoid", "", "FULL"])
def test_an_unknown_durability_is_a_value_error(db: Path, durability: str) -> None:
    with pytest.raises(ValueError, match="durability"):
        ts.connect(url(db, durability=durability))
    assert not db.exists()


# -- group commit and asyncio ----------------------------------------------------------------


def test_threads_and_coroutines_writing_at_once_are_all_durable_in_fewer_commits(db: Path) -> None:
    per_writer, writers = 150, 8
    space = ts.connect(url(db))
    commits = count_commits(db)
    aspace = ts.AsyncSpace(space)
    start = threading.Barrier(writers + 1)

    def thread_writer(n: int) -> int:
        start.wait(PATIENCE)
        for k in range(per_writer):
            space.write(("thread", n, k))
        return per_writer

    async def coroutine_writer(n: int) -> int:
        for k in range(per_writer):
            await aspace.write(("coroutine", n, k))
        return per_writer

    async def coroutines() -> list[int]:
        start.wait(PATIENCE)
        return await asyncio.gather(*(coroutine_writer(n) for n in range(writers)))

    threads = [spawn(thread_writer, n) for n in range(writers)]
    acknowledged = sum(asyncio.run(coroutines())) + sum(f.result(PATIENCE) for f in threads)
    operations = 2 * writers * per_writer
    assert acknowledged == operations
    assert 0 < len(commits) < operations
    space.close()

    space = ts.connect(url(db))
    for kind in ("thread", "coroutine"):
        for n in range(writers):
            assert space.read_all((kind, n, int)) == [(kind, n, k) for k in range(per_writer)]
    space.close()


def test_an_async_space_awaits_the_disk_without_blocking_its_event_loop(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = ts.connect(url(db))
    aspace = ts.AsyncSpace(space)
    gate = Gate(db, monkeypatch)
    commits = count_commits(db)
    writes = 100

    async def main() -> tuple[int, list[int]]:
        beats = 0
        returned: list[int] = []  # the heartbeats counted when each write returned

        async def write(k: int) -> None:
            await aspace.write(("w", k))
            returned.append(beats)

        tasks = [asyncio.create_task(write(k)) for k in range(writes)]
        while beats < 1000 and not returned:  # the loop runs while the writes wait
            beats += 1
            await asyncio.sleep(0)
        opened_at = beats
        gate.open()
        async with asyncio.timeout(PATIENCE):
            await asyncio.gather(*tasks)
        return opened_at, returned

    try:
        opened_at, returned = asyncio.run(main())
        assert gate.held.is_set()
        assert opened_at == 1000, "a write returned before its commit"
        assert returned == [1000] * writes
        assert len(commits) <= 2  # the first write's commit, then all the others in one
        assert space.count(("w", int)) == writes
    finally:
        gate.open()
        space.close()


def test_waiting_takers_are_served_in_fifo_order_by_a_durable_space(db: Path) -> None:
    space = ts.connect(url(db))
    try:
        takers = []
        for n in range(5):
            takers.append(spawn(space.take, ("job", int)))
            wait_for_waiters(space, n + 1)
        space.write_many([("job", k) for k in range(5)])
        assert [f.result(PATIENCE) for f in takers] == [("job", k) for k in range(5)]
    finally:
        space.close()
    assert stored_rows(db) == []


# -- a steady load keeps the file small ------------------------------------------------


def test_the_file_stays_bounded_under_a_million_operations(db: Path) -> None:
    space = ts.connect(url(db))
    payload = "p" * 100
    sizes = {}
    operations = 0
    try:
        for cycle in range(500):
            space.write_many([("job", cycle, k, payload) for k in range(1000)])
            assert len(space.take_all(("job", int, int, str), limit=1000)) == 1000
            operations += 2000
            if operations in (200_000, 1_000_000):
                sizes[operations] = [
                    os.path.getsize(p) if os.path.exists(p) else 0 for p in (db, f"{db}-wal")
                ]
    finally:
        space.close()
    (db200, wal200), (db1m, wal1m) = sizes[200_000], sizes[1_000_000]
    assert db1m <= 2 * db200
    assert wal1m <= 2 * wal200
    assert db1m + wal1m < 64 * 2**20
    assert stored_rows(db) == []


# -- transactions, aborts and crashes -------------------------------------------------------


def test_a_tuple_loaded_at_start_and_put_back_by_an_aborted_transaction_stays_taken(db: Path) -> None:
    space = ts.connect(url(db))
    space.write_many([("job", k) for k in range(5)])
    space.close()
    for _ in range(3):
        space = ts.connect(url(db))
        tx = space.transaction()
        assert len(tx.take_all(("job", int))) == 5
        tx.abort()  # the jobs are back: their rows are rewritten...
        taken = space.take_all(("job", int))  # ... and at once deleted, acknowledged
        assert taken == [("job", k) for k in range(5)]
        space.close()
        space = ts.connect(url(db))
        assert space.read_all(("job", int)) == []
        space.write_many(taken)  # the same again, for the next round
        space.close()


def test_a_transaction_that_took_a_leased_tuple_can_abort(db: Path) -> None:
    space = ts.connect(url(db))
    try:
        space.write(("leased",), lease=3600)
        tx = space.transaction()
        assert tx.take(("leased",)) == ("leased",)
        tx.abort()
        assert space.read_all(("leased",)) == [("leased",)]
    finally:
        space.close()
    space = ts.connect(url(db))
    assert space.read_all(("leased",)) == [("leased",)]
    space.close()


HAND_TO_TRANSACTION_THEN_DIE = """
import os, signal, sys, threading, time
import tuplespace as ts
space = ts.connect(sys.argv[1])
took = threading.Event()
def transaction():
    tx = space.transaction()
    tx.take(("job", int))
    took.set()
threading.Thread(target=transaction, daemon=True).start()
while space.statistics()["waiters"] != 1:
    time.sleep(0.001)
space.write(("job", 1))  # acknowledged; the transaction never commits
took.wait()
print("written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_write_handed_to_a_transactions_waiting_take_survives_a_crash(db: Path) -> None:
    result = run_python(HAND_TO_TRANSACTION_THEN_DIE, url(db))
    assert result.stdout == "written\n", result.stderr
    space = ts.connect(url(db))
    try:
        assert space.read_all(("job", int)) == [("job", 1)]
    finally:
        space.close()


# -- a store that fails ------------------------------------------------------------------


def test_after_a_failed_commit_every_operation_raises_and_closing_releases_the_file(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = ts.connect(url(db))
    space.write(("before",))

    def fail(*args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(the_file(db), "write", fail)
    with pytest.raises(ts.StoreError, match="disk I/O error"):
        spawn(space.write, ("lost",)).result(PATIENCE)
    with pytest.raises(ts.StoreError):
        spawn(space.take, ("before",)).result(PATIENCE)  # taken in memory, never on disk
    with pytest.raises(ts.StoreError):  # another space of the failed file: no hang either
        spawn(lambda: ts.connect(url(db, "other")).write(("x",))).result(PATIENCE)
    with contextlib.suppress(ts.StoreError):  # what was pending is not written
        space.close()
    assert os.path.realpath(db) not in _sqlite._FILES
    space = ts.connect(url(db))  # the file holds what was acknowledged before the failure
    try:
        assert space.read_all((str,)) == [("before",)]
    finally:
        space.close()


# -- known defects -------------------------------------------------------------------------


def test_a_tuple_handed_from_an_aborted_transaction_to_a_waiting_take_stays_taken(db: Path) -> None:
    space = ts.connect(url(db))
    space.write(("job", 1))
    tx = space.transaction()
    assert tx.take(("job", int)) == ("job", 1)
    taker = spawn(space.take, ("job", int))
    wait_for_waiters(space, 1)
    tx.abort()
    assert taker.result(PATIENCE) == ("job", 1)  # acknowledged: it must stay taken
    space.close()
    space = ts.connect(url(db))
    try:
        assert space.read_all(("job", int)) == []
    finally:
        space.close()


def test_a_read_does_not_wait_for_the_disk(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space = ts.connect(url(db))
    space.write(("there",))
    gate = Gate(db, monkeypatch)
    timer = threading.Timer(5.0, gate.open)  # a read that waits for the disk still ends
    timer.daemon = True
    try:
        first = spawn(space.write, ("first",))
        wait_until(gate.held.is_set, "the committer to reach the gate")
        second = spawn(space.write, ("second",))  # waits for the commit after the first
        wait_until(lambda: space.count(("second",)) == 1, "the second write")
        timer.start()
        assert space.read(("there",)) == ("there",)
        assert not gate.opened.is_set(), "the read waited for the disk"
    finally:
        timer.cancel()
        gate.open()
        first.result(PATIENCE)
        second.result(PATIENCE)
        space.close()
