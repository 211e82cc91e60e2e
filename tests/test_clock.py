"""Clocks: the system clock and the simulated one."""

from __future__ import annotations

import time

import pytest

import tuplespace as ts


def test_the_system_clock_tells_the_time() -> None:
    clock = ts.SystemClock()
    before = time.time()
    now = clock.now()
    assert before <= now <= time.time()
    assert clock.simulated is False
    assert repr(clock) == "SystemClock()"


def test_a_simulated_clock_moves_only_when_told() -> None:
    clock = ts.SimulatedClock()
    assert clock.simulated is True
    assert clock.now() == 946_684_800.0
    clock.advance(0)
    assert clock.now() == 946_684_800.0
    clock.advance(1.5)
    assert clock.now() == 946_684_801.5
    assert repr(clock) == "SimulatedClock(946684801.5)"
    assert ts.SimulatedClock(100).now() == 100.0


@pytest.mark.parametrize("seconds", [-1, -0.001, float("nan")])
def test_a_simulated_clock_never_moves_back(seconds: float) -> None:
    clock = ts.SimulatedClock(10)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(seconds)
    assert clock.now() == 10.0


def test_listeners_are_told_after_every_advance() -> None:
    clock = ts.SimulatedClock()
    seen = []

    class Listener:
        def on_clock_advanced(self) -> None:
            seen.append(clock.now())

    listener = Listener()
    clock.attach(listener)
    clock.advance(1)
    clock.advance(2)
    assert seen == [clock.now() - 2, clock.now()]


def test_both_clocks_satisfy_the_protocol() -> None:
    for clock in (ts.SystemClock(), ts.SimulatedClock()):
        assert isinstance(clock.now(), float)
        assert isinstance(clock.simulated, bool)
