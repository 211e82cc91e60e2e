"""XPath matching at a bounded cost: in a process of its own, within a budget.

An XPath expression can cost time that grows as a power of its document's size
(``count(//*[count(//*) > 0])`` over 150 KB of XML takes seconds), and lxml
cannot stop an evaluation once it has begun.  So expressions are evaluated by a
child process (:mod:`tuplespace._xpathchild`), started at the first XPath match,
and the caller waits for each answer only as long as its budget allows: an
evaluation that runs over has its process killed (the next one starts anew).
The budget counts the CPU time the child spends evaluating (it reports its own
with each answer; while it runs, it is read from ``/proc/<pid>/stat``, or
counted as the wall-clock time waited where there is no ``/proc``), so a loaded
machine, where the child waits for a CPU, does not refuse cheap expressions.
The child keeps the documents it parsed, so a document is sent and parsed once
while it stays in the cache.

Limits (module constants):

- :data:`MAX_XML_BYTES`: a value longer than this (in UTF-8) is not parsed;
- :data:`XML_CACHE_BYTES`: the parsed documents kept total at most this many
  bytes of XML (a parsed tree takes up to about 32 times its text);
- :data:`MAX_MATCH_MS`: one operation of a space (:func:`budget`) evaluates XPath
  for at most this many milliseconds of the child's CPU time in all;
- :data:`MAX_MATCH_WALL_MS`: and waits for the answers (and for other callers'
  evaluations before its own) at most this many milliseconds of wall-clock time,
  so that a starved machine still bounds how long a caller, and the lock of its
  space, waits.  Starting the child (importing lxml) is part of neither.

Within an operation's :func:`budget`, reaching any limit but the cache's raises
:class:`LimitReached` naming it, so the caller learns why nothing matched.
Outside one (a write meeting the template of a waiting take or of a
subscription), the value does not match that template and a warning is logged:
a write never fails because of another client's template.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import LimitReached
from ._xpathchild import ANSWER, FORGET, HEADER, MATCH, READY

__all__ = [
    "MAX_MATCH_MS",
    "MAX_MATCH_WALL_MS",
    "MAX_XML_BYTES",
    "XML_CACHE_BYTES",
    "budget",
    "evaluate",
    "statistics",
]

logger = logging.getLogger("tuplespace")

MAX_XML_BYTES = 1 << 20
XML_CACHE_BYTES = 4 << 20
MAX_MATCH_MS = 100
MAX_MATCH_WALL_MS = 10 * MAX_MATCH_MS
STARTUP_SECONDS = 60.0  # for the child to import lxml on a busy machine; not part of any budget


try:
    _NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # no sysconf: the wall clock stands for CPU time
    _NS_PER_TICK = 0
_TICK_SECONDS = _NS_PER_TICK / 1e9  # the shortest wait worth a look at /proc


def _cpu_ns(pid: int) -> int | None:
    """The CPU time the process ``pid`` has used (user + system, in clock ticks),
    from ``/proc``; None where that cannot be read."""
    if not _NS_PER_TICK:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * _NS_PER_TICK


class _Allowance:
    """What XPath evaluation may still spend: nanoseconds of the child's CPU time,
    and a wall-clock ``deadline`` (``time.monotonic()``)."""

    __slots__ = ("cpu_ns", "deadline")

    def __init__(self) -> None:
        self.cpu_ns = MAX_MATCH_MS * 1_000_000
        self.deadline = time.monotonic() + MAX_MATCH_WALL_MS / 1000


class _Budget(threading.local):
    allowance: _Allowance | None = None


_budget = _Budget()


@contextlib.contextmanager
def budget() -> Iterator[None]:
    """The XPath evaluations inside share one budget of :data:`MAX_MATCH_MS` (CPU
    time) and :data:`MAX_MATCH_WALL_MS` (wall-clock time), and raise
    :class:`LimitReached` at a limit.  Nested budgets are the outer one."""
    if _budget.allowance is not None:
        yield
        return
    _budget.allowance = _Allowance()
    try:
        yield
    finally:
        _budget.allowance = None


class _OutOfTime(Exception):
    """The evaluation was stopped at the limit named by ``wall`` (else the CPU time's)."""

    def __init__(self, *, wall: bool) -> None:
        super().__init__()
        self.wall = wall


class _Evaluator:
    """The child process and the documents it holds, as this process knows them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._docs: OrderedDict[str | bytes, tuple[int, int]] = OrderedDict()  # value -> (id, size)
        self._held = 0
        self._forget: list[int] = []
        self._ids = itertools.count(1)
        self._cpu_ns = 0  # the CPU time the process had used at its last answer
        self.started = 0
        self.killed = 0

    def evaluate(self, expression: str, value: str | bytes, allowance: _Allowance) -> bool:
        """Whether ``expression`` selects something in the document ``value``, taking
        the CPU time spent from ``allowance``; raises _OutOfTime (after stopping the
        evaluation) when the allowance's CPU time or deadline runs out first."""
        if allowance.cpu_ns <= 0:
            raise _OutOfTime(wall=False)
        if not self._lock.acquire(timeout=max(0.0, allowance.deadline - time.monotonic())):
            raise _OutOfTime(wall=True)
        try:
            proc = self._proc
            if proc is None:
                began = time.monotonic()
                proc = self._start()
                allowance.deadline += time.monotonic() - began
            known = self._docs.get(value)
            data = b""
            if known is None:
                data = value.encode() if isinstance(value, str) else value
                known = self._hold(value, len(data))
            else:
                self._docs.move_to_end(value)
            expr = expression.encode()
            forget, self._forget = self._forget, []
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(
                HEADER.pack(len(expr), len(data), known[0], len(forget))
                + expr
                + data
                + b"".join(FORGET.pack(i) for i in forget)
            )
            proc.stdin.flush()
            sent = time.monotonic()
            wait = min(allowance.cpu_ns / 1e9, allowance.deadline - sent)
            ready, _, _ = select.select([proc.stdout], [], [], max(wait, _TICK_SECONDS))
            if not ready:
                self._wait_longer(proc, allowance, sent)
            answer = _read_answer(proc.stdout.fileno())
            if answer is None:
                logger.error("the XPath process ended unexpectedly; %r did not match", expression)
                self._stop()
                return False
            selects, cpu_ns = answer
            allowance.cpu_ns -= cpu_ns - self._cpu_ns
            self._cpu_ns = cpu_ns
            return selects == MATCH
        except (BrokenPipeError, ValueError):  # the process died while this one wrote to it
            logger.error("the XPath process ended unexpectedly; %r did not match", expression)
            self._stop()
            return False
        finally:
            self._lock.release()

    def _wait_longer(self, proc: subprocess.Popen[bytes], allowance: _Allowance, sent: float) -> None:
        """The process has not answered the request ``sent`` (``time.monotonic()``)
        within the CPU time left in ``allowance``, counted as wall-clock time: wait
        for what it has really used to reach that, or for the deadline, then stop it
        and raise _OutOfTime.  The process uses no more CPU time than the wall-clock
        time that passes, so waiting for what is left of its CPU time is safe."""
        assert proc.stdout is not None
        while True:
            now = time.monotonic()
            cpu_ns = _cpu_ns(proc.pid)
            used_ns = round((now - sent) * 1e9) if cpu_ns is None else cpu_ns - self._cpu_ns
            left_ns = allowance.cpu_ns - used_ns
            if left_ns <= 0 or now >= allowance.deadline:
                self.killed += 1
                self._stop()
                raise _OutOfTime(wall=left_ns > 0)
            wait = min(left_ns / 1e9, allowance.deadline - now)
            ready, _, _ = select.select([proc.stdout], [], [], max(wait, _TICK_SECONDS))
            if ready:
                return

    def _hold(self, value: str | bytes, size: int) -> tuple[int, int]:
        """Make room for a document of ``size`` bytes and count it as held."""
        docs = self._docs
        while docs and self._held + size > XML_CACHE_BYTES:
            _, (old, old_size) = docs.popitem(last=False)
            self._forget.append(old)
            self._held -= old_size
        known = (next(self._ids), size)
        if size <= XML_CACHE_BYTES:
            docs[value] = known
            self._held += size
        else:
            self._forget.append(known[0])
        return known

    def _start(self) -> subprocess.Popen[bytes]:
        script = Path(__file__).with_name("_xpathchild.py")
        proc = subprocess.Popen(
            [sys.executable, "-I", str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], STARTUP_SECONDS)
        answer = _read_answer(proc.stdout.fileno()) if ready else None
        self._proc = proc
        if answer is None or answer[0] != READY:
            self._stop()
            raise RuntimeError("the XPath process did not start")
        self._cpu_ns = answer[1]
        self.started += 1
        return proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        self._docs.clear()
        self._forget.clear()
        self._held = 0
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def statistics(self) -> dict[str, Any]:
        return {
            "running": self._proc is not None,
            "pid": None if self._proc is None else self._proc.pid,
            "started": self.started,
            "killed": self.killed,
            "cached_documents": len(self._docs),
            "cached_bytes": self._held,
        }


def _read_answer(fd: int) -> tuple[bytes, int] | None:
    """The answer of the process (see :data:`ANSWER`) on ``fd``, None at its end."""
    data = os.read(fd, ANSWER.size)
    while data and len(data) < ANSWER.size:
        more = os.read(fd, ANSWER.size - len(data))
        if not more:
            return None
        data += more
    if not data:
        return None
    selects, cpu_ns = ANSWER.unpack(data)
    return selects, cpu_ns


_evaluator = _Evaluator()
atexit.register(_evaluator.close)


def evaluate(expression: str, value: str | bytes) -> bool:
    """Whether the XPath ``expression`` selects something in the XML document
    ``value``; False for a value that is not well-formed XML.  See the module
    docstring for the limits and when they raise."""
    allowance = _budget.allowance
    strict = allowance is not None
    if len(value) > MAX_XML_BYTES or (
        isinstance(value, str) and not value.isascii() and len(value.encode()) > MAX_XML_BYTES
    ):
        if strict:
            raise LimitReached(
                f"an XML value of more than {MAX_XML_BYTES} bytes is not parsed for XPath",
                limit="max_xml_bytes",
                maximum=MAX_XML_BYTES,
            )
        logger.warning("an XML value of more than %d bytes did not match XPath %r", MAX_XML_BYTES, expression)
        return False
    try:
        return _evaluator.evaluate(expression, value, allowance or _Allowance())
    except _OutOfTime as out:
        if out.wall:
            limit, maximum = "max_match_wall_ms", MAX_MATCH_WALL_MS
            message = f"matching waited more than {MAX_MATCH_WALL_MS} ms (wall clock) for XPath evaluation"
        else:
            limit, maximum = "max_match_ms", MAX_MATCH_MS
            message = f"matching took more than {MAX_MATCH_MS} ms of XPath evaluation (CPU time)"
        if strict:
            raise LimitReached(message, limit=limit, maximum=maximum) from None
        logger.warning("XPath %r did not match: %s", expression, message)
        return False


def statistics() -> dict[str, Any]:
    """The XPath process (``running``, its ``pid``, how often ``started`` and ``killed``) and its
    cache of parsed documents (``cached_documents``, ``cached_bytes``)."""
    return _evaluator.statistics()
