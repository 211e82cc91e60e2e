"""Fixtures shared by the test suite.

The contract tests describe what a space does once, against the ``space`` fixture,
which runs them over every way of running a space listed in :data:`WAYS`.  A new
way (an SQLite store, a remote space over HTTP, Redis) is one factory: a context
manager that takes the options of :class:`tuplespace.Space` and yields an object
with the synchronous methods of :class:`tuplespace.Space` (its subscriptions and
transactions included), registered in ``WAYS``.

The remote ways run against one real server for the whole session (uvicorn on
127.0.0.1, in a thread, memory store), each space a new one on it.  Some things
cannot travel to a server: a :class:`tuplespace.SimulatedClock`, Python functions
(a ``Pred``, a function successor of ``replace``), options of :class:`tuplespace.Space`
that the HTTP API does not carry.  A test that uses one of them (read from its code,
see :func:`needs_embedding`) runs over the embedded ways only, as does a test marked
``@pytest.mark.embedded("why")``.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import tempfile
import textwrap
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

import tuplespace as ts
from helpers import PATIENCE, RedisClusterServers, RedisServer
from tuplespace._events import EVENT_KINDS
from tuplespace._federation._linda import CoapSpace
from tuplespace.client import (
    AsyncLease,
    AsyncRemoteRecord,
    AsyncRemoteRecordWatch,
    AsyncRemoteSpace,
    RemoteSpace,
)
from tuplespace.server import Server, create_app
from tuplespace.stores import AsyncRedisSpace, RedisSpace

T = TypeVar("T")


class SyncOverAsync:
    """An :class:`tuplespace.AsyncSpace` seen through the method names of
    :class:`tuplespace.Space`: each call runs the coroutine on an event loop in a
    background thread and waits for its result, so a blocking call really waits
    as a coroutine on that loop.

    A remote space (:class:`tuplespace.client.AsyncRemoteSpace`) does I/O where the
    embedded one needs none: its statistics are awaited, its subscriptions and
    transactions open when awaited, and its leases (:class:`AsyncLease`) are seen as
    :class:`tuplespace.Lease`.
    """

    def __init__(self, aspace: Any = None) -> None:
        self.aspace = aspace
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="space-loop", daemon=True)
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _lease(self, lease: ts.Lease | AsyncLease) -> ts.Lease:
        if isinstance(lease, AsyncLease):
            return ts.Lease(_AsyncLeaseHost(self, lease), lease.seq, lease.expires_at)
        return lease

    def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> ts.Lease:
        return self._lease(self._run(self.aspace.write(t, lease, timeout)))

    def write_many(self, tuples: Any, lease: float | None = None) -> list[ts.Lease]:
        return [self._lease(x) for x in self._run(self.aspace.write_many(tuples, lease))]

    def read(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.aspace.read(template, timeout))

    def take(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.aspace.take(template, timeout))

    def try_read(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.aspace.try_read(template))

    def try_take(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.aspace.try_take(template))

    def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self._run(self.aspace.read_all(template, limit, timeout))

    def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self._run(self.aspace.take_all(template, limit, timeout))

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
        existing: bool = False,
    ) -> SyncSubscription:
        async def subscribe() -> Any:
            return await _opened(
                self.aspace.subscribe(
                    template,
                    events,
                    since=since,
                    max_pending=max_pending,
                    lease=lease,
                    **({} if existing is False else {"existing": existing}),
                )
            )

        return SyncSubscription(self, self._run(subscribe()))

    def transaction(self, lease: float | None = 60.0) -> SyncTransaction:
        async def begin() -> Any:
            return await _opened(self.aspace.transaction(lease))

        return SyncTransaction(self, self._run(begin()))

    # -- records: AsyncRecord handles, seen as tuplespace.Record ---------------------------

    def create(
        self, path: str, fields: Any, credit: Any = None, lease: float | None = None, **kw: Any
    ) -> Any:
        return self._wrap(self._run(self.aspace.create(path, fields, credit, lease, **kw)))

    def record(self, ref: Any) -> Any:
        return self._wrap(self._run(self.aspace.record(ref)))

    def find(self, template: Any, under: str | None = None, limit: int | None = None) -> list[Any]:
        found: list[Any] = self._wrap(self._run(self.aspace.find(template, under, limit)))
        return found

    def try_take_record(self, template: Any, under: str | None = None) -> Any:
        return self._run(self.aspace.try_take_record(template, under))

    def take_record(self, template: Any, under: str | None = None, timeout: float | None = None) -> Any:
        return self._run(self.aspace.take_record(template, under, timeout))

    def watch_records(self, under: str | None = None, **kw: Any) -> Any:
        return self._wrap(self._run(_opened(self.aspace.watch_records(under, **kw))))

    def grant_credit(self, principal: str, amount: Any) -> ts.Credit:
        return self._run(self.aspace.grant_credit(principal, amount))

    def account(self, principal: str) -> ts.Credit:
        return self._run(self.aspace.account(principal))

    def _wrap(self, result: Any) -> Any:
        if isinstance(result, (ts.AsyncRecord, AsyncRemoteRecord)):
            return SyncRecord(self, result)
        if isinstance(result, (ts.AsyncRecordWatch, AsyncRemoteRecordWatch)):
            return SyncRecordWatch(self, result)
        if isinstance(result, list):
            return [self._wrap(x) for x in result]
        return result

    def statistics(self) -> dict[str, Any]:
        stats = self.aspace.statistics()
        if inspect.isawaitable(stats):
            return self._run(_awaited(stats))
        return stats  # type: ignore[no-any-return]

    def close(self) -> None:
        self._run(self.aspace.close())

    def shutdown(self) -> None:
        """Close the space, then stop the loop once every task on it has finished."""

        async def finish() -> None:
            if self.aspace is not None:
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


async def _opened(handle: Any) -> Any:
    """A subscription or transaction, opened if it opens when awaited (a remote one)."""
    return await handle if inspect.isawaitable(handle) else handle


async def _awaited(result: Awaitable[T]) -> T:
    return await result


class _AsyncLeaseHost:
    """Renews and cancels an :class:`AsyncLease` for a :class:`tuplespace.Lease`."""

    def __init__(self, adapter: SyncOverAsync, lease: AsyncLease) -> None:
        self._adapter = adapter
        self._lease = lease

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        self._adapter._run(self._lease.renew(seconds))
        return self._lease.expires_at

    def _cancel(self, seq: int) -> None:
        self._adapter._run(self._lease.cancel())


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


class SyncRecord:
    """An :class:`tuplespace.AsyncRecord` (or a remote one) seen through the names of
    :class:`tuplespace.Record`: each awaited method runs on the adapter's loop (a watch
    is opened there); its properties are read as they are."""

    def __init__(self, adapter: SyncOverAsync, record: ts.AsyncRecord | AsyncRemoteRecord) -> None:
        self._adapter = adapter
        self.record = record

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.record, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if inspect.isawaitable(result):
                result = self._adapter._run(_awaited(result))
            return self._adapter._wrap(result)

        return call

    def __tuplespace_uri__(self) -> ts.URI:
        """Where a value goes, the adapter is the handle it wraps."""
        return self.record.__tuplespace_uri__()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SyncRecord) and other.record == self.record

    def __hash__(self) -> int:
        return hash(self.record)


class SyncRecordWatch:
    """An :class:`tuplespace.AsyncRecordWatch` (or a remote one) seen through the names of
    :class:`tuplespace.RecordWatch`."""

    def __init__(self, adapter: SyncOverAsync, watch: ts.AsyncRecordWatch | AsyncRemoteRecordWatch) -> None:
        self._run = adapter._run
        self.watch = watch

    @property
    def last_seq(self) -> int:
        return self.watch.last_seq

    @property
    def closed(self) -> bool:
        return self.watch.closed

    def get(self, timeout: float | None = None) -> ts.Change | None:
        return self._run(self.watch.get(timeout))

    def __iter__(self) -> Iterator[ts.Change]:
        return self

    def __next__(self) -> ts.Change:
        change = self.get()
        if change is None:
            raise StopIteration
        return change

    def renew(self, lease: float | None) -> None:
        self._run(self.watch.renew(lease))

    def close(self) -> None:
        self._run(self.watch.close())

    def statistics(self) -> dict[str, Any]:
        return self.watch.statistics()

    def __enter__(self) -> SyncRecordWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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

    def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self._run(self.transaction.read_all(template, limit, timeout))

    def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self._run(self.transaction.take_all(template, limit, timeout))

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


# -- remote spaces: one server per session ---------------------------------------------------


class LiveServer:
    """A real server (:func:`tuplespace.server.create_app`, ``create_app`` options) on
    127.0.0.1 and a free port, run in a thread; ``url`` is its base URL.  ``uvicorn``:
    settings of the uvicorn server (``{"http": "httptools"}``: HTTP alone, no channel)."""

    def __init__(self, uvicorn: dict[str, Any] | None = None, **options: Any) -> None:
        self.options = options
        self._server = Server(create_app(**options), port=0, timeout_keep_alive=60, **(uvicorn or {}))
        self._thread = self._server.start_in_thread()
        self.url = self._server.url
        self.port = self._server.port

    def space_url(self, name: str | None = None) -> str:
        """The URL of a space; a new name each call unless ``name`` is given."""
        return f"{self.url}/spaces/{name or 'test-' + uuid.uuid4().hex[:16]}"

    def delete(self, url: str) -> None:
        """Delete the space of ``url`` (an admin call: the test servers check no tokens)."""
        response = httpx.delete(url, timeout=PATIENCE)
        assert response.status_code in (204, 404), response.text

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(PATIENCE)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def http_server() -> Iterator[LiveServer]:
    """The server the remote ways use, shared by the whole session."""
    with LiveServer(store="memory") as server:
        yield server


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """``serve(**options)``: a server of its own for a test (``create_app`` options),
    stopped after it."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> LiveServer:
            return stack.enter_context(LiveServer(**options))

        yield start


# The options of :class:`tuplespace.Space` a server keeps for a space (PUT /spaces/{space}).
REMOTE_OPTIONS = frozenset(
    {"order", "capacity", "event_retention", "event_retention_bytes", "charge_rate", "creation_charge"}
)


def _remote_options(way: str, options: dict[str, Any]) -> dict[str, Any]:
    other = sorted(set(options) - REMOTE_OPTIONS)
    if other:
        raise TypeError(
            f"the {way} way cannot take the option(s) {', '.join(other)}: a test that needs "
            "them must run over the embedded ways (see needs_embedding in conftest.py)"
        )
    return {"store": "memory", **options}


@contextlib.contextmanager
def http_space(server: LiveServer, **options: Any) -> Iterator[RemoteSpace]:
    """A new space on ``server``, through :class:`tuplespace.client.RemoteSpace` (its
    requests on the server's channel)."""
    with _remote_space(server, "http", options) as space:
        yield space


@contextlib.contextmanager
def http_plain_space(server: LiveServer, **options: Any) -> Iterator[RemoteSpace]:
    """A new space on ``server``, through a :class:`tuplespace.client.RemoteSpace` that
    sends every request over HTTP."""
    with _remote_space(server, "http-plain", options, channel=False) as space:
        yield space


@contextlib.contextmanager
def _remote_space(server: LiveServer, way: str, options: dict[str, Any], **own: Any) -> Iterator[RemoteSpace]:
    url = server.space_url()
    space = ts.connect(url, **_remote_options(way, options), **own)
    assert isinstance(space, RemoteSpace)
    try:
        yield space
    finally:
        space.close()
        server.delete(url)


@contextlib.contextmanager
def http_async_space(server: LiveServer, **options: Any) -> Iterator[SyncOverAsync]:
    """A new space on ``server``, through :class:`tuplespace.client.AsyncRemoteSpace`
    on an event loop of its own."""
    url = server.space_url()
    adapter = SyncOverAsync()
    try:
        adapter.aspace = adapter._run(ts.connect_async(url, **_remote_options("http-async", options)))
        assert isinstance(adapter.aspace, AsyncRemoteSpace)
        yield adapter
    finally:
        adapter.shutdown()
        server.delete(url)


@pytest.fixture(scope="session")
def in_process_app() -> Any:
    """The server application the in-process way calls, shared by the whole session."""
    return create_app(store="memory")


@contextlib.contextmanager
def in_process_space(app: Any, **options: Any) -> Iterator[RemoteSpace]:
    """A new space of ``app``, through a :class:`tuplespace.client.RemoteSpace` that calls
    the application in this process, without sockets (``app=``)."""
    space = ts.connect(
        f"http://localhost/spaces/test-{uuid.uuid4().hex[:16]}",
        app=app,
        **_remote_options("in-process", options),
    )
    assert isinstance(space, RemoteSpace)
    try:
        yield space
    finally:
        space.close()


# -- spaces kept in Redis: one redis-server per session ------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The redis-server the Redis ways use, shared by the whole session."""
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """The Redis Cluster (3 masters, 3 replicas) the redis-cluster way uses, shared by the session."""
    cluster = RedisClusterServers(str(tmp_path_factory.mktemp("redis-cluster")))
    try:
        yield cluster
    finally:
        cluster.stop()


# The options of :class:`tuplespace.Space` a space kept in Redis has.
REDIS_OPTIONS = frozenset(
    {"order", "capacity", "event_retention", "event_retention_bytes", "max_subscribers"}
)


def _redis_options(way: str, options: dict[str, Any]) -> dict[str, Any]:
    other = sorted(set(options) - REDIS_OPTIONS)
    if other:
        raise TypeError(f"the {way} way cannot take the option(s) {', '.join(other)}")
    return options


@contextlib.contextmanager
def redis_space(server: RedisServer, **options: Any) -> Iterator[RedisSpace]:
    """A new space in the session's Redis, through :class:`tuplespace.stores.RedisSpace`."""
    space = ts.connect(server.space_url(), **_redis_options("redis", options))
    assert isinstance(space, RedisSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def redis_cluster_space(cluster: RedisClusterServers, **options: Any) -> Iterator[RedisSpace]:
    """A new space in the session's Redis Cluster, through :class:`tuplespace.stores.RedisSpace`."""
    space = ts.connect(cluster.space_url(), **_redis_options("redis-cluster", options))
    assert isinstance(space, RedisSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def redis_async_space(server: RedisServer | RedisClusterServers, **options: Any) -> Iterator[SyncOverAsync]:
    """A new space in the session's Redis (or Redis Cluster), through
    :class:`tuplespace.stores.AsyncRedisSpace` on an event loop of its own."""
    adapter = SyncOverAsync()
    try:
        adapter.aspace = adapter._run(
            ts.connect_async(server.space_url(), **_redis_options("redis-async", options))
        )
        assert isinstance(adapter.aspace, AsyncRedisSpace)
        yield adapter
    finally:
        adapter.shutdown()


# -- a node's space over CoAP ------------------------------------------------------------------


@pytest.fixture
def coap_node() -> Iterator[ts.Node]:
    """A node on 127.0.0.1 whose spaces the coap way reaches, one for each test."""
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE) as node:
        yield node


@contextlib.contextmanager
def coap_space(node: ts.Node, **options: Any) -> Iterator[CoapSpace]:
    """A new space of ``node`` (with the options of :class:`tuplespace.Space`), through
    ``ts.connect("coap://…")``."""
    name = "test-" + uuid.uuid4().hex[:16]
    node.space(name, **options)
    space = ts.connect(f"{node.base_uri}spaces/{name}", timeout=PATIENCE)
    assert isinstance(space, CoapSpace)
    try:
        yield space
    finally:
        space.close()


# What a space over CoAP does not do yet (docs/federation.md): a test that uses a method of
# ts.Space that CoapSpace lacks (read_all, write_many, statistics, subscribe, records, ...),
# or one of the names below, runs without the coap way.
COAP_LACKS = {
    name: f"{name}, which a space over CoAP does not have yet"
    for name in dir(ts.Space)
    if not name.startswith("_") and not hasattr(CoapSpace, name)
}
COAP_LACKS.update(
    wait_for_waiters="the count of waiting calls (statistics)",
    renew="the lease a write returns (a write over CoAP returns None)",
    cancel="the lease a write returns (a write over CoAP returns None)",
)


def coap_limit(function: Callable[..., Any]) -> str | None:
    """Why the coap way does not run the test ``function`` (None: it does)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        name = _name(node) if isinstance(node, (ast.Attribute, ast.Name)) else None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value  # a method named in a parametrize list, called by getattr
        if name in COAP_LACKS:
            return COAP_LACKS[name]
    return None


# -- the ways ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Way:
    """A way of running a space: ``open(**options)`` is a context manager yielding a space.

    ``embedded`` ways run in this process, so templates may hold Python predicates
    and formals may be any subclass of a wire type, and every option of
    :class:`tuplespace.Space` applies.  A way that needs a fixture (a server) names it
    in ``needs``; ``open`` then takes it first.
    """

    name: str
    open: Callable[..., contextlib.AbstractContextManager[Any]]
    embedded: bool
    needs: str | None = None


WAYS: list[Way] = [
    Way("memory", memory_space, embedded=True),
    Way("memory-async", memory_async_space, embedded=True),
    Way("sqlite", sqlite_space, embedded=True),
    Way("http", http_space, embedded=False, needs="http_server"),
    Way("http-plain", http_plain_space, embedded=False, needs="http_server"),
    Way("http-async", http_async_space, embedded=False, needs="http_server"),
    Way("in-process", in_process_space, embedded=False, needs="in_process_app"),
    Way("redis", redis_space, embedded=False, needs="redis_server"),
    Way("redis-async", redis_async_space, embedded=False, needs="redis_server"),
    Way("coap", coap_space, embedded=False, needs="coap_node"),
    Way("redis-cluster", redis_cluster_space, embedded=False, needs="redis_cluster"),
    Way("redis-cluster-async", redis_async_space, embedded=False, needs="redis_cluster"),
]
REDIS_WAYS = frozenset({"redis", "redis-async", "redis-cluster", "redis-cluster-async"})


# Tests that look, at once, at what a server shows only a moment later; each can run over
# the remote ways when the HTTP API gives a way to wait for it.
REMOTE_LIMITS = {
    "test_a_subscription_is_a_context_manager": "the count of subscriptions just after one ended",
    "test_close_ends_an_iteration_in_another_thread": "the count of subscriptions just after one ended",
    "test_a_subscription_lease_ends_a_waiting_iteration_with_nobody_calling": (
        "the count of subscriptions just after one ended"
    ),
    "test_an_exception_in_the_block_aborts_and_puts_everything_back_in_place": (
        "the count of commits after plain takes (the server counts their claims)"
    ),
}


# What a space kept in Redis does not do yet (docs/scaling.md): the tests of a module, or
# one test by its name, that the Redis ways skip, and why.
REDIS_LIMITS_BY_MODULE = {
    "test_transactions": "transactions",
    "test_records": "records",
    "test_credit": "credit, which records pay",
}
REDIS_LIMITS = {
    "test_a_take_in_a_transaction_frees_room_and_an_abort_returns_even_into_a_full_space": "transactions",
    "test_a_waiting_take_all_is_served_in_arrival_order_with_other_takers": (
        "a waiting take_all waits as a read does, out of the takers' queue"
    ),
    "test_events_of_a_transaction_appear_at_commit_only": "transactions",
    "test_an_aborted_transaction_emits_no_event": "transactions",
    "test_a_tuple_handed_to_a_waiting_transaction_take_gives_its_take_event_at_commit": "transactions",
    "test_a_waiting_read_served_by_a_write_is_counted_as_a_read": "counts of reads and takes",
    "test_a_waiting_take_all_woken_by_a_write_many_takes_after_the_writes": (
        "a waiting take_all is woken by the first write of a batch, not once by the batch"
    ),
    "test_a_tuple_put_back_by_an_aborted_transaction_is_still_reported_present": "transactions",
}

# What the remote ways cannot show but the Redis ways can (see needs_embedding): a
# subscription to a space kept in Redis reads the log in Redis when asked, so an event is
# there as soon as the change that made it has returned, and it counts its
# subscriptions in the process.
REDIS_DOES = frozenset(
    {"an event expected at once, without waiting", "the count of subscriptions just after one ended"}
)


def redis_limit(module: str, function: Callable[..., Any]) -> str | None:
    """Why the Redis ways do not run the test ``function`` of ``module`` (None: they do)."""
    return REDIS_LIMITS_BY_MODULE.get(module) or REDIS_LIMITS.get(function.__name__)


def needs_embedding(function: Callable[..., Any], fixtures: Iterator[str] | list[str]) -> str | None:
    """Why a test can run only over the embedded ways (None if it can run over all):
    read from the fixtures it uses and from its code.

    - the ``clock`` or ``sim_space`` fixture: a :class:`tuplespace.SimulatedClock`;
    - ``make_space(...)`` with an option the server does not keep for a space;
    - ``subscribe(..., max_pending=...)`` (or a record watch's): a bound inside the
      embedded space's feed;
    - ``replace(template, successor)`` whose successor is not written out as a tuple
      or list (a function, or a value the test chooses at run time);
    - ``drain(sub)`` or ``sub.get(timeout=0)``: an event expected at once after the
      change that makes it, while a remote event travels on a connection of its own
      (a remote subscription offers no way to ask "anything up to now?");
    - a test listed in :data:`REMOTE_LIMITS`.
    """
    if function.__name__ in REMOTE_LIMITS:
        return REMOTE_LIMITS[function.__name__]
    fixtures = list(fixtures)
    for name in ("clock", "sim_space"):
        if name in fixtures:
            return "a SimulatedClock"
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = _name(node.func)
        if called == "make_space":
            for keyword in node.keywords:
                if keyword.arg is None or keyword.arg not in REMOTE_OPTIONS:
                    return f"the option {keyword.arg or '**'} of make_space"
        if called in ("subscribe", "watch", "watch_records") and any(
            k.arg == "max_pending" for k in node.keywords
        ):
            return "max_pending of a subscription or a watch"
        if called == "drain" or (called == "get" and any(_is_zero(k) for k in node.keywords)):
            return "an event expected at once, without waiting"
        successor = _successor(node)
        if successor is not None and not isinstance(successor, (ast.Tuple, ast.List)):
            return "a successor of replace that is not a tuple written out"
    return None


def _is_zero(keyword: ast.keyword) -> bool:
    return keyword.arg == "timeout" and isinstance(keyword.value, ast.Constant) and keyword.value.value == 0


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _successor(call: ast.Call) -> ast.expr | None:
    """The successor given to ``replace`` by ``call``: ``x.replace(t, s)``, or
    ``spawn(x.replace, t, s)`` and the like."""
    args = call.args
    if _name(call.func) == "replace" and isinstance(call.func, ast.Attribute):
        offset = 0
    elif args and isinstance(args[0], ast.Attribute) and args[0].attr == "replace":
        offset = 1
    else:
        return None
    for keyword in call.keywords:
        if keyword.arg == "successor":
            return keyword.value
    return args[offset + 1] if len(args) > offset + 1 else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded(reason): the test runs over the embedded ways only (what it needs does not "
        "travel to a server yet)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "way" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("embedded")
        if marker is not None:
            reason: str | None = marker.args[0] if marker.args else "marked embedded"
        else:
            reason = needs_embedding(metafunc.function, metafunc.fixturenames)
        ways = [
            w for w in WAYS if w.embedded or reason is None or (w.name in REDIS_WAYS and reason in REDIS_DOES)
        ]
        if redis_limit(metafunc.module.__name__, metafunc.function) is not None:
            ways = [w for w in ways if w.name not in REDIS_WAYS]
        if coap_limit(metafunc.function) is not None:
            ways = [w for w in ways if w.name != "coap"]
        metafunc.parametrize("way", ways, ids=[w.name for w in ways], indirect=True)


@contextlib.contextmanager
def _maker(way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    with contextlib.ExitStack() as stack:
        needed = () if way.needs is None else (request.getfixturevalue(way.needs),)

        def make(**options: Any) -> Any:
            return stack.enter_context(way.open(*needed, **options))

        yield make


@pytest.fixture
def way(request: pytest.FixtureRequest) -> Way:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[w for w in WAYS if w.embedded], ids=lambda w: w.name)
def embedded_way(request: pytest.FixtureRequest) -> Way:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_space(way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make_space(**options)``: a new space of this way (closed after the test)."""
    with _maker(way, request) as make:
        yield make


@pytest.fixture
def space(make_space: Callable[..., Any]) -> Any:
    """A new space with default options, over every way of running one."""
    return make_space()


@pytest.fixture
def embedded_space(embedded_way: Way, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new space over every way that runs in this process."""
    with _maker(embedded_way, request) as make:
        yield make()


@pytest.fixture(params=[w for w in WAYS if w.name in {"memory", "sqlite"}], ids=lambda w: w.name)
def thread_way(request: pytest.FixtureRequest) -> Way:
    """The ways whose spaces are :class:`tuplespace.Space` objects in this process
    (what workers and cleaners run on)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_thread_space(thread_way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., ts.Space]]:
    """``make_thread_space(**options)``: a new :class:`tuplespace.Space` of this way."""
    with _maker(thread_way, request) as make:
        yield make


@pytest.fixture
def clock() -> ts.SimulatedClock:
    return ts.SimulatedClock()


@pytest.fixture
def sim_space(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> Any:
    """A space over every way, whose time is ``clock`` (a :class:`tuplespace.SimulatedClock`)."""
    return make_space(clock=clock)
