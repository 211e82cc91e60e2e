"""The public surface: one ``__all__`` in ``tuplespace``, private modules behind it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import types

import tuplespace


def private_modules() -> list[types.ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(tuplespace.__path__, "tuplespace.")]
    assert names, "tuplespace has no modules?"
    return [importlib.import_module(name) for name in names]


def test_every_name_in_all_exists() -> None:
    missing = [name for name in tuplespace.__all__ if not hasattr(tuplespace, name)]
    assert missing == []


def test_import_leaves_the_federation_and_the_protocols_until_named() -> None:
    code = (
        "import sys, tuplespace as ts\n"
        "lazy = ('tuplespace._federation', 'tuplespace._protocols')\n"
        "print(sorted(m for m in sys.modules if m.startswith(lazy)))\n"
        "print(ts.Node.__name__, ts.SpaceAPI.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "Node SpaceAPI"]


def test_all_has_no_duplicates() -> None:
    assert len(tuplespace.__all__) == len(set(tuplespace.__all__))


def test_every_public_name_is_in_all() -> None:
    public = {  # dir(): with the names imported when first used
        name
        for name in dir(tuplespace)
        if not name.startswith("_") and not isinstance(getattr(tuplespace, name), types.ModuleType)
    }
    assert public - set(tuplespace.__all__) == set()
    assert set(tuplespace.__all__) - public == set()


# The subpackages a user imports by name; everything inside them is private too.
PUBLIC_MODULES = {
    "tuplespace.cli",
    "tuplespace.client",
    "tuplespace.server",
    "tuplespace.stores",
    "tuplespace.testing",
    "tuplespace.testing.contract",  # the contract suite, collected with import *
    "tuplespace.testing.plugin",  # the pytest plugin (entry point pytest11)
}


def test_modules_are_private() -> None:
    for module in private_modules():
        name = module.__name__
        if name in PUBLIC_MODULES:
            continue
        package = next((p for p in PUBLIC_MODULES if name.startswith(p + ".")), "tuplespace")
        assert all(part.startswith("_") for part in name[len(package) + 1 :].split(".")), name


def test_module_all_lists_names_that_exist() -> None:
    for module in private_modules():
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{module.__name__}.__all__ names {name}, which is missing"


def test_public_classes_and_functions_come_from_the_package() -> None:
    for name in tuplespace.__all__:
        obj = getattr(tuplespace, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("tuplespace._"), (name, obj.__module__)
            assert obj.__name__ == name


def test_every_exported_exception_is_a_tuple_space_error() -> None:
    for name in tuplespace.__all__:
        obj = getattr(tuplespace, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, tuplespace.TupleSpaceError), name


def test_the_version_is_a_string() -> None:
    assert isinstance(tuplespace.__version__, str)
    assert tuplespace.__version__.count(".") == 2
