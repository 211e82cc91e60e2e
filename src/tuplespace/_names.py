"""Names in a space: the tags of record fields and the paths of records.

A tag is 1 to 128 of ``A-Z a-z 0-9 _ -``: no ``$`` (computed tags such as
``$version`` start with one), no ``.`` or ``/`` (they separate the parts of paths
and addresses).  A path is segments separated by ``/`` (``sensors/kitchen``), each
of ``A-Z a-z 0-9 . _ ~ -`` and not starting with a dot, so a path is also the end of
a URI without any escaping.
"""

from __future__ import annotations

import re
from typing import Final

from ._errors import InvalidValue, UnsupportedType

__all__ = [
    "KNOWN_TAGS",
    "MAX_PATH",
    "MAX_SEGMENTS",
    "MAX_TAG",
    "SEGMENT_PATTERN",
    "TAG_PATTERN",
    "check_path",
    "check_tag",
    "path_prefix",
]

MAX_TAG: Final = 128
MAX_PATH: Final = 1024
MAX_SEGMENTS: Final = 32
KNOWN_TAGS_KEPT = 4096

KNOWN_TAGS: set[str] = set()
"""Tags found valid, so the common ones are checked once (at most ``KNOWN_TAGS_KEPT``)."""

TAG_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
SEGMENT_PATTERN: Final = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")


def check_tag(tag: object) -> str:
    """``tag`` if it is a valid tag; raises :class:`InvalidValue` (or
    :class:`UnsupportedType` for what is not a str) otherwise."""
    if type(tag) is not str:
        raise UnsupportedType(f"a tag is a str, not {type(tag).__name__}")
    if tag in KNOWN_TAGS:
        return tag
    if TAG_PATTERN.fullmatch(tag) is None:
        if tag.startswith("$"):
            raise InvalidValue(f"{tag!r} is not a tag that can be set: tags starting with '$' are computed")
        raise InvalidValue(
            f"{tag[:MAX_TAG]!r} is not a valid tag: tags are 1 to {MAX_TAG} of the characters "
            "A-Z a-z 0-9 _ - (no '$', '.' or '/')"
        )
    if len(KNOWN_TAGS) >= KNOWN_TAGS_KEPT:
        KNOWN_TAGS.clear()
    KNOWN_TAGS.add(tag)
    return tag


def check_path(path: object) -> str:
    """``path`` if it is a valid record path (at most 32 segments, 1024 characters)."""
    if type(path) is not str:
        raise UnsupportedType(f"a record path is a str, not {type(path).__name__}")
    if not path or len(path) > MAX_PATH:
        raise InvalidValue(f"a record path has 1 to {MAX_PATH} characters, got {len(path)}")
    parts = path.split("/")
    if len(parts) > MAX_SEGMENTS:
        raise InvalidValue(f"a record path has at most {MAX_SEGMENTS} segments, got {len(parts)}")
    for part in parts:
        if SEGMENT_PATTERN.fullmatch(part) is None:
            raise InvalidValue(
                f"{path!r} is not a valid record path: segments are separated by '/', are not empty, "
                "do not start with '.', and hold only A-Z a-z 0-9 . _ ~ -"
            )
    return path


def path_prefix(path: str | None) -> str | None:
    """The prefix of the paths below ``path`` (``"sensors"`` and ``"sensors/"`` both
    give ``"sensors/"``); None for None or ``""`` (everything)."""
    if path is None or path == "":
        return None
    if not isinstance(path, str):
        raise UnsupportedType(f"under is a path, a str, not {type(path).__name__}")
    return check_path(path.rstrip("/")) + "/"
