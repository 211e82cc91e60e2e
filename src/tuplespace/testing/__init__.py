"""The conformance kit: the contract suite of a space, for pytest.

What a space does (docs/semantics.md) is written once, as tests of a ``space`` (or
``make_space``) fixture, in :mod:`tuplespace.testing.contract`; the kit's pytest plugin
(:mod:`tuplespace.testing.plugin`, loaded wherever pytuplespace is installed) runs each
over every *way* of running a space: embedded in memory, asyncio, SQLite, remote over
HTTP or the channel, in-process (sync and async), and the ways a conftest.py adds.  A
store, a space backend or a transport is done when it passes the suite.  To run it over yours, give its
way (a context manager factory, and the fixture it needs, a server of yours say) and
collect the suite in a test module::

    # conftest.py
    import contextlib
    import pytest
    from tuplespace.testing import Way

    @pytest.fixture(scope="session")
    def my_server(): ...

    @contextlib.contextmanager
    def my_space(server, **options):          # options: those of tuplespace.Space
        space = connect_to_mine(server, **options)
        try:
            yield space                        # with the methods of tuplespace.Space
        finally:
            space.close()

    def pytest_tuplespace_ways(config):
        return [Way("mine", my_space, embedded=False, needs="my_server")]

    # test_mine.py
    from tuplespace.testing.contract import *  # noqa: F403

then ``pytest -k mine``.  An asyncio space is seen through :class:`SyncOverAsync`.  A way
that cannot take an option of :class:`tuplespace.Space` raises ``TypeError`` for it; tests
that need what cannot travel to a server run over the embedded ways only
(:func:`needs_embedding`); a way's ``lacks`` leaves out the tests it cannot run yet.
"""

from ._adapters import SyncOverAsync
from ._threads import PATIENCE, spawn, wait_for_waiters, wait_until
from ._ways import BUILTIN_WAYS, REMOTE_OPTIONS, LiveServer, Way, needs_embedding, remote_options

__all__ = [
    "BUILTIN_WAYS",
    "PATIENCE",
    "REMOTE_OPTIONS",
    "LiveServer",
    "SyncOverAsync",
    "Way",
    "needs_embedding",
    "remote_options",
    "spawn",
    "wait_for_waiters",
    "wait_until",
]
