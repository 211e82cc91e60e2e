"""Federation: nodes that serve their spaces' records over CoAP and reach each other's.

A :class:`Node` needs the ``federation`` extra (``pip install 'pytuplespace[federation]'``,
for aiocoap); the CBOR codec needs nothing.  See docs/federation.md.
"""

from ._cbor import decode_cbor, encode_cbor
from ._node import Node
from ._remote import RemoteRecord, RemoteUpcall

__all__ = ["Node", "RemoteRecord", "RemoteUpcall", "decode_cbor", "encode_cbor"]
