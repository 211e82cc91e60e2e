// The wire format's JSON text to values and templates, exactly (no number is rounded) and
// within limits.

import {
  InvalidTemplate,
  InvalidValue,
  TupleSpaceError,
  UnsupportedType,
  ValueTooLarge,
  WireError,
  at,
} from "./errors.js";
import {
  Credit,
  Float,
  INT_BITS,
  INT_LIMIT,
  MAX_INT_DIGITS,
  MAX_NESTING,
  MAX_ONE_OF,
  MAX_SAFE,
  Uri,
  checkWellFormed,
  creditText,
  describe,
  parseTime,
  quote,
  typeName,
} from "./values.js";
import { ANY, FORMALS, Formal, OneOf, Prefix, Range, Regex, XPath } from "./templates.js";
import { define, keyPath, tooDeep } from "./encoding.js";

/** A JSON number that is not a safe integer, kept as its text so nothing is rounded. */
class JsonNumber {
  constructor(text) {
    this.text = text;
  }
}

const PARSE_DEPTH = 1024;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const PLAIN_STRING = /"([^"\\\u0000-\u001f]*)"/y;
const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** Parse JSON text exactly: numbers that are not safe integers stay text (JsonNumber). */
function parseJson(text) {
  let i = 0;
  const fail = (what) => {
    throw new WireError(`not valid JSON: ${what} at character ${i}`);
  };
  const space = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const string = () => {
    PLAIN_STRING.lastIndex = i;
    const plain = PLAIN_STRING.exec(text);
    if (plain !== null) {
      i = PLAIN_STRING.lastIndex;
      return plain[1];
    }
    let out = "";
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) fail("unterminated string");
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("invalid \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
          out += ESCAPES[e];
          i += 2;
        } else {
          fail("invalid escape");
        }
      } else if (c.charCodeAt(0) < 0x20) {
        fail("control character in a string");
      } else {
        out += c;
        i++;
      }
    }
  };
  const value = (depth) => {
    if (depth > PARSE_DEPTH) fail("nesting too deep to parse");
    space();
    const c = text[i];
    if (c === "[") {
      i++;
      const out = [];
      space();
      if (text[i] === "]") {
        i++;
        return out;
      }
      for (;;) {
        out.push(value(depth + 1));
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return out;
        } else fail("expected , or ]");
      }
    }
    if (c === "{") {
      i++;
      const out = Object.create(null);
      space();
      if (text[i] === "}") {
        i++;
        return out;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail("expected a key");
        const key = string();
        space();
        if (text[i] !== ":") fail("expected :");
        i++;
        out[key] = value(depth + 1);
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return out;
        } else fail("expected , or }");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m === null) fail(c === undefined ? "unexpected end" : "unexpected character");
    i = NUMBER.lastIndex;
    const n = Number(m[0]);
    return m[1] === undefined && m[2] === undefined && Number.isSafeInteger(n) ? n : new JsonNumber(m[0]);
  };
  const result = value(0);
  space();
  if (i !== text.length) fail("content after the value");
  return result;
}

const INT_TEXT = /^-?[0-9]+$/;
const FLOAT_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;
const FLOAT_HINT = 'floats are written {"$float": "1.5"} and ints past 2**53-1 as {"$int": "..."}';

function jsonType(o) {
  if (o === null) return "null";
  if (typeof o === "number" || o instanceof JsonNumber) return "a number";
  if (Array.isArray(o)) return "an array";
  if (typeof o === "object") return "an object";
  return `a ${typeof o === "boolean" ? "boolean" : typeof o}`;
}

function text(tag, payload) {
  if (typeof payload !== "string") throw new WireError(`"${tag}" holds a JSON string, not ${jsonType(payload)}`);
  return checkWellFormed(payload, WireError);
}

function intValue(digits) {
  if (digits.replace(/^-/, "").replace(/^0+/, "").length > MAX_INT_DIGITS) {
    throw new ValueTooLarge(`int has more than ${INT_BITS} bits`, { limit: "int_bits", maximum: INT_BITS });
  }
  const n = BigInt(digits);
  if (n >= INT_LIMIT || n <= -INT_LIMIT) {
    throw new ValueTooLarge(`int has more than ${INT_BITS} bits`, { limit: "int_bits", maximum: INT_BITS });
  }
  return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
}

function floatFrom(payload) {
  let shown;
  if (typeof payload === "string") {
    if (!FLOAT_TEXT.test(payload)) throw new WireError(`"$float" text must be a JSON number, got ${quote(payload)}`);
    shown = payload;
  } else if (typeof payload === "number") {
    shown = String(payload);
  } else if (payload instanceof JsonNumber) {
    shown = payload.text;
  } else {
    throw new WireError(`"$float" holds a JSON string or number, not ${jsonType(payload)}`);
  }
  const x = Number(shown);
  if (!Number.isFinite(x)) throw new InvalidValue(`float must be finite, got ${quote(shown)}`);
  return new Float(x);
}

function bytesFrom(payload) {
  const t = text("$bytes", payload);
  if (!BASE64_TEXT.test(t))
    throw new WireError('"$bytes" text is not canonical base64 (standard alphabet, "=" padding)');
  const binary = atob(t);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function timeFrom(payload) {
  const t = parseTime(text("$time", payload));
  if (t === null) {
    throw new WireError(
      `"$time" text must be RFC 3339 like "2024-05-01T12:00:00Z" from 0001 to 9999 UTC, got ${quote(payload)}`,
    );
  }
  return t;
}

export function creditFrom(payload) {
  const canonical = creditText(text("$credit", payload));
  if (canonical === null)
    throw new WireError(`"$credit" text must be a decimal number like "12.5", got ${quote(payload)}`);
  return new Credit(canonical);
}

const SCALAR_TAGS = {
  $int: (p) => {
    const t = text("$int", p);
    if (!INT_TEXT.test(t))
      throw new WireError(`"$int" text must be decimal digits with an optional "-", got ${quote(t)}`);
    return intValue(t);
  },
  $float: floatFrom,
  $bytes: bytesFrom,
  $time: timeFrom,
  $uri: (p) => new Uri(text("$uri", p)),
  $credit: creditFrom,
};

/** The keys of a JSON object that is a map or map template (no `$` key among others). */
function plainKeys(o) {
  const keys = Object.keys(o);
  for (const k of keys) {
    if (k.startsWith("$")) {
      throw new WireError(
        `an object with the key ${quote(k)} must have no other key; a map with keys that start with "$" is written {"$map": {...}}`,
      );
    }
  }
  return keys;
}

function isJsonObject(o) {
  return o !== null && typeof o === "object" && !Array.isArray(o) && !(o instanceof JsonNumber);
}

/** Turns parsed JSON into values, checking the limits as it goes. */
export class Decoder {
  constructor(limits) {
    this.maxDepth = Math.min(limits.maxDepth, MAX_NESTING);
    this.maxFields = limits.maxFields;
  }

  value(o, depth) {
    switch (typeof o) {
      case "string":
        return checkWellFormed(o, WireError);
      case "boolean":
        return o;
      case "number":
        if (Number.isSafeInteger(o)) return o + 0;
        throw new WireError(`a bare JSON number must be an int; ${FLOAT_HINT}`);
    }
    if (o === null) return null;
    if (o instanceof JsonNumber) {
      if (INT_TEXT.test(o.text)) return intValue(o.text);
      throw new WireError(`a bare JSON number must be an int; ${FLOAT_HINT}`);
    }
    if (Array.isArray(o)) return this.seq(o, depth + 1);
    if (typeof o === "object") {
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0].startsWith("$")) return this.tagged(keys[0], o[keys[0]], depth);
      return this.map(o, plainKeys(o), depth + 1);
    }
    throw new WireError(`${typeof o} is not a JSON value`);
  }

  tagged(tag, payload, depth) {
    if (Object.hasOwn(SCALAR_TAGS, tag)) return SCALAR_TAGS[tag](payload);
    if (tag === "$map") return this.map(mapPayload(payload), Object.keys(payload), depth + 1);
    throw new WireError(`unknown tag ${quote(tag)}`);
  }

  check(n, depth, noun = "fields") {
    if (depth > this.maxDepth) throw tooDeep(this.maxDepth);
    if (n > this.maxFields) {
      throw new ValueTooLarge(`${n} ${noun}, more than ${this.maxFields}`, {
        limit: "max_fields",
        maximum: this.maxFields,
      });
    }
  }

  seq(o, depth) {
    this.check(o.length, depth);
    return o.map((x, i) => {
      try {
        return this.value(x, depth);
      } catch (error) {
        throw error instanceof TupleSpaceError ? at(error, `[${i}]`) : error;
      }
    });
  }

  // A map's entries, each decoded by the method named `entry` ("value", or a template's "field").
  map(o, keys, depth, entry = "value") {
    this.check(keys.length, depth, "map keys");
    const out = {};
    for (const k of keys) {
      checkWellFormed(k, WireError);
      try {
        define(out, k, this[entry](o[k], depth));
      } catch (error) {
        throw error instanceof TupleSpaceError ? at(error, keyPath(k)) : error;
      }
    }
    return out;
  }
}

function mapPayload(payload) {
  if (!isJsonObject(payload)) throw new WireError(`"$map" holds a JSON object, not ${jsonType(payload)}`);
  return payload;
}

/** Turns a parsed JSON template into template fields. */
class TemplateDecoder extends Decoder {
  fields(o, depth) {
    if (!Array.isArray(o)) throw new WireError(`a template is a JSON array, not ${jsonType(o)}`);
    this.check(o.length, depth);
    return o.map((x, i) => {
      try {
        return this.field(x, depth);
      } catch (error) {
        throw error instanceof TupleSpaceError ? at(error, `[${i}]`) : error;
      }
    });
  }

  field(o, depth) {
    if (Array.isArray(o)) return this.fields(o, depth + 1);
    if (isJsonObject(o)) {
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0].startsWith("$")) return this.marker(keys[0], o[keys[0]], depth);
      return this.map(o, plainKeys(o), depth + 1, "field");
    }
    return this.value(o, depth);
  }

  marker(tag, payload, depth) {
    if (Object.hasOwn(SCALAR_TAGS, tag)) return this.tagged(tag, payload, depth);
    switch (tag) {
      case "$map":
        return this.map(mapPayload(payload), Object.keys(payload), depth + 1, "field");
      case "$any":
        if (payload !== true) throw new WireError('"$any" holds true');
        return ANY;
      case "$formal": {
        const name = text(tag, payload);
        if (!FORMALS.includes(name))
          throw new WireError(`unknown formal ${quote(name)}; formals are ${FORMALS.join(", ")}`);
        return new Formal(name);
      }
      case "$range":
        return this.range(payload, depth);
      case "$regex":
        return new Regex(text(tag, payload));
      case "$prefix":
        try {
          return new Prefix(this.value(payload, depth));
        } catch (error) {
          throw error instanceof InvalidTemplate ? error : at(error, '["$prefix"]');
        }
      case "$oneof":
        return this.oneOf(payload, depth);
      case "$xpath":
        return new XPath(text(tag, payload));
    }
    throw new WireError(`unknown tag ${quote(tag)}`);
  }

  oneOf(payload, depth) {
    if (!Array.isArray(payload)) throw new WireError(`"$oneof" holds a JSON array, not ${jsonType(payload)}`);
    if (payload.length > MAX_ONE_OF)
      throw new InvalidTemplate(`OneOf has ${payload.length} values, more than ${MAX_ONE_OF}`);
    const values = payload.map((x, i) => {
      try {
        return this.value(x, depth);
      } catch (error) {
        throw at(error, `["$oneof"][${i}]`);
      }
    });
    return new OneOf(values);
  }

  range(payload, depth) {
    if (!isJsonObject(payload)) throw new WireError(`"$range" holds a JSON object, not ${jsonType(payload)}`);
    for (const k of Object.keys(payload)) {
      if (!["low", "high", "include_high"].includes(k)) {
        throw new WireError(`unknown "$range" key ${quote(k)}; the keys are low, high and include_high`);
      }
    }
    const bound = (k) => {
      try {
        return this.value(payload[k] ?? null, depth);
      } catch (error) {
        throw at(error, `["$range"]["${k}"]`);
      }
    };
    const [low, high] = [bound("low"), bound("high")];
    const includeHigh = payload.include_high ?? false;
    if (typeof includeHigh !== "boolean") throw new WireError('"$range" include_high is true or false');
    return new Range(low, high, { includeHigh });
  }
}

/** The default limits of a space: fields of an array or map, nesting, bytes of the input. */
export const DEFAULT_LIMITS = Object.freeze({ maxFields: 256, maxDepth: 32, maxBytes: 1 << 20 });

// What arrives from a server is decoded without a writer's limits: the server has checked
// them, and its limits may be larger than the defaults.
export const RECEIVED = { maxFields: 2 ** 30, maxDepth: 1 << 10, maxBytes: Infinity };

const utf8 = new TextEncoder();

function parseInput(data, limits) {
  const maxBytes = limits.maxBytes;
  let textInput;
  if (typeof data === "string") {
    const size = data.length > maxBytes ? data.length : utf8.encode(data).length;
    if (size > maxBytes) throw tooManyBytes(size, maxBytes);
    textInput = data;
  } else if (data instanceof Uint8Array) {
    if (data.length > maxBytes) throw tooManyBytes(data.length, maxBytes);
    try {
      textInput = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data);
    } catch {
      throw new WireError("not valid UTF-8");
    }
  } else {
    throw new UnsupportedType(`wire data is a string or a Uint8Array, not ${describe(data)}`);
  }
  return parseJson(textInput);
}

function tooManyBytes(n, maximum) {
  return new ValueTooLarge(`input is ${n} bytes, more than ${maximum}`, { limit: "max_bytes", maximum });
}

function limitsOf(options) {
  return { ...DEFAULT_LIMITS, ...(options?.limits ?? {}) };
}

/**
 * The value of wire text or bytes (a JSON array gives a tuple, an array). Floats decode as
 * `Float`, times as `Time`, ints past 2**53-1 as BigInt, bytes as Uint8Array.
 *
 * Throws WireError for input not in the wire format, ValueTooLarge past `options.limits`
 * (`{maxFields, maxDepth, maxBytes}`, DEFAULT_LIMITS by default) and InvalidValue for an
 * invalid value, each naming the path.
 */
export function decode(data, options) {
  const limits = limitsOf(options);
  return new Decoder(limits).value(parseInput(data, limits), 0);
}

/**
 * The template of wire text or bytes, in the forms `encodeTemplate` takes. Throws as
 * `decode`, and InvalidTemplate for a field that cannot be used (the syntax of regular
 * expressions and XPath is the server's to check).
 */
export function decodeTemplate(data, options) {
  const limits = limitsOf(options);
  return new TemplateDecoder(limits).fields(parseInput(data, limits), 1);
}

export function tupleFromWire(o) {
  const t = new Decoder(RECEIVED).value(o, 0);
  if (!Array.isArray(t)) throw new WireError(`the server answered ${typeName(t)} where a tuple belongs`);
  return t;
}

export function templateFromWire(o) {
  return new TemplateDecoder(RECEIVED).fields(o, 1);
}
