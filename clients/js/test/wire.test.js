// The wire codec: the shared vectors of docs/wire-vectors.json, and how JavaScript values
// map onto the wire types.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  ANY,
  Credit,
  Float,
  InvalidTemplate,
  InvalidValue,
  Time,
  UnsupportedType,
  Uri,
  ValueTooLarge,
  WireError,
  credit,
  decode,
  decodeTemplate,
  encode,
  encodeTemplate,
  float,
  formal,
  oneOf,
  prefix,
  range,
  regex,
  time,
  typeName,
  uri,
  xpath,
} from "tuplespace";

const VECTORS = JSON.parse(readFileSync(new URL("../../../docs/wire-vectors.json", import.meta.url), "utf8"));
const utf8 = (text) => new TextEncoder().encode(text);

/** The limits of a vector, as decode takes them. */
function limits(vector) {
  const given = vector.limits ?? {};
  const out = {};
  if (given.max_fields !== undefined) out.maxFields = given.max_fields;
  if (given.max_depth !== undefined) out.maxDepth = given.max_depth;
  if (given.max_bytes !== undefined) out.maxBytes = given.max_bytes;
  return { limits: out };
}

function assertFails(decoder, vector, input) {
  assert.throws(
    () => decoder(input, limits(vector)),
    (error) => {
      assert.equal(error.name, vector.error, `${vector.name}: ${error.message}`);
      if (vector.path !== null) {
        assert.equal(error.path, vector.path, vector.name);
        assert.ok(error.message.startsWith(vector.path ? vector.path + ": " : ""), error.message);
      }
      return true;
    },
  );
}

describe("the shared vectors", () => {
  test("the file", () => {
    assert.equal(VECTORS.version, 1);
    assert.deepEqual(VECTORS.default_limits, { max_fields: 256, max_depth: 32, max_bytes: 1048576 });
  });

  test("values decode to their type and encode to the same bytes", () => {
    for (const vector of VECTORS.values) {
      for (const input of [vector.wire, utf8(vector.wire)]) {
        const value = decode(input);
        assert.equal(typeName(value), vector.type, vector.name);
        assert.equal(encode(value), vector.wire, vector.name);
      }
    }
  });

  test("non-canonical input encodes canonically", () => {
    for (const vector of VECTORS.noncanonical) {
      assert.equal(encode(decode(vector.input)), vector.canonical, vector.name);
      assert.equal(encode(decode(utf8(vector.input))), vector.canonical, vector.name);
      assert.equal(encode(decode(vector.canonical)), vector.canonical, vector.name);
    }
  });

  test("invalid input fails with its error at its path", () => {
    for (const vector of VECTORS.invalid) {
      assertFails(decode, vector, vector.input);
      assertFails(decode, vector, utf8(vector.input));
    }
  });

  test("templates decode and encode to the same bytes", () => {
    for (const vector of VECTORS.templates) {
      assert.equal(encodeTemplate(decodeTemplate(vector.template)), vector.template, vector.name);
    }
  });

  test("invalid templates fail with their error at their path, but for the syntax the server checks", () => {
    const forServer = [];
    for (const vector of VECTORS.invalid_templates) {
      let template;
      try {
        template = decodeTemplate(vector.input);
      } catch {
        assertFails(decodeTemplate, vector, vector.input);
        continue;
      }
      forServer.push(vector.name);
      assert.equal(encodeTemplate(template), vector.input);
    }
    // templates.test.js sends these to a server, which rejects them.
    assert.deepEqual(forServer, ["regex invalid", "xpath invalid"]);
  });
});

describe("JavaScript values", () => {
  test("numbers: integers are ints, others floats; float() makes a float of an integer", () => {
    assert.equal(
      encode([1, -0, 1.5, float(1), float(-0), 2 ** 53 - 1]),
      '[1,0,{"$float":"1.5"},{"$float":"1"},{"$float":"0"},9007199254740991]',
    );
    assert.equal(
      encode([0.1 + 0.2, float(1e21), 5e-7]),
      '[{"$float":"0.30000000000000004"},{"$float":"1e+21"},{"$float":"5e-7"}]',
    );
    assert.equal(
      encode([2n ** 53n, 5n, -(2n ** 64n)]),
      '[{"$int":"9007199254740992"},5,{"$int":"-18446744073709551616"}]',
    );
    assert.deepEqual(decode('[{"$int":"9007199254740993"},{"$int":"12"}]'), [9007199254740993n, 12]);
    const [f] = decode('[{"$float":"2"}]');
    assert.ok(f instanceof Float);
    assert.equal(f * 2, 4);
    assert.equal(encode(decode('[{"$float":"2"},2]')), '[{"$float":"2"},2]');
  });

  test("numbers that cannot travel exactly are refused, naming the field", () => {
    for (const [value, path] of [
      [["a", NaN], "[1]"],
      [["a", [Infinity]], "[1][0]"],
      [[{ n: 2 ** 53 }], '[0]["n"]'],
      [[float(2).value, -Infinity], "[1]"],
    ]) {
      assert.throws(
        () => encode(value),
        (e) => e instanceof InvalidValue && e.path === path && e.code === "invalid_value",
      );
    }
    assert.throws(
      () => encode([2n ** 1024n]),
      (e) => e instanceof ValueTooLarge && e.limit === "int_bits" && e.maximum === 1024,
    );
    assert.throws(() => float(NaN), InvalidValue);
    assert.throws(() => float("1"), UnsupportedType);
  });

  test("strings are escaped as JSON.stringify does; lone surrogates are refused", () => {
    assert.equal(encode(['"\\/\u0000\u001f\u007f\u2028😀']), '["\\"\\\\/\\u0000\\u001f\u007f\u2028😀"]');
    assert.throws(
      () => encode(["ok", "\ud800"]),
      (e) => e instanceof InvalidValue && e.path === "[1]",
    );
    assert.throws(() => encode([{ "\udc00": 1 }]), InvalidValue);
  });

  test("bytes, times, URIs and credit", () => {
    assert.equal(encode([new Uint8Array([0, 255])]), '[{"$bytes":"AP8="}]');
    const [bytes] = decode('[{"$bytes":"AP8="}]');
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual([...bytes], [0, 255]);

    const t = time("2024-05-01T14:30:00.25+02:30");
    assert.ok(t instanceof Time);
    assert.equal(String(t), "2024-05-01T12:00:00.25Z");
    assert.equal(
      encode([t, new Date(Date.UTC(2024, 4, 1, 12))]),
      '[{"$time":"2024-05-01T12:00:00.25Z"},{"$time":"2024-05-01T12:00:00Z"}]',
    );
    assert.equal(String(time(1714564800.000001)), "2024-05-01T12:00:00.000001Z");
    assert.equal(String(time(-62135596800)), "0001-01-01T00:00:00Z");
    assert.equal(time("2024-05-01T12:00:00.5Z").toDate().toISOString(), "2024-05-01T12:00:00.500Z");
    assert.ok(time("2024-05-01T12:00:00Z") < time("2024-05-01T12:00:00.001Z"));
    assert.throws(() => time("2023-02-29T00:00:00Z"), InvalidValue);
    assert.throws(() => time(new Date(NaN)), InvalidValue);
    assert.throws(() => time(-62135596801), InvalidValue);

    assert.equal(encode([uri("a/b")]), '[{"$uri":"a/b"}]');
    assert.ok(decode('{"$uri":"a/b"}') instanceof Uri);
    assert.throws(() => uri("a b"), InvalidValue);
    assert.throws(() => uri(""), InvalidValue);
    assert.throws(
      () => uri("u".repeat(8193)),
      (e) => e instanceof ValueTooLarge && e.limit === "uri_length",
    );

    assert.equal(credit("12.50").text, "12.5");
    assert.equal(credit("1E+3").text, "1000");
    assert.equal(credit(10n ** 20n).text, "100000000000000000000");
    assert.ok(decode('{"$credit":"0.00"}') instanceof Credit);
    assert.throws(() => credit("-1"), InvalidValue);
    assert.throws(() => credit(".5"), InvalidValue);
    assert.throws(() => credit(1.5), UnsupportedType);
    assert.throws(
      () => credit("1".repeat(41)),
      (e) => e instanceof ValueTooLarge && e.limit === "credit_digits",
    );
  });

  test("plain objects are maps, wrapped when a key starts with $; __proto__ is a key like any", () => {
    assert.equal(encode([{ b: 1, a: float(2) }]), '[{"a":{"$float":"2"},"b":1}]');
    assert.equal(encode({ $int: "5" }), '{"$map":{"$int":"5"}}');
    assert.deepEqual(decode('{"$map":{"$int":"5"}}'), { $int: "5" });
    const map = decode('{"__proto__":[1]}');
    assert.equal(Object.getPrototypeOf(map), Object.prototype);
    assert.deepEqual(Object.keys(map), ["__proto__"]);
    assert.equal(encode(map), '{"__proto__":[1]}');
  });

  test("what is not a wire type is refused, naming the field", () => {
    for (const [value, path] of [
      [["a", undefined], "[1]"],
      [["a", Symbol("s")], "[1]"],
      [[new Map()], "[0]"],
      [[{ f() {} }], '[0]["f"]'],
      [[[ANY]], "[0][0]"],
    ]) {
      assert.throws(
        () => encode(value),
        (e) => e instanceof UnsupportedType && e.path === path && e.code === "unsupported_type",
      );
    }
    const cycle = [];
    cycle.push(cycle);
    assert.throws(
      () => encode(cycle),
      (e) => e instanceof ValueTooLarge && e.limit === "max_depth",
    );
  });

  test("decode takes limits and refuses what is not the wire format", () => {
    assert.throws(
      () => decode("[[1]]", { limits: { maxDepth: 1 } }),
      (e) => e instanceof ValueTooLarge && e.path === "[0]",
    );
    assert.throws(
      () => decode("[1.0]"),
      (e) => e instanceof WireError && e.path === "[0]",
    );
    assert.throws(() => decode(new Uint8Array([0x5b, 0xff, 0x5d])), WireError);
    assert.deepEqual(decode("[18446744073709551616]"), [2n ** 64n]);
  });
});

describe("templates", () => {
  test("every kind of field has its wire form", () => {
    assert.equal(
      encodeTemplate([
        ANY,
        formal("int"),
        range(20, 30),
        range(null, "m", { includeHigh: true }),
        regex("^cr"),
        prefix(new Uint8Array([1])),
        oneOf([float(2), "a", 1, "a"]),
        xpath("/a"),
        ["n", formal("str")],
        { $kind: formal("str"), t: range(float(0.5), null) },
        "value",
      ]),
      '[{"$any":true},{"$formal":"int"},{"$range":{"high":30,"low":20}},{"$range":{"high":"m","include_high":true}},' +
        '{"$regex":"^cr"},{"$prefix":{"$bytes":"AQ=="}},{"$oneof":["a",1,{"$float":"2"}]},{"$xpath":"/a"},' +
        '["n",{"$formal":"str"}],{"$map":{"$kind":{"$formal":"str"},"t":{"$range":{"low":{"$float":"0.5"}}}}},"value"]',
    );
  });

  test("oneOf is written in the order of the canonical bytes, by code point", () => {
    assert.equal(encodeTemplate([oneOf(["😀", "\uffff", "a"])]), '[{"$oneof":["a","\uffff","😀"]}]');
  });

  test("fields that cannot be used are refused, naming the field", () => {
    assert.throws(() => formal("float64"), InvalidTemplate);
    assert.throws(() => range(null, null), InvalidTemplate);
    assert.throws(() => range(1, "a"), InvalidTemplate);
    assert.throws(() => range(true), InvalidTemplate);
    assert.throws(() => range(1, 2, { includeHigh: 1 }), InvalidTemplate);
    assert.throws(() => prefix(1), InvalidTemplate);
    assert.throws(() => oneOf([]), InvalidTemplate);
    assert.throws(() => oneOf([ANY]), InvalidTemplate);
    assert.throws(() => regex("x".repeat(4097)), InvalidTemplate);
    assert.throws(() => xpath(1), InvalidTemplate);
    assert.throws(() => encodeTemplate("job"), InvalidTemplate);
    assert.throws(
      () => encodeTemplate(["a", { t: [NaN] }]),
      (e) => e instanceof InvalidTemplate && e.path === '[1]["t"][0]' && e.code === "invalid_template",
    );
  });
});
