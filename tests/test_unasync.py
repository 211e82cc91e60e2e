"""The sync binding is made from the async one by ``scripts/unasync.py``: the file
checked in must be exactly what the script makes, so a hand edit of ``_sync.py``
(or an edit of ``_async.py`` without running the script) fails here."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "unasync.py"


@pytest.fixture(scope="module")
def unasync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


def test_the_sync_binding_is_what_the_script_makes(unasync: ModuleType) -> None:
    for source, target in unasync.PAIRS:
        assert target.read_text(encoding="utf-8") == unasync.made(source), "run: python scripts/unasync.py"
    assert unasync.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("class AsyncRemoteSpace(AsyncOpenable):", "class RemoteSpace(Openable):"),
        ("    async def __aenter__(self) -> AsyncRemoteSpace:", "    def __enter__(self) -> RemoteSpace:"),
        ("        async with self._opening:", "        with self._opening:"),
        ("        async for line in self._lines:", "        for line in self._lines:"),
        ("        answer = await self._request(path)", "        answer = self._request(path)"),
        ("            raise StopAsyncIteration", "            raise StopIteration"),
        ("        await response.aclose()", "        response.close()"),
        ("    lines: AsyncIterator[str]", "    lines: Iterator[str]"),
        ("        return opened_later(handle)", "        return opened_now(handle)"),
        ("    def __aiter__(self) -> X:", "    def __iter__(self) -> X:"),
        (
            "from ._async_subscription import AsyncRemoteSubscription",
            "from ._sync_subscription import RemoteSubscription",
        ),
        ("    from ._async import AsyncRemoteSpace", "    from ._sync import RemoteSpace"),
        ("    MyAsyncThing = asynchronous", "    MyAsyncThing = asynchronous"),
    ],
)
def test_tokens_are_renamed_whole(unasync: ModuleType, line: str, expected: str) -> None:
    assert unasync.unasync_line(line) == expected


@pytest.mark.parametrize("name", ["client/_sync.py", "client/_sync_subscription.py", "stores/_redis_sync.py"])
def test_the_sync_binding_has_no_async_code_left(name: str) -> None:
    text = (SCRIPT.parent.parent / "src" / "tuplespace" / name).read_text(encoding="utf-8")
    for pattern in (
        r"\basync (def|with|for)\b",
        r"\bawait\b",
        r"\bAsync[A-Z]",
        r"\basyncio\b",
        r"__a(enter|exit|iter|next)__",
    ):
        assert re.search(pattern, text) is None, pattern
