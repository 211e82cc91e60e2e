"""Connections to a server's port (tuplespace.server._connections): deadlines, the
bound per client address, and bytes held only as they arrive; raw sockets against a
real server on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import json
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from helpers import PATIENCE, missing, wait_until
from tuplespace._framing import MAGIC, frame
from tuplespace.server import Server, ServerLimits, create_app
from tuplespace.server._connections import MAX_HEAD

MiB = 1 << 20
WRITE_HEAD = b"POST /spaces/s/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@contextlib.contextmanager
def server(**limits: Any) -> Iterator[Server]:
    """A server on a free port of 127.0.0.1 with these limits."""
    live = Server(create_app(limits=ServerLimits(**limits)), port=0)
    thread = live.start_in_thread()
    try:
        yield live
    finally:
        live.stop()
        thread.join(PATIENCE)


def connect(live: Server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(PATIENCE)
    try:
        sock.bind((source, 0))
    except OSError as exc:
        sock.close()
        missing(f"cannot connect from {source}, another loopback address: {exc}")
    sock.connect(("127.0.0.1", live.port))
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (an error if it
    keeps it open for PATIENCE seconds)."""
    received = b""
    with contextlib.closing(sock):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def http_error(answer: bytes, status: int) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), answer
    assert b"connection: close" in head.lower()
    error: dict[str, Any] = json.loads(body)["error"]
    return error


def frames(data: bytes) -> list[bytes]:
    out = []
    while data:
        size = int.from_bytes(data[:4], "big")
        out.append(data[4 : 4 + size])
        data = data[4 + size :]
    return out


def channel_error(answer: bytes, status: int) -> dict[str, Any]:
    *_, last = frames(answer)
    head, _, body = last.partition(b"\n")
    assert head == b"0 %d" % status, last
    error: dict[str, Any] = json.loads(body)["error"]
    return error


@pytest.fixture
def quick() -> Iterator[Server]:
    """A server whose connections wait for nothing long."""
    with server(read_timeout=0.3, idle_timeout=0.3) as live:
        yield live


def test_a_connection_that_says_nothing_is_closed(quick: Server) -> None:
    assert until_closed(connect(quick)) == b""


def test_an_idle_keep_alive_connection_is_closed(quick: Server) -> None:
    sock = connect(quick)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert until_closed(sock).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_head_that_stops_halfway_is_answered_408(quick: Server) -> None:
    sock = connect(quick)
    sock.sendall(b"GET /health HTTP/1.1\r\nHo")
    error = http_error(until_closed(sock), 408)
    assert (error["code"], error["limit"], error["maximum"]) == ("request_timeout", "read_timeout", 0.3)
    assert "head" in error["message"]


def test_a_body_that_stops_halfway_is_answered_408_and_nothing_is_written(quick: Server) -> None:
    sock = connect(quick)
    sock.sendall(WRITE_HEAD + b'Content-Length: 40\r\n\r\n{"tuple": ["x"')
    error = http_error(until_closed(sock), 408)
    assert (error["code"], error["limit"]) == ("request_timeout", "read_timeout")
    assert "body" in error["message"]
    answer = httpx.post(f"{quick.url}/spaces/s/count", json={"template": [{"$any": True}]}, timeout=PATIENCE)
    assert answer.json() == {"count": 0}


def test_a_channel_whose_frame_stops_halfway_is_closed_with_408(quick: Server) -> None:
    sock = connect(quick)
    sock.sendall(MAGIC + frame(b"{}") + (100).to_bytes(4, "big") + b"1 POST /spaces/s/count\n")
    answer = until_closed(sock)
    assert json.loads(frames(answer)[0])["server"] == "pytuplespace"
    assert channel_error(answer, 408)["limit"] == "read_timeout"
    hello = connect(quick)  # the hello is a frame too
    hello.sendall(MAGIC + b"\x00\x00")
    assert channel_error(until_closed(hello), 408)["code"] == "request_timeout"


def test_a_head_is_bounded_in_bytes(quick: Server) -> None:
    sock = connect(quick)
    with contextlib.suppress(ConnectionError):  # the server may close before it all went out
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Padding: " + b"a" * MAX_HEAD)
    error = http_error(until_closed(sock), 431)
    assert (error["code"], error["limit"], error["maximum"]) == ("value_too_large", "max_head", MAX_HEAD)


def test_a_frame_holds_only_the_bytes_that_came_and_only_until_its_deadline() -> None:
    part = b"x" * (4 * MiB)
    with server(read_timeout=2.0) as live:
        sock = connect(live)
        sock.sendall(MAGIC + frame(b"{}"))
        tracemalloc.start()
        try:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            sock.sendall((8 * MiB).to_bytes(4, "big") + b"1 POST /spaces/s/write\n")
            sock.sendall(part)
            wait_until(lambda: tracemalloc.get_traced_memory()[0] > before + len(part), "4 MiB held")
            assert channel_error(until_closed(sock), 408)["limit"] == "read_timeout"
            wait_until(lambda: tracemalloc.get_traced_memory()[0] < before + MiB, "the frame freed")
            # 8 MiB announced, 4 MiB sent: never more than what came was held.
            assert tracemalloc.get_traced_memory()[1] < before + len(part) + 2 * MiB
        finally:
            tracemalloc.stop()


def test_silent_sockets_of_one_address_are_bounded_and_others_are_served() -> None:
    with server(idle_timeout=600.0) as live, contextlib.ExitStack() as opened:  # the admitted stay open
        silent = [opened.enter_context(connect(live)) for _ in range(301)]
        refused = silent[64:]
        for sock in refused:  # past the default bound of 64: closed without a word
            assert until_closed(sock) == b""
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=PATIENCE)
        with other:
            try:
                assert other.get(f"{live.url}/health").status_code == 200
            except httpx.ConnectError as exc:
                missing(f"cannot connect from 127.0.0.2, another loopback address: {exc}")
        asking = connect(live)
        asking.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        error = http_error(until_closed(asking), 429)
        assert (error["code"], error["limit"], error["maximum"]) == ("limit_reached", "max_connections", 64)
        channel = connect(live)
        channel.sendall(MAGIC + frame(b"{}"))
        assert channel_error(until_closed(channel), 429)["limit"] == "max_connections"
        for sock in silent[:64]:
            sock.close()

        def admitted() -> bool:
            try:
                return httpx.get(f"{live.url}/health", timeout=PATIENCE).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(admitted, "a connection once the others closed")


def partly_sent(live: Server, parts: list[tuple[bytes, bytes]], answered: bytes) -> list[bytes]:
    """Send the first of each pair on a connection of its own, all at once; once the
    server reads only one of them (the others wait for the budget of
    ``max_partial_bytes``), check what it held, send the rest and return what each
    connection received until ``answered`` came."""
    rest_may_go = threading.Event()

    def send(sock: socket.socket, first: bytes, rest: bytes) -> None:
        sock.sendall(first)  # those the server does not read wait here, if the kernel's buffers fill
        rest_may_go.wait(PATIENCE)
        sock.sendall(rest)

    with contextlib.ExitStack() as opened, concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
        socks = [opened.enter_context(connect(live)) for _ in parts]
        sent = [pool.submit(send, sock, *pair) for sock, pair in zip(socks, parts, strict=True)]
        budget = live.api.budget
        try:
            wait_until(lambda: budget.statistics()["waiting"] == len(parts) - 1, "all but one wait")
            # The first goes on; the others read only while the budget had room, and
            # each at most one read (256 KiB) past it.
            most = max(len(first) for first, _ in parts) + budget.most + (len(parts) - 1) * MiB // 4
            assert budget.statistics()["held"] <= most
        finally:
            rest_may_go.set()
        for done in sent:
            done.result()
        answers = []
        for sock in socks:
            received = b""
            while answered not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            answers.append(received)
    return answers


def padded_write(n: int, size: int) -> bytes:
    """A write request's body of ``size`` bytes (JSON padded with spaces)."""
    body = json.dumps({"tuple": ["x", n]}).encode()
    return body + b" " * (size - len(body))


def test_half_sent_channel_frames_of_many_connections_hold_at_most_the_server_budget() -> None:
    with server(max_partial_bytes=MiB, read_timeout=PATIENCE) as live:
        parts = []
        for n in range(6):
            data = b"1 POST /spaces/s/write\n" + padded_write(n, 3 * MiB)
            whole = MAGIC + frame(b"{}") + frame(data)
            parts.append((whole[: 2 * MiB], whole[2 * MiB :]))
        for answer in partly_sent(live, parts, b"1 200\n"):
            assert len(frames(answer)) == 2, answer  # the welcome, the answer
        count = httpx.post(f"{live.url}/spaces/s/count", json={"template": ["x", {"$any": True}]})
        assert count.json() == {"count": 6}
        assert live.api.budget.statistics()["held"] == 0


def test_half_sent_http_bodies_of_many_connections_hold_at_most_the_server_budget() -> None:
    with server(max_partial_bytes=MiB, read_timeout=PATIENCE) as live:
        parts = []
        for n in range(6):
            body = padded_write(n, 3 * MiB)
            whole = WRITE_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
            parts.append((whole[: 2 * MiB], whole[2 * MiB :]))
        for answer in partly_sent(live, parts, b"\r\n\r\n"):
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
        count = httpx.post(f"{live.url}/spaces/s/count", json={"template": ["x", {"$any": True}]})
        assert count.json() == {"count": 6}
        assert live.api.budget.statistics()["held"] == 0
