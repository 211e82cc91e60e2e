"""The Python binding against real servers on 127.0.0.1: what the contract tests
cannot show — connections, errors as the server answers them, long polls asked
again, claims, reconnecting event streams, the async handles.

Where a test must see or break connections, a TCP proxy of its own stands between
the binding and the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace import ANY
from tuplespace.client import (
    AsyncLease,
    AsyncRemoteSpace,
    AsyncRemoteSubscription,
    AsyncRemoteTransaction,
    RemoteSpace,
)
from tuplespace.client._common import error_code, error_from_answer
from tuplespace.server import ServerLimits

Serve = Callable[..., Any]


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a server.  It counts the connections it
    accepts; :meth:`cut` breaks all of them; :meth:`hold` keeps new ones waiting until
    :meth:`release`; with ``swallow`` set it drops what the server answers, cuts the
    connection, and cuts new connections at once."""

    def __init__(self, server: Any) -> None:
        self._target = server.port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        self.swallow = False
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def space_url(self, name: str) -> str:
        return f"{self.url}/spaces/{name}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._open.wait()
        if self.swallow:
            _cut(client)
            return
        upstream = socket.create_connection(("127.0.0.1", self._target))
        with self._lock:
            self._sockets += [client, upstream]
        threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
        self._pipe(upstream, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.swallow:
                    break
                sink.sendall(data)
        except OSError:
            pass
        _cut(source)
        _cut(sink)

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _cut(sock)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._listener.close()
        self.release()
        self.cut()


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxy(http_server: Any) -> Iterator[Proxy]:
    p = Proxy(http_server)
    yield p
    p.close()


def new_name() -> str:
    return "client-" + uuid.uuid4().hex[:12]


@pytest.fixture
def url(http_server: Any) -> Iterator[str]:
    """The URL of a new space on the session's server (deleted after the test)."""
    space_url = http_server.space_url()
    ts.connect(space_url, store="memory").close()
    yield space_url
    http_server.delete(space_url)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- connecting ------------------------------------------------------------------------------


def test_connect_chooses_the_binding_by_url(url: str) -> None:
    with ts.connect(url) as space:
        assert isinstance(space, RemoteSpace)
        space.write(("hello",))

    async def main() -> None:
        remote = await ts.connect_async(url)
        assert isinstance(remote, AsyncRemoteSpace)
        assert await remote.take(("hello",)) == ("hello",)
        await remote.close()
        local = await ts.connect_async("memory:?order=lifo")
        assert isinstance(local, ts.AsyncSpace)
        assert local.space.order == "lifo"
        await local.close()

    run(main())


def test_connect_async_opens_durable_spaces(tmp_path: Any) -> None:
    async def main() -> None:
        space = await ts.connect_async(f"sqlite:///{tmp_path}/spaces.db?space=jobs")
        assert isinstance(space, ts.AsyncSpace)
        await space.write(("job", 1))
        assert await space.take(("job", int)) == ("job", 1)
        await space.close()

    run(main())


@pytest.mark.parametrize(
    "bad",
    [
        "http://127.0.0.1:1/",
        "http://127.0.0.1:1/spaces/",
        "http://127.0.0.1:1/spaces/a?order=lifo",
        "http:///x",
    ],
)
def test_a_remote_url_must_name_a_space(bad: str) -> None:
    with pytest.raises(ValueError, match=r"URL|space"):
        ts.connect(bad)


def test_options_create_the_space_and_must_agree_with_it(http_server: Any) -> None:
    space_url = http_server.space_url()
    with ts.connect(space_url, order="lifo", capacity=5) as space:
        space.write_many([("n", 1), ("n", 2)])
        assert space.read(("n", int)) == ("n", 2)
        stats = space.statistics()
        assert (stats["order"], stats["capacity"]) == ("lifo", 5)
    with ts.connect(space_url, order="lifo") as again:
        assert again.count(("n", int)) == 2
    with pytest.raises(ts.Conflict, match="order") as info:
        ts.connect(space_url, order="fifo")
    assert error_code(info.value) == "space_exists"
    http_server.delete(space_url)


def test_calls_reuse_one_connection(proxy: Proxy, http_server: Any) -> None:
    name = new_name()
    with ts.connect(proxy.space_url(name), store="memory", confirm_delay=PATIENCE) as space:
        space.write_many([("n", i) for i in range(10)])
        for i in range(10, 20):
            space.write(("n", i))
        assert space.count(("n", int)) == 20
        assert space.read(("n", 0)) == ("n", 0)
        assert [space.take(("n", int)) for _ in range(5)] == [("n", i) for i in range(5)]
        assert len(space.take_all(("n", int))) == 15
        space.statistics()
    assert proxy.accepted == 1

    async def main() -> None:
        space = await ts.connect_async(proxy.space_url(name), confirm_delay=PATIENCE)
        for i in range(10):
            await space.write(("m", i))
        assert [await space.take(("m", int)) for _ in range(10)] == [("m", i) for i in range(10)]
        await space.close()

    run(main())
    assert proxy.accepted == 2
    http_server.delete(http_server.space_url(name))


# -- errors ----------------------------------------------------------------------------------


def test_invalid_values_fail_before_they_travel(url: str) -> None:
    with ts.connect(url) as space:
        with pytest.raises(ts.InvalidValue) as info:
            space.write(("a", {"temp": float("nan")}))
        assert info.value.path == '[1]["temp"]'
        with pytest.raises(ts.InvalidTemplate) as template_info:
            space.read_all(("a", ts.Pred(bool)))
        assert template_info.value.path == "[1]"
        assert "wire form" in str(template_info.value)
        with pytest.raises(ts.InvalidValue):
            space.write(("a",), lease=float("nan"))
        with pytest.raises(ts.InvalidValue):
            space.take(("a",), timeout=-1)
        assert space.statistics()["tuples"] == 0


def deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = (value,)
    return value


def test_errors_the_server_finds_are_raised_as_the_embedded_space_raises_them(url: str) -> None:
    embedded = ts.Space()
    with ts.connect(url) as space:
        too_deep = ("a", deep(40))
        with pytest.raises(ts.ValueTooLarge) as remote:
            space.write(too_deep)
        with pytest.raises(ts.ValueTooLarge) as local:
            embedded.write(too_deep)
        assert (remote.value.limit, remote.value.maximum, remote.value.path) == (
            local.value.limit,
            local.value.maximum,
            local.value.path,
        )
        with pytest.raises(ts.ValueTooLarge) as remote:
            space.write_many([("ok",), too_deep])
        assert remote.value.path.startswith("tuples[1][1]")

        lease = space.write(("job", 1), lease=60)
        lease.cancel()
        with pytest.raises(ts.UnknownLease) as lease_info:
            lease.renew(10)
        assert isinstance(lease_info.value, LookupError)

        with pytest.raises(ts.InvalidValue) as since_info:
            space.subscribe(("a",), since=space.statistics()["last_event"] + 5)
        assert since_info.value.path == "since"


def test_full_spaces_and_busy_clients_raise_limit_reached(serve: Serve) -> None:
    server = serve(limits=ServerLimits(max_waiting=1))
    with ts.connect(server.space_url(), capacity=1) as space:
        space.write(("a",))
        with pytest.raises(ts.SpaceFull) as full:
            space.write(("b",), timeout=0)
        assert isinstance(full.value, ts.LimitReached)
        with pytest.raises(ts.Timeout):
            space.write(("b",), timeout=0.01)
        waiter = spawn(space.take, ("c",))
        wait_for_waiters(space, 1)
        with pytest.raises(ts.LimitReached) as busy:
            space.read(("d",))
        assert (busy.value.limit, busy.value.maximum) == ("max_waiting", 1)
        assert space.try_take(("a",)) == ("a",)
        space.write(("c",), timeout=0)
        assert waiter.result(PATIENCE) == ("c",)


TOKENS = {
    "tokens": [
        {"name": "admin", "token": "admin-token-0123456789", "admin": True},
        {"name": "reader", "token": "reader-token-0123456789", "spaces": {"*": ["read"]}},
    ]
}


def test_tokens_are_sent_and_refusals_raised(serve: Serve) -> None:
    server = serve(tokens=TOKENS)
    space_url = server.space_url()
    with ts.connect(space_url, token="admin-token-0123456789", store="memory") as admin:
        admin.write(("job", 1))
    with ts.connect(space_url, token="reader-token-0123456789") as reader:
        assert reader.read(("job", int)) == ("job", 1)
        with pytest.raises(ts.Forbidden, match="'reader' may not take") as forbidden:
            reader.take(("job", int))
        assert isinstance(forbidden.value, PermissionError)
    with ts.connect(space_url) as anonymous, pytest.raises(ts.Unauthorized, match="needs a token") as refused:
        anonymous.count(("job", int))
    assert isinstance(refused.value, PermissionError)
    with ts.connect(server.space_url(), token="reader-token-0123456789") as missing:
        with pytest.raises(ts.NotFound, match="no space") as info:
            missing.count(("job", int))
        assert isinstance(info.value, LookupError)


def test_an_unknown_error_code_is_a_tuple_space_error() -> None:
    body = orjson.dumps({"error": {"code": "teapot", "message": "I am a teapot", "field": None}})
    error = error_from_answer(418, body, "http://x/spaces/y")
    assert type(error) is ts.TupleSpaceError
    assert "teapot" in str(error)
    garbled = error_from_answer(502, b"<html>bad gateway</html>", "http://x/spaces/y")
    assert type(garbled) is ts.TupleSpaceError
    assert "502" in str(garbled)


def test_a_server_that_is_gone_is_said_to_be_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    with ts.connect(f"http://127.0.0.1:{port}/spaces/jobs", connect_timeout=PATIENCE) as space:
        with pytest.raises(ts.Unreachable, match="cannot reach") as info:
            space.write(("job", 1))
        assert isinstance(info.value, ConnectionError)


# -- waiting ---------------------------------------------------------------------------------


def test_a_wait_longer_than_the_servers_long_poll_is_asked_again(serve: Serve) -> None:
    server = serve(long_poll=0.02)
    space_url = server.space_url()
    with ts.connect(space_url, store="memory") as space, ts.connect(space_url) as writer:
        taker = spawn(space.take, ("job", int))
        wait_until(lambda: space.client_statistics()["long_polls_reissued"] >= 3, "long polls asked again")
        writer.write(("job", 1))
        assert taker.result(PATIENCE) == ("job", 1)
        with pytest.raises(ts.Timeout):
            space.read(("nothing",), timeout=0.1)

    async def main() -> None:
        space = await ts.connect_async(space_url)
        taker = asyncio.ensure_future(space.read(("later",), timeout=PATIENCE))
        while space.client_statistics()["long_polls_reissued"] < 3:
            await asyncio.sleep(0.01)
        await space.write(("later",))
        assert await taker == ("later",)
        await space.close()

    run(main())


@pytest.mark.parametrize("op", ["read_all", "take_all"])
def test_a_group_wait_longer_than_the_servers_long_poll_is_asked_again(serve: Serve, op: str) -> None:
    server = serve(long_poll=0.02)
    space_url = server.space_url()
    with ts.connect(space_url, store="memory") as space, ts.connect(space_url) as writer:
        waiting = spawn(getattr(space, op), ("job", int), limit=2, timeout=None)
        wait_until(lambda: space.client_statistics()["long_polls_reissued"] >= 3, "long polls asked again")
        writer.write_many([("job", 1), ("job", 2), ("job", 3)])
        assert waiting.result(PATIENCE) == [("job", 1), ("job", 2)]
        assert getattr(space, op)(("nothing",), timeout=0.1) == []


def test_a_waiting_take_all_is_claimed_and_confirmed(serve: Serve) -> None:
    server = serve(claim_lease=600)
    space_url = server.space_url()
    with ts.connect(space_url, store="memory") as other:
        with ts.connect(space_url, confirm_delay=3600) as space:
            waiting = spawn(space.take_all, ("job", int), timeout=PATIENCE * 10)
            wait_for_waiters(other, 1)
            other.write_many([("job", 1), ("job", 2)])
            assert waiting.result(PATIENCE) == [("job", 1), ("job", 2)]
            assert other.statistics()["transactions"] == 1  # the claim, not yet confirmed
        assert other.statistics()["transactions"] == 0  # confirmed as the space closed
        assert other.read_all(("job", int)) == []


def test_closing_wakes_a_waiting_take_and_its_tuple_stays(serve: Serve) -> None:
    server = serve(claim_lease=0.5)
    space_url = server.space_url()
    with ts.connect(space_url, store="memory") as other:
        space = ts.connect(space_url)
        taker = spawn(space.take, ("job", int))
        wait_for_waiters(other, 1)
        space.close()
        with pytest.raises(ts.SpaceClosed):
            taker.result(PATIENCE)
        other.write(("job", 1))
        assert other.take(("job", int), timeout=PATIENCE) == ("job", 1)


def test_tuples_of_a_take_all_whose_answer_is_lost_return_to_the_space(serve: Serve) -> None:
    server = serve(claim_lease=0.3)
    cutter = Proxy(server)
    name = new_name()
    try:
        with (
            ts.connect(server.space_url(name), store="memory") as other,
            ts.connect(cutter.space_url(name)) as space,
        ):
            other.write_many([("job", i) for i in range(5)])
            assert space.take_all(("job", int), limit=2) == [("job", 0), ("job", 1)]
            cutter.swallow = True
            with pytest.raises(ts.Unreachable):
                space.take_all(("job", int))
            # The lost take_all confirmed the first one's claim on its way, then took the
            # other three under a claim of its own, which runs out: they come back in order.
            back = [other.take(("job", int), timeout=PATIENCE) for _ in range(3)]
            assert back == [("job", 2), ("job", 3), ("job", 4)]
            assert other.count(("job", int)) == 0
    finally:
        cutter.close()


def test_a_taken_tuple_whose_answer_is_lost_returns_to_the_space(serve: Serve) -> None:
    server = serve(claim_lease=0.3)
    cutter = Proxy(server)
    name = new_name()
    try:
        with (
            ts.connect(server.space_url(name), store="memory") as other,
            ts.connect(cutter.space_url(name)) as space,
        ):
            taker = spawn(space.take, ("job", int))
            wait_for_waiters(other, 1)
            cutter.swallow = True
            other.write(("job", 1))  # handed to the waiting take, whose answer never arrives
            with pytest.raises(ts.Unreachable, match="cannot reach"):
                taker.result(PATIENCE)
            assert other.take(("job", int), timeout=PATIENCE) == ("job", 1)
            assert other.statistics()["tuples"] == 0
    finally:
        cutter.close()


def test_claims_are_confirmed_riding_on_the_next_take_or_alone(url: str) -> None:
    with ts.connect(url, confirm_delay=PATIENCE) as space:
        space.write_many([("job", i) for i in range(3)])
        assert space.take(("job", int)) == ("job", 0)
        assert space.client_statistics()["unconfirmed_claims"] == 1
        assert space.take(("job", int)) == ("job", 1)
        stats = space.client_statistics()
        assert (stats["unconfirmed_claims"], stats["claims_confirmed_riding"]) == (1, 1)
        assert space.try_take(("nothing",)) is None
        stats = space.client_statistics()
        assert (stats["unconfirmed_claims"], stats["claims_confirmed_riding"]) == (0, 2)

    with ts.connect(url, confirm_delay=0.01) as space:
        assert space.take(("job", int)) == ("job", 2)
        wait_until(lambda: space.client_statistics()["claims_confirmed_alone"] == 1, "a confirmation")
        assert space.client_statistics()["unconfirmed_claims"] == 0

    with ts.connect(url, confirm_delay=PATIENCE) as space:
        space.write(("job", 3))
        assert space.take(("job", int)) == ("job", 3)
    assert space.client_statistics()["claims_confirmed_alone"] == 1  # on close
    with ts.connect(url) as other:
        assert other.statistics()["tuples"] == 0
        assert other.statistics()["transactions"] == 0


@pytest.mark.parametrize("channel", [True, False], ids=["channel", "http"])
def test_read_all_and_take_all_gather_answers_cut_in_bytes(serve: Serve, channel: bool) -> None:
    server = serve(limits=ServerLimits(max_answer=1000))  # about 3 of these tuples an answer
    big = "x" * 300
    expected = [("n", i, big) for i in range(10)]
    template = ("n", int, str)
    for order, seen in (("fifo", expected), ("lifo", expected[::-1])):
        with ts.connect(server.space_url(), store="memory", order=order, channel=channel) as space:
            space.write_many(expected)
            assert space.read_all(template) == seen
            assert space.read_all(template, limit=5) == seen[:5]
            assert [len(page) for page in space.read_pages(template)] == [3, 3, 3, 1]
            with space.transaction() as tx:
                assert tx.take_all(template, limit=4) == seen[:4]
                with pytest.raises(ts.LimitReached):
                    tx.read_all(template)
            assert space.take_all(template, limit=5) == seen[4:9]
            assert space.take_all(template) == seen[9:]
            assert space.count(template) == 0
    with ts.connect(server.space_url(), store="memory", order="random", channel=channel) as space:
        space.write_many(expected)
        assert sorted(space.read_all(template)) == expected
        assert len(set(space.read_all(template, limit=7))) == 7

    async def read_async() -> None:
        aspace = await ts.connect_async(server.space_url(), store="memory", channel=channel)
        async with aspace:
            await aspace.write_many(expected)
            assert await aspace.read_all(template) == expected
            assert [len(page) async for page in aspace.read_pages(template, limit=4)] == [3, 1]
            assert await aspace.take_all(template, limit=8) == expected[:8]
            assert await aspace.take_all(template) == expected[8:]

    run(read_async())


def test_replace_refuses_a_function_successor(url: str) -> None:
    with ts.connect(url) as space:
        space.write(("counter", 1))
        with pytest.raises(TypeError, match="function"):
            space.replace(("counter", int), lambda t: (t[0], t[1] + 1))
        assert space.replace(("counter", int), ("counter", 2)) == ("counter", 1)
        assert space.read_all(("counter", ANY)) == [("counter", 2)]


def test_statistics_of_a_closed_handle(url: str) -> None:
    space = ts.connect(url)
    space.write(("a",))
    space.close()
    space.close()
    stats = space.statistics()
    assert (stats["tuples"], stats["closed"]) == (1, True)
    with pytest.raises(ts.SpaceClosed):
        space.count(("a",))


# -- leases and transactions ----------------------------------------------------------------


def test_leases_renew_and_cancel(url: str) -> None:
    with ts.connect(url) as space:
        lease = space.write(("presence", "node-1"), lease=60)
        assert isinstance(lease, ts.Lease)
        first = lease.expires_at
        assert first is not None
        lease.renew(600)
        assert lease.expires_at is not None
        assert lease.expires_at > first
        lease.renew(None)
        assert lease.expires_at is None
        lease.cancel()
        assert space.count(("presence", str)) == 0

    async def main() -> None:
        space = await ts.connect_async(url)
        lease = await space.write(("presence", "node-2"), lease=60)
        assert isinstance(lease, AsyncLease)
        await lease.renew(None)
        assert lease.expires_at is None
        await lease.cancel()
        with pytest.raises(ts.UnknownLease):
            await lease.cancel()
        assert await space.count(("presence", str)) == 0
        await space.close()

    run(main())


def test_transactions_commit_and_abort(url: str) -> None:
    with ts.connect(url) as space:
        space.write_many([("job", 1), ("job", 2)])
        with space.transaction() as tx:
            assert tx.take(("job", int)) == ("job", 1)
            tx.write(("result", 1))
            assert space.read_all((str, int)) == [("job", 2)]
        assert tx.state == "committed"
        with pytest.raises(ts.TransactionError):
            tx.write(("late",))
        failing = space.transaction()

        def fail_inside() -> None:
            with failing:
                failing.take(("job", 2))
                raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError):
            fail_inside()
        assert failing.state == "aborted"
        assert space.read_all((str, int)) == [("job", 2), ("result", 1)]
        open_tx = space.transaction()
        open_tx.take(("job", 2))
    # closing the space aborted the transaction it left open: the job is back
    assert open_tx.state == "aborted"
    with ts.connect(url) as space:
        assert space.read_all(("job", int)) == [("job", 2)]


def test_async_transactions_begin_when_awaited_entered_or_used(url: str) -> None:
    async def main() -> None:
        space = await ts.connect_async(url)
        assert isinstance(space, AsyncRemoteSpace)
        await space.write(("job", 1))
        lazy = space.transaction()
        assert isinstance(lazy, AsyncRemoteTransaction)
        assert (await space.statistics())["transactions"] == 0
        await lazy.abort()  # never begun: nothing to undo
        async with space.transaction() as tx:
            assert (await space.statistics())["transactions"] == 1
            assert await tx.take(("job", int)) == ("job", 1)
            await tx.write(("result", 1))
        assert tx.state == "committed"
        tx2 = await space.transaction(lease=30)
        assert tx2.expires_at is not None
        await tx2.write(("result", 2))
        await tx2.abort()
        used = space.transaction()
        await used.write(("result", 3))  # begins it
        await used.commit()
        assert await space.read_all(("result", int)) == [("result", 1), ("result", 3)]
        await space.close()

    run(main())


# -- events --------------------------------------------------------------------------------


def test_a_subscription_resumes_after_its_connection_is_cut(proxy: Proxy, http_server: Any) -> None:
    name = new_name()
    with (
        ts.connect(http_server.space_url(name), store="memory") as writer,
        ts.connect(proxy.space_url(name)) as space,
    ):
        with space.subscribe(("n", int)) as sub:
            writer.write_many([("n", i) for i in range(3)])
            events = [sub.get(timeout=PATIENCE) for _ in range(3)]
            proxy.cut()
            writer.write_many([("n", i) for i in range(3, 6)])
            events += [sub.get(timeout=PATIENCE) for _ in range(3)]
            assert sub.statistics()["reconnects"] >= 1
        assert [e.tuple for e in events] == [("n", i) for i in range(6)]  # type: ignore[union-attr]
        seqs = [e.seq for e in events]  # type: ignore[union-attr]
        assert seqs == list(range(seqs[0], seqs[0] + 6))
        assert sub.closed
    http_server.delete(http_server.space_url(name))


def test_a_subscription_back_after_the_log_moved_on_hears_of_lost_events(
    proxy: Proxy, http_server: Any
) -> None:
    name = new_name()
    with (
        ts.connect(http_server.space_url(name), store="memory", event_retention=3) as writer,
        ts.connect(proxy.space_url(name)) as space,
    ):
        sub = space.subscribe(("n", int), events="write")
        writer.write(("n", 0))
        first = sub.get(timeout=PATIENCE)
        assert first is not None
        proxy.hold()
        proxy.cut()
        writer.write_many([("n", i) for i in range(1, 7)])  # the log keeps the last 3
        proxy.release()
        with pytest.raises(ts.EventsLost) as info:
            sub.get(timeout=PATIENCE)
        assert (info.value.first_missing, info.value.oldest_available) == (first.seq + 1, first.seq + 4)
        assert [sub.get(timeout=PATIENCE).tuple for _ in range(3)] == [("n", 4), ("n", 5), ("n", 6)]  # type: ignore[union-attr]
        sub.close()
    http_server.delete(http_server.space_url(name))


def test_a_subscription_whose_since_is_gone_raises_at_once(http_server: Any) -> None:
    with ts.connect(http_server.space_url(), store="memory", event_retention=2) as space:
        space.write_many([("n", i) for i in range(5)])
        last = space.statistics()["last_event"]
        with pytest.raises(ts.EventsLost) as info:
            space.subscribe(("n", int), since=last - 4)
        assert (info.value.first_missing, info.value.oldest_available) == (last - 3, last - 1)
        with space.subscribe(("n", int), since=last - 2) as sub:
            assert [sub.get(timeout=PATIENCE).tuple for _ in range(2)] == [("n", 3), ("n", 4)]  # type: ignore[union-attr]


def test_async_subscriptions_open_when_awaited_entered_or_read(url: str) -> None:
    async def main() -> None:
        space = await ts.connect_async(url)
        assert isinstance(space, AsyncRemoteSpace)
        lazy = space.subscribe(("job", int))
        assert isinstance(lazy, AsyncRemoteSubscription)
        assert (await space.statistics())["subscribers"] == 0
        async with space.subscribe(("job", int), events={"write"}) as sub:
            assert (await space.statistics())["subscribers"] == 1
            seen: list[tuple[Any, ...]] = []

            async def collect() -> None:
                async for event in sub:
                    seen.append(event.tuple)

            task = asyncio.create_task(collect())
            await space.write_many([("job", 1), ("other", 1), ("job", 2)])
            async with asyncio.timeout(PATIENCE):
                while len(seen) < 2:
                    await asyncio.sleep(0.01)
        await asyncio.wait_for(task, PATIENCE)  # leaving the block closed it: the loop ended
        assert seen == [("job", 1), ("job", 2)]
        awaited = await space.subscribe(("job", int), since=0)
        assert (await awaited.get(timeout=PATIENCE)).tuple == ("job", 1)  # type: ignore[union-attr]
        await space.close()
        assert awaited.closed
        assert await awaited.get() is None
        with pytest.raises(ts.SpaceClosed):
            await lazy.get()  # the space closed before it opened

    run(main())


def test_a_subscription_lease_ends_it(url: str) -> None:
    with ts.connect(url) as space:
        sub = space.subscribe(("job", int), lease=PATIENCE)
        sub.renew(0.01)
        assert list(sub) == []
        assert sub.closed
        with pytest.raises(ts.UnknownLease):
            sub.renew(10)
