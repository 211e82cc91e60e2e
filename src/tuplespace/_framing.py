"""The framing of a server's channel, shared by the server and the binding
(docs/http-api.md, "The channel"): a connection that starts with :data:`MAGIC`,
then frames of a 4-byte big-endian length and that many bytes."""

from __future__ import annotations

__all__ = ["LENGTH", "MAGIC", "frame"]

# The first bytes of a channel: not the start of any HTTP request.
MAGIC = b"TUPLESPACE/1\n"
LENGTH = 4


def frame(payload: bytes) -> bytes:
    """``payload`` as a frame: its length, then itself."""
    return len(payload).to_bytes(LENGTH, "big") + payload
