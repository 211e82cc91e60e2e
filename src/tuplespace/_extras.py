"""The optional parts of the package, and the extra that installs each.

``pip install pytuplespace`` installs the embedded space alone (in memory or in a
SQLite file; its only dependency is orjson).  Each other part needs its extra, and a
part used without it raises :class:`MissingExtra` (a :class:`ModuleNotFoundError`)
naming it: ``ts.Regex("^job-")`` without google-re2 raises ``MissingExtra: Regex
templates need the 're2' extra: pip install 'pytuplespace[re2]' (No module named
're2')``.  ``pip install 'pytuplespace[all]'`` installs every part.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "missing", "require"]

# Each extra: what needs it, and the top-level modules it installs that the package imports.
_SERVER = ("fastapi", "fastapi_offline", "httptools", "prometheus_client", "starlette", "uvicorn")
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "server": ("the server (tuplespace.server) needs", _SERVER),
    "client": ("remote spaces (tuplespace.client) need", ("httpx",)),
    "cli": ("the tuplespace command needs", ("typer", "rich")),
    "xpath": ("XPath templates and XML text need", ("lxml",)),
    "re2": ("Regex templates need", ("re2",)),
    "redis": ("spaces kept in Redis (tuplespace.stores) need", ("redis",)),
    # CoAP is the package's own; a node answers with the server's errors.
    "federation": ("nodes and coap:// spaces (tuplespace.Node) need", _SERVER),
    "oscore": ("OSCORE peers (tuplespace.Node and coap:// spaces given keys=...) need", ("cryptography",)),
    "active": ("methods held in records (tuplespace.Method) need", ("lupa",)),
}


class MissingExtra(ModuleNotFoundError):
    """A part of the package was used without the extra that installs what it needs."""


def missing(extra: str, error: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error to raise for ``error``, met importing the modules of ``extra``: a
    :class:`MissingExtra` naming the extra when the missing module is one the extra
    installs, else ``error`` itself (a missing module that no extra installs is a fault of
    the installation, not a choice)."""
    needs, modules = EXTRAS[extra]
    if (error.name or "").partition(".")[0] not in modules:
        return error
    return MissingExtra(
        f"{needs[0].upper()}{needs[1:]} the {extra!r} extra: pip install 'pytuplespace[{extra}]' ({error})",
        name=error.name,
    )


def require(extra: str, module: str) -> ModuleType:
    """``module``, imported; :class:`MissingExtra` naming ``extra`` if it is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing(extra, exc) from None
