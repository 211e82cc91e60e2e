"""The ``tuplespace`` command, run as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tuplespace as ts
from helpers import PATIENCE, serving, wait_until

SCRIPT = Path(sys.executable).with_name("tuplespace")


@pytest.mark.parametrize(
    ("command", "sig"),
    [
        ([sys.executable, "-m", "tuplespace"], signal.SIGTERM),
        ([str(SCRIPT)], signal.SIGINT),
    ],
    ids=["python-m-sigterm", "script-sigint"],
)
def test_serve_answers_and_stops_cleanly(tmp_path: Path, command: list[str], sig: signal.Signals) -> None:
    data = tmp_path / "data"
    with serving([*command, "serve", "--port", "0", "--data-dir", str(data)], tmp_path) as process:
        url = process.url()
        with httpx.Client(base_url=url, timeout=PATIENCE) as http:
            assert http.get("/health").json() == {"status": "ok", "version": ts.__version__}
            assert http.post("/spaces/jobs/write", json={"tuple": ["job", 1]}).status_code == 200
        assert process.stop(sig) == 0, "".join(process.log)
    assert "Traceback" not in "".join(process.log)
    # The store was closed and released: the tuple is there for the next process.
    space = ts.connect(f"sqlite:///{data / 'spaces.db'}?space=jobs")
    try:
        assert space.read_all(("job", int)) == [("job", 1)]
    finally:
        space.close()


def test_serve_in_memory_with_options(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": [{"name": "ops", "token": "admin-secret-0123456789", "admin": true}]}')
    args = [
        sys.executable,
        "-m",
        "tuplespace",
        "serve",
        "--port",
        "0",
        "--memory",
        "--tokens",
        str(tokens),
        "--anonymous",
        "read,subscribe",
        "--long-poll",
        "0.05",
        "--claim-lease",
        "10",
        "--limit",
        "max_batch=2",
        "--limit",
        "max_fields=3",
        "--limit",
        "idle_timeout=0.2",
        "--cors-origin",
        "https://app.example",
        "--allowed-host",
        "tuples.example",
        "--log-level",
        "info",
    ]
    with serving(args, tmp_path) as process:
        url = process.url()
        admin = {"Authorization": "Bearer admin-secret-0123456789"}
        with httpx.Client(base_url=url, timeout=PATIENCE) as http:
            many = http.post("/spaces/s/write_many", json={"tuples": [["a"]] * 3}, headers=admin)
            assert (many.status_code, many.json()["error"]["maximum"]) == (413, 2)
            wide = http.post("/spaces/s/write", json={"tuple": [1, 2, 3, 4]}, headers=admin)
            assert (wide.status_code, wide.json()["error"]["limit"]) == (413, "max_fields")
            preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
            allowed = http.options("/spaces/s/take", headers=preflight)
            assert allowed.headers["access-control-allow-origin"] == "https://app.example"
            stranger = http.options("/spaces/s/take", headers={**preflight, "Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in stranger.headers
            assert http.get("/health", headers={"Host": "tuples.example"}).status_code == 200
            assert http.get("/health", headers={"Host": "evil.example"}).status_code == 421
            assert http.put("/spaces/s", headers=admin).json()["options"] == {
                "order": "fifo",
                "capacity": None,
                "event_retention": 10000,
                "event_retention_bytes": 64 << 20,
                "store": "memory",
                "anonymous": ["read", "subscribe"],
                "charge_rate": "0",
                "creation_charge": "0",
                "clock": "system",
                "operator": "operator",
                "mint_amount": "0",
                "mint_bits": 20,
                "redirect_charge": "0",
                "firing_charge": "0",
                "step_charge": "0",
                "max_firings": 1000,
                "method_steps": 100_000,
                "method_ms": 100,
                "method_memory": 1 << 20,
            }
            assert http.post("/spaces/s/read", json={"template": ["x"], "timeout": None}).json() == {
                "tuple": None,
                "more": True,
            }
            assert http.post("/spaces/s/write", json={"tuple": ["x"]}).status_code == 401
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as silent:
            assert silent.recv(1) == b""  # closed once idle for idle_timeout
        assert process.stop(signal.SIGTERM) == 0
    assert not (tmp_path / "tuplespace-data").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "tuples.example"])
def test_serve_refuses_a_network_without_tokens(tmp_path: Path, host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuplespace", "serve", "--memory", "--port", "0", "--host", host],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"tuplespace serve: refusing to serve {host} without --tokens: every client on its network could "
        "read, write and take every tuple (give --tokens FILE, or --insecure-no-tokens to serve it anyway)"
    ]


def test_serve_on_a_network_with_tokens_or_when_told_to_without(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": [{"name": "ops", "token": "admin-secret-0123456789", "admin": true}]}')
    serve = [sys.executable, "-m", "tuplespace", "serve", "--memory", "--port", "0", "--host", "0.0.0.0"]
    for extra, status in ((["--tokens", str(tokens)], 401), (["--insecure-no-tokens"], 200)):
        with serving([*serve, *extra], tmp_path) as process:
            port = process.url().rpartition(":")[2]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=PATIENCE) as http:
                assert http.post("/spaces/s/write", json={"tuple": ["x"]}).status_code == status
            assert process.stop(signal.SIGTERM) == 0


def test_bad_options_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuplespace", "serve", "--anonymous", "fly"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 2
    assert "unknown permission 'fly'" in result.stderr
    bad_tokens = tmp_path / "tokens.json"
    bad_tokens.write_text('{"tokens": [{"name": "x", "token": "short"}]}')
    result = subprocess.run(
        [sys.executable, "-m", "tuplespace", "serve", "--memory", "--tokens", str(bad_tokens)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 2
    assert "at least 16 characters" in result.stderr
    for setting, message in [
        ("max_waiting=lots", "limit max_waiting is an integer, not 'lots'"),
        ("max_waiting=0", "max_waiting must be a positive int"),
        ("patience=3", "no limit 'patience'"),
        ("rate", "a limit is NAME=VALUE"),
        ("read_timeout=0", "read_timeout must be a positive number of seconds"),
        ("idle_timeout=soon", "limit idle_timeout is a number, not 'soon'"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "tuplespace", "serve", "--memory", "--limit", setting],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert result.returncode == 2, setting
        assert message in result.stderr, result.stderr


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuplespace", "--version"], capture_output=True, text=True, timeout=PATIENCE
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"tuplespace {ts.__version__}"


# -- client commands -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server on a free port, with its data in a temporary directory."""
    tmp = tmp_path_factory.mktemp("cli-server")
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--data-dir", str(tmp / "data")]
    with serving(args, tmp) as process:
        yield process.url()
        assert process.stop(signal.SIGTERM) == 0


def cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUPLESPACE_URL": url}
    env.pop("TUPLESPACE_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "tuplespace", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=PATIENCE,
    )


def one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tuplespace {command}: ")
    assert result.stdout == ""
    return lines[0]


JOB_TEMPLATE = '["job", {"$formal": "int"}, {"$any": true}]'


def test_write_read_count_take(server_url: str) -> None:
    written = cli(server_url, "write", "jobs", '["job", 1, {"$float": "1.5"}]')
    assert written.returncode == 0, written.stderr
    lease = json.loads(written.stdout)
    assert lease["expires_at"] is None
    assert isinstance(lease["id"], int)
    leased = cli(server_url, "write", "jobs", '["job", 2, "resize"]', "--lease", "60")
    assert json.loads(leased.stdout)["expires_at"] is not None

    counted = cli(server_url, "count", "jobs", JOB_TEMPLATE)
    assert (counted.returncode, counted.stdout) == (0, "2\n")
    read = cli(server_url, "read", "jobs", JOB_TEMPLATE, "--timeout", "5")
    assert (read.returncode, read.stdout) == (0, '["job",1,{"$float":"1.5"}]\n')
    taken = cli(server_url, "take", "jobs", '["job", 2, {"$formal": "str"}]', "--timeout", "5")
    assert (taken.returncode, taken.stdout) == (0, '["job",2,"resize"]\n')
    # The take is final: the tuple is gone.
    assert cli(server_url, "count", "jobs", JOB_TEMPLATE).stdout == "1\n"

    listed = cli(server_url, "spaces", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"name": "jobs", "tuples": 1} in [{"name": r["name"], "tuples": r["tuples"]} for r in rows]
    table = cli(server_url, "spaces")
    assert table.returncode == 0
    assert "jobs" in table.stdout


def test_take_times_out(server_url: str) -> None:
    result = cli(server_url, "take", "empty", '["nothing", {"$any": true}]', "--timeout", "0.2")
    assert result.returncode == 3
    assert "timeout" in one_line_error(result, "take")
    result = cli(server_url, "read", "empty", '["nothing"]', "--timeout", "0")
    assert result.returncode == 3


def test_dump_load_round_trip(server_url: str) -> None:
    tuples = [
        '["a",1]',
        '["b",{"$bytes":"AP8="},{"$time":"2024-05-01T12:00:00.5Z"}]',
        '["c",{"k":[1,null,true]}]',
        "[]",
    ]
    for t in tuples:
        assert cli(server_url, "write", "source", t).returncode == 0
    dumped = cli(server_url, "dump", "source")
    assert dumped.returncode == 0, dumped.stderr
    assert sorted(dumped.stdout.splitlines()) == sorted(tuples)
    # With a template, only its matches.
    only = cli(server_url, "dump", "source", '["a", {"$any": true}]')
    assert only.stdout == '["a",1]\n'

    loaded = cli(server_url, "load", "copy", "--batch", "2", stdin=dumped.stdout + "\n")
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 4 tuples into copy" in loaded.stderr
    assert "Traceback" not in loaded.stderr
    again = cli(server_url, "dump", "copy")
    assert sorted(again.stdout.splitlines()) == sorted(tuples)
    assert cli(server_url, "dump", "source").stdout == dumped.stdout  # dump leaves the tuples

    # An invalid line writes nothing.
    bad = cli(server_url, "load", "copy2", stdin='["fine"]\n["broken"\n')
    assert bad.returncode == 1
    assert "line 2" in one_line_error(bad, "load")
    assert cli(server_url, "dump", "copy2").stdout == ""


def test_dump_reads_a_space_larger_than_one_answer(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--memory"]
    with serving([*args, "--limit", "max_results=4"], tmp_path) as process:
        url = process.url()
        tuples = [f'["n",{i},"{"x" * 300}"]' for i in range(10)] + [f'["m",{i}]' for i in range(5)]
        assert cli(url, "load", "big", stdin="\n".join(tuples)).returncode == 0
        dumped = cli(url, "dump", "big")
        assert dumped.returncode == 0, dumped.stderr
        assert sorted(dumped.stdout.splitlines()) == sorted(tuples)
        only = cli(url, "dump", "big", '["n", {"$any": true}, {"$any": true}]')
        assert only.stdout.splitlines() == tuples[:10]
        assert process.stop(signal.SIGTERM) == 0


def test_watch_prints_events(server_url: str) -> None:
    args = [sys.executable, "-m", "tuplespace", "watch", "watched", '["w", {"$any": true}]']
    with serving([*args, "--events", "write,take", "--url", server_url], Path.cwd()) as watcher:
        first: dict[str, object] | None = None
        deadline = PATIENCE
        # The subscription begins once the process has connected: write until it sees one.
        n = 0
        while first is None:
            n += 1
            assert cli(server_url, "write", "watched", f'["w", {n}]').returncode == 0
            with contextlib.suppress(queue.Empty):
                line = watcher.lines.get(timeout=1.0)
                assert line is not None, "".join(watcher.log)
                watcher.log.append(line)
                first = json.loads(line)
            deadline -= 1
            assert deadline > 0
        assert first["kind"] == "write"
        assert first["tuple"] == ["w", first["tuple"][1]]  # type: ignore[index]
        assert isinstance(first["seq"], int)
        assert cli(server_url, "take", "watched", '["w", 1]', "--timeout", "5").returncode == 0
        watcher.wait_for(r'"kind":"take"')
        took = json.loads(watcher.log[-1])
        assert took["tuple"] == ["w", 1]
        # Interrupted, it ends quietly.
        assert watcher.stop(signal.SIGTERM) == 0
    assert "Traceback" not in "".join(watcher.log)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["read", "jobs", '["job",'], 2, "not valid JSON"),
        (["take", "jobs", '[{"$bogus": 1}]'], 2, "not valid wire format"),
        (["write", "jobs", '{"a": 1}'], 2, "must be a JSON array"),
        (["watch", "jobs", '["x"]', "--events", "write,fly"], 2, "unknown kind 'fly'"),
        (["count", "bad name", '["x"]'], 1, "space name"),
    ],
    ids=["json", "wire", "not-array", "events", "http-error"],
)
def test_bad_input_is_one_line(server_url: str, args: list[str], code: int, says: str) -> None:
    result = cli(server_url, *args)
    assert result.returncode == code
    assert says in one_line_error(result, args[0])


@pytest.mark.parametrize(
    ("command", "args", "says"),
    [
        ("count", ["jobs"], "Missing argument 'template_json'"),
        ("count", ["jobs", '["x"]', "--bogus"], "No such option: --bogus"),
        ("watch", ["jobs", '["x"]', "--since", "-1"], "Invalid value for '--since'"),
        ("serve", ["--port", "99999"], "Invalid value for '--port'"),
        ("serve", ["--log-level", "loud"], "--log-level is one of debug, info, warning, error, not 'loud'"),
        ("count", ["jobs", '["x"]', "--url", "http://127.0.0.1:99999"], "Port out of range"),
        ("spaces", ["--url", "http://127.0.0.1:99999"], "Port out of range"),
        ("write", ["jobs", '["x"]', "--lease", "nan"], "--lease must be a number of seconds > 0, not nan"),
        ("read", ["jobs", '["x"]', "--timeout", "nan"], "seconds >= 0, not nan"),
        ("record create", ["jobs", "r", '{"a": 1}', "--credit", "abc"], "--credit: not a decimal amount"),
        ("record create", ["jobs", "r", '{"a": 1}', "--lease", "0"], "--lease must be a number"),
        ("count", ["", '["x"]'], "the space name is empty"),
    ],
)
def test_bad_arguments_are_one_line_and_status_2(
    server_url: str, tmp_path: Path, command: str, args: list[str], says: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuplespace", *command.split(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TUPLESPACE_URL": server_url},
        cwd=tmp_path,
        timeout=PATIENCE,
    )
    assert result.returncode == 2, result.stderr
    assert says in one_line_error(result, command)


@pytest.mark.parametrize(
    "args", [["dump", "printed"], ["count", "printed", '["p"]'], ["spaces"]], ids=["dump", "count", "spaces"]
)
def test_a_stdout_that_cannot_be_written_is_one_line(server_url: str, args: list[str]) -> None:
    with ts.connect(f"{server_url}/spaces/printed") as space:
        space.write(("p",))
    command = [sys.executable, "-m", "tuplespace", *args, "--url", server_url]
    with open("/dev/full", "w") as full:
        wrote = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=PATIENCE)
    result = subprocess.CompletedProcess(command, wrote.returncode, "", wrote.stderr)
    assert result.returncode == 1
    assert "cannot write to stdout: No space left on device" in one_line_error(result, args[0])
    closed = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command], capture_output=True, text=True, timeout=PATIENCE
    )
    assert closed.returncode == 1
    assert "stdout is closed" in one_line_error(closed, args[0])


def test_a_take_with_stdout_closed_leaves_the_tuple(server_url: str) -> None:
    assert cli(server_url, "write", "kept", '["k"]').returncode == 0
    take = [sys.executable, "-m", "tuplespace", "take", "kept", '["k"]', "--url", server_url]
    closed = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *take], capture_output=True, text=True, timeout=PATIENCE
    )
    assert closed.returncode == 1
    assert "stdout is closed" in one_line_error(closed, "take")
    assert cli(server_url, "count", "kept", '["k"]').stdout == "1\n"


def _as_in_a_terminal() -> None:
    """Ctrl-C reaches a command run in a terminal: SIGINT at its default disposition
    (a test suite started in the background has it ignored, which its children inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_take_interrupted_while_waiting_says_so(server_url: str) -> None:
    with ts.connect(f"{server_url}/spaces/waited", order="fifo") as space:
        take = subprocess.Popen(
            [sys.executable, "-m", "tuplespace", "take", "waited", '["never"]', "--url", server_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_as_in_a_terminal,
        )
        wait_until(lambda: space.statistics()["waiters"] == 1, "the take to wait")
    take.send_signal(signal.SIGINT)
    try:
        out, err = take.communicate(timeout=PATIENCE)
    finally:
        take.kill()  # if it did not end
        take.communicate()
    assert take.returncode == 130
    result = subprocess.CompletedProcess(take.args, take.returncode, out, err)
    assert one_line_error(result, "take") == "tuplespace take: interrupted"


def test_unreachable_server() -> None:
    result = cli("http://127.0.0.1:9", "count", "jobs", '["x"]')
    assert result.returncode == 1
    assert "cannot reach" in one_line_error(result, "count")


def test_watch_existing_prints_the_tuples_there_first(server_url: str) -> None:
    with ts.connect(f"{server_url}/spaces/stocked") as space:
        space.write_many([("s", 1), ("other",), ("s", 2)])
    args = [sys.executable, "-m", "tuplespace", "watch", "stocked", '["s", {"$any": true}]', "--existing"]
    with serving([*args, "--url", server_url], Path.cwd()) as watcher:
        watcher.wait_for(r'"kind":"present","tuple":\["s",1\]')
        watcher.wait_for(r'"kind":"present","tuple":\["s",2\]')
        assert cli(server_url, "write", "stocked", '["s", 3]').returncode == 0
        watcher.wait_for(r'"kind":"write","tuple":\["s",3\]')
        assert watcher.stop(signal.SIGTERM) == 0
    kinds = [json.loads(line)["kind"] for line in watcher.log if line.startswith("{")]
    assert kinds == ["present", "present", "write"]
    both = cli(server_url, "watch", "stocked", '["s", 1]', "--existing", "--since", "1")
    assert both.returncode == 2
    assert "give one of them" in one_line_error(both, "watch")


def test_watch_since_past_the_log_reports_the_loss_and_goes_on(server_url: str) -> None:
    with ts.connect(f"{server_url}/spaces/short-log", event_retention=3) as space:
        for n in range(10):
            space.write(("s", n))
    args = [sys.executable, "-m", "tuplespace", "watch", "short-log", '["s", {"$any": true}]', "--since", "1"]
    with serving([*args, "--url", server_url], Path.cwd()) as watcher:
        watcher.wait_for(r"no longer in the event log")
        watcher.wait_for(r'"tuple":\["s",9\]')  # the events the log holds, then on
        assert cli(server_url, "write", "short-log", '["s", 10]').returncode == 0
        watcher.wait_for(r'"tuple":\["s",10\]')
        assert watcher.stop(signal.SIGTERM) == 0
    assert "Traceback" not in "".join(watcher.log)


def test_record_commands(server_url: str) -> None:
    made = cli(
        server_url, "record", "create", "house", "kitchen", '{"temp": {"$float": "21.5"}, "unit": "C"}'
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["address"].endswith("/spaces/house/kitchen")
    assert created["fields"] == {"temp": {"$float": "21.5"}, "unit": "C"}
    assert cli(server_url, "record", "set", "house", "kitchen", "temp", '{"$float": "22"}').stdout == "2\n"
    got = cli(server_url, "record", "get", "house", "kitchen", "temp", "unit")
    assert (got.returncode, got.stdout) == (0, '[{"$float":"22"},"C"]\n')
    assert json.loads(cli(server_url, "record", "get", "house", "kitchen").stdout)["version"] == 2
    found = cli(server_url, "record", "find", "house", '{"unit": "C"}')
    assert [json.loads(line)["address"] for line in found.stdout.splitlines()] == [created["address"]]
    assert cli(server_url, "record", "find", "house", '{"unit": "F"}').stdout == ""

    args = [sys.executable, "-m", "tuplespace", "record", "watch", "house", "kitchen", "--url", server_url]
    with serving(args, Path.cwd()) as watcher:
        n = 0
        while True:  # the watch begins once the process has connected: set until it sees one
            n += 1
            assert cli(server_url, "record", "set", "house", "kitchen", "n", str(n)).returncode == 0
            with contextlib.suppress(queue.Empty):
                line = watcher.lines.get(timeout=1.0)
                assert line is not None, "".join(watcher.log)
                watcher.log.append(line)
                break
            assert n < PATIENCE
        change = json.loads(watcher.log[-1])
        assert (change["kind"], change["tag"], change["value"]) == ("update", "n", n)
        assert cli(server_url, "record", "destroy", "house", "kitchen").returncode == 0
        watcher.wait_for(r'"kind":"destroy"')
        assert watcher.proc.wait(PATIENCE) == 0  # the record ended: so does the watch

    gone = cli(server_url, "record", "get", "house", "kitchen")
    assert gone.returncode == 1
    assert "kitchen" in one_line_error(gone, "record get")
    bad = cli(server_url, "record", "create", "house", "x", '["not", "an object"]')
    assert bad.returncode == 2
    assert "JSON object" in one_line_error(bad, "record create")


def test_rules_commands(server_url: str) -> None:
    hot = json.dumps(
        {
            "name": "hot",
            "template": ["reading", {"$formal": "str"}, {"$formal": "float"}],
            "when": "t[2] > 30.0",
            "write": [["alarm", "t[1]"]],
        }
    )
    added = cli(server_url, "rules", "add", "plant", hot)
    assert added.returncode == 0, added.stderr
    assert {k: json.loads(added.stdout)[k] for k in ("name", "kind", "level")} == {
        "name": "hot",
        "kind": "reaction",
        "level": 1,
    }
    assert cli(server_url, "write", "plant", '["reading", "hall", {"$float": "31"}]').returncode == 0
    assert cli(server_url, "read", "plant", '["alarm", {"$formal": "str"}]').stdout == '["alarm","hall"]\n'
    listed = [json.loads(line) for line in cli(server_url, "rules", "list", "plant").stdout.splitlines()]
    assert [(r["name"], r["fired"], r["last_error"]) for r in listed] == [("hot", 1, None)]

    echo = json.dumps(
        {
            "name": "echo",
            "template": ["alarm", {"$formal": "str"}],
            "write": [["reading", "t[1]", {"$float": "31"}]],
        }
    )
    refused = cli(server_url, "rules", "add", "plant", echo)
    assert refused.returncode == 1
    assert "echo -> hot -> echo" in one_line_error(refused, "rules add")
    bad = cli(server_url, "rules", "add", "plant", '{"name": "x", "colour": "red"}')
    assert bad.returncode == 2
    assert "colour" in one_line_error(bad, "rules add")
    assert cli(server_url, "rules", "remove", "plant", "hot").returncode == 0
    assert cli(server_url, "rules", "list", "plant").stdout == ""
    gone = cli(server_url, "rules", "remove", "plant", "hot")
    assert gone.returncode == 1
    assert "no rule named 'hot'" in one_line_error(gone, "rules remove")


def test_rules_add_takes_a_rule_that_creates_records(server_url: str) -> None:
    intake = json.dumps(
        {
            "name": "intake",
            "template": ["order", {"$formal": "str"}],
            "create": {"'orders/' + t[1]": {"state": "new"}},
        }
    )
    added = cli(server_url, "rules", "add", "plant", intake)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["create"] == {"'orders/' + t[1]": {"state": "new"}}
    assert cli(server_url, "write", "plant", '["order", "a1"]').returncode == 0
    got = cli(server_url, "record", "get", "plant", "orders/a1")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["fields"] == {"state": "new"}


def test_token_commands(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps({"tokens": [{"name": "root", "token": "root-token-0123456789", "admin": True}]})
    )
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--memory", "--tokens", str(tokens)]
    with serving(args, tmp_path) as server:
        url = server.url()

        def admin(*words: str) -> subprocess.CompletedProcess[str]:
            return cli(url, *words, "--token", "root-token-0123456789")

        made = admin("token", "create", "worker", "--space", "jobs=read,take", "--space", "logs=write")
        assert made.returncode == 0, made.stderr
        worker = json.loads(made.stdout)
        assert worker["spaces"] == {"jobs": ["read", "take"], "logs": ["write"]}
        assert worker["admin"] is False
        listed = [json.loads(line) for line in admin("token", "list").stdout.splitlines()]
        assert sorted(t["name"] for t in listed) == ["root", "worker"]
        assert all("token" not in t for t in listed)
        assert admin("write", "logs", '["first"]').returncode == 0  # an admin creates the space
        assert cli(url, "write", "logs", '["line"]', "--token", worker["token"]).returncode == 0
        assert admin("token", "revoke", "worker").returncode == 0
        refused = cli(url, "write", "logs", '["line"]', "--token", worker["token"])
        assert refused.returncode == 1
        one_line_error(refused, "write")
        bad = admin("token", "create", "x", "--space", "jobs=fly")
        assert bad.returncode == 2
        assert "unknown permission" in one_line_error(bad, "token create")
        anonymous = cli(url, "token", "list")
        assert anonymous.returncode == 1
        one_line_error(anonymous, "token list")
        assert server.stop(signal.SIGTERM) == 0


def test_serve_failures_to_start_are_one_line_and_exit_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = [sys.executable, "-m", "tuplespace", "serve", "--port", "0", "--data-dir", str(data)]
    with serving(args, tmp_path) as first:
        url = first.url()
        port = url.rsplit(":", 1)[1]

        def serve(*options: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "tuplespace", "serve", *options]
            return subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE, cwd=tmp_path)

        in_use = serve("--port", "0", "--data-dir", str(data))
        assert in_use.returncode == 1
        assert "is in use by another server" in one_line_error(in_use, "serve")
        taken = serve("--port", port, "--memory")
        assert taken.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(taken, "serve")
        (tmp_path / "file").write_text("")
        unreadable = serve("--port", "0", "--data-dir", str(tmp_path / "file" / "below"))
        assert unreadable.returncode == 1
        assert "cannot open the store: " in one_line_error(unreadable, "serve")
        assert first.stop(signal.SIGTERM) == 0


def test_serve_coap_runs_a_node_beside_the_http_server(tmp_path: Path) -> None:
    from tuplespace._federation._message import CONTENT_FORMAT, POST, URI_PATH

    with ts.Node("coap://127.0.0.1:0/", timeout=PATIENCE, refresh_period=0.05) as peer:
        peers = tmp_path / "peers.json"
        peers.write_text(json.dumps({"peers": [peer.base_uri]}))
        serve = [sys.executable, "-m", "tuplespace", "serve", "--memory", "--port", "0"]
        coap = ["--coap", "127.0.0.1:0", "--peers", str(peers), "--coap-space", "home"]
        with serving([*serve, *coap], tmp_path) as process:
            base = process.wait_for(r"node (coap://\S+) serving CoAP").group(1)
            port = int(base.rstrip("/").rpartition(":")[2])
            with httpx.Client(base_url=process.url(), timeout=PATIENCE) as http:
                assert http.post("/spaces/s/write", json={"tuple": ["x"]}).status_code == 200
            node = peer.record(base + "$sys/node").all()
            assert node["base_uri"] == ts.URI(base)
            assert node["spaces"] == ("home", "s")  # the HTTP server's spaces
            options = [
                (URI_PATH, b"spaces"),
                (URI_PATH, b"home"),
                (URI_PATH, b"kitchen"),
                (CONTENT_FORMAT, b"<"),
            ]
            created = peer.endpoint.request_blocking(
                ("127.0.0.1", port), POST, options, ts.encode_cbor({"temp": 21.5}), PATIENCE
            )
            assert created.code == 0x41  # 2.01
            kitchen = peer.record(base + "spaces/home/kitchen")
            peer.space("house").create("house", {"kitchen": kitchen})
            assert kitchen.get("$refcount") == 1

            def alive() -> object:
                return peer.record(base + "$sys/peers").all()[peer.base_uri]["alive"]

            wait_until(alive, "the node to find its configured peer alive")
            assert process.stop(signal.SIGTERM) == 0


def test_serve_coap_options_are_checked(tmp_path: Path) -> None:
    serve = [sys.executable, "-m", "tuplespace", "serve", "--memory", "--port", "0"]
    named = [*serve, "--coap", "127.0.0.1:0", "--base-uri", "coap://gateway.example:5683/"]
    with serving(named, tmp_path) as process:
        process.wait_for(r"node coap://gateway\.example:5683/ serving CoAP on UDP 127\.0\.0\.1:\d+")
        process.url()  # serving, its signals handled
        assert process.stop(signal.SIGTERM) == 0
    bad_peers = tmp_path / "peers.json"
    bad_peers.write_text('{"peers": ["http://x/"]}')
    for options, message in [
        (["--coap", "0.0.0.0:5683"], "refusing to serve CoAP on 0.0.0.0"),
        (["--coap", "5683"], "--coap is HOST:PORT"),
        (["--coap", "127.0.0.1:0", "--base-uri", "http://x/"], "a node's base URI is coap://host:port/"),
        (["--coap", "127.0.0.1:0", "--peers", str(bad_peers)], "a peer is named by a coap://host:port/ URI"),
        (["--coap", "127.0.0.1:0", "--coap-space", "a/b"], "is not a space name"),
        (["--coap", "127.0.0.1:0", "--coap-anonymous", "some"], "anonymous is one of none, read"),
        (["--coap", "127.0.0.1:0", "--keys", str(bad_peers)], "peers[0] is an object"),
    ]:
        result = subprocess.run(
            [*serve, *options], cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE
        )
        assert result.returncode == 2, (options, result.stderr)
        assert message in result.stderr, result.stderr
    redis = [*serve[:4], "--port", "0", "--store", "redis://127.0.0.1:1/0", "--coap", "127.0.0.1:0"]
    result = subprocess.run(redis, cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode == 2, result.stderr
    assert "serves no space kept in Redis" in result.stderr
