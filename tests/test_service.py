"""The service every transport calls: a ServiceRequest in, a plain answer out, errors of the tree."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

import tuplespace as ts
from tuplespace._codec import to_wire
from tuplespace.server import create_app
from tuplespace.server._requests import NO_QUERY, ServiceRequest
from tuplespace.server._service import NO_CONTENT, Answer, Messages, Notice

SERVER = Path(__file__).resolve().parent.parent / "src" / "tuplespace" / "server"
# What the handlers are made of; the adapters (_app, _guard, _channel, ...) are the rest.
SERVICE = sorted(SERVER.glob("_service*.py")) + [
    SERVER / f"{name}.py" for name in ("_requests", "_errors", "_hosting", "_claims", "_auth", "_metrics")
]
TRANSPORTS = ("starlette", "fastapi", "uvicorn", "httpx", "h11", "httptools")


def request(body: object = None, query: Sequence[tuple[str, str]] = NO_QUERY) -> ServiceRequest:
    """A request as a transport of this test's own makes it."""
    data = b"" if body is None else orjson.dumps(body)

    async def receive(most: int) -> tuple[bytes, int]:
        return data, len(data)

    return ServiceRequest(None, "192.0.2.7", receive, lambda gone: lambda: None, query)


@pytest.mark.parametrize("path", SERVICE, ids=lambda p: p.name)
def test_the_service_imports_no_transport(path: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            imported.add(node.module.split(".")[0])
    assert not imported & set(TRANSPORTS), path.name


def test_handlers_answer_a_status_and_body_that_any_transport_can_send() -> None:
    async def main() -> None:
        app = create_app()
        async with app.router.lifespan_context(app):
            api = app.state.api
            written = await api.write("s", request=request({"tuple": ["job", 1]}))
            assert written == Answer(200, b'{"lease":{"id":1,"expires_at":null}}', "application/json")
            taken = await api.take("s", request=request({"template": ["job", {"$formal": "int"}]}))
            assert taken == Answer(200, orjson.dumps({"tuple": to_wire(("job", 1))}))
            assert await api.delete_space("s", request=request()) == NO_CONTENT
            assert Answer(204, b"", None) == NO_CONTENT
            metrics = await api.metrics(request=request())
            assert (metrics.status_code, metrics.media_type.split(";")[0]) == (200, "text/plain")
            assert b"tuplespace_spaces" in metrics.body
            with pytest.raises(ts.NotFound):
                await api.get_space("s", request=request())

    asyncio.run(main())


def test_an_event_stream_is_messages_that_end_with_their_subscription() -> None:
    async def main() -> None:
        app = create_app()
        async with app.router.lifespan_context(app):
            api = app.state.api
            query = [("template", '["job", {"$formal": "int"}]')]
            messages = await api.events("s", request=request(query=query))
            assert isinstance(messages, Messages)
            assert len(api.streams) == 1
            assert await anext(messages.notices) == Notice(None, "subscribed")
            await api.write("s", request=request({"tuple": ["job", 7]}))
            event = await anext(messages.notices)
            assert (event.kind, event.seq) == ("write", 1)
            assert event.data | {"time": None} == {
                "seq": 1,
                "kind": "write",
                "tuple": to_wire(("job", 7)),
                "time": None,
            }
            await messages.notices.aclose()
            await messages.end()
            assert len(api.streams) == 0

    asyncio.run(main())
