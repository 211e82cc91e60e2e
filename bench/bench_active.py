"""Benchmarks of active tuples: the expression language, methods, and reactions.

Prints ONE JSON line with ``"impl": "pytuplespace-active"``.  Rounds alternate
which side of a comparison goes first, and medians are reported, because the
machines these run on are shared and noisy.

a) expressions: ``t[2] > 30.0`` over the tuple ``("reading", "kitchen", 31.5)``,
   N_EXPR times, with ``common-expression-language`` (Rust CEL, binding the tuple
   to ``t`` for each event, and once with the tuple bound once), ``cel-python``
   (pure Python CEL, N_EXPR // 50 times), the space's own compiler of CEL
   (``tuplespace._expr``) and a Python lambda; nanoseconds per evaluation.
b) methods: a Lua function of about 100 VM steps (a loop adding 1..50) called
   through lupa, the same function in Starlark (starlark-pyo3, with the
   cancellation check a time limit needs) and in Python, and ``rec.call`` of a method that
   runs that loop and sets a field (the whole path: sandbox, limits, the set).
   Also what each limit does to a runaway method: that it stops, and after how long.
c) reactions: ``space.write(("reading", "kitchen", 31.0))`` into a space with the
   rule ``hot`` (``when="t[2] > 30.0"``, one alarm written per reading) against the
   same write into a space without rules, in the same run, both spaces holding
   FILL tuples already; ``reaction_ratio`` is the median of the per-round ratios
   of time per write (goal: at most 3).  ``reaction_ratio_from_empty`` is the same
   with both spaces empty at the start: the cyclic garbage collector's full
   collections, which walk every stored tuple's entry, come at thresholds relative
   to all the objects of the process, so a round of N_WRITES into an empty space
   in a fresh process pays fewer of them per stored tuple than a space in use does
   (and the loop that stores two tuples per write crosses more thresholds).  Time
   here is the writing thread's CPU time (``time.thread_time``, which a shared
   machine's other work disturbs far less than the wall clock); the firings run on
   that thread, and so does the cyclic garbage collector, whose collections are
   part of what a write into a growing space costs.
d) 1,000 rules on distinct templates ``("job", i)``, each writing ``("done", i)``:
   writes of ``("job", k)`` for random k (each fires its one rule) per second, and
   writes of ``("other", k)`` (firing none) against a space without rules.
e) served: ``tuplespace serve --data-dir`` (a real server in a subprocess on
   127.0.0.1) hosting a durable space that holds the rule ``hot`` (added to the
   stored space while the server was stopped: rules are stored with the space).
   N_SERVED times, through ``ts.connect(url)``: write a reading over HTTP, then take
   its alarm with a blocking take over HTTP; the latency from the write's start to
   the take's return, p50 and p99.  The write returns once the reaction has run
   (it is part of the write's operation, in its commit), so this is two round trips;
   beside it, the same two round trips for a tuple no rule reacts to (write it,
   take it back), alternating.

Env overrides: N_EXPR (100000), N_WRITES (100000 per round), N_CALLS (20000),
RULES (1000), N_SERVED (2000), ROUNDS (3), SEED (12345), FILL (300000), SKIP (comma-separated
workloads to leave out: expr,methods,reactions,many,served).
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tuplespace as ts
from _harness import header, logger, now, run
from tuplespace._expr import compile_expr

N_EXPR = int(os.environ.get("N_EXPR", 100_000))
N_WRITES = int(os.environ.get("N_WRITES", 100_000))
N_CALLS = int(os.environ.get("N_CALLS", 20_000))
RULES = int(os.environ.get("RULES", 1000))
N_SERVED = int(os.environ.get("N_SERVED", 2000))
ROUNDS = int(os.environ.get("ROUNDS", 3))
SEED = int(os.environ.get("SEED", 12345))
FILL = int(os.environ.get("FILL", 300_000))

median = statistics.median
log = logger("bench_active")
READING = ("reading", "kitchen", 31.5)


def ns_per(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    t0 = now()
    for _ in range(n):
        fn()
    return round((now() - t0) / n * 1e9, 1)


# -- a) expressions ----------------------------------------------------------------------


def bench_expr(res: dict[str, Any]) -> None:
    import cel
    import celpy

    program = cel.compile("t[2] > 30.0")
    context = cel.Context()

    def rust_per_event() -> object:
        context.add_variable("t", READING)
        return program.execute(context)

    bound = cel.Context({"t": list(READING)})
    env = celpy.Environment()
    celpy_program = env.program(env.compile("t[2] > 30.0"))
    activation = {"t": celpy.json_to_cel(list(READING))}
    ours = compile_expr("t[2] > 30.0", "when")
    names = {"t": READING}

    def py(t: tuple[Any, ...]) -> bool:
        return bool(t[2] > 30.0)

    assert rust_per_event() is True
    assert bool(celpy_program.evaluate(activation))
    assert ours(names) is True
    res["expr_ns"] = {
        "cel_rust_per_event": ns_per(rust_per_event, N_EXPR),
        "cel_rust_bound_once": ns_per(lambda: program.execute(bound), N_EXPR),
        "cel_python": ns_per(lambda: celpy_program.evaluate(activation), max(N_EXPR // 50, 1)),
        "tuplespace_expr": ns_per(lambda: ours(names), N_EXPR),
        "python_lambda": ns_per(lambda: py(READING), N_EXPR),
    }
    # What the libraries do to the space's values on the way in (a reason to compile our own).
    lossy = {}
    for label, value in (("int_past_64_bits", 1 << 70), ("credit", ts.Credit("0.1"))):
        back = cel.compile("v").execute({"v": value})
        lossy[label] = f"{value!r} -> {back!r}"
    res["cel_rust_conversions"] = lossy


# -- b) methods ----------------------------------------------------------------------------

LOOP = "local s = 0 for i = 1, 50 do s = s + i end"


def bench_methods(res: dict[str, Any]) -> None:
    from lupa import lua54

    lua = lua54.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True)
    lua_fn = lua.eval(f"function() {LOOP} return s end")

    def py_fn() -> int:
        s = 0
        for i in range(1, 51):
            s += i
        return s

    import starlark

    module = starlark.Module()
    source = "def f():\n    s = 0\n    for i in range(1, 51):\n        s += i\n    return s\n"
    starlark.eval(module, starlark.parse("f.star", source), starlark.Globals.standard())
    frozen = module.freeze()
    options = starlark.EvalOptions(check_cancelled=lambda: False)  # what a time limit needs

    space = ts.Space()
    rec = space.create("m", {"n": 0, "run": ts.Method(f"function(self) {LOOP} self.n = s return s end")})
    assert lua_fn() == py_fn() == rec.call("run") == frozen.call_with(options, "f").value == 1275
    res["method_100_steps_ns"] = {
        "lupa_call": ns_per(lua_fn, N_CALLS),
        "starlark_pyo3_call": ns_per(lambda: frozen.call_with(options, "f"), N_CALLS),
        "python": ns_per(py_fn, N_CALLS),
        "rec_call": ns_per(lambda: rec.call("run"), N_CALLS),
    }
    stops = {}
    for limit, limits, source in (
        ("method_steps", ts.ActiveLimits(), "function(self) while true do end end"),
        ("method_ms", ts.ActiveLimits(method_steps=1 << 62), "function(self) while true do end end"),
        (
            "method_memory",
            ts.ActiveLimits(method_steps=1 << 62),
            "function(self) local t = {} for i = 1, 1e9 do t[i] = i end end",
        ),
    ):
        space.rules.limits = limits
        rec.set("runaway", ts.Method(source))
        t0 = now()
        try:
            rec.call("runaway")
            stopped = "not stopped"
        except ts.LimitReached as exc:
            stopped = exc.limit
        stops[limit] = {"stopped_by": stopped, "after_ms": round((now() - t0) * 1000, 1)}
    res["method_limits"] = stops


# -- c) reactions ----------------------------------------------------------------------------


def writes_round(with_rule: bool, n: int, fill: int) -> float:
    space = ts.Space()
    space.write_many([("fill", i) for i in range(fill)])
    if with_rule:
        space.rules.add(
            "hot",
            template=("reading", str, float),
            when="t[2] > 30.0",
            write=[(ts.Lit("alarm"), "t[1]", "t[2] - 30.0")],
        )
    write = space.write
    t = ("reading", "kitchen", 31.0)
    gc.collect()
    t0 = time.thread_time()
    for _ in range(n):
        write(t)
    elapsed = time.thread_time() - t0
    if with_rule:
        assert space.count(("alarm", str, float)) == n
    return elapsed / n


def bench_reactions(res: dict[str, Any]) -> None:
    for fill, suffix in ((FILL, ""), (0, "_from_empty")):
        plain, fired, ratios = [], [], []
        for r in range(ROUNDS):
            order = (False, True) if r % 2 == 0 else (True, False)
            got = {w: writes_round(w, N_WRITES, fill) for w in order}
            plain.append(got[False])
            fired.append(got[True])
            ratios.append(got[True] / got[False])
        res[f"write_plain_us{suffix}"] = round(median(plain) * 1e6, 3)
        res[f"write_firing_one_reaction_us{suffix}"] = round(median(fired) * 1e6, 3)
        res[f"reaction_ratio{suffix}"] = round(median(ratios), 2)
    res["reaction_fill"] = FILL


# -- d) many rules -----------------------------------------------------------------------------


def with_rules() -> ts.Space:
    space = ts.Space()
    for i in range(RULES):
        space.rules.add(f"job-{i}", template=("job", i), write=[(ts.Lit("done"), "t[1]")])
    return space


def timed_writes(space: ts.Space, kind: str, keys: list[int]) -> float:
    write = space.write
    gc.collect()
    t0 = now()
    for k in keys:
        write((kind, k))
    return now() - t0


def bench_many(res: dict[str, Any]) -> None:
    rng = random.Random(SEED)
    keys = [rng.randrange(RULES) for _ in range(N_WRITES)]
    t0 = now()
    with_rules()
    res["rules_added_per_s"] = round(RULES / (now() - t0))
    firing, none, bare = [], [], []
    for _ in range(ROUNDS):  # a fresh space for each measure: each holds N_WRITES tuples at most
        space = with_rules()
        firing.append(timed_writes(space, "job", keys))
        assert space.rules.statistics()["fired"] == N_WRITES
        none.append(timed_writes(with_rules(), "other", keys))
        bare.append(timed_writes(ts.Space(), "other", keys))
    res["many_rules"] = {
        "rules": RULES,
        "firings_per_s": round(N_WRITES / median(firing)),
        "writes_firing_nothing_per_s": round(N_WRITES / median(none)),
        "writes_without_rules_per_s": round(N_WRITES / median(bare)),
    }


# -- e) served ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def bench_served(res: dict[str, Any]) -> None:
    from bench_server import SPACE, Served, free_port

    with tempfile.TemporaryDirectory(prefix="tuplespace-bench-active-") as tmp:
        data = Path(tmp) / "data"

        def serve() -> Served:
            argv = [sys.executable, "-m", "tuplespace", "serve", "--port", str(free_port())]
            return Served([*argv, "--data-dir", str(data), "--log-level", "warning"], int(argv[-1]), tmp)

        server = serve()  # makes the durable space, then stops
        try:
            with ts.connect(server.url) as space:
                space.write(("made",))
        finally:
            server.stop()
        stored = ts.connect(f"sqlite://{data / 'spaces.db'}?space={SPACE}")
        stored.rules.add(
            "hot",
            template=("reading", str, float),
            when="t[2] > 30.0",
            write=[(ts.Lit("alarm"), "t[1]", "t[2] - 30.0")],
        )
        stored.close()
        server = serve()
        reacted, plain = [], []
        try:
            with ts.connect(server.url) as space:
                for i in range(N_SERVED + 100):  # the first 100 warm up, untimed
                    t0 = now()
                    space.write(("reading", "kitchen", 31.0))
                    assert space.take(("alarm", str, float), timeout=5) == ("alarm", "kitchen", 1.0)
                    t1 = now()
                    space.write(("plain", i))
                    assert space.take(("plain", int), timeout=5) == ("plain", i)
                    t2 = now()
                    if i >= 100:
                        reacted.append(t1 - t0)
                        plain.append(t2 - t1)
        finally:
            server.stop()

    def ms(values: list[float]) -> dict[str, float]:
        return {"p50": round(percentile(values, 50) * 1e3, 3), "p99": round(percentile(values, 99) * 1e3, 3)}

    res["served_ms"] = {
        "n": N_SERVED,
        "write_to_reaction_taken": ms(reacted),
        "write_and_take_no_rule": ms(plain),
    }


def targets(res: dict[str, Any]) -> dict[str, Any]:
    out = {}
    if "reaction_ratio" in res:
        out["reaction_ratio_at_most_3"] = res["reaction_ratio"] <= 3
    if "method_limits" in res:
        out["every_limit_stops"] = all(v["stopped_by"] == k for k, v in res["method_limits"].items())
    return out


def main() -> None:
    res = header("pytuplespace-active", rounds=ROUNDS, seed=SEED)
    run(
        res,
        [
            ("expr", lambda: bench_expr(res)),
            ("methods", lambda: bench_methods(res)),
            ("reactions", lambda: bench_reactions(res)),
            ("many", lambda: bench_many(res)),
            ("served", lambda: bench_served(res)),
        ],
        log,
        targets,
    )


if __name__ == "__main__":
    main()
