"""A node: spaces served over CoAP (UDP) under a base URI, and handles on its peers' records."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from .._errors import InvalidValue, Unreachable
from .._extras import missing
from .._memory import MemoryHost
from .._names import check_path
from .._schemes import SPACE_OPTIONS, scheme
from .._space import Space
from .._store import Store
from .._values import URI, Limits
from ._endpoint import Address, Endpoint, Network, Timers
from ._loop import LoopThread
from ._message import URI_PATH, URI_QUERY
from ._remote import RemoteRecord

if TYPE_CHECKING:
    from ._peers import Guard
    from ._remote import RemoteUpcall
    from ._subscribe import _Stream

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
    :class:`~tuplespace.Unreachable`; confirmable messages are retransmitted after
    ``ack_timeout`` seconds (RFC 7252: 2 to 3), then twice as long each time, up to
    ``max_retransmit`` times.  At most ``nstart`` confirmables are outstanding to one
    peer (RFC 7252 §4.7; None: 1, or 32 to a loopback address), the others waiting
    their turn in order, ``max_queued`` at most per peer (past it a request raises
    :class:`~tuplespace.LimitReached`); a peer that stopped answering is sent no
    more than ``probing_rate`` bytes per second until it answers again.  Served
    resources are bounded: at most
    ``max_observers`` observations of one record (with its fields), ``max_observed``
    records observed at once, ``max_host_observations`` observations held by one
    sending host, ``read_all`` and ``take_all`` answers of
    ``max_results`` tuples and ``max_answer`` bytes at a time (the client asks for the
    rest), ``max_transactions`` transactions and claims held for each sending host,
    ``max_waiting`` calls of each sending host to the spaces under way (waiting) at once,
    request payloads of ``max_request_bytes`` (4.13 past
    it), ``max_assemblies`` block-wise requests being assembled and ``max_exchanges``
    message ids remembered to answer repeated requests, of which one sending host
    holds at most ``max_host_assemblies`` and ``max_host_exchanges`` (past them its
    own oldest give way; when all hosts together hold the total, the host holding
    the most gives way its oldest); a peer's host (from any
    number of ports) has at most ``max_subscriptions`` event streams open at once,
    and all peers together ``max_node_subscriptions``, each holding at most
    ``max_notification_bytes`` of events for its next notification.  Notifications are fresh
    for ``max_age`` seconds (Max-Age): an observer that heard nothing for that long
    registers again, which takes up an observation the node dropped when a
    notification was never acknowledged.  ``network`` is where the
    datagrams travel: UDP unless a simulation is given.  A take over CoAP is held
    under a claim for ``claim_lease`` seconds until its taker confirms it: a take
    whose answer never arrived returns to its place then (keep it longer than a
    client's retries of its confirmation).

    A field holding the address of another node's record holds that record (its
    ``$refcount`` counts it): the node refreshes such references every
    ``refresh_period`` seconds, batched per peer, and lets those of its own records
    lapse ``reference_lifetime`` seconds after their last refresh; it holds at most
    ``max_references`` references from others per space and knows at most
    ``max_peers`` peers (``peers``: base URIs it probes each period, shown with their
    liveness in ``/$sys/peers``, which a peer may observe:
    ``other.record(node.base_uri + "$sys/peers").on_change(fn)``).

    Security (docs/federation.md, Security): ``keys`` is a keys file of OSCORE
    peers (RFC 8613), each with what it may do; ``anonymous`` is what peers
    without OSCORE may do, one of ``"none"``, ``"read"``, ``"read+write"`` and
    ``"all"`` (by default ``"all"`` for a node bound to a loopback address,
    ``"none"`` for any other); ``rate`` (None: no limit) and ``burst`` bound the
    requests per second of each sending host, for ``max_hosts`` hosts at once.
    Capability addresses work from any peer.  See docs/federation.md.

    ``store`` keeps the node's spaces: ``"memory:"`` (the default: they end with the
    node) or ``"sqlite:PATH"``, a SQLite file that keeps them, their tuples and their
    records across a restart under the same base URI; the references their records
    hold to other nodes' records are held again and counted there at the next refresh.
    """

    def __init__(
        self,
        base_uri: str = f"coap://127.0.0.1:{COAP_PORT}/",
        *,
        bind: tuple[str, int] | None = None,
        timeout: float = 10.0,
        max_observers: int = 64,
        max_observed: int = 256,
        max_host_observations: int = 64,
        max_results: int = 10_000,
        max_answer: int = 16 << 20,
        max_transactions: int = 10_000,
        claim_lease: float = 30.0,
        max_subscriptions: int = 64,
        max_node_subscriptions: int = 1024,
        max_notification_bytes: int = 64 << 10,
        max_waiting: int = 1000,
        max_request_bytes: int = (1 << 20) + 1024,
        max_assemblies: int = 64,
        max_exchanges: int = 8192,
        max_host_assemblies: int = 16,
        max_host_exchanges: int = 1024,
        max_age: int = 60,
        ack_timeout: float = 2.0,
        max_retransmit: int = 4,
        nstart: int | None = None,
        probing_rate: float = 1.0,
        max_queued: int = 1024,
        refresh_period: float = 30.0,
        reference_lifetime: float = 90.0,
        max_references: int = 100_000,
        max_peers: int = 1024,
        peers: Iterable[str] = (),
        network: Network | None = None,
        keys: str | os.PathLike[str] | None = None,
        anonymous: str | None = None,
        rate: float | None = None,
        burst: int = 100,
        max_hosts: int = 4096,
        store: str = "memory:",
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
            from ._references import References
            from ._resources import SpacesResource
        except ModuleNotFoundError as exc:  # the server's error table
            raise missing("federation", exc) from None
        self._spaces: dict[str, Space] = {}
        self._host: Store | None = None  # the store of its spaces, opened once its name is known
        self._resource = SpacesResource(
            self._spaces,
            max_observers=max_observers,
            max_observed=max_observed,
            max_host_observations=max_host_observations,
            max_results=max_results,
            max_answer=max_answer,
            max_transactions=max_transactions,
            claim_lease=claim_lease,
            max_subscriptions=max_subscriptions,
            max_node_subscriptions=max_node_subscriptions,
            max_notification_bytes=max_notification_bytes,
            max_waiting=max_waiting,
        )
        self._guard = _guard(keys, anonymous, bind_host, rate, burst, max_hosts)
        self._endpoint = Endpoint(
            self._resource,
            guard=self._guard,
            timers=Timers(
                ack_timeout, max_retransmit=max_retransmit, nstart=nstart, probing_rate=probing_rate
            ),
            max_request_bytes=max_request_bytes,
            max_assemblies=max_assemblies,
            max_exchanges=max_exchanges,
            max_host_assemblies=max_host_assemblies,
            max_host_exchanges=max_host_exchanges,
            max_age=max_age,
            max_queued=max_queued,
            network=network,
        )
        self._upcalls: set[RemoteUpcall] = set()  # followed by this node, ended when it closes
        self.streams: set[_Stream] = set()
        """The watches of remote records open through this node, ended when it closes."""
        self.references = References(
            self,
            refresh_period=refresh_period,
            reference_lifetime=reference_lifetime,
            max_references=max_references,
            max_peers=max_peers,
            peers=peers,
        )
        """The references of this node's records to other nodes' records and theirs to ours."""
        self._resource.handlers.update(
            {"$refs": self.references.answer, "$reach": self.references.reach, "$sys": self.references.system}
        )
        self._resource.system = self.references
        self._runner = LoopThread("tuplespace-coap")
        try:
            sockname = self.call(self._endpoint.open(bind_host, bind_port))
        except BaseException:
            self._runner.stop()
            raise
        self.port: int = sockname[1]
        """The UDP port the node listens on."""
        shown = f"[{host}]" if ":" in host else host
        self.base_uri = f"coap://{shown}:{port or self.port}/"
        """The node's name: every address of its records starts with it."""
        self._resource.base_uri = self.base_uri
        try:
            self._host = _host(store, self.base_uri)
            for name, entry in self._host.catalog().items():
                self._open(name, entry, False)
        except BaseException:
            self.close()
            raise
        asyncio.run_coroutine_threadsafe(self.references.run(), self.loop)

    def space(self, name: str, **options: Any) -> Space:
        """The node's space ``name`` (created on first use with ``options``, as for
        :class:`~tuplespace.Space`): an embedded space whose records are addressed
        under this node's base URI and served over CoAP."""
        check_path(name)
        if "/" in name:
            raise InvalidValue(f"a space name is one path segment, got {name!r}")
        space = self._spaces.get(name)
        if space is None:
            space = self._open(name, options, True)
        elif options:
            raise InvalidValue(f"the space {name!r} exists already; options are given only at creation")
        return space

    def _open(self, name: str, entry: dict[str, Any], new: bool) -> Space:
        """The space ``name`` of the store (``new``: made with the options ``entry``), served."""
        assert self._host is not None
        if new and isinstance(self._host, MemoryHost):
            space = Space(name=name, base_uri=self.base_uri, **entry)  # any options of a Space
        else:
            unknown = sorted(set(entry) - set(SPACE_OPTIONS)) if new else []
            if unknown:
                raise InvalidValue(
                    f"a space kept in {self._host.label} takes only the options "
                    f"{', '.join(SPACE_OPTIONS)}, not {unknown[0]}",
                    unknown[0],
                )
            try:
                hosted, _ = self._host.open(name, entry, new)
            except ValueError as exc:  # options the store cannot keep
                raise InvalidValue(f"the space {name!r}: {exc}") from None
            assert hosted.space is not None  # a node's store keeps its spaces in this process
            space = hosted.space
        self.add_space(name, space)
        return space

    def add_space(self, name: str, space: Space) -> None:
        """Serve ``space``, an embedded space made elsewhere (a server's, kept in its
        store), as the node's space ``name``: it must have been made with
        ``base_uri=node.base_uri`` (and ``name=name``), so that its records' addresses
        are the node's.  A server serving HTTP beside the node adds its spaces so.

        >>> space = ts.Space(name="jobs", base_uri=node.base_uri)       # doctest: +SKIP
        >>> node.add_space("jobs", space)                               # doctest: +SKIP
        """
        check_path(name)
        if "/" in name:
            raise InvalidValue(f"a space name is one path segment, got {name!r}")
        if space.base_uri != self.base_uri:
            raise InvalidValue(
                f"the space {name!r} names its records under {space.base_uri}, not under the node's "
                f"{self.base_uri}: make it with base_uri=node.base_uri"
            )
        if name in self._spaces:
            raise InvalidValue(f"the node has a space {name!r} already")
        self.references.attach(space)
        self._spaces[name] = space
        self.references.spaces_changed()

    def remove_space(self, name: str) -> None:
        """Stop serving the space ``name`` (the caller closes it); nothing if there is none."""
        if self._spaces.pop(name, None) is not None:
            self.references.spaces_changed()

    def record(self, address: str | URI) -> RemoteRecord:
        """A handle on the record at ``address`` (``coap://…/spaces/<space>/<path>``) on
        any node, this one included: its calls are CoAP requests to that node."""
        return RemoteRecord(self, address)

    def statistics(self) -> dict[str, int]:
        """Spaces hosted, observed records and observations being served, the
        transactions and claims held for peers (``held_transactions``,
        ``held_claims``), calls waiting under a session and the ended sessions
        remembered (``session_calls``, ``ended_sessions``), the calls of peers under
        way (``calls``), subscriptions of peers to
        the spaces' events (``subscriptions``); with security, the OSCORE peers, the hosts with a rate
        bucket and the requests refused (``refused_rate``, ``refused_oscore``,
        ``refused_permission``)."""
        guard = {} if self._guard is None else self._guard.statistics()
        return {"spaces": len(self._spaces), **self._resource.statistics(), **guard}

    def check_open(self) -> None:
        """Raise :class:`~tuplespace.Unreachable` once the node is closed: its handles
        have no socket left to reach their records."""
        if self._runner.closed:
            raise Unreachable(f"{self!r} is closed")

    def call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the node's event loop and return its result; a peer
        that does not answer within :attr:`timeout` raises :class:`~tuplespace.Unreachable`."""
        return self._runner.call(coroutine, self.timeout)

    @property
    def spaces(self) -> Mapping[str, Space]:
        """The spaces the node holds, by name (made by :meth:`space`)."""
        return self._spaces

    @property
    def upcalls(self) -> set[RemoteUpcall]:
        """The upcalls of remote records this node follows (each adds and removes
        itself), ended when the node closes."""
        return self._upcalls

    @property
    def endpoint(self) -> Endpoint:
        """The node's CoAP endpoint (server and client), used on its event loop."""
        return self._endpoint

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the node serves and sends on (in a thread of its own)."""
        return self._runner.loop

    def close(self) -> None:
        """Stop serving, end the observations and close the spaces."""
        if self._runner.closed:
            return
        self._runner.stop(self._shutdown)
        for upcall in list(self._upcalls):
            upcall.cancel()
        for space in self._spaces.values():
            space.close()
        if self._host is not None:
            self._host.close()

    async def _shutdown(self) -> None:
        for stream in list(self.streams):
            stream.stop()
        await asyncio.sleep(0)  # their deregistrations sent
        self._resource.close()
        self._endpoint.close()
        if self._guard is not None:
            self._guard.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Node({self.base_uri!r})"


def _guard(
    keys: str | os.PathLike[str] | None,
    anonymous: str | None,
    bind_host: str,
    rate: float | None,
    burst: int,
    max_hosts: int,
) -> Guard | None:
    """The node's guard; None when every peer may do everything at any rate."""
    from ._peers import Guard, load_peers, permission  # cryptography: imported when needed

    if anonymous is None:
        try:
            loopback = ipaddress.ip_address(bind_host).is_loopback
        except ValueError:
            loopback = bind_host == "localhost"
        level = permission("all" if loopback else "none", "anonymous")
    else:
        level = permission(anonymous, "anonymous")
    if rate is not None and not (rate > 0 and burst >= 1 and max_hosts >= 1):
        raise InvalidValue(f"rate > 0, burst >= 1 and max_hosts >= 1; got {rate!r}, {burst!r}, {max_hosts!r}")
    if keys is None and rate is None and level == permission("all", "anonymous"):
        return None
    found, state = load_peers(keys) if keys is not None else ([], None)
    return Guard(found, state, anonymous=level, rate=rate, burst=burst, max_hosts=max_hosts)


def _host(store: str, base_uri: str) -> Store:
    """The store of a node's spaces, by its URL (``memory:``, ``sqlite:PATH``)."""
    found = scheme(urlsplit(store).scheme) if isinstance(store, str) and ":" in store else None
    if found is None:
        raise InvalidValue(f"a node's store is memory: or sqlite:PATH, got {store!r}", "store")
    try:
        return found.host(store, Limits(), base_uri)
    except ValueError as exc:
        raise InvalidValue(f"store: {exc}", "store") from None


async def peer_of(url: str) -> tuple[Address, list[tuple[int, bytes]]]:
    """The UDP address of a ``coap://`` URL's host and port, and the Uri-Path and
    Uri-Query options of its path and query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = COAP_PORT if parts.port is None else parts.port
    except ValueError:
        raise InvalidValue(f"{url!r} has no valid port") from None
    try:
        ipaddress.ip_address(host)
        address: Address = (host, port)
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise Unreachable(f"{host!r} cannot be resolved: {exc}") from None
        address = found[0][4][:2]
    options = [(URI_PATH, unquote(s).encode()) for s in parts.path.split("/")[1:] if s]
    options += [(URI_QUERY, unquote(q).encode()) for q in parts.query.split("&") if q]
    return address, options
