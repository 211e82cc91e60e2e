"""The Redis store: ``redis://``, ``rediss://``, ``redis+cluster://`` and
``rediss+cluster://`` URLs name spaces kept in Redis (:class:`RedisSpace`,
:class:`AsyncRedisSpace`), and ``tuplespace serve --store redis://host:port/db``
keeps a server's spaces there (:class:`RedisHost`).

A server's catalog is the hash ``{ts}:catalog`` (space name -> its entry, JSON),
in Redis too, so every server on the same Redis hosts the same spaces: one that is
asked for a space it does not know looks it up there.  A space's tuples are the
space of that name in Redis, which embedded processes may open as well
(``redis://host:port/db?space=name``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from .._clock import SimulatedClock
from .._errors import TupleSpaceError
from .._methods import ActiveLimits
from .._recordstore import DEFAULT_BASE_URI
from .._schemes import Hosted, Scheme
from .._values import Limits
from ._redis import SCHEMES, parse_url, prefix, redis_error
from ._redis_async import CONNECT_TIMEOUT, AsyncRedisSpace
from ._redis_sync import RedisSpace

__all__ = ["CATALOG", "SCHEME", "RedisHost"]

CATALOG = "{ts}:catalog"
"""The hash of a server's catalog: space name -> its entry; also the pub/sub channel on
which a server that drops a space says so (``<server> <name>``)."""

_KEPT = (  # the options Redis keeps
    "order",
    "capacity",
    "event_retention",
    "event_retention_bytes",
    "mint_amount",
    "mint_bits",
    "charge_rate",
    "creation_charge",
    "operator",
    "firing_charge",
    "step_charge",
    "redirect_charge",
)


def connect(url: str, options: dict[str, Any]) -> RedisSpace:
    return RedisSpace.open(url, **options)


async def connect_async(url: str, options: dict[str, Any]) -> AsyncRedisSpace:
    return await AsyncRedisSpace.open(url, **options)


class RedisHost:
    """A server's spaces kept in Redis (standalone or Cluster), and its catalog there.
    A space of ``"clock": "simulated"`` keeps its time in Redis, from that of a new
    :class:`~tuplespace.SimulatedClock`, for every server and process."""

    simulated_clock = True

    def __init__(self, url: str, limits: Limits, base_uri: str) -> None:
        if base_uri != DEFAULT_BASE_URI:
            raise ValueError(
                f"a node ({base_uri}) serves no space kept in Redis: its resources hold spaces kept "
                "in its process (--memory, --data-dir, --store sqlite:PATH)"
            )
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"{url!r} is not a URL of Redis ({', '.join(s + '://' for s in SCHEMES)})")
        if parts.query:
            raise ValueError(f"{url!r}: a server's Redis store takes no options (each space has its own)")
        self.url = url
        parse_url(url, {})  # checks the database of a Cluster
        place = f"{parts.hostname}:{parts.port}" if parts.port is not None else parts.hostname or ""
        self.label = f"Redis at {urlunsplit((parts.scheme, place, parts.path, '', ''))}"  # no password
        server = url.replace("+cluster", "", 1)
        self._server = server
        self._name = uuid.uuid4().hex  # who this server is on the channel
        settings = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": CONNECT_TIMEOUT}
        try:  # a Cluster's client asks a node for the others at once
            self._redis: Any = (
                RedisCluster.from_url(server, **settings)
                if "+cluster" in parts.scheme
                else Redis.from_url(server, **settings)
            )
        except RedisClusterException as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: RedisError | RedisClusterException) -> TupleSpaceError:
        return redis_error(self.label, "+cluster" in urlsplit(self.url).scheme, exc, "the server's spaces")

    def catalog(self) -> dict[str, dict[str, Any]]:
        try:
            rows = self._redis.hgetall(CATALOG)
        except RedisError as exc:
            raise self._failed(exc) from None
        return {name.decode(): orjson.loads(entry) for name, entry in rows.items()}

    def lookup(self, name: str) -> dict[str, Any] | None:
        try:
            entry = self._redis.hget(CATALOG, name)
        except RedisError as exc:
            raise self._failed(exc) from None
        return None if entry is None else dict(orjson.loads(entry))

    def open(self, name: str, entry: dict[str, Any], new: bool) -> tuple[Hosted, dict[str, Any] | None]:
        # Opening the space in Redis stores its options, or checks them against those
        # it has (ValueError): the space may be older than the catalog's entry.
        space = RedisSpace.open(self.url, space=name, **{k: entry[k] for k in _KEPT if k in entry})
        try:
            if entry.get("clock") == "simulated":  # its time starts, or goes on, in Redis
                space.follow(SimulatedClock())
            options = {k: getattr(space, k) for k in _KEPT}
        finally:
            space.close()
        theirs = None
        if new:
            try:
                if not self._redis.hsetnx(CATALOG, name, orjson.dumps(entry)):
                    theirs = self.lookup(name)  # another server added it first
            except RedisError as exc:
                raise self._failed(exc) from None
        aspace = AsyncRedisSpace(parse_url(self.url, {"space": name, **options}))
        # What a method may do, and the firings one call runs, in this server's processes.
        aspace.rules.limits = ActiveLimits(**{k: entry[k] for k in ActiveLimits.__slots__ if k in entry})
        return Hosted(aspace, None), theirs

    def drop(self, name: str, hosted: Hosted) -> None:
        try:
            self._redis.hdel(CATALOG, name)
            self._redis.publish(CATALOG, f"{self._name} {name}")
            batch: list[bytes] = []
            for key in self._redis.scan_iter(match=prefix(name) + ":*", count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    self._redis.delete(*batch)
                    batch.clear()
            if batch:
                self._redis.delete(*batch)
        except RedisError as exc:
            raise self._failed(exc) from None

    async def dropped(self) -> AsyncIterator[str]:
        # A Cluster sends what is published (PUBLISH) to every node: one of them will do.
        client = AsyncRedis.from_url(self._server, socket_connect_timeout=CONNECT_TIMEOUT)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(CATALOG)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        who, _, name = message["data"].decode().partition(" ")
                        if who != self._name:
                            yield name
        finally:
            await client.aclose()

    def close(self) -> None:
        self._redis.close()


SCHEME = Scheme(connect, connect_async, RedisHost)
