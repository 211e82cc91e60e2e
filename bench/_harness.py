"""What every benchmark script shares: the workloads to skip, logging, and running
the selected workloads into one JSON line on stdout."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import tuplespace as ts

SKIP = {s.strip() for s in os.environ.get("SKIP", "").split(",") if s.strip()}
now = time.perf_counter


def logger(name: str) -> Callable[[str], None]:
    def log(msg: str) -> None:
        print(f"[{name}] {msg}", file=sys.stderr, flush=True)

    return log


def header(impl: str, **extra: Any) -> dict[str, Any]:
    """The first fields of a result line: what was measured, with what."""
    return {
        "impl": impl,
        "python": platform.python_version(),
        "tuplespace": ts.__version__,
        "tuplespace_src": os.path.dirname(os.path.dirname(os.path.abspath(ts.__file__))),
        **extra,
    }


def run(
    res: dict[str, Any],
    workloads: Iterable[tuple[str, Callable[[], None]]],
    log: Callable[[str], None],
    targets: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Run the workloads not in SKIP, then print ``res`` (with targets and time) as JSON."""
    start = now()
    for name, fn in workloads:
        if name in SKIP:
            continue
        t0 = now()
        fn()
        log(f"{name} done in {now() - t0:.1f} s")
    if targets is not None:
        res["targets"] = targets(res)
    res["elapsed_s"] = round(now() - start, 1)
    print(json.dumps(res), flush=True)
