"""Federation: nodes that serve their spaces' records over CoAP and reach each other's.

CoAP (RFC 7252, with Observe and block-wise transfer) is the project's own message
layer on asyncio's datagram transport: it needs no extra package.  See docs/federation.md.
"""

from ._cbor import decode_cbor, encode_cbor
from ._node import Node
from ._remote import RemoteRecord, RemoteUpcall

__all__ = ["Node", "RemoteRecord", "RemoteUpcall", "decode_cbor", "encode_cbor"]
