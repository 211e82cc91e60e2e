"""How the package installs: the embedded space with its core dependencies alone, every
other part behind an extra that its error names, and ``constraints.txt`` pinning every
package of the tests within the ranges of ``pyproject.toml``.

An environment with the core dependencies alone is a fresh interpreter (``-I``) whose
``sys.meta_path`` refuses every module but the standard library's, tuplespace's and those
of the core dependencies: what the package imports there, it imports without the extras.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tuplespace._extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]["name"]

# Imports nothing but what sys.argv[1] allows; then runs the rest of the script.
CORE_ONLY = """
import importlib.abc, json, sys

ALLOWED = set(json.loads(sys.argv[1]))

class CoreOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ALLOWED:
            return None
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, CoreOnly())
"""


def _closure(name: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """The distributions that ``name`` with ``extras`` installs: itself, what it requires
    (following its extras, its own included), and what those require."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(name), extras)]
    while todo:
        dist, wanted = todo.pop()
        if (dist, wanted) in seen:
            continue
        seen.add((dist, wanted))
        for text in metadata.requires(dist) or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *wanted}):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {dist for dist, _ in seen}


def _modules(dists: set[str]) -> set[str]:
    """The top-level modules that the installed distributions ``dists`` provide."""
    return {
        module
        for module, providers in metadata.packages_distributions().items()
        if any(canonicalize_name(p) in dists for p in providers)
    }


def _core_only(script: str, *args: str) -> Any:
    """Run ``script`` where only the core dependencies can be imported; what it prints, as JSON."""
    core = _closure(PROJECT) - {canonicalize_name(PROJECT)}
    allowed = sorted(_modules(core) | {"tuplespace"})
    result = subprocess.run(
        [sys.executable, "-I", "-c", CORE_ONLY + script, json.dumps(allowed), *args],
        capture_output=True,
        text=True,
        timeout=100,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_the_core_dependencies_are_orjson_alone() -> None:
    assert [Requirement(r).name for r in PYPROJECT["project"]["dependencies"]] == ["orjson"]


def test_the_embedded_space_works_with_its_core_dependencies_alone(tmp_path: Path) -> None:
    script = """
import asyncio
import tuplespace as ts

space = ts.Space()
space.write(("job", 1, "resize"))
assert space.take(("job", int, ts.Prefix("re"))) == ("job", 1, "resize")
assert ts.parse(ts.format(("job", 2.5))) == ("job", 2.5)

async def embedded_async():
    aspace = ts.AsyncSpace(ts.Space())
    await aspace.write(("job", 3))
    return await aspace.take(("job", int), timeout=0)

assert asyncio.run(embedded_async()) == ("job", 3)

url = "sqlite:///" + sys.argv[2] + "?space=jobs"
durable = ts.connect(url)
durable.write(("job", 4, "crop"))
durable.close()
again = ts.connect(url)
taken = again.take(("job", ts.Range(0, 10), str), timeout=0)
again.close()
print(json.dumps(list(taken)))
"""
    assert _core_only(script, str(tmp_path / "spaces.db")) == ["job", 4, "crop"]


def test_each_optional_part_used_without_its_extra_names_the_extra() -> None:
    script = """
import tuplespace as ts
from tuplespace.__main__ import main

def command():
    sys.argv = ["tuplespace", "--version"]
    try:
        main()
    except SystemExit as exc:
        raise RuntimeError(exc.code) from None

def method():
    space = ts.Space()
    record = space.create("thermostat", {"bump": ts.Method("function(self) return 1 end")})
    record.call("bump")

parts = {
    "re2": lambda: ts.Regex("^job"),
    "xpath": lambda: ts.XPath("/job"),
    "xpath text": lambda: ts.format(("job",), form="xml"),
    "client": lambda: ts.connect("http://127.0.0.1:9/spaces/jobs"),
    "client server": lambda: ts.connect_server("http://127.0.0.1:9"),
    "server": lambda: __import__("tuplespace.server"),
    "redis": lambda: ts.connect("redis://127.0.0.1:9/0?space=jobs"),
    "federation": lambda: ts.Node("coap://127.0.0.1:9/"),
    "cli": command,
    "active": method,
}
errors = {}
for part, use in parts.items():
    try:
        use()
    except Exception as exc:
        errors[part] = [type(exc).__name__, str(exc)]
    else:
        errors[part] = None
print(json.dumps(errors))
"""
    errors = _core_only(script)
    for part, error in errors.items():
        extra = part.split()[0]
        assert error is not None, part
        kind, message = error
        expected = {"active": "EvaluationError", "cli": "RuntimeError"}.get(extra, "MissingExtra")
        assert kind == expected, (part, error)
        assert f"the {extra!r} extra: pip install 'pytuplespace[{extra}]'" in message, (part, error)


def test_the_extras_of_the_package_are_those_of_pyproject() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras) - {"all", "test", "bench"} == set(EXTRAS)

    def own(group: str) -> set[str]:  # the extras of the package itself that a group asks for
        return {e for r in map(Requirement, extras[group]) if r.name == PROJECT for e in r.extras}

    assert own("all") == set(EXTRAS)
    assert own("test") == {"all"}
    for extra, (_, modules) in EXTRAS.items():
        installed = _modules(_closure(PROJECT, frozenset({extra})) - _closure(PROJECT))
        assert set(modules) <= installed, extra


def test_every_requirement_has_a_range_and_every_package_of_the_tests_an_exact_pin() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins: dict[str, str] = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, line
            pins[canonicalize_name(name)] = version
    requirements = [
        *PYPROJECT["project"]["dependencies"],
        *(r for group in PYPROJECT["project"]["optional-dependencies"].values() for r in group),
    ]
    for text in requirements:
        req = Requirement(text)
        if req.name == PROJECT:
            continue
        assert req.specifier, f"{text}: no range"
        assert not any(s.operator == "==" for s in req.specifier), f"{text}: a pin, not a range"
        pin = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(pin), f"{text}: constraints.txt pins {pin}"
    for dist in _closure(PROJECT, frozenset({"test"})) - {canonicalize_name(PROJECT)}:
        assert pins.get(dist) == metadata.version(dist), dist
