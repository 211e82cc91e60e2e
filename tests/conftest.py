"""Fixtures shared by the test suite.

The contract tests describe what a space does once, against the ``space`` fixture,
which runs them over every way of running a space listed in :data:`WAYS`.  A new
way (an SQLite store, a remote space over HTTP, Redis) is one factory: a context
manager that takes the options of :class:`tuplespace.Space` and yields an object
with the synchronous methods of :class:`tuplespace.Space` (its subscriptions and
transactions included), registered in ``WAYS``.
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
from tuplespace._events import EVENT_KINDS

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

    def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> ts.Lease:
        return self._run(self.aspace.write(t, lease, timeout))

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

    def replace(
        self, template: Any, successor: Any, lease: float | None = None, timeout: float | None = None
    ) -> tuple[Any, ...]:
        return self._run(self.aspace.replace(template, successor, lease, timeout))

    def write_if_absent(self, template: Any, t: Any, lease: float | None = None) -> bool:
        return self._run(self.aspace.write_if_absent(template, t, lease))

    def subscribe(
        self,
        template: Any,
        events: Any = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
    ) -> SyncSubscription:
        async def subscribe() -> ts.AsyncSubscription:
            return self.aspace.subscribe(template, events, since=since, max_pending=max_pending, lease=lease)

        return SyncSubscription(self, self._run(subscribe()))

    def transaction(self, lease: float | None = 60.0) -> SyncTransaction:
        async def begin() -> ts.AsyncTransaction:
            return self.aspace.transaction(lease)

        return SyncTransaction(self, self._run(begin()))

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


class SyncSubscription:
    """An :class:`tuplespace.AsyncSubscription` seen through the names of
    :class:`tuplespace.Subscription`; its coroutines run on the adapter's loop."""

    def __init__(self, adapter: SyncOverAsync, subscription: ts.AsyncSubscription) -> None:
        self._adapter = adapter
        self.subscription = subscription

    @property
    def last_seq(self) -> int:
        return self.subscription.last_seq

    @property
    def closed(self) -> bool:
        return self.subscription.closed

    def get(self, timeout: float | None = None) -> ts.Event | None:
        return self._adapter._run(self.subscription.get(timeout))

    def __iter__(self) -> SyncSubscription:
        return self

    def __next__(self) -> ts.Event:
        async def anext() -> ts.Event:
            return await self.subscription.__anext__()

        try:
            return self._adapter._run(anext())
        except StopAsyncIteration:
            raise StopIteration from None

    def renew(self, lease: float | None) -> None:
        self._adapter._run(self.subscription.renew(lease))

    def close(self) -> None:
        self._adapter._run(self.subscription.close())

    def statistics(self) -> dict[str, Any]:
        return self.subscription.statistics()

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._adapter._run(self.subscription.__aexit__(*exc_info))


class SyncTransaction:
    """An :class:`tuplespace.AsyncTransaction` seen through the names of
    :class:`tuplespace.Transaction`; its coroutines run on the adapter's loop."""

    def __init__(self, adapter: SyncOverAsync, transaction: ts.AsyncTransaction) -> None:
        self._run = adapter._run
        self.transaction = transaction

    @property
    def state(self) -> str:
        return self.transaction.state

    @property
    def expires_at(self) -> float | None:
        return self.transaction.expires_at

    def write(self, t: Any, lease: float | None = None) -> None:
        self._run(self.transaction.write(t, lease))

    def write_many(self, tuples: Any, lease: float | None = None) -> None:
        self._run(self.transaction.write_many(tuples, lease))

    def read(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.transaction.read(template, timeout))

    def take(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.transaction.take(template, timeout))

    def try_read(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.transaction.try_read(template))

    def try_take(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.transaction.try_take(template))

    def read_all(self, template: Any, limit: int | None = None) -> list[tuple[Any, ...]]:
        return self._run(self.transaction.read_all(template, limit))

    def take_all(self, template: Any, limit: int | None = None) -> list[tuple[Any, ...]]:
        return self._run(self.transaction.take_all(template, limit))

    def count(self, template: Any) -> int:
        return self._run(self.transaction.count(template))

    def commit(self) -> None:
        self._run(self.transaction.commit())

    def abort(self) -> None:
        self._run(self.transaction.abort())

    def renew(self, lease: float | None) -> None:
        self._run(self.transaction.renew(lease))

    def __enter__(self) -> SyncTransaction:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._run(self.transaction.__aexit__(*exc_info))


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


@pytest.fixture(params=[w for w in WAYS if w.name in {"memory", "sqlite"}], ids=lambda w: w.name)
def thread_way(request: pytest.FixtureRequest) -> Way:
    """The ways whose spaces are :class:`tuplespace.Space` objects in this process
    (what workers and cleaners run on)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_thread_space(thread_way: Way) -> Iterator[Callable[..., ts.Space]]:
    """``make_thread_space(**options)``: a new :class:`tuplespace.Space` of this way."""
    with _maker(thread_way) as make:
        yield make


@pytest.fixture
def clock() -> ts.SimulatedClock:
    return ts.SimulatedClock()


@pytest.fixture
def sim_space(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> Any:
    """A space over every way, whose time is ``clock`` (a :class:`tuplespace.SimulatedClock`)."""
    return make_space(clock=clock)
