"""The channel: requests of the HTTP API as frames on a TCP connection to the
server's port, against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvloop

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_until
from tuplespace._framing import MAGIC, frame
from tuplespace._httpapi import OPERATIONS
from tuplespace.testing import LiveServer

Serve = Callable[..., LiveServer]

ADMIN = "admin-token-0123456789"
READER = "reader-token-0123456789"
TAKER = "taker-token-0123456789"
TOKENS = {
    "tokens": [
        {"name": "admin", "token": ADMIN, "admin": True},
        {"name": "reader", "token": READER, "spaces": {"*": ["read"]}},
        {"name": "taker", "token": TAKER, "spaces": {"*": ["read", "take"]}},
    ]
}


class Conn:
    """A channel spoken by hand: frames out, frames in."""

    def __init__(self, server: LiveServer, hello: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
        self.sock.sendall(MAGIC + frame(hello))
        self.file = self.sock.makefile("rb")

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def recv(self) -> bytes:
        """The next frame; ConnectionError once the server closed the channel."""
        head = self.file.read(4)
        if len(head) < 4:
            raise ConnectionError("closed")
        return self.file.read(int.from_bytes(head, "big"))

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def channel(server: LiveServer, token: str | None = None) -> Conn:
    conn = Conn(server, json.dumps({"authorization": f"Bearer {token}"} if token else {}).encode())
    welcome = json.loads(conn.recv())
    assert welcome["server"] == "pytuplespace"
    return conn


def send(ws: Conn, request_id: int, line: str, body: Any = None) -> None:
    ws.send(f"{request_id} {line}\n".encode() + (b"" if body is None else json.dumps(body).encode()))


def answer(ws: Conn) -> tuple[int, int, Any]:
    """The next answer: its request id, status and body."""
    head, _, data = ws.recv().partition(b"\n")
    request_id, status = head.split(b" ")
    return int(request_id), int(status), json.loads(data) if data else None


def ask(ws: Conn, line: str, body: Any = None) -> tuple[int, Any]:
    send(ws, 1, line, body)
    request_id, status, data = answer(ws)
    assert request_id == 1
    return status, data


@pytest.fixture
def ws(http_server: LiveServer) -> Iterator[Conn]:
    with channel(http_server) as conn:
        yield conn


def test_a_request_on_the_channel_is_the_request_over_http(http_server: LiveServer, ws: Conn) -> None:
    space = http_server.space_url().rpartition("/")[2]
    assert ask(ws, f"POST /spaces/{space}/write", {"tuple": ["job", 1, {"$float": "2.5"}]})[0] == 200
    status, answer = ask(
        ws, f"POST /spaces/{space}/read", {"template": ["job", {"$formal": "int"}, {"$any": True}]}
    )
    assert (status, answer) == (200, {"tuple": ["job", 1, {"$float": "2.5"}]})
    over_http = httpx.post(
        f"{http_server.url}/spaces/{space}/count", json={"template": ["job", 1, {"$any": True}]}
    )
    assert over_http.json() == {"count": 1}
    assert ask(ws, f"GET /spaces/{space}")[1]["statistics"]["tuples"] == 1
    assert ask(ws, f"DELETE /spaces/{space}") == (204, None)
    assert ask(ws, f"GET /spaces/{space}")[0] == 404


@pytest.mark.parametrize(
    ("line", "body", "status", "code", "field"),
    [
        ("POST /spaces/s/write", {"tuple": ["x", {"$nope": 1}]}, 400, "wire_error", "tuple[1]"),
        ("POST /spaces/s/write", {"tuple": ["x"], "colour": 1}, 400, "bad_request", "colour"),
        ("POST /spaces/s/leases/abc/renew", {}, 400, "bad_request", "lease_id"),
        ("GET /spaces/s/events", None, 400, "bad_request", None),
        ("POST /spaces/s/nowhere", {}, 404, "not_found", None),
        ("GET /spaces/s/write", None, 405, "method_not_allowed", None),
        ("write /spaces/s/write", {}, 400, "bad_request", None),
        ("POST spaces", {}, 400, "bad_request", None),
    ],
)
def test_bad_requests_get_the_errors_of_http(
    http_server: LiveServer,
    ws: Conn,
    line: str,
    body: Any,
    status: int,
    code: str,
    field: str | None,
) -> None:
    got, answer = ask(ws, line, body)
    assert (got, answer["error"]["code"], answer["error"]["field"]) == (status, code, field)
    method, _, path = line.partition(" ")
    if method.isupper() and path.startswith("/") and not path.endswith("/events"):
        over_http = httpx.request(method, http_server.url + path, json=body)
        error = over_http.json()["error"]
        assert (over_http.status_code, error["code"], error["field"]) == (status, code, field)
    # The channel stays open and nothing was written.
    assert ask(ws, "POST /spaces/s/count", {"template": ["x", {"$any": True}]})[1] == {"count": 0}


def test_each_operation_of_the_table_is_answered_on_the_channel_as_over_http(
    http_server: LiveServer, ws: Conn
) -> None:
    """Each operation, asked of a space that does not exist with a field it does not
    take: the channel finds its handler in the table and answers what HTTP answers."""
    params = {
        "space": "nowhere",
        "tx_id": "t1",
        "claim": "c1",
        "lease_id": "7",
        "name": "n",
        "principal": "p",
    }
    body = {"colour": 1}
    for op in OPERATIONS:
        path = op.path.format(**params)
        send(ws, 1, f"{op.method} {path}", body)
        head, _, data = ws.recv().partition(b"\n")
        status = int(head.split(b" ")[1])
        error = json.loads(data)["error"] if status >= 400 else {}
        if op.name in ("events", "record_events"):  # streams stay on HTTP
            assert (status, error["code"]) == (400, "bad_request")
            continue
        over_http = httpx.request(op.method, http_server.url + path, json=body, timeout=PATIENCE)
        assert not error.get("message", "").startswith("no route"), op.name
        expected = over_http.json()["error"] if over_http.status_code >= 400 else {}
        assert (status, error.get("code"), error.get("field")) == (
            over_http.status_code,
            expected.get("code"),
            expected.get("field"),
        ), op.name
        if op.fields and op.path.count("{") == 1 and op.name not in ("put_space", "revoke_capability"):
            assert (status, error["field"]) == (400, "colour"), op.name  # refused before acting
    assert ask(ws, "GET /spaces/nowhere")[0] == 404


def test_the_token_of_the_handshake_holds_for_every_request_and_its_revocation_at_once(serve: Serve) -> None:
    server = serve(tokens=TOKENS)
    with channel(server) as anonymous:
        assert ask(anonymous, "POST /spaces/s/count", {"template": []})[1]["error"]["code"] == "unauthorized"
    with channel(server, ADMIN) as admin, channel(server, READER) as reader:
        assert ask(admin, "POST /spaces/s/write", {"tuple": ["a"]})[0] == 200
        assert ask(reader, "POST /spaces/s/count", {"template": ["a"]}) == (200, {"count": 1})
        assert ask(reader, "POST /spaces/s/take", {"template": ["a"]})[1]["error"]["code"] == "forbidden"
        assert ask(admin, "DELETE /tokens/reader")[0] == 204
        assert ask(reader, "POST /spaces/s/count", {"template": ["a"]})[1]["error"]["code"] == "unauthorized"


def test_revoking_a_token_answers_its_waiting_requests_401_and_they_take_nothing(serve: Serve) -> None:
    server = serve(tokens=TOKENS)
    with channel(server, ADMIN) as admin, channel(server, TAKER) as taker:
        assert ask(admin, "PUT /spaces/s")[0] == 201
        send(taker, 1, "POST /spaces/s/take", {"template": ["late"], "timeout": None})
        send(taker, 2, "POST /spaces/s/take", {"template": ["late"], "timeout": None, "claim": True})
        wait_until(lambda: ask(admin, "GET /spaces/s")[1]["statistics"]["waiters"] == 2, "the takes to wait")
        assert ask(admin, "DELETE /tokens/taker")[0] == 204
        answers = sorted(answer(taker) for _ in range(2))
        assert [(rid, status, body["error"]["code"]) for rid, status, body in answers] == [
            (1, 401, "unauthorized"),
            (2, 401, "unauthorized"),
        ]
        assert ask(admin, "POST /spaces/s/write", {"tuple": ["late"]})[0] == 200
        assert ask(admin, "POST /spaces/s/count", {"template": ["late"]}) == (200, {"count": 1})


def test_a_channel_that_closes_while_its_take_waits_withdraws_the_wait(http_server: LiveServer) -> None:
    url = http_server.space_url()
    space = url.rpartition("/")[2]
    with ts.connect(url) as observer:
        assert observer.count(("late",)) == 0  # the space exists before its statistics are asked for
        with channel(http_server) as waiting:
            send(waiting, 1, f"POST /spaces/{space}/take", {"template": ["late"], "timeout": None})
            wait_until(lambda: observer.statistics()["waiters"] == 1, "the take to wait")
        wait_until(lambda: observer.statistics()["waiters"] == 0, "the wait to be withdrawn")
        observer.write(("late",))
        assert observer.count(("late",)) == 1


def test_requests_on_one_channel_are_answered_as_they_finish(http_server: LiveServer) -> None:
    url = http_server.space_url()
    space = url.rpartition("/")[2]
    # The observer creates the space: its statistics exist before the first take arrives.
    with channel(http_server) as ws, ts.connect(url, order="fifo") as observer:
        send(ws, 7, f"POST /spaces/{space}/take", {"template": ["job", {"$formal": "int"}], "timeout": None})
        send(ws, 8, f"POST /spaces/{space}/take", {"template": ["never"], "timeout": None})
        wait_until(lambda: observer.statistics()["waiters"] == 2, "both takes to wait")
        send(ws, 9, f"POST /spaces/{space}/count", {"template": ["job", {"$any": True}]})
        assert answer(ws) == (9, 200, {"count": 0})
        send(ws, 10, f"POST /spaces/{space}/write", {"tuple": ["job", 1]})
        answers = {answer(ws)[0:2], answer(ws)[0:2]}
        assert answers == {(7, 200), (10, 200)}
        # Cancelling withdraws the other take: nothing it could take is taken.
        ws.send(b"8 CANCEL")
        wait_until(lambda: observer.statistics()["waiters"] == 0, "the take to be withdrawn")
        observer.write(("never",))
        assert observer.count(("never",)) == 1


def test_a_request_without_an_id_closes_the_channel(ws: Conn) -> None:
    ws.send(b"POST /spaces/s/count\n{}")
    assert answer(ws)[:2] == (0, 400)
    with pytest.raises(ConnectionError):
        ws.recv()


@pytest.mark.parametrize("hello", [b"", b"[]", b"{", b'{"authorization": 7}'])
def test_a_channel_opens_with_a_hello(http_server: LiveServer, hello: bytes) -> None:
    with Conn(http_server, hello) as conn:
        request_id, status, body = answer(conn)
        assert (request_id, status, body["error"]["code"]) == (0, 400, "bad_request")
        with pytest.raises(ConnectionError):
            conn.recv()


def test_a_hello_from_a_web_page_of_another_origin_is_refused(serve: Serve) -> None:
    server = serve(cors_origins=["https://app.example"])
    with Conn(server, json.dumps({"origin": "http://evil.example"}).encode()) as refused:
        head, _, body = refused.recv().partition(b"\n")
        assert head == b"0 403"
        assert json.loads(body)["error"]["field"] == "Origin"
        with pytest.raises(ConnectionError):
            refused.recv()
    with Conn(server, json.dumps({"origin": "https://app.example"}).encode()) as allowed:
        assert json.loads(allowed.recv())["server"] == "pytuplespace"


def test_a_frame_past_the_limit_closes_the_channel(ws: Conn) -> None:
    ws.sock.sendall((64 << 20).to_bytes(4, "big") + b"1 POST /spaces/s/write\n")
    request_id, status, body = answer(ws)
    assert (request_id, status, body["error"]["limit"]) == (0, 413, "max_body")
    with pytest.raises(ConnectionError):
        ws.recv()


def test_http_and_channels_share_the_port(http_server: LiveServer, ws: Conn) -> None:
    assert httpx.get(http_server.url + "/health").json()["status"] == "ok"
    assert ask(ws, "GET /health")[1]["status"] == "ok"
    # A request that starts like the channel's first bytes but is not is HTTP's to refuse.
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=PATIENCE) as sock:
        sock.sendall(b"TUPLE /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 4")


def test_an_id_in_use_is_refused(http_server: LiveServer, ws: Conn) -> None:
    space = http_server.space_url().rpartition("/")[2]
    send(ws, 1, f"POST /spaces/{space}/take", {"template": ["never"], "timeout": None})
    send(ws, 1, f"POST /spaces/{space}/count", {"template": ["never"]})
    request_id, status, body = answer(ws)
    assert (request_id, status, body["error"]["message"]) == (1, 400, "this id is in use")


def test_the_binding_sends_its_requests_on_one_channel(http_server: LiveServer) -> None:
    with ts.connect(http_server.space_url()) as space:
        for i in range(20):
            space.write(("n", i))
        assert [space.take(("n", int)) for _ in range(20)] == [("n", i) for i in range(20)]
        stats = space.client_statistics()
    assert stats["channels_opened"] == 1
    assert stats["requests"] >= 40


def test_a_server_without_channels_is_used_over_http(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    plain = serve(uvicorn={"http": "httptools"})  # uvicorn's HTTP alone
    with caplog.at_level(logging.INFO, "tuplespace"), ts.connect(plain.space_url()) as space:
        space.write(("a", 1))
        assert space.take(("a", int)) == ("a", 1)
        assert space.client_statistics()["channels_opened"] == 0
    assert "opens no channel" in caplog.text


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_async_takes_share_one_channel(http_server: LiveServer, run: Callable[..., Any]) -> None:
    async def main() -> dict[str, Any]:
        space = await ts.connect_async(http_server.space_url())
        async with space:
            await space.write(("ready",))  # makes the space
            takers = [asyncio.create_task(space.take(("t", i), timeout=PATIENCE)) for i in range(50)]
            while (await space.statistics())["waiters"] < 50:
                await asyncio.sleep(0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(space.take(("never",)), 0.05)  # given up on: withdrawn
            await space.write_many([("t", i) for i in reversed(range(50))])
            assert await asyncio.gather(*takers) == [("t", i) for i in range(50)]
            assert (await space.statistics())["waiters"] == 0
            return space.client_statistics()

    stats = run(main())
    assert stats["channels_opened"] == 1


def test_blocked_takes_on_many_channels_are_each_answered(http_server: LiveServer) -> None:
    with ts.connect(http_server.space_url()) as space:
        takers = [spawn(space.take, ("t", i), PATIENCE) for i in range(8)]
        wait_until(lambda: space.statistics()["waiters"] == 8, "the takes to wait")
        space.write_many([("t", i) for i in reversed(range(8))])
        assert [f.result(PATIENCE) for f in takers] == [("t", i) for i in range(8)]
        assert space.client_statistics()["channels_opened"] == 9


@pytest.mark.parametrize("run", [None, asyncio.run], ids=["sync", "async"])
def test_a_channel_whose_answer_does_not_come_gives_up_in_time(run: Callable[..., Any] | None) -> None:
    """A server that opens the channel and then answers nothing: a call that does
    not wait fails with Unreachable after connect_timeout, it does not hang."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        held: list[socket.socket] = []

        def accept() -> None:
            conn, _ = listener.accept()
            held.append(conn)
            conn.recv(1 << 16)  # the magic and the hello
            conn.sendall(frame(b'{"server": "pytuplespace"}'))

        url = f"http://127.0.0.1:{port}/spaces/jobs"
        acceptor = spawn(accept)
        try:
            if run is None:
                with ts.connect(url, connect_timeout=0.3) as space, pytest.raises(ts.Unreachable):
                    space.count(("job", 1))
            else:

                async def main() -> None:
                    async with await ts.connect_async(url, connect_timeout=0.3) as space:
                        with pytest.raises(ts.Unreachable):
                            await space.count(("job", 1))

                run(main())
            acceptor.result(PATIENCE)
        finally:
            for conn in held:
                conn.close()


@pytest.mark.parametrize("spin", [0, 0.005])
def test_a_sync_call_gets_its_answer_whether_it_comes_while_it_spins_or_after(
    http_server: LiveServer, spin: float
) -> None:
    """A sync call checks for its answer ``spin`` seconds before it sleeps: answers
    that come at once, and answers that come after it slept, are each received."""
    url = http_server.space_url()
    with ts.connect(url, spin=spin) as space, ts.connect(url) as other:
        for i in range(30):
            space.write(("quick", i))
            assert space.take(("quick", int)) == ("quick", i)
        for i in range(3):  # each take waits for a write from another client
            taker = spawn(space.take, ("slow", i), PATIENCE)
            wait_until(lambda: other.statistics()["waiters"] == 1, "the take to wait")
            other.write(("slow", i))
            assert taker.result(PATIENCE) == ("slow", i)
            assert space.try_take(("quick", ts.ANY)) is None
        assert space.client_statistics()["channels_opened"] <= 2  # the thread's, and the taker's


def test_spin_is_checked() -> None:
    for bad in (-1, 0.5, "0.001", True, float("nan")):
        with pytest.raises(ts.InvalidValue, match="spin"):
            ts.connect("http://127.0.0.1:9/spaces/jobs", spin=bad)
