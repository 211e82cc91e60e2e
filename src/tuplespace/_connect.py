"""``connect`` and ``connect_async``: the one place where a URL chooses how a space is run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._aio import AsyncSpace
from ._schemes import SCHEMES
from ._schemes import scheme as find_scheme
from ._space import Space

if TYPE_CHECKING:
    from ._federation._linda import AsyncCoapSpace, CoapSpace
    from .client import AsyncRemoteServer, AsyncRemoteSpace, RemoteServer, RemoteSpace
    from .stores import AsyncRedisSpace, RedisSpace

__all__ = ["connect", "connect_async", "connect_server", "connect_server_async"]

# Keywords of a remote space that are its own, not the options of the space on the server.
_REMOTE_KEYWORDS = {"token", "connect_timeout", "confirm_delay", "channel", "spin", "transport", "app"}


def _unsupported(url: str) -> ValueError:
    schemes = ", ".join(f"{name}:" for name in (*SCHEMES, "http", "https"))
    return ValueError(f"unsupported space URL {url!r}: supported schemes are {schemes} and coap:")


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"url must be str, not {type(url).__name__}")
    return url


def _remote(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keywords of a remote space, and the options of the space on the server."""
    own = {k: v for k, v in options.items() if k in _REMOTE_KEYWORDS}
    return own, {k: v for k, v in options.items() if k not in _REMOTE_KEYWORDS}


def connect(url: str = "memory:", **options: Any) -> Space | RemoteSpace | RedisSpace | CoapSpace:
    """Open the space that ``url`` names.

    - ``memory:`` — a new space in this process (``memory:?order=lifo`` sets options).
    - ``sqlite:///abs/path.db?space=jobs`` or ``sqlite:rel/path.db?space=jobs`` — a
      durable space in a SQLite file (many spaces per file; ``space`` defaults to
      ``default``; ``durability=normal|full``, see :mod:`tuplespace._sqlite`).
      Connecting twice to the same space in one process gives the same object.
    - ``http://host:port/spaces/jobs`` (or ``https://``) — the space ``jobs`` of a
      server (``tuplespace serve``): a :class:`tuplespace.client.RemoteSpace`.
      ``token=`` is its bearer token.  Options (``order``, ``capacity``,
      ``event_retention``, ``event_retention_bytes``, ``store``, ``anonymous``) create
      the space with them if it does not exist yet (which needs the ``admin`` permission).
      ``transport=`` names how requests travel: ``"channel"`` (the default: the
      server's channel, else HTTP), ``"http"`` or ``"in-process"``; ``app=`` (an
      application of :func:`tuplespace.server.create_app`) chooses ``"in-process"``:
      that application is called in this process, without sockets (the URL's host
      is then only a name: ``connect("http://app/spaces/jobs", app=app)``).

    - ``redis://host:port/db?space=jobs`` (``rediss://``, ``redis+cluster://``) — the
      space ``jobs`` kept in Redis, shared by every process that opens it: a
      :class:`tuplespace.stores.RedisSpace` (docs/scaling.md).
    - ``coap://host:port/spaces/jobs`` — the space ``jobs`` of a :class:`tuplespace.Node`,
      over CoAP: the Linda operations of :class:`Space` that docs/federation.md lists
      (``timeout=`` bounds its wait for an answer; ``keys="keys.json"``, a keys file
      as a node's, protects its requests with OSCORE as the node's peer named there).

    The stores (``memory:``, ``sqlite:``, ``redis:``...) are found by their scheme in
    one table, ``tuplespace._schemes.SCHEMES``.  Keyword options (those of
    :class:`Space`) override options in the URL.

    >>> space = connect("memory:?order=lifo")
    >>> space.order
    'lifo'
    """
    url = _check_url(url)
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        from .client import RemoteSpace

        own, space_options = _remote(options)
        remote = RemoteSpace(url, **own)
        if space_options:
            try:
                remote.create_space(space_options)
            except BaseException:
                remote.close()
                raise
        return remote
    if parts.scheme == "coap":
        from ._federation._linda import CoapSpace

        return CoapSpace(url, **options)
    store = find_scheme(parts.scheme)
    if store is None:
        raise _unsupported(url)
    space: Space | RedisSpace = store.connect(url, options)
    return space


async def connect_async(
    url: str = "memory:", **options: Any
) -> AsyncSpace | AsyncRemoteSpace | AsyncRedisSpace | AsyncCoapSpace:
    """Open the space that ``url`` names, for asyncio: what :func:`connect` opens, seen
    as an :class:`AsyncSpace`, or for an ``http://`` or ``https://`` URL a
    :class:`tuplespace.client.AsyncRemoteSpace`, for a ``redis://``, ``rediss://`` or
    ``redis+cluster://`` URL a :class:`tuplespace.stores.AsyncRedisSpace`, for a
    ``coap://`` URL an ``AsyncCoapSpace`` on the running event loop (docs/federation.md).

    >>> space = await connect_async("http://127.0.0.1:8765/spaces/jobs", token="...")  # doctest: +SKIP
    >>> await space.take(("job", int), timeout=5)                                      # doctest: +SKIP
    """
    url = _check_url(url)
    scheme = urlsplit(url).scheme
    if scheme == "coap":
        from ._federation._linda import AsyncCoapSpace

        return await AsyncCoapSpace.open(url, **options)
    if scheme in ("http", "https"):
        from .client import AsyncRemoteSpace

        own, space_options = _remote(options)
        remote = AsyncRemoteSpace(url, **own)
        if space_options:
            try:
                await remote.create_space(space_options)
            except BaseException:
                await remote.close()
                raise
        return remote
    store = find_scheme(scheme)
    if store is None:
        raise _unsupported(url)
    space: AsyncSpace | AsyncRedisSpace = await store.connect_async(url, options)
    return space


def connect_server(
    url: str = "http://127.0.0.1:8765", *, token: str | None = None, connect_timeout: float = 10.0
) -> RemoteServer:
    """The server at ``url`` (its base URL) as a whole: its health, its spaces and its
    tokens (:class:`tuplespace.client.RemoteServer`).

    >>> server = connect_server("http://127.0.0.1:8765", token="...")       # doctest: +SKIP
    >>> server.create_space("jobs", order="lifo")                          # doctest: +SKIP
    >>> server.tokens.create("worker", spaces={"jobs": ["read", "take"]})  # doctest: +SKIP
    """
    from .client import RemoteServer

    return RemoteServer(_check_url(url), token=token, connect_timeout=connect_timeout)


async def connect_server_async(
    url: str = "http://127.0.0.1:8765", *, token: str | None = None, connect_timeout: float = 10.0
) -> AsyncRemoteServer:
    """:func:`connect_server` for asyncio (:class:`tuplespace.client.AsyncRemoteServer`)."""
    from .client import AsyncRemoteServer

    return AsyncRemoteServer(_check_url(url), token=token, connect_timeout=connect_timeout)
