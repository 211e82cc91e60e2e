"""Fixtures shared by the test suite.

The contract tests describe what a space does once, against the ``space`` fixture,
which runs them over every way of running a space listed in :data:`WAYS`.  A new
way (an SQLite store, a remote space over HTTP, Redis) is one factory: a context
manager that takes the options of :class:`tuplespace.Space` and yields an object
with the synchronous methods of :class:`tuplespace.Space`, registered in ``WAYS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

import tuplespace as ts
from helpers import PATIENCE

T = TypeVar("T")


class SyncOverAsync:
    """An :class:`tuplespace.AsyncSpace` seen through the method names of
    :class:`tuplespace.Space`: each call runs the coroutine on an event loop in a
    background thread and waits for its result, so a blocking call really waits
    as a coroutine on that loop."""

    def __init__(self, aspace: ts.AsyncSpace) -> None:
        self.aspace = aspace
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="space-loop", daemon=True)
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def write(self, t: Any, lease: float | None = None) -> ts.Lease:
        return self._run(self.aspace.write(t, lease))

    def write_many(self, tuples: Any, lease: float | None = None) -> list[ts.Lease]:
        return self._run(self.aspace.write_many(tuples, lease))

    def read(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.aspace.read(template, timeout))

    def take(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.aspace.take(template, timeout))

    def try_read(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.aspace.try_read(template))

    def try_take(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.aspace.try_take(template))

    def read_all(self, template: Any, limit: int | None = None) -> list[tuple[Any, ...]]:
        return self._run(self.aspace.read_all(template, limit))

    def take_all(self, template: Any, limit: int | None = None) -> list[tuple[Any, ...]]:
        return self._run(self.aspace.take_all(template, limit))

    def count(self, template: Any) -> int:
        return self._run(self.aspace.count(template))

    def statistics(self) -> dict[str, Any]:
        return self.aspace.statistics()

    def close(self) -> None:
        self._run(self.aspace.close())

    def shutdown(self) -> None:
        """Close the space, then stop the loop once every task on it has finished."""

        async def finish() -> None:
            await self.aspace.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self._run(finish())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(PATIENCE)
            if not self._thread.is_alive():
                self.loop.close()


@contextlib.contextmanager
def memory_space(**options: Any) -> Iterator[ts.Space]:
    space = ts.connect("memory:", **options)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def memory_async_space(**options: Any) -> Iterator[SyncOverAsync]:
    adapter = SyncOverAsync(ts.AsyncSpace(**options))
    try:
        yield adapter
    finally:
        adapter.shutdown()


@contextlib.contextmanager
def sqlite_space(**options: Any) -> Iterator[ts.Space]:
    """A durable space in a new SQLite file (a real file, in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="tuplespace-") as directory:
        space = ts.connect(f"sqlite://{directory}/spaces.db?space=test", **options)
        try:
            yield space
        finally:
            space.close()


@dataclass(frozen=True)
class Way:
    """A way of running a space: ``open(**options)`` is a context manager yielding a space.

    ``embedded`` ways run in this process, so templates may hold Python predicates
    and formals may be any subclass of a wire type.
    """

    name: str
    open: Callable[..., contextlib.AbstractContextManager[Any]]
    embedded: bool


WAYS: list[Way] = [
    Way("memory", memory_space, embedded=True),
    Way("memory-async", memory_async_space, embedded=True),
    Way("sqlite", sqlite_space, embedded=True),
]


@contextlib.contextmanager
def _maker(way: Way) -> Iterator[Callable[..., Any]]:
    with contextlib.ExitStack() as stack:

        def make(**options: Any) -> Any:
            return stack.enter_context(way.open(**options))

        yield make


@pytest.fixture(params=WAYS, ids=lambda w: w.name)
def way(request: pytest.FixtureRequest) -> Way:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[w for w in WAYS if w.embedded], ids=lambda w: w.name)
def embedded_way(request: pytest.FixtureRequest) -> Way:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_space(way: Way) -> Iterator[Callable[..., Any]]:
    """``make_space(**options)``: a new space of this way (closed after the test)."""
    with _maker(way) as make:
        yield make


@pytest.fixture
def space(make_space: Callable[..., Any]) -> Any:
    """A new space with default options, over every way of running one."""
    return make_space()


@pytest.fixture
def embedded_space(embedded_way: Way) -> Iterator[Any]:
    """A new space over every way that runs in this process."""
    with _maker(embedded_way) as make:
        yield make()


@pytest.fixture
def clock() -> ts.SimulatedClock:
    return ts.SimulatedClock()


@pytest.fixture
def sim_space(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> Any:
    """A space over every way, whose time is ``clock`` (a :class:`tuplespace.SimulatedClock`)."""
    return make_space(clock=clock)
