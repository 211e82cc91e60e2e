"""Credit: what records cost, what they burn, and the accounts of principals.

Amounts are :class:`~tuplespace.Credit` (a ``Decimal``).  A space that charges has
a ``charge_rate`` (credit per second for each KiB a record stores) and a
``creation_charge``.  A record of ``size`` bytes burns ``rate * size / 1024``
credit per second; what it holds at a time is what it held at an earlier time,
less the burn rate times the seconds between, rounded down to 9 decimals, so it is
the same whenever and however often it is read.  What a record is charged is
rounded up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import TYPE_CHECKING

from ._codec import encode
from ._errors import InsufficientCredit, InvalidValue, LimitReached, UnsupportedType
from ._store import AccountRow
from ._values import Credit, Value

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "CREDIT_OPTIONS",
    "MAX_ACCOUNTS",
    "MAX_PRINCIPAL",
    "ZERO",
    "Accounts",
    "burn_rate",
    "check_principal",
    "credit_left",
    "lifetime",
    "rounded",
    "seconds",
    "short_of",
    "stored_size",
    "times",
    "to_credit",
]

ZERO = Credit(0)
# The options of a space that are amounts of credit (docs/records.md, docs/active.md).
CREDIT_OPTIONS = (
    "charge_rate",
    "creation_charge",
    "mint_amount",
    "redirect_charge",
    "firing_charge",
    "step_charge",
)
MAX_ACCOUNTS = 100_000  # accounts of one space, besides the operator's
MAX_PRINCIPAL = 128  # characters of a principal's name, as of a token's
_NANO = Decimal("1e-9")
_CONTEXT = Context(prec=80)  # wide enough for any product or quotient of two credits


def to_credit(amount: object, name: str) -> Credit:
    """``amount`` (a Credit, int, str or Decimal) as a Credit; raises InvalidValue."""
    if isinstance(amount, Credit):
        return amount
    if isinstance(amount, (int, str, Decimal)) and not isinstance(amount, bool):
        return Credit(amount)
    raise UnsupportedType(
        f"{name} is an amount of credit (Credit, int, str or Decimal), not {type(amount).__name__}"
    )


def rounded(d: Decimal, up: bool = False) -> Credit:
    """``d`` as a Credit: not negative, at most 9 decimals and 40 digits, rounded down
    (or ``up``, for what is charged)."""
    if d <= 0:
        return ZERO
    rounding = ROUND_CEILING if up else ROUND_FLOOR
    if d.as_tuple().exponent < -9:  # type: ignore[operator]
        d = d.quantize(_NANO, rounding=rounding, context=_CONTEXT)
    if len(d.as_tuple().digits) > 40:
        d = Context(prec=40, rounding=rounding).plus(d)
    return Credit(d)


def seconds(x: float) -> Decimal:
    """A number of seconds as the Decimal of its shortest text."""
    return Decimal(repr(x))


def burn_rate(rate: Credit, size: int) -> Decimal:
    """Credit per second for ``size`` bytes at ``rate`` credit per second per KiB."""
    return _CONTEXT.divide(_CONTEXT.multiply(rate, Decimal(size)), Decimal(1024))


def credit_left(credit: Credit, burn: Decimal, elapsed: float) -> Credit:
    """What ``credit`` burning ``burn`` per second holds after ``elapsed`` seconds."""
    if not burn:
        return credit
    return rounded(credit - _CONTEXT.multiply(burn, seconds(elapsed)))


def times(amount: Decimal, price: Decimal) -> int:
    """How many times ``price`` (not 0) fits in ``amount``."""
    return int(_CONTEXT.divide_int(amount, price))


def lifetime(credit: Decimal, burn: Decimal) -> float:
    """The seconds ``credit`` lasts at ``burn`` per second (not 0)."""
    return float(_CONTEXT.divide(credit, burn))


def stored_size(path: str, fields: Mapping[str, Value]) -> int:
    """The bytes a record stores: its path, and each tag with its value's canonical encoding."""
    return len(path.encode()) + sum(len(tag) + len(encode(v)) for tag, v in fields.items())


class Accounts:
    """The credit of principals in one space.  Balances are journaled when the space
    is durable; every method must be called with the shell's lock held.

    What the space **burns** goes to the account of its ``operator`` (the node
    operator's principal): the firings and method steps paid, the creation charge,
    and what records drain and hold when they end.  So the credit in the accounts,
    the operator's included, plus what the records hold is conserved: only
    :meth:`grant` and minting add to it.  The operator's balance counts the credit
    the records have drained since they last settled (``drained``, which the
    record store computes); it is read when asked for, not kept up to date.
    """

    def __init__(self, engine: Engine, operator: str, drained: Callable[[], Decimal]) -> None:
        check_principal(operator)
        self._engine = engine
        self._balances: dict[str, Credit] = {}
        self.operator = operator
        self._drained = drained

    def balance(self, principal: str) -> Credit:
        """The credit of ``principal`` (0 for an account never granted any)."""
        balance = self._balances.get(principal, ZERO)
        if principal == self.operator:
            return Credit(balance + self._drained())
        return balance

    def grant(self, principal: str, amount: object) -> Credit:
        """Add ``amount`` to the account of ``principal``; its new balance."""
        check_principal(principal)
        amount = to_credit(amount, "amount")
        self._check_room(principal)
        self._add(principal, amount)
        return self.balance(principal)

    def check(self, principal: str, cost: Decimal) -> None:
        """Raise InsufficientCredit unless ``principal`` can pay ``cost``."""
        check_principal(principal)
        balance = self.balance(principal)
        if balance < cost:
            raise short_of(principal, balance, cost)

    def debit(self, principal: str, cost: Decimal) -> None:
        """Take ``cost`` from the account of ``principal`` (see :meth:`check`)."""
        self.check(principal, cost)
        if cost:
            if principal == self.operator:
                self._settle_drained()
            self._set(principal, Credit(self._balances.get(principal, ZERO) - cost))

    def charge(self, principal: str, cost: Decimal) -> None:
        """Take ``cost`` from ``principal`` and burn it: it goes to the operator."""
        self.debit(principal, cost)
        self.burn(cost)

    def burn(self, amount: Decimal) -> None:
        """Credit the operator with ``amount`` that was burned."""
        if amount:
            self._add(self.operator, amount)

    def transfer(self, source: str, target: str, amount: object) -> Credit:
        """Move ``amount`` (more than 0) from the account of ``source`` to that of
        ``target``, all or nothing; the new balance of ``source``.  InsufficientCredit
        if it holds less; LimitReached if ``target`` would be an account past
        ``MAX_ACCOUNTS``."""
        check_principal(source)
        check_principal(target)
        amount = to_credit(amount, "amount")
        if not amount:
            raise InvalidValue("a transfer moves an amount of credit more than 0", "amount")
        self._check_room(target)
        self.debit(source, amount)
        self._add(target, amount)
        return self.balance(source)

    def _check_room(self, principal: str) -> None:
        """LimitReached if ``principal`` would be a new account past ``MAX_ACCOUNTS``."""
        if principal in self._balances or principal == self.operator or len(self._balances) < MAX_ACCOUNTS:
            return
        raise LimitReached(
            f"a space keeps at most {MAX_ACCOUNTS} accounts; {principal!r} is not one of them",
            limit="max_accounts",
            maximum=MAX_ACCOUNTS,
        )

    def _add(self, principal: str, amount: Decimal) -> None:
        self._set(principal, Credit(self._balances.get(principal, ZERO) + amount))

    def _settle_drained(self) -> None:
        """Make what the records drained part of the operator's kept balance."""
        self._engine.records.settle_all()

    def _set(self, principal: str, balance: Credit) -> None:
        self._balances[principal] = balance
        journal = self._engine.journal
        if journal is not None:
            journal.put_row(AccountRow(principal, str(balance)))

    def load(self, rows: Iterable[AccountRow]) -> None:
        for principal, balance in rows:
            self._balances[principal] = Credit(balance)

    def __len__(self) -> int:
        return len(self._balances)


def short_of(principal: str, balance: Credit, cost: Decimal) -> InsufficientCredit:
    """The error of ``principal``, which holds ``balance``, asked to pay ``cost``."""
    return InsufficientCredit(
        f"{principal!r} holds {balance} credit; this costs {cost}",
        principal=principal,
        needed=Credit(cost),
        available=balance,
    )


def check_principal(principal: object) -> None:
    """InvalidValue unless ``principal`` names an account (a str of 1 to
    ``MAX_PRINCIPAL`` characters)."""
    if not isinstance(principal, str) or not 0 < len(principal) <= MAX_PRINCIPAL:
        raise InvalidValue(
            f"a principal is a str of 1 to {MAX_PRINCIPAL} characters, got {principal!r:.200}", "principal"
        )
