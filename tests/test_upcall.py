"""Upcalls (``rec.on_change(fn)``): a function called for every change of a record, off
the writer's path, on every face of a record handle — over every way of running a space
(the conformance kit's ``space`` fixture: embedded, remote, in Redis; sync, and async
through the kit's adapter) and, awaiting a coroutine function, over the asyncio ways
(``make_async_space``)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, wait_until


def test_the_function_gets_every_change_in_order(space: Any) -> None:
    rec = space.create("kitchen", {"temp": 20.0})
    got: list[ts.Change] = []
    upcall = rec.on_change(got.append)
    for t in (21.0, 22.0, 23.0):
        rec.set("temp", t)
    wait_until(lambda: len(got) == 3, "three upcalls")
    assert [(c.kind, c.tag, c.value) for c in got] == [("update", "temp", t) for t in (21.0, 22.0, 23.0)]
    assert upcall.statistics() == {"calls": 3, "errors": 0, "lost": 0}
    upcall.cancel()
    assert not upcall.active
    rec.set("temp", 24.0)
    assert len(got) == 3


def test_a_slow_function_never_holds_up_a_writer(space: Any) -> None:
    rec = space.create("kitchen", {"n": 0})
    release = threading.Event()
    got: list[Any] = []

    def slow(change: ts.Change) -> None:
        release.wait(PATIENCE)
        got.append(change.value)

    upcall = rec.on_change(slow)
    for n in range(1, 51):
        rec.set("n", n)  # every set returns while the function is stuck on its first change
    assert rec.get("n") == 50
    assert got == []
    release.set()
    wait_until(lambda: len(got) == 50, "fifty upcalls")
    assert got == list(range(1, 51))
    upcall.cancel()


def test_an_exception_of_the_function_is_logged_and_the_upcall_goes_on(
    space: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rec = space.create("kitchen", {"n": 0})
    got: list[Any] = []

    def picky(change: ts.Change) -> None:
        if change.value == 1:
            raise RuntimeError("one is odd")
        got.append(change.value)

    with caplog.at_level(logging.ERROR, logger="tuplespace"):
        upcall = rec.on_change(picky)
        rec.set("n", 1)
        rec.set("n", 2)
        wait_until(lambda: got == [2], "the second upcall")
    assert upcall.statistics()["errors"] == 1
    assert "one is odd" in caplog.text
    upcall.cancel()


def test_the_upcall_ends_with_its_record(space: Any) -> None:
    rec = space.create("kitchen", {"n": 0})
    got: list[str] = []
    upcall = rec.on_change(lambda change: got.append(change.kind))
    rec.destroy()
    wait_until(lambda: not upcall.active, "the end of the upcall")
    assert got == ["destroy"]


def test_a_function_may_cancel_its_own_upcall(space: Any) -> None:
    rec = space.create("kitchen", {"n": 0})
    got: list[Any] = []
    box: list[Any] = []

    def once(change: ts.Change) -> None:
        got.append(change.value)
        box[0].cancel()

    box.append(rec.on_change(once))
    rec.set("n", 1)
    wait_until(lambda: not box[0].active, "the end of the upcall")
    rec.set("n", 2)
    assert got == [1]


def test_the_root_record_is_watched_for_every_record(space: Any) -> None:
    root = space.record("$")
    got: list[tuple[str, str]] = []
    upcall = root.on_change(lambda change: got.append((change.kind, change.path)))
    a = space.create("a", {"n": 1})
    space.create("a/b", {"n": 2})
    a.set("n", 3)
    wait_until(lambda: len(got) == 3, "three changes under the root")
    assert got == [("create", "a"), ("create", "a/b"), ("update", "a")]
    upcall.cancel()


def test_what_on_change_cannot_call_is_a_type_error() -> None:
    rec = ts.Space().create("kitchen", {"n": 0})
    with pytest.raises(TypeError, match="on_change takes a function"):
        rec.on_change(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_lost must be a function"):
        rec.on_change(print, on_lost="no")  # type: ignore[arg-type]


def test_a_function_that_falls_behind_gets_on_lost_and_goes_on() -> None:
    space = ts.Space(event_retention=10)
    rec = space.create("kitchen", {"n": 0})
    release = threading.Event()
    got: list[Any] = []
    lost: list[ts.EventsLost] = []

    def slow(change: ts.Change) -> None:
        release.wait(PATIENCE)
        got.append(change.value)

    upcall = rec.on_change(slow, on_lost=lost.append, max_pending=5)
    for n in range(1, 101):
        rec.set("n", n)
    release.set()
    wait_until(lambda: got and got[-1] == 100, "the last change")
    assert len(lost) == 1
    assert upcall.statistics()["lost"] == 1
    assert lost[0].first_missing < lost[0].oldest_available
    assert got == sorted(got)
    assert len(got) < 100
    upcall.cancel()


# -- async faces ------------------------------------------------------------------------------


def test_an_async_upcall_awaits_a_coroutine_function(make_async_space: Callable[..., Any]) -> None:
    async def main(space: Any) -> None:
        rec = await space.create("kitchen", {"n": 0})
        got: list[Any] = []

        async def record(change: ts.Change) -> None:
            await asyncio.sleep(0)
            got.append(change.value)

        upcall = await rec.on_change(record)
        for n in (1, 2, 3):
            await rec.set("n", n)
        async with asyncio.timeout(PATIENCE):
            while len(got) < 3:
                await asyncio.sleep(0.001)
        assert got == [1, 2, 3]
        assert upcall.active
        await upcall.cancel()
        assert not upcall.active
        await rec.set("n", 4)
        await asyncio.sleep(0.05)
        assert got == [1, 2, 3]

    adapter = make_async_space()
    adapter.run(main(adapter.aspace))
