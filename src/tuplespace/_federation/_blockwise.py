"""Block-wise transfer (RFC 7959): the blocks of a large answer fetched and joined
by a client, and the entity tag that tells a client the blocks are of one answer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .._errors import Unreachable
from ._message import (
    BLOCK1,
    BLOCK2,
    CON,
    ETAG,
    GET,
    OBSERVE,
    SIZE1,
    SIZE2,
    Message,
    MessageError,
    block_value,
    decode_block,
    success,
)

__all__ = ["BLOCK_OPTIONS", "Blocks", "etag"]

# Options a block of a transfer has that the request of the whole does not.
BLOCK_OPTIONS = frozenset({BLOCK1, BLOCK2, SIZE1, SIZE2, OBSERVE})


def etag(payload: bytes) -> bytes:
    """The entity tag of a body sent block by block."""
    return hashlib.blake2b(payload, digest_size=8).digest()


class Blocks:
    """The blocks of an answer (RFC 7959 §2.4) being fetched and joined: the first
    given, :meth:`next_request` asks the next, :meth:`add` takes it."""

    __slots__ = (
        "answer",
        "body",
        "first",
        "maximum",
        "more",
        "new_token",
        "num",
        "options",
        "request",
        "szx",
        "tag",
    )

    def __init__(
        self, request: Message, first: Message, maximum: int, new_token: Callable[[], bytes]
    ) -> None:
        self.request = request
        self.maximum = maximum  # bytes the whole answer may have
        self.new_token = new_token
        self.first = first  # its code and options are the whole answer's (OSCORE's among them)
        self.answer = first
        self.body = bytearray(first.payload)
        self.tag = first.get(ETAG)
        self.options = [o for o in request.options if o[0] not in BLOCK_OPTIONS]
        block2 = first.number(BLOCK2)
        self.num, self.more, self.szx = (0, False, 0) if block2 is None else decode_block(block2)

    def next_request(self) -> Message | None:
        """The request for the next block, or None when the answer is whole."""
        if not self.more:
            return None
        if len(self.body) > self.maximum:
            raise Unreachable(f"the answer is larger than {self.maximum} bytes")
        self.num += len(self.answer.payload) >> (self.szx + 4)
        # A GET is asked again; the answer of another method is kept under its token.
        request = self.request
        token = self.new_token() if request.code == GET else request.token
        part = Message(CON, request.code, 0, token, list(self.options))
        return part.add(BLOCK2, block_value(self.num, False, self.szx))

    def add(self, answer: Message) -> Message | None:
        """Take the next block; an error answer ends the transfer and is returned."""
        if not success(answer.code):
            return answer
        if answer.get(ETAG) != self.tag:
            raise MessageError("the answer changed while its blocks were fetched")
        block2 = answer.number(BLOCK2)
        if block2 is None:
            raise MessageError("a block of the answer came without its Block2 option")
        num, more, szx = decode_block(block2)
        if num << (szx + 4) != self.num << (self.szx + 4):  # a repeat of another block
            raise MessageError("a block of the answer came other than the one asked for")
        self.num, self.more, self.szx = num, more, szx
        self.answer = answer
        self.body += answer.payload
        return None

    def whole(self) -> Message:
        """The answer, its blocks joined."""
        answer = self.first
        if answer.number(BLOCK2) is not None:
            answer.payload = bytes(self.body)
            answer.remove(BLOCK2)
        return answer
