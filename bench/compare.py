"""Every benchmark of this folder on two commits in one run: the before and after of a change.

    .venv/bin/python bench/compare.py BEFORE              # commit BEFORE against the work tree
    .venv/bin/python bench/compare.py BEFORE AFTER        # two commits
    SCRIPTS=embedded,server ROUNDS=3 .venv/bin/python bench/compare.py HEAD~5

``src/`` of each commit is extracted into a temporary folder and put first on
``PYTHONPATH``; the scripts themselves are this work tree's, so both sides run the
same workloads.  Each script runs ROUNDS times per side, the sides alternating
(before, after, before, ...), so a machine that slows down in the middle of the run
slows both.  Every number a script prints is matched between the sides by its
name (the ``impl`` of its line, then the key, nested keys joined by dots) and shown
as the median of each side and the ratio after / before, with what is better:

- rates (``*_ops_s``, ``*_rt_s``, ``*_reads_s``, ... ``*_per_s``): higher;
- times and sizes (``*_s`` that is no rate, ``*_us*``, ``*_ns*``, ``*_ms*``, ``*_mb``,
  ``*_bytes*``, ``*_per_tuple``): lower;
- anything else (ratios already taken within one side, counts): shown, not judged,
  and left out when it is the same on both sides (a size or setting of a workload).

A judged figure is *level* when it is within TOLERANCE (default 0.05) of the before
figure, *better* or *worse* beyond it.  The references a script measures in the same
run (``queue.Queue``, redis-py, raw SQLite, Rinda) appear as their own ``impl`` lines:
their ratios show how much the machine itself moved between the sides.

Env: SCRIPTS (comma-separated names of ``bench_NAME.py``; default every script but
``hostile``, which holds sockets for minutes), ROUNDS (2), TOLERANCE (0.05),
SCRIPT_ROUNDS (passed to the scripts as their own ROUNDS); the scripts' sizes
(N_OPS, N_BULK, SKIP, ...) pass through.  Output: the table on stdout, every JSON
line in ``bench/out/compare.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from run_all import BENCH_DIR, OUT_DIR, describe_worktree, export_rev, log, num

ROUNDS = int(os.environ.get("ROUNDS", 2))
TOLERANCE = float(os.environ.get("TOLERANCE", 0.05))
DEFAULT_SCRIPTS = sorted(
    p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py") if p.stem != "bench_hostile"
)

HIGHER = re.compile(r"(^|_)(ops|rt|tuples|reads|writes|takes|finds|calls|delivered)_s$|_per_s$")
LOWER = re.compile(r"(^|_)(s|us|ns|ms|mb)(_|$)|_bytes|_per_tuple$")
SKIPPED = re.compile(r"(^|\.)(elapsed_s|rounds|repeats|settings\..*|targets\..*|.*_n)$")

Figures = dict[str, float]  # "impl: key" -> value


def figures(line: dict[str, Any]) -> Figures:
    """The numbers of one JSON line, by name."""
    impl = line.get("impl", "?")
    out: Figures = {}

    def walk(x: Any, path: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(x, (int, float)) and not isinstance(x, bool) and not SKIPPED.search(path):
            out[f"{impl}: {path}"] = float(x)

    walk(line, "")
    return out


def run_script(script: str, src: Path, sink: Any, side: str) -> Figures:
    path = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("ROUNDS", None)
    if "SCRIPT_ROUNDS" in os.environ:
        env["ROUNDS"] = os.environ["SCRIPT_ROUNDS"]
    t0 = time.perf_counter()
    cmd = [sys.executable, str(BENCH_DIR / f"bench_{script}.py")]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=1800, check=False)
    log(f"{script} ({side}): exit {proc.returncode} in {time.perf_counter() - t0:.1f} s")
    found: Figures = {}
    for text in proc.stdout.splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            sink.write(json.dumps({"script": script, "side": side, **line}) + "\n")
            found |= figures(line)
    return found


def verdict(name: str, before: float, after: float) -> tuple[str, str]:
    if before == 0:
        return ("-", "info")
    ratio = after / before
    key = name.split(": ", 1)[1].rsplit(".", 1)[-1]
    if HIGHER.search(key):
        good = ratio
    elif LOWER.search(key):
        good = 1 / ratio if ratio else float("inf")
    else:
        return (f"{ratio:.2f}", "info")
    if good >= 1 + TOLERANCE:
        return (f"{ratio:.2f}", "better")
    if good <= 1 - TOLERANCE:
        return (f"{ratio:.2f}", "**worse**")
    return (f"{ratio:.2f}", "level")


def spread(values: list[float]) -> str:
    med = num(statistics.median(values))
    return med if len(values) == 1 else f"{med} ({num(min(values))} - {num(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the commit measured first (any git revision)")
    parser.add_argument("after", nargs="?", help="the commit measured second (default: the work tree's src/)")
    args = parser.parse_args()
    chosen = os.environ.get("SCRIPTS", ",".join(DEFAULT_SCRIPTS))
    scripts = [s.strip() for s in chosen.split(",") if s.strip()]
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuplespace-compare-") as tmp:
        sides: dict[str, tuple[str, Path]] = {}
        short = export_rev(args.before, Path(tmp, "before"))
        sides["before"] = (short, Path(tmp, "before", "src"))
        if args.after:
            short = export_rev(args.after, Path(tmp, "after"))
            sides["after"] = (short, Path(tmp, "after", "src"))
        else:
            sides["after"] = (describe_worktree(), BENCH_DIR.parent / "src")
        runs: dict[str, dict[str, dict[str, list[float]]]] = {}
        with open(OUT_DIR / "compare.jsonl", "w") as sink:
            for script in scripts:
                by_side: dict[str, dict[str, list[float]]] = {side: defaultdict(list) for side in sides}
                for _ in range(ROUNDS):
                    for side, (_, src) in sides.items():
                        for name, value in run_script(script, src, sink, side).items():
                            by_side[side][name].append(value)
                runs[script] = by_side
    print(f"before: {sides['before'][0]}; after: {sides['after'][0]}; {ROUNDS} rounds each, alternating\n")
    print("| script | figure | before | after | after / before | |")
    print("|---|---|---:|---:|---:|---|")
    counts: dict[str, int] = defaultdict(int)
    for script, by_side in runs.items():
        for name, before in by_side["before"].items():
            after = by_side["after"].get(name)
            if not after:
                print(f"| {script} | {name} | {spread(before)} | - | - | not measured after |")
                continue
            ratio, word = verdict(name, statistics.median(before), statistics.median(after))
            if word == "info" and statistics.median(before) == statistics.median(after):
                continue  # a size or a setting of the workload, the same on both sides
            counts[word] += 1
            print(f"| {script} | {name} | {spread(before)} | {spread(after)} | {ratio} | {word} |")
        for name in by_side["after"].keys() - by_side["before"].keys():
            print(f"| {script} | {name} | - | {spread(by_side['after'][name])} | - | new |")
    print("\n" + ", ".join(f"{word.strip('*')}: {n}" for word, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
