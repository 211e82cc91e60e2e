# Made from _async_transport.py by scripts/unasync.py: edit _async_transport.py, then run the script.
"""How a remote space reaches its server: the client transports.

A transport sends one request about a space and gives back the answer's status and
body (:meth:`HTTPTransport.request`), opens a stream of Server-Sent Events
(:meth:`HTTPTransport.stream`), and is closed with its space, which ends the
calls still waiting on it.  :class:`~tuplespace.client.RemoteSpace` picks one by
name from its ``TRANSPORTS`` (``transport=``):

- ``"http"`` (:class:`HTTPTransport`): every request over HTTP, on kept-alive
  connections;
- ``"channel"`` (:class:`ChannelTransport`, the default): requests on the server's
  channel (docs/http-api.md, "The channel"), over HTTP when the server has no channel
  or a request is large;
- ``"in-process"`` (:mod:`tuplespace.client._inprocess`): a server application in this
  process, called without sockets (chosen by ``app=``).

A new transport is a class with these methods, keyword options of its own, and an
entry in ``TRANSPORTS``.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._errors import SpaceClosed
from ._channel import ChannelRefused, Channels
from ._common import Sockets, logger, shutdown, tls_context, unreachable

__all__ = ["ChannelTransport", "HTTPTransport"]

_JSON = {"Content-Type": "application/json"}
# How much longer than the wait it asked for a call waits for the server's answer.
_ANSWER_MARGIN = 30.0
_LONGEST_ANSWER = 86_400.0  # waits longer than this wait for the answer without a limit
# Failures after which a request that changes nothing (or only takes under a claim)
# is sent again at once: a kept-alive connection the server had just closed.
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
# Requests larger than this go over HTTP: a channel gains them nothing.
_CHANNEL_MOST = 1 << 20


class HTTPTransport:
    """Every request over HTTP, with one :class:`httpx.Client` whose connections
    are reused; closing shuts its sockets down, which wakes the calls waiting on them.

    ``url`` is the space's (for error messages), ``base`` the server's base URL,
    ``headers`` go with every request and ``connect_timeout`` bounds making a connection
    and every answer that involves no waiting."""

    def __init__(
        self, url: str, base: str, headers: dict[str, str], connect_timeout: float, **options: Any
    ) -> None:
        if options:
            raise TypeError(f"the {type(self).__name__} takes no option {', '.join(sorted(options))}")
        self.url = url
        self.base = base
        self.headers = headers
        self.connect_timeout = connect_timeout
        self.timeout = httpx.Timeout(connect_timeout)
        self.closed = False
        self._sockets = Sockets()
        self._extensions = {"trace": self._trace}
        self.client = self.new_client()

    def new_client(self) -> httpx.Client:
        """A client to the server, with this transport's headers and timeouts."""
        return httpx.Client(
            base_url=self.base,
            headers=self.headers,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            verify=tls_context(),
        )

    def sync_client(self) -> httpx.Client:
        """A blocking client to the server, for what must be done outside an event loop
        (confirming claims when the space is dropped)."""
        return httpx.Client(
            base_url=self.base, headers=self.headers, timeout=self.timeout, verify=tls_context()
        )

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            self._sockets.add(info["return_value"])

    def answer_limit(self, wait: float | None) -> float | None:
        """How long to wait for the answer to a request the server may hold ``wait`` seconds."""
        if wait == 0:
            return self.connect_timeout
        return None if wait is None or wait > _LONGEST_ANSWER else wait + _ANSWER_MARGIN

    def request(
        self, method: str, path: str, content: bytes | None, wait: float | None, again: bool
    ) -> tuple[int, bytes]:
        """Send a request (``path`` from the server's root) and return the answer's status
        and body.  ``wait``: how long the server may hold it.  ``again``: the request may
        be sent a second time if the connection fails before an answer."""
        timeout = self.timeout
        if wait != 0:
            timeout = httpx.Timeout(self.connect_timeout, read=self.answer_limit(wait))
        while True:
            try:
                response = self.client.request(
                    method,
                    path,
                    content=content,
                    headers=_JSON if content is not None else None,
                    timeout=timeout,
                    extensions=self._extensions,
                )
                break
            except (httpx.TransportError, RuntimeError) as exc:
                if self.closed:
                    raise SpaceClosed("the space was closed while the call was waiting") from None
                if not (again and isinstance(exc, _STALE)):
                    raise unreachable(self.url, exc) from exc
                again = False
        return response.status_code, response.content

    def stream(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """Open a stream of Server-Sent Events (``GET path``): its response, not read yet."""
        request = self.client.build_request(
            "GET",
            path,
            params=params,
            headers=headers,
            timeout=httpx.Timeout(self.connect_timeout, read=None),
            extensions=self._extensions,
        )
        return self.client.send(request, stream=True)

    def interrupt(self, response: httpx.Response) -> None:
        """Wake a read of the stream ``response`` waiting in another task or thread (it
        ends as a broken stream), and tell the server its client went away."""
        stream = response.extensions.get("network_stream")
        if stream is not None:
            shutdown(stream.get_extra_info("socket"))

    def statistics(self) -> dict[str, Any]:
        """What the transport counts of its own (channels opened)."""
        return {"channels_opened": 0}

    def close(self) -> None:
        """End the calls still waiting (they raise) and close the connections."""
        self.closed = True
        self._sockets.shutdown()
        self.client.close()


class ChannelTransport(HTTPTransport):
    """Requests on the server's channel (:mod:`tuplespace.client._channel`), over HTTP
    when the server opens no channel or a request is larger than a mebibyte; streams
    of events over HTTP.  ``spin``: see :class:`~tuplespace.client.RemoteSpace`."""

    def __init__(
        self,
        url: str,
        base: str,
        headers: dict[str, str],
        connect_timeout: float,
        *,
        spin: float,
        **options: Any,
    ) -> None:
        super().__init__(url, base, headers, connect_timeout, **options)
        self._use_channel = True
        self._channels = Channels(base, headers, connect_timeout, spin)
        self._opened = 0

    def request(
        self, method: str, path: str, content: bytes | None, wait: float | None, again: bool
    ) -> tuple[int, bytes]:
        if not self._use_channel or (content is not None and len(content) > _CHANNEL_MOST):
            return super().request(method, path, content, wait, again)
        request = f"{method} {path}\n".encode() + (content or b"")
        while True:
            try:
                channel, fresh = self._channels.get()
            except ChannelRefused as exc:
                logger.info("%s opens no channel (%s): requests go over HTTP", self.base, exc)
                self._use_channel = False
                return super().request(method, path, content, wait, again)
            except OSError as exc:
                raise unreachable(self.url, exc) from exc
            if fresh:
                self._opened += 1
                self._sockets.add_socket(channel.socket)
            try:
                answer = channel.exchange(request, self.answer_limit(wait))
            except OSError as exc:  # broken, or no answer in time (TimeoutError)
                self._channels.failed(channel)
                if self.closed:
                    raise SpaceClosed("the space was closed while the call was waiting") from None
                if fresh or not again or isinstance(exc, TimeoutError):
                    raise unreachable(self.url, exc) from exc
                again = False
                continue
            except BaseException:  # cancelled: the request is withdrawn
                self._channels.failed(channel)
                raise
            self._channels.release(channel)
            return answer

    def statistics(self) -> dict[str, Any]:
        return {"channels_opened": self._opened}

    def close(self) -> None:
        self.closed = True
        self._channels.close()
        super().close()
