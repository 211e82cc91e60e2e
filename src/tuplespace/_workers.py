"""Workers: processes that live on a space (seed: Polyester's AbstractWorker and
CleaningWorker).

- :class:`Worker` watches templates and calls its handler once for every matching
  tuple, including those already there when it starts.  It reads; the tuples stay
  for others to see.  :class:`AsyncWorker` is its asyncio form.
- :class:`WorkerPool` takes jobs, each inside a transaction: a handler that raises,
  or a worker that dies, puts the job back; after ``retries`` failures the job is
  moved to a dead letter.
- :class:`Cleaner` removes tuples once they are older than a lifetime;
  :class:`AsyncCleaner` is its asyncio form.

They use only the public operations of a space, so they work on every kind: an
embedded :class:`~tuplespace.Space`, a remote one, one kept in Redis, one over CoAP, and
(the asyncio forms) their asyncio twins (:class:`~tuplespace.AsyncSpace`,
``ts.connect_async(...)``).
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._errors import EventsLost, Timeout, TransactionAborted
from ._space import Transaction
from ._templates import ANY, Template, compile_template
from ._values import Tuple, Value, value_key

__all__ = ["AsyncCleaner", "AsyncWorker", "Cleaner", "Worker", "WorkerPool"]

logger = logging.getLogger("tuplespace")

Handler = Callable[[Tuple], Any]
_HANDLED = frozenset({"present", "write"})


def _covering(templates: list[Template]) -> tuple[Any, ...]:
    """A template of the same arity that matches whatever one of ``templates`` (several,
    of one arity) matches: the exact values they all share, ANY elsewhere."""
    shared = set.intersection(*(set(t.exact) for t in templates))
    positions = {pos for pos, _ in shared}
    first = templates[0]
    return tuple(first.fields[pos] if pos in positions else ANY for pos in range(first.arity))


def _output(result: Any) -> list[Any]:
    """What a handler returned, as the tuples to write: None, a tuple, or a list of tuples."""
    if result is None:
        return []
    if isinstance(result, list):
        return result
    return [result]


class _Watching(abc.ABC):
    """What :class:`Worker` and :class:`AsyncWorker` share: the templates, grouped by
    arity, each group followed by one subscription (``existing=True``, write events)
    whose template covers the group's; the tuples it gives are handed on if one of
    the group's templates matches them.  A tuple has one arity, so it comes from one
    subscription only, once, and the tuples of one arity come in the space's order."""

    def __init__(self, space: Any, templates: Iterable[Any], handler: Any, max_pending: int) -> None:
        self.space = space
        given = list(templates)
        if not given:
            raise ValueError("a worker needs at least one template")
        self.templates: list[Template] = [compile_template(t) for t in given]
        self._groups: dict[int, list[tuple[Any, Template]]] = {}
        for raw, template in zip(given, self.templates, strict=True):
            self._groups.setdefault(template.arity, []).append((raw, template))
        self.handler = handler
        self._max_pending = max_pending
        self._subscriptions: list[Any] = []
        self._stats = {"processed": 0, "failed": 0, "lost": 0}

    def _follows(self) -> list[tuple[Any, list[Template]]]:
        """For each group: the template its subscription follows, and the group's own."""
        return [
            (raw[0][0] if len(raw) == 1 else _covering([t for _, t in raw]), [t for _, t in raw])
            for raw in self._groups.values()
        ]

    def _subscribe(self, template: Any) -> Any:
        return self.space.subscribe(template, {"write"}, existing=True, max_pending=self._max_pending)

    @staticmethod
    def _wanted(event: Any, templates: list[Template]) -> bool:
        return event.kind in _HANDLED and (
            len(templates) == 1 or any(t.matches(event.tuple) for t in templates)
        )

    def _lost(self, exc: EventsLost) -> None:
        self._stats["lost"] += exc.oldest_available - exc.first_missing
        logger.error("worker fell behind: %s", exc)

    def _failed(self, t: Tuple) -> None:
        self._stats["failed"] += 1
        logger.exception("worker handler failed on %r", t)

    def statistics(self) -> dict[str, Any]:
        """Tuples processed, handler failures, events lost by falling behind, events
        pending and whether it runs."""
        pending = sum(s.statistics()["pending"] for s in self._subscriptions)
        return {**self._stats, "pending": pending, "running": self._running()}

    @abc.abstractmethod
    def _running(self) -> bool:
        """Whether the worker runs."""


class Worker(_Watching):
    """Calls ``handler(t)`` once for each tuple matching one of ``templates``: those
    already in the space when it starts, then each one written, in threads of its own.

    >>> worker = Worker(space, [("img", str)], lambda t: ("thumb", t[1])).start()  # doctest: +SKIP
    >>> worker.stop()                                                               # doctest: +SKIP

    It works on any space with the synchronous methods (embedded, remote, kept in
    Redis, over CoAP), through subscriptions with
    ``existing=True`` (see :meth:`~tuplespace.Space.subscribe`): one per arity of its
    templates, in a thread each; several templates of one arity share a subscription
    to a template covering them all (their common exact values, ANY elsewhere), whose
    tuples are filtered here.  A tuple matched by several templates is handled once.
    The tuples of one arity are handled in the space's order (those present, then
    each write); those of different arities interleaved as they come.  The handler is
    called by one thread at a time.
    The handler may return a tuple or a list of tuples: they are written to the
    space.  A handler that raises is logged and counted; the worker goes on.
    """

    def __init__(
        self, space: Any, templates: Iterable[Any], handler: Handler, *, max_pending: int = 1000
    ) -> None:
        super().__init__(space, templates, handler, max_pending)
        self._threads: list[threading.Thread] = []
        self._calling = threading.Lock()  # one handler call at a time
        self._stopping = False

    def start(self) -> Worker:
        """Start watching; returns the worker."""
        if self._threads:
            raise RuntimeError("the worker has already been started")
        follows = self._follows()
        try:
            for template, _ in follows:
                self._subscriptions.append(self._subscribe(template))
        except BaseException:
            for subscription in self._subscriptions:
                subscription.close()
            raise
        for subscription, (_, templates) in zip(self._subscriptions, follows, strict=True):
            thread = threading.Thread(
                target=self._follow, args=(subscription, templates), name="tuplespace-worker", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def _follow(self, subscription: Any, templates: list[Template]) -> None:
        while True:
            try:
                event = subscription.get()
            except EventsLost as exc:
                self._lost(exc)
                continue
            if event is None:
                return
            if self._wanted(event, templates):
                with self._calling:
                    if self._stopping:
                        return
                    self._handle(event.tuple)

    def _handle(self, t: Tuple) -> None:
        try:
            out = _output(self.handler(t))
            if out:
                self.space.write_many(out)
        except Exception:
            self._failed(t)
        else:
            self._stats["processed"] += 1

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching; waits up to ``timeout`` seconds for the handler in progress."""
        self._stopping = True
        for subscription in self._subscriptions:
            subscription.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def __enter__(self) -> Worker:
        return self if self._threads else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class AsyncWorker(_Watching):
    """The asyncio form of :class:`Worker`, for any asyncio space (an
    :class:`~tuplespace.AsyncSpace`, ``ts.connect_async(...)``): a task per template,
    and ``handler`` a function or a coroutine function (awaited).

    >>> async with AsyncWorker(aspace, [("img", str)], make_thumbnail) as worker:  # doctest: +SKIP
    ...     ...
    """

    def __init__(
        self,
        space: Any,
        templates: Iterable[Any],
        handler: Callable[[Tuple], Any | Awaitable[Any]],
        *,
        max_pending: int = 1000,
    ) -> None:
        super().__init__(space, templates, handler, max_pending)
        self._tasks: list[asyncio.Task[None]] = []
        self._calling = asyncio.Lock()
        self._stopping = False

    async def start(self) -> AsyncWorker:
        """Start watching (the subscriptions are in place when it returns); returns the worker."""
        if self._tasks:
            raise RuntimeError("the worker has already been started")
        follows = self._follows()
        try:
            for template, _ in follows:
                subscription = self._subscribe(template)
                self._subscriptions.append(subscription)
                await subscription.__aenter__()
        except BaseException:
            for subscription in self._subscriptions:
                await subscription.close()
            raise
        self._tasks = [
            asyncio.create_task(self._follow(s, templates), name="tuplespace-worker")
            for s, (_, templates) in zip(self._subscriptions, follows, strict=True)
        ]
        return self

    async def _follow(self, subscription: Any, templates: list[Template]) -> None:
        while True:
            try:
                event = await subscription.get()
            except EventsLost as exc:
                self._lost(exc)
                continue
            if event is None:
                return
            if self._wanted(event, templates):
                async with self._calling:
                    if self._stopping:
                        return
                    await self._handle(event.tuple)

    async def _handle(self, t: Tuple) -> None:
        try:
            result = self.handler(t)
            if inspect.isawaitable(result):
                result = await result
            out = _output(result)
            if out:
                await self.space.write_many(out)
        except Exception:
            self._failed(t)
        else:
            self._stats["processed"] += 1

    async def stop(self) -> None:
        """Stop watching; returns once the handler in progress has finished."""
        self._stopping = True
        for subscription in self._subscriptions:
            await subscription.close()
        await asyncio.gather(*self._tasks)

    def _running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def __aenter__(self) -> AsyncWorker:
        return self if self._tasks else await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _dead_letter(job: Tuple, error: BaseException) -> Tuple:
    return ("dead-letter", job, f"{type(error).__name__}: {error}")


class WorkerPool:
    """``workers`` threads that take jobs matching ``template`` and call ``handler(job)``.

    Each job is taken inside a transaction (of ``lease`` seconds), so a handler
    that raises, or a worker that dies, puts the job back in its place.  The tuples
    the handler returns (a tuple or a list of tuples) are written in the same
    transaction: the job is gone exactly when its results are there.  After
    ``retries`` failed attempts the job is replaced by ``dead_letter(job, error)``
    (by default ``("dead-letter", job, "Error: message")``).

    >>> pool = WorkerPool(space, ("job", int), lambda j: ("done", j[1]), workers=8).start()  # doctest: +SKIP
    """

    def __init__(
        self,
        space: Any,
        template: Any,
        handler: Handler,
        *,
        workers: int = 4,
        retries: int = 3,
        dead_letter: Callable[[Tuple, BaseException], Iterable[Value]] = _dead_letter,
        lease: float = 60.0,
    ) -> None:
        if workers < 1 or retries < 1:
            raise ValueError("workers and retries must be at least 1")
        self.space = space
        self.template = compile_template(template)
        self.handler = handler
        self.workers = workers
        self.retries = retries
        self.dead_letter = dead_letter
        self.lease = lease
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._waiting: set[Transaction] = set()
        self._attempts: dict[Any, int] = {}
        self._threads: list[threading.Thread] = []
        self._stats = {"done": 0, "failed_attempts": 0, "dead_lettered": 0}

    def start(self) -> WorkerPool:
        if self._threads:
            raise RuntimeError("the pool has already been started")
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"tuplespace-pool-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            tx = self.space.transaction(self.lease)
            with self._lock:
                if self._stopping.is_set():
                    tx.abort()
                    return
                self._waiting.add(tx)
            try:
                job = tx.take(self.template, timeout=self.lease / 2)
            except (Timeout, TransactionAborted):
                tx.abort()
                continue
            finally:
                with self._lock:
                    self._waiting.discard(tx)
            if tx.state != "active":  # stopped just as the job arrived: it is back in the space
                continue
            self._work(tx, job)

    def _work(self, tx: Transaction, job: Tuple) -> None:
        key = value_key(job)
        try:
            out = _output(self.handler(job))
            tx.write_many(out)
            tx.commit()
        except Exception as exc:
            with self._lock:
                attempts = self._attempts.get(key, 0) + 1
                self._stats["failed_attempts"] += 1
                final = attempts >= self.retries
                if final:
                    self._attempts.pop(key, None)
                else:
                    self._attempts[key] = attempts
            if not final or tx.state != "active":
                logger.warning("job %r failed (attempt %d of %d): %s", job, attempts, self.retries, exc)
                tx.abort()
                return
            logger.error("job %r failed %d times; moved to the dead letter: %s", job, attempts, exc)
            # In the job's own transaction: the job is gone exactly when its dead letter is there.
            tx.write(self.dead_letter(job, exc))
            tx.commit()
            with self._lock:
                self._stats["dead_lettered"] += 1
        else:
            with self._lock:
                self._attempts.pop(key, None)
                self._stats["done"] += 1

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking jobs; jobs in progress finish (waits up to ``timeout`` seconds)."""
        self._stopping.set()
        with self._lock:
            for tx in self._waiting:
                tx.abort()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def statistics(self) -> dict[str, Any]:
        """Jobs done, failed attempts, dead-lettered jobs, running workers."""
        with self._lock:
            return {**self._stats, "workers": sum(t.is_alive() for t in self._threads)}

    def __enter__(self) -> WorkerPool:
        return self if self._threads else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _check_max_age(max_age: float) -> float:
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age > 0:
        raise ValueError(f"max_age must be a positive number of seconds, got {max_age!r}")
    return max_age


class _Aging:
    """What :class:`Cleaner` and :class:`AsyncCleaner` share where the space has no
    lifetime rule: the tuples seen (present or written), each with the time (of this
    machine's monotonic clock) it is due to go, oldest first.  At most ``max_pending``
    wait here; the others wait in the subscription (in the space, for present ones)."""

    def __init__(self, max_age: float, max_pending: int) -> None:
        self.max_age = max_age
        self.max_pending = max_pending
        self.started = time.monotonic()
        self.due: deque[tuple[float, Tuple]] = deque()
        self.removed = 0

    def add(self, event: Any) -> None:
        if event.kind == "present":  # of unknown age: max_age from the start
            when = self.started + self.max_age
        else:
            when = time.monotonic() + self.max_age - max(0.0, time.time() - event.time)
        self.due.append((when, event.tuple))

    def wait(self) -> float | None:
        """Seconds until the oldest tuple is due (None: none waits here)."""
        return max(0.0, self.due[0][0] - time.monotonic()) if self.due else None

    def full(self) -> bool:
        return len(self.due) >= self.max_pending


class Cleaner:
    """Removes tuples matching ``template`` once they are ``max_age`` seconds old.

    >>> cleaner = Cleaner(space, ("log", ANY), max_age=3600)   # doctest: +SKIP
    >>> cleaner.stop()                                          # doctest: +SKIP

    On a space that has :meth:`~tuplespace.Space.add_lifetime` (an embedded space) it
    is a lifetime rule: removal is exact and needs no thread; each matching tuple
    written from now on gets a lease of at most ``max_age`` seconds, and those already
    in the space at most ``max_age`` seconds from now.  Removals are ``expire``
    events, and :meth:`stop` ends the rule for later writes.

    On any other space (remote, kept in Redis, over CoAP) a thread follows the template's subscription
    (``existing=True``) and takes each tuple once it is ``max_age`` old: by this
    machine's clock, from its write event's time, or from the cleaner's start for the
    tuples already there.  It takes a tuple equal to the one that aged, so in a space
    holding equal tuples that is the first of them in the space's order.  Removals
    are ``take`` events; at most ``max_pending`` tuples wait for their time in this
    process, the rest in the subscription.  :meth:`stop` ends the thread.
    """

    def __init__(self, space: Any, template: Any, max_age: float, *, max_pending: int = 1000) -> None:
        self.space = space
        self.template = template
        self.max_age = _check_max_age(max_age)
        self._rule = hasattr(space, "add_lifetime")
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._aging = _Aging(max_age, max_pending)
        if self._rule:
            space.add_lifetime(template, max_age)
        else:
            self._subscription = space.subscribe(template, {"write"}, existing=True, max_pending=max_pending)
            self._thread = threading.Thread(target=self._follow, name="tuplespace-cleaner", daemon=True)
            self._thread.start()
        self._active = True

    def _follow(self) -> None:
        aging, subscription = self._aging, self._subscription
        while not self._stopping.is_set():
            wait = aging.wait()
            if wait == 0 or (wait is not None and aging.full()):
                if self._stopping.wait(wait):
                    return
                if self.space.try_take(aging.due.popleft()[1]) is not None:
                    aging.removed += 1
                continue
            try:
                event = subscription.get(wait)
            except Timeout:
                continue
            except EventsLost as exc:
                logger.error("cleaner fell behind, some tuples are left to age: %s", exc)
                continue
            if event is None:
                return
            aging.add(event)

    def statistics(self) -> dict[str, Any]:
        """Tuples removed and waiting for their time here (both 0 for a lifetime rule,
        whose removals the space counts as expiries)."""
        return {"removed": self._aging.removed, "waiting": len(self._aging.due), "active": self._active}

    def stop(self) -> None:
        """Stop removing tuples (a lifetime rule: for the tuples written from now on)."""
        if not self._active:
            return
        self._active = False
        if self._rule:
            self.space.remove_lifetime(self.template, self.max_age)
            return
        self._stopping.set()
        self._subscription.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Cleaner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class AsyncCleaner:
    """The asyncio form of :class:`Cleaner`, for an :class:`~tuplespace.AsyncSpace` (a
    lifetime rule) or any other asyncio space (a task that follows the template's
    subscription and takes each tuple once it is ``max_age`` old).

    >>> async with AsyncCleaner(aspace, ("log", ANY), max_age=3600):   # doctest: +SKIP
    ...     ...
    """

    def __init__(self, space: Any, template: Any, max_age: float, *, max_pending: int = 1000) -> None:
        self.space = space
        self.template = template
        self.max_age = _check_max_age(max_age)
        self._rule = hasattr(space, "add_lifetime")
        self._aging = _Aging(max_age, max_pending)
        self._max_pending = max_pending
        self._subscription: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._active = False

    async def start(self) -> AsyncCleaner:
        """Start removing tuples; returns the cleaner."""
        if self._active:
            raise RuntimeError("the cleaner has already been started")
        if self._rule:
            await self.space.add_lifetime(self.template, self.max_age)
        else:
            self._subscription = self.space.subscribe(
                self.template, {"write"}, existing=True, max_pending=self._max_pending
            )
            await self._subscription.__aenter__()
            self._stopped = asyncio.get_running_loop().create_future()
            self._aging.started = time.monotonic()
            self._task = asyncio.create_task(self._follow(self._stopped), name="tuplespace-cleaner")
        self._active = True
        return self

    async def _follow(self, stopped: asyncio.Future[None]) -> None:
        aging, subscription = self._aging, self._subscription
        while True:
            wait = aging.wait()
            if wait == 0 or (wait is not None and aging.full()):
                await asyncio.wait([stopped], timeout=wait)
                if stopped.done():
                    return
                if await self.space.try_take(aging.due.popleft()[1]) is not None:
                    aging.removed += 1
                continue
            try:
                event = await subscription.get(wait)
            except Timeout:
                continue
            except EventsLost as exc:
                logger.error("cleaner fell behind, some tuples are left to age: %s", exc)
                continue
            if event is None:
                return
            aging.add(event)

    def statistics(self) -> dict[str, Any]:
        """See :meth:`Cleaner.statistics`."""
        return {"removed": self._aging.removed, "waiting": len(self._aging.due), "active": self._active}

    async def stop(self) -> None:
        """See :meth:`Cleaner.stop`."""
        if not self._active:
            return
        self._active = False
        if self._rule:
            await self.space.remove_lifetime(self.template, self.max_age)
            return
        # As the thread form stops: the wait for a tuple's time is cut short, a read of
        # the subscription ends with it, a take under way finishes.
        assert self._task is not None
        assert self._stopped is not None
        self._stopped.set_result(None)
        await self._subscription.close()
        await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> AsyncCleaner:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
