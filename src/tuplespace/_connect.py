"""``connect``: the one place where a URL chooses how a space is run."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._space import Space

__all__ = ["connect"]

_INT_OPTIONS = {"capacity", "max_waiters", "max_subscribers", "event_retention", "seed"}
_STR_OPTIONS = {"order", "space", "durability"}


def _options(query: str) -> dict[str, Any]:
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


def connect(url: str = "memory:", **options: Any) -> Space:
    """Open the space that ``url`` names.

    - ``memory:`` — a new space in this process (``memory:?order=lifo`` sets options).
    - ``sqlite:///abs/path.db?space=jobs`` or ``sqlite:rel/path.db?space=jobs`` — a
      durable space in a SQLite file (many spaces per file; ``space`` defaults to
      ``default``; ``durability=normal|full``, see :mod:`tuplespace._sqlite`).
      Connecting twice to the same space in one process gives the same object.

    Keyword options (those of :class:`Space`) override options in the URL.

    >>> space = connect("memory:?order=lifo")
    >>> space.order
    'lifo'
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be str, not {type(url).__name__}")
    parts = urlsplit(url)
    merged = {**_options(parts.query), **options}
    if parts.scheme == "memory":
        if "space" in merged or "durability" in merged:
            raise ValueError("space= and durability= are options of durable stores, not of memory:")
        return Space(**merged)
    if parts.scheme == "sqlite":
        from ._sqlite import open_space

        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"{url!r} names no file: write sqlite:///absolute/path.db or sqlite:relative.db")
        return open_space(path, merged.pop("space", "default"), merged.pop("durability", "normal"), **merged)
    raise ValueError(f"unsupported space URL {url!r}: supported schemes are memory: and sqlite:")
