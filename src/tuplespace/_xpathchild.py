"""The process that evaluates XPath expressions for :mod:`tuplespace._xpath`.

Run as a script (``python -I _xpathchild.py``), not imported: it needs lxml and
nothing of the package.  It reads requests from stdin and answers each on stdout
(:data:`ANSWER`: :data:`MATCH` or :data:`NO_MATCH`, then the CPU time this process
has used so far, in nanoseconds), after a first answer :data:`READY`.
A request is a header (:data:`HEADER`: the lengths of the expression and of the
document, the document's id, how many ids to forget), the expression, the
document (absent when this process holds the id already) and the ids of the
documents to forget.  The parent decides what is held, so both sides agree on it
without asking.
"""

from __future__ import annotations

import math
import struct
import sys
import time
from typing import Any, BinaryIO

HEADER = struct.Struct("<IIQI")
FORGET = struct.Struct("<Q")
ANSWER = struct.Struct("<cQ")
READY, MATCH, NO_MATCH = b"R", b"1", b"0"
COMPILED_KEPT = 256  # compiled expressions kept, each at most 4096 characters long


def _read(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n) if n else b""
    if len(data) != n:
        raise EOFError
    return data


def _parse(etree: Any, parser: Any, data: bytes) -> Any:
    try:
        doc = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return None
    # The parser leaves entity references unexpanded, but XPath string values and
    # attribute values still expand internal entities: a document declaring any
    # entity does not match (as defusedxml forbids entity declarations).
    dtd = doc.getroottree().docinfo.internalDTD
    if dtd is not None and next(iter(dtd.iterentities()), None) is not None:
        return None
    return doc


def _selects(result: Any) -> bool:
    if isinstance(result, float):  # XPath's boolean(): NaN is false, as are zeros
        return not math.isnan(result) and result != 0
    return bool(result)


def main() -> None:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    docs: dict[int, Any] = {}
    compiled: dict[str, Any] = {}
    stdout.write(ANSWER.pack(READY, time.process_time_ns()))
    stdout.flush()
    while True:
        try:
            expr_len, doc_len, doc_id, forget = HEADER.unpack(_read(stdin, HEADER.size))
            expression = _read(stdin, expr_len).decode()
            if doc_len:
                docs[doc_id] = _parse(etree, parser, _read(stdin, doc_len))
            for (old,) in FORGET.iter_unpack(_read(stdin, forget * FORGET.size)):
                docs.pop(old, None)
        except EOFError:
            return
        xpath = compiled.get(expression)
        if xpath is None:
            if len(compiled) >= COMPILED_KEPT:
                compiled.clear()
            xpath = compiled[expression] = etree.XPath(expression)
        doc = docs.get(doc_id)
        try:
            selects = doc is not None and _selects(xpath(doc))
        except etree.XPathEvalError:
            selects = False
        stdout.write(ANSWER.pack(MATCH if selects else NO_MATCH, time.process_time_ns()))
        stdout.flush()


if __name__ == "__main__":
    main()
