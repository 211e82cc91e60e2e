"""The pytest plugin of the conformance kit (entry point ``pytest11``: loaded by every
pytest run where pytuplespace is installed).

It parametrises each test that uses the ``way`` fixture (through ``space``,
``make_space``, ``sim_space``...) over every way of running a space (``sync_way``,
``make_sync_space``: over those that are not asyncio ones; ``async_way``,
``make_async_space``: over the asyncio ones): the built-in ways
(:data:`~tuplespace.testing.BUILTIN_WAYS`) and those that conftest files and plugins
add with the hook ``pytest_tuplespace_ways``, less the ways that cannot run it
(:func:`~tuplespace.testing.needs_embedding`, a way's ``does`` and ``lacks``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tuplespace as ts

from ..server import create_app
from ._ways import BUILTIN_WAYS, LiveServer, Way, needs_embedding

__all__ = ["maker"]

_WAYS = pytest.StashKey[list[Way]]()


class _Hooks:
    @pytest.hookspec
    def pytest_tuplespace_ways(self, config: pytest.Config) -> list[Way]:  # type: ignore[empty-body]
        """More ways of running a space for the contract tests (a list of
        :class:`~tuplespace.testing.Way`), from a conftest.py or a plugin."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_Hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded(reason): the test runs over the embedded ways only (what it needs does not "
        "travel to a server yet), and over the ways that do it",
    )


def ways(config: pytest.Config) -> list[Way]:
    """Every way of running a space in this session: the built-in ones, then those added
    by the ``pytest_tuplespace_ways`` hook."""
    if _WAYS not in config.stash:
        added = [way for more in config.hook.pytest_tuplespace_ways(config=config) for way in more]
        config.stash[_WAYS] = [*BUILTIN_WAYS, *added]
    return config.stash[_WAYS]


# The fixtures of ways a test is parametrised over, and the ways each takes.
_FIXTURES: dict[str, Callable[[Way], bool]] = {
    "way": lambda way: True,
    "sync_way": lambda way: not way.asynchronous,
    "async_way": lambda way: way.asynchronous,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = [name for name in _FIXTURES if name in metafunc.fixturenames]
    if not names:
        return
    marker = metafunc.definition.get_closest_marker("embedded")
    if marker is not None:
        reason: str | None = marker.args[0] if marker.args else "marked embedded"
    else:
        reason = needs_embedding(metafunc.function, metafunc.fixturenames)
    module = metafunc.module.__name__.rpartition(".")[2]
    chosen = [
        w
        for w in ways(metafunc.config)
        if (w.embedded or reason is None or reason in w.does)
        and (w.lacks is None or w.lacks(module, metafunc.function) is None)
    ]
    for name in names:
        kept = [w for w in chosen if _FIXTURES[name](w)]
        metafunc.parametrize(name, kept, ids=[w.name for w in kept], indirect=True)


@pytest.fixture(scope="session")
def http_server() -> Iterator[LiveServer]:
    """The server the remote ways use, shared by the whole session."""
    with LiveServer(store="memory") as server:
        yield server


@pytest.fixture(scope="session")
def in_process_app() -> Any:
    """The server application the in-process way calls, shared by the whole session."""
    return create_app(store="memory")


@contextlib.contextmanager
def maker(way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    with contextlib.ExitStack() as stack:
        needed = () if way.needs is None else (request.getfixturevalue(way.needs),)

        def make(**options: Any) -> Any:
            return stack.enter_context(way.open(*needed, **options))

        yield make


@pytest.fixture
def way(request: pytest.FixtureRequest) -> Way:
    return request.param


@pytest.fixture
def sync_way(request: pytest.FixtureRequest) -> Way:
    """A way whose spaces have the blocking methods themselves (for what only they run
    on: the thread forms of workers, worker pools)."""
    return request.param


@pytest.fixture
def async_way(request: pytest.FixtureRequest) -> Way:
    """A way whose spaces are asyncio ones (``space.aspace`` of the :class:`SyncOverAsync`
    it opens), for what is awaited: coroutine functions, the asyncio forms."""
    return request.param


@pytest.fixture(params=[w for w in BUILTIN_WAYS if w.embedded], ids=lambda w: w.name)
def embedded_way(request: pytest.FixtureRequest) -> Way:
    return request.param


@pytest.fixture
def make_space(way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make_space(**options)``: a new space of this way (closed after the test)."""
    with maker(way, request) as make:
        yield make


@pytest.fixture
def make_sync_space(sync_way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make_sync_space(**options)``: a new space of a way whose spaces are not asyncio ones."""
    with maker(sync_way, request) as make:
        yield make


@pytest.fixture
def make_async_space(async_way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make_async_space(**options)``: a new asyncio space (a :class:`SyncOverAsync`)."""
    with maker(async_way, request) as make:
        yield make


@pytest.fixture
def space(make_space: Callable[..., Any]) -> Any:
    """A new space with default options, over every way of running one."""
    return make_space()


@pytest.fixture
def embedded_space(embedded_way: Way, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new space over every way that runs in this process."""
    with maker(embedded_way, request) as make:
        yield make()


@pytest.fixture(params=[w for w in BUILTIN_WAYS if w.name in {"memory", "sqlite"}], ids=lambda w: w.name)
def thread_way(request: pytest.FixtureRequest) -> Way:
    """The ways whose spaces are :class:`tuplespace.Space` objects in this process: for
    what only such a space has (``ts.AsyncSpace(space)``, lifetime rules, the bounds of
    its own event log) and for long runs (a worker pool's 10,000 jobs)."""
    return request.param


@pytest.fixture
def make_thread_space(thread_way: Way, request: pytest.FixtureRequest) -> Iterator[Callable[..., ts.Space]]:
    """``make_thread_space(**options)``: a new :class:`tuplespace.Space` of this way."""
    with maker(thread_way, request) as make:
        yield make


@pytest.fixture
def clock() -> ts.SimulatedClock:
    return ts.SimulatedClock()


@pytest.fixture
def sim_space(make_space: Callable[..., Any], clock: ts.SimulatedClock) -> Any:
    """A space over every way, whose time is ``clock`` (a :class:`tuplespace.SimulatedClock`)."""
    return make_space(clock=clock)
