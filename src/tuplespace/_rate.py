"""Rate limits per client: one token bucket for each, in a bounded table."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets: each client may make ``burst`` requests at once, then ``rate``
    per second.  At most ``max_clients`` buckets are kept; past that the least
    recently seen client's is dropped (it starts again with a full bucket).

    >>> limiter = RateLimiter(rate=1.0, burst=2)
    >>> limiter.take("10.0.0.1"), limiter.take("10.0.0.1")
    (0.0, 0.0)
    >>> limiter.take("10.0.0.1") > 0        # seconds until its next token
    True
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0 or burst < 1 or max_clients < 1:
            raise ValueError(f"rate > 0, burst >= 1, max_clients >= 1; got {rate}, {burst}, {max_clients}")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, client: Hashable) -> float:
        """Take a token of ``client``'s bucket: 0.0 if there was one, else the seconds
        until there will be (nothing is taken)."""
        burst = float(self.burst)
        now = self._clock()
        tokens, stamp = self._buckets.pop(client, (burst, now))
        tokens = min(burst, tokens + (now - stamp) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens - 1.0, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return 0.0

    def statistics(self) -> dict[str, int]:
        """Clients with a bucket."""
        return {"clients": len(self._buckets)}
