"""The memory store: ``memory:`` (``memory:?order=lifo``), a space in this process,
gone when it closes; a server's spaces kept this way last until it stops."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ._aio import AsyncSpace
from ._clock import SimulatedClock
from ._schemes import SPACE_OPTIONS, Scheme, url_options
from ._space import Space
from ._store import Hosted
from ._values import Limits

__all__ = ["SCHEME", "MemoryHost"]


def connect(url: str, options: dict[str, Any]) -> Space:
    """A new space with the options of ``url`` and ``options`` (which win)."""
    merged = {**url_options(urlsplit(url).query), **options}
    if "space" in merged or "durability" in merged:
        raise ValueError("space= and durability= are options of durable stores, not of memory:")
    return Space(**merged)


async def connect_async(url: str, options: dict[str, Any]) -> AsyncSpace:
    return AsyncSpace(connect(url, options))


class MemoryHost:
    """Spaces a server keeps in its memory, in no catalog: they end with the server."""

    label = "memory"
    simulated_clock = True

    def __init__(self, url: str, limits: Limits, base_uri: str) -> None:
        if url.partition(":")[2]:
            raise ValueError(f"{url!r}: a server's memory store takes no options (write memory:)")
        self._limits = limits
        self._base_uri = base_uri

    def catalog(self) -> dict[str, dict[str, Any]]:
        return {}

    def open(self, name: str, entry: dict[str, Any], new: bool) -> tuple[Hosted, dict[str, Any] | None]:
        options: dict[str, Any] = {k: entry[k] for k in SPACE_OPTIONS if k in entry}
        if entry.get("clock") == "simulated":  # moved by an admin (POST /spaces/{space}/clock)
            options["clock"] = SimulatedClock()
        space = Space(**options, limits=self._limits, name=name, base_uri=self._base_uri)
        return Hosted(AsyncSpace(space), space), None

    def drop(self, name: str, hosted: Hosted) -> None:
        assert hosted.space is not None
        hosted.space.close()

    def close(self) -> None:
        pass


SCHEME = Scheme(connect, connect_async, MemoryHost)
