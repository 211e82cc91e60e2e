"""CoAP messages (RFC 7252 §3): the header, the token, the options and the payload.

A :class:`Message` is encoded to and decoded from one datagram.  Decoding trusts
nothing: a datagram that is not a well-formed message raises :class:`MessageError`
and is dropped (or reset) by the endpoint.  Codes are the integers of the wire
(``class << 5 | detail``): :data:`GET` is 0.01, :data:`CONTENT` 2.05 (69).
"""

from __future__ import annotations

from .._errors import WireError

__all__ = [
    "ACK",
    "CON",
    "NON",
    "RST",
    "Message",
    "MessageError",
    "block_value",
    "code_text",
    "decode_block",
    "success",
    "uint",
]

CON, NON, ACK, RST = 0, 1, 2, 3

# Request methods (0.xx).
GET, POST, PUT, DELETE, FETCH = 1, 2, 3, 4, 5
# Response codes.
CREATED, DELETED, CHANGED, CONTENT, CONTINUE = 65, 66, 68, 69, 95
BAD_REQUEST, BAD_OPTION, NOT_FOUND, METHOD_NOT_ALLOWED = 128, 130, 132, 133
REQUEST_ENTITY_INCOMPLETE, REQUEST_ENTITY_TOO_LARGE = 136, 141
INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE = 160, 163

# Option numbers (RFC 7252 §5.10, RFC 7641, RFC 7959, RFC 8613).
URI_HOST, ETAG, OBSERVE, URI_PORT, LOCATION_PATH, URI_PATH, OSCORE = 3, 4, 6, 7, 8, 11, 9
CONTENT_FORMAT, MAX_AGE, URI_QUERY, ACCEPT, LOCATION_QUERY = 12, 14, 15, 17, 20
BLOCK2, BLOCK1, SIZE2, SIZE1 = 23, 27, 28, 60


class MessageError(WireError):
    """A datagram that is not a well-formed CoAP message, or a transfer of blocks
    that does not hold together."""


def code_text(code: int) -> str:
    """``2.05`` for 69."""
    return f"{code >> 5}.{code & 31:02d}"


def success(code: int) -> bool:
    """Whether a response code is of class 2 (2.01 to 2.31)."""
    return code >> 5 == 2


def uint(value: int) -> bytes:
    """An option's unsigned integer: big-endian in as few bytes as hold it (0: none)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def block_value(num: int, more: bool, szx: int) -> int:
    """The value of a Block1 or Block2 option (RFC 7959 §2.2)."""
    return num << 4 | more << 3 | szx


def decode_block(value: int) -> tuple[int, bool, int]:
    """``(num, more, szx)`` of a Block option; the block size is ``16 << szx``."""
    szx = value & 7
    if szx == 7:
        raise MessageError("block size exponent 7 is reserved (BERT)")
    return value >> 4, bool(value & 8), szx


class Message:
    """One CoAP message: type, code, message id, token, options (number, bytes) in
    the order of their numbers, and payload."""

    __slots__ = ("code", "mid", "mtype", "options", "payload", "token")

    def __init__(
        self,
        mtype: int = CON,
        code: int = 0,
        mid: int = 0,
        token: bytes = b"",
        options: list[tuple[int, bytes]] | None = None,
        payload: bytes = b"",
    ) -> None:
        self.mtype = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.options = [] if options is None else options
        self.payload = payload

    # -- options -------------------------------------------------------------------------

    def add(self, number: int, value: bytes | int | str) -> Message:
        """Add an option (an int as an unsigned integer, a str in UTF-8), after those
        of the same number; returns the message."""
        if isinstance(value, int):
            value = uint(value)
        elif isinstance(value, str):
            value = value.encode()
        options = self.options
        i = len(options)
        while i and options[i - 1][0] > number:
            i -= 1
        options.insert(i, (number, value))
        return self

    def remove(self, number: int) -> None:
        """Drop every option of that number."""
        self.options = [o for o in self.options if o[0] != number]

    def get(self, number: int) -> bytes | None:
        """The first option of that number, or None."""
        for n, value in self.options:
            if n == number:
                return value
        return None

    def number(self, number: int) -> int | None:
        """The unsigned integer of the first option of that number, or None."""
        for n, value in self.options:
            if n == number:
                return int.from_bytes(value, "big")
        return None

    def texts(self, number: int) -> tuple[str, ...]:
        """The options of that number as text (Uri-Path, Uri-Query, Location-Path)."""
        try:
            return tuple([value.decode() for n, value in self.options if n == number])
        except UnicodeDecodeError:
            raise MessageError(f"option {number} is not UTF-8") from None

    @property
    def path(self) -> tuple[str, ...]:
        """The Uri-Path segments."""
        return self.texts(URI_PATH)

    @property
    def query(self) -> tuple[str, ...]:
        """The Uri-Query items."""
        return self.texts(URI_QUERY)

    # -- the wire ------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The datagram of the message."""
        token = self.token
        out = bytearray(((0x40 | self.mtype << 4 | len(token)), self.code, self.mid >> 8, self.mid & 0xFF))
        out += token
        last = 0
        for number, value in self.options:
            delta, length = number - last, len(value)
            last = number
            if delta < 13 and length < 13:
                out.append(delta << 4 | length)
            else:
                dn, dx = _nibble(delta)
                ln, lx = _nibble(length)
                out.append(dn << 4 | ln)
                out += dx
                out += lx
            out += value
        if self.payload:
            out.append(0xFF)
            out += self.payload
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """The message of a datagram; :class:`MessageError` if it is not one."""
        size = len(data)
        if size < 4:
            raise MessageError("shorter than a CoAP header")
        first = data[0]
        if first >> 6 != 1:
            raise MessageError(f"CoAP version {first >> 6}")
        tkl = first & 15
        if tkl > 8:
            raise MessageError(f"token length {tkl}")
        code = data[1]
        pos = 4 + tkl
        if pos > size:
            raise MessageError("truncated token")
        options: list[tuple[int, bytes]] = []
        number = 0
        payload = b""
        while pos < size:
            byte = data[pos]
            pos += 1
            if byte == 0xFF:
                if pos == size:
                    raise MessageError("a payload marker without a payload")
                payload = data[pos:]
                break
            delta, length = byte >> 4, byte & 15
            if delta > 12:
                delta, pos = _extended(delta, data, pos)
            if length > 12:
                length, pos = _extended(length, data, pos)
            if pos + length > size:
                raise MessageError("truncated option")
            number += delta
            options.append((number, data[pos : pos + length]))
            pos += length
        if code == 0 and (tkl or size > 4):
            raise MessageError("an empty message with a token, options or payload")
        return cls((first >> 4) & 3, code, data[2] << 8 | data[3], data[4 : 4 + tkl], options, payload)

    def __repr__(self) -> str:
        kind = ("CON", "NON", "ACK", "RST")[self.mtype]
        return (
            f"Message({kind} {code_text(self.code)} mid={self.mid} token={self.token.hex()} "
            f"options={self.options} payload={len(self.payload)} bytes)"
        )


def _nibble(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    return 14, (value - 269).to_bytes(2, "big")


def _extended(nibble: int, data: bytes, pos: int) -> tuple[int, int]:
    if nibble == 13:
        if pos >= len(data):
            raise MessageError("truncated option header")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise MessageError("truncated option header")
        return (data[pos] << 8 | data[pos + 1]) + 269, pos + 2
    raise MessageError("option nibble 15 outside a payload marker")
