"""Spaces whose state lives outside this process, shared by every process that opens
them: :class:`RedisSpace` and :class:`AsyncRedisSpace` keep a space in Redis
(``tuplespace.connect("redis://127.0.0.1:6379/0?space=jobs")``), spread over several
hash slots by :class:`PartitionedRedisSpace` and :class:`AsyncPartitionedRedisSpace`
(``...&partitions=16&route=1``); their rules (``space.rules``) are
:class:`RedisRules` and :class:`AsyncRedisRules`.  See
``docs/scaling.md``."""

from .._extras import missing as _missing

try:
    from ._redis_async import (
        AsyncPartitionedRedisSpace,
        AsyncRedisRecord,
        AsyncRedisRecordWatch,
        AsyncRedisSpace,
        AsyncRedisTransaction,
    )
    from ._redis_rules_async import AsyncRedisRules
    from ._redis_rules_sync import RedisRules
    from ._redis_sync import (
        PartitionedRedisSpace,
        RedisRecord,
        RedisRecordWatch,
        RedisSpace,
        RedisTransaction,
    )
except ModuleNotFoundError as exc:
    raise _missing("redis", exc) from exc

__all__ = [
    "AsyncPartitionedRedisSpace",
    "AsyncRedisRecord",
    "AsyncRedisRecordWatch",
    "AsyncRedisRules",
    "AsyncRedisSpace",
    "AsyncRedisTransaction",
    "PartitionedRedisSpace",
    "RedisRecord",
    "RedisRecordWatch",
    "RedisRules",
    "RedisSpace",
    "RedisTransaction",
]
