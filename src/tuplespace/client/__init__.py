"""The Python binding of a tuple space server: the same operations as the embedded
space, over HTTP (docs/http-api.md), sync and async.

>>> import tuplespace as ts
>>> space = ts.connect("http://127.0.0.1:8765/spaces/jobs", token="...")   # doctest: +SKIP
>>> space.write(("job", 1, "resize"))                                        # doctest: +SKIP
>>> space.take(("job", int, str), timeout=5)                                 # doctest: +SKIP
('job', 1, 'resize')

:class:`RemoteSpace` is what ``tuplespace.connect`` returns for an ``http://`` or
``https://`` URL, :class:`AsyncRemoteSpace` what ``tuplespace.connect_async`` does.
"""

from .._extras import missing as _missing

try:
    from ._async import (
        AsyncCreditCalls,
        AsyncRemoteClock,
        AsyncRemoteRecord,
        AsyncRemoteRules,
        AsyncRemoteSpace,
        AsyncRemoteTransaction,
    )
    from ._async_server import AsyncRemoteServer, AsyncTokens
    from ._async_subscription import AsyncRemoteRecordWatch, AsyncRemoteSubscription
    from ._common import AsyncLease, SpaceInfo, TokenInfo
    from ._sync import CreditCalls, RemoteClock, RemoteRecord, RemoteRules, RemoteSpace, RemoteTransaction
    from ._sync_server import RemoteServer, Tokens
    from ._sync_subscription import RemoteRecordWatch, RemoteSubscription
except ModuleNotFoundError as exc:
    raise _missing("client", exc) from exc

__all__ = [
    "AsyncCreditCalls",
    "AsyncLease",
    "AsyncRemoteClock",
    "AsyncRemoteRecord",
    "AsyncRemoteRecordWatch",
    "AsyncRemoteRules",
    "AsyncRemoteServer",
    "AsyncRemoteSpace",
    "AsyncRemoteSubscription",
    "AsyncRemoteTransaction",
    "AsyncTokens",
    "CreditCalls",
    "RemoteClock",
    "RemoteRecord",
    "RemoteRecordWatch",
    "RemoteRules",
    "RemoteServer",
    "RemoteSpace",
    "RemoteSubscription",
    "RemoteTransaction",
    "SpaceInfo",
    "TokenInfo",
    "Tokens",
]
