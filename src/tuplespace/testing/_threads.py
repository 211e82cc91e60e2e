"""Coordinating threads in tests: start one, wait for a condition, without timings that
decide a result (a wait only bounds a hang)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["PATIENCE", "spawn", "wait_for_waiters", "wait_until"]

T = TypeVar("T")

# How long a test waits for something that must happen soon (a thread reaching its
# wait, a result arriving).  Generous: it only bounds a hang, it never decides a result.
PATIENCE = 30.0


def spawn(fn: Callable[..., T], *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
    """Run ``fn`` in a new daemon thread; its result or exception arrives in the future."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, daemon=True).start()
    return future


def wait_until(condition: Callable[[], object], what: str = "the condition") -> None:
    """Poll ``condition`` until it is true; fail if it stays false for PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def wait_for_waiters(space: Any, n: int) -> None:
    """Wait until exactly ``n`` calls are blocked in ``space``."""
    wait_until(lambda: space.statistics()["waiters"] == n, f"{n} waiting calls")
