"""Benchmarks of the durable SQLite store (``sqlite:///file.db?space=...``).

Prints ONE JSON line with ``"impl": "pytuplespace-durable"``.  The machines
these run on are shared and noisy, so every comparison is made inside one run:
PyTupleSpace and its reference alternate over several rounds (the one that goes
first alternates too), each round on fresh files, and medians are reported.
Every file lives in a fresh temporary directory that is removed at the end.

1. Concurrent durable writes, then takes: THREADS threads each write
   ``("job", k, i, "payload-string")`` (k: the thread, i: its counter), N_CONC
   tuples in all; then THREADS threads each take its own ``("job", k, int, str)``
   until its share is gone.  Every call returns only once its change is
   committed.  The reference is raw ``sqlite3`` doing the same inserts and
   deletes into the same table (the store's schema), in the same file set-up
   (WAL, ``locking_mode=EXCLUSIVE``, the same ``synchronous``), with the same
   group commit: THREADS threads hand their rows to one committer thread, which
   commits whatever has accumulated in one transaction per round, and each
   thread waits for its row's commit before its next operation; data is the
   same JSON bytes (``orjson.dumps`` of the list).  The raw takers delete rows
   whose keys they remember from their inserts (no search: the floor).  Each of
   ROUNDS rounds runs both on fresh files in ABBA order (writes A then B, takes
   B then A, A alternating between rounds) after one untimed warm-up round;
   the ratios are the medians of the per-round ratios.
   ``durability=normal`` (``synchronous=NORMAL``) is the target,
   ``durability=full`` (``synchronous=FULL``) is reported for information
   (N_CONC_FULL tuples, ROUNDS_FULL rounds, every commit is an fsync: these
   figures follow the disk's fsync latency, which varies a lot on shared VMs).
2. Start-up: N_START tuples ``("job", i, "payload-string")`` are written with
   ``write_many`` in chunks of 10,000 (in a child process, so this one stays
   small), the space is closed, then a fresh subprocess times
   ``ts.connect(url)`` until it returns (START_RUNS times, the median is
   reported; the page cache is warm: the file was just written) and reports its
   peak RSS (``ru_maxrss``, and ``VmHWM`` as a cross-check) next to that of the
   interpreter with ``tuplespace`` imported and nothing opened.
3. For information: one thread writing N_SEQ tuples then taking them, each
   call durable on return, next to raw sqlite3 with one thread and the same
   committer (ROUNDS_SEQ rounds, as in 1); and the sizes of the ``.db`` and
   ``-wal`` files under a steady load of N_STEADY operations (THREADS threads,
   each repeatedly taking its oldest tuple and writing a new one, STEADY_WINDOW
   tuples stored at most), measured with the threads paused after 10%, 50% and 100% of the operations.

Counts are checked after every phase (and after reopening the files), so a
fast but wrong store fails the benchmark instead of winning it.

Env overrides: THREADS (8), N_CONC (16000), ROUNDS (7), N_CONC_FULL (2000),
ROUNDS_FULL (5), N_START (1000000), START_RUNS (3), N_SEQ (4000), ROUNDS_SEQ (5),
N_STEADY (1000000), STEADY_WINDOW (1000),
SKIP (comma-separated: startup,concurrent,full,sequential,steady).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import orjson

import tuplespace as ts
from _harness import header, logger, now, run

THREADS = int(os.environ.get("THREADS", 8))
N_CONC = int(os.environ.get("N_CONC", 16_000))
ROUNDS = int(os.environ.get("ROUNDS", 7))
N_CONC_FULL = int(os.environ.get("N_CONC_FULL", 2_000))
ROUNDS_FULL = int(os.environ.get("ROUNDS_FULL", 5))
N_START = int(os.environ.get("N_START", 1_000_000))
START_RUNS = int(os.environ.get("START_RUNS", 3))
N_SEQ = int(os.environ.get("N_SEQ", 4_000))
ROUNDS_SEQ = int(os.environ.get("ROUNDS_SEQ", 5))
N_STEADY = int(os.environ.get("N_STEADY", 1_000_000))
STEADY_WINDOW = int(os.environ.get("STEADY_WINDOW", 1_000))

PAYLOAD = "payload-string"
median = statistics.median


log = logger("bench_durable")


class Files:
    """Fresh file names in one temporary directory."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.n = 0

    def new(self, stem: str) -> str:
        self.n += 1
        return os.path.join(self.root, f"{stem}-{self.n}.db")


def remove_db(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def url(path: str, durability: str = "normal", space: str = "jobs") -> str:
    return f"sqlite:///{path}?space={space}&durability={durability}"


def run_threads(n: int, body: Callable[[int], None]) -> float:
    """Start ``n`` threads running ``body(k)``, release them at once, wait for all;
    returns the seconds from the release to the last one's end."""
    go = threading.Event()
    errors: list[BaseException] = []

    def target(k: int) -> None:
        go.wait()
        try:
            body(k)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    gc.collect()
    t0 = now()
    go.set()
    for t in threads:
        t.join()
    elapsed = now() - t0
    if errors:
        raise errors[0]
    return elapsed


def shares(total: int, n: int) -> list[int]:
    return [total // n + (1 if k < total % n else 0) for k in range(n)]


# -- the reference: raw sqlite3 with the same group commit ----------------------------


class RawStore:
    """Raw sqlite3: the store's table and file set-up, and one committer thread that
    commits whatever rows have accumulated in one transaction per round."""

    def __init__(self, path: str, synchronous: str) -> None:
        db = self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute(
            "CREATE TABLE tuples (space TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,"
            " expires REAL, PRIMARY KEY (space, seq)) WITHOUT ROWID"
        )
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise RuntimeError("no WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        self.lock = threading.Lock()
        self.seq = 0
        self.puts: list[tuple[int, tuple[Any, ...]]] = []
        self.deletes: list[int] = []
        self.batch = 1
        self.durable = 0
        self.cond = threading.Condition()
        self.kick = threading.Event()
        self.closed = False
        self.commits = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def insert(self, t: tuple[Any, ...]) -> int:
        with self.lock:
            self.seq += 1
            seq = self.seq
            self.puts.append((seq, t))
            batch = self.batch
        self.kick.set()
        self._wait(batch)
        return seq

    def delete(self, seq: int) -> None:
        with self.lock:
            self.deletes.append(seq)
            batch = self.batch
        self.kick.set()
        self._wait(batch)

    def _wait(self, batch: int) -> None:
        with self.cond:
            while self.durable < batch:
                self.cond.wait()

    def _run(self) -> None:
        db = self.db
        while True:
            self.kick.wait()
            self.kick.clear()
            if self.closed:
                return
            with self.lock:
                batch, puts, deletes = self.batch, self.puts, self.deletes
                self.batch += 1
                self.puts, self.deletes = [], []
            if puts or deletes:
                db.execute("BEGIN")
                if puts:
                    db.executemany(
                        "INSERT OR REPLACE INTO tuples VALUES (?, ?, ?, ?)",
                        [("jobs", seq, orjson.dumps(list(t)), None) for seq, t in puts],
                    )
                if deletes:
                    db.executemany(
                        "DELETE FROM tuples WHERE space = ? AND seq = ?", [("jobs", s) for s in deletes]
                    )
                db.execute("COMMIT")
                self.commits += 1
            with self.cond:
                self.durable = batch
                self.cond.notify_all()

    def count(self) -> int:
        with self.lock:  # no commit runs while the caller's threads are done
            return int(self.db.execute("SELECT count(*) FROM tuples").fetchone()[0])

    def close(self) -> None:
        self.closed = True
        self.kick.set()
        self.thread.join()
        self.db.close()


# -- 1. concurrent writes and takes ---------------------------------------------------


class TsRun:
    """PyTupleSpace: THREADS writers, then THREADS takers, on a fresh file."""

    def __init__(self, path: str, durability: str, n: int, threads: int) -> None:
        self.path, self.durability, self.n, self.threads = path, durability, n, threads
        self.per = shares(n, threads)
        self.space = ts.connect(url(path, durability))

    def writes(self) -> float:
        space, per = self.space, self.per

        def writer(k: int) -> None:
            write = space.write
            for i in range(per[k]):
                write(("job", k, i, PAYLOAD))

        elapsed = run_threads(self.threads, writer)
        n = self.n
        if len(space) != n or any(space.count(("job", k, int, str)) != per[k] for k in range(self.threads)):
            raise AssertionError(f"after the writes: {len(space)} tuples, expected {n}")
        space.close()
        self.space = space = ts.connect(url(self.path, self.durability))  # acknowledged means on disk
        if len(space) != n:
            raise AssertionError(f"reopened after the writes: {len(space)} tuples, expected {n}")
        return n / elapsed

    def takes(self) -> float:
        space, per = self.space, self.per

        def taker(k: int) -> None:
            take = space.take
            template = ("job", k, int, str)
            for i in range(per[k]):
                t = take(template, timeout=30)
                if t[2] != i:
                    raise AssertionError(f"taker {k} got {t}, expected i={i}")

        elapsed = run_threads(self.threads, taker)
        if len(space) != 0:
            raise AssertionError(f"after the takes: {len(space)} tuples left")
        return self.n / elapsed

    def close(self) -> None:
        self.space.close()
        check = sqlite3.connect(self.path)
        left = check.execute("SELECT count(*) FROM tuples").fetchone()[0]
        check.close()
        if left != 0:
            raise AssertionError(f"after the takes: {left} rows left in the file")


class RawRun:
    """Raw sqlite3: THREADS threads inserting, then deleting the rows they inserted."""

    def __init__(self, path: str, synchronous: str, n: int, threads: int) -> None:
        self.n, self.threads = n, threads
        self.per = shares(n, threads)
        self.keys: list[list[int]] = [[] for _ in range(threads)]
        self.raw = RawStore(path, synchronous)
        self.rows_per_commit = 0.0

    def writes(self) -> float:
        raw, per, keys = self.raw, self.per, self.keys

        def writer(k: int) -> None:
            insert, mine = raw.insert, keys[k]
            for i in range(per[k]):
                mine.append(insert(("job", k, i, PAYLOAD)))

        elapsed = run_threads(self.threads, writer)
        if raw.count() != self.n:
            raise AssertionError(f"raw: {raw.count()} rows after the writes, expected {self.n}")
        self.rows_per_commit = self.n / max(raw.commits, 1)
        return self.n / elapsed

    def takes(self) -> float:
        raw, keys = self.raw, self.keys

        def taker(k: int) -> None:
            delete = raw.delete
            for seq in keys[k]:
                delete(seq)

        elapsed = run_threads(self.threads, taker)
        if raw.count() != 0:
            raise AssertionError(f"raw: {raw.count()} rows left after the deletes")
        return self.n / elapsed

    def close(self) -> None:
        self.raw.close()


def compare(
    files: Files, stem: str, durability: str, n: int, threads: int, rounds: int
) -> dict[str, list[float]]:
    """Rounds of PyTupleSpace against raw sqlite3, each on fresh files, in ABBA order:
    writes A then B, takes B then A; A alternates between rounds."""
    synchronous = {"normal": "NORMAL", "full": "FULL"}[durability]
    out: dict[str, list[float]] = {
        "ts_w": [],
        "ts_t": [],
        "raw_w": [],
        "raw_t": [],
        "raw_rows_per_commit": [],
    }
    for r in range(-1, rounds):  # round -1 warms up (imports, caches, the file system), untimed
        size = min(n, 2_000) if r < 0 else n
        runs: dict[str, TsRun | RawRun] = {}
        paths = [files.new(f"{stem}-ts"), files.new(f"{stem}-raw")]
        try:
            runs["ts"] = TsRun(paths[0], durability, size, threads)
            runs["raw"] = RawRun(paths[1], synchronous, size, threads)
            order = ["ts", "raw"] if r % 2 == 0 else ["raw", "ts"]
            got: dict[str, float] = {}
            for which in order:
                got[f"{which}_w"] = runs[which].writes()
            for which in reversed(order):
                got[f"{which}_t"] = runs[which].takes()
        finally:
            for run in runs.values():
                run.close()
            for path in paths:
                remove_db(path)
        if r < 0:
            continue
        for key, value in got.items():
            out[key].append(value)
        out["raw_rows_per_commit"].append(runs["raw"].rows_per_commit)  # type: ignore[union-attr]
        log(
            f"{stem} round {r + 1}/{rounds}: writes {got['ts_w']:.0f} vs raw {got['raw_w']:.0f} ops/s, "
            f"takes {got['ts_t']:.0f} vs raw {got['raw_t']:.0f} ops/s"
        )
    return out


def ratios(a: list[float], b: list[float]) -> list[float]:
    return [round(x / y, 3) for x, y in zip(a, b, strict=True)]


def bench_concurrent(res: dict[str, Any], files: Files, durability: str, n: int, rounds: int) -> None:
    got = compare(files, f"conc-{durability}", durability, n, THREADS, rounds)
    pw, pt, rw, rt, per_commit = (
        got["ts_w"],
        got["ts_t"],
        got["raw_w"],
        got["raw_t"],
        got["raw_rows_per_commit"],
    )
    p = f"conc_{durability}"
    res[f"{p}_n"] = n
    res[f"{p}_write_ops_s"] = round(median(pw))
    res[f"{p}_take_ops_s"] = round(median(pt))
    res[f"{p}_raw_write_ops_s"] = round(median(rw))
    res[f"{p}_raw_take_ops_s"] = round(median(rt))
    res[f"{p}_raw_rows_per_commit"] = round(median(per_commit), 1)
    res[f"{p}_write_ratio"] = round(median(ratios(pw, rw)), 3)
    res[f"{p}_take_ratio"] = round(median(ratios(pt, rt)), 3)
    res[f"{p}_write_ratios"] = ratios(pw, rw)
    res[f"{p}_take_ratios"] = ratios(pt, rt)


# -- 2. start-up with many stored tuples -----------------------------------------------

FILL = r"""
import json, sys, time
import tuplespace as ts
url, n, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
space = ts.connect(url)
t0 = time.perf_counter()
for lo in range(0, n, 10_000):
    space.write_many([("job", i, payload) for i in range(lo, min(lo + 10_000, n))])
t1 = time.perf_counter()
stored = len(space)
space.close()
t2 = time.perf_counter()
print(json.dumps({"fill_s": t1 - t0, "close_s": t2 - t1, "n": stored}))
"""

START = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import tuplespace as ts
t1 = time.perf_counter()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t2 = time.perf_counter()
space = ts.connect(sys.argv[1])
t3 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as f:  # the peak of this process alone, for a cross-check
    hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
n = len(space)
first = space.read(("job", 0, str), timeout=0)
last = space.read(("job", n - 1, str), timeout=0)
t4 = time.perf_counter()
space.close()
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "connect_s": t3 - t2, "close_s": t5 - t4, "n": n,
                  "first": list(first), "last": list(last),
                  "rss_kb": rss, "base_rss_kb": base, "hwm_kb": hwm}))
"""


def child(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=900, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"child process failed: {out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_startup(res: dict[str, Any], files: Files) -> None:
    n = N_START
    path = files.new("startup")
    # filled in a child too, so that this process stays small: a child started by
    # fork/exec may report its parent's peak as its own ru_maxrss
    fill = child(FILL, url(path), str(n), PAYLOAD)
    if fill["n"] != n:
        raise AssertionError(f"fill: {fill['n']} tuples, expected {n}")
    db_bytes, wal_bytes = file_size(path), file_size(path + "-wal")
    runs = []
    for _ in range(START_RUNS):
        got = child(START, url(path))
        if got["n"] != n or got["first"] != ["job", 0, PAYLOAD] or got["last"] != ["job", n - 1, PAYLOAD]:
            raise AssertionError(f"start-up child saw {got['n']} tuples, expected {n}: {got}")
        runs.append(got)
        log(f"start-up: connect {got['connect_s']:.2f} s, peak RSS {got['rss_kb'] / 1024:.0f} MiB")
    res["startup_n"] = n
    res["startup_page_cache"] = "warm"
    res["startup_fill_s"] = round(fill["fill_s"], 2)
    res["startup_fill_tuples_s"] = round(n / fill["fill_s"])
    res["startup_close_after_fill_s"] = round(fill["close_s"], 2)
    res["startup_db_bytes"] = db_bytes
    res["startup_wal_bytes"] = wal_bytes
    res["startup_connect_s"] = round(median(c["connect_s"] for c in runs), 2)
    res["startup_connect_runs_s"] = [round(c["connect_s"], 2) for c in runs]
    res["startup_peak_rss_mib"] = round(max(c["rss_kb"] for c in runs) / 1024, 1)
    res["startup_peak_hwm_mib"] = round(max(c["hwm_kb"] for c in runs) / 1024, 1)
    res["startup_base_rss_mib"] = round(min(c["base_rss_kb"] for c in runs) / 1024, 1)
    res["startup_close_s"] = round(median(c["close_s"] for c in runs), 2)
    res["startup_import_s"] = round(median(c["import_s"] for c in runs), 2)
    remove_db(path)


# -- 3a. one thread, sequential --------------------------------------------------------


def bench_sequential(res: dict[str, Any], files: Files) -> None:
    got = compare(files, "seq", "normal", N_SEQ, 1, ROUNDS_SEQ)
    pw, pt, rw, rt = got["ts_w"], got["ts_t"], got["raw_w"], got["raw_t"]
    res["seq_n"] = N_SEQ
    res["seq_write_ops_s"] = round(median(pw))
    res["seq_take_ops_s"] = round(median(pt))
    res["seq_raw_write_ops_s"] = round(median(rw))
    res["seq_raw_take_ops_s"] = round(median(rt))
    res["seq_write_ratio"] = round(median(ratios(pw, rw)), 3)
    res["seq_take_ratio"] = round(median(ratios(pt, rt)), 3)


# -- 3b. file sizes under a steady load ---------------------------------------------------


def bench_steady(res: dict[str, Any], files: Files) -> None:
    path = files.new("steady")
    space = ts.connect(url(path))
    window = shares(STEADY_WINDOW, THREADS)
    counters = [0] * THREADS
    for k in range(THREADS):
        space.write_many([("job", k, i, PAYLOAD) for i in range(window[k])])
        counters[k] = window[k]
    done = 0
    sizes: dict[str, dict[str, int]] = {}
    total_s = 0.0
    marks = [N_STEADY // 10, N_STEADY // 2, N_STEADY]
    try:
        for mark in marks:
            per = shares((mark - done) // 2, THREADS)  # one take and one write per step

            def body(k: int, per: list[int] = per) -> None:
                take, write = space.take, space.write
                template = ("job", k, int, str)
                i = counters[k]
                for _ in range(per[k]):
                    take(template, timeout=30)
                    write(("job", k, i, PAYLOAD))
                    i += 1
                counters[k] = i

            total_s += run_threads(THREADS, body)
            done += 2 * sum(per)
            if len(space) != STEADY_WINDOW:
                raise AssertionError(f"steady: {len(space)} tuples stored, expected {STEADY_WINDOW}")
            sizes[str(mark)] = {"db": file_size(path), "wal": file_size(path + "-wal")}
            log(f"steady: {done} ops, db {sizes[str(mark)]['db']} B, wal {sizes[str(mark)]['wal']} B")
    finally:
        space.close()
    space = ts.connect(url(path))
    try:
        if len(space) != STEADY_WINDOW:
            raise AssertionError(f"steady, reopened: {len(space)} tuples, expected {STEADY_WINDOW}")
        for k in range(THREADS):  # the oldest left of each thread's is the one after the last taken
            oldest = space.read(("job", k, int, str), timeout=0)
            if oldest[2] != counters[k] - window[k]:
                raise AssertionError(f"steady, reopened: thread {k}'s oldest is {oldest}")
    finally:
        space.close()
    res["steady_ops"] = done
    res["steady_window"] = STEADY_WINDOW
    res["steady_ops_s"] = round(done / total_s)
    res["steady_sizes"] = sizes
    res["steady_db_bytes_after_close"] = file_size(path)
    res["steady_wal_bytes_after_close"] = file_size(path + "-wal")
    remove_db(path)


# -- main ----------------------------------------------------------------------------


def targets(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}

    def at_least(name: str, key: str, target: float) -> None:
        if key in res:
            out[name] = {"value": res[key], "target": f">= {target}", "pass": res[key] >= target}

    def at_most(name: str, key: str, target: float) -> None:
        if key in res:
            out[name] = {"value": res[key], "target": f"<= {target}", "pass": res[key] <= target}

    at_least("durable_write_vs_raw_sqlite", "conc_normal_write_ratio", 0.5)
    at_least("durable_take_vs_raw_sqlite", "conc_normal_take_ratio", 0.5)
    at_most("startup_1m_connect_s", "startup_connect_s", 10.0)
    return out


def main() -> None:
    res = header(
        "pytuplespace-durable",
        sqlite=sqlite3.sqlite_version,
        threads=THREADS,
        rounds=ROUNDS,
        rounds_full=ROUNDS_FULL,
        rounds_seq=ROUNDS_SEQ,
        raw_reference="sqlite3, same table, WAL, locking_mode=EXCLUSIVE, one committer thread, "
        "one transaction per round, orjson rows",
    )
    root = tempfile.mkdtemp(prefix="bench_durable_")
    files = Files(root)
    try:
        run(
            res,
            [
                ("startup", lambda: bench_startup(res, files)),
                ("concurrent", lambda: bench_concurrent(res, files, "normal", N_CONC, ROUNDS)),
                ("full", lambda: bench_concurrent(res, files, "full", N_CONC_FULL, ROUNDS_FULL)),
                ("sequential", lambda: bench_sequential(res, files)),
                ("steady", lambda: bench_steady(res, files)),
            ],
            log,
            targets,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
