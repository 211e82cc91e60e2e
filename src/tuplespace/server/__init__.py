"""The PyTupleSpace server: named spaces behind an HTTP/JSON API (docs/http-api.md).

>>> from tuplespace.server import create_app, run
>>> app = create_app("./tuplespace-data")            # an ASGI app   # doctest: +SKIP
>>> run(port=8765, data_dir="./tuplespace-data")     # or serve it   # doctest: +SKIP

From the command line: ``tuplespace serve``.
"""

from .._extras import missing as _missing

try:
    from ._app import create_app
    from ._runner import Server, run
    from ._service import ServerLimits
except ModuleNotFoundError as exc:
    raise _missing("server", exc) from exc

__all__ = ["Server", "ServerLimits", "create_app", "run"]
