"""The handlers of credit transfers and minting (docs/http-api.md, "Records").

A caller moves credit out of its own account (its token's name, or ``anonymous``);
an admin of the space may name another as ``principal``.  Minting needs no
permission on the space: a stamp is its own price (docs/active.md, "Minting").
"""

from __future__ import annotations

from .._codec import to_wire
from .._credit import check_principal
from .._errors import InvalidValue
from .._httpapi import OPERATION
from ._errors import coded, placed
from ._requests import ServiceRequest
from ._service import Answer, json_answer
from ._service_records import RecordRoutes, _get_credit

__all__ = ["CreditRoutes"]


class CreditRoutes(RecordRoutes):
    """Credit: transfers between accounts, and minting for proof of work."""

    async def transfer_credit(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["transfer_credit"])
        info = self._existing(info, space)
        source = self._principal(caller, info, body)
        target = body["to"]
        try:
            check_principal(target)
        except InvalidValue as exc:
            message = f"to is the name of an account: {exc.reason}"
            raise coded(InvalidValue(message, "to"), "bad_request") from None
        amount = _get_credit(body, "amount")
        if amount is None:
            raise coded(InvalidValue("amount is an amount of credit", "amount"), "bad_request")
        try:
            balance = await info.aspace.transfer_credit(source, target, amount)
        except InvalidValue as exc:
            raise placed(exc, "amount" if exc.path is None else None) from None
        return json_answer({"principal": source, "balance": to_wire(balance)})

    async def credit_challenge(self, space: str, request: ServiceRequest) -> Answer:
        info = self._existing(
            await self.authorize(self.caller(request), space, OPERATION["credit_challenge"]), space
        )
        c = await info.aspace.credit_challenge()
        return json_answer(
            {"challenge": c.challenge, "bits": c.bits, "amount": to_wire(c.amount), "expires": c.expires}
        )

    async def mint_credit(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["mint_credit"])
        info = self._existing(info, space)
        principal = self._principal(caller, info, body)
        balance = await info.aspace.mint_credit(body["challenge"], body["nonce"], principal=principal)
        return json_answer({"principal": principal, "balance": to_wire(balance)})
