"""The XML form of values, tuples and records: ``format(x, form="xml")`` writes it,
``parse(text, form="xml")`` reads it back, exactly (``docs/records.md``, "The XML form").

One element per value, named after its wire type; its text is the value's text as in
the text form, without quotes::

    <tuple><str>job</str><int>42</int><float>1.5</float><null/><bytes>AP8=</bytes></tuple>
    <map><item><str>unit</str><str>C</str></item></map>
    <record address="tuplespace://local/spaces/default/kitchen" version="3">
      <field tag="temp"><float>21.5</float></field></record>

A str holding characters that XML 1.0 cannot carry (control characters other than
tab, newline and carriage return) is written as ``<str encoding="base64">`` with the
base64 of its UTF-8.  Reading refuses a DOCTYPE (so no entity is ever declared or
resolved), loads nothing from the network and refuses documents past the limits' size.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from ._codec import _bytes_from, _credit_from, _credit_text, _time_from, _time_text
from ._errors import InvalidValue, WireError
from ._extras import missing
from ._recordhandles import RecordData
from ._values import URI, Credit, Limits, Map, Value

__all__ = ["read_xml", "write_xml"]

try:
    from lxml import etree
except ModuleNotFoundError as exc:
    raise missing("xpath", exc) from exc

# What XML 1.0 cannot hold in text (besides surrogates, which no str of a value holds).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SCALARS = ("bool", "int", "float", "bytes", "time", "uri", "credit")


def write_xml(value: Value | RecordData) -> str:
    """The XML form of a checked value, or of a :class:`RecordData`."""
    if isinstance(value, RecordData):
        root = etree.Element("record", address=str(value.address), version=str(value.version))
        for tag, v in value.fields.items():
            etree.SubElement(root, "field", tag=tag).append(_element(v))
    else:
        root = _element(value)
    return str(etree.tostring(root, encoding="unicode"))


def _element(v: Value) -> Any:
    if v is None:
        return etree.Element("null")
    if isinstance(v, tuple):
        e = etree.Element("tuple")
        e.extend(_element(x) for x in v)
        return e
    if isinstance(v, Map):
        e = etree.Element("map")
        for key, x in v.items():
            item = etree.SubElement(e, "item")
            item.extend((_element(key), _element(x)))
        return e
    if isinstance(v, str):
        e = etree.Element("str")
        if _NOT_XML.search(v):
            e.set("encoding", "base64")
            e.text = base64.b64encode(v.encode()).decode("ascii")
        else:
            e.text = v
        return e
    e = etree.Element(_kind(v))
    e.text = _scalar_text(v)
    return e


def _kind(v: Value) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, bytes):
        return "bytes"
    if isinstance(v, URI):
        return "uri"
    if isinstance(v, Credit):
        return "credit"
    return "time"


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return repr(float(v))
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    if isinstance(v, URI):
        return str(v)
    if isinstance(v, Credit):
        return _credit_text(v)
    return _time_text(v)


def read_xml(text: str, limits: Limits) -> Any:
    """The value or :class:`RecordData` that ``text`` in the XML form writes (unchecked:
    the caller checks the value against ``limits``, whose ``max_bytes`` bounds the text)."""
    if len(text) > limits.max_bytes:
        raise WireError(f"the text is {len(text)} characters, more than {limits.max_bytes}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(text.encode(), parser)
    except etree.XMLSyntaxError as exc:
        raise WireError(f"not well-formed XML: {exc}") from None
    tree: Any = root.getroottree()  # lxml-stubs do not know DocInfo.doctype
    if tree.docinfo.doctype:
        raise WireError("the XML form takes no DOCTYPE (nor the entities it would declare)")
    if root.tag == "record":
        fields: dict[str, Value] = {}
        for field in _children(root):
            if field.tag != "field" or field.get("tag") is None:
                raise _error(field, "a record holds <field tag=...> elements")
            fields[field.get("tag")] = _value(_only_child(field), 2, limits)
        version = root.get("version", "1")
        if not (version.isascii() and version.isdigit()) or len(version) > 20:
            raise _error(root, f"version must be a non-negative int, not {version[:40]!r}")
        return RecordData(URI(root.get("address", "")), fields, int(version))
    return _value(root, 0, limits)


def _value(e: Any, depth: int, limits: Limits) -> Any:
    if depth > limits.max_depth:
        raise WireError(f"the XML nests values deeper than {limits.max_depth}")
    tag = e.tag
    if tag == "tuple":
        return tuple(_value(x, depth + 1, limits) for x in _children(e))
    if tag == "map":
        out: dict[str, Value] = {}
        for item in _children(e):
            pair = list(_children(item)) if item.tag == "item" else []
            if len(pair) != 2 or pair[0].tag != "str":
                raise _error(item, "a map holds <item> elements of a <str> key and a value")
            out[_value(pair[0], depth + 1, limits)] = _value(pair[1], depth + 1, limits)
        return Map(out)
    if tag not in _SCALARS and tag not in ("null", "str"):
        raise _error(e, f"unknown element <{tag}>; values are null, str, tuple, map, " + ", ".join(_SCALARS))
    if len(e):
        raise _error(e, f"<{tag}> holds no elements")
    text = e.text or ""
    if tag == "null":
        if text:
            raise _error(e, "<null/> holds no text")
        return None
    if tag == "str":
        if e.get("encoding") == "base64":
            return _bytes_from(text).decode()
        return text
    try:
        return _scalar(tag, text)
    except (WireError, InvalidValue, ValueError) as exc:
        raise _error(e, f"not a valid {tag}: {exc}") from None


def _scalar(tag: str, text: str) -> Value:
    if tag == "bool":
        if text not in ("true", "false"):
            raise WireError(f"{text[:40]!r} is neither true nor false")
        return text == "true"
    if tag == "int":
        if not re.fullmatch(r"-?[0-9]+", text):
            raise WireError(f"{text[:40]!r} is not decimal digits")
        return int(text)
    if tag == "float":
        return float(text) + 0.0
    if tag == "bytes":
        return _bytes_from(text)
    if tag == "time":
        return _time_from(text)
    if tag == "uri":
        return URI(text)
    return _credit_from(text)


def _children(e: Any) -> Any:
    if (e.text or "").strip():
        raise _error(e, f"<{e.tag}> holds elements, not text")
    for child in e:
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        if (child.tail or "").strip():
            raise _error(e, f"<{e.tag}> holds elements, not text")
        yield child


def _only_child(e: Any) -> Any:
    children = list(_children(e))
    if len(children) != 1:
        raise _error(e, f"<{e.tag}> holds exactly one value")
    return children[0]


def _error(e: Any, message: str) -> WireError:
    return WireError(f"{message} (line {e.sourceline} of the XML)")
