"""XPath matching at a bounded cost (tuplespace._xpath): the size limit of XML
values, the budget of an operation (CPU time of the evaluating process, capped in
wall-clock time), and the cache of parsed documents in bytes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
import time
from collections.abc import Iterator

import pytest

import tuplespace as ts
from helpers import PATIENCE, spawn, wait_for_waiters, wait_until
from tuplespace import XPath
from tuplespace._xpath import MAX_MATCH_MS, MAX_MATCH_WALL_MS, MAX_XML_BYTES, XML_CACHE_BYTES, statistics

# Seconds of evaluation over this document (every element against every element),
# far beyond any budget.
COSTLY_DOC = "<r>" + "<a><b>x</b></a>" * 10_000 + "</r>"
COSTLY = "count(//*[count(//*) > 0])"


def xml_of(size: int, mark: int = 0) -> str:
    """A document of ``size`` bytes, told apart from others by ``mark``."""
    head, tail = f"<r m='{mark}'>", "</r>"
    return head + "<a/>" * ((size - len(head) - len(tail)) // 4) + tail


def test_an_xml_value_over_the_limit_answers_the_limit_and_stays() -> None:
    space = ts.Space(limits=ts.Limits(max_bytes=4 * MAX_XML_BYTES))
    big = xml_of(MAX_XML_BYTES + 100)
    space.write(("doc", big))
    for operation in (space.count, space.try_read, space.try_take, space.read_all):
        with pytest.raises(ts.LimitReached) as info:
            operation(("doc", XPath("/r")))
        assert info.value.limit == "max_xml_bytes"
        assert info.value.maximum == MAX_XML_BYTES
        assert "bytes" in str(info.value)
    assert space.read_all(("doc", str)) == [("doc", big)]


def test_a_costly_expression_ends_at_the_budget_of_its_operation() -> None:
    space = ts.Space()
    space.write(("doc", COSTLY_DOC))
    with pytest.raises(ts.LimitReached) as info:
        space.count(("doc", XPath(COSTLY)))
    assert (info.value.limit, info.value.maximum) == ("max_match_ms", MAX_MATCH_MS)
    with pytest.raises(ts.LimitReached):
        space.try_take(("doc", XPath(COSTLY)))
    # The evaluation was stopped, not abandoned: the next one is answered at once.
    assert statistics()["killed"] >= 2
    assert space.try_take(("doc", XPath("count(/r/a) = 10000"))) == ("doc", COSTLY_DOC)


def test_a_write_never_fails_on_the_costly_template_of_another_client() -> None:
    space = ts.Space()
    with space.subscribe(("doc", XPath(COSTLY))) as subscription:
        taker = spawn(space.take, ("doc", XPath(COSTLY)), PATIENCE)
        wait_for_waiters(space, 1)
        space.write(("doc", COSTLY_DOC))  # its waiting taker and subscriber run out of time
        with pytest.raises(ts.Timeout):
            subscription.get(timeout=0)
        assert space.statistics()["waiters"] == 1
        assert space.read_all(("doc", str)) == [("doc", COSTLY_DOC)]
        space.write(("doc", "<r/>"))  # cheap to match: both get it
        assert taker.result(PATIENCE) == ("doc", "<r/>")
        event = subscription.get(timeout=PATIENCE)
        assert event is not None
        assert event.tuple == ("doc", "<r/>")


def test_the_parsed_documents_kept_are_bounded_in_bytes() -> None:
    space = ts.Space()
    size = XML_CACHE_BYTES // 5
    for mark in range(12):
        space.write(("doc", mark, xml_of(size, mark)))
        assert space.count(("doc", mark, XPath(f"/r[@m='{mark}']"))) == 1
        assert statistics()["cached_bytes"] <= XML_CACHE_BYTES
    assert statistics()["cached_bytes"] > 3 * size  # the latest documents are kept


@contextlib.contextmanager
def stopped_xpath_process(space: ts.Space) -> Iterator[int]:
    """The XPath process, started and then stopped (SIGSTOP: it uses no CPU time)
    until the block ends; its pid."""
    space.write(("started", "<r/>"))
    assert space.count(("started", XPath("/r"))) == 1
    pid = statistics()["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed at a limit
            os.kill(pid, signal.SIGCONT)


def bytes_sent_to(pid: int) -> int:
    """How many bytes wait in the standard input (a pipe) of the process ``pid``."""
    fd = os.open(f"/proc/{pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK)
    try:
        (n,) = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))
    finally:
        os.close(fd)
    return int(n)


def test_a_cheap_evaluation_is_not_refused_while_its_process_waits_for_a_cpu() -> None:
    space = ts.Space()
    space.write(("doc", "<r><a/></r>"))
    killed = statistics()["killed"]
    with stopped_xpath_process(space) as pid:
        counting = spawn(space.count, ("doc", XPath("/r/a")))
        wait_until(lambda: bytes_sent_to(pid) > 0, "the request to the XPath process")
        # Wall-clock time well beyond the budget passes, but no CPU time.
        time.sleep(3 * MAX_MATCH_MS / 1000)
    assert counting.result(PATIENCE) == 1
    assert statistics()["killed"] == killed


def test_an_evaluation_that_gets_no_cpu_ends_at_the_wall_clock_cap() -> None:
    space = ts.Space()
    space.write(("doc", "<r><a/></r>"))
    killed = statistics()["killed"]
    with stopped_xpath_process(space), pytest.raises(ts.LimitReached) as info:
        space.count(("doc", XPath("/r/a")))
    assert (info.value.limit, info.value.maximum) == ("max_match_wall_ms", MAX_MATCH_WALL_MS)
    assert "wall" in str(info.value)
    assert statistics()["killed"] == killed + 1
    assert space.count(("doc", XPath("/r/a"))) == 1  # in a new process
