"""``connect``: the one place where a URL chooses how a space is run."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._space import Space

__all__ = ["connect"]

_INT_OPTIONS = {"max_waiters", "seed"}
_STR_OPTIONS = {"order"}


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

    Keyword options (those of :class:`Space`) override options in the URL.

    >>> space = connect("memory:?order=lifo")
    >>> space.order
    'lifo'
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return Space(**{**_options(parts.query), **options})
    raise ValueError(f"unsupported space URL {url!r}: supported schemes are memory:")
