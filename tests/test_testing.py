"""The conformance kit (tuplespace/testing): a project of its own adds a way of running a
space with the ``pytest_tuplespace_ways`` hook and a fixture, and the contract suite runs
over it, in a pytest run of that project (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import contextlib

import pytest

import tuplespace as ts
from tuplespace.testing import Way


class Forgetful(ts.Space):
    '''A space whose take leaves the tuple in place.'''

    def take(self, template, timeout=None):
        return self.read(template, timeout)


@pytest.fixture(scope="session")
def kind():
    return KIND


@contextlib.contextmanager
def my_space(kind, **options):
    space = ts.Space(**options) if kind == "good" else Forgetful(**options)
    try:
        yield space
    finally:
        space.close()


def pytest_tuplespace_ways(config):
    return [Way("mine", my_space, embedded=True, needs="kind")]
"""

SUITE = "from tuplespace.testing.contract import *  # noqa: F403\n"

# A few tests of the suite, enough to tell a good space from a forgetful one.
SOME = "mine and (test_write_then_read or test_take_removes or test_count)"


def _run(pytester: pytest.Pytester, kind: str) -> pytest.RunResult:
    pytester.makeconftest(f"KIND = {kind!r}\n" + CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    return pytester.runpytest("-p", "no:cacheprovider", "-v", "-k", SOME)


def test_the_contract_suite_runs_over_a_way_a_project_adds(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "good")
    result.stdout.fnmatch_lines(["*test_take_removes_the_tuple[[]mine[]] PASSED*"])
    result.stdout.no_fnmatch_line("*[[]memory[]]*")  # -k chose the project's way alone
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 3
    assert "failed" not in outcomes


def test_the_contract_suite_fails_a_space_that_loses_tuples(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "forgetful")
    result.stdout.fnmatch_lines(["*test_take_removes_the_tuple[[]mine[]] FAILED*"])
