"""XPath matching at a bounded cost: in a process of its own, within a budget.

An XPath expression can cost time that grows as a power of its document's size
(``count(//*[count(//*) > 0])`` over 150 KB of XML takes seconds), and lxml
cannot stop an evaluation once it has begun.  So expressions are evaluated by a
child process (:mod:`tuplespace._xpathchild`), started at the first XPath match,
and the caller waits for each answer only as long as its budget allows: an
evaluation that runs over has its process killed (the next one starts anew).
The child keeps the documents it parsed, so a document is sent and parsed once
while it stays in the cache.

Limits (module constants):

- :data:`MAX_XML_BYTES`: a value longer than this (in UTF-8) is not parsed;
- :data:`XML_CACHE_BYTES`: the parsed documents kept total at most this many
  bytes of XML (a parsed tree takes up to about 32 times its text);
- :data:`MAX_MATCH_MS`: one operation of a space (:func:`budget`) evaluates XPath
  for at most this many milliseconds in all.

Within an operation's :func:`budget`, reaching the first or the last limit raises
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
from ._xpathchild import FORGET, HEADER, MATCH, READY

__all__ = ["MAX_MATCH_MS", "MAX_XML_BYTES", "XML_CACHE_BYTES", "budget", "evaluate", "statistics"]

logger = logging.getLogger("tuplespace")

MAX_XML_BYTES = 1 << 20
XML_CACHE_BYTES = 4 << 20
MAX_MATCH_MS = 100
STARTUP_SECONDS = 60.0  # for the child to import lxml on a busy machine; not part of any budget


class _Budget(threading.local):
    deadline: float | None = None


_budget = _Budget()


@contextlib.contextmanager
def budget() -> Iterator[None]:
    """The XPath evaluations inside share one budget of :data:`MAX_MATCH_MS`, and
    raise :class:`LimitReached` at a limit.  Nested budgets are the outer one."""
    if _budget.deadline is not None:
        yield
        return
    _budget.deadline = time.monotonic() + MAX_MATCH_MS / 1000
    try:
        yield
    finally:
        _budget.deadline = None


class _OutOfTime(Exception):
    pass


class _Evaluator:
    """The child process and the documents it holds, as this process knows them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._docs: OrderedDict[str | bytes, tuple[int, int]] = OrderedDict()  # value -> (id, size)
        self._held = 0
        self._forget: list[int] = []
        self._ids = itertools.count(1)
        self.started = 0
        self.killed = 0

    def evaluate(self, expression: str, value: str | bytes, deadline: float) -> bool:
        """Whether ``expression`` selects something in the document ``value``; raises
        _OutOfTime if the answer is not there by ``deadline`` (``time.monotonic()``)."""
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise _OutOfTime
        try:
            proc = self._proc if self._proc is not None else self._start()
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
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.killed += 1
                self._stop()
                raise _OutOfTime
            answer = os.read(proc.stdout.fileno(), 1)
            if not answer:
                logger.error("the XPath process ended unexpectedly; %r did not match", expression)
                self._stop()
                return False
            return answer == MATCH
        except (BrokenPipeError, ValueError):  # the process died while this one wrote to it
            logger.error("the XPath process ended unexpectedly; %r did not match", expression)
            self._stop()
            return False
        finally:
            self._lock.release()

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
        if not ready or os.read(proc.stdout.fileno(), 1) != READY:
            self._proc = proc
            self._stop()
            raise RuntimeError("the XPath process did not start")
        self._proc = proc
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
            "started": self.started,
            "killed": self.killed,
            "cached_documents": len(self._docs),
            "cached_bytes": self._held,
        }


_evaluator = _Evaluator()
atexit.register(_evaluator.close)


def evaluate(expression: str, value: str | bytes) -> bool:
    """Whether the XPath ``expression`` selects something in the XML document
    ``value``; False for a value that is not well-formed XML.  See the module
    docstring for the limits and when they raise."""
    deadline = _budget.deadline
    strict = deadline is not None
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
    if deadline is None:
        deadline = time.monotonic() + MAX_MATCH_MS / 1000
    try:
        return _evaluator.evaluate(expression, value, deadline)
    except _OutOfTime:
        if strict:
            raise LimitReached(
                f"matching took more than {MAX_MATCH_MS} ms of XPath evaluation",
                limit="max_match_ms",
                maximum=MAX_MATCH_MS,
            ) from None
        logger.warning("XPath %r ran out of its %d ms and did not match", expression, MAX_MATCH_MS)
        return False


def statistics() -> dict[str, Any]:
    """The XPath process (``running``, how often ``started`` and ``killed``) and its
    cache of parsed documents (``cached_documents``, ``cached_bytes``)."""
    return _evaluator.statistics()
