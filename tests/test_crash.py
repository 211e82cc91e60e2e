"""Nothing acknowledged is lost: a durable space killed with SIGKILL, again and again.

A child process (crash_child.py) writes and takes items, writes jobs and moves
them to ``done`` in transactions, from threads and coroutines at once, logging
each operation before it begins and after it returned.  The test kills it at a
random moment, opens the file itself and compares what is stored with what the
log says was acknowledged:

- every acknowledged write is there, unless an acknowledged take took it;
- no acknowledged take comes back, and nothing is there that nobody wrote;
- nothing is there twice;
- only the operations in flight at the kill (begun, not returned) may or may not
  have happened: an item may be missing only if a take was in flight;
- a transaction's take and write are both there or neither;
- the order (each tuple's sequence number) survives: a worker's tuples come in the
  order it wrote them, and tuples written after a restart come after older ones;
- ``PRAGMA integrity_check`` finds the file sound.

Then the next child starts on the same file, and so on.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import tuplespace as ts
from helpers import PATIENCE, wait_until

CHILD = Path(__file__).with_name("crash_child.py")
RUNS = 25


@dataclass
class Op:
    """One operation of the log: its begin line, and its end line once it returned."""

    kind: str
    args: list[str]
    end: list[str] | None = None
    took: str | None = None  # the job a transaction took ("m" line)


@dataclass
class Run:
    """What the log of one child says."""

    ready: bool = False
    ops: dict[str, list[Op]] = field(default_factory=dict)

    @property
    def in_flight(self) -> list[Op]:
        """The operations that had begun and not returned when the child was killed."""
        return [ops[-1] for ops in self.ops.values() if ops and ops[-1].end is None]

    def done(self) -> list[Op]:
        return [op for ops in self.ops.values() for op in ops if op.end is not None]


def parse(text: str) -> Run:
    run = Run()
    for line in text.splitlines():
        words = line.split()
        if words == ["R"]:
            run.ready = True
            continue
        what, worker, kind, *args = words
        ops = run.ops.setdefault(worker, [])
        if what == "b":
            assert not ops or ops[-1].end is not None, f"{worker} began an operation before the last ended"
            ops.append(Op(kind, args))
        else:
            op = ops[-1]
            assert op.kind == kind, f"unexpected line {line!r}"
            assert op.end is None, f"unexpected line {line!r}"
            if what == "m":
                op.took = args[0]
            else:
                assert what == "e", line
                op.end = args
    return run


def id_key(tuple_id: str) -> tuple[int, str, int]:
    run, worker, n = tuple_id.split(".")
    return int(run), worker, int(n)


def check_order(ids: list[str], what: str) -> None:
    """Stored tuples come in the order they were written: a later run's tuples after an
    earlier run's, and each worker's in the order it wrote them."""
    keys = [id_key(i) for i in ids]
    runs = [k[0] for k in keys]
    assert runs == sorted(runs), f"{what}: tuples of a later run stored before older ones"
    last: dict[tuple[int, str], int] = {}
    for run, worker, n in keys:
        assert last.get((run, worker), 0) < n, f"{what}: {run}.{worker}.{n} out of order"
        last[run, worker] = n


def unique(tuples: list[tuple[object, ...]], what: str) -> set[str]:
    ids = [str(t[1]) for t in tuples]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"{what} stored twice: {twice[:10]}"
    return set(ids)


@dataclass
class Model:
    """What must be in the space: exactly what the last check found there."""

    items: set[str] = field(default_factory=set)
    jobs: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    acknowledged: Counter[str] = field(default_factory=Counter)  # operations by kind
    in_flight: int = 0  # operations begun and not returned at the kills
    allowances_used: int = 0

    def check(self, run: Run, items: list[str], jobs: list[str], done: list[str]) -> None:
        stored_items, stored_jobs, stored_done = set(items), set(jobs), set(done)
        written: set[str] = set()  # acknowledged writes of items
        taken: set[str] = set()  # acknowledged takes of items
        jobs_written: set[str] = set()
        jobs_taken: set[str] = set()
        done_written: set[str] = set()
        for op in run.done():
            assert op.end is not None
            self.acknowledged[op.kind if op.kind != "X" else f"X {op.end[0] if op.end else 'commit'}"] += 1
            if op.kind == "W":
                written.update(op.args)
            elif op.kind in "TS":
                taken.update(i for i in op.end if i != "-")
            elif op.kind == "J":
                jobs_written.update(op.args)
            elif op.kind == "K":
                jobs_taken.update(i for i in op.end if i != "-")
            elif op.kind == "X" and op.end == []:
                assert op.took is not None
                jobs_taken.add(op.took)
                done_written.add(op.took)

        may_appear: set[str] = set()  # writes in flight
        may_vanish: set[str] = set()  # named takes in flight
        anonymous_takes = 0  # how many items the takes in flight by template may have taken
        anonymous_job_takes = 0
        transactions: list[str] = []  # jobs taken by transactions in flight
        self.in_flight += len(run.in_flight)
        for op in run.in_flight:
            if op.kind == "W":
                may_appear.update(op.args)
            elif op.kind == "T":
                anonymous_takes += int(op.args[0])
            elif op.kind == "S":
                may_vanish.add(op.args[0])
            elif op.kind == "J":
                may_appear.add(op.args[0])
            elif op.kind == "K":
                anonymous_job_takes += 1
            elif op.kind == "X" and op.took is not None:
                transactions.append(op.took)

        # Items.
        expected = (self.items | written) - taken
        back = stored_items & taken
        assert not back, f"acknowledged takes came back: {sorted(back)[:10]}"
        extra = stored_items - expected - may_appear
        assert not extra, f"items nobody acknowledged writing: {sorted(extra)[:10]}"
        missing = expected - stored_items - may_vanish
        assert len(missing) <= anonymous_takes, (
            f"{len(missing)} acknowledged items lost ({sorted(missing)[:10]}); "
            f"only {anonymous_takes} could have been taken by takes in flight"
        )
        self.allowances_used += len(missing) + len((expected - stored_items) & may_vanish)

        # Jobs, and the transactions that move a job to done.
        expected_jobs = (self.jobs | jobs_written) - jobs_taken
        back = stored_jobs & jobs_taken
        assert not back, f"acknowledged takes of jobs came back: {sorted(back)[:10]}"
        extra = stored_jobs - expected_jobs - may_appear
        assert not extra, f"jobs nobody acknowledged writing: {sorted(extra)[:10]}"
        both = stored_jobs & stored_done
        assert not both, f"jobs both there and done (a transaction half applied): {sorted(both)[:10]}"
        expected_done = self.done | done_written
        lost = expected_done - stored_done
        assert not lost, f"committed transactions lost: {sorted(lost)[:10]}"
        extra = stored_done - expected_done - set(transactions)
        assert not extra, f"done without a committed transaction: {sorted(extra)[:10]}"
        committed_in_flight = {j for j in transactions if j in stored_done}
        missing = expected_jobs - stored_jobs - committed_in_flight
        assert len(missing) <= anonymous_job_takes, (
            f"{len(missing)} acknowledged jobs lost ({sorted(missing)[:10]}); "
            f"only {anonymous_job_takes} could have been taken by takes in flight"
        )

        self.items, self.jobs, self.done = stored_items, stored_jobs, stored_done


def integrity(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (high,) = db.execute("SELECT last_seq FROM spaces WHERE name = 'crash'").fetchone() or (0,)
        (top,) = db.execute("SELECT max(seq) FROM tuples WHERE space = 'crash'").fetchone()
        assert top is None or top <= high, "a stored tuple has a seq above the space's last_seq"
    finally:
        db.close()


def inspect(path: Path, run: Run, model: Model) -> None:
    """Open the file as the next process would, and check it against the log."""
    space = ts.connect(f"sqlite://{path}?space=crash")
    try:
        items = space.read_all(("item", str, ts.ANY))
        jobs = space.read_all(("job", str))
        done = space.read_all(("done", str))
        model.check(run, [*unique(items, "items")], [*unique(jobs, "jobs")], [*unique(done, "done")])
        check_order([t[1] for t in items], "items")
        check_order([t[1] for t in jobs], "jobs")
        # Keep the file small: the done markers have been counted.
        assert len(space.take_all(("done", str))) == len(done)
        model.done = set()
    finally:
        space.close()
    integrity(path)


def run_and_kill(
    args: list[str], log_path: Path, err_path: Path, wait_for_ready: bool, seconds: float
) -> bool:
    """Start a child, let it work ``seconds`` (after it opened the space, if
    ``wait_for_ready``), kill it with SIGKILL; whether it was still running."""
    with open(err_path, "wb") as err:
        child = subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.DEVNULL, stderr=err)
    try:
        if wait_for_ready:
            wait_until(
                lambda: (
                    child.poll() is not None
                    or (log_path.exists() and log_path.read_bytes().startswith(b"R\n"))
                ),
                "the child to open the space",
            )
        time.sleep(seconds)
        return child.poll() is None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(PATIENCE)


def test_killed_at_random_moments_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path = tmp_path / "spaces.db"
    model = Model()
    kills = during_start = 0
    for number in range(1, RUNS + 1):
        log_path = tmp_path / f"run{number}.log"
        err_path = tmp_path / f"run{number}.err"
        durability = "full" if number % 3 == 0 else "normal"
        early = number % 5 == 0  # killed while starting: importing, or opening the file
        alive = run_and_kill(
            [str(path), str(number), str(log_path), durability, str(seed)],
            log_path,
            err_path,
            wait_for_ready=not early,
            seconds=rng.uniform(0.05, 0.5),
        )
        assert alive, f"run {number} (seed {seed}) ended by itself:\n{err_path.read_text()}"
        kills += 1
        run = parse(log_path.read_text() if log_path.exists() else "")
        during_start += not run.ready
        try:
            inspect(path, run, model)
        except AssertionError as exc:
            raise AssertionError(f"after kill {number} (seed {seed}): {exc}") from exc
    assert kills >= 20
    assert sum(model.acknowledged.values()) > 1000, "the children did too little to test anything"
    assert all(model.acknowledged[kind] for kind in ["W", "T", "S", "J", "K", "X commit", "X abort"])
    assert model.in_flight > 0
    print(
        f"{kills} kills ({during_start} while starting), {sum(model.acknowledged.values())} acknowledged "
        f"operations ({dict(model.acknowledged)}), {model.in_flight} in flight at the kills, "
        f"{model.allowances_used} tuples gone with a take in flight; seed {seed}"
    )
