"""The CBOR encoding of the wire types (tuplespace.encode_cbor / decode_cbor): its test
vectors (docs/cbor-vectors.json), an independent CBOR implementation (cbor2) reading
and writing the same bytes, round trips, and the limits on decoding."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tuplespace as ts
from test_codec import TUPLES, VALUES
from tuplespace._codec import template_from_wire
from tuplespace._federation._cbor import template_wire
from tuplespace._values import value_key
from tuplespace.server._service_records import record_template_from_wire

VECTORS = json.loads((Path(__file__).parent.parent / "docs" / "cbor-vectors.json").read_text())


def by_name(section: str) -> Any:
    return pytest.mark.parametrize("vector", VECTORS[section], ids=[v["name"] for v in VECTORS[section]])


def test_vectors_file() -> None:
    assert VECTORS["version"] == 1
    assert VECTORS["default_limits"] == {"max_fields": 256, "max_depth": 32, "max_bytes": 1 << 20}
    sections = ("values", "noncanonical", "invalid", "templates")
    names = [v["name"] for section in sections for v in VECTORS[section]]
    assert len(names) == len(set(names))


def plain(value: Any) -> Any:
    """``value`` as cbor2 decodes it: tuples are lists, times naive of tag 0 text..."""
    if isinstance(value, tuple):
        return [plain(x) for x in value]
    if isinstance(value, ts.Map):
        return {k: plain(x) for k, x in value.items()}
    if isinstance(value, ts.URI):
        return cbor2.CBORTag(32, str(value))
    if isinstance(value, ts.Credit):
        return Decimal(value)
    return value


@by_name("values")
def test_value_vector(vector: dict[str, Any]) -> None:
    value = ts.decode(vector["wire"])
    data = bytes.fromhex(vector["cbor"])
    assert ts.encode_cbor(value) == data
    back = ts.decode_cbor(data)
    assert value_key(back) == value_key(value)
    assert ts.encode(back) == vector["wire"].encode()
    # cbor2, an independent implementation, reads the same value ...
    theirs = cbor2.loads(data)
    assert theirs == plain(value)
    assert type(theirs) is type(plain(value))
    # ... and writes the same deterministic bytes (its tag 0 text keeps six digits of fraction).
    if not isinstance(value, dt.datetime):
        assert cbor2.dumps(theirs, canonical=True) == data


@by_name("noncanonical")
def test_noncanonical_vector(vector: dict[str, Any]) -> None:
    value = ts.decode_cbor(bytes.fromhex(vector["cbor"]))
    assert ts.encode(value) == vector["wire"].encode()
    assert ts.encode_cbor(value) != bytes.fromhex(vector["cbor"])


@by_name("invalid")
def test_invalid_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(getattr(ts, vector["error"])) as caught:
        ts.decode_cbor(bytes.fromhex(vector["cbor"]))
    assert type(caught.value).__name__ == vector["error"]
    assert caught.value.path == vector["path"]


@by_name("templates")
def test_template_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["cbor"])
    wire = json.loads(vector["wire"])
    assert template_wire(ts.decode_cbor(data)) == wire
    # cbor2, an independent implementation, reads the payload and writes the same bytes.
    assert cbor2.dumps(cbor2.loads(data), canonical=True) == data
    # What it carries is a template: alone, in a record template, or first of a pair.
    if isinstance(wire, dict):
        record_template_from_wire(wire, ts.Limits())
    elif vector["name"].startswith("write_if_absent"):
        template_from_wire(wire[0])
        ts.decode(json.dumps(wire[1]))
    else:
        template_from_wire(wire)


def test_a_cbor_template_is_the_json_one_with_cbor_values() -> None:
    template = ts.decode_cbor(bytes.fromhex(VECTORS["templates"][0]["cbor"]))
    assert template_from_wire(template_wire(template)).matches(("job", 3))
    assert not template_from_wire(template_wire(template)).matches(("job", 3.0))
    with pytest.raises(ts.WireError):  # a $-form that is not one, as in JSON
        template_from_wire(template_wire((ts.Map({"$formal": "integer"}),)))


def test_typed_equality_survives() -> None:
    values = (1, 1.0, True, ts.Credit(1), "x", ts.URI("x"), b"x")
    encodings = {ts.encode_cbor(v) for v in values}
    assert len(encodings) == len(values)
    assert [value_key(ts.decode_cbor(ts.encode_cbor(v))) for v in values] == [value_key(v) for v in values]


@given(TUPLES)
def test_round_trip(t: tuple[Any, ...]) -> None:
    data = ts.encode_cbor(t)
    back = ts.decode_cbor(data)
    assert value_key(back) == value_key(ts.decode(ts.encode(t)))
    assert ts.encode_cbor(back) == data
    assert ts.encode(back) == ts.encode(t)


@given(VALUES)
def test_cbor2_reads_every_value(v: Any) -> None:
    data = ts.encode_cbor(v)
    theirs = cbor2.loads(data)
    if not _holds_time(v):
        assert cbor2.dumps(theirs, canonical=True) == data


def _holds_time(v: Any) -> bool:
    if isinstance(v, dt.datetime):
        return True
    if isinstance(v, tuple):
        return any(map(_holds_time, v))
    if isinstance(v, ts.Map):
        return any(map(_holds_time, v.values()))
    return False


def test_encoding_takes_what_a_space_takes() -> None:
    assert ts.encode_cbor([1, {"a": [2]}]) == ts.encode_cbor((1, ts.Map({"a": (2,)})))
    paris = dt.timezone(dt.timedelta(hours=2))
    assert ts.encode_cbor(dt.datetime(2024, 5, 1, 14, tzinfo=paris)) == ts.encode_cbor(
        dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    )
    with pytest.raises(ts.UnsupportedType):
        ts.encode_cbor({1: 2})
    with pytest.raises(ts.InvalidValue) as caught:
        ts.encode_cbor(("a", float("nan")))
    assert caught.value.path == "[1]"


def test_decoding_checks_the_limits() -> None:
    small = ts.Limits(max_fields=2, max_depth=2, max_bytes=16)
    with pytest.raises(ts.ValueTooLarge) as caught:
        ts.decode_cbor(ts.encode_cbor("x" * 20), small)
    assert caught.value.limit == "max_bytes"
    with pytest.raises(ts.ValueTooLarge) as caught:
        ts.decode_cbor(ts.encode_cbor((1, 2, 3)), small)
    assert caught.value.limit == "max_fields"
    with pytest.raises(ts.ValueTooLarge) as caught:
        ts.decode_cbor(ts.encode_cbor((((),),)), small)
    assert caught.value.limit == "max_depth"
    assert ts.decode_cbor(ts.encode_cbor((1, 2)), small) == (1, 2)


def test_a_length_is_checked_before_anything_is_allocated() -> None:
    # An array announcing 2**32 items in five bytes is refused by its count ...
    with pytest.raises(ts.ValueTooLarge):
        ts.decode_cbor(bytes.fromhex("9b0000000100000000"))
    # ... and a byte string announcing 2**64-1 bytes by the bytes that are there.
    with pytest.raises(ts.WireError, match="truncated"):
        ts.decode_cbor(bytes.fromhex("5bffffffffffffffff"))


def test_decode_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        ts.decode_cbor("f6")  # type: ignore[arg-type]


@given(st.binary(max_size=64))
def test_any_bytes_decode_to_a_value_or_a_clear_error(data: bytes) -> None:
    try:
        value = ts.decode_cbor(data)
    except (ts.WireError, ts.InvalidValue):  # anything else fails the test
        return
    assert value_key(ts.decode_cbor(ts.encode_cbor(value))) == value_key(value)


@given(TUPLES, st.data())
def test_a_truncated_value_is_refused(t: tuple[Any, ...], data: st.DataObject) -> None:
    encoded = ts.encode_cbor(t)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(ts.WireError):
        ts.decode_cbor(encoded[:cut])
