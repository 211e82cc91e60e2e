"""Takes stay taken (docs/http-api.md, "No lost tuples: claims"): a take whose answer
reached the program is confirmed before its process ends normally, however it ends.

Each test runs a child Python process that takes a tuple (or a record) from a real
server on 127.0.0.1 and prints it, then ends one way: closing its space, leaving a
``with`` block, exiting without closing, dropping the space while it runs on, or
letting ``asyncio.run`` end.  The child's ``confirm_delay`` is an hour, so only the
way it ends can confirm the take.  Then no claim is left open, and nothing comes back
once the server's claim lease has passed.  A child killed by SIGKILL before the
confirmation left sees its tuple return: the one window of at-least-once.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import tuplespace as ts
from helpers import PATIENCE
from tuplespace.testing import LiveServer

LEASE = 2.0  # the server's claim lease: how long an unconfirmed take holds its tuple

HEAD = """\
import asyncio, gc, sys
import tuplespace as ts
URL = sys.argv[1]
OPTIONS = {"channel": sys.argv[2] == "channel", "confirm_delay": 3600}
def shown(taken):
    return dict(taken.fields) if isinstance(taken, ts.RecordData) else taken
"""

# How a child ends, TAKE standing for its take.  A child that runs on after the end
# of its space says "ready", then waits until its stdin closes.
ENDINGS = {
    "sync close": """\
space = ts.connect(URL, **OPTIONS)
print(shown(TAKE), flush=True)
space.close()
""",
    "sync with": """\
with ts.connect(URL, **OPTIONS) as space:
    print(shown(TAKE), flush=True)
""",
    "sync exit": """\
space = ts.connect(URL, **OPTIONS)
print(shown(TAKE), flush=True)
""",
    "sync gc": """\
space = ts.connect(URL, **OPTIONS)
print(shown(TAKE), flush=True)
del space
gc.collect()
print("ready", flush=True)
sys.stdin.read()
""",
    "async run": """\
async def main():
    global space  # still open, and still referenced, when the loop ends
    space = await ts.connect_async(URL, **OPTIONS)
    print(shown(await TAKE), flush=True)
asyncio.run(main())
print("ready", flush=True)
sys.stdin.read()
""",
    "async with": """\
async def main():
    async with await ts.connect_async(URL, **OPTIONS) as space:
        print(shown(await TAKE), flush=True)
asyncio.run(main())
""",
    "sync killed": """\
space = ts.connect(URL, **OPTIONS)
print(shown(TAKE), flush=True)
print("ready", flush=True)
sys.stdin.read()
""",
}
TAKES = {
    "tuple": 'space.take(("nc", ts.ANY), timeout=30)',
    "record": 'space.take_record({"kind": "nc"}, timeout=30)',
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(store="memory", claim_lease=LEASE) as live:
        yield live


class Child:
    """A child process that takes from the space at ``url`` and ends as ``ending`` says."""

    def __init__(self, url: str, ending: str, what: str, transport: str) -> None:
        script = HEAD + ENDINGS[ending].replace("TAKE", TAKES[what])
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, url, transport],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.taken = self.process.stdout.readline().strip()
        self.runs_on = "ready" in ENDINGS[ending]
        if self.runs_on:
            assert self.process.stdout.readline().strip() == "ready", self.finish()

    def finish(self) -> str:
        """Let the child end; what it wrote on stderr."""
        _, err = self.process.communicate(timeout=PATIENCE)
        return err

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=PATIENCE)


def put(space: Any, what: str) -> str:
    """Put one thing to take in ``space``; what a child that took it prints."""
    if what == "record":
        space.create("jobs/1", {"kind": "nc"})
        return repr({"kind": "nc"})
    space.write(("nc", 1))
    return repr(("nc", 1))


def check_nothing_back(space: Any, what: str) -> None:
    """No claim is left open, and nothing comes back once the claim lease has passed."""
    stats = space.statistics()
    left = stats["records"] + stats["records_held"] if what == "record" else stats["tuples"]
    assert (left, stats["transactions"]) == (0, 0)
    take, template = (space.take_record, {"kind": "nc"}) if what == "record" else (space.take, ("nc", ts.ANY))
    with pytest.raises(ts.Timeout):
        take(template, timeout=LEASE)


def check_stays_taken(server: LiveServer, ending: str, what: str, transport: str) -> None:
    with ts.connect(server.space_url()) as space:
        expected = put(space, what)
        child = Child(space.url, ending, what, transport)
        assert child.taken == expected, child.finish()
        if not child.runs_on:
            assert child.finish() == ""
        check_nothing_back(space, what)
        if child.runs_on:
            assert child.finish() == ""
        assert child.process.returncode == 0


@pytest.mark.parametrize("transport", ["channel", "http"])
@pytest.mark.parametrize("ending", [e for e in ENDINGS if e != "sync killed"])
def test_a_tuple_taken_stays_taken_however_the_program_ends(
    server: LiveServer, ending: str, transport: str
) -> None:
    check_stays_taken(server, ending, "tuple", transport)


@pytest.mark.parametrize("ending", ["sync exit", "sync gc", "async run"])
def test_a_record_taken_stays_taken_however_the_program_ends(server: LiveServer, ending: str) -> None:
    check_stays_taken(server, ending, "record", "channel")


def test_a_tuple_taken_by_a_process_killed_before_its_confirmation_returns(server: LiveServer) -> None:
    with ts.connect(server.space_url()) as space:
        expected = put(space, "tuple")
        child = Child(space.url, "sync killed", "tuple", "channel")
        assert child.taken == expected, child.finish()
        child.kill()
        assert space.take(("nc", ts.ANY), timeout=PATIENCE) == ("nc", 1)  # once the claim ran out


def test_a_claim_carried_by_a_take_that_failed_is_confirmed_alone(server: LiveServer) -> None:
    async def main() -> dict[str, Any]:
        async with await ts.connect_async(server.space_url(), confirm_delay=0) as space:
            await space.write(("nc", 1))
            assert await space.take(("nc", ts.ANY)) == ("nc", 1)
            # The next take carries the claim; the call scheduled to confirm it alone
            # finds nothing to do, then the take is cancelled and gives the claim back.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await space.take(("never",))
            async with asyncio.timeout(PATIENCE):
                while space.client_statistics()["unconfirmed_claims"]:
                    await asyncio.sleep(0.01)
            return space.client_statistics()

    stats = asyncio.run(main())
    assert (stats["claims_confirmed_riding"], stats["claims_confirmed_alone"]) == (0, 1)
