"""``tuplespace dump`` and ``tuplespace load`` as real processes: every value type
carried between servers on every store, and loads that fail or are interrupted."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import termios
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tuplespace as ts
from helpers import PATIENCE, RedisServer, serving, wait_until
from test_cli import cli, one_line_error

LOAD = [sys.executable, "-m", "tuplespace", "load"]

# One tuple of each value type of the wire format, in canonical form (as dump prints them).
EVERY_TYPE = [
    '["scalars","ü ✓",-1,{"$int":"9007199254740993"},{"$float":"1.5"},{"$float":"1e+21"},true,false,null]',
    '["bytes",{"$bytes":"AP8="},{"$bytes":""}]',
    '["time",{"$time":"2024-05-01T12:00:00.5Z"},{"$time":"0001-01-01T00:00:00Z"}]',
    '["uri",{"$uri":"coap://node.example:5683/spaces/home/kitchen"}]',
    '["credit",{"$credit":"12.5"},{"$credit":"0"}]',
    '["nested",["a",[1,["b",{"$bytes":"AA=="}]]],[]]',
    '["map",{"k":[1,null,true],"n":{"m":{"$float":"2.5"}}},{}]',
    '["tagged map",{"$map":{"$k":1,"t":{"$time":"2024-05-01T12:00:00Z"}}}]',
    "[]",
]


def serve(store: list[str], cwd: Path) -> Iterator[str]:
    with serving([sys.executable, "-m", "tuplespace", "serve", "--port", "0", *store], cwd) as process:
        yield process.url()
        assert process.stop(signal.SIGTERM) == 0, "".join(process.log)


@pytest.fixture(scope="module")
def memory_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(["--memory"], tmp_path_factory.mktemp("memory"))


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("sqlite")
    yield from serve(["--store", f"sqlite:{tmp / 'spaces.db'}"], tmp)


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(["--store", redis_server.url], tmp_path_factory.mktemp("redis"))


STORES = ["memory", "sqlite", "redis"]


@pytest.mark.parametrize("source", STORES)
def test_dump_then_load_carries_every_value_type_between_every_pair_of_stores(
    source: str, request: pytest.FixtureRequest
) -> None:
    urls = {store: request.getfixturevalue(f"{store}_url") for store in STORES}
    name = f"every-type-{uuid.uuid4().hex[:8]}"
    with ts.connect(f"{urls[source]}/spaces/{name}") as space:
        kitchen = space.create("house/kitchen", {"temp": 21.5})
        space.write(("record", kitchen))  # a record travels as its address
    wrote = cli(urls[source], "load", name, stdin="\n".join(EVERY_TYPE) + "\n")
    assert wrote.returncode == 0, wrote.stderr
    dumped = cli(urls[source], "dump", name)
    assert dumped.returncode == 0, dumped.stderr
    lines = dumped.stdout.splitlines()
    assert f'["record",{{"$uri":"{kitchen.address}"}}]' in lines
    assert sorted(lines) == sorted([*EVERY_TYPE, f'["record",{{"$uri":"{kitchen.address}"}}]'])
    for target, url in urls.items():
        loaded = cli(url, "load", f"{name}-to-{target}", stdin=dumped.stdout)
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stderr == f"loaded {len(lines)} tuples into {name}-to-{target}\n"
        again = cli(url, "dump", f"{name}-to-{target}")
        assert sorted(again.stdout.splitlines()) == sorted(lines), target


def test_load_into_a_full_space_says_what_it_loaded_and_keeps_what_was_there(memory_url: str) -> None:
    with ts.connect(f"{memory_url}/spaces/full", capacity=4) as space:
        space.write(("old",))
    tuples = "".join(f'["t",{n}]\n' for n in range(5))
    result = cli(memory_url, "load", "full", "--batch", "2", stdin=tuples)
    assert result.returncode == 1
    line = one_line_error(result, "load")
    assert line.startswith("tuplespace load: loaded 2 of 5 tuples into full, then: ")
    assert line.endswith("2 tuples do not fit: the space holds 3 of 4")
    with ts.connect(f"{memory_url}/spaces/full") as space:
        assert space.read_all((str, int)) == [("t", 0), ("t", 1)]
        assert space.read_all(("old",)) == [("old",)]


def test_load_sends_batches_a_server_takes_whatever_the_size_of_the_tuples(memory_url: str) -> None:
    # 1,000 tuples of 9 KiB: one request of them all is past the server's default body limit.
    big = "x" * (9 << 10)
    tuples = "".join(f'["big",{n},"{big}"]\n' for n in range(1000))
    loaded = cli(memory_url, "load", "big-tuples", stdin=tuples)
    assert loaded.returncode == 0, loaded.stderr
    counted = cli(memory_url, "count", "big-tuples", '["big", {"$any": true}, {"$any": true}]')
    assert counted.stdout == "1000\n"
    # A line longer than a request may carry is refused before anything is written.
    refused = cli(memory_url, "load", "big-refused", "--batch-bytes", "4096", stdin='["a"]\n' + tuples)
    assert refused.returncode == 1
    assert "line 2 is longer than 4096 bytes" in one_line_error(refused, "load")
    assert cli(memory_url, "count", "big-refused", '["a"]').stdout == "0\n"


def test_load_from_a_closed_or_undecodable_stdin_is_one_line(memory_url: str) -> None:
    closed = subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", *LOAD, "closed", "--url", memory_url],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert closed.returncode == 2
    assert "stdin is closed" in one_line_error(closed, "load")
    latin = subprocess.run(
        [*LOAD, "latin", "--url", memory_url],
        input=b'["fine"]\n["caf\xe9"]\n',
        capture_output=True,
        timeout=PATIENCE,
    )
    assert latin.returncode == 1
    result = subprocess.CompletedProcess(latin.args, 1, latin.stdout.decode(), latin.stderr.decode())
    assert "tuple on line 2 is not valid JSON" in one_line_error(result, "load")
    assert cli(memory_url, "count", "latin", '["fine"]').stdout == "0\n"


def unread(pipe: int) -> int:
    """Bytes written into a pipe and not yet read from it."""
    buffer = bytearray(4)
    fcntl.ioctl(pipe, termios.FIONREAD, buffer)
    return int.from_bytes(buffer, sys.byteorder)


def test_load_interrupted_while_reading_stdin_writes_nothing(memory_url: str) -> None:
    load = subprocess.Popen(
        [*LOAD, "interrupted", "--url", memory_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert load.stdin is not None
    load.stdin.write('["a",1]\n["a",2]\n')
    load.stdin.flush()
    wait_until(lambda: unread(load.stdin.fileno()) == 0, "load to read its stdin")  # type: ignore[union-attr]
    load.send_signal(signal.SIGINT)
    out, err = load.communicate(timeout=PATIENCE)
    result = subprocess.CompletedProcess(load.args, load.returncode, out, err)
    assert result.returncode == 130
    line = one_line_error(result, "load")
    assert line == "tuplespace load: interrupted while reading stdin: nothing loaded into interrupted"
    assert cli(memory_url, "count", "interrupted", '["a", {"$any": true}]').stdout == "0\n"


def queued_at(port: int) -> bool:
    """Whether bytes sent to a connection of 127.0.0.1:``port`` wait there unread."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, state, queues = fields[1], fields[3], fields[4]
            established = state == "01"  # (a listening socket counts connections there)
            if established and int(local.rsplit(":", 1)[1], 16) == port and int(queues.split(":")[1], 16):
                return True
    return False


def test_load_interrupted_while_writing_stops_after_the_batch_under_way(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--memory"]
    with serving(args, tmp_path) as server:
        url = server.url()
        port = int(url.rsplit(":", 1)[1])
        server.proc.send_signal(signal.SIGSTOP)  # its answers wait: the first batch is under way
        try:
            tuples = tmp_path / "tuples"
            tuples.write_text("".join(f'["t",{n}]\n' for n in range(5)))
            with tuples.open() as stdin:
                load = subprocess.Popen(
                    [*LOAD, "stopped", "--batch", "2", "--url", url],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            wait_until(lambda: queued_at(port), "the first batch to reach the server")
            load.send_signal(signal.SIGINT)
        finally:
            server.proc.send_signal(signal.SIGCONT)
        out, err = load.communicate(timeout=PATIENCE)
        assert (load.returncode, out, err) == (
            130,
            "",
            "tuplespace load: interrupted: loaded 2 of 5 tuples into stopped\n",
        )
        with ts.connect(f"{url}/spaces/stopped") as space:
            assert space.read_all(("t", int)) == [("t", 0), ("t", 1)]
        assert server.stop(signal.SIGTERM) == 0
