"""The ``tuplespace`` command, run as a real process."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tuplespace as ts
from helpers import PATIENCE

SCRIPT = Path(sys.executable).with_name("tuplespace")


class Process:
    """A ``tuplespace`` process whose log lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first log line matching ``pattern``; fails if the process ends first."""
        while True:
            line = self.lines.get(timeout=PATIENCE)
            if line is None:
                raise AssertionError("the process ended:\n" + "".join(self.log))
            self.log.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def url(self) -> str:
        return self.wait_for(r"serving on (http://\S+)").group(1)

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(PATIENCE)
        self._reader.join(PATIENCE)
        while (line := self.lines.get_nowait() if not self.lines.empty() else None) is not None:
            self.log.append(line)
        return code


@contextlib.contextmanager
def serving(args: list[str], cwd: Path) -> Iterator[Process]:
    process = Process(args, cwd)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(PATIENCE)
        if process.proc.stdout is not None:
            process.proc.stdout.close()


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
        "--log-level",
        "info",
    ]
    with serving(args, tmp_path) as process:
        url = process.url()
        admin = {"Authorization": "Bearer admin-secret-0123456789"}
        with httpx.Client(base_url=url, timeout=PATIENCE) as http:
            assert http.put("/spaces/s", headers=admin).json()["options"] == {
                "order": "fifo",
                "capacity": None,
                "event_retention": 10000,
                "store": "memory",
                "anonymous": ["read", "subscribe"],
            }
            assert http.post("/spaces/s/read", json={"template": ["x"], "timeout": None}).json() == {
                "tuple": None,
                "more": True,
            }
            assert http.post("/spaces/s/write", json={"tuple": ["x"]}).status_code == 401
        assert process.stop(signal.SIGTERM) == 0
    assert not (tmp_path / "tuplespace-data").exists()


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


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tuplespace", "--version"], capture_output=True, text=True, timeout=PATIENCE
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"tuplespace {ts.__version__}"
