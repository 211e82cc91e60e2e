"""The Python admin API (``ts.connect_server`` / ``ts.connect_server_async``): a server's
health, spaces and tokens, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import tuplespace as ts
from tuplespace.testing import LiveServer

Serve = Callable[..., LiveServer]
ADMIN = "admin-token-0123456789"
TOKENS = {"tokens": [{"name": "admin", "token": ADMIN, "admin": True}]}


def test_health_spaces_and_their_life(serve: Serve) -> None:
    live = serve(tokens=TOKENS, store="memory")
    with ts.connect_server(live.url, token=ADMIN) as server:
        assert server.health()["status"] == "ok"
        created = server.create_space("jobs", order="lifo", capacity=10)
        assert created.name == "jobs"
        assert created.options["order"] == "lifo"
        assert created.options["capacity"] == 10
        assert server.create_space("jobs", order="lifo", capacity=10).name == "jobs"  # as it is: no error
        with pytest.raises(ts.TupleSpaceError, match="order"):
            server.create_space("jobs", order="fifo")
        with server.space("jobs") as jobs:
            jobs.write(("job", 1))
            jobs.write(("job", 2))
        [info] = [s for s in server.spaces() if s.name == "jobs"]
        assert info.statistics is not None
        assert info.statistics["tuples"] == 2
        assert server.space_info("jobs").options["capacity"] == 10
        server.delete_space("jobs")
        assert "jobs" not in [s.name for s in server.spaces()]
        with pytest.raises(ts.NotFound):
            server.delete_space("jobs")
        with pytest.raises(ts.NotFound):
            server.space_info("jobs")


def test_tokens_are_created_listed_and_revoked(serve: Serve) -> None:
    live = serve(tokens=TOKENS, store="memory")
    with ts.connect_server(live.url, token=ADMIN) as server:
        server.create_space("jobs")
        made = server.tokens.create("worker", spaces={"jobs": ["read", "write"]})
        assert made.name == "worker"
        assert made.admin is False
        assert made.spaces == {"jobs": ["read", "write"]}
        assert made.token
        listed = {t.name: t for t in server.tokens.list()}
        assert set(listed) == {"admin", "worker"}
        assert listed["worker"].token is None  # never shown again
        with ts.connect(f"{live.url}/spaces/jobs", token=made.token) as jobs:
            jobs.write(("job", 1))
            server.tokens.revoke("worker")
            with pytest.raises(ts.Unauthorized):
                jobs.write(("job", 2))
        assert [t.name for t in server.tokens.list()] == ["admin"]


def test_refusals_are_the_errors_of_the_space(serve: Serve) -> None:
    live = serve(tokens=TOKENS, store="memory")
    with ts.connect_server(live.url) as anonymous:
        assert anonymous.health()["status"] == "ok"
        with pytest.raises(ts.Unauthorized):
            anonymous.tokens.list()
    with ts.connect_server(live.url, token="wrong-token-0123456789") as wrong, pytest.raises(ts.Unauthorized):
        wrong.create_space("x")
    with ts.connect_server(live.url, token=ADMIN) as server:
        made = server.tokens.create("reader", spaces={"*": ["read"]})
        with ts.connect_server(live.url, token=made.token) as reader:
            with pytest.raises(ts.Forbidden):
                reader.create_space("x")
            with pytest.raises(ts.Forbidden):
                reader.tokens.create("another")


def test_a_server_without_tokens_has_no_token_api(serve: Serve) -> None:
    live = serve(store="memory")
    with ts.connect_server(live.url) as server, pytest.raises(ts.NotFound):
        server.tokens.list()


def test_a_server_that_is_not_there_is_unreachable() -> None:
    with ts.connect_server("http://127.0.0.1:9", connect_timeout=2) as server, pytest.raises(ts.Unreachable):
        server.health()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "http://127.0.0.1:8765/?x=1", "127.0.0.1:8765"])
def test_a_url_that_names_no_server_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="is not a server's http"):
        ts.connect_server(url)


def test_the_async_twin(serve: Serve) -> None:
    live = serve(tokens=TOKENS, store="memory")

    async def main() -> Any:
        async with await ts.connect_server_async(live.url, token=ADMIN) as server:
            assert (await server.health())["status"] == "ok"
            await server.create_space("jobs")
            async with server.space("jobs") as jobs:
                await jobs.write(("job", 1))
            made = await server.tokens.create("w", spaces={"jobs": ["take"]})
            names = [t.name for t in await server.tokens.list()]
            await server.tokens.revoke("w")
            await server.delete_space("jobs")
            return made.admin, names, [s.name for s in await server.spaces()]

    assert asyncio.run(main()) == (False, ["admin", "w"], [])
