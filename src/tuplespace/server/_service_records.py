"""The handlers of records (docs/records.md over docs/http-api.md, "Records").

A request names its record by ``ref``: a path, the record's address, or a
capability's address, as :meth:`tuplespace.Space.record` takes it.  A capability
address is its own permission: the request needs no token, and may do what the
capability allows.  Otherwise the caller's permissions on the space decide, and
``id`` (the record's number, from an earlier answer) pins the request to that one
record: it fails once the record is gone, even if another took its path.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from .._aio import AsyncRecord, AsyncRecordWatch, AsyncSpace, AsyncTransaction
from .._codec import from_wire, template_from_wire, to_wire
from .._credit import to_credit
from .._errors import Forbidden, InvalidTemplate, InvalidValue, NotAllowed, ValueTooLarge, WireError
from .._events import CHANGE_KINDS, Change
from .._httpapi import MAX_COUNTER, OPERATION, Operation
from .._names import check_path, check_tag
from .._recordhandles import RecordData
from .._recordstore import ROOT_RID
from .._templates import RecordTemplate
from .._values import Limits, Map, Value
from ._auth import permissions_for, valid_space_name
from ._claims import RecordClaim
from ._errors import coded, placed
from ._hosting import SpaceInfo
from ._requests import ServiceRequest, check_keys, get_bool, get_lease, get_limit, get_timeout, read_body
from ._service import NO_CONTENT, Answer, Caller, Messages, Notice, json_answer
from ._service_events import EventRoutes

if TYPE_CHECKING:
    from ..stores import AsyncRedisRecord, AsyncRedisRecordWatch, AsyncRedisTransaction

    Handle: TypeAlias = AsyncRecord | AsyncRedisRecord

__all__ = ["RecordRoutes", "change_notice", "get_credit", "own_account", "record_template_from_wire"]

_COMPUTED = ("$credit", "$lifetime", "$refcount", "$level")
# What a capability must allow for each operation of the table on a record (None: any
# capability will do).
_CAPABILITY_OPS = {
    "open_record": None,
    "get_record": "read",
    "set_record": "set",
    "call_record": "set",  # a method may set the record's fields
    "refresh_record": "refresh",
    "clone_record": "clone",
    "destroy_record": "destroy",
}
# The operations on a record that only its full handle may do, as NotAllowed names them.
_FULL_HANDLE_OPS = {"move_record": "move", "make_capability": "capability", "read_only_record": "capability"}


def _is_capability(ref: str) -> bool:
    """Whether ``ref`` is a capability's address (``…/spaces/<name>/$cap/<token>``):
    a path never holds ``$``."""
    return "://" in ref and "/$cap/" in ref


class RecordRoutes(EventRoutes):
    """Records: create, open, read, set, call a method, refresh, clone, move, destroy, find, take,
    capabilities, and their changes as Server-Sent Events."""

    # -- naming a record --------------------------------------------------------------------

    async def _record_request(
        self, request: ServiceRequest, space: str, op: Operation
    ) -> tuple[Caller, SpaceInfo, Handle, dict[str, Any]]:
        """Who asks, the space, the handle the request's ``ref`` names (checked against
        the caller's rights to do ``op``) and the body."""
        caller = self.caller(request)
        if not valid_space_name(space):
            await self.authorize(caller, space, ())  # the 400 naming the space
        body = await read_body(request, self.limits.max_body)
        check_keys(body, op.fields, op.required)
        ref = body["ref"]
        if type(ref) is not str or not ref:
            message = "ref is a path, a record's address or a capability's"
            raise coded(InvalidValue(message, "ref"), "bad_request")
        rid = body.get("id")
        if rid is not None and (type(rid) is not int or not 0 <= rid <= MAX_COUNTER):
            message = f"id is a record's number (an integer from 0 to {MAX_COUNTER})"
            raise coded(InvalidValue(message, "id"), "bad_request")
        if _is_capability(ref):
            if rid is not None:
                message = "a capability names its record: give no id with it"
                raise coded(InvalidValue(message, "id"), "bad_request")
            info = self._existing(await self.hub.get(space), space)
            handle = await self._resolve(info, ref, caller)
            full = _FULL_HANDLE_OPS.get(op.name)
            if full is not None:
                # NotAllowed: only the record's full handle can
                handle._full(full)  # noqa: SLF001 (the handle's own check)
            else:
                operation = _CAPABILITY_OPS[op.name]
                if operation is not None and operation not in handle.operations:
                    raise _not_allowed(handle, operation)
            return caller, info, handle, body
        info = self._existing(await self.authorize(caller, space, op), space)
        if rid is not None:
            return caller, info, await _by_id(info, rid), body
        return caller, info, await self._resolve(info, ref, caller), body

    async def _resolve(self, info: SpaceInfo, ref: str, caller: Caller) -> Handle:
        """The handle ``ref`` names; a path a record moved away from costs ``caller``'s
        own account the space's ``redirect_charge``."""
        principal = own_account(caller)
        try:
            return await info.aspace.record(ref, principal=principal)
        except Exception as exc:
            raise placed(exc, "ref") from None

    def _principal(self, caller: Caller, info: SpaceInfo, body: dict[str, Any]) -> str:
        """Whose account pays: the caller's (its token's name, or ``anonymous``), or the
        ``principal`` named in the body by an admin of the space."""
        own = own_account(caller)
        named = body.get("principal")
        if named is None or named == own:
            return own
        if type(named) is not str or not named:
            raise coded(InvalidValue("principal is the name of an account", "principal"), "bad_request")
        if "admin" not in permissions_for(self.tokens, caller.grant, info.name, info.anonymous):
            raise Forbidden(f"only an admin of space {info.name!r} may charge another account")
        return named

    # -- creating, opening, reading ----------------------------------------------------------

    async def create_record(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["create_record"])
        path = _get_path(body)
        fields = self._get_fields(body)
        credit = get_credit(body, "credit")
        lease = get_lease(body)
        target = await self.space(caller, space, info)
        principal = self._principal(caller, target, body)
        try:
            rec = await target.aspace.create(path, fields, credit, lease, principal=principal)
        except Exception as exc:
            raise placed(exc, "fields") from None
        return json_answer({"record": await _record_out(rec)}, 201)

    async def open_record(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, _ = await self._record_request(request, space, OPERATION["open_record"])
        return json_answer({"handle": _handle_out(handle)})

    async def get_record(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, body = await self._record_request(request, space, OPERATION["get_record"])
        if "tags" not in body:
            if "default" in body:
                raise coded(InvalidValue("default goes with tags", "default"), "bad_request")
            return json_answer({"record": await _record_out(handle)})
        tags = body["tags"]
        if type(tags) is not list or not tags or not all(type(t) is str for t in tags):
            raise coded(InvalidValue("tags is a non-empty list of tags", "tags"), "bad_request")
        if len(tags) > self.limits.wire.max_fields:
            most = self.limits.wire.max_fields
            message = f"{len(tags)} tags, more than {most}"
            raise ValueTooLarge(message, "tags", limit="max_fields", maximum=most)
        if "default" in body and len(tags) > 1:
            raise coded(InvalidValue("default goes with one tag", "default"), "bad_request")
        default = self._get_value(body, "default") if "default" in body else None
        try:
            if len(tags) == 1:
                try:
                    values: tuple[Value, ...] = (await handle.get(tags[0], default),)
                except InvalidValue as exc:
                    exc.path = "[0]" + exc.path
                    raise
            else:
                values = await handle.view(*tags)  # its errors name the tag: [2]
        except Exception as exc:
            raise placed(exc, "tags") from None
        return json_answer({"values": [to_wire(v) for v in values]})

    # -- changing ---------------------------------------------------------------------------

    async def set_record(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, body = await self._record_request(request, space, OPERATION["set_record"])
        tag = body["tag"]
        if type(tag) is not str:
            raise coded(InvalidValue("tag is a string", "tag"), "bad_request")
        try:
            check_tag(tag)
        except InvalidValue as exc:
            raise placed(exc, "tag") from None
        value = self._get_value(body, "value")
        try:
            version = await handle.set(tag, value)
        except InvalidValue as exc:  # its path starts at the tag: ["tag"][1]
            exc.path = exc.path.removeprefix(f'["{tag}"]')
            raise placed(exc, "value") from None
        except Exception as exc:
            raise placed(exc, "value") from None
        return json_answer({"version": version})

    async def call_record(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, handle, body = await self._record_request(request, space, OPERATION["call_record"])
        tag = body["tag"]
        if type(tag) is not str:
            raise coded(InvalidValue("tag is a string", "tag"), "bad_request")
        args: Value = ()
        if body.get("args") is not None:
            if type(body["args"]) is not list:
                raise coded(InvalidValue("args is a list of values", "args"), "bad_request")
            args = self._get_value(body, "args")
        assert isinstance(args, tuple)
        principal = self._principal(caller, info, body)
        try:
            result = await handle.call(tag, *args, principal=principal)
        except InvalidValue as exc:  # the path names an argument (args[1]) or the tag
            if not exc.path.startswith("args"):
                exc.path = ""
                raise placed(exc, "tag") from None
            raise
        return json_answer({"value": to_wire(result)})

    async def refresh_record(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, handle, body = await self._record_request(request, space, OPERATION["refresh_record"])
        credit = get_credit(body, "credit")
        lease = get_lease(body)
        principal = self._principal(caller, info, body)
        expires = await handle.refresh(credit, lease, principal=principal)
        return json_answer({"expires_at": expires})

    async def clone_record(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, handle, body = await self._record_request(request, space, OPERATION["clone_record"])
        path = _get_path(body)
        credit = get_credit(body, "credit")
        lease = get_lease(body)
        principal = self._principal(caller, info, body)
        try:
            copy = await handle.clone(path, credit, lease, principal=principal)
        except InvalidValue as exc:
            raise placed(exc, "path" if exc.path == "" else None) from None
        return json_answer({"record": await _record_out(copy)}, 201)

    async def move_record(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, body = await self._record_request(request, space, OPERATION["move_record"])
        path = _get_path(body)
        redirect = 3600.0 if "redirect_lease" not in body else _get_redirect(body)
        await handle.move(path, redirect)
        return json_answer({"address": to_wire(handle.address), "version": await handle.get("$version")})

    async def destroy_record(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, body = await self._record_request(request, space, OPERATION["destroy_record"])
        await handle.destroy(get_bool(body, "force"))
        return NO_CONTENT

    # -- capabilities ---------------------------------------------------------------------------

    async def make_capability(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, body = await self._record_request(request, space, OPERATION["make_capability"])
        ops = body["operations"]
        if type(ops) is not list or not all(type(op) is str for op in ops):
            raise coded(InvalidValue("operations is a list of operations", "operations"), "bad_request")
        lease = get_lease(body)
        try:
            cap = await handle.capability(frozenset(ops), lease)
        except InvalidValue as exc:
            raise placed(exc, "operations") from None
        return json_answer(_handle_out(cap), 201)

    async def read_only_record(self, space: str, request: ServiceRequest) -> Answer:
        _, _, handle, _ = await self._record_request(request, space, OPERATION["read_only_record"])
        return json_answer(_handle_out(await handle.read_only()))

    async def revoke_capability(self, space: str, request: ServiceRequest) -> Answer:
        caller = self.caller(request)
        info = self._existing(await self.authorize(caller, space, OPERATION["revoke_capability"]), space)
        body = await read_body(request, self.limits.max_body)
        op = OPERATION["revoke_capability"]
        check_keys(body, op.fields, op.required)
        ref = body["ref"]
        if type(ref) is not str or not _is_capability(ref):
            raise coded(InvalidValue("ref is the address of a capability", "ref"), "bad_request")
        if info.space is None:
            try:
                await info.kept().revoke_capability(ref)
            except Exception as exc:
                raise placed(exc, "ref") from None
            return NO_CONTENT
        handle = await self._resolve(info, ref, caller)
        assert isinstance(handle, AsyncRecord)
        owner = AsyncRecord(
            info.embedded("records").core,
            handle.rid,
            handle._token,  # noqa: SLF001 (a capability's secret, kept by the handle the server made)
            handle.operations,
            owner=True,
        )
        await owner.revoke()
        return NO_CONTENT

    # -- finding and taking -----------------------------------------------------------------------

    async def find_records(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["find_records"])
        template = self._get_record_template(body)
        under = _get_under(body)
        requested = get_limit(body)
        most = self.limits.max_results
        limit = most if requested is None or requested > most else requested
        target = await self.space(caller, space, info)
        try:
            found = await target.aspace.find(template.fields, under, limit + 1)
        except InvalidValue as exc:
            raise placed(exc, "under") from None
        records: list[dict[str, Any]] = []
        left = self.limits.max_answer  # bytes
        for r in found[:limit]:
            record = await _record_out(r)
            left -= len(orjson.dumps(record)) + 1
            if left < 0 and records:
                break
            records.append(record)
        kept = len(records)
        out: dict[str, Any] = {"records": records}
        if kept < len(found) and (kept < limit or requested is None or requested > most):
            out["more"] = True
        return json_answer(out)

    async def take_record(self, space: str, request: ServiceRequest) -> Answer:
        caller, info, body = await self._begin(request, space, OPERATION["take_record"])
        template = self._get_record_template(body)
        under = _get_under(body)
        timeout = get_timeout(body)
        claim = get_bool(body, "claim")
        confirm = self._claim_ids(body)
        target = await self.space(caller, space, info)
        unconfirmed = [cid for cid in confirm if not await self._confirm(target, caller, cid)]
        face = target.aspace
        held: list[RecordClaim] = []
        kept_claim: dict[str, Any] | None = None

        def hold(rid: int) -> None:  # under the space's lock, as soon as the record is held
            held.append(RecordClaim(aspace.core, rid, self.claim_lease))

        async def kept_take(
            tx: AsyncTransaction | AsyncRedisTransaction, wait: float | None
        ) -> RecordData | None:
            assert not isinstance(face, AsyncSpace)
            assert not isinstance(tx, AsyncTransaction)
            if wait == 0:
                return await face.try_take_record(template, under, claim=tx)
            return await face.take_record(template, under, wait, claim=tx)

        if claim and target.space is not None:
            aspace = target.local("claimed takes of records")
            self.hub.check_handle_room(caller.client)
        try:
            if claim and target.space is None:  # kept in Redis: held there by a claim
                taken, more, kept_claim = await self.claimed_take(request, caller, target, timeout, kept_take)
            elif claim:
                taken, more = await self.poll(
                    request,
                    caller,
                    timeout,
                    lambda wait: aspace.take_record(template, under, wait, hold=hold),
                )
            elif timeout == 0:
                taken, more = await face.try_take_record(template, under), False
            else:
                taken, more = await self.poll(
                    request, caller, timeout, lambda wait: face.take_record(template, under, wait)
                )
        except InvalidValue as exc:
            raise placed(exc, "under") from None
        out: dict[str, Any] = {"record": None if taken is None else _data_out(taken)}
        if held:
            handle = self.hub.add("claim", target, held[0], caller.owner, caller.client)
            out["claim"] = {"id": handle.id, "expires_at": held[0].expires_at}
        elif kept_claim is not None:
            out["claim"] = kept_claim
        if more:
            out["more"] = True
        if unconfirmed:
            out["unconfirmed"] = unconfirmed
        return json_answer(out)

    # -- watching ---------------------------------------------------------------------------------

    async def record_events(self, space: str, request: ServiceRequest) -> Messages:
        caller = self.caller(request)
        params, kinds, since = self.stream_params(
            request, ("under", "events", "since", "ref", "id"), CHANGE_KINDS
        )
        ref = params.get("ref")
        handle: Handle | None = None
        if ref is not None:
            if "under" in params or "events" in params:
                field = "under" if "under" in params else "events"
                message = "a record's watch takes neither under nor events"
                raise coded(InvalidValue(message, field), "bad_request")
            if _is_capability(ref):
                if "id" in params:
                    message = "a capability names its record: give no id with it"
                    raise coded(InvalidValue(message, "id"), "bad_request")
                if not valid_space_name(space):
                    await self.authorize(caller, space, ())
                target = self._existing(await self.hub.get(space), space)
                handle = await self._resolve(target, ref, caller)
            else:
                target = self._existing(
                    await self.authorize(caller, space, OPERATION["record_events"]), space
                )
                rid = params.get("id")
                if rid is not None:
                    if not (rid.isascii() and rid.isdigit()) or len(rid) > 18:
                        raise coded(InvalidValue("id is a record's number", "id"), "bad_request")
                    handle = await _by_id(target, int(rid))
                else:
                    handle = await self._resolve(target, ref, caller)
        else:
            if "id" in params:
                raise coded(InvalidValue("id goes with ref", "id"), "bad_request")
            info = await self.authorize(caller, space, OPERATION["record_events"])
            under = params.get("under") or None
            target = await self.space(caller, space, info)

        def open_watch(after: int | None) -> AsyncRecordWatch | AsyncRedisRecordWatch:
            if handle is not None:
                return handle.watch(after, self.limits.max_pending)
            return target.aspace.watch_records(under, kinds, since=after, max_pending=self.limits.max_pending)

        try:
            return await self.open_stream(caller, since, open_watch, change_notice)
        except Exception as exc:
            raise placed(exc, "under" if handle is None else "ref") from None

    # -- reading the body ----------------------------------------------------------------------------

    def _get_value(self, body: dict[str, Any], key: str) -> Value:
        try:
            return from_wire(body[key], self.limits.wire)
        except (WireError, InvalidValue) as exc:
            raise placed(exc, key) from None

    def _get_fields(self, body: dict[str, Any]) -> Map:
        obj = body["fields"]
        if type(obj) is not dict:
            raise WireError("fields is a JSON object of tags and values", "fields")
        value = self._get_value(body, "fields")
        if not isinstance(value, Map):
            raise WireError("fields is a JSON object of tags and values", "fields")
        return value

    def _get_record_template(self, body: dict[str, Any]) -> RecordTemplate:
        return record_template_from_wire(body["template"], self.limits.wire)


def record_template_from_wire(obj: Any, limits: Limits) -> RecordTemplate:
    """The record template that the parsed JSON ``obj`` (an object of tags and template
    fields) encodes; :class:`~tuplespace.InvalidTemplate` (field ``template``) if it
    is none, naming the path of the offending field."""
    if type(obj) is not dict:
        raise InvalidTemplate("a record template is a JSON object of tags and template fields", "template")
    try:
        fields = template_from_wire([obj], limits).fields[0]
        return RecordTemplate(fields)
    except (WireError, InvalidValue, InvalidTemplate) as exc:
        exc.path = exc.path.removeprefix("[0]")
        raise placed(exc, "template") from None
    except ValueError as exc:  # a library under a template field refused it (lxml: NUL in an XPath)
        raise InvalidTemplate(str(exc), "template") from None


def own_account(caller: Caller) -> str:
    """The caller's own account: its token's name, or ``anonymous``."""
    return "anonymous" if caller.grant is None else caller.grant.name


async def _by_id(info: SpaceInfo, rid: int) -> Handle:
    """The full handle of the record numbered ``rid`` of the space ``info``."""
    if info.space is not None:
        return AsyncRecord(info.space.core, rid)
    try:
        return await info.kept().record_by_id(rid)
    except Exception as exc:
        raise placed(exc, "id") from None


def _not_allowed(handle: Handle, operation: str) -> NotAllowed:
    return NotAllowed(
        f"this handle does not allow {operation} (it allows {', '.join(sorted(handle.operations))})",
        operation=operation,
        allowed=handle.operations,
    )


def _get_path(body: dict[str, Any]) -> str:
    path = body["path"]
    if type(path) is not str:
        raise coded(InvalidValue("path is a record's path, like sensors/kitchen", "path"), "bad_request")
    try:
        return check_path(path)
    except InvalidValue as exc:
        raise placed(exc, "path") from None


def _get_under(body: dict[str, Any]) -> str | None:
    under = body.get("under")
    if under is not None and type(under) is not str:
        raise coded(InvalidValue("under is a path or null", "under"), "bad_request")
    return under


def get_credit(body: dict[str, Any], key: str) -> Any:
    """An amount of credit: a wire credit (``{"$credit": "12.5"}``), a decimal string or
    an integer; absent or null is none."""
    obj = body.get(key)
    if obj is None:
        return None
    if type(obj) is dict:
        try:
            obj = from_wire(obj)
        except (WireError, InvalidValue) as exc:
            raise placed(exc, key) from None
    if type(obj) is bool or not isinstance(obj, (int, str, Decimal)):
        raise coded(InvalidValue(f"{key} is an amount of credit", key), "bad_request")
    try:
        return to_credit(obj, key)
    except (InvalidValue, ArithmeticError, ValueError) as exc:
        raise InvalidValue(f"{key} is an amount of credit: {exc}", key) from None


def _get_redirect(body: dict[str, Any]) -> float | None:
    value = body["redirect_lease"]
    if value == 0 and type(value) in (int, float):
        return 0.0
    return get_lease(body, "redirect_lease")


def _handle_out(handle: Handle) -> dict[str, Any]:
    out: dict[str, Any] = {
        "address": to_wire(handle.address),
        "operations": sorted(handle.operations),
        "expires_at": handle.expires_at,
    }
    if not handle.is_capability:
        out["id"] = handle.rid
    return out


def _data_out(data: RecordData) -> dict[str, Any]:
    return {
        "address": to_wire(data.address),
        "version": data.version,
        "tags": list(data.fields),
        "fields": to_wire(data.fields),
    }


async def _record_out(handle: Handle) -> dict[str, Any]:
    """What a record holds, and its computed tags, read at one instant."""
    rid = handle.rid
    if isinstance(handle, AsyncRecord):
        store = handle._store  # noqa: SLF001 (the handle's record store)
        token = handle._token  # noqa: SLF001 (a capability's secret, kept by the handle)
        with handle._core.lock:  # noqa: SLF001 (the core the handle holds)
            address, fields, version = store.snapshot(rid, token)
            computed = () if rid == ROOT_RID else store.view(rid, token, _COMPUTED)
        data = RecordData(address, fields, version)
    else:
        data, computed = await handle.snapshot_view(*(() if rid == ROOT_RID else _COMPUTED))
    out = _data_out(data)
    out["computed"] = {tag: to_wire(v) for tag, v in zip(_COMPUTED, computed, strict=False)}
    if not handle.is_capability:
        out["id"] = handle.rid
    return out


def change_notice(change: Change) -> Notice:
    """A record change as a notice of its stream."""
    data = {
        "seq": change.seq,
        "kind": change.kind,
        "path": change.path,
        "tag": change.tag,
        "value": to_wire(change.value),
        "version": change.version,
        "time": change.time,
    }
    return Notice(change.kind, data, change.seq)
