"""The handlers of transactions: begun, used, committed, aborted and renewed by id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._aio import AsyncTransaction
from .._errors import InvalidValue, TransactionAborted, TransactionError
from .._httpapi import OPERATION, Operation
from ._errors import coded
from ._hosting import Handle, SpaceInfo
from ._requests import (
    ServiceRequest,
    check_keys,
    get_lease,
    get_limit,
    get_template,
    get_timeout,
    get_tuple,
    get_tuples,
    read_body,
)
from ._service import (
    NO_CONTENT,
    Answer,
    ApiBase,
    Caller,
    Page,
    found_answer,
    json_answer,
    wire_or_null,
)

if TYPE_CHECKING:
    from ..stores import AsyncRedisTransaction

__all__ = ["Transactions"]


class Transactions(ApiBase):
    """Transactions over HTTP; each is bound to the token that began it."""

    def _transaction(self, caller: Caller, info: SpaceInfo, tx_id: str) -> Handle:
        handle = self.hub.find("transaction", tx_id, info, caller.owner)
        if handle is not None:
            return handle
        state = self.hub.ended_state(tx_id, caller.owner)
        if state == "aborted":
            raise TransactionAborted(f"transaction {tx_id} was aborted")
        if state is not None:
            raise TransactionError(f"transaction {tx_id} has ended")
        message = f"no transaction {tx_id} in space {info.name!r}"
        raise coded(TransactionError(message), "unknown_transaction")

    async def begin_transaction(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = await self.authorize(caller, space, OPERATION["begin_transaction"])
        body = await read_body(request, self.limits.max_body, optional=True)
        check_keys(body, OPERATION["begin_transaction"].fields)
        lease = 60.0 if "lease" not in body else get_lease(body)
        if lease is None:
            raise InvalidValue("a transaction's lease is a positive number of seconds", "lease")
        target = await self.space(caller, space, info)
        self.hub.check_handle_room(caller.client)
        tx = await target.transaction(lease)
        handle = self.hub.add("transaction", target, tx, caller.owner, caller.client)
        return json_answer({"id": handle.id, "expires_at": tx.expires_at})

    async def _tx_begin(
        self,
        request: ServiceRequest,
        space: str,
        tx_id: str,
        op: Operation,
    ) -> tuple[Caller, AsyncTransaction | AsyncRedisTransaction, dict[str, Any]]:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, op), space)
        body = await read_body(request, self.limits.max_body)
        check_keys(body, op.fields, op.required)
        return caller, self._transaction(caller, info, tx_id).transaction, body

    async def tx_write(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        _, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_write"])
        t = get_tuple(body, "tuple", self.limits.wire)
        await tx.write(t, get_lease(body))
        return NO_CONTENT

    async def tx_write_many(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        _, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_write_many"])
        tuples = get_tuples(body, "tuples", self.limits.wire, self.limits.max_batch)
        await tx.write_many(tuples, get_lease(body))
        return NO_CONTENT

    async def tx_read(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        caller, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_read"])
        template = get_template(body, "template", self.limits.wire)
        timeout = get_timeout(body)
        if timeout == 0:
            return json_answer({"tuple": wire_or_null(await tx.try_read(template))})
        found, more = await self.poll(request, caller, timeout, lambda wait: tx.read(template, wait))
        return json_answer(found_answer(found, more))

    async def tx_take(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        caller, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_take"])
        template = get_template(body, "template", self.limits.wire)
        timeout = get_timeout(body)
        if timeout == 0:
            return json_answer({"tuple": wire_or_null(await tx.try_take(template))})
        found, more = await self.poll(request, caller, timeout, lambda wait: tx.take(template, wait))
        return json_answer(found_answer(found, more))

    async def tx_read_all(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        caller, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_read_all"])
        return await self._tx_page(request, caller, tx, body, False)

    async def tx_take_all(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        caller, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_take_all"])
        return await self._tx_page(request, caller, tx, body, True)

    async def _tx_page(
        self,
        request: ServiceRequest,
        caller: Caller,
        tx: AsyncTransaction | AsyncRedisTransaction,
        body: dict[str, Any],
        take: bool,
    ) -> Answer:
        """A read_all or take_all in a transaction: one page, ``"more": true`` when it is
        cut short (or its wait is); a take_all is asked again for the rest, a read_all
        has no cursor (the transaction's own writes have no place in the space's order)."""
        template = get_template(body, "template", self.limits.wire)
        limit = get_limit(body)
        page = Page(self.limits)
        found, cut, more = await self.waiting_page(
            request,
            caller,
            get_timeout(body),
            lambda wait: tx.find_page(template, take, limit, page.fits, wait),
        )
        return page.answer(found, {"more": True} if cut is not None or more else {})

    async def tx_count(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        _, tx, body = await self._tx_begin(request, space, tx_id, OPERATION["tx_count"])
        template = get_template(body, "template", self.limits.wire)
        return json_answer({"count": await tx.count(template)})

    async def _tx_handle(
        self, space: str, tx_id: str, request: ServiceRequest, op: Operation
    ) -> tuple[Handle, dict[str, Any]]:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, op), space)
        body = await read_body(request, self.limits.max_body, optional=True)
        return self._transaction(caller, info, tx_id), body

    async def tx_commit(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        op = OPERATION["tx_commit"]
        handle, body = await self._tx_handle(space, tx_id, request, op)
        check_keys(body, op.fields)
        try:
            await handle.tx.commit()
        finally:
            self.hub.forget(handle.id)
        return NO_CONTENT

    async def tx_abort(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        op = OPERATION["tx_abort"]
        handle, body = await self._tx_handle(space, tx_id, request, op)
        check_keys(body, op.fields)
        await handle.tx.abort()
        self.hub.forget(handle.id)
        return NO_CONTENT

    async def tx_renew(self, space: str, tx_id: str, request: ServiceRequest) -> Answer:
        op = OPERATION["tx_renew"]
        handle, body = await self._tx_handle(space, tx_id, request, op)
        check_keys(body, op.fields, op.required)
        lease = get_lease(body)
        if lease is None:
            raise InvalidValue("a transaction's lease is a positive number of seconds", "lease")
        await handle.transaction.renew(lease)
        return json_answer({"expires_at": handle.transaction.expires_at})
