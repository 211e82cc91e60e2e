"""Helpers for tests that coordinate threads (start one, wait for a condition: those of
the conformance kit, :mod:`tuplespace.testing`) and start the programs they need (a
redis-server, a ``tuplespace serve``)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tuplespace.testing import PATIENCE, spawn, wait_for_waiters, wait_until

__all__ = [
    "PATIENCE",
    "RedisClusterServers",
    "Process",
    "RedisServer",
    "missing",
    "serving",
    "spawn",
    "wait_for_waiters",
    "wait_until",
]


def missing(problem: str) -> NoReturn:
    """A part a test needs is missing: with ``CI=true`` the test fails (nothing may be
    skipped there), elsewhere it is skipped."""
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1 and a free port (or ``port``), keeping
    nothing on disk unless ``persist`` (then an append-only file, written through at
    every change: ``appendfsync always``), its working directory ``directory``;
    :meth:`stop` ends it by its PID."""

    def __init__(self, directory: str, persist: bool = False, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is needed for spaces kept in Redis (Debian: apt-get install redis-server)")
        if port is None:
            with socket.create_server(("127.0.0.1", 0)) as probe:
                port = probe.getsockname()[1]
        self.port = port
        options = ["--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        options += ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, *options, "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        wait_until(self._answers, f"redis-server on port {self.port} to answer")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} ended with {self.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=PATIENCE) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16) == b"+PONG\r\n"
        except OSError:
            return False

    def space_url(self, name: str | None = None) -> str:
        """The URL of a space on this server; a new name each call unless ``name`` is given."""
        return f"{self.url}?space={name or 'test-' + uuid.uuid4().hex[:16]}"

    def kill(self) -> None:
        """End the server at once (SIGKILL), as a crash would."""
        self.process.kill()
        self.process.wait(PATIENCE)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(PATIENCE)


def _free_ports(n: int) -> list[int]:
    """``n`` ports of 127.0.0.1 free now (held open together, so all different)."""
    probes = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    try:
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class RedisClusterServers:
    """A real Redis Cluster on 127.0.0.1: 3 masters and 3 replicas, each a
    ``redis-server --cluster-enabled yes`` on free ports (and free cluster bus ports),
    joined by ``redis-cli --cluster create``; :meth:`stop` ends each by its PID."""

    def __init__(self, directory: str) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            missing("redis-server and redis-cli are needed for a Redis Cluster (Debian: redis-server)")
        ports = _free_ports(12)
        self.ports, buses = ports[:6], ports[6:]
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for port, bus in zip(self.ports, buses, strict=True):
                options = ["--bind", "127.0.0.1", "--port", str(port), "--cluster-port", str(bus)]
                options += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
                # A replica takes over 2 s after its master stops answering, whatever its lag.
                options += ["--cluster-node-timeout", "2000", "--cluster-replica-validity-factor", "0"]
                options += ["--repl-diskless-sync-delay", "0"]
                options += ["--save", "", "--appendonly", "no", "--dir", directory]
                self.processes.append(
                    subprocess.Popen([server, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )
            for port in self.ports:
                wait_until(lambda port=port: self._answers(port), f"redis-server on port {port} to answer")
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=PATIENCE,
            )
            for port in self.ports:
                wait_until(
                    lambda port=port: self._ready(cli, port), f"the cluster node on port {port} to be ready"
                )
        except BaseException:
            self.stop()
            raise
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}"

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16) == b"+PONG\r\n"
        except OSError:
            return False

    @staticmethod
    def _ready(cli: str, port: int) -> bool:
        """The node sees the cluster whole, and, if it is a replica, has its master's data."""

        def info(*what: str) -> str:
            return subprocess.run(
                [cli, "-p", str(port), *what], capture_output=True, text=True, timeout=PATIENCE
            ).stdout

        replication = info("info", "replication")
        synced = "role:master" in replication or "master_link_status:up" in replication
        return synced and "cluster_state:ok" in info("cluster", "info")

    def space_url(self, name: str | None = None) -> str:
        """The URL of a space on this cluster; a new name each call unless ``name`` is given."""
        return f"{self.url}?space={name or 'test-' + uuid.uuid4().hex[:16]}"

    def kill(self, port: int) -> None:
        """End the node on ``port`` at once (SIGKILL), as a crash would."""
        process = self.processes[self.ports.index(port)]
        process.kill()
        process.wait(PATIENCE)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(PATIENCE)


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
