"""The Python examples of README.md and docs/ run, so none can rot.

Every ```` ```python ```` block of a document runs, in order, in one namespace per document
(a block may use what an earlier one made), in a temporary working directory, with ``ts``
imported.  Addresses of the servers the examples name are those of real servers the tests
start: ``http://127.0.0.1:8765`` is a server on 127.0.0.1 whose admin token is ``ADMIN_TOKEN``
(a name the examples may use), ``redis://127.0.0.1:6379/0`` a redis-server,
``redis+cluster://127.0.0.1:7000`` a Redis Cluster, and the CoAP
nodes of ``coap://127.0.0.1:5683/`` and ``:5684/`` listen on free ports.  Top-level
``await`` runs on an event loop.  A block that is a sketch, not a program (two parties that
run at once, a path of the reader's machine), says so on the line before it:
``<!-- not run: why -->``; the reason is required.  The shell and JavaScript blocks run in
tests/test_doc_commands.py.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import socket
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from docblocks import ADMIN_TOKEN, DOCUMENTS, ROOT, Block, blocks
from tuplespace.testing import LiveServer


def _runnable() -> list[Path]:
    return [d for d in DOCUMENTS if any(b.not_run is None for b in blocks(d, {"python"}))]


@pytest.fixture(scope="module")
def docs_server() -> Iterator[LiveServer]:
    tokens = {"tokens": [{"name": "admin", "token": ADMIN_TOKEN, "admin": True}]}
    with LiveServer(store="memory", tokens=tokens) as server:
        yield server


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def addresses(docs_server: LiveServer, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """What a block's text becomes: the addresses it names, those of real servers."""
    coap_ports = {5683: _free_udp_port(), 5684: _free_udp_port()}

    def rewrite(code: str) -> str:
        code = code.replace("http://127.0.0.1:8765", docs_server.url)
        for port, free in coap_ports.items():
            code = code.replace(f"coap://127.0.0.1:{port}/", f"coap://127.0.0.1:{free}/")
        if "redis://127.0.0.1:6379" in code:
            code = code.replace("redis://127.0.0.1:6379/0", request.getfixturevalue("redis_server").url)
        if "redis+cluster://127.0.0.1:7000" in code:
            cluster = request.getfixturevalue("redis_cluster").url
            code = code.replace("redis+cluster://127.0.0.1:7000", cluster)
        return code

    return rewrite


@pytest.mark.parametrize("document", _runnable(), ids=lambda d: str(d.relative_to(ROOT)))
def test_the_examples_of_a_document_run(
    document: Path, addresses: Callable[[str], str], tmp_path: Path
) -> None:
    namespace: dict[str, Any] = {"ts": ts, "ADMIN_TOKEN": ADMIN_TOKEN, "__name__": "__docs__"}
    loop = asyncio.new_event_loop()  # one per document: what an async example opens stays usable
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks(document, {"python"}):
            if block.not_run is None:
                _run(block, addresses(block.code), namespace, loop)
    finally:
        os.chdir(cwd)
        for value in namespace.values():
            _close(value, loop)
        loop.close()


def _run(block: Block, code: str, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
    where = block.where
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    try:
        result = eval(compiled, namespace)  # the project's own documents, never network input
        if inspect.iscoroutine(result):
            loop.run_until_complete(result)
    except Exception as exc:
        raise AssertionError(f"the example at {where} fails: {type(exc).__name__}: {exc}") from exc


def _close(value: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Close what an example left open (a space, a server, a subscription)."""
    if isinstance(value, (type, types.ModuleType, types.FunctionType)):
        return
    close = getattr(value, "close", None)
    if callable(close):
        done = close()
        if inspect.isawaitable(done):
            loop.run_until_complete(done)
