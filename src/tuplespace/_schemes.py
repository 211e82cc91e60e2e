"""The stores a URL can name, by its scheme: one table, :data:`SCHEMES`.

Each store is one module holding a :class:`Scheme` named ``SCHEME``: how to open one
of its spaces for threads (:func:`tuplespace.connect`) and for asyncio
(:func:`tuplespace.connect_async`), and how a server or a node keeps its spaces in it
(``tuplespace serve --store URL``, ``Node(store=URL)``: a
:class:`~tuplespace._store.Store`; mypy checks that each store's is one).  A module
is imported when its scheme is first used, so a store's dependencies (``redis``) are
needed only by those who use it.  Adding a store is one module and one row of :data:`SCHEMES`.

``http://``, ``https://`` and ``coap://`` are not stores but ways to reach a space
another process keeps: :func:`tuplespace.connect` handles them itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ._store import Hosted, Store  # Hosted: named here for the stores that return one
from ._values import Limits

__all__ = ["SCHEMES", "SPACE_OPTIONS", "Hosted", "Scheme", "scheme", "url_options"]

SCHEMES: dict[str, str] = {
    "memory": "tuplespace._memory",
    "sqlite": "tuplespace._sqlite",
    "redis": "tuplespace.stores._host",
    "rediss": "tuplespace.stores._host",
    "redis+cluster": "tuplespace.stores._host",
    "rediss+cluster": "tuplespace.stores._host",
}
"""The module of the store of each URL scheme."""

SPACE_OPTIONS = (
    "order",
    "capacity",
    "event_retention",
    "event_retention_bytes",
    "charge_rate",
    "creation_charge",
    "operator",
    "mint_amount",
    "mint_bits",
    "redirect_charge",
    "firing_charge",
    "step_charge",
    "max_firings",
    "method_steps",
    "method_ms",
    "method_memory",
)
"""The options of a space a server keeps in its catalog entry (with its own: ``anonymous``)."""

_INT_OPTIONS = {
    "capacity",
    "max_waiters",
    "max_subscribers",
    "event_retention",
    "event_retention_bytes",
    "seed",
    "mint_bits",
    "max_firings",
    "method_steps",
    "method_ms",
    "method_memory",
}
_STR_OPTIONS = {
    "order",
    "space",
    "durability",
    "base_uri",
    "charge_rate",
    "creation_charge",
    "operator",
    "mint_amount",
    "redirect_charge",
    "firing_charge",
    "step_charge",
}


@dataclass(frozen=True)
class Scheme:
    """A store, as :data:`SCHEMES` finds it: ``connect(url, options)`` opens one of its
    spaces for threads, ``connect_async(url, options)`` for asyncio, and
    ``host(url, limits, base_uri)`` is the :class:`~tuplespace._store.Store` of a server that keeps its spaces
    there (``limits``: the limits of a tuple; ``base_uri``: the base URI of their records'
    addresses, a node's when they are served over CoAP too)."""

    connect: Callable[[str, dict[str, Any]], Any]
    connect_async: Callable[[str, dict[str, Any]], Awaitable[Any]]
    host: Callable[[str, Limits, str], Store]


def scheme(name: str) -> Scheme | None:
    """The store of the URL scheme ``name`` (``"sqlite"``), or None if there is none."""
    module = SCHEMES.get(name)
    if module is None:
        return None
    found: Scheme = importlib.import_module(module).SCHEME
    return found


def url_options(query: str) -> dict[str, Any]:
    """The options in the query of a ``memory:`` or ``sqlite:`` URL (``order=lifo&capacity=10``)."""
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name in _STR_OPTIONS:
            options[name] = value
        elif name in _INT_OPTIONS:
            try:
                options[name] = int(value)
            except ValueError:
                raise ValueError(f"option {name} must be an integer, got {value!r}") from None
        else:
            known = ", ".join(sorted(_STR_OPTIONS | _INT_OPTIONS))
            raise ValueError(f"unknown option {name!r} in the URL; known options: {known}")
    return options
