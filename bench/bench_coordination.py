"""Benchmarks of the coordination features of the embedded space: events and transactions.

Prints ONE JSON line with ``"impl": "pytuplespace-coordination"``: every figure,
the ratios, and ``"targets"`` ({name: {"value", "target", "pass"}}).  Every
comparison is measured in this one process, because the machines these run on
are shared and noisy: each round builds a fresh space per arm, then runs the arms
in small chunks, alternating chunk by chunk in a rotating order, so a burst of
load from elsewhere hits every arm alike.  A chunk of one arm and the same chunk
of the base arm run a few milliseconds apart; a ratio (``*_overhead``, the one
checked against its target) is the median of these chunk-by-chunk ratios over
all ``ROUNDS`` rounds, and a time per operation the median over the chunks, since
a chunk that another process preempted says nothing about the arms.  For
comparison, ``*_overhead_sum`` is the median over the rounds of each round's
ratio of total times (``*_overhead_rounds`` lists them); it counts every
preemption, so it swings more on a busy machine; ``*_overhead_cpu`` is the
chunk-by-chunk median of this thread's CPU time (``time.thread_time``), blind to
preemption (and to the work of the space's timer thread): where the two medians
agree, the figure is not an artefact of the load.

The cyclic garbage collector stays on, as in real use, and each round starts
right after ``gc.collect()``.  But the arms of a round are alive together, so a
full collection walks all of them and lands in whichever chunk happens to
allocate at that moment (a few collections of ~0.1 s each per round): charged to
that arm, it would measure where it landed, not the arm.  So the collector's
pauses (timed through ``gc.callbacks``) are taken out of the chunk they fell in
and reported apart (``writes_gc_share``, ``txn_gc_share``); ``*_overhead_gc_even`` adds them back,
split evenly, the arms holding the same live objects and allocating alike.

1. Subscriber overhead on writes.  N_WRITES tuples, ``("job", i, "payload-string")``
   except every HOT_EVERY-th (1%), which is ``("hot", i, "payload-string")``, are
   written into a fresh ``ts.Space()`` in three arms:

   - ``none``: no subscription;
   - ``sub1``: one subscription to ``("hot", int, str)``, ``events={"write"}``;
   - ``idle``: N_IDLE_SUBS subscriptions to ``("watch", k, ANY)``, k < N_IDLE_SUBS,
     that no write matches (though the writes with ``i < N_IDLE_SUBS`` share their
     second field with one of them, so they are looked at and rejected).

   The tuples are built before timing; the writes go in chunks of CHUNK and only
   the writes are timed.  After each of its chunks the ``sub1`` arm drains its
   subscription with ``get(timeout=0)`` until ``Timeout``, so it never overflows;
   that drain is timed apart (``sub1_drain_ns_per_event``, and
   ``sub1_overhead_incl_drain`` counts it as the writer's);
   ``sub1_overhead_chunk_median`` is the median of the per-chunk ratios.
   Checked: the subscriber got exactly the hot tuples, in order, as ``write``
   events with increasing ``seq`` and no overflow; the idle subscriptions got
   nothing; every tuple is stored.
   ``sub1_overhead`` = sub1/none write time (target <= 1.2),
   ``idle_overhead`` = idle/none (target <= 2).

2. Transactions.  A space holding N_TXN jobs; each pair takes one job and writes
   its result, ``("result", id, "done")``:

   - ``txn``: ``with space.transaction() as tx: job = tx.take(...); tx.write(...)``
     (the default lease, 60 s);
   - ``plain``: the same take and write on the space, no transaction;
   - ``txn_nolease`` (for information): as ``txn`` with ``transaction(lease=None)``,
     which schedules no deadline, to show what the lease costs.

   The arms alternate every TXN_CHUNK pairs.  Checked: no job left, exactly one
   result per job, every transaction committed.  ``txn_overhead`` = txn/plain
   time per pair (target <= 3).

3. For information:

   - events/s delivered to one subscriber iterating (``for ev in sub``) in another
     thread while this one writes N_EVENTS matching tuples as fast as it can: from
     the first write to the consumer's receipt of the last.  The space keeps
     ``event_retention`` >= N_EVENTS so a consumer that falls behind catches up
     from the log (``events_overflows`` counts how often it did) rather than
     losing events; every event is checked, in order;
   - ``replace`` ops/s incrementing a counter ``("counter", n)`` N_REPLACE times
     (checked: the final count);
   - ``write_if_absent`` ops/s: N_WIA calls, each key ``("key", k, ANY)`` tried
     twice, so half write and half find it present (checked: exactly half wrote).

Env overrides: N_WRITES (100000), HOT_EVERY (100), N_IDLE_SUBS (1000), CHUNK (500),
N_TXN (20000), TXN_CHUNK (200), N_EVENTS (50000), N_REPLACE (50000), N_WIA (50000),
ROUNDS (5), INFO_ROUNDS (3), SKIP (comma-separated workloads to leave out:
writes,txn,events,replace,wia).
"""

from __future__ import annotations

import gc
import itertools
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run

N_WRITES = int(os.environ.get("N_WRITES", 100_000))
HOT_EVERY = int(os.environ.get("HOT_EVERY", 100))
N_IDLE_SUBS = int(os.environ.get("N_IDLE_SUBS", 1000))
CHUNK = int(os.environ.get("CHUNK", 500))
N_TXN = int(os.environ.get("N_TXN", 20_000))
TXN_CHUNK = int(os.environ.get("TXN_CHUNK", 200))
N_EVENTS = int(os.environ.get("N_EVENTS", 50_000))
N_REPLACE = int(os.environ.get("N_REPLACE", 50_000))
N_WIA = int(os.environ.get("N_WIA", 50_000))
ROUNDS = int(os.environ.get("ROUNDS", 5))
INFO_ROUNDS = int(os.environ.get("INFO_ROUNDS", 3))

WRITE_ARMS = ["none", "sub1", "idle"]
TARGETS = {"sub1_overhead": 1.2, "idle_overhead": 2.0, "txn_overhead": 3.0}

cpu = time.thread_time  # this thread's CPU time: blind to preemption by other processes
median = statistics.median
Tuple = tuple[Any, ...]


log = logger("bench_coordination")


def rotated(arms: list[str], r: int) -> list[str]:
    """The arms in a different order each round, so none always goes first."""
    k = r % len(arms)
    return arms[k:] + arms[:k]


class GcClock:
    """Wall time spent in the cyclic garbage collector (through ``gc.callbacks``).

    The arms of a round are alive together, so a full collection walks all of
    them and lands in whichever arm happens to allocate at that moment; its pause
    is therefore taken out of that arm's time and reported apart.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = now()
        else:
            self.seconds += now() - self._t0
            self.full += info["generation"] == 2


GC = GcClock()  # installed by main()


# -- 1. write cost with subscribers -------------------------------------------------


def make_writes(n: int) -> tuple[list[list[Tuple]], list[Tuple]]:
    """The tuples to write, in chunks, and the hot ones among them, in order."""
    tuples = [("hot" if i % HOT_EVERY == 0 else "job", i, "payload-string") for i in range(n)]
    hot = [t for t in tuples if t[0] == "hot"]
    return [tuples[i : i + CHUNK] for i in range(0, n, CHUNK)], hot


def drain(sub: ts.Subscription, into: list[ts.Event]) -> None:
    get, append = sub.get, into.append
    while True:
        try:
            ev = get(timeout=0)
        except ts.Timeout:
            return
        if ev is None:
            raise AssertionError("the subscription closed")
        append(ev)


class WriteArm:
    """One arm of the write benchmark: its space, its subscriptions, its timings."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.space = ts.Space()
        self.sub: ts.Subscription | None = None
        self.idle: list[ts.Subscription] = []
        if name == "sub1":
            self.sub = self.space.subscribe(("hot", int, str), events={"write"})
        elif name == "idle":
            self.idle = [
                self.space.subscribe(("watch", k, ts.ANY), events={"write"}) for k in range(N_IDLE_SUBS)
            ]
        self.write_s = self.drain_s = 0.0
        self.chunk_s: list[float] = []
        self.chunk_cpu: list[float] = []
        self.got: list[ts.Event] = []

    def run(self, chunk: list[Tuple]) -> None:
        write = self.space.write
        g0 = GC.seconds
        c0 = cpu()
        t0 = now()
        for t in chunk:
            write(t)
        t1 = now()
        gc_s = GC.seconds - g0
        dt = t1 - t0 - gc_s
        self.write_s += dt
        self.chunk_s.append(dt)
        self.chunk_cpu.append(cpu() - c0 - gc_s)
        if self.sub is not None:
            drain(self.sub, self.got)
            self.drain_s += now() - t1

    def check(self, n: int, hot: list[Tuple]) -> None:
        """The numbers measured real work: every tuple stored, every event delivered."""
        space, sub, got = self.space, self.sub, self.got
        if len(space) != n:
            raise AssertionError(f"{self.name}: {len(space)} tuples stored, {n} written")
        if sub is not None:
            if [ev.tuple for ev in got] != hot:
                raise AssertionError(f"sub1: got {len(got)} events, expected the {len(hot)} hot writes")
            if any(ev.kind != "write" for ev in got):
                raise AssertionError("sub1: an event that is not a write")
            if any(a.seq >= b.seq for a, b in itertools.pairwise(got)):
                raise AssertionError("sub1: sequence numbers not increasing")
            st = sub.statistics()
            if st["overflows"] or st["pending"] or st["delivered"] != len(hot):
                raise AssertionError(f"sub1: {st}")
        for s in self.idle:
            st = s.statistics()
            if st["pending"] or st["delivered"] or st["overflows"]:
                raise AssertionError(f"idle subscription received events: {st}")
        if space.statistics()["subscribers"] != (sub is not None) + len(self.idle):
            raise AssertionError(f"{self.name}: subscriptions lost")
        space.close()


def write_round(
    r: int, chunks: list[list[Tuple]], hot: list[Tuple]
) -> tuple[dict[str, WriteArm], float, int]:
    """One round: the three arms on fresh spaces, alternating chunk by chunk.
    Returns the arms, the collector's seconds and its full collections."""
    arms = {name: WriteArm(name) for name in WRITE_ARMS}
    gc.collect()
    g0, f0 = GC.seconds, GC.full
    for i, chunk in enumerate(chunks):
        for name in rotated(WRITE_ARMS, r + i):
            arms[name].run(chunk)
    gc_s, full = GC.seconds - g0, GC.full - f0
    n = sum(map(len, chunks))
    for arm in arms.values():
        arm.check(n, hot)
    return arms, gc_s, full


def chunk_ratios(arm: list[float], base: list[float]) -> list[float]:
    """The ratios of the chunks run back to back, chunk by chunk."""
    return [x / y for x, y in zip(arm, base, strict=True)]


def bench_writes(res: dict[str, Any]) -> None:
    chunks, hot = make_writes(N_WRITES)
    per_write: dict[str, list[float]] = {a: [] for a in WRITE_ARMS}  # every chunk, s/write
    sub_chunks: list[float] = []
    idle_chunks: list[float] = []
    sub_cpu: list[float] = []
    idle_cpu: list[float] = []
    sub_ratio, idle_ratio, sub_total_ratio, drains = [], [], [], []
    gc_share, gc_full, sub_gc_ratio, idle_gc_ratio = [], 0, [], []
    for r in range(ROUNDS):
        arms, gc_s, full = write_round(r, chunks, hot)
        base, sub, idle = arms["none"], arms["sub1"], arms["idle"]
        for name, arm in arms.items():
            per_write[name] += [t / len(c) for t, c in zip(arm.chunk_s, chunks, strict=True)]
        sub_chunks += chunk_ratios(sub.chunk_s, base.chunk_s)
        idle_chunks += chunk_ratios(idle.chunk_s, base.chunk_s)
        sub_cpu += chunk_ratios(sub.chunk_cpu, base.chunk_cpu)
        idle_cpu += chunk_ratios(idle.chunk_cpu, base.chunk_cpu)
        sub_ratio.append(sub.write_s / base.write_s)
        idle_ratio.append(idle.write_s / base.write_s)
        sub_total_ratio.append((sub.write_s + sub.drain_s) / base.write_s)
        drains.append(sub.drain_s / len(sub.got))
        gc_share.append(gc_s / (gc_s + sum(a.write_s for a in arms.values())))
        gc_full += full
        # The arms hold the same live objects and allocate alike, so an even split
        # of the collector's time estimates what each would pay in real use.
        g = gc_s / len(arms)
        sub_gc_ratio.append((sub.write_s + g) / (base.write_s + g))
        idle_gc_ratio.append((idle.write_s + g) / (base.write_s + g))
        del arms, base, sub, idle
    gc.collect()
    res["writes_n"] = N_WRITES
    res["writes_hot_share"] = round(len(hot) / N_WRITES, 4)
    res["writes_chunk"] = CHUNK
    res["writes_chunk_pairs"] = len(sub_chunks)
    res["none_write_ns"] = round(median(per_write["none"]) * 1e9, 1)
    res["sub1_write_ns"] = round(median(per_write["sub1"]) * 1e9, 1)
    res["sub1_overhead"] = round(median(sub_chunks), 3)
    res["sub1_overhead_cpu"] = round(median(sub_cpu), 3)
    res["sub1_overhead_sum"] = round(median(sub_ratio), 3)
    res["sub1_overhead_rounds"] = [round(x, 3) for x in sub_ratio]
    res["sub1_overhead_gc_even"] = round(median(sub_gc_ratio), 3)
    res["sub1_overhead_incl_drain"] = round(median(sub_total_ratio), 3)
    res["sub1_events"] = len(hot)
    res["sub1_drain_ns_per_event"] = round(median(drains) * 1e9, 1)
    res["idle_subs"] = N_IDLE_SUBS
    res["idle_write_ns"] = round(median(per_write["idle"]) * 1e9, 1)
    res["idle_overhead"] = round(median(idle_chunks), 3)
    res["idle_overhead_cpu"] = round(median(idle_cpu), 3)
    res["idle_overhead_sum"] = round(median(idle_ratio), 3)
    res["idle_overhead_rounds"] = [round(x, 3) for x in idle_ratio]
    res["idle_overhead_gc_even"] = round(median(idle_gc_ratio), 3)
    res["writes_gc_share"] = round(median(gc_share), 3)
    res["writes_full_gcs"] = gc_full


# -- 2. transactions ----------------------------------------------------------------

TXN_ARMS = ["plain", "txn", "txn_nolease"]
JOB = ("job", int, str)


class TxnArm:
    """One arm of the transaction benchmark: a space holding the jobs, and its time."""

    def __init__(self, name: str, n: int) -> None:
        self.name = name
        self.space = ts.Space()
        self.space.write_many([("job", i, "payload-string") for i in range(n)])
        self.seconds = 0.0
        self.chunk_s: list[float] = []
        self.chunk_cpu: list[float] = []
        self.chunk_n: list[int] = []

    def run(self, pairs: int) -> None:
        space = self.space
        g0 = GC.seconds
        c0 = cpu()
        if self.name == "plain":
            take, write = space.take, space.write
            t0 = now()
            for _ in range(pairs):
                job = take(JOB)
                write(("result", job[1], "done"))
            dt = now() - t0
        else:
            lease = None if self.name == "txn_nolease" else 60.0
            transaction = space.transaction
            t0 = now()
            for _ in range(pairs):
                with transaction(lease) as tx:
                    job = tx.take(JOB)
                    tx.write(("result", job[1], "done"))
            dt = now() - t0
        gc_s = GC.seconds - g0
        dt -= gc_s
        self.seconds += dt
        self.chunk_s.append(dt)
        self.chunk_cpu.append(cpu() - c0 - gc_s)
        self.chunk_n.append(pairs)

    def check(self, n: int) -> None:
        """No job left, exactly one result per job, every transaction committed."""
        space = self.space
        if space.count(JOB):
            raise AssertionError(f"{self.name}: jobs left behind")
        results = space.read_all(("result", int, "done"))
        if len(results) != n or sorted(t[1] for t in results) != list(range(n)):
            raise AssertionError(f"{self.name}: {len(results)} results for {n} jobs")
        st = space.statistics()
        if st["transactions"] or st["aborts"] or st["commits"] != (0 if self.name == "plain" else n):
            raise AssertionError(f"{self.name}: {st}")
        space.close()


def txn_round(r: int, n: int) -> tuple[dict[str, TxnArm], float]:
    """One round: the arms on fresh spaces, alternating every TXN_CHUNK pairs.
    Returns the arms and the collector's seconds."""
    arms = {name: TxnArm(name, n) for name in TXN_ARMS}
    gc.collect()
    g0 = GC.seconds
    done, i = 0, 0
    while done < n:
        pairs = min(TXN_CHUNK, n - done)
        for name in rotated(TXN_ARMS, r + i):
            arms[name].run(pairs)
        done += pairs
        i += 1
    gc_s = GC.seconds - g0
    for arm in arms.values():
        arm.check(n)
    return arms, gc_s


def bench_txn(res: dict[str, Any]) -> None:
    per_pair: dict[str, list[float]] = {a: [] for a in TXN_ARMS}  # every chunk, s/pair
    txn_chunks: list[float] = []
    nolease_chunks: list[float] = []
    txn_cpu: list[float] = []
    ratios, nolease_ratios, gc_share = [], [], []
    for r in range(ROUNDS):
        arms, gc_s = txn_round(r, N_TXN)
        plain, txn, nolease = arms["plain"], arms["txn"], arms["txn_nolease"]
        for name, arm in arms.items():
            per_pair[name] += [t / n for t, n in zip(arm.chunk_s, arm.chunk_n, strict=True)]
        txn_chunks += chunk_ratios(txn.chunk_s, plain.chunk_s)
        nolease_chunks += chunk_ratios(nolease.chunk_s, plain.chunk_s)
        txn_cpu += chunk_ratios(txn.chunk_cpu, plain.chunk_cpu)
        ratios.append(txn.seconds / plain.seconds)
        nolease_ratios.append(nolease.seconds / plain.seconds)
        gc_share.append(gc_s / (gc_s + sum(a.seconds for a in arms.values())))
        del arms, plain, txn, nolease
    gc.collect()
    res["txn_n"] = N_TXN
    res["txn_chunk"] = TXN_CHUNK
    res["txn_chunk_pairs"] = len(txn_chunks)
    res["plain_pair_us"] = round(median(per_pair["plain"]) * 1e6, 3)
    res["txn_pair_us"] = round(median(per_pair["txn"]) * 1e6, 3)
    res["txn_overhead"] = round(median(txn_chunks), 3)
    res["txn_overhead_cpu"] = round(median(txn_cpu), 3)
    res["txn_overhead_sum"] = round(median(ratios), 3)
    res["txn_overhead_rounds"] = [round(x, 3) for x in ratios]
    res["txn_nolease_pair_us"] = round(median(per_pair["txn_nolease"]) * 1e6, 3)
    res["txn_nolease_overhead"] = round(median(nolease_chunks), 3)
    res["txn_nolease_overhead_sum"] = round(median(nolease_ratios), 3)
    res["txn_gc_share"] = round(median(gc_share), 3)


# -- 3. for information ----------------------------------------------------------------


def events_run(n: int) -> tuple[float, float, int]:
    """(events/s delivered, writes/s of the producer, overflows of the feed)."""
    space = ts.Space(event_retention=max(10_000, n))
    sub = space.subscribe(("ev", int), events={"write"})
    done: list[float] = []
    errors: list[BaseException] = []

    def consumer() -> None:
        try:
            expected = 0
            for ev in sub:
                if ev.tuple != ("ev", expected) or ev.kind != "write":
                    raise AssertionError(f"event {ev!r}, expected ('ev', {expected})")
                expected += 1
                if expected == n:
                    done.append(now())
                    return
            raise AssertionError(f"the subscription ended after {expected} events")
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    th = threading.Thread(target=consumer)
    th.start()
    write = space.write
    gc.collect()
    t0 = now()
    for i in range(n):
        write(("ev", i))
    t1 = now()
    th.join(60)
    if th.is_alive():
        sub.close()
        th.join()
        raise AssertionError("the consumer did not get every event in 60 s")
    if errors:
        raise errors[0]
    overflows = sub.statistics()["overflows"]
    space.close()
    return n / (done[0] - t0), n / (t1 - t0), overflows


def bench_events(res: dict[str, Any]) -> None:
    rates, prod, over = [], [], []
    for _ in range(INFO_ROUNDS):
        e, p, o = events_run(N_EVENTS)
        rates.append(e)
        prod.append(p)
        over.append(o)
    res["events_n"] = N_EVENTS
    res["events_delivered_s"] = round(median(rates), 1)
    res["events_producer_writes_s"] = round(median(prod), 1)
    res["events_overflows"] = int(median(over))


def replace_run(n: int) -> float:
    space = ts.Space()
    space.write(("counter", 0))
    replace = space.replace
    tmpl = ("counter", int)

    def bump(t: Tuple) -> Tuple:
        return ("counter", t[1] + 1)

    gc.collect()
    t0 = now()
    for _ in range(n):
        replace(tmpl, bump)
    dt = now() - t0
    if space.read_all(tmpl) != [("counter", n)]:
        raise AssertionError(f"counter is {space.read_all(tmpl)}, expected {n}")
    space.close()
    return n / dt


def bench_replace(res: dict[str, Any]) -> None:
    res["replace_n"] = N_REPLACE
    res["replace_ops_s"] = round(median(replace_run(N_REPLACE) for _ in range(INFO_ROUNDS)), 1)


def wia_run(n: int) -> float:
    space = ts.Space()
    wia, ANY = space.write_if_absent, ts.ANY
    gc.collect()
    wrote = 0
    t0 = now()
    for i in range(n):
        k = i >> 1
        wrote += wia(("key", k, ANY), ("key", k, "owner"))
    dt = now() - t0
    if wrote != (n + 1) // 2 or len(space) != wrote:
        raise AssertionError(f"write_if_absent wrote {wrote} of {n}, {len(space)} stored")
    space.close()
    return n / dt


def bench_wia(res: dict[str, Any]) -> None:
    res["wia_n"] = N_WIA
    res["wia_ops_s"] = round(median(wia_run(N_WIA) for _ in range(INFO_ROUNDS)), 1)


BENCHES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("writes", bench_writes),
    ("txn", bench_txn),
    ("events", bench_events),
    ("replace", bench_replace),
    ("wia", bench_wia),
]


def main() -> None:
    res = header("pytuplespace-coordination", rounds=ROUNDS, info_rounds=INFO_ROUNDS)
    gc.callbacks.append(GC)

    def targets(res: dict[str, Any]) -> dict[str, Any]:
        return {
            name: {"value": res[name], "target": target, "pass": res[name] <= target}
            for name, target in TARGETS.items()
            if name in res
        }

    run(res, [(name, lambda fn=fn: fn(res)) for name, fn in BENCHES], log, targets)


if __name__ == "__main__":
    main()
