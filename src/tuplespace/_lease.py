"""Leases: the time a tuple may stay in a space."""

from __future__ import annotations

from typing import Protocol

__all__ = ["AsyncLease", "Lease"]


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
