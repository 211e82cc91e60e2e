"""Minting credit by proof of work (docs/active.md#minting): a stamp on a challenge
the space gave mints once; replays, weak stamps and stale challenges are refused."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

import tuplespace as ts
from tuplespace import _mint

BITS = 8


@pytest.fixture
def clock() -> ts.SimulatedClock:
    return ts.SimulatedClock()


@pytest.fixture
def mint(make_thread_space: Callable[..., ts.Space], clock: ts.SimulatedClock) -> ts.Space:
    return make_thread_space(clock=clock, mint_amount="0.25", mint_bits=BITS)


def zero_bits(challenge: str, nonce: str) -> int:
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return 256 - int.from_bytes(digest, "big").bit_length()


def stamps(challenge: str, n: int) -> list[str]:
    """The first ``n`` stamps on ``challenge`` among the nonces "0", "1", ..."""
    nonces = (str(i) for i in itertools.count())
    return list(itertools.islice((x for x in nonces if zero_bits(challenge, x) >= BITS), n))


def test_a_stamp_mints_its_amount_once(mint: ts.Space) -> None:
    c = mint.credit_challenge()
    assert (c.bits, c.amount) == (BITS, ts.Credit("0.25"))
    nonce = ts.make_stamp(c.challenge, c.bits)
    assert zero_bits(c.challenge, nonce) >= BITS
    assert mint.mint_credit(c.challenge, nonce, principal="anonymous") == ts.Credit("0.25")
    with pytest.raises(ts.InvalidValue, match="spent already") as info:
        mint.mint_credit(c.challenge, nonce, principal="someone-else")
    assert info.value.path == "nonce"
    assert mint.account("someone-else") == 0
    assert mint.credit_challenge() == c  # the same challenge for a while: many stamps on it
    other = stamps(c.challenge, 2)[1]  # another stamp on it
    assert other != nonce
    assert mint.mint_credit(c.challenge, other, principal="anonymous") == ts.Credit("0.5")


def test_a_stamp_with_too_few_zero_bits_is_refused(mint: ts.Space) -> None:
    c = mint.credit_challenge()
    weak = next(n for n in map(str, itertools.count()) if zero_bits(c.challenge, n) < BITS)
    with pytest.raises(ts.InvalidValue, match=f"asks for {BITS}") as info:
        mint.mint_credit(c.challenge, weak)
    assert info.value.path == "nonce"
    for bad in ("", "x" * 65, "é", 7, None):
        with pytest.raises(ts.InvalidValue):
            mint.mint_credit(c.challenge, bad)  # type: ignore[arg-type]
    assert mint.account("default") == 0


def test_a_stale_or_unknown_challenge_is_refused(mint: ts.Space, clock: ts.SimulatedClock) -> None:
    first = mint.credit_challenge()
    nonce = ts.make_stamp(first.challenge, BITS)
    clock.advance(_mint.CHALLENGE_SECONDS)
    second = mint.credit_challenge()
    assert second.challenge != first.challenge  # a new one is given out...
    assert first.expires == clock.now() + _mint.CHALLENGE_SECONDS
    clock.advance(_mint.CHALLENGE_SECONDS - 1)
    assert mint.mint_credit(first.challenge, nonce) == ts.Credit("0.25")  # ...and the old one still pays
    late = ts.make_stamp(first.challenge, BITS + 4)
    clock.advance(1)
    with pytest.raises(ts.InvalidValue, match="expired") as info:
        mint.mint_credit(first.challenge, late)
    assert info.value.path == "challenge"
    with pytest.raises(ts.InvalidValue, match="expired"):
        mint.mint_credit("0" * 32, ts.make_stamp("0" * 32, BITS))
    assert mint.account("default") == ts.Credit("0.25")


def test_a_challenge_pays_for_a_bounded_number_of_stamps(
    mint: ts.Space, monkeypatch: pytest.MonkeyPatch, clock: ts.SimulatedClock
) -> None:
    monkeypatch.setattr(_mint, "MAX_STAMPS", 3)
    c = mint.credit_challenge()
    found = stamps(c.challenge, 4)
    for nonce in found[:3]:
        mint.mint_credit(c.challenge, nonce)
    with pytest.raises(ts.LimitReached) as info:
        mint.mint_credit(c.challenge, found[3])
    assert info.value.limit == "stamps"
    clock.advance(_mint.CHALLENGE_SECONDS)
    fresh = mint.credit_challenge().challenge
    mint.mint_credit(fresh, ts.make_stamp(fresh, BITS))
    assert mint.account("default") == 1


def test_a_space_mints_nothing_unless_told(make_thread_space: Callable[..., ts.Space]) -> None:
    space = make_thread_space()
    assert (space.mint_amount, space.mint_bits) == (0, 20)
    with pytest.raises(ts.Forbidden):
        space.credit_challenge()
    with pytest.raises(ts.Forbidden):
        space.mint_credit("c", "0")
    for bad in ({"mint_bits": 0}, {"mint_bits": 65}, {"mint_bits": "8"}, {"mint_amount": -1}):
        with pytest.raises(ValueError, match="mint_"):
            ts.Space(**bad)  # type: ignore[arg-type]


def test_the_minting_options_are_stored_and_challenges_are_not(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/spaces.db?space=s&mint_amount=0.5&mint_bits=4"
    space = ts.connect(url)
    c = space.credit_challenge()
    space.close()
    space = ts.connect(f"sqlite://{tmp_path}/spaces.db?space=s")
    try:
        assert (space.mint_amount, space.mint_bits) == (ts.Credit("0.5"), 4)
        with pytest.raises(ts.InvalidValue, match="expired"):
            space.mint_credit(c.challenge, ts.make_stamp(c.challenge, 4))
        fresh = space.credit_challenge().challenge
        assert space.mint_credit(fresh, ts.make_stamp(fresh, 4)) == ts.Credit("0.5")
    finally:
        space.close()
