"""Workers: processes that live on a space (seed: Polyester's AbstractWorker and
CleaningWorker).

- :class:`Worker` watches templates and calls its handler once for every matching
  tuple, oldest first, including those already there when it starts.  It reads;
  the tuples stay for others to see.
- :class:`WorkerPool` takes jobs, each inside a transaction: a handler that raises,
  or a worker that dies, puts the job back; after ``retries`` failures the job is
  moved to a dead letter.
- :class:`Cleaner` removes tuples once they are older than a lifetime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ._errors import EventsLost, Timeout, TransactionAborted
from ._space import Space, Subscription, Transaction
from ._templates import Template, compile_template
from ._values import Value, value_key

__all__ = ["Cleaner", "Worker", "WorkerPool"]

logger = logging.getLogger("tuplespace")

Tuple = tuple[Value, ...]
Handler = Callable[[Tuple], Any]


def _output(result: Any) -> list[Any]:
    """What a handler returned, as the tuples to write: None, a tuple, or a list of tuples."""
    if result is None:
        return []
    if isinstance(result, list):
        return result
    return [result]


class Worker:
    """Calls ``handler(t)`` once for each tuple matching one of ``templates``, in the
    order the tuples were written, in a thread of its own.

    >>> worker = Worker(space, [("img", str)], lambda t: ("thumb", t[1])).start()  # doctest: +SKIP
    >>> worker.stop()                                                               # doctest: +SKIP

    The handler may return a tuple or a list of tuples: they are written to the
    space.  A handler that raises is logged and counted; the worker goes on.
    """

    def __init__(
        self, space: Space, templates: Iterable[Any], handler: Handler, *, max_pending: int = 1000
    ) -> None:
        self.space = space
        self.templates: list[Template] = [compile_template(t) for t in templates]
        if not self.templates:
            raise ValueError("a Worker needs at least one template")
        self.handler = handler
        self._max_pending = max_pending
        self._thread: threading.Thread | None = None
        self._subscription: Subscription | None = None
        self._stats = {"processed": 0, "failed": 0, "lost": 0}

    def start(self) -> Worker:
        """Start watching; returns the worker."""
        if self._thread is not None:
            raise RuntimeError("the worker has already been started")
        space = self.space
        # The tuples already here and the feed of later writes, taken in one step:
        # nothing is missed and nothing is seen twice.
        with space._lock:
            backlog = space._engine.snapshot(self.templates)
            feed = space._engine.subscribe(self.templates, {"write"}, None, self._max_pending, None)
            space._start_timer()
        self._subscription = Subscription(space, feed)
        self._thread = threading.Thread(
            target=self._run, args=(backlog,), name="tuplespace-worker", daemon=True
        )
        self._thread.start()
        return self

    def _run(self, backlog: list[Tuple]) -> None:
        subscription = self._subscription
        assert subscription is not None
        for t in backlog:
            if subscription.closed:
                return
            self._handle(t)
        while True:
            try:
                event = subscription.get()
            except EventsLost as exc:
                self._stats["lost"] += exc.oldest_available - exc.first_missing
                logger.error("worker fell behind: %s", exc)
                continue
            if event is None:
                return
            self._handle(event.tuple)

    def _handle(self, t: Tuple) -> None:
        try:
            out = _output(self.handler(t))
            if out:
                self.space.write_many(out)
        except Exception:
            self._stats["failed"] += 1
            logger.exception("worker handler failed on %r", t)
        else:
            self._stats["processed"] += 1

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching; waits up to ``timeout`` seconds for the handler in progress."""
        if self._subscription is not None:
            self._subscription.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def statistics(self) -> dict[str, Any]:
        """Tuples processed, handler failures, events lost by falling behind, and pending."""
        pending = self._subscription.statistics()["pending"] if self._subscription else 0
        return {**self._stats, "pending": pending, "running": bool(self._thread and self._thread.is_alive())}

    def __enter__(self) -> Worker:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
        space: Space,
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


class Cleaner:
    """Removes tuples matching ``template`` once they are ``max_age`` seconds old.

    >>> cleaner = Cleaner(space, ("log", ANY), max_age=3600)   # doctest: +SKIP

    It works through leases, so removal is exact and needs no thread: each matching
    tuple written from now on gets a lease of at most ``max_age`` seconds, and those
    already in the space at most ``max_age`` seconds from now.  Removals are
    ``expire`` events.  :meth:`stop` ends the rule for later writes.
    """

    def __init__(self, space: Space, template: Any, max_age: float) -> None:
        self.space = space
        self.template = compile_template(template)
        self.max_age = max_age
        with space._lock:
            space._engine.add_lifetime(self.template, max_age)
            space._start_timer()
        self._active = True

    def stop(self) -> None:
        if self._active:
            with self.space._lock:
                self.space._engine.remove_lifetime(self.template, self.max_age)
            self._active = False

    def __enter__(self) -> Cleaner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
