"""Spaces whose state lives outside this process, shared by every process that opens
them: :class:`RedisSpace` and :class:`AsyncRedisSpace` keep a space in Redis
(``tuplespace.connect("redis://127.0.0.1:6379/0?space=jobs")``).  See
``docs/scaling.md``."""

from .._extras import missing as _missing

try:
    from ._redis_async import AsyncRedisSpace
    from ._redis_sync import RedisSpace
except ModuleNotFoundError as exc:
    raise _missing("redis", exc) from exc

__all__ = ["AsyncRedisSpace", "RedisSpace"]
