"""A node's space reached over CoAP with the Linda operations: ``ts.connect("coap://…")``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .._codec import encode_template
from .._errors import InvalidValue, Timeout
from .._values import Tuple, Value
from ._cbor import CBOR, JSON, encode_cbor
from ._endpoint import Address, Endpoint, Network, Timers
from ._loop import LoopThread
from ._message import ACCEPT, CONTENT_FORMAT, FETCH, POST, URI_QUERY
from ._node import peer_of
from ._remote import _value

__all__ = ["CoapSpace"]


class CoapSpace:
    """The space ``jobs`` of a node, reached over CoAP: write, read, take, count.

    >>> jobs = ts.connect("coap://127.0.0.1:5683/spaces/jobs")   # doctest: +SKIP
    >>> jobs.write(("job", 1)); jobs.take(("job", int), timeout=5)  # doctest: +SKIP
    ('job', 1)

    Tuples travel in CBOR, templates in the JSON wire format.  A request the node does
    not answer within ``timeout`` seconds (beyond the time a read or take may wait)
    raises :class:`~tuplespace.Unreachable`.  A take is done once however often its
    request is sent (CoAP's duplicate detection); an answer that never arrives after
    all retransmissions loses the tuple taken, as no claim protects it yet.
    ``ack_timeout`` and ``max_retransmit`` are the retransmission timers (RFC 7252:
    2 s, 4 times) and ``network`` where the datagrams travel, as for :class:`~tuplespace.Node`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        ack_timeout: float = 2.0,
        max_retransmit: int = 4,
        network: Network | None = None,
    ) -> None:
        parts = urlsplit(url)
        segments = parts.path.strip("/").split("/")
        if parts.scheme != "coap" or not parts.hostname or len(segments) != 2 or segments[0] != "spaces":
            raise InvalidValue(f"a space over CoAP is coap://host:port/spaces/<name>, got {url!r}")
        if not timeout > 0:
            raise InvalidValue(f"timeout must be positive seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._endpoint = Endpoint(timers=Timers(ack_timeout, max_retransmit=max_retransmit), network=network)
        self._runner = LoopThread("tuplespace-coap-client")
        try:
            self._peer, self._path = self._runner.call(self._open(), timeout)
        except BaseException:
            self._runner.stop()
            raise

    async def _open(self) -> tuple[Address, list[tuple[int, bytes]]]:
        peer, path = await peer_of(self.url)
        await self._endpoint.open("::" if ":" in peer[0] else "0.0.0.0", 0)
        return peer, path

    def _request(self, code: int, payload: bytes, query: list[str], wait: float | None = 0.0) -> Value:
        options = [*self._path, *((URI_QUERY, q.encode()) for q in query), (ACCEPT, _CBOR)]
        options.insert(len(self._path), (CONTENT_FORMAT, _CBOR if code == POST else _JSON))
        within = None if wait is None else wait + self.timeout
        response = self._endpoint.request_blocking(self._peer, code, options, payload, within)
        return _value(response, self.url)

    def write(self, t: Any, lease: float | None = None) -> None:
        """Write the tuple ``t`` (for ``lease`` seconds; None: until taken)."""
        self._request(POST, encode_cbor(tuple(t)), [] if lease is None else [f"lease={lease!r}"])

    def _fetch(self, template: Any, op: str, timeout: float | None) -> Value:
        query = [f"op={op}"] if timeout is None else [f"op={op}", f"timeout={timeout!r}"]
        return self._request(FETCH, encode_template(template), query, timeout)

    def read(self, template: Any, timeout: float | None = None) -> Tuple:
        """A copy of a tuple matching ``template``, waiting up to ``timeout`` seconds
        (None: as long as it takes); :class:`~tuplespace.Timeout` after."""
        return self._found(self._fetch(template, "read", timeout), timeout)

    def take(self, template: Any, timeout: float | None = None) -> Tuple:
        """Remove and return a tuple matching ``template``, as :meth:`read` waits."""
        return self._found(self._fetch(template, "take", timeout), timeout)

    def try_read(self, template: Any) -> Tuple | None:
        """A copy of a tuple matching ``template``, or None at once."""
        found: Tuple | None = self._fetch(template, "read", 0)
        return found

    def try_take(self, template: Any) -> Tuple | None:
        """Remove and return a tuple matching ``template``, or None at once."""
        found: Tuple | None = self._fetch(template, "take", 0)
        return found

    def count(self, template: Any) -> int:
        """How many tuples match ``template``."""
        n: int = self._request(FETCH, encode_template(template), ["op=count"])
        return n

    @staticmethod
    def _found(found: Tuple | None, timeout: float | None) -> Tuple:
        if found is None:
            raise Timeout(f"no matching tuple within {timeout} s")
        return found

    def close(self) -> None:
        """Close the client's socket."""
        self._runner.stop(self._shutdown)

    async def _shutdown(self) -> None:
        self._endpoint.close()

    def __enter__(self) -> CoapSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CoapSpace({self.url!r})"


_CBOR, _JSON = bytes((CBOR,)), bytes((JSON,))
