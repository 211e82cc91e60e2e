"""Run the embedded benchmark and the peers it is compared with, side by side.

One pass runs, in this order:

1. ``ruby rinda_local.rb`` from the shared peers folder, with ``TAKE_BUDGET_S=8``
   (unless set) so Rinda's slow String-head take phase stops after 8 s;
2. ``bench_embedded.py`` (this interpreter), whose bulk and ping-pong workloads
   come first, so they run within seconds of Rinda's;
3. ``py_reference.py`` from the peers folder (this interpreter).

``REPEATS`` passes (default 1) run round-robin.  Every JSON line is printed on
stdout as it arrives, then a markdown table of the targets (medians over the
passes; ratios are taken within each pass, then the median), then the medians
of every metric.  Progress and the children's stderr go to stderr.  The same
output is also saved as ``bench/out/latest.jsonl`` and ``bench/out/latest.md``.

    .venv/bin/python bench/run_all.py
    REPEATS=3 .venv/bin/python bench/run_all.py
    .venv/bin/python bench/run_all.py --rev HEAD    # the committed code, not the work tree

Env: REPEATS (1), PEERS_DIR (default: ``../shared/peers`` beside the repository),
TAKE_BUDGET_S (8), RUBY (ruby); the sizes of ``bench_embedded.py`` pass through.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT.parent / "shared" / "peers"))
REPEATS = int(os.environ.get("REPEATS", 1))
RUBY = os.environ.get("RUBY", "ruby")
OUT_DIR = BENCH_DIR / "out"

EMBEDDED = "pytuplespace-embedded"
RINDA = "rinda-local"
PYREF = "python-reference"

Runs = list[dict[str, dict[str, Any]]]  # one {impl: record} per pass


def log(msg: str) -> None:
    print(f"[run_all] {msg}", file=sys.stderr, flush=True)


def commands(src: Path | None) -> list[tuple[str, list[str], dict[str, str]]]:
    env = dict(os.environ)
    emb_env = env
    if src is not None:  # put the exported source first on the path
        emb_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)}
    cmds: list[tuple[str, list[str], dict[str, str]]] = []
    rinda = PEERS_DIR / "rinda_local.rb"
    if not rinda.exists():
        log(f"no {rinda}: the Rinda comparison is skipped")
    elif shutil.which(RUBY) is None:
        log(f"{RUBY} is not installed (apt-get install -y ruby): the Rinda comparison is skipped")
    else:
        cmds.append((RINDA, [RUBY, str(rinda)], {**env, "TAKE_BUDGET_S": env.get("TAKE_BUDGET_S", "8")}))
    cmds.append((EMBEDDED, [sys.executable, str(BENCH_DIR / "bench_embedded.py")], emb_env))
    ref = PEERS_DIR / "py_reference.py"
    if ref.exists():
        cmds.append((PYREF, [sys.executable, str(ref)], env))
    else:
        log(f"no {ref}: the separate queue.Queue reference is skipped")
    return cmds


def run_one(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"{' '.join(cmd)} printed no JSON line")
    rec: dict[str, Any] = json.loads(lines[-1])
    log(f"{rec.get('impl')}: {time.perf_counter() - t0:.1f} s")
    return rec


# -- the targets ---------------------------------------------------------------------------


M = dict[str, dict[str, Any]]  # {impl: record}: one pass, or the medians of all passes


@dataclass
class Row:
    name: Callable[[M], str]
    measured: Callable[[M], str]
    reference: Callable[[M], str]
    value: Callable[[M], float]  # computed per pass; the median of the passes is judged
    goal: str
    ok: Callable[[float], bool] | None  # None: for information, no target
    unit: str = "x"


def num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def e(m: M, key: str) -> Any:
    return m[EMBEDDED][key]


def rinda_lookup(m: M) -> str:
    """Rinda's read rate with the most tuples stored that it measured."""
    sizes = [int(k[len("lookup_m") : -len("_reads_s")]) for k in m[RINDA] if k.endswith("_reads_s")]
    size = max(s for s in sizes)
    return f"Rinda, {num(m[RINDA][f'lookup_m{size}_reads_s'])} reads/s at {size:,} stored"


ROWS = [
    Row(
        lambda m: f'Lookup `("item", k, ANY)`, {e(m, "lookup_m_large"):,} stored',
        lambda m: f"{num(e(m, 'lookup_large_reads_s'))} reads/s",
        rinda_lookup,
        lambda r: e(r, "lookup_large_reads_s"),
        ">= 100,000 reads/s",
        lambda v: v >= 100_000,
        " reads/s",
    ),
    Row(
        lambda m: f"Lookup slowdown, {e(m, 'lookup_m_large'):,} vs {e(m, 'lookup_m_small'):,} stored",
        lambda m: f"{num(e(m, 'lookup_large_reads_s'))} reads/s",
        lambda m: f"{num(e(m, 'lookup_small_reads_s'))} reads/s with {e(m, 'lookup_m_small'):,} stored",
        lambda r: e(r, "lookup_slowdown"),
        "<= 1.5x slower",
        lambda v: v <= 1.5,
    ),
    Row(
        lambda m: f'Write `("job", i, "payload-string")`, N={e(m, "bulk_n"):,}, vs Rinda Symbol head',
        lambda m: f"{num(e(m, 'bulk_write_ops_s'))} ops/s",
        lambda m: f"Rinda `:job`, {num(m[RINDA]['bulk_sym_write_ops_s'])} ops/s",
        lambda r: e(r, "bulk_write_ops_s") / r[RINDA]["bulk_sym_write_ops_s"],
        ">= 2x",
        lambda v: v >= 2,
    ),
    Row(
        lambda m: f'Take `("job", int, str)`, N={e(m, "bulk_n"):,}, vs Rinda Symbol head',
        lambda m: f"{num(e(m, 'bulk_take_ops_s'))} ops/s",
        lambda m: f"Rinda `:job`, {num(m[RINDA]['bulk_sym_take_ops_s'])} ops/s",
        lambda r: e(r, "bulk_take_ops_s") / r[RINDA]["bulk_sym_take_ops_s"],
        ">= 2x",
        lambda v: v >= 2,
    ),
    Row(
        lambda m: f"Write, N={e(m, 'bulk_n'):,}, vs Rinda String head (the tuple as the issue writes it)",
        lambda m: f"{num(e(m, 'bulk_write_ops_s'))} ops/s",
        lambda m: f'Rinda `"job"`, {num(m[RINDA]["bulk_write_ops_s"])} ops/s',
        lambda r: e(r, "bulk_write_ops_s") / r[RINDA]["bulk_write_ops_s"],
        "-",
        None,
    ),
    Row(
        lambda m: (
            f"Take, N={e(m, 'bulk_n'):,}, vs Rinda String head (its take phase capped by TAKE_BUDGET_S)"
        ),
        lambda m: f"{num(e(m, 'bulk_take_ops_s'))} ops/s",
        lambda m: (
            f'Rinda `"job"`, {num(m[RINDA]["bulk_take_ops_s"])} ops/s'
            f" ({m[RINDA]['bulk_takes_done']:,.0f} of {m[RINDA]['bulk_n']:,} takes done)"
        ),
        lambda r: e(r, "bulk_take_ops_s") / r[RINDA]["bulk_take_ops_s"],
        "-",
        None,
    ),
    Row(
        lambda m: f"Ping-pong, 2 threads, {e(m, 'pingpong_n'):,} round trips, vs `queue.Queue`",
        lambda m: f"{num(e(m, 'pingpong_rt_s'))} rt/s ({num(e(m, 'pingpong_mean_us'))} µs)",
        lambda m: (
            f"queue.Queue in the same process, {num(e(m, 'queue_pingpong_rt_s'))} rt/s"
            f" ({num(e(m, 'queue_pingpong_mean_us'))} µs)"
        ),
        lambda r: e(r, "pingpong_vs_queue"),
        ">= 0.8x",
        lambda v: v >= 0.8,
    ),
    Row(
        lambda m: f"Ping-pong, {e(m, 'pingpong_n'):,} round trips, vs Rinda (2 threads)",
        lambda m: f"{num(e(m, 'pingpong_rt_s'))} rt/s",
        lambda m: f"Rinda, {num(m[RINDA]['pingpong_rt_s'])} rt/s",
        lambda r: e(r, "pingpong_rt_s") / r[RINDA]["pingpong_rt_s"],
        "-",
        None,
    ),
    Row(
        lambda m: f"Write that wakes 1 of {e(m, 'wake_n_waiters'):,} blocked async takers, vs no waiters",
        lambda m: f"{num(e(m, 'wake_write_ns'))} ns/write",
        lambda m: f"{num(e(m, 'plain_write_ns'))} ns/write into a space with no waiters",
        lambda r: e(r, "wake_vs_plain"),
        "<= 2x",
        lambda v: v <= 2,
    ),
    Row(
        lambda m: f'Memory per stored tuple, {e(m, "mem_n"):,} `("job", i, "payload-string")`',
        lambda m: f"{num(e(m, 'mem_bytes_per_tuple'))} B",
        lambda m: (
            f"of which the bare tuple + int {num(e(m, 'mem_bare_tuple_bytes'))} B,"
            f" the engine {num(e(m, 'mem_engine_bytes_per_tuple'))} B"
        ),
        lambda r: e(r, "mem_bytes_per_tuple"),
        "<= 400 B",
        lambda v: v <= 400,
        " B",
    ),
]


def targets_table(runs: Runs) -> tuple[str, list[str]]:
    impls = {impl for r in runs for impl in r}
    medians = {impl: medians_of(runs, impl) for impl in impls}
    out = [
        "| workload | measured | reference, same run | value (min - max) | goal | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    misses = []
    for row in ROWS:
        try:
            name = row.name(medians)
        except KeyError:
            continue  # the workload was skipped (SKIP=...)
        try:
            values = [row.value(r) for r in runs]
            measured, reference = row.measured(medians), row.reference(medians)
        except (KeyError, ValueError):
            out.append(f"| {name} | - | peer not run | - | {row.goal} | n/a |")
            continue
        v = statistics.median(values)
        if row.ok is None:
            verdict = "info"
        elif row.ok(v):
            verdict = "**PASS**"
        else:
            verdict = "**MISS**"
            misses.append(name)
        value = num(v) + row.unit
        if len(values) > 1:
            value += f" ({num(min(values))} - {num(max(values))})"
        out.append(f"| {name} | {measured} | {reference} | {value} | {row.goal} | {verdict} |")
    return "\n".join(out), misses


def medians_of(runs: Runs, impl: str) -> dict[str, Any]:
    vals: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        for k, v in r.get(impl, {}).items():
            vals[k].append(v)
    return {
        k: statistics.median(v)
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        else v[0]
        for k, v in vals.items()
    }


def metrics_table(runs: Runs) -> str:
    out = ["| impl | metric | median | min - max | runs |", "|---|---|---:|---:|---:|"]
    order = []
    for r in runs:
        order.extend(i for i in r if i not in order)
    for impl in order:
        vals: dict[str, list[float]] = defaultdict(list)
        for r in runs:
            for k, v in r.get(impl, {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    vals[k].append(v)
        for k, v in vals.items():
            m = statistics.median(v)
            out.append(f"| {impl} | {k} | {num(m)} | {num(min(v))} - {num(max(v))} | {len(v)} |")
    return "\n".join(out)


def machine(source: str) -> dict[str, str]:
    info = {
        "nproc": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }
    try:
        info["ruby"] = subprocess.run([RUBY, "-v"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["ruby"] = "not installed"
    info["measured source"] = source
    return info


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def describe_worktree() -> str:
    try:
        rev = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--", "src").strip()
    except (OSError, subprocess.CalledProcessError):
        return "src/ of the work tree"
    return f"src/ of the work tree at {rev}" + (", with uncommitted changes" if dirty else "")


def export_rev(rev: str, into: Path) -> str:
    """Extract src/ of commit ``rev`` into ``into``; return the commit's short id."""
    short = git("rev-parse", "--short", rev + "^{commit}").strip()
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", short, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rev",
        help="measure src/ of this commit (extracted to a temporary folder) instead of the work tree",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuplespace-bench-") as tmp:
        if args.rev:
            short = export_rev(args.rev, Path(tmp))
            source = f"src/ of commit {short} (`--rev {args.rev}`)"
            run_passes(commands(Path(tmp) / "src"), source)
        else:
            run_passes(commands(None), describe_worktree())


SIZE_VARS = [
    "REPEATS",
    "N_BULK",
    "M_SMALL",
    "M_LARGE",
    "N_READS",
    "N_PINGPONG",
    "N_WAITERS",
    "N_MEM",
    "ROUNDS",
    "WAKE_ROUNDS",
    "SEED",
    "SKIP",
    "TAKE_BUDGET_S",
    "M_LIST",
    "READ_BUDGET_S",
    "PEERS_DIR",
    "RUBY",
]


def command_line() -> str:
    env = " ".join(f"{k}={os.environ[k]}" for k in SIZE_VARS if k in os.environ)
    args = " ".join(sys.argv[1:])
    return f"`{env + ' ' if env else ''}python bench/run_all.py{' ' + args if args else ''}`"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run_passes(cmds: list[tuple[str, list[str], dict[str, str]]], source: str) -> None:
    load_before = load()
    runs: Runs = []
    lines = []
    for p in range(1, REPEATS + 1):
        record: dict[str, dict[str, Any]] = {}
        for impl, cmd, env in cmds:
            log(f"[pass {p}/{REPEATS}] {' '.join(Path(c).name if '/' in c else c for c in cmd)}")
            rec = run_one(cmd, env)
            line = json.dumps(rec)
            print(line, flush=True)
            lines.append(line)
            record[rec.get("impl", impl)] = rec
        runs.append(record)
    info = {"command": command_line(), **machine(source)}
    info["load average (1/5/15 min) before / after"] = f"{load_before} / {load()}"
    table, misses = targets_table(runs)
    report = [
        "",
        f"## Targets ({REPEATS} pass{'es' if REPEATS != 1 else ''}; medians)",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        table,
        "",
        "Misses: " + (", ".join(misses) if misses else "none"),
        "",
        "## All metrics (medians)",
        "",
        metrics_table(runs),
    ]
    text = "\n".join(report)
    print(text, flush=True)
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "latest.jsonl").write_text("\n".join(lines) + "\n")
    (OUT_DIR / "latest.md").write_text(text.lstrip() + "\n")


if __name__ == "__main__":
    main()
