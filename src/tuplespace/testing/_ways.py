"""The ways of running a space that the conformance kit knows, and how a test is read
to know which ways can run it.

A way is a context manager factory: ``open(**options)`` (after the fixture a way
``needs``, when it names one) yields a new space with the options of
:class:`tuplespace.Space`, seen through the synchronous methods of :class:`tuplespace.Space`
(its subscriptions and transactions included).  The remote ways run against one real
server for the whole session (uvicorn on 127.0.0.1, in a thread, memory store), or
against its application called in this process (the in-process way), each space a new one.

Some things cannot travel to a server: a :class:`tuplespace.SimulatedClock`, Python
functions (a ``Pred``, a function successor of ``replace``), options of
:class:`tuplespace.Space` that the HTTP API does not carry.  A test that uses one of them
(read from its code, see :func:`needs_embedding`) runs over the embedded ways only (and
the ways that say they do what it needs), as does a test marked
``@pytest.mark.embedded("why")``.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

import tuplespace as ts

from .._recordstore import DEFAULT_BASE_URI
from ..client import AsyncRemoteSpace, RemoteSpace
from ..client._common import tls_context
from ..server import Server, create_app
from ._adapters import SyncOverAsync
from ._threads import PATIENCE

__all__ = ["BUILTIN_WAYS", "REMOTE_OPTIONS", "LiveServer", "Way", "needs_embedding", "remote_options"]


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
    does: frozenset[str] = field(default_factory=frozenset)
    """What a remote way does although a test needs embedding for it (reasons given by
    :func:`needs_embedding`): such a test runs over this way too."""
    lacks: Callable[[str, Callable[..., Any]], str | None] | None = None
    """Why this way does not run the test function of a module (its name): None when it does."""
    base_uri: Callable[[Any], str] = field(default=lambda space: DEFAULT_BASE_URI)
    """The base URI under which a space this way opened (given) names its records, the
    ``ME`` of its root: ``tuplespace://local/`` unless the way serves it from a node of
    its own."""
    asynchronous: bool = False
    """Whether its spaces are asyncio ones (seen through :class:`SyncOverAsync`): the
    ``async_way`` fixture's, where the ``sync_way`` fixture's are the others."""


@contextlib.contextmanager
def memory_space(**options: Any) -> Iterator[ts.Space]:
    """A new space in memory."""
    space = ts.connect("memory:", **options)
    assert isinstance(space, ts.Space)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def memory_async_space(**options: Any) -> Iterator[SyncOverAsync]:
    """A new :class:`tuplespace.AsyncSpace` in memory, on an event loop of its own."""
    adapter = SyncOverAsync(ts.AsyncSpace(**options))
    try:
        yield adapter
    finally:
        adapter.shutdown()


# Where the sqlite way makes its files: in memory-backed files where the system has them
# (Linux's /dev/shm), whose fsync costs nothing (a space made and dropped for each test
# costs 1 ms, not 50), else in the temporary directory.  Each test checks what the space
# does, not what the disk keeps after a power cut.
_SQLITE_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@contextlib.contextmanager
def sqlite_space(**options: Any) -> Iterator[ts.Space]:
    """A durable space in a new SQLite file (a real file, in a temporary directory:
    memory-backed where the system has one)."""
    with tempfile.TemporaryDirectory(prefix="tuplespace-", dir=_SQLITE_DIR) as directory:
        space = ts.connect(f"sqlite://{directory}/spaces.db?space=test", **options)
        assert isinstance(space, ts.Space)
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
        response = httpx.delete(url, timeout=PATIENCE, verify=tls_context())
        assert response.status_code in (204, 404), response.text

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(PATIENCE)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# The options of :class:`tuplespace.Space` a server keeps for a space (PUT /spaces/{space}).
REMOTE_OPTIONS = frozenset(
    {
        "order",
        "capacity",
        "event_retention",
        "event_retention_bytes",
        "charge_rate",
        "creation_charge",
        "operator",
        "mint_amount",
        "mint_bits",
        "redirect_charge",
        "firing_charge",
        "step_charge",
        "max_firings",
    }
)


def remote_options(way: str, options: dict[str, Any]) -> dict[str, Any]:
    other = sorted(set(options) - REMOTE_OPTIONS)
    if other:
        raise TypeError(
            f"the {way} way cannot take the option(s) {', '.join(other)}: a test that needs "
            "them must run over the embedded ways (see tuplespace.testing.needs_embedding)"
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
    space = ts.connect(url, **remote_options(way, options), **own)
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
        adapter.aspace = adapter.run(ts.connect_async(url, **remote_options("http-async", options)))
        assert isinstance(adapter.aspace, AsyncRemoteSpace)
        yield adapter
    finally:
        adapter.shutdown()
        server.delete(url)


@contextlib.contextmanager
def in_process_space(app: Any, **options: Any) -> Iterator[RemoteSpace]:
    """A new space of ``app``, through a :class:`tuplespace.client.RemoteSpace` that calls
    the application in this process, without sockets (``app=``)."""
    space = ts.connect(
        f"http://localhost/spaces/test-{uuid.uuid4().hex[:16]}",
        app=app,
        **remote_options("in-process", options),
    )
    assert isinstance(space, RemoteSpace)
    try:
        yield space
    finally:
        space.close()


@contextlib.contextmanager
def in_process_async_space(app: Any, **options: Any) -> Iterator[SyncOverAsync]:
    """A new space of ``app``, through an :class:`tuplespace.client.AsyncRemoteSpace` that
    calls the application in this process (``app=``), on an event loop of its own."""
    url = f"http://localhost/spaces/test-{uuid.uuid4().hex[:16]}"
    adapter = SyncOverAsync()
    try:
        adapter.aspace = adapter.run(
            ts.connect_async(url, app=app, **remote_options("in-process-async", options))
        )
        assert isinstance(adapter.aspace, AsyncRemoteSpace)
        yield adapter
    finally:
        adapter.shutdown()


BUILTIN_WAYS: list[Way] = [
    Way("memory", memory_space, embedded=True),
    Way("memory-async", memory_async_space, embedded=True, asynchronous=True),
    Way("sqlite", sqlite_space, embedded=True),
    Way("http", http_space, embedded=False, needs="http_server"),
    Way("http-plain", http_plain_space, embedded=False, needs="http_server"),
    Way("http-async", http_async_space, embedded=False, needs="http_server", asynchronous=True),
    Way("in-process", in_process_space, embedded=False, needs="in_process_app"),
    Way(
        "in-process-async",
        in_process_async_space,
        embedded=False,
        needs="in_process_app",
        asynchronous=True,
    ),
]


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
    """
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
