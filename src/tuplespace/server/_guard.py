"""What a web page may not make the server do: checks of every HTTP request's
``Host``, ``Origin`` and ``Content-Type`` before it reaches a handler.

- ``Host`` (DNS rebinding): a page of ``evil.example`` whose name the attacker makes
  resolve to 127.0.0.1 reaches the server as if it were its own origin, but its
  requests say ``Host: evil.example``.  A request is served when its Host is an IP
  address, ``localhost``, or a name of ``allowed_hosts`` (``*``: any); otherwise it
  is ``421 misdirected_request``.
- ``Origin``: any page may send some requests to any server without asking first
  (a form's POST, a ``text/plain`` body).  A request whose ``Origin`` is neither
  the server's own (the host and port of its ``Host``) nor one of the CORS origins
  is ``403 forbidden``, whatever its method, before anything acts.
- ``Content-Type``: a request body is JSON.  One sent as anything else (or with no
  type) is ``415 unsupported_media_type``: no page can send JSON to another origin
  without a CORS preflight.

A request body that arrives in parts is counted, while it does, in the server's
:class:`~tuplespace.server._budget.Budget`: past it, the handler reads no more of it
until bytes are freed (so uvicorn stops reading the connection).  A body of at most
``HIGH_WATER_LIMIT`` bytes (uvicorn reads that much of any body before the handler
asks for it) is not counted: it costs what every connection may cost.

The channel is no browser's: it has no Host, and its hello may carry an origin,
checked as an ``Origin`` header would be (:meth:`Policy.origin_error`).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT

from ._budget import Budget
from ._errors import ApiError

__all__ = ["Guard", "Policy", "error_response"]

_LOCAL_NAMES = frozenset({"localhost"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_response(error: ApiError) -> Response:
    """``error`` as an HTTP response: its status, its JSON body and its headers (``Retry-After``)."""
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers or None,
    )


class Policy:
    """The hosts a server answers for and the web origins it lets call it.

    ``allowed_hosts``: names beyond IP addresses and ``localhost`` (``*``: any);
    ``cors_origins``: origins like ``https://app.example`` (``*``: any).  Raises
    ValueError for a host that is not a name."""

    def __init__(self, allowed_hosts: Iterable[str], cors_origins: Iterable[str]) -> None:
        hosts = set(_LOCAL_NAMES)
        for name in allowed_hosts:
            if isinstance(name, str) and _is_address(name):
                continue  # addresses are always served
            if not isinstance(name, str) or not name or any(c in name for c in "/:@[] "):
                raise ValueError(f"an allowed host is a name like tuples.example (no port), not {name!r}")
            hosts.add(name.lower().rstrip("."))
        self.any_host = "*" in hosts
        self.hosts = frozenset(hosts)
        origins = [o.lower().rstrip("/") for o in cors_origins]
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)

    def host_error(self, host: str) -> ApiError | None:
        """Why a request with ``Host: host`` is refused, or None."""
        if self.any_host:
            return None
        name = _host_name(host)
        if name is None or name in self.hosts:
            return None
        return ApiError(
            421,
            "misdirected_request",
            f"this server does not serve the host {name!r}: it serves IP addresses, "
            f"{', '.join(sorted(self.hosts))} (tuplespace serve --allowed-host adds names)",
            "Host",
        )

    def origin_error(self, origin: str, host: str | None) -> ApiError | None:
        """Why a request from a page of ``origin`` is refused, or None: it is refused
        unless it comes from the server itself (``host`` is the request's Host) or from
        an origin CORS allows."""
        if self.any_origin:
            return None
        lowered = origin.lower()
        if lowered in self.origins:
            return None
        if host is not None and lowered.partition("://")[2] == host.lower():
            return None
        return ApiError(
            403,
            "forbidden",
            f"a page of origin {origin!r} may not call this server: it answers its own pages "
            "and those of the origins given with --cors-origin",
            "Origin",
        )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=256)
def _host_name(host: str) -> str | None:
    """The name in a Host header (without its port), or None for an IP address."""
    if host.startswith("["):
        literal, _, _ = host[1:].partition("]")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return host.lower()
        return None
    name, colon, port = host.rpartition(":")
    if not colon or not port.isdigit():
        name = host
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return name.lower().rstrip(".")
    return None


class Guard:
    """ASGI middleware: each HTTP request passes :class:`Policy` and the JSON body
    rule before ``app`` sees it, and its body is read within ``budget``."""

    def __init__(self, app: ASGIApp, policy: Policy, budget: Budget) -> None:
        self.app = app
        self.policy = policy
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error, large = self._error(scope)
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
            if large:
                budgeted = _Budgeted(self.budget, receive)
                try:
                    await self.app(scope, budgeted.receive, send)
                finally:
                    self.budget.release(budgeted)
                return
        await self.app(scope, receive, send)

    def _error(self, scope: Scope) -> tuple[ApiError | None, bool]:
        """Why the request is refused, or None; whether it has a body of more than
        ``HIGH_WATER_LIMIT`` bytes, or of a size not given."""
        host = origin = media_type = None
        body = large = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"content-type":
                media_type = value.decode("latin-1")
            elif name == b"content-length":
                size = value.strip()
                body = size != b"0"
                large = not (size.isdigit() and len(size) < 8 and int(size) <= HIGH_WATER_LIMIT)
            elif name == b"transfer-encoding":
                body = large = True
        policy = self.policy
        if host is not None:
            error = policy.host_error(host)
            if error is not None:
                return error, large
        if origin is not None:
            error = policy.origin_error(origin, host)
            if error is not None:
                return error, large
        if scope["method"] in _BODY_METHODS:
            if media_type is not None:
                if media_type.partition(";")[0].strip().lower() != "application/json":
                    return _not_json(f"not {media_type!r}"), large
            elif body:
                return _not_json("a body without one"), large
        return None, large


class _Budgeted:
    """The ``receive`` of a request with a body: the parts of its body received so
    far are held in the budget until the last one comes, and no more is received
    while the budget says wait."""

    __slots__ = ("_budget", "_held", "_receive")

    def __init__(self, budget: Budget, receive: Receive) -> None:
        self._budget = budget
        self._receive = receive
        self._held = 0

    async def receive(self) -> Message:
        message = await self._receive()
        budget = self._budget
        if message["type"] == "http.request" and message.get("more_body", False):
            self._held += len(message.get("body", b""))
            if not budget.hold(self, self._held):
                await budget.until_free(self)
        elif self._held:
            self._held = 0
            budget.hold(self, 0)
        return message


def _not_json(given: str) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        f"a request body is JSON, sent with Content-Type: application/json ({given})",
        "Content-Type",
    )
