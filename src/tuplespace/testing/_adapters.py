"""Asyncio spaces seen through the method names of :class:`tuplespace.Space`, so that the
contract suite, written once with blocking calls, runs over them too.

:class:`SyncOverAsync` runs each coroutine of an asyncio space (:class:`tuplespace.AsyncSpace`,
:class:`tuplespace.client.AsyncRemoteSpace`, a Redis space's...) on an event loop in a
background thread and waits for its result; its subscriptions, transactions, records and
leases are wrapped the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import tuplespace as ts

from .._events import EVENT_KINDS
from .._federation._remote import AsyncRemoteRecord as AsyncCoapRecord
from .._federation._subscribe import AsyncCoapSubscription
from .._lease import AsyncLease
from ..client import AsyncRemoteRecord, AsyncRemoteRecordWatch
from ._threads import PATIENCE

__all__ = [
    "SyncOverAsync",
    "SyncRecord",
    "SyncRecordWatch",
    "SyncRules",
    "SyncSubscription",
    "SyncTransaction",
    "SyncUpcall",
]

T = TypeVar("T")


class SyncOverAsync:
    """An :class:`tuplespace.AsyncSpace` seen through the method names of
    :class:`tuplespace.Space`: each call runs the coroutine on an event loop in a
    background thread and waits for its result, so a blocking call really waits
    as a coroutine on that loop.

    Its leases (:class:`tuplespace.AsyncLease`) are seen as :class:`tuplespace.Lease`;
    the subscriptions and transactions of a remote space open when awaited.
    """

    def __init__(self, aspace: Any = None) -> None:
        self.aspace = aspace
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="space-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the adapter's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _lease(self, lease: ts.Lease | AsyncLease) -> ts.Lease:
        if isinstance(lease, AsyncLease):
            return ts.Lease(_AsyncLeaseHost(self, lease), lease.seq, lease.expires_at)
        return lease

    def write(self, t: Any, lease: float | None = None, timeout: float | None = None) -> ts.Lease:
        return self._lease(self.run(self.aspace.write(t, lease, timeout)))

    def write_many(self, tuples: Any, lease: float | None = None) -> list[ts.Lease]:
        return [self._lease(x) for x in self.run(self.aspace.write_many(tuples, lease))]

    def read(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self.run(self.aspace.read(template, timeout))

    def take(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self.run(self.aspace.take(template, timeout))

    def try_read(self, template: Any) -> tuple[Any, ...] | None:
        return self.run(self.aspace.try_read(template))

    def try_take(self, template: Any) -> tuple[Any, ...] | None:
        return self.run(self.aspace.try_take(template))

    def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self.run(self.aspace.read_all(template, limit, timeout))

    def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self.run(self.aspace.take_all(template, limit, timeout))

    def count(self, template: Any) -> int:
        return self.run(self.aspace.count(template))

    def replace(
        self, template: Any, successor: Any, lease: float | None = None, timeout: float | None = None
    ) -> tuple[Any, ...]:
        return self.run(self.aspace.replace(template, successor, lease, timeout))

    def write_if_absent(self, template: Any, t: Any, lease: float | None = None) -> bool:
        return self.run(self.aspace.write_if_absent(template, t, lease))

    def subscribe(
        self,
        template: Any,
        events: Any = EVENT_KINDS,
        *,
        since: int | None = None,
        max_pending: int = 1000,
        lease: float | None = None,
        existing: bool = False,
    ) -> SyncSubscription:
        async def subscribe() -> Any:
            return await _opened(
                self.aspace.subscribe(
                    template,
                    events,
                    since=since,
                    max_pending=max_pending,
                    lease=lease,
                    **({} if existing is False else {"existing": existing}),
                )
            )

        return SyncSubscription(self, self.run(subscribe()))

    def transaction(self, lease: float | None = 60.0) -> SyncTransaction:
        async def begin() -> Any:
            return await _opened(self.aspace.transaction(lease))

        return SyncTransaction(self, self.run(begin()))

    # -- records: AsyncRecord handles, seen as tuplespace.Record ---------------------------

    def create(
        self, path: str, fields: Any, credit: Any = None, lease: float | None = None, **kw: Any
    ) -> Any:
        return self.wrap(self.run(self.aspace.create(path, fields, credit, lease, **kw)))

    def record(self, ref: Any, **options: Any) -> Any:
        return self.wrap(self.run(self.aspace.record(ref, **options)))

    def find(self, template: Any, under: str | None = None, limit: int | None = None) -> list[Any]:
        found: list[Any] = self.wrap(self.run(self.aspace.find(template, under, limit)))
        return found

    def try_take_record(self, template: Any, under: str | None = None) -> Any:
        return self.run(self.aspace.try_take_record(template, under))

    def take_record(self, template: Any, under: str | None = None, timeout: float | None = None) -> Any:
        return self.run(self.aspace.take_record(template, under, timeout))

    def watch_records(self, under: str | None = None, **kw: Any) -> Any:
        return self.wrap(self.run(_opened(self.aspace.watch_records(under, **kw))))

    def grant_credit(self, principal: str, amount: Any) -> ts.Credit:
        return self.run(self.aspace.grant_credit(principal, amount))

    def account(self, principal: str) -> ts.Credit:
        return self.run(self.aspace.account(principal))

    @property
    def rules(self) -> SyncRules:
        """The space's rules, seen through the calls of :class:`tuplespace.Rules`."""
        return SyncRules(self, self.aspace.rules)

    def transfer_credit(self, source: str, target: str, amount: Any) -> ts.Credit:
        return self.run(self.aspace.transfer_credit(source, target, amount))

    def wrap(self, result: Any) -> Any:
        """``result`` with its async record handles and watches seen as sync ones."""
        handles, watches = _record_types()
        if isinstance(result, handles):
            return SyncRecord(self, result)
        if isinstance(result, watches):
            return SyncRecordWatch(self, result)
        if isinstance(result, list):
            return [self.wrap(x) for x in result]
        return result

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.run(self.aspace.statistics())
        return stats

    def close(self) -> None:
        self.run(self.aspace.close())

    def shutdown(self) -> None:
        """Close the space, then stop the loop once every task on it has finished."""

        async def finish() -> None:
            if self.aspace is not None:
                await self.aspace.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(finish())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(PATIENCE)
            if not self._thread.is_alive():
                self.loop.close()


def _record_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """The classes of async record handles and of their watches: the embedded, remote
    (over HTTP and CoAP) and, with the ``redis`` extra installed, Redis ones."""
    handles: tuple[type, ...] = (ts.AsyncRecord, AsyncRemoteRecord, AsyncCoapRecord)
    watches: tuple[type, ...] = (ts.AsyncRecordWatch, AsyncRemoteRecordWatch, AsyncCoapSubscription)
    try:
        from ..stores import AsyncRedisRecord, AsyncRedisRecordWatch
    except ImportError:
        return handles, watches
    return (*handles, AsyncRedisRecord), (*watches, AsyncRedisRecordWatch)


async def _opened(handle: Any) -> Any:
    """A subscription or transaction, opened if it opens when awaited (a remote one)."""
    return await handle if inspect.isawaitable(handle) else handle


async def _awaited(result: Awaitable[T]) -> T:
    return await result


class _AsyncLeaseHost:
    """Renews and cancels an :class:`AsyncLease` for a :class:`tuplespace.Lease`."""

    def __init__(self, adapter: SyncOverAsync, lease: AsyncLease) -> None:
        self._adapter = adapter
        self._lease = lease

    def _renew(self, seq: int, seconds: float | None) -> float | None:
        self._adapter.run(self._lease.renew(seconds))
        return self._lease.expires_at

    def _cancel(self, seq: int) -> None:
        self._adapter.run(self._lease.cancel())


class SyncRules:
    """The rules of an asyncio space (:class:`tuplespace.AsyncRulesAPI`) seen through
    the calls of :class:`tuplespace.Rules`."""

    def __init__(self, host: SyncOverAsync, rules: ts.AsyncRulesAPI) -> None:
        self._host = host
        self._rules = rules

    def add(self, name: str, **definition: Any) -> ts.RuleInfo:
        return self._host.run(self._rules.add(name, **definition))

    def list(self) -> list[ts.RuleInfo]:
        return self._host.run(self._rules.list())

    def get(self, name: str) -> ts.RuleInfo:
        return self._host.run(self._rules.get(name))

    def remove(self, name: str) -> None:
        self._host.run(self._rules.remove(name))

    def statistics(self) -> dict[str, Any]:
        return self._host.run(self._embedded().statistics())

    @property
    def limits(self) -> ts.ActiveLimits:
        return self._embedded().limits

    @limits.setter
    def limits(self, limits: ts.ActiveLimits) -> None:
        self._host.run(self._embedded().set_limits(limits))

    @property
    def firing_charge(self) -> ts.Credit:
        return self._embedded().firing_charge

    @firing_charge.setter
    def firing_charge(self, amount: ts.Credit | int | str) -> None:
        self._host.run(self._embedded().set_firing_charge(amount))

    @property
    def step_charge(self) -> ts.Credit:
        return self._embedded().step_charge

    @step_charge.setter
    def step_charge(self, amount: ts.Credit | int | str) -> None:
        self._host.run(self._embedded().set_step_charge(amount))

    def _embedded(self) -> ts.AsyncRules:
        """The rules of an embedded asyncio space, whose limits and charges are set here."""
        rules = self._rules
        if not isinstance(rules, ts.AsyncRules):
            raise AttributeError(f"{type(rules).__name__} has no limits or charges to set from here")
        return rules


class SyncSubscription:
    """An :class:`tuplespace.AsyncSubscription` seen through the names of
    :class:`tuplespace.Subscription`; its coroutines run on the adapter's loop."""

    def __init__(self, adapter: SyncOverAsync, subscription: ts.AsyncSubscription) -> None:
        self._adapter = adapter
        self.subscription = subscription

    @property
    def last_seq(self) -> int:
        return self.subscription.last_seq

    @property
    def closed(self) -> bool:
        return self.subscription.closed

    def get(self, timeout: float | None = None) -> ts.Event | None:
        return self._adapter.run(self.subscription.get(timeout))

    def __iter__(self) -> SyncSubscription:
        return self

    def __next__(self) -> ts.Event:
        async def anext() -> ts.Event:
            return await self.subscription.__anext__()

        try:
            return self._adapter.run(anext())
        except StopAsyncIteration:
            raise StopIteration from None

    def renew(self, lease: float | None) -> None:
        self._adapter.run(self.subscription.renew(lease))

    def close(self) -> None:
        self._adapter.run(self.subscription.close())

    def statistics(self) -> dict[str, Any]:
        return self.subscription.statistics()

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._adapter.run(self.subscription.__aexit__(*exc_info))


class SyncRecord:
    """An :class:`tuplespace.AsyncRecord` (or a remote one) seen through the names of
    :class:`tuplespace.Record`: each awaited method runs on the adapter's loop (a watch
    is opened there); its properties are read as they are."""

    def __init__(self, adapter: SyncOverAsync, record: Any) -> None:
        self._adapter = adapter
        self.record = record

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.record, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if inspect.isawaitable(result):
                result = self._adapter.run(_awaited(result))
            return self._adapter.wrap(result)

        return call

    def on_change(self, fn: Callable[[ts.Change], object], **options: Any) -> SyncUpcall:
        """The record's upcall (``await record.on_change(...)``), with ``fn`` called in a
        thread of the loop's executor, one change after the other: as a sync handle's
        upcall calls it in a thread of its own, a slow ``fn`` holds up no call of the
        space, and it may cancel its own upcall."""

        async def call(change: ts.Change) -> None:
            await asyncio.to_thread(fn, change)

        return SyncUpcall(self._adapter, self._adapter.run(self.record.on_change(call, **options)))

    def __tuplespace_uri__(self) -> ts.URI:
        """Where a value goes, the adapter is the handle it wraps."""
        return self.record.__tuplespace_uri__()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SyncRecord) and other.record == self.record

    def __hash__(self) -> int:
        return hash(self.record)


class SyncUpcall:
    """An :class:`tuplespace.AsyncUpcall` seen through the names of :class:`tuplespace.Upcall`."""

    def __init__(self, adapter: SyncOverAsync, upcall: Any) -> None:
        self._run = adapter.run
        self.upcall = upcall

    @property
    def active(self) -> bool:
        return self.upcall.active

    def statistics(self) -> dict[str, int]:
        return self.upcall.statistics()

    def cancel(self) -> None:
        self._run(self.upcall.cancel())


class SyncRecordWatch:
    """An :class:`tuplespace.AsyncRecordWatch` (or a remote one) seen through the names of
    :class:`tuplespace.RecordWatch`."""

    def __init__(self, adapter: SyncOverAsync, watch: Any) -> None:
        self._run = adapter.run
        self.watch = watch

    @property
    def last_seq(self) -> int:
        return self.watch.last_seq

    @property
    def closed(self) -> bool:
        return self.watch.closed

    def get(self, timeout: float | None = None) -> ts.Change | None:
        return self._run(self.watch.get(timeout))

    def __iter__(self) -> Iterator[ts.Change]:
        return self

    def __next__(self) -> ts.Change:
        change = self.get()
        if change is None:
            raise StopIteration
        return change

    def renew(self, lease: float | None) -> None:
        self._run(self.watch.renew(lease))

    def close(self) -> None:
        self._run(self.watch.close())

    def statistics(self) -> dict[str, Any]:
        return self.watch.statistics()

    def __enter__(self) -> SyncRecordWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncTransaction:
    """An :class:`tuplespace.AsyncTransaction` seen through the names of
    :class:`tuplespace.Transaction`; its coroutines run on the adapter's loop."""

    def __init__(self, adapter: SyncOverAsync, transaction: ts.AsyncTransaction) -> None:
        self._run = adapter.run
        self.transaction = transaction

    @property
    def state(self) -> str:
        return self.transaction.state

    @property
    def expires_at(self) -> float | None:
        return self.transaction.expires_at

    def write(self, t: Any, lease: float | None = None) -> None:
        self._run(self.transaction.write(t, lease))

    def write_many(self, tuples: Any, lease: float | None = None) -> None:
        self._run(self.transaction.write_many(tuples, lease))

    def read(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.transaction.read(template, timeout))

    def take(self, template: Any, timeout: float | None = None) -> tuple[Any, ...]:
        return self._run(self.transaction.take(template, timeout))

    def try_read(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.transaction.try_read(template))

    def try_take(self, template: Any) -> tuple[Any, ...] | None:
        return self._run(self.transaction.try_take(template))

    def read_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self._run(self.transaction.read_all(template, limit, timeout))

    def take_all(
        self, template: Any, limit: int | None = None, timeout: float | None = 0
    ) -> list[tuple[Any, ...]]:
        return self._run(self.transaction.take_all(template, limit, timeout))

    def count(self, template: Any) -> int:
        return self._run(self.transaction.count(template))

    def commit(self) -> None:
        self._run(self.transaction.commit())

    def abort(self) -> None:
        self._run(self.transaction.abort())

    def renew(self, lease: float | None) -> None:
        self._run(self.transaction.renew(lease))

    def __enter__(self) -> SyncTransaction:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._run(self.transaction.__aexit__(*exc_info))
