"""Credit: accounts, grants, transfers and minting (docs/http-api.md, "Records";
docs/federation.md, "Credit over CoAP").

Each operation is a function here, whatever transport asks: it takes the space's
asyncio face, the account the request acts for, which its transport has already
checked the caller may name (over HTTP a token's name or the body's ``principal``,
over CoAP a peer's account or ``?principal=``), and the request's JSON body, and
answers a JSON-ready dict or raises an error of the tree.  :class:`CreditRoutes`
binds them to the requests of HTTP and the channel; a node's ``$credit`` resources
to CoAP's.

A caller moves credit out of its own account (its token's name, or ``anonymous``);
an admin of the space may name another as ``principal``.  Minting needs no
permission on the space: a stamp is its own price (docs/active.md, "Minting").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from .._aio import AsyncSpace
from .._codec import to_wire
from .._credit import check_principal
from .._errors import InvalidValue
from .._httpapi import OPERATION
from .._values import Credit
from ._errors import coded, placed
from ._requests import ServiceRequest
from ._service import Answer, json_answer
from ._service_records import RecordRoutes, get_credit, own_account

if TYPE_CHECKING:
    from ..stores import AsyncRedisSpace

    Face: TypeAlias = AsyncSpace | AsyncRedisSpace

__all__ = [
    "CreditRoutes",
    "credit_challenge",
    "get_account",
    "grant_credit",
    "mint_credit",
    "transfer_credit",
]


def _balance(principal: str, balance: Credit) -> dict[str, Any]:
    return {"principal": principal, "balance": to_wire(balance)}


def _amount(body: dict[str, Any]) -> Credit:
    amount: Credit | None = get_credit(body, "amount")
    if amount is None:
        raise coded(InvalidValue("amount is an amount of credit", "amount"), "bad_request")
    return amount


async def get_account(aspace: Face, principal: str) -> dict[str, Any]:
    """The operation ``get_account``: the credit in ``principal``'s account."""
    return _balance(principal, await aspace.account(principal))


async def credit_challenge(aspace: Face) -> dict[str, Any]:
    """The operation ``credit_challenge``: the challenge to make stamps on
    (Forbidden if the space mints no credit)."""
    c = await aspace.credit_challenge()
    return {"challenge": c.challenge, "bits": c.bits, "amount": to_wire(c.amount), "expires": c.expires}


async def grant_credit(aspace: Face, principal: str, body: dict[str, Any]) -> dict[str, Any]:
    """The operation ``grant_credit``: add the body's ``amount`` to ``principal``'s
    account; its new balance."""
    amount = _amount(body)
    try:
        balance = await aspace.grant_credit(principal, amount)
    except InvalidValue as exc:
        raise placed(exc, "amount" if exc.path != "principal" else None) from None
    return _balance(principal, balance)


async def transfer_credit(aspace: Face, source: str, body: dict[str, Any]) -> dict[str, Any]:
    """The operation ``transfer_credit``: move the body's ``amount`` from ``source``'s
    account to the account named ``to``; the new balance of ``source``."""
    target = body.get("to")
    try:
        check_principal(target)
    except InvalidValue as exc:
        message = f"to is the name of an account: {exc.reason}"
        raise coded(InvalidValue(message, "to"), "bad_request") from None
    assert isinstance(target, str)
    amount = _amount(body)
    try:
        balance = await aspace.transfer_credit(source, target, amount)
    except InvalidValue as exc:
        raise placed(exc, "amount" if exc.path is None else None) from None
    return _balance(source, balance)


async def mint_credit(aspace: Face, principal: str, body: dict[str, Any]) -> dict[str, Any]:
    """The operation ``mint_credit``: mint the space's ``mint_amount`` into
    ``principal``'s account for the stamp of the body (its ``challenge`` and
    ``nonce``); the new balance."""
    challenge, nonce = body.get("challenge", ""), body.get("nonce", "")
    return _balance(principal, await aspace.mint_credit(challenge, nonce, principal=principal))


class CreditRoutes(RecordRoutes):
    """Credit over HTTP and the channel: accounts, grants, transfers and minting."""

    async def grant_credit(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["grant_credit"])
        principal = body["principal"]
        if type(principal) is not str:
            raise coded(InvalidValue("principal is the name of an account", "principal"), "bad_request")
        target = await self.space(caller, space, info)
        return json_answer(await grant_credit(target.aspace, principal, body))

    async def get_account(self, space: str, principal: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        needs: tuple[str, ...] = () if principal == own_account(caller) else ("admin",)
        info = self._existing(await self.authorize(caller, space, needs), space)
        return json_answer(await get_account(info.aspace, principal))

    async def transfer_credit(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["transfer_credit"])
        info = self._existing(info, space)
        return json_answer(await transfer_credit(info.aspace, self._principal(caller, info, body), body))

    async def credit_challenge(self, space: str, request: ServiceRequest) -> Answer:
        info = self._existing(
            await self.authorize(self.caller(request), space, OPERATION["credit_challenge"]), space
        )
        return json_answer(await credit_challenge(info.aspace))

    async def mint_credit(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["mint_credit"])
        info = self._existing(info, space)
        return json_answer(await mint_credit(info.aspace, self._principal(caller, info, body), body))
