// Values and templates to the wire format's JSON text (docs/wire-format.md).

import {
  InvalidTemplate,
  InvalidValue,
  TupleSpaceError,
  UnsupportedType,
  ValueTooLarge,
  at,
  reasons,
} from "./errors.js";
import {
  Credit,
  Float,
  INT_BITS,
  INT_LIMIT,
  MAX_NESTING,
  MAX_SAFE,
  Time,
  Uri,
  checkWellFormed,
  describe,
  isPlainObject,
  time,
} from "./values.js";
import { ANY, Formal, OneOf, Prefix, Range, Regex, XPath } from "./templates.js";
import { Record } from "./records.js";

/**
 * Compare strings by Unicode code points (the order of their UTF-8 bytes), not by UTF-16
 * code units: U+1F600 sorts after U+FFFF.
 */
function compareCodePoints(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates (astral characters) go above U+E000..U+FFFF.
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

// Objects whose keys are written in their own order: the fields of a record, whose tags
// keep the order they were given in.
export const inOrder = new WeakSet();

/**
 * The canonical text of parsed JSON (strings escaped as JSON.stringify does, keys sorted
 * except in the objects of `inOrder`).
 */
export function stringify(w) {
  switch (typeof w) {
    case "string":
      return JSON.stringify(w);
    case "number":
      return String(w);
    case "boolean":
      return w ? "true" : "false";
  }
  if (w === null) return "null";
  if (Array.isArray(w)) return "[" + w.map(stringify).join(",") + "]";
  const keys = Object.keys(w).filter((k) => w[k] !== undefined);
  if (!inOrder.has(w)) keys.sort(compareCodePoints);
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + stringify(w[k])).join(",") + "}";
}

export function keyPath(key) {
  return `[${JSON.stringify(key)}]`;
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

export function tooDeep(maximum) {
  return new ValueTooLarge(`nesting is deeper than ${maximum}`, { limit: "max_depth", maximum });
}

/** The parsed-JSON form of a value; throws InvalidValue (or a subclass) naming the path. */
export function toWire(v, depth) {
  switch (typeof v) {
    case "string":
      return checkWellFormed(v, InvalidValue);
    case "boolean":
      return v;
    case "number":
      if (Number.isInteger(v)) {
        if (Math.abs(v) <= MAX_SAFE) return v + 0;
        throw new InvalidValue(
          `the number ${v} is past 2**53-1, where numbers are not exact: write ints as BigInt, floats with float()`,
        );
      }
      if (Number.isFinite(v)) return { $float: String(v) };
      throw new InvalidValue(`float must be finite, got ${v}`);
    case "bigint":
      if (v >= -MAX_SAFE && v <= MAX_SAFE) return Number(v);
      if (v >= INT_LIMIT || v <= -INT_LIMIT) {
        throw new ValueTooLarge(`int has more than ${INT_BITS} bits`, { limit: "int_bits", maximum: INT_BITS });
      }
      return { $int: v.toString() };
  }
  if (v === null) return null;
  if (typeof v !== "object") throw new UnsupportedType(`${describe(v)} is not a wire type`);
  if (Array.isArray(v)) return seqToWire(v, depth + 1);
  if (v instanceof Float) return { $float: v.toString() };
  if (v instanceof Uint8Array) return { $bytes: base64(v) };
  if (v instanceof Time) return { $time: v.toString() };
  if (v instanceof Date) return { $time: time(v).toString() };
  if (v instanceof Uri) return { $uri: v.text };
  if (v instanceof Credit) return { $credit: v.text };
  if (v instanceof Record) return { $uri: v.address.text }; // a handle stands for its address
  if (isPlainObject(v)) return mapToWire(v, depth + 1);
  if (
    v === ANY ||
    v instanceof Formal ||
    v instanceof Range ||
    v instanceof Regex ||
    v instanceof Prefix ||
    v instanceof OneOf ||
    v instanceof XPath
  ) {
    throw new UnsupportedType("a template field is not a value");
  }
  throw new UnsupportedType(`${describe(v)} is not a wire type`);
}

function seqToWire(v, depth) {
  if (depth > MAX_NESTING) throw tooDeep(MAX_NESTING);
  const out = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    try {
      out[i] = toWire(v[i], depth);
    } catch (error) {
      throw error instanceof TupleSpaceError ? at(error, `[${i}]`) : error;
    }
  }
  return out;
}

function mapToWire(v, depth) {
  if (depth > MAX_NESTING) throw tooDeep(MAX_NESTING);
  const out = {};
  let tagged = false;
  for (const k of Object.keys(v)) {
    checkWellFormed(k, InvalidValue);
    tagged ||= k.startsWith("$");
    try {
      define(out, k, toWire(v[k], depth));
    } catch (error) {
      throw error instanceof TupleSpaceError ? at(error, keyPath(k)) : error;
    }
  }
  return tagged ? { $map: out } : out;
}

/** Set a key of a plain object, `__proto__` included. */
export function define(obj, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/**
 * The canonical wire text of a value (its UTF-8 bytes are the canonical bytes of
 * docs/wire-format.md); a tuple is an array.
 *
 *     encode(["job", 7, float(1), new Uint8Array([0])])  // '["job",7,{"$float":"1"},{"$bytes":"AA=="}]'
 *
 * Throws InvalidValue, UnsupportedType or ValueTooLarge naming the path (`[2]["temp"]`).
 */
export function encode(value) {
  return stringify(toWire(value, 0));
}

export function templateToWire(template) {
  if (!Array.isArray(template))
    throw new InvalidTemplate(`a template is an array of fields, not ${describe(template)}`);
  return fieldsToWire(template, 1);
}

function fieldsToWire(fields, depth) {
  if (depth > MAX_NESTING) throw new InvalidTemplate(`nesting is deeper than ${MAX_NESTING}`);
  return fields.map((f, i) => {
    try {
      return fieldToWire(f, depth);
    } catch (error) {
      throw error instanceof TupleSpaceError ? at(error, `[${i}]`) : error;
    }
  });
}

export function fieldToWire(f, depth) {
  if (f === ANY) return { $any: true };
  if (f instanceof Formal) return { $formal: f.type };
  if (f instanceof Range) {
    return {
      $range: {
        low: f.low === null ? undefined : toWire(f.low, depth),
        high: f.high === null ? undefined : toWire(f.high, depth),
        include_high: f.includeHigh || undefined,
      },
    };
  }
  if (f instanceof Regex) return { $regex: f.pattern };
  if (f instanceof Prefix) return { $prefix: toWire(f.prefix, depth) };
  if (f instanceof OneOf) {
    // A set of values: written in the order of their canonical bytes, without repeats.
    const byText = new Map(f.values.map((v) => [encode(v), v]));
    const texts = [...byText.keys()].sort(compareCodePoints);
    return { $oneof: texts.map((t) => toWire(byText.get(t), depth)) };
  }
  if (f instanceof XPath) return { $xpath: f.expression };
  if (Array.isArray(f)) return fieldsToWire(f, depth + 1);
  if (isPlainObject(f)) {
    if (depth + 1 > MAX_NESTING) throw new InvalidTemplate(`nesting is deeper than ${MAX_NESTING}`);
    const out = {};
    let tagged = false;
    for (const k of Object.keys(f)) {
      checkWellFormed(k, InvalidTemplate);
      tagged ||= k.startsWith("$");
      try {
        define(out, k, fieldToWire(f[k], depth + 1));
      } catch (error) {
        throw error instanceof TupleSpaceError ? at(error, keyPath(k)) : error;
      }
    }
    return tagged ? { $map: out } : out;
  }
  try {
    return toWire(f, depth);
  } catch (error) {
    if (!(error instanceof InvalidValue)) throw error;
    throw new InvalidTemplate(`not a value or template field: ${reasons.get(error)}`, { path: error.path });
  }
}

/**
 * The canonical wire text of a template: an array of fields, each a value, `ANY`, a
 * `formal()`, `range()`, `regex()`, `prefix()`, `oneOf()`, `xpath()`, an array of fields (a
 * nested tuple) or a plain object of fields (a map with at least those keys).
 *
 * Throws InvalidTemplate naming the field.
 */
export function encodeTemplate(template) {
  return stringify(templateToWire(template));
}
