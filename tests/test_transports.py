"""The client transports (tuplespace/client/_async_transport.py, _inprocess.py): how a
remote space reaches its server, chosen by ``transport=`` or ``app=``.

What a space does over each transport is the contract suite's (the http, http-plain
and in-process ways of the conformance kit); here is what only the transports show.
"""

from __future__ import annotations

import asyncio
import gc
import re
import socket
import uuid
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace._httpapi import OPERATIONS
from tuplespace.client import AsyncRemoteSpace, RemoteSpace
from tuplespace.client._common import route
from tuplespace.client._inprocess import _application
from tuplespace.server import create_app


def _free_port() -> int:
    """A port of 127.0.0.1 on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _url() -> str:
    return f"http://127.0.0.1:{_free_port()}/spaces/test-{uuid.uuid4().hex[:16]}"


def test_app_calls_the_application_in_this_process_without_a_socket(in_process_app: Any) -> None:
    # Nothing listens at the URL's port: only the application can answer.
    with ts.connect(_url(), app=in_process_app, order="lifo") as space:
        assert isinstance(space, RemoteSpace)
        space.write(("job", 1))
        space.write(("job", 2))
        assert space.take(("job", int)) == ("job", 2)  # lifo: the option reached the server
        assert space.client_statistics()["channels_opened"] == 0
        assert space.statistics()["writes"] == 2


def test_the_client_sends_each_request_as_an_operation_of_the_table() -> None:
    """Every request of a remote space, its transactions, leases, claims, rules and
    server is the method and path of a row of the operation table, its names quoted."""
    app = create_app(store="memory")
    asked: list[tuple[str, str]] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asked.append((scope["method"], scope["raw_path"].decode()))
        await app(scope, receive, send)

    patterns = [
        (op.method, re.compile(re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(op.path)) + "$"), op.name)
        for op in OPERATIONS
    ]
    with ts.connect("http://localhost/spaces/a.b-c_1", app=recording) as space:
        lease = space.write(("job", 1), lease=60)
        lease.renew(30)
        space.write_many([("job", 2), ("job", 3)])
        assert space.take(("job", int)) == ("job", 1)
        assert space.read_all(("job", int)) == [("job", 2), ("job", 3)]
        assert space.count(("job", int)) == 2
        with space.transaction() as tx:
            tx.write(("done", 1))
            assert tx.take(("job", 2)) == ("job", 2)
            assert tx.count(("job", int)) == 1
        space.statistics()
        space.write(("gone",), lease=60).cancel()
    used = set()
    for method, path in asked:
        found = [name for want, pattern, name in patterns if want == method and pattern.match(path)]
        assert found, (method, path)
        used |= set(found)
    assert used >= {"write", "renew_lease", "write_many", "take", "read_all", "count", "begin_transaction"}
    assert used >= {"tx_write", "tx_take", "tx_count", "tx_commit", "get_space", "cancel_lease"}
    assert all(path.startswith("/spaces/a.b-c_1") for _, path in asked)
    assert route("revoke_token", name="a b/c") == ("DELETE", "/tokens/a%20b%2Fc")
    assert route("renew_lease", space="s", lease_id=7) == ("POST", "/spaces/s/leases/7/renew")


def test_sync_and_async_spaces_of_one_application_share_its_spaces(in_process_app: Any) -> None:
    url = _url()
    with ts.connect(url, app=in_process_app, order="fifo") as space:
        space.write(("from", "sync"))

        async def main() -> Any:
            async with await ts.connect_async(url, app=in_process_app) as aspace:
                assert isinstance(aspace, AsyncRemoteSpace)
                await aspace.write(("from", "async"))
                return await aspace.take(("from", "sync"))

        assert asyncio.run(main()) == ("from", "sync")
        assert space.take(("from", str)) == ("from", "async")


def test_a_waiting_take_is_served_by_a_write_of_another_space(in_process_app: Any) -> None:
    url = _url()
    with (
        ts.connect(url, app=in_process_app, order="fifo") as taker,
        ts.connect(url, app=in_process_app) as writer,
    ):
        took = spawn(taker.take, ("job", int), timeout=PATIENCE)
        wait_for_waiters(writer, 1)
        writer.write(("job", 7))
        assert took.result(PATIENCE) == ("job", 7)


def test_closing_a_space_wakes_its_waiting_take_and_the_server_forgets_it(in_process_app: Any) -> None:
    url = _url()
    with ts.connect(url, app=in_process_app, order="fifo") as observer:
        space = ts.connect(url, app=in_process_app)
        took = spawn(space.take, ("job", int))
        wait_for_waiters(observer, 1)
        space.close()
        with pytest.raises(ts.SpaceClosed):
            took.result(PATIENCE)
        wait_until(lambda: observer.statistics()["waiters"] == 0, "the server to drop the waiting take")
        observer.write(("job", 1))
        assert observer.count(("job", int)) == 1  # nobody took it


def test_a_closed_subscription_is_ended_on_the_server(in_process_app: Any) -> None:
    with ts.connect(_url(), app=in_process_app, order="fifo") as space:
        subscription = space.subscribe(("job", int))
        space.write(("job", 1))
        event = subscription.get(timeout=PATIENCE)
        assert event is not None
        assert event.tuple == ("job", 1)
        assert space.statistics()["subscribers"] == 1
        subscription.close()
        wait_until(lambda: space.statistics()["subscribers"] == 0, "the server to end the subscription")


def test_an_async_space_of_an_application_streams_its_events_and_ends_its_subscription(
    in_process_app: Any,
) -> None:
    async def main() -> None:
        async with await ts.connect_async(_url(), app=in_process_app, order="fifo") as space:
            assert isinstance(space, AsyncRemoteSpace)
            async with space.subscribe(("job", int)) as subscription:
                await space.write(("job", 1))
                await space.write(("job", 2))
                first = await subscription.get(timeout=PATIENCE)
                second = await subscription.get(timeout=PATIENCE)
                assert first is not None
                assert second is not None
                assert [first.tuple, second.tuple] == [("job", 1), ("job", 2)]
                assert (await space.statistics())["subscribers"] == 1
            async with asyncio.timeout(PATIENCE):
                while (await space.statistics())["subscribers"] != 0:
                    await asyncio.sleep(0.01)

    asyncio.run(main())


def test_transport_names_how_requests_travel(http_server: Any) -> None:
    with ts.connect(http_server.space_url(), transport="http", order="fifo") as space:
        space.write(("job", 1))
        assert space.take(("job", int)) == ("job", 1)
        assert space.client_statistics()["channels_opened"] == 0
    with ts.connect(http_server.space_url(), transport="channel", order="fifo") as space:
        space.write(("job", 1))
        assert space.client_statistics()["channels_opened"] == 1


def test_an_unknown_transport_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown transport 'carrier-pigeon'.*http, channel, in-process"):
        ts.connect(_url(), transport="carrier-pigeon")


def test_an_application_that_fails_to_start_says_so() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no store"})

    with pytest.raises(RuntimeError, match="the application did not start: no store"):
        ts.connect(_url(), app=app)


def test_a_space_dropped_on_its_applications_own_loop_confirms_its_claims_without_blocking_it() -> None:
    # The garbage collector runs a dropped space's finalizer on whatever thread it
    # interrupts, the application's own loop among them: the claims still waiting are
    # confirmed from another thread, not by a request that would wait on that loop.
    app = create_app(store="memory")
    url = _url()
    with ts.connect(url, app=app) as observer:
        space = ts.connect(url, app=app, confirm_delay=3600)
        space.write(("job", 1))
        assert space.take(("job", int)) == ("job", 1)
        assert space.client_statistics()["unconfirmed_claims"] == 1
        assert observer.statistics()["commits"] == 0
        held = [space]
        del space

        async def drop() -> None:
            held.clear()  # the last reference: the space is finalized here, on the loop
            gc.collect()  # (or by the collector, still on the loop, were it held in a cycle)

        _application(app).run(drop()).result(PATIENCE)
        wait_until(lambda: observer.statistics()["commits"] == 1, "the claim to be confirmed")
        assert observer.count(("job", int)) == 0


def test_a_blocking_request_on_the_applications_own_loop_is_refused() -> None:
    app = create_app(store="memory")
    url = _url()
    with ts.connect(url, app=app) as space:

        async def call() -> Any:
            return space.count(("job", int))

        with pytest.raises(ts.Unreachable, match="would wait forever: use an async space"):
            _application(app).run(call()).result(PATIENCE)
