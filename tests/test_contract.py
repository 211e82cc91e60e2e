"""The contract suite of the conformance kit (tuplespace/testing/contract.py), collected
here and run over every way of running a space (the kit's plugin and conftest.py)."""

from tuplespace.testing.contract import *  # noqa: F403
