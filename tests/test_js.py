"""The JavaScript binding (``clients/js``) against real servers on 127.0.0.1.

Its own suite runs as ``npm test`` would run it in a fresh clone: ``tsc`` checks its type
declarations, then ``test/run.js`` starts its servers with this environment's
``tuplespace`` command and runs ``clients/js/test/*.test.js`` under ``node --test``.
Then tuples travel between the two languages: written from JavaScript
and taken from Python, and back, with every kind of template field; each side's
template must take exactly the tuples the other side's equal template takes.  Records
too: created in JavaScript, read and set in Python, and back; a find in each language
finds the same records.

Node.js and npm are needed; without them the tests are skipped, except under CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tuplespace as ts
from helpers import missing
from tuplespace._httpapi import OPERATIONS

JS = Path(__file__).resolve().parent.parent / "clients" / "js"
CROSS = JS / "test" / "cross-language.js"

pytestmark = pytest.mark.timeout(600)  # the first run installs TypeScript with npm


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is needed to test the JavaScript binding")
    return path


@pytest.fixture(scope="module")
def node() -> str:
    return _tool("node")


@pytest.fixture(scope="module")
def installed(node: str) -> Path:
    """``clients/js`` with its development dependencies installed (``npm ci``)."""
    npm = _tool("npm")
    if not (JS / "node_modules" / ".bin" / "tsc").exists():
        run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, timeout=500)
    return JS


def run(command: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run ``command``; its output, or a failure showing it."""
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        shown = b"".join(x if isinstance(x, bytes) else (x or "").encode() for x in (exc.stdout, exc.stderr))
        pytest.fail(f"{' '.join(command)} ran past {timeout} s:\n{shown.decode(errors='replace')}")
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n{output}")
    return output


# The operations of the table the binding does not send: the token API and the metrics (an
# administrator's, from the command line or the dashboard), and the release of a claim (the
# binding confirms each claim with its next take, or lets it run out).
_NOT_IN_THE_BINDING = {"metrics", "list_tokens", "create_token", "revoke_token", "release_claim"}


def _operation_of(method: str, path: str) -> str | None:
    """The name of the row of the operation table that takes ``method`` on ``path``."""
    for op in OPERATIONS:
        pattern = "[^/]+".join(map(re.escape, re.split(r"\{\w+\}", op.path)))
        if op.method == method and re.fullmatch(pattern, path):
            return op.name
    return None


def test_npm_test_starts_its_own_servers_and_passes(installed: Path, tmp_path: Path) -> None:
    """``npm test``: ``tsc`` checks the type declarations, then ``test/run.js`` starts the
    servers of the node suite with the ``tuplespace`` command of this environment.

    Every request the suite sends (recorded by ``test/record-requests.js``) is a row of the
    operation table, by its method and path, and the binding sends every row but those of
    the administrator."""
    npm = _tool("npm")
    env = {**os.environ, "TUPLESPACE_COMMAND": str(Path(sys.executable).with_name("tuplespace"))}
    for name in [n for n in env if n.startswith("TUPLESPACE_TEST_")]:
        del env[name]  # the suite is given nothing but the command, and where to log its requests
    requests = tmp_path / "requests.log"
    env["TUPLESPACE_TEST_REQUESTS"] = str(requests)
    recorder = (installed / "test" / "record-requests.js").as_uri()
    env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} --import={recorder}".strip()
    output = run([npm, "test"], cwd=installed, timeout=300, env=env)
    for line in ("# fail 0", "# cancelled 0", "# skipped 0"):
        assert line in output, output
    assert "# pass 0" not in output, output
    assert len(list((installed / "test").glob("*.test.js"))) >= 6
    sent: set[str] = set()
    for line in requests.read_text().splitlines():
        method, url = line.split(" ", 1)
        name = _operation_of(method, urllib.parse.urlsplit(url).path)
        assert name is not None, f"the binding sent {method} {url}, which no row of the operation table takes"
        sent.add(name)
    assert sent == {op.name for op in OPERATIONS} - _NOT_IN_THE_BINDING


def test_npm_test_names_the_command_it_needs_when_there_is_none(installed: Path, tmp_path: Path) -> None:
    """Without ``TUPLESPACE_COMMAND``, a project environment or a ``tuplespace`` on PATH,
    the runner says what it needs (run from a copy of the package outside the project)."""
    node = _tool("node")
    package = tmp_path / "js"
    shutil.copytree(installed, package, ignore=shutil.ignore_patterns("node_modules"))
    env = {"PATH": str(Path(node).parent), "HOME": str(tmp_path)}
    result = subprocess.run(
        [node, "test/run.js"], cwd=package, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TUPLESPACE_COMMAND" in result.stderr
    assert "tuplespace" in result.stderr


# -- tuples between the languages -------------------------------------------------------------

WHEN = dt.datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=dt.UTC)

# Each case: the template, as Python writes it, and tuples, the first `matching` of which
# match it.  clients/js/test/cross-language.js writes the same cases in JavaScript.
CASES: dict[str, tuple[tuple[Any, ...], int, list[tuple[Any, ...]]]] = {
    "any": (
        ("any", ts.ANY, "b"),
        4,
        [
            ("any", 1, "b"),
            ("any", None, "b"),
            ("any", (1, "x"), "b"),
            ("any", {"k": 1.5}, "b"),
            ("any", 1, "c"),
        ],
    ),
    "formal": (
        ("formal", int, float, str, bytes, dt.datetime, ts.URI, ts.Credit, tuple, ts.Map, type(None), bool),
        2,
        [
            ("formal", 1, 1.0, "s", b"\x00", WHEN, ts.URI("u"), ts.Credit("1"), (), {}, None, True),
            ("formal", 2**70, 0.5, "", b"", WHEN, ts.URI("v"), ts.Credit("0"), (1,), {"a": 1}, None, False),
            ("formal", True, 1.0, "s", b"\x00", WHEN, ts.URI("u"), ts.Credit("1"), (), {}, None, True),
            ("formal", 1, 1, "s", b"\x00", WHEN, ts.URI("u"), ts.Credit("1"), (), {}, None, True),
            ("formal", 1, 1.0, ts.URI("s"), b"\x00", WHEN, "u", ts.Credit("1"), (), {}, None, True),
        ],
    ),
    "value": (
        ("value", 1, 1.0, True, ts.Credit("1.50"), ts.URI("u"), b"\x00\xff", WHEN, 2**60),
        1,
        [
            ("value", 1, 1.0, True, ts.Credit("1.5"), ts.URI("u"), b"\x00\xff", WHEN, 2**60),
            ("value", 1.0, 1.0, True, ts.Credit("1.5"), ts.URI("u"), b"\x00\xff", WHEN, 2**60),
            ("value", 1, 1, True, ts.Credit("1.5"), ts.URI("u"), b"\x00\xff", WHEN, 2**60),
            ("value", 1, 1.0, 1, ts.Credit("1.5"), ts.URI("u"), b"\x00\xff", WHEN, 2**60),
            ("value", 1, 1.0, True, 1.5, ts.URI("u"), b"\x00\xff", WHEN, 2**60),
            ("value", 1, 1.0, True, ts.Credit("1.5"), "u", b"\x00\xff", WHEN, 2**60),
            ("value", 1, 1.0, True, ts.Credit("1.5"), ts.URI("u"), b"\x00\xfe", WHEN, 2**60),
            ("value", 1, 1.0, True, ts.Credit("1.5"), ts.URI("u"), b"\x00\xff", WHEN, float(2**60)),
        ],
    ),
    "range": (
        ("range", ts.Range(20, 30), ts.Range(WHEN, None), ts.Range("a", "n", include_high=True)),
        3,
        [
            ("range", 20, WHEN, "a"),
            ("range", 29.5, WHEN + dt.timedelta(days=1), "n"),
            ("range", ts.Credit("29.99"), WHEN, "mz"),
            ("range", 30, WHEN, "a"),
            ("range", 19, WHEN, "a"),
            ("range", 25, WHEN - dt.timedelta(microseconds=1), "a"),
            ("range", 25, WHEN, "na"),
            ("range", True, WHEN, "a"),
        ],
    ),
    "regex": (
        ("regex", ts.Regex("^cr[a-z]+$")),
        2,
        [("regex", "crop"), ("regex", "cry"), ("regex", "scrap"), ("regex", "cr"), ("regex", ts.URI("crop"))],
    ),
    "prefix": (
        ("prefix", ts.Prefix("jo"), ts.Prefix(b"\x01"), ts.Prefix(ts.URI("tuplespace://n1/"))),
        2,
        [
            ("prefix", "job", b"\x01\x02", ts.URI("tuplespace://n1/a")),
            ("prefix", "jo", b"\x01", ts.URI("tuplespace://n1/")),
            ("prefix", "Job", b"\x01", ts.URI("tuplespace://n1/")),
            ("prefix", "job", b"\x02", ts.URI("tuplespace://n1/")),
            ("prefix", "job", b"\x01", "tuplespace://n1/a"),
        ],
    ),
    "oneof": (
        ("oneof", ts.OneOf("a", 1, 2.0, (1, 2), {"k": "v"})),
        5,
        [
            ("oneof", "a"),
            ("oneof", 1),
            ("oneof", 2.0),
            ("oneof", (1, 2)),
            ("oneof", {"k": "v"}),
            ("oneof", 1.0),
            ("oneof", 2),
            ("oneof", True),
            ("oneof", {"k": "v", "x": 1}),
        ],
    ),
    "xpath": (
        ("xpath", ts.XPath("/order[@state='open']")),
        2,
        [
            ("xpath", "<order state='open'/>"),
            ("xpath", b'<order state="open"><x/></order>'),
            ("xpath", "<order state='closed'/>"),
            ("xpath", "not xml"),
        ],
    ),
    "nested": (
        ("nested", ("a", int, ("b", ts.ANY))),
        2,
        [
            ("nested", ("a", 1, ("b", None))),
            ("nested", ("a", 2, ("b", "x"))),
            ("nested", ("a", 1.0, ("b", None))),
            ("nested", ("a", 1, ("b", None, None))),
            ("nested", ("a", 1, ["c", None])),
        ],
    ),
    "map": (
        ("map", {"temp": ts.Range(20, None), "unit": "C", "$kind": "reading"}),
        2,
        [
            ("map", {"temp": 21.5, "unit": "C", "$kind": "reading"}),
            ("map", {"temp": 20, "unit": "C", "$kind": "reading", "extra": [1]}),
            ("map", {"temp": 19, "unit": "C", "$kind": "reading"}),
            ("map", {"temp": 21, "unit": "C"}),
            ("map", {"temp": 21, "unit": "F", "$kind": "reading"}),
        ],
    ),
}


def node_cross(node: str, *args: str) -> Any:
    """Run clients/js/test/cross-language.js; its JSON answer."""
    return json.loads(run([node, str(CROSS), *args], cwd=JS, timeout=60))


@pytest.fixture
def space_url(http_server: Any) -> Iterator[str]:
    url = f"{http_server.url}/spaces/js-{uuid.uuid4().hex[:12]}"
    yield url
    http_server.delete(url)


def test_the_cases_are_the_same_in_both_languages(node: str) -> None:
    encoded = node_cross(node, "encode")
    assert sorted(encoded) == sorted(CASES)
    for name, (template, matching, tuples) in CASES.items():
        assert encoded[name]["template"] == ts.encode_template(template).decode(), name
        assert encoded[name]["tuples"] == [ts.encode(t).decode() for t in tuples], name
        assert encoded[name]["matching"] == matching, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_javascript_writes_and_python_takes(node: str, space_url: str, case: str) -> None:
    template, matching, tuples = CASES[case]
    node_cross(node, "write", case, space_url)
    with ts.connect(space_url) as space:
        taken = space.take_all(template)
        assert sorted(map(ts.encode, taken)) == sorted(map(ts.encode, tuples[:matching]))
        left = space.take_all((case, *[ts.ANY] * (len(template) - 1)))
        assert sorted(map(ts.encode, left)) == sorted(map(ts.encode, tuples[matching:]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_python_writes_and_javascript_takes(node: str, space_url: str, case: str) -> None:
    template, matching, tuples = CASES[case]
    with ts.connect(space_url) as space:
        space.write_many(tuples)
        # JavaScript takes with its template and encodes what it decoded: Python's bytes.
        taken = node_cross(node, "take", case, space_url)
        assert sorted(taken) == sorted(ts.encode(t).decode() for t in tuples[:matching])
        left = space.read_all((case, *[ts.ANY] * (len(template) - 1)))
        assert sorted(map(ts.encode, left)) == sorted(map(ts.encode, tuples[matching:]))


# -- records between the languages ------------------------------------------------------------

# The record clients/js/test/cross-language.js creates (its RECORD), as Python writes it.
RECORD = ts.Map(
    {
        "temp": 21.5,
        "unit": "C",
        "when": WHEN,
        "price": ts.Credit("9.50"),
        "link": ts.URI("tuplespace://n1/x"),
        "list": ("a", 1),
        "meta": {"k": 2**70, "raw": b"\x00\xff"},
    }
)
# Records for a find by {"unit": "C", "temp": Range(20, 30)} below "sensors" (its FIND):
# the paths it must find, and the others.
FOUND = ["sensors/a", "sensors/b", "sensors/e"]
RECORDS = {
    "sensors/a": {"unit": "C", "temp": 21},
    "sensors/b": {"unit": "C", "temp": 29.5},
    "sensors/c": {"unit": "C", "temp": 30},
    "sensors/d": {"unit": "F", "temp": 25},
    "sensors/e": {"unit": "C", "temp": ts.Credit("25")},
    "sensors/f": {"unit": "C", "temp": "25"},
    "sensors/g": {"unit": "C", "temp": True},
    "sensors/h": {"unit": "C"},
    "other/i": {"unit": "C", "temp": 25},
}


def test_a_record_created_in_javascript_is_read_and_set_in_python_and_back(node: str, space_url: str) -> None:
    made = node_cross(node, "record-create", "shared/js", space_url)
    with ts.connect(space_url) as space:
        rec = space.record("shared/js")
        assert made == {"address": str(rec.address), "version": 1}
        assert ts.encode(rec.all()) == ts.encode(RECORD)
        assert rec.tags() == list(RECORD)
        assert rec.set("python", ts.Credit("1.5")) == 2

        read = node_cross(node, "record-read", "shared/js", space_url)
        expected = ts.Map({**RECORD, "python": ts.Credit("1.5")})
        assert read == {"tags": list(expected), "fields": ts.encode(expected).decode(), "version": 2}
        assert rec.get("js") is True
        assert rec.get("$version") == 3


def test_a_javascript_find_matches_what_a_python_find_matches(node: str, space_url: str) -> None:
    with ts.connect(space_url) as space:
        for path, fields in RECORDS.items():
            space.create(path, fields)
        found = space.find({"unit": "C", "temp": ts.Range(20, 30)}, under="sensors")
        prefix = f"tuplespace://local/spaces/{space_url.rsplit('/', 1)[1]}/"
        assert [str(r.address).removeprefix(prefix) for r in found] == FOUND
        assert node_cross(node, "record-find", "sensors", space_url) == FOUND
