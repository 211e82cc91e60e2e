"""Minting: a little credit for proof of work (hashcash-style stamps).

A space with a ``mint_amount`` mints that much credit for each **stamp** it is
shown: a ``nonce`` such that the SHA-256 digest of ``"<challenge>:<nonce>"`` (UTF-8)
begins with ``mint_bits`` zero bits, where the challenge is one the space gave out
(:meth:`Mint.challenge`).  Finding a nonce takes about ``2 ** mint_bits`` hashes;
checking it, one.  So anyone, even an anonymous caller, can earn a little credit,
and a spammer pays for each action in work (seed ``003_…``: "deterrent coinage").

A challenge is a random text; the space gives out the same one for
``CHALLENGE_SECONDS`` and accepts stamps on it until twice that has passed since
it was first given.  Each stamp spends once: the space remembers the nonces spent
on each live challenge, and forgets them with the challenge.  A challenge pays
for at most ``MAX_STAMPS`` stamps, so the memory is bounded too.  Challenges live
in memory only: a space that is opened again gives new ones.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from typing import TYPE_CHECKING, Final, NamedTuple

from ._credit import to_credit
from ._errors import Forbidden, InvalidValue, LimitReached
from ._values import Credit

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = [
    "CHALLENGE_SECONDS",
    "MAX_STAMPS",
    "Challenge",
    "Mint",
    "check_stamp",
    "make_stamp",
    "spent_stamp",
    "stale_challenge",
    "stamp_bits",
    "stamps_exhausted",
]

CHALLENGE_SECONDS: Final = 600.0
MAX_STAMPS: Final = 100_000  # stamps one challenge pays for
MAX_NONCE: Final = 64  # characters
MAX_BITS: Final = 64


class Challenge(NamedTuple):
    """What a space asks of a stamp: the ``challenge`` text, the leading zero
    ``bits`` of its hash, the ``amount`` of credit it mints, and until when
    (``expires``, seconds since the epoch on the space's clock) it is accepted."""

    challenge: str
    bits: int
    amount: Credit
    expires: float


def stamp_bits(challenge: str, nonce: str) -> int:
    """The leading zero bits of the SHA-256 digest of ``"<challenge>:<nonce>"``."""
    digest = int.from_bytes(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest(), "big")
    return 256 - digest.bit_length()


def check_stamp(challenge: str, nonce: object, bits: int) -> str:
    """``nonce``, if it is a stamp on ``challenge`` with at least ``bits`` zero bits;
    else InvalidValue (``nonce``)."""
    if not isinstance(nonce, str) or not 1 <= len(nonce) <= MAX_NONCE or not nonce.isascii():
        raise InvalidValue(f"a nonce is 1 to {MAX_NONCE} ASCII characters", "nonce")
    got = stamp_bits(challenge, nonce)
    if got < bits:
        raise InvalidValue(f"the stamp has {got} leading zero bits; this space asks for {bits}", "nonce")
    return nonce


def stale_challenge() -> InvalidValue:
    """The error for a challenge a space did not give out, or no longer accepts."""
    return InvalidValue(
        "the challenge is not one of this space's, or it expired: ask for a new one", "challenge"
    )


def spent_stamp() -> InvalidValue:
    """The error for a stamp spent already."""
    return InvalidValue("this stamp was spent already", "nonce")


def stamps_exhausted() -> LimitReached:
    """The error for a stamp on a challenge that has paid for its ``MAX_STAMPS``."""
    return LimitReached(
        f"the challenge has paid for {MAX_STAMPS} stamps; ask for a new one",
        limit="stamps",
        maximum=MAX_STAMPS,
    )


def make_stamp(challenge: str, bits: int) -> str:
    """A nonce that makes a stamp of ``bits`` zero bits on ``challenge`` (about
    ``2 ** bits`` hashes of work): what :meth:`Space.mint_credit` takes.  Each call
    searches from a random start, so callers find different stamps.

    >>> c = space.credit_challenge()  # doctest: +SKIP
    >>> space.mint_credit(c.challenge, ts.make_stamp(c.challenge, c.bits))  # doctest: +SKIP
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= MAX_BITS:
        raise InvalidValue(f"bits is an int from 0 to {MAX_BITS}, got {bits!r}", "bits")
    start = secrets.token_hex(8)  # so that two callers find different stamps
    prefix = hashlib.sha256(f"{challenge}:{start}".encode())
    limit = 1 << (256 - bits)
    for n in itertools.count():
        nonce = format(n, "x")
        h = prefix.copy()
        h.update(nonce.encode())
        if int.from_bytes(h.digest(), "big") < limit:
            return start + nonce
    raise AssertionError("unreachable")  # pragma: no cover


class _Issued:
    __slots__ = ("expires", "given_until", "spent")

    def __init__(self, given_until: float, expires: float) -> None:
        self.given_until = given_until
        self.expires = expires
        self.spent: set[str] = set()


class Mint:
    """The challenges of one space and the stamps spent on them; used with the
    space's lock held."""

    def __init__(self, clock: Clock, amount: object, bits: object) -> None:
        try:
            self.amount = to_credit(amount, "mint_amount")
        except InvalidValue as exc:
            raise ValueError(f"mint_amount: {exc}") from None
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
            raise ValueError(f"mint_bits is an int from 1 to {MAX_BITS}, got {bits!r}")
        self.bits = bits
        self._clock = clock
        self._issued: dict[str, _Issued] = {}
        self._current: str | None = None

    def challenge(self) -> Challenge:
        """The challenge to make stamps on now; Forbidden if the space mints nothing."""
        self._check_on()
        now = self._clock.now()
        self._forget(now)
        text = self._current
        current = None if text is None else self._issued.get(text)
        if text is None or current is None or now >= current.given_until:
            text = self._current = secrets.token_hex(16)
            current = self._issued[text] = _Issued(now + CHALLENGE_SECONDS, now + 2 * CHALLENGE_SECONDS)
        return Challenge(text, self.bits, self.amount, current.expires)

    def spend(self, challenge: object, nonce: object) -> Credit:
        """Accept the stamp ``nonce`` on ``challenge`` once; the credit it mints.
        Raises InvalidValue for a stale or unknown challenge, a stamp with too few
        zero bits or one spent already; LimitReached when the challenge has paid
        for its ``MAX_STAMPS``."""
        self._check_on()
        self._forget(self._clock.now())
        issued = self._issued.get(challenge) if isinstance(challenge, str) else None
        if issued is None or not isinstance(challenge, str):
            raise stale_challenge()
        nonce = check_stamp(challenge, nonce, self.bits)
        if nonce in issued.spent:
            raise spent_stamp()
        if len(issued.spent) >= MAX_STAMPS:
            raise stamps_exhausted()
        issued.spent.add(nonce)
        return self.amount

    def _check_on(self) -> None:
        if not self.amount:
            raise Forbidden("this space mints no credit (its mint_amount is 0)")

    def _forget(self, now: float) -> None:
        for text in [t for t, issued in self._issued.items() if issued.expires <= now]:
            del self._issued[text]
