"""``connect``: a URL chooses how a space is run."""

from __future__ import annotations

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
