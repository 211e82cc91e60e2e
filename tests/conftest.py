"""Fixtures shared by the test suite.

The contract tests (tuplespace/testing/contract.py, and the modules here that use the
``space`` fixture) run over every way of running a space: the ways of the conformance
kit's plugin (:mod:`tuplespace.testing`: memory, memory-async, sqlite, http, http-plain,
http-async, in-process, in-process-async) and those added here, with the ``pytest_tuplespace_ways`` hook:
spaces kept in a real redis-server (and a Redis Cluster), and a node's space over CoAP (sync and async,
and sync as an OSCORE peer of a node that serves no anonymous peer), each with what it does not do yet.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import json
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, RedisClusterServers, RedisServer
from tuplespace._federation._linda import AsyncCoapSpace, CoapSpace
from tuplespace.client import RemoteSpace
from tuplespace.stores import AsyncPartitionedRedisSpace, AsyncRedisSpace, PartitionedRedisSpace, RedisSpace
from tuplespace.testing import BUILTIN_WAYS, LiveServer, SyncOverAsync, Way


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """``serve(**options)``: a server of its own for a test (``create_app`` options),
    stopped after it."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> LiveServer:
            return stack.enter_context(LiveServer(**options))

        yield start


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
    {
        "order",
        "capacity",
        "event_retention",
        "event_retention_bytes",
        "max_subscribers",
        "charge_rate",
        "creation_charge",
        "operator",
        "firing_charge",
        "step_charge",
        "redirect_charge",
    }
)


# The spaces of the Redis ways without partitions may follow a SimulatedClock too (see
# RedisSpace.follow).
CLOCK_REDIS_OPTIONS = REDIS_OPTIONS | {"clock"}


def _redis_options(
    way: str, options: dict[str, Any], known: frozenset[str] = REDIS_OPTIONS
) -> dict[str, Any]:
    other = sorted(set(options) - known)
    if other:
        raise TypeError(f"the {way} way cannot take the option(s) {', '.join(other)}")
    return options


@contextlib.contextmanager
def redis_space(server: RedisServer, **options: Any) -> Iterator[RedisSpace]:
    """A new space in the session's Redis, through :class:`tuplespace.stores.RedisSpace`."""
    space = ts.connect(server.space_url(), **_redis_options("redis", options, CLOCK_REDIS_OPTIONS))
    assert isinstance(space, RedisSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def redis_cluster_space(cluster: RedisClusterServers, **options: Any) -> Iterator[RedisSpace]:
    """A new space in the session's Redis Cluster, through :class:`tuplespace.stores.RedisSpace`."""
    space = ts.connect(cluster.space_url(), **_redis_options("redis-cluster", options, CLOCK_REDIS_OPTIONS))
    assert isinstance(space, RedisSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def redis_partitioned_space(cluster: RedisClusterServers, **options: Any) -> Iterator[PartitionedRedisSpace]:
    """A new space in the session's Redis Cluster spread over 4 partitions by its field 0,
    through :class:`tuplespace.stores.PartitionedRedisSpace`."""
    url = cluster.space_url() + "&partitions=4&route=0"
    space = ts.connect(url, **_redis_options("redis-partitioned", options))
    assert isinstance(space, PartitionedRedisSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def redis_async_space(
    server: RedisServer | RedisClusterServers, partitioned: bool = False, **options: Any
) -> Iterator[SyncOverAsync]:
    """A new space in the session's Redis (or Redis Cluster; ``partitioned`` as the
    redis-partitioned way's), through :class:`tuplespace.stores.AsyncRedisSpace` on an
    event loop of its own."""
    url = server.space_url() + ("&partitions=4&route=0" if partitioned else "")
    adapter = SyncOverAsync()
    try:
        known = REDIS_OPTIONS if partitioned else CLOCK_REDIS_OPTIONS
        adapter.aspace = adapter.run(ts.connect_async(url, **_redis_options("redis-async", options, known)))
        assert isinstance(adapter.aspace, AsyncPartitionedRedisSpace if partitioned else AsyncRedisSpace)
        yield adapter
    finally:
        adapter.shutdown()


@pytest.fixture(scope="session")
def redis_http_server(redis_server: RedisServer) -> Iterator[LiveServer]:
    """A server keeping its spaces in the session's Redis (``store="redis://..."``), for the
    served-redis way."""
    with LiveServer(store=redis_server.url) as server:
        yield server


@contextlib.contextmanager
def served_redis_space(server: LiveServer, **options: Any) -> Iterator[RemoteSpace]:
    """A new space kept in Redis by ``server``, through :class:`tuplespace.client.RemoteSpace`."""
    other = sorted(set(options) - REDIS_OPTIONS)
    if other:
        raise TypeError(f"the served-redis way cannot take the option(s) {', '.join(other)}")
    url = server.space_url()
    space = ts.connect(url, **{k: v for k, v in options.items() if k != "max_subscribers"}, store="durable")
    assert isinstance(space, RemoteSpace)
    try:
        yield space
    finally:
        space.close()
        server.delete(url)


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


@pytest.fixture
def coap_oscore_node(tmp_path: Path) -> Iterator[tuple[ts.Node, Path]]:
    """A node on 127.0.0.1 that serves no anonymous peer, only the OSCORE peer
    ``client`` (allowed all), whose keys file the coap-oscore way connects with; one for
    each test."""
    secret = os.urandom(16).hex()
    node_keys = tmp_path / "node-keys.json"
    client = {"name": "client", "master_secret": secret, "sender_id": "0a", "recipient_id": "0c"}
    node_keys.write_text(json.dumps({"peers": [{**client, "permissions": "all"}]}))
    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, keys=node_keys, anonymous="none") as node:
        client_keys = tmp_path / "client-keys.json"
        entry = {"name": "node", "uri": node.base_uri, "master_secret": secret, "sender_id": "0c"}
        client_keys.write_text(json.dumps({"peers": [{**entry, "recipient_id": "0a"}]}))
        yield node, client_keys


@contextlib.contextmanager
def coap_oscore_space(keyed: tuple[ts.Node, Path], **options: Any) -> Iterator[CoapSpace]:
    """A new space of a node that serves only OSCORE peers, through
    ``ts.connect("coap://…", keys=…)``: each request protected."""
    node, keys = keyed
    name = "test-" + uuid.uuid4().hex[:16]
    node.space(name, **options)
    space = ts.connect(f"{node.base_uri}spaces/{name}", timeout=PATIENCE, keys=keys)
    assert isinstance(space, CoapSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def coap_async_space(node: ts.Node, **options: Any) -> Iterator[SyncOverAsync]:
    """A new space of ``node``, through ``ts.connect_async("coap://…")`` on an event loop of its own."""
    name = "test-" + uuid.uuid4().hex[:16]
    node.space(name, **options)
    adapter = SyncOverAsync()
    try:
        adapter.aspace = adapter.run(ts.connect_async(f"{node.base_uri}spaces/{name}", timeout=PATIENCE))
        assert isinstance(adapter.aspace, AsyncCoapSpace)
        yield adapter
    finally:
        adapter.shutdown()


# What a space over CoAP does not do yet (docs/federation.md): a test that uses a method of
# ts.Space that CoapSpace lacks (watch_records, rules, ...) runs without the coap ways.
COAP_LACKS = {
    name: f"{name}, which a space over CoAP does not have yet"
    for name in dir(ts.Space)
    if not name.startswith("_") and not hasattr(CoapSpace, name)
}


def coap_limit(function: Callable[..., Any]) -> str | None:
    """Why the coap way does not run the test ``function`` (None: it does): it uses an
    attribute of a space that CoapSpace lacks, or, calling getattr, names one in a string
    (a method named in a parametrize list; not the names of the parameters, nor the
    strings of a test that calls no getattr: its data, such as a tuple ``("order", 1)``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    by_name = any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
        for node in ast.walk(tree)
    )
    parameters = {
        id(name)  # a name, or each name of a tuple of them
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parametrize"
        and node.args
        for name in ast.walk(node.args[0])
    }
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else None
        if (
            by_name
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in parameters
        ):
            name = node.value
        if name in COAP_LACKS:
            return COAP_LACKS[name]
    return None


# What the remote ways cannot show but the Redis ways can (see needs_embedding): a
# subscription to a space kept in Redis reads the log in Redis when asked, so an event is
# there as soon as the change that made it has returned, and it counts its
# subscriptions in the process.
# And a watch opened through a capability ends when the capability is revoked, which
# the HTTP binding does not show.
REDIS_DOES = frozenset(
    {
        "an event expected at once, without waiting",
        "the count of subscriptions just after one ended",
        "over HTTP the binding resumes the ended stream and the server refuses the revoked capability "
        "(test_server_records.py)",
    }
)
# What the Redis ways (not the remote ones) do besides: ``space.record(ref, principal=...)``
# names who pays the redirect_charge of a path a record moved away from.
REDIRECT_PAID = "the redirect_charge paid by the principal space.record names"
# What the Redis ways without partitions do besides: their spaces follow a SimulatedClock
# (its advances are made in Redis, for the space's every process).  Those with
# synchronous spaces (partitioned or not) set their rules' limits in this process
# (space.rules.limits), where the methods run.
LIMITS_HERE = "the limits of methods, set in this process (space.rules.limits)"
REDIS_CLOCK_DOES = REDIS_DOES | {"a SimulatedClock", REDIRECT_PAID}
REDIS_SYNC_DOES = REDIS_CLOCK_DOES | {LIMITS_HERE}


# What the Redis ways without partitions do not do on a SimulatedClock: the space's
# time in Redis follows the clock, and a process counts the leases of its transactions
# and subscriptions and the timeouts of its calls on it, but a transaction has a lease.
SIMULATED_REDIS_LIMITS = {
    "test_a_transaction_without_a_lease_never_runs_out": (
        "a transaction without a lease: a transaction of a space kept in Redis has one, so that what it "
        "holds returns should its process die"
    ),
}


def simulated_redis_limit(module: str, function: Callable[..., Any]) -> str | None:
    """Why the Redis ways whose spaces may follow a SimulatedClock do not run the test
    ``function`` of ``module`` (None: they do)."""
    return SIMULATED_REDIS_LIMITS.get(function.__name__)


# What a space spread over partitions does not do (docs/scaling.md):
# the tests that the redis-partitioned ways skip, and why.
PARTITIONED_LIMITS = {
    "test_a_reaction_to_record_events_reads_the_change": (
        "the order of a read_all across partitions: partition after partition"
    ),
    "test_timeout_zero_raises_space_full_at_once": (
        "the order of a read_all across partitions: partition after partition "
        "(test_redis.py: test_a_partitioned_space_with_a_capacity_is_full_across_its_partitions)"
    ),
    "test_write_many_that_does_not_fit_writes_nothing": (
        "the order of a read_all across partitions: partition after partition "
        "(test_redis.py: test_a_partitioned_space_with_a_capacity_is_full_across_its_partitions)"
    ),
    "test_a_take_in_a_transaction_frees_room_and_an_abort_returns_even_into_a_full_space": (
        "the order of a read_all across partitions: partition after partition "
        "(test_redis.py: test_a_take_in_a_transaction_frees_room_in_a_partitioned_space)"
    ),
    "test_a_tuple_handed_to_a_waiting_transaction_take_returns_to_its_place_on_abort": (
        "the order of a read_all across partitions: partition after partition"
    ),
    "test_a_waiting_take_all_in_a_transaction_holds_what_a_write_many_brings_until_abort": (
        "the order of a read_all across partitions: partition after partition"
    ),
    "test_any_in_place_of_a_template_watches_every_tuple_whatever_its_arity": (
        "the present tuples of a subscription across partitions come a partition after the other, "
        "not in the order they were written"
    ),
    "test_since_older_than_the_log_raises_events_lost_at_once": (
        "seqs one apart: a partition numbers its events `partitions` apart "
        "(test_redis.py: test_a_partitioned_log_too_short_for_since_raises_events_lost)"
    ),
}


def partitioned_limit(module: str, function: Callable[..., Any]) -> str | None:
    """Why the partitioned Redis ways do not run the test ``function`` of ``module``."""
    return PARTITIONED_LIMITS.get(function.__name__)


def _coap_base_uri(space: CoapSpace | SyncOverAsync) -> str:
    """The base URI of the node a coap way's space was reached at (``coap://host:port/``)."""
    url = space.aspace.url if isinstance(space, SyncOverAsync) else space.url
    return url.rpartition("spaces/")[0]


# A record's upcall over CoAP is an observation of its states (RFC 7641; docs/federation.md,
# Remote handles): ``fn`` is called with the record's fields after a change (the latest ones when
# it is slower than the changes), not with each ts.Change; an async handle over CoAP has none.
_OBSERVED = (
    "on_change over CoAP calls fn with the record's latest fields (an Observe of its states), "
    "not with each Change in order; an async CoAP record handle has no on_change"
)
COAP_UPCALL_LACKS = {
    "test_the_function_gets_every_change_in_order": _OBSERVED,
    "test_a_slow_function_never_holds_up_a_writer": _OBSERVED,
    "test_an_exception_of_the_function_is_logged_and_the_upcall_goes_on": _OBSERVED,
    "test_the_upcall_ends_with_its_record": _OBSERVED,
    "test_a_function_may_cancel_its_own_upcall": _OBSERVED,
    "test_the_root_record_is_watched_for_every_record": _OBSERVED,
    "test_an_async_upcall_awaits_a_coroutine_function": _OBSERVED,
}


def _coap_lacks(module: str, function: Callable[..., Any]) -> str | None:
    """Why the coap ways do not run the test ``function``: what it uses that a CoapSpace
    lacks, or a record upcall that is an observation of states over CoAP."""
    if module == "test_upcall" and function.__name__ in COAP_UPCALL_LACKS:
        return COAP_UPCALL_LACKS[function.__name__]
    return coap_limit(function)


# The ways this project adds to the kit's: Redis (a server, a cluster; sync and async) and CoAP.
ADDED_WAYS: list[Way] = [
    Way(
        "redis",
        redis_space,
        embedded=False,
        needs="redis_server",
        does=REDIS_SYNC_DOES,
        lacks=simulated_redis_limit,
    ),
    Way(
        "redis-async",
        redis_async_space,
        embedded=False,
        needs="redis_server",
        does=REDIS_CLOCK_DOES,
        lacks=simulated_redis_limit,
        asynchronous=True,
    ),
    Way("coap", coap_space, embedded=False, needs="coap_node", lacks=_coap_lacks, base_uri=_coap_base_uri),
    Way(
        "coap-async",
        coap_async_space,
        embedded=False,
        needs="coap_node",
        lacks=_coap_lacks,
        base_uri=_coap_base_uri,
        asynchronous=True,
    ),
    Way(
        "coap-oscore",
        coap_oscore_space,
        embedded=False,
        needs="coap_oscore_node",
        lacks=_coap_lacks,
        base_uri=_coap_base_uri,
    ),
    Way(
        "redis-cluster",
        redis_cluster_space,
        embedded=False,
        needs="redis_cluster",
        does=REDIS_SYNC_DOES,
        lacks=simulated_redis_limit,
    ),
    Way(
        "redis-cluster-async",
        redis_async_space,
        embedded=False,
        needs="redis_cluster",
        does=REDIS_CLOCK_DOES,
        lacks=simulated_redis_limit,
        asynchronous=True,
    ),
    Way(
        "served-redis",
        served_redis_space,
        embedded=False,
        needs="redis_http_server",
    ),
    Way(
        "redis-partitioned",
        redis_partitioned_space,
        embedded=False,
        needs="redis_cluster",
        does=REDIS_DOES | {REDIRECT_PAID, LIMITS_HERE},
        lacks=partitioned_limit,
    ),
    Way(
        "redis-partitioned-async",
        functools.partial(redis_async_space, partitioned=True),
        embedded=False,
        needs="redis_cluster",
        does=REDIS_DOES | {REDIRECT_PAID},
        lacks=partitioned_limit,
        asynchronous=True,
    ),
]
# Every way of running a space, in the order of their tests' ids.
WAYS: list[Way] = [*BUILTIN_WAYS, *ADDED_WAYS]


def pytest_tuplespace_ways(config: pytest.Config) -> list[Way]:
    """The ways of running a space that the contract tests run over, besides the kit's."""
    return ADDED_WAYS
