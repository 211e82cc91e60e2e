"""Running a server: uvicorn, with a shutdown that answers waiting calls first.

uvicorn waits for running requests to finish before it tells the application it
is shutting down, and long polls and event streams would hold it for as long as
they last.  :class:`Server` first tells the application (waiting calls answer
``{"tuple": null, "more": true}``, event streams end, new requests get 503), then
lets uvicorn finish, then the application closes its spaces.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from .._errors import StoreError
from ._app import create_app
from ._connections import connection_door
from ._service_api import Api

__all__ = ["Server", "listen", "run"]

logger = logging.getLogger("tuplespace.server")


class Server(uvicorn.Server):
    """A uvicorn server for an app made by :func:`create_app`.

    >>> server = Server(create_app(), port=0)          # doctest: +SKIP
    >>> thread = server.start_in_thread()              # doctest: +SKIP
    >>> server.url                                     # doctest: +SKIP
    'http://127.0.0.1:41237'
    >>> server.stop(); thread.join()                   # doctest: +SKIP

    ``port=0`` picks a free port; :attr:`url` and :attr:`port` tell which once
    :attr:`ready` is set.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8765, **config: Any) -> None:
        config.setdefault("log_level", "warning")
        config.setdefault("timeout_graceful_shutdown", 10)
        limits = app.state.api.limits
        config.setdefault("http", connection_door(app))  # HTTP, and the channel on the same port
        config.setdefault("timeout_keep_alive", limits.idle_timeout)
        config.setdefault("ws", "none")  # every connection stays with the door's protocols
        super().__init__(uvicorn.Config(app, host=host, port=port, **config))
        self.api: Api = app.state.api
        self.ready = threading.Event()
        self.port = port

    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                self.port = sock.getsockname()[1]
                break
        if self.started:
            logger.info("PyTupleSpace serving on %s", self.url)
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.api.begin_shutdown()
        await super().shutdown(sockets)

    def stop(self) -> None:
        """Ask the server to shut down (from any thread)."""
        self.should_exit = True

    def start_in_thread(self) -> threading.Thread:
        """Run the server in a new thread; return once it listens (RuntimeError if it
        could not start)."""
        thread = threading.Thread(target=self._run_quietly, name="tuplespace-server", daemon=True)
        thread.start()
        while not self.ready.wait(0.05):
            if not thread.is_alive():
                raise RuntimeError("the server did not start (its log says why)")
        return thread

    def _run_quietly(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when the app cannot start
            self.run()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """While serving in the main thread, SIGINT and SIGTERM shut down gracefully;
        then :meth:`run` returns (the signal is not raised again)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = [signal.SIGINT, signal.SIGTERM]
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run(host: str = "127.0.0.1", port: int = 8765, *, log_level: str = "info", **options: Any) -> None:
    """Serve spaces over HTTP until SIGINT or SIGTERM; ``options`` are those of
    :func:`create_app` (``host`` is added to its ``allowed_hosts``).  Raises
    :class:`tuplespace.StoreError` when the store cannot be opened (a data directory in
    use by another server or unreadable, a Redis that cannot be reached) and ``OSError``
    when the address cannot be listened on, before serving anything.

    >>> run(port=8765, data_dir="./tuplespace-data")      # doctest: +SKIP
    """
    app = create_app(allowed_hosts=(*options.pop("allowed_hosts", ()), host), **options)
    api: Api = app.state.api
    # The modules and the application live as long as the process: the cyclic garbage
    # collector stops walking them at each collection.  (Frozen before the spaces open: a
    # space dropped later is collected.)
    gc.collect()
    gc.freeze()
    # What cannot start fails here, before anything listens, rather than in uvicorn's
    # lifespan (which logs a traceback): the store, then the address.
    try:
        api.hub.start()
    except OSError as exc:
        raise StoreError(f"cannot open the store: {exc}") from None
    try:
        sock = listen(host, port)
    except BaseException:
        api.hub.close()
        raise
    server = Server(app, host=host, port=port, log_level=log_level)
    server.run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host`` and ``port`` (0: a free port); ``OSError`` if the
    address is in use or cannot be had."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.create_server((address, port), family=family, backlog=2048)
