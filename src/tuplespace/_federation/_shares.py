"""A table a node keeps for its peers, bounded per sending host and in total, so that
one host cannot make the node forget what it keeps for the others.

A host is a peer's address without its port: a host's ports share one budget, as the
node's other per-host limits do.  A host past its share gives way its own oldest
entry; when the total is reached, the host holding the most gives way its oldest
(whoever holds less than the others keeps what it has).  Entries are kept in the
order they were put, with the time each was put, so that those older than a horizon
are dropped first.  Every operation costs O(1) (amortized): the hosts are counted in
buckets by how many entries each holds, the fullest bucket known.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["Shares"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Shares(Generic[K, V]):
    """Values by key, each held by a host: at most ``per_host`` held by one host (at
    most ``total``), ``total`` by all."""

    def __init__(self, total: int, per_host: int) -> None:
        self.total = total
        self.per_host = min(per_host, total)
        # Every entry, the least recently put first: its host, when it was put, its value.
        self._entries: OrderedDict[K, tuple[Hashable, float, V]] = OrderedDict()
        self._hosts: dict[Hashable, OrderedDict[K, None]] = {}  # each host's keys, oldest first
        # The hosts holding each number of entries, in the order they came to hold it
        # (ordered dicts: the first found at once however many left before it).
        self._holding: dict[int, OrderedDict[Hashable, None]] = {}
        self._most = 0  # entries held by the host holding the most

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The value kept under ``key`` (None: none)."""
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def put(self, host: Hashable, key: K, value: V, at: float = 0.0) -> None:
        """Keep ``value`` under ``key`` for ``host``, the newest, at time ``at``: the
        oldest of the host's own gives way when it holds its share, else the oldest
        of the host holding the most when all hold the total."""
        entries = self._entries
        if key in entries:
            self.pop(key)
        keys = self._hosts.get(host)
        full = len(entries) >= self.total
        if keys is not None and (len(keys) >= self.per_host or (full and host in self._holding[self._most])):
            oldest, _ = keys.popitem(last=False)  # the host's own gives way: it holds as many
            del entries[oldest]
            keys[key] = None
            entries[key] = (host, at, value)
            return
        if full:
            self.pop(next(iter(self._hosts[next(iter(self._holding[self._most]))])))
        if keys is None:
            keys = self._hosts[host] = OrderedDict()
        keys[key] = None
        entries[key] = (host, at, value)
        self._count(host, len(keys) - 1, len(keys))

    def pop(self, key: K) -> V | None:
        """Forget ``key``; its value (None: none was kept)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        host = entry[0]
        keys = self._hosts[host]
        del keys[key]
        if not keys:
            del self._hosts[host]
        self._count(host, len(keys) + 1, len(keys))
        return entry[2]

    def expire(self, horizon: float) -> None:
        """Forget the entries put before ``horizon``."""
        entries = self._entries
        while entries:
            key, (_, at, _) = next(iter(entries.items()))
            if at >= horizon:
                return
            self.pop(key)

    def held(self, host: Hashable) -> Iterator[tuple[K, V]]:
        """The keys and values ``host`` holds, the newest first."""
        for key in reversed(self._hosts.get(host, {})):
            yield key, self._entries[key][2]

    def _count(self, host: Hashable, before: int, after: int) -> None:
        """``host`` holds ``after`` entries instead of ``before``."""
        holding = self._holding
        if before:
            bucket = holding[before]
            del bucket[host]
            if not bucket:
                del holding[before]
                if before == self._most:
                    self._most = after  # the host held the most alone: now one more or one less
        if after:
            added = holding.get(after)
            if added is None:
                added = holding[after] = OrderedDict()
            added[host] = None
            if after > self._most:
                self._most = after
