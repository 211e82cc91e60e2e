"""The shell and JavaScript examples of README.md, docs/ and clients/js/README.md run, as
tests/test_docs.py runs the Python ones.

A block that is a sketch, not a program, says so on the line before it:
``<!-- not run: why -->``; the reason is required.  Every other block runs, in a temporary
working directory holding the files the documents name (``tokens.json`` with the admin token
``ADMIN_TOKEN``, ``peers.json`` with the peers docs/federation.md shows), the addresses it
names being those of real servers: port 8765 (and 8766) of 127.0.0.1 a free port, UDP port
5683 a free one, and ``redis://127.0.0.1:6379/0`` a redis-server.

A ```` ```sh ````, ```` ```bash ```` or ```` ```console ```` block runs command by command
(a line ending with ``\\`` goes on on the next; in a console block a command follows ``$``,
and the lines up to the next ``$`` are what it prints, ``…`` or ``...`` standing for any
text).  ``tuplespace serve`` (with or without a trailing ``&``) starts a server that
must come to serve and answer ``/health``, and is stopped with SIGTERM at the end of the
block, which it must take cleanly; every other command must exit with status 0.

A ```` ```js ```` block runs under node as an ES module, against a real server holding
the admin token ``ADMIN_TOKEN``: ``{ token: "…" }`` is that token, and ``"tuplespace"``
is the package of clients/js.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docblocks import ADMIN_TOKEN, DOCUMENTS, ROOT, Block, blocks
from helpers import PATIENCE, Process, missing, serving
from tuplespace.testing import LiveServer

SHELL = {"sh", "bash", "console"}
JAVASCRIPT = {"js", "javascript"}
BIN = Path(sys.executable).parent  # where this environment's tuplespace command is


def every_block(languages: set[str]) -> list[Block]:
    """The blocks in ``languages`` of every document, in order."""
    return [block for document in DOCUMENTS for block in blocks(document, languages)]


def _runnable(languages: set[str]) -> list[Block]:
    return [b for b in every_block(languages) if b.not_run is None]


def test_every_shell_and_javascript_block_runs_or_says_why_not() -> None:
    found = every_block(SHELL | JAVASCRIPT)
    assert len(found) >= 10, [b.where for b in found]
    assert all(b.not_run is None or len(b.not_run) > 10 for b in found)
    assert len(_runnable(SHELL)) >= 4
    assert len(_runnable(JAVASCRIPT)) >= 3


@dataclass(frozen=True)
class Command:
    text: str
    prints: list[str] | None  # what a console block shows it prints


def commands(block: Block) -> list[Command]:
    """The commands of a shell block, with what each prints in a console block."""
    lines = block.code.replace("\\\n", " ").splitlines()
    if block.language != "console":
        return [Command(line.strip(), None) for line in lines if line.strip() and not line.startswith("#")]
    found: list[Command] = []
    for line in lines:
        if line.startswith("$ "):
            found.append(Command(line[2:].strip(), []))
        else:
            assert found, f"{block.where}: a console block begins with a command ('$ ...')"
            prints = found[-1].prints
            assert prints is not None
            prints.append(line)
    return found


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _printed(expected: list[str]) -> re.Pattern[str]:
    """What a console block shows a command prints, as a pattern: ``…`` and ``...`` any text."""
    parts = [re.escape(part) for part in re.split(r"…|\.\.\.", "\n".join(expected))]
    return re.compile(".*?".join(parts) + r"\n?", re.DOTALL)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with the files the documents' commands name."""
    admin = {"name": "ops", "token": ADMIN_TOKEN, "admin": True}
    (tmp_path / "tokens.json").write_text(json.dumps({"tokens": [admin]}))
    peers = ["coap://10.0.0.2:5683/", "coap://sensor-7.example:5683/"]  # those docs/federation.md shows
    (tmp_path / "peers.json").write_text(json.dumps({"peers": peers}))
    return tmp_path


@pytest.fixture
def addresses(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """What a block's text becomes: the addresses it names, those of real servers."""
    ports = {
        "127.0.0.1:5683": f"127.0.0.1:{_free_port(socket.SOCK_DGRAM)}",
        "8765": str(_free_port(socket.SOCK_STREAM)),
        "8766": str(_free_port(socket.SOCK_STREAM)),
    }

    def rewrite(code: str) -> str:
        code = code.replace("127.0.0.1:5683", ports["127.0.0.1:5683"])
        code = re.sub(r"--port 876[56]\b", lambda m: f"--port {ports[m.group(0)[-4:]]}", code)
        code = re.sub(r"^(tuplespace serve)(?!.*--port)", rf"\1 --port {ports['8765']}", code, flags=re.M)
        if "redis://127.0.0.1:6379/0" in code:
            code = code.replace("redis://127.0.0.1:6379/0", request.getfixturevalue("redis_server").url)
        return code

    return rewrite


def _serve(args: list[str], cwd: Path, servers: contextlib.ExitStack) -> Process:
    """``tuplespace serve ARGS`` started, until ``servers`` closes; once it serves and
    answers ``/health``."""
    server = servers.enter_context(serving([str(BIN / "tuplespace"), *args[1:]], cwd))
    url = server.url().replace("0.0.0.0", "127.0.0.1")
    answer = httpx.get(f"{url}/health", timeout=PATIENCE)
    assert answer.status_code == 200, answer.text
    servers.callback(lambda: _stopped(server))
    return server


def _stopped(server: Process) -> None:
    assert server.stop(signal.SIGTERM) == 0, "".join(server.log)


@pytest.mark.parametrize("block", _runnable(SHELL), ids=lambda b: b.where)
def test_the_shell_examples_run(block: Block, addresses: Callable[[str], str], workdir: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with contextlib.ExitStack() as background:
        for command in commands(block):
            text = addresses(command.text)
            args = shlex.split(text, comments=True)
            if args[:2] == ["tuplespace", "serve"]:
                if args[-1] == "&":  # serves until the end of the block
                    _serve(args[:-1], workdir, background)
                else:  # serves until stopped, before the next command
                    with contextlib.ExitStack() as foreground:
                        _serve(args, workdir, foreground)
                continue
            result = subprocess.run(
                ["bash", "-c", text], cwd=workdir, env=env, capture_output=True, text=True, timeout=PATIENCE
            )
            output = result.stdout + result.stderr
            said = f"{block.where}: {command.text}\nexited with {result.returncode}, printing:\n{output}"
            assert result.returncode == 0, said
            if command.prints is not None:
                assert _printed(command.prints).fullmatch(output), said


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        missing("node is needed to run the JavaScript examples (Debian: apt-get install nodejs)")
    return path


@pytest.fixture(scope="module")
def js_server() -> Iterator[LiveServer]:
    tokens = {"tokens": [{"name": "admin", "token": ADMIN_TOKEN, "admin": True}]}
    with LiveServer(store="memory", tokens=tokens) as server:
        yield server


@pytest.mark.parametrize("block", _runnable(JAVASCRIPT), ids=lambda b: b.where)
def test_the_javascript_examples_run(block: Block, node: str, js_server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "tuplespace").symlink_to(ROOT / "clients" / "js")
    code = block.code.replace("http://127.0.0.1:8765", js_server.url)
    code = code.replace('token: "…"', f'token: "{ADMIN_TOKEN}"')
    (tmp_path / "example.mjs").write_text(code)
    result = subprocess.run(
        [node, "example.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE, check=False
    )
    assert result.returncode == 0, f"the example at {block.where} fails:\n{result.stdout}{result.stderr}"
