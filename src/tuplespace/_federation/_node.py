"""A node: spaces served over CoAP (UDP) under a base URI, and handles on its peers' records."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .._errors import InvalidValue, Unreachable
from .._extras import missing
from .._names import check_path
from .._space import Space
from .._values import URI
from ._loop import LoopThread
from ._remote import RemoteRecord

if TYPE_CHECKING:
    import aiocoap

__all__ = ["Node"]

_T = TypeVar("_T")
COAP_PORT = 5683


class Node:
    """A node of a federation: it hosts spaces and serves their records over CoAP.

    ``base_uri`` (``coap://host:port/``) names the node: the address of a record of
    its space ``home`` is ``<base_uri>spaces/home/<path>``.  The node listens on UDP at
    ``bind`` (host, port), by default the base URI's host and port (port 0: one the
    system picks, then written into :attr:`base_uri`; :attr:`port` is the port bound).
    A node behind a name or a gateway binds one address and is named by another:
    ``Node("coap://gateway.example:5683/", bind=("0.0.0.0", 5683))``.

    >>> node = Node("coap://127.0.0.1:0/")                                    # doctest: +SKIP
    >>> kitchen = node.space("home").create("kitchen", {"temp": 21.5})        # doctest: +SKIP
    >>> other = Node("coap://127.0.0.1:0/")                                   # doctest: +SKIP
    >>> other.record(kitchen.address).get("temp")                             # doctest: +SKIP
    21.5

    A request to a peer that does not answer within ``timeout`` seconds raises
    :class:`~tuplespace.Unreachable`.  Served resources are bounded: at most
    ``max_observers`` observations of one record (with its fields), ``max_observed``
    records observed at once, request payloads of ``max_request_bytes`` (4.13 past
    it) and ``max_assemblies`` block-wise requests being assembled.  See
    docs/federation.md for the resource layout and the content formats.
    """

    def __init__(
        self,
        base_uri: str = f"coap://127.0.0.1:{COAP_PORT}/",
        *,
        bind: tuple[str, int] | None = None,
        timeout: float = 10.0,
        max_observers: int = 64,
        max_observed: int = 256,
        max_request_bytes: int = (1 << 20) + 1024,
        max_assemblies: int = 64,
    ) -> None:
        parts = urlsplit(base_uri)
        if parts.scheme != "coap" or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise InvalidValue(f"a node's base URI is coap://host:port/, got {base_uri!r}")
        if not timeout > 0:
            raise InvalidValue(f"timeout must be positive seconds, got {timeout!r}")
        host = parts.hostname
        port = COAP_PORT if parts.port is None else parts.port
        bind_host, bind_port = (host, port) if bind is None else bind
        self.timeout = timeout
        try:
            from ._resources import SpacesResource
        except ModuleNotFoundError as exc:
            raise missing("federation", exc) from None
        self._spaces: dict[str, Space] = {}
        self._resource = SpacesResource(
            self._spaces,
            max_observers=max_observers,
            max_observed=max_observed,
            max_request_bytes=max_request_bytes,
            max_assemblies=max_assemblies,
        )
        self._runner = LoopThread("tuplespace-coap")
        try:
            self._context: aiocoap.Context = self.call(self._serve(bind_host, bind_port))
        except BaseException:
            self._runner.stop()
            raise
        self.port = bind_port or _bound_port(self._context)
        """The UDP port the node listens on."""
        shown = f"[{host}]" if ":" in host else host
        self.base_uri = f"coap://{shown}:{port or self.port}/"
        """The node's name: every address of its records starts with it."""
        self._resource.base_uri = self.base_uri

    async def _serve(self, host: str, port: int) -> aiocoap.Context:
        import aiocoap
        from aiocoap.resource import Site, WKCResource

        site = Site()
        site.add_resource((".well-known", "core"), WKCResource(site.get_resources_as_linkheader))
        site.add_resource(("spaces",), self._resource)
        try:
            return await aiocoap.Context.create_server_context(site, bind=(host, port), transports=["udp6"])
        except OSError as exc:
            raise Unreachable(f"cannot listen on {host}:{port} (UDP): {exc}") from None

    def space(self, name: str, **options: Any) -> Space:
        """The node's space ``name`` (created on first use with ``options``, as for
        :class:`~tuplespace.Space`): an embedded space whose records are addressed
        under this node's base URI and served over CoAP."""
        check_path(name)
        if "/" in name:
            raise InvalidValue(f"a space name is one path segment, got {name!r}")
        space = self._spaces.get(name)
        if space is None:
            space = self._spaces[name] = Space(name=name, base_uri=self.base_uri, **options)
        elif options:
            raise InvalidValue(f"the space {name!r} exists already; options are given only at creation")
        return space

    def record(self, address: str | URI) -> RemoteRecord:
        """A handle on the record at ``address`` (``coap://…/spaces/<space>/<path>``) on
        any node, this one included: its calls are CoAP requests to that node."""
        return RemoteRecord(self, address)

    def statistics(self) -> dict[str, int]:
        """Spaces hosted, observed records and observations being served."""
        return {"spaces": len(self._spaces), **self._resource.statistics()}

    def call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the node's event loop and return its result; a peer
        that does not answer within :attr:`timeout` raises :class:`~tuplespace.Unreachable`."""
        return self._runner.call(coroutine, self.timeout)

    @property
    def context(self) -> aiocoap.Context:
        """The node's aiocoap context (server and client), used on its event loop."""
        return self._context

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the node serves and sends on (in a thread of its own)."""
        return self._runner.loop

    def close(self) -> None:
        """Stop serving, end the observations and close the spaces."""
        if self._runner.closed:
            return
        self._runner.stop(self._shutdown)
        for space in self._spaces.values():
            space.close()

    async def _shutdown(self) -> None:
        self._resource.close()
        await self._context.shutdown()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Node({self.base_uri!r})"


def _bound_port(context: aiocoap.Context) -> int:
    """The UDP port the kernel gave the server socket bound to port 0 (aiocoap keeps
    the socket inside its message layer)."""
    for manager in context.request_interfaces:
        transport = getattr(manager.token_interface.message_interface, "transport", None)
        if transport is not None:
            port: int = transport.get_extra_info("socket").getsockname()[1]
            return port
    raise Unreachable("the CoAP server has no UDP socket")
