"""OSCORE (RFC 8613): CoAP requests and answers protected end to end between two peers.

A :class:`Context` is what two peers share: derived with HKDF-SHA256 from a master
secret and salt, the sender and recipient IDs and an optional ID context (§3.2),
with AES-CCM-16-64-128 (COSE algorithm 10, the mandatory one) as the AEAD.  A
protected message carries its code, its end-to-end (class E) options and its
payload encrypted in the payload of an outer message, whose code is POST (FETCH
when observing) for a request and 2.04 (2.05 for a notification) for an answer,
with the OSCORE option: the partial IV (the sender's sequence number), the kid
(sender ID) and the kid context.  The nonce is the partial IV and the ID of the
peer that made it, XORed with the common IV; the additional data binds the
request's kid and partial IV to the answer (§5.4).

A recipient refuses a sequence number it has accepted already, or one too old for
its replay window (32 numbers below the highest accepted, §7.4), and accepts a
number only once the message's tag has been verified: a forged message moves
nothing.  :class:`OscoreError` carries the code of the answer due (§8.2, §8.4).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._extras import missing
from ._cbor import encode_cbor
from ._message import FETCH, OBSERVE, OSCORE, POST, Message, MessageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

__all__ = ["Context", "OscoreError", "ReplayWindow", "decode_option", "encode_option"]

ALGORITHM = 10  # AES-CCM-16-64-128
KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH = 16, 13, 8
MAX_SEQUENCE = (1 << 40) - 1  # a partial IV has at most 5 bytes
MAX_ID = NONCE_LENGTH - 6  # the longest sender ID
WINDOW = 32
CHANGED, CONTENT = 68, 69
BAD_REQUEST, UNAUTHORIZED, BAD_OPTION = 128, 129, 130
_EMPTY = encode_cbor(b"")
_EXTERNAL_HEAD = b"\x85" + encode_cbor(1) + encode_cbor((ALGORITHM,))  # an array of 5, then its first two
_ENC_HEAD = b"\x83" + encode_cbor("Encrypt0") + _EMPTY
# Options outside the encryption (class U, RFC 8613 §4.1): Uri-Host, Uri-Port, the
# OSCORE option, Proxy-Uri, Proxy-Scheme, No-Response.  Observe is both inside and out;
# the Block and Size options of the message layer are added outside, after protection.
_OUTER_ONLY = frozenset({3, 7, OSCORE, 35, 39, 258})
_MESSAGE_LAYER = frozenset({23, 27, 28, 60})  # Block2, Block1, Size2, Size1


class PeerRequest(Message):
    """A request opened from OSCORE, with the name its peer has in the keys file
    (``sender``): the account that pays for what it asks, unless it names another."""

    __slots__ = ("sender",)

    def __init__(self, inner: Message, sender: str) -> None:
        super().__init__(inner.mtype, inner.code, inner.mid, inner.token, inner.options, inner.payload)
        self.sender = sender


class OscoreError(ValueError):
    """A protected message that cannot be accepted; ``code`` is the answer due (4.00
    for a malformed one, 4.01 for an unknown context, a replay or a failed
    verification, 4.02 for a malformed OSCORE option)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def hkdf(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``secret``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), length, salt, info).derive(secret)


def _derive(secret: bytes, salt: bytes, id_: bytes, context: bytes | None, kind: str, length: int) -> bytes:
    info = encode_cbor((id_, context, ALGORITHM, kind, length))  # §3.2.1
    return hkdf(secret, salt, info, length)


def _short_bytes(data: bytes) -> bytes:
    """The CBOR of a byte string shorter than 24 bytes (its length in the head's
    low bits, RFC 8949 §3): IDs, partial IVs and the external AAD always are."""
    return bytes((0x40 | len(data),)) + data


def encode_option(partial_iv: bytes, kid: bytes | None, kid_context: bytes | None = None) -> bytes:
    """The OSCORE option's value (§6.1): flags, partial IV, kid context, kid."""
    flags = len(partial_iv) | (8 if kid is not None else 0) | (16 if kid_context is not None else 0)
    if flags == 0:
        return b""
    out = bytes((flags,)) + partial_iv
    if kid_context is not None:
        out += bytes((len(kid_context),)) + kid_context
    return out + (kid or b"")


def decode_option(value: bytes) -> tuple[bytes, bytes | None, bytes | None]:
    """``(partial_iv, kid, kid_context)`` of an OSCORE option's value."""
    if not value:
        return b"", None, None
    flags = value[0]
    n = flags & 7
    if flags & 0xE0 or n > 5:
        raise OscoreError(BAD_OPTION, "a malformed OSCORE option")
    pos = 1 + n
    if pos > len(value):
        raise OscoreError(BAD_OPTION, "a truncated OSCORE option")
    partial_iv = value[1:pos]
    kid_context = None
    if flags & 16:
        if pos >= len(value) or pos + 1 + value[pos] > len(value):
            raise OscoreError(BAD_OPTION, "a truncated OSCORE option")
        kid_context = value[pos + 1 : pos + 1 + value[pos]]
        pos += 1 + value[pos]
    kid = value[pos:] if flags & 8 else None
    if kid is None and pos != len(value):
        raise OscoreError(BAD_OPTION, "bytes after the OSCORE option's fields")
    return partial_iv, kid, kid_context


def _partial_iv(sequence: int) -> bytes:
    return sequence.to_bytes(max(1, (sequence.bit_length() + 7) // 8), "big")


class ReplayWindow:
    """The sequence numbers a recipient accepted (§7.4): the highest and a bitmap of
    the ``WINDOW`` below it; ``floor`` refuses every number up to it (numbers that
    may have been accepted before a restart)."""

    __slots__ = ("bits", "floor", "highest")

    def __init__(self, floor: int = -1) -> None:
        self.floor = floor
        self.highest = floor
        self.bits = 0  # bit i: highest - i was accepted

    def check(self, sequence: int) -> None:
        """Raise :class:`OscoreError` (4.01) if ``sequence`` was accepted or is too old."""
        if sequence <= self.floor or sequence <= self.highest - WINDOW:
            raise OscoreError(UNAUTHORIZED, "Replay detected")
        if sequence <= self.highest and self.bits >> (self.highest - sequence) & 1:
            raise OscoreError(UNAUTHORIZED, "Replay detected")

    def accept(self, sequence: int) -> None:
        """Mark ``sequence`` accepted (after :meth:`check` and the tag's verification)."""
        if sequence > self.highest:
            shift = sequence - self.highest
            self.bits = ((self.bits << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            self.highest = sequence
        else:
            self.bits |= 1 << (self.highest - sequence)


class Context:
    """A security context shared with one peer (RFC 8613 §3).

    ``reserve(n)`` is called before the sender's sequence number reaches ``n``
    reserved ones (to persist that they may have been used); ``window.floor`` and
    :attr:`sequence` are where a restarted context resumes.

    >>> ctx = Context(bytes(range(1, 17)), b"", sender_id=b"", recipient_id=b"\\x01")
    >>> len(ctx.sender_key), len(ctx.common_iv)
    (16, 13)
    """

    def __init__(
        self,
        master_secret: bytes,
        master_salt: bytes = b"",
        *,
        sender_id: bytes,
        recipient_id: bytes,
        id_context: bytes | None = None,
        sequence: int = 0,
        floor: int = -1,
        reserve: Callable[[int], int] | None = None,
    ) -> None:
        if len(sender_id) > MAX_ID or len(recipient_id) > MAX_ID:
            raise ValueError(f"sender and recipient IDs are at most {MAX_ID} bytes")
        if sender_id == recipient_id:
            raise ValueError("the sender and recipient IDs of a context differ")
        try:  # the oscore extra: a node without peers does without it
            from cryptography.hazmat.primitives.ciphers.aead import AESCCM
        except ModuleNotFoundError as exc:
            raise missing("oscore", exc) from None
        self.sender_id = sender_id
        self.recipient_id = recipient_id
        self.id_context = id_context
        self.sender_key = _derive(master_secret, master_salt, sender_id, id_context, "Key", KEY_LENGTH)
        self.recipient_key = _derive(master_secret, master_salt, recipient_id, id_context, "Key", KEY_LENGTH)
        self.common_iv = _derive(master_secret, master_salt, b"", id_context, "IV", NONCE_LENGTH)
        self._iv = int.from_bytes(self.common_iv, "big")
        self._sender = AESCCM(self.sender_key, TAG_LENGTH)
        self._recipient = AESCCM(self.recipient_key, TAG_LENGTH)
        self.sequence = sequence
        """The sender's next sequence number."""
        self.window = ReplayWindow(floor)
        self._lock = threading.Lock()  # the node's loop and the threads of its handles share it
        self._reserve = reserve
        self._reserved = sequence if reserve is not None else MAX_SEQUENCE + 1

    def nonce(self, id_piv: bytes, partial_iv: bytes) -> bytes:
        """The AEAD nonce of a partial IV made by the peer whose ID is ``id_piv`` (§5.2)."""
        raw = bytes((len(id_piv),)) + id_piv.rjust(MAX_ID, b"\0") + partial_iv.rjust(5, b"\0")
        return (int.from_bytes(raw, "big") ^ self._iv).to_bytes(NONCE_LENGTH, "big")

    @staticmethod
    def aad(request_kid: bytes, request_piv: bytes) -> bytes:
        """The additional authenticated data (§5.4): the COSE Enc_structure
        ``["Encrypt0", h'', external_aad]`` with ``external_aad`` the encoded
        ``[1, [alg], request_kid, request_piv, h'']`` (the parts that never change
        encoded once)."""
        external = _EXTERNAL_HEAD + _short_bytes(request_kid) + _short_bytes(request_piv) + _EMPTY
        return _ENC_HEAD + _short_bytes(external)

    def next_sequence(self) -> bytes:
        """The partial IV of the sender's next message (each number is used once)."""
        with self._lock:
            sequence = self.sequence
            if sequence > MAX_SEQUENCE:
                raise OscoreError(UNAUTHORIZED, "the sequence numbers are used up: new keys are needed")
            if sequence >= self._reserved:
                assert self._reserve is not None
                self._reserved = self._reserve(sequence)
            self.sequence = sequence + 1
        return _partial_iv(sequence)

    def write_down(self, write: Callable[[int], object]) -> None:
        """``write(n)`` the sender's next sequence number exactly (a clean stop); a
        message sealed later reserves numbers again before it uses one."""
        with self._lock:
            write(self.sequence)
            if self._reserve is not None:
                self._reserved = self.sequence

    def _received(self, sequence: int, nonce: bytes, outer: Message, aad: bytes) -> Message:
        """Open a message of the peer's ``sequence``, once: replays and forgeries raise."""
        with self._lock:
            self.window.check(sequence)
            inner = self._open(outer, nonce, aad, self._recipient)
            self.window.accept(sequence)
        return inner

    # -- requests ------------------------------------------------------------------------

    def protect_request(self, message: Message) -> tuple[Message, bytes]:
        """The protected form of a request (same type, mid and token) and its partial IV,
        which its answer is bound to."""
        partial_iv = self.next_sequence()
        observe = message.get(OBSERVE)
        code = FETCH if observe is not None else POST
        aad = self.aad(self.sender_id, partial_iv)
        outer = self._seal(message, code, self._sender_nonce(partial_iv), aad)
        outer.add(OSCORE, encode_option(partial_iv, self.sender_id, self.id_context))
        return outer, partial_iv

    def unprotect_request(self, outer: Message, partial_iv: bytes) -> Message:
        """The request inside ``outer`` (whose OSCORE option named this context and
        gave ``partial_iv``); :class:`OscoreError` if it is replayed or forged."""
        if not partial_iv:
            raise OscoreError(BAD_OPTION, "a request without a partial IV")
        sequence = int.from_bytes(partial_iv, "big")
        nonce = self.nonce(self.recipient_id, partial_iv)
        return self._received(sequence, nonce, outer, self.aad(self.recipient_id, partial_iv))

    # -- answers -------------------------------------------------------------------------

    def protect_response(self, answer: Message, request_piv: bytes, fresh: bool = False) -> Message:
        """The protected form of an answer to the request of partial IV ``request_piv``
        (from the peer): with the request's nonce, or (``fresh``, as notifications
        need) with a partial IV of the sender's own."""
        aad = self.aad(self.recipient_id, request_piv)
        code = CONTENT if answer.get(OBSERVE) is not None else CHANGED
        if fresh:
            partial_iv = self.next_sequence()
            outer = self._seal(answer, code, self._sender_nonce(partial_iv), aad)
            outer.add(OSCORE, encode_option(partial_iv, None))
        else:
            outer = self._seal(answer, code, self.nonce(self.recipient_id, request_piv), aad)
            outer.add(OSCORE, b"")
        return outer

    def unprotect_response(self, outer: Message, request_piv: bytes) -> Message:
        """The answer inside ``outer`` to this sender's request of ``request_piv``."""
        value = outer.get(OSCORE)
        if value is None:
            raise OscoreError(UNAUTHORIZED, "an unprotected answer to a protected request")
        partial_iv, _, _ = decode_option(value)
        aad = self.aad(self.sender_id, request_piv)
        if not partial_iv:
            return self._open(outer, self.nonce(self.sender_id, request_piv), aad, self._recipient)
        sequence = int.from_bytes(partial_iv, "big")
        return self._received(sequence, self.nonce(self.recipient_id, partial_iv), outer, aad)

    # -- the AEAD ------------------------------------------------------------------------

    def _sender_nonce(self, partial_iv: bytes) -> bytes:
        return self.nonce(self.sender_id, partial_iv)

    def _seal(self, message: Message, code: int, nonce: bytes, aad: bytes) -> Message:
        outside = _OUTER_ONLY | _MESSAGE_LAYER
        inner = Message(code=message.code, options=[o for o in message.options if o[0] not in outside])
        plaintext = bytes((message.code,)) + inner.encode()[4:]  # the options, as CoAP codes them
        if message.payload:
            plaintext += b"\xff" + message.payload
        outer = Message(message.mtype, code, message.mid, message.token)
        outer.options = [o for o in message.options if o[0] in outside or o[0] == OBSERVE]
        outer.payload = self._sender.encrypt(nonce, plaintext, aad)
        return outer

    @staticmethod
    def _open(outer: Message, nonce: bytes, aad: bytes, aead: AESCCM) -> Message:
        from cryptography.exceptions import InvalidTag

        if len(outer.payload) <= TAG_LENGTH:
            raise OscoreError(BAD_REQUEST, "a protected message too short for its tag")
        try:
            plaintext = aead.decrypt(nonce, outer.payload, aad)
        except InvalidTag:
            raise OscoreError(BAD_REQUEST, "Decryption failed") from None
        try:
            inner = Message.decode(b"\x40\x01\x00\x00" + plaintext[1:])
        except MessageError as exc:
            raise OscoreError(BAD_REQUEST, f"the protected message is malformed: {exc}") from None
        inner.mtype, inner.code, inner.mid, inner.token = outer.mtype, plaintext[0], outer.mid, outer.token
        for number, value in outer.options:
            if (number in _OUTER_ONLY and number != OSCORE) or number in _MESSAGE_LAYER:
                inner.add(number, value)
        return inner
