"""The handlers of spaces and their operations, claims, leases, tokens and metrics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._aio import AsyncSpace, AsyncTransaction
from .._codec import to_wire
from .._errors import (
    Forbidden,
    InvalidValue,
    NotFound,
    SpaceClosed,
    SpaceFull,
    TransactionError,
    Unauthorized,
)
from .._httpapi import OPERATION
from .._lease import Lease
from .._templates import Template
from .._values import Tuple
from ..client._common import AsyncLease
from ._auth import permissions_for
from ._errors import coded
from ._metrics import metrics_answer
from ._requests import (
    ServiceRequest,
    check_keys,
    get_bool,
    get_cursor,
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
    lease_out,
    locked_call,
    wire_or_null,
)
from ._service_rules import remove_kept_rules_of, remove_rules_of

if TYPE_CHECKING:
    from ..stores import AsyncRedisSpace, AsyncRedisTransaction

__all__ = ["Operations"]


class Operations(ApiBase):
    """Health, spaces, the operations of a space, claims, leases, tokens and metrics."""

    # -- health, spaces ---------------------------------------------------------------

    async def health(self, request: ServiceRequest) -> Answer:
        if self.stopping:
            raise SpaceClosed("the server is shutting down")
        return json_answer({"status": "ok", "version": __version__})

    async def list_spaces(self, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        await self.hub.refresh()
        out = []
        for name, info in sorted(self.hub.spaces.items()):
            if "read" in permissions_for(self.tokens, caller.grant, name, info.anonymous):
                out.append({"name": name, "options": info.options(), "statistics": await info.statistics()})
        return json_answer({"spaces": out})

    async def put_space(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        await self.authorize(caller, space, OPERATION["put_space"])
        body = await read_body(request, self.limits.max_body, optional=True)
        info, created = await self.hub.create(space, body)
        return json_answer({"name": info.name, "options": info.options()}, 201 if created else 200)

    async def get_space(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = await self.authorize(caller, space, OPERATION["get_space"])
        if info is None:
            raise NotFound(f"no space {space!r}")
        return json_answer(
            {"name": info.name, "options": info.options(), "statistics": await info.statistics()}
        )

    async def delete_space(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = await self.authorize(caller, space, OPERATION["delete_space"])
        if info is None:
            raise NotFound(f"no space {space!r}")
        await self.hub.delete(info)
        return NO_CONTENT

    # -- operations ----------------------------------------------------------------------

    async def write(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["write"])
        t = get_tuple(body, "tuple", self.limits.wire)
        lease = get_lease(body)
        timeout = get_timeout(body)
        target = await self.space(caller, space, info)
        aspace = target.aspace
        if timeout == 0:
            written = await aspace.write(t, lease, 0)
            return json_answer({"lease": lease_out(written.seq, written.expires_at)})

        async def write(wait: float | None) -> Lease | AsyncLease:
            return await aspace.write(t, lease, wait)

        result, more = await self.poll(request, caller, timeout, write)
        if result is not None:
            return json_answer({"lease": lease_out(result.seq, result.expires_at)})
        if more:
            return json_answer({"lease": None, "more": True})
        capacity = target.options()["capacity"]
        message = "the space stayed full: no room for the tuple in time"
        raise SpaceFull(message, limit="capacity", maximum=capacity)

    async def write_many(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["write_many"])
        tuples = get_tuples(body, "tuples", self.limits.wire, self.limits.max_batch)
        lease = get_lease(body)
        aspace = (await self.space(caller, space, info)).aspace
        leases = await aspace.write_many(tuples, lease)
        return json_answer({"leases": [lease_out(x.seq, x.expires_at) for x in leases]})

    async def read(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["read"])
        template = get_template(body, "template", self.limits.wire)
        timeout = get_timeout(body)
        aspace = (await self.space(caller, space, info)).aspace
        if timeout == 0:
            return json_answer({"tuple": wire_or_null(await aspace.try_read(template))})
        found, more = await self.poll(request, caller, timeout, lambda wait: aspace.read(template, wait))
        return json_answer(found_answer(found, more))

    async def take(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["take"])
        template = get_template(body, "template", self.limits.wire)
        timeout = get_timeout(body)
        claim = get_bool(body, "claim")
        confirm = self._claim_ids(body)
        target = await self.space(caller, space, info)
        unconfirmed = [cid for cid in confirm if not await self._confirm(target, caller, cid)]
        if claim:
            found, more, held = await self.claimed_take(
                request,
                caller,
                target,
                timeout,
                lambda tx, wait: tx.try_take(template) if wait == 0 else tx.take(template, wait),
            )
            out = found_answer(None, more) if held is None else {"tuple": to_wire(found), "claim": held}
        else:
            aspace = target.aspace
            if timeout == 0:
                out = {"tuple": wire_or_null(await aspace.try_take(template))}
            else:
                found, more = await self.poll(
                    request, caller, timeout, lambda wait: aspace.take(template, wait)
                )
                out = found_answer(found, more)
        if unconfirmed:
            out["unconfirmed"] = unconfirmed
        return json_answer(out)

    async def read_all(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["read_all"])
        template = get_template(body, "template", self.limits.wire)
        limit = get_limit(body)
        after = get_cursor(body)
        timeout = get_timeout(body)
        target = await self.space(caller, space, info)
        page = Page(self.limits)
        if target.space is None:
            if after is not None:
                message = f"a space kept in {target.host} gives no cursors"
                raise coded(InvalidValue(message, "cursor"), "bad_request")
            kept = target.aspace
            found, cut, more = await self.waiting_page(
                request,
                caller,
                timeout,
                lambda wait: self._kept_page(kept, template, False, limit, page, wait),
            )
            return page.answer(found, {"more": True} if cut is not None or more else {})
        aspace = target.local("cursors")
        found, cursor, more = await self.waiting_page(
            request,
            caller,
            timeout,
            lambda wait: aspace.find_page(template, False, limit, page.fits, after, wait),
        )
        if cursor is not None:
            return page.answer(found, {"more": True, "cursor": str(cursor)})
        return page.answer(found, {"more": True} if more else {})

    async def take_all(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["take_all"])
        template = get_template(body, "template", self.limits.wire)
        limit = get_limit(body)
        timeout = get_timeout(body)
        claim = get_bool(body, "claim")
        confirm = self._claim_ids(body)
        target = await self.space(caller, space, info)
        unconfirmed = [cid for cid in confirm if not await self._confirm(target, caller, cid)]
        page = Page(self.limits)
        if claim:
            self.hub.check_handle_room(caller.client)
            tx, secret = self._claiming(caller, target)
            claimed = False
            try:
                taken, cut, more = await self.waiting_page(
                    request, caller, timeout, lambda wait: self._claimed_page(tx, template, limit, page, wait)
                )
                out: dict[str, Any] = {"more": True} if cut is not None or more else {}
                if taken:
                    await tx.renew(self.claim_lease)
                    out["claim"] = self._claim(caller, target, tx, secret)
                    claimed = True
            finally:
                if not claimed:
                    await tx.abort()
        elif target.space is None:
            kept = target.aspace
            taken, cut, more = await self.waiting_page(
                request,
                caller,
                timeout,
                lambda wait: self._kept_page(kept, template, True, limit, page, wait),
            )
            out = {"more": True} if cut is not None or more else {}
        else:
            aspace = target.local("claims")
            taken, cut, more = await self.waiting_page(
                request,
                caller,
                timeout,
                lambda wait: aspace.find_page(template, True, limit, page.fits, None, wait),
            )
            out = {"more": True} if cut is not None or more else {}
        if unconfirmed:
            out["unconfirmed"] = unconfirmed
        return page.answer(taken, out)

    async def _kept_page(
        self,
        aspace: AsyncSpace | AsyncRedisSpace,
        template: Template,
        take: bool,
        limit: int | None,
        page: Page,
        wait: float | None,
    ) -> tuple[list[Tuple], int | None]:
        """A page of a read_all or take_all of a space kept elsewhere (Redis), which has
        no cursors: the tuples found, as many as ``page`` keeps (a take writes the others
        back at once), and how many matches were left out (0: there may be more to
        take), or None when none were."""
        most = self.limits.max_results if limit is None else min(limit, self.limits.max_results)
        room = limit is None or limit > most
        if take:
            found = await aspace.take_all(template, most, wait)
        else:  # one more than a page shows whether there is more than a page
            found = await aspace.read_all(template, most + 1 if room else most, wait)
        kept = page.fits(found)
        if kept < len(found):
            if take:
                await aspace.write_many(found[kept:])
            return found[:kept], len(found) - kept
        return found, 0 if take and room and len(found) == most else None

    async def _claimed_page(
        self,
        tx: AsyncTransaction | AsyncRedisTransaction,
        template: Template,
        limit: int | None,
        page: Page,
        wait: float | None,
    ) -> tuple[list[Tuple], int | None]:
        """A page of a take_all under a claim; the claim's lease covers a wait too, so it
        cannot run out before the take."""
        if wait != 0:
            await tx.renew(self.claim_lease + self.long_poll)
        return await tx.find_page(template, True, limit, page.fits, wait)

    async def count(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["count"])
        template = get_template(body, "template", self.limits.wire)
        aspace = (await self.space(caller, space, info)).aspace
        return json_answer({"count": await aspace.count(template)})

    async def replace(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["replace"])
        template = get_template(body, "template", self.limits.wire)
        t = get_tuple(body, "tuple", self.limits.wire)
        lease = get_lease(body)
        timeout = get_timeout(body)
        aspace = (await self.space(caller, space, info)).aspace
        old, more = await self.poll(
            request, caller, timeout, lambda wait: aspace.replace(template, t, lease, wait)
        )
        return json_answer(found_answer(old, more))

    async def write_if_absent(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["write_if_absent"])
        template = get_template(body, "template", self.limits.wire)
        t = get_tuple(body, "tuple", self.limits.wire)
        lease = get_lease(body)
        aspace = (await self.space(caller, space, info)).aspace
        return json_answer({"written": await aspace.write_if_absent(template, t, lease)})

    # -- claims ---------------------------------------------------------------------------

    async def confirm_claim(self, space: str, claim: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["confirm_claim"]), space)
        if not await self._confirm(info, caller, claim):
            message = f"no claim {claim} (it ran out or was released: its tuple went back)"
            raise coded(NotFound(message), "unknown_claim")
        return NO_CONTENT

    async def release_claim(self, space: str, claim: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["release_claim"]), space)
        if info.space is None:  # kept in Redis: the claim is there, whichever server made it
            state = await self._end_kept_claim(info, caller, claim, False)
        else:
            handle = self.hub.find("claim", claim, info, caller.owner)
            if handle is not None:
                await handle.tx.abort()
                self.hub.forget(claim)
                return NO_CONTENT
            state = self.hub.ended_state(claim, caller.owner)
        if state == "committed":
            raise TransactionError(f"claim {claim} was confirmed: the take is final")
        if state is None:
            raise coded(NotFound(f"no claim {claim}"), "unknown_claim")
        return NO_CONTENT

    # -- leases ---------------------------------------------------------------------------

    async def renew_lease(self, space: str, lease_id: int, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["renew_lease"]), space)
        body = await read_body(request, self.limits.max_body, optional=True)
        check_keys(body, OPERATION["renew_lease"].fields)
        lease = get_lease(body)
        local = info.space
        if local is None:  # kept elsewhere: through the lease of its own face
            aspace = info.aspace
            assert not isinstance(aspace, AsyncSpace)
            held = AsyncLease(aspace, lease_id, None)
            await held.renew(lease)
            return json_answer({"expires_at": held.expires_at})
        expires = await locked_call(local, local.core.engine.renew, lease_id, lease)
        return json_answer({"expires_at": expires})

    async def cancel_lease(self, space: str, lease_id: int, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["cancel_lease"]), space)
        local = info.space
        if local is None:
            aspace = info.aspace
            assert not isinstance(aspace, AsyncSpace)
            await AsyncLease(aspace, lease_id, None).cancel()
        else:
            await locked_call(local, local.core.engine.cancel, lease_id)
        return NO_CONTENT

    # -- tokens, metrics -----------------------------------------------------------------

    def _token_admin(self, request: ServiceRequest) -> Caller:
        caller = self.caller(request)
        if not self.tokens.enabled:
            raise NotFound("this server checks no tokens (start it with tokens to use this API)")
        if caller.grant is None:
            raise Unauthorized("the token API needs an admin token")
        if not caller.grant.admin:
            raise Forbidden(f"the token {caller.grant.name!r} is not an admin token")
        return caller

    async def list_tokens(self, request: ServiceRequest) -> Answer:
        self._token_admin(request)
        return json_answer({"tokens": [g.describe() for g in self.tokens.grants()]})

    async def create_token(self, request: ServiceRequest) -> Answer:
        self._token_admin(request)
        body = await read_body(request, self.limits.max_body)
        try:
            grant, secret = await asyncio.to_thread(self.tokens.create, body)
        except ValueError as exc:
            message = str(exc).removeprefix("body: ").removeprefix("body.")
            raise coded(InvalidValue(message), "bad_request") from None
        return json_answer({**grant.describe(), "token": secret}, 201)

    async def revoke_token(self, name: str, request: ServiceRequest) -> Answer:
        self._token_admin(request)
        grant = await asyncio.to_thread(self.tokens.revoke, name)
        await self.token_work.end(grant)
        spaces = [info.hosted.space for info in self.hub.spaces.values() if info.hosted.space is not None]
        await asyncio.to_thread(remove_rules_of, spaces, grant.name)
        await remove_kept_rules_of(list(self.hub.spaces.values()), grant.name)
        return NO_CONTENT

    async def metrics(self, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        if self.tokens.enabled and (caller.grant is None or not caller.grant.admin):
            raise self._denied(caller, "admin", "*")
        return metrics_answer(self)
