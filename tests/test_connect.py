"""``connect``: a URL chooses how a space is run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tuplespace as ts


def test_memory_makes_a_new_space_each_time() -> None:
    a, b = ts.connect("memory:"), ts.connect()
    assert isinstance(a, ts.Space)
    assert a is not b
    a.write(("x",))
    assert b.count(("x",)) == 0


def test_options_in_the_url_and_as_keywords() -> None:
    assert ts.connect("memory:?order=lifo").order == "lifo"
    assert ts.connect("memory:?order=lifo", order="random").order == "random"
    space = ts.connect("memory:?max_waiters=1&seed=3")
    assert space.statistics()["order"] == "fifo"
    clock = ts.SimulatedClock()
    assert ts.connect("memory:", clock=clock).clock is clock


@pytest.mark.parametrize(
    "url",
    [
        "memory:?colour=blue",
        "memory:?seed=x",
        "memory:?max_waiters=1.5",
        "memory:?order=sideways",
        "nope:",
        "",
        "gopher://node/space",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"option|order|URL|url"):
        ts.connect(url)


@pytest.mark.parametrize("url", [None, b"memory:", 5])
def test_a_url_is_a_str(url: Any) -> None:
    with pytest.raises(TypeError):
        ts.connect(url)


def test_a_store_is_one_module_and_one_row_of_the_scheme_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """``connect`` and ``connect_async`` find a store by its scheme in one table: a row
    naming a module that holds a ``SCHEME`` is all a new store needs (``memory:`` here,
    under another name)."""
    from tuplespace import _schemes

    assert _schemes.SCHEMES["memory"] == "tuplespace._memory"
    monkeypatch.setitem(_schemes.SCHEMES, "scratch", "tuplespace._memory")
    space = ts.connect("scratch:?order=lifo")
    assert isinstance(space, ts.Space)
    assert space.order == "lifo"

    async def main() -> None:
        aspace = await ts.connect_async("scratch:", capacity=1)
        assert isinstance(aspace, ts.AsyncSpace)
        await aspace.write(("x",))
        with pytest.raises(ts.SpaceFull):
            await aspace.write(("y",), timeout=0)

    asyncio.run(main())
    monkeypatch.delitem(_schemes.SCHEMES, "scratch")
    with pytest.raises(ValueError, match="unsupported space URL 'scratch:'"):
        ts.connect("scratch:")
