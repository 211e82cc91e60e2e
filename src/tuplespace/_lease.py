"""Leases: the time a tuple may stay in a space."""

from __future__ import annotations

import math
from typing import Protocol

from ._errors import InvalidValue

__all__ = ["MIN_LEASE", "AsyncLease", "Lease", "check_lease"]

MIN_LEASE = 1e-6
"""The shortest lease, in seconds: one that a clock's time plus it always passes (a
shorter one, as 1e-300, would end before it began)."""


def check_lease(lease: float | None, what: str = "lease") -> float | None:
    """A lease in seconds as it is kept: None (forever, as ``math.inf``) or a number
    of seconds of at least :data:`MIN_LEASE`; InvalidValue naming ``what`` otherwise."""
    if lease is None or lease == math.inf:
        return None
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not lease >= MIN_LEASE:
        raise InvalidValue(
            f"{what} must be a positive number of seconds, at least {MIN_LEASE:g} (MIN_LEASE), "
            f"or None, got {lease!r}",
            what,
        )
    return lease


# A lease renews and cancels through its host (the space that wrote the tuple), whose
# methods for it stay private: on a space's public face they would read as a second
# way to renew a tuple.
class _LeaseHost(Protocol):
    def _renew(self, seq: int, seconds: float | None) -> float | None: ...

    def _cancel(self, seq: int) -> None: ...


class Lease:
    """The lease of a written tuple.

    ``expires_at`` is the expiry time in seconds since the epoch, or None for a
    tuple that stays until it is taken (forever really is forever).

    >>> lease = space.write(("presence", "node-7"), lease=30)   # doctest: +SKIP
    >>> lease.renew(30)      # 30 seconds from now                # doctest: +SKIP
    >>> lease.cancel()       # remove the tuple now                # doctest: +SKIP

    ``renew`` and ``cancel`` raise :class:`~tuplespace.UnknownLease` once the tuple
    has been taken, has expired or was cancelled.
    """

    __slots__ = ("_host", "expires_at", "seq")

    def __init__(self, host: _LeaseHost, seq: int, expires_at: float | None) -> None:
        self._host = host
        self.seq = seq
        self.expires_at = expires_at

    def renew(self, seconds: float | None) -> None:
        """Extend (or shorten) the lease to ``seconds`` from now; None means forever."""
        self.expires_at = self._host._renew(self.seq, seconds)  # noqa: SLF001 (the host's lease protocol, above)

    def cancel(self) -> None:
        """Remove the tuple from the space now."""
        self._host._cancel(self.seq)  # noqa: SLF001 (the host's lease protocol, above)

    def __repr__(self) -> str:
        return f"Lease(seq={self.seq}, expires_at={self.expires_at})"


class _AsyncLeaseHost(Protocol):
    async def _renew(self, seq: int, seconds: float | None) -> float | None: ...

    async def _cancel(self, seq: int) -> None: ...


class AsyncLease:
    """The lease of a tuple written through an asyncio space (:class:`~tuplespace.AsyncSpace`,
    :class:`~tuplespace.client.AsyncRemoteSpace`...); see :class:`Lease`, whose methods
    these are, awaited: a renewal that a durable space writes down waits off the event loop.

    >>> lease = await space.write(("presence", "node-7"), lease=30)   # doctest: +SKIP
    >>> await lease.renew(30)                                          # doctest: +SKIP
    """

    __slots__ = ("_host", "expires_at", "seq")

    def __init__(self, host: _AsyncLeaseHost, seq: int, expires_at: float | None) -> None:
        self._host = host
        self.seq = seq
        self.expires_at = expires_at

    async def renew(self, seconds: float | None) -> None:
        """Extend (or shorten) the lease to ``seconds`` from now; None means forever."""
        self.expires_at = await self._host._renew(self.seq, seconds)  # noqa: SLF001 (the host's lease protocol, above)

    async def cancel(self) -> None:
        """Remove the tuple from the space now."""
        await self._host._cancel(self.seq)  # noqa: SLF001 (the host's lease protocol, above)

    def __repr__(self) -> str:
        return f"AsyncLease(seq={self.seq}, expires_at={self.expires_at})"
