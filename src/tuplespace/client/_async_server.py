"""The server-wide calls of a tuple space server: its health, its spaces and
its tokens (docs/http-api.md, "Spaces" and "Tokens").

>>> server = await tuplespace.connect_server_async("http://127.0.0.1:8765", token="...")  # doctest: +SKIP
>>> await server.create_space("jobs", order="lifo")                                      # doctest: +SKIP
>>> secret = (await server.tokens.create("worker", spaces={"jobs": ["take"]})).token    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from ._async import AsyncRemoteSpace
from ._common import (
    SpaceInfo,
    TokenInfo,
    check_port,
    error_from_answer,
    route,
    space_path,
    tls_context,
    unreachable,
)

__all__ = ["AsyncRemoteServer", "AsyncTokens"]


class AsyncRemoteServer:
    """A tuple space server (``tuplespace serve``) seen as a whole.

    ``token`` is sent as ``Authorization: Bearer <token>`` (creating and deleting
    spaces and tokens needs an ``admin`` one); ``connect_timeout`` bounds every call.
    ``server.tokens`` manages the server's tokens (:class:`AsyncTokens`).
    Errors are those of the embedded space (:class:`tuplespace.NotFound`,
    :class:`tuplespace.Unauthorized`, :class:`tuplespace.Forbidden`, ...), and
    :class:`tuplespace.Unreachable` when the server cannot be reached.
    """

    def __init__(self, url: str, *, token: str | None = None, connect_timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"{url!r} is not a server's http:// or https:// URL")
        check_port(url, parts)
        self.url = url.rstrip("/")
        self._token = token
        self._connect_timeout = connect_timeout
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=connect_timeout, verify=tls_context()
        )
        self.tokens = AsyncTokens(self._call)

    async def _call(self, operation: str, body: Mapping[str, Any] | None = None, **params: str) -> Any:
        """The answer to the request of ``operation`` (its name in the operation table of
        the HTTP API), ``params`` the parameters of its path."""
        method, path = route(operation, **params)
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        try:
            response = await self._client.request(method, path, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None
        if response.status_code >= 400:
            raise error_from_answer(response.status_code, response.content, self.url + path)
        return orjson.loads(response.content) if response.content else None

    async def health(self) -> dict[str, Any]:
        """``{"status": "ok", "version": ...}``; :class:`tuplespace.SpaceClosed` while
        the server stops."""
        answer: dict[str, Any] = await self._call("health")
        return answer

    async def spaces(self) -> list[SpaceInfo]:
        """The spaces the token may read, with their options and statistics."""
        answer = await self._call("list_spaces")
        return [SpaceInfo(s["name"], s["options"], s.get("statistics")) for s in answer["spaces"]]

    async def space_info(self, name: str) -> SpaceInfo:
        """One space's options and statistics (:class:`tuplespace.NotFound` if none)."""
        s = await self._call("get_space", space=name)
        return SpaceInfo(s["name"], s["options"], s.get("statistics"))

    async def create_space(self, name: str, **options: Any) -> SpaceInfo:
        """Create the space ``name`` with ``options`` (``order``, ``capacity``,
        ``event_retention``, ``store``, ``anonymous``, ``charge_rate``,
        ``creation_charge``, ``redirect_charge``, ``firing_charge``, ``step_charge``,
        ``max_firings``...: docs/http-api.md, "Spaces"); a space that exists with these
        options is left as it is, one with other options raises
        :class:`tuplespace.TupleSpaceError` (its ``code`` is ``space_exists``, its message
        names the first option that differs)."""
        s = await self._call("put_space", options, space=name)
        return SpaceInfo(s["name"], s["options"])

    async def delete_space(self, name: str) -> None:
        """Delete the space and its tuples (:class:`tuplespace.NotFound` if none)."""
        await self._call("delete_space", space=name)

    def space(self, name: str) -> AsyncRemoteSpace:
        """The space ``name`` of this server, with this server's token."""
        return AsyncRemoteSpace(
            self.url + space_path(name), token=self._token, connect_timeout=self._connect_timeout
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncRemoteServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncTokens:
    """The bearer tokens of a server (``server.tokens``); a server started without
    ``--tokens`` has none, and answers :class:`tuplespace.NotFound`."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call

    async def create(
        self,
        name: str,
        spaces: Mapping[str, Iterable[str]] | None = None,
        admin: bool = False,
        token: str | None = None,
    ) -> TokenInfo:
        """A new token ``name`` with permissions by space (``{"jobs": ["read",
        "take"]}``), ``admin`` or not; its secret is ``token`` (made up by the server
        when None) and is in the answer, the only time the server shows it."""
        body: dict[str, Any] = {"name": name, "admin": admin}
        if spaces is not None:
            body["spaces"] = {space: list(perms) for space, perms in spaces.items()}
        if token is not None:
            body["token"] = token
        t = await self._call("create_token", body)
        return TokenInfo(t["name"], t["admin"], t["spaces"], t["token"])

    async def list(self) -> list[TokenInfo]:
        """The tokens, without their secrets."""
        answer = await self._call("list_tokens")
        return [TokenInfo(t["name"], t["admin"], t["spaces"]) for t in answer["tokens"]]

    async def revoke(self, name: str) -> None:
        """Revoke the token ``name``: its next request is ``401``."""
        await self._call("revoke_token", name=name)
