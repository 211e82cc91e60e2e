// The fields of a template beyond plain values: ANY, formals, ranges, patterns, prefixes,
// sets of values and XPath.

import { InvalidTemplate } from "./errors.js";
import { MAX_ONE_OF, MAX_PATTERN, Uri, checkWellFormed, describe, quote, typeName } from "./values.js";
import { toWire } from "./encoding.js";

class Any {
  toString() {
    return "ANY";
  }
}

/** The template field that matches every value. */
export const ANY = Object.freeze(new Any());

export const FORMALS = ["null", "bool", "int", "float", "str", "bytes", "time", "uri", "credit", "tuple", "map"];

/** Matches every value of one wire type (`"int"` matches no bool). */
export class Formal {
  constructor(type) {
    if (!FORMALS.includes(type)) {
      throw new InvalidTemplate(`unknown formal ${quote(String(type))}; formals are ${FORMALS.join(", ")}`);
    }
    this.type = type;
    Object.freeze(this);
  }
}

export function formal(type) {
  return new Formal(type);
}

function family(v) {
  switch (typeName(v)) {
    case "int":
    case "float":
    case "credit":
      return "number";
    case "str":
    case "bytes":
    case "time":
      return typeName(v);
    default:
      return null;
  }
}

/**
 * Matches `low <= x < high` (`<= high` with `includeHigh`); a null bound is unbounded.
 * Bounds are numbers (int, float and credit compare by exact value), strings (by code
 * point), bytes (unsigned) or times, both of one kind, and match values of that kind only.
 */
export class Range {
  constructor(low = null, high = null, { includeHigh = false } = {}) {
    const bounds = [low, high].filter((b) => b !== null && b !== undefined);
    if (bounds.length === 0) throw new InvalidTemplate("Range needs at least one bound");
    const kinds = new Set(
      bounds.map((b) => {
        try {
          toWire(b, 0);
          return family(b);
        } catch (error) {
          throw new InvalidTemplate(`Range bound: ${error.message}`);
        }
      }),
    );
    if (kinds.has(null) || kinds.size > 1) {
      throw new InvalidTemplate(
        `Range bounds must be numbers, str, bytes or times, both of one kind; got ${bounds.map(typeName).join(" and ")}`,
      );
    }
    if (typeof includeHigh !== "boolean") throw new InvalidTemplate("Range includeHigh must be true or false");
    this.low = low ?? null;
    this.high = high ?? null;
    this.includeHigh = includeHigh;
    Object.freeze(this);
  }
}

export function range(low, high, options) {
  return new Range(low, high, options);
}

function checkPattern(text, what) {
  if (typeof text !== "string") throw new InvalidTemplate(`${what} must be a string, not ${describe(text)}`);
  if (text.length > MAX_PATTERN && [...text].length > MAX_PATTERN) {
    throw new InvalidTemplate(`${what} is longer than ${MAX_PATTERN} characters`);
  }
  checkWellFormed(text, InvalidTemplate);
  return text;
}

/**
 * Matches str values in which the pattern finds a match, unanchored. The syntax is RE2's
 * (keep to what RE2 and JavaScript share); the server checks it.
 */
export class Regex {
  constructor(pattern) {
    this.pattern = checkPattern(pattern, "Regex pattern");
    Object.freeze(this);
  }
}

export function regex(pattern) {
  return new Regex(pattern);
}

/** Matches str, bytes or uri values that start with the prefix, of the same type. */
export class Prefix {
  constructor(prefix) {
    if (!(typeof prefix === "string" || prefix instanceof Uint8Array || prefix instanceof Uri)) {
      throw new InvalidTemplate(`Prefix must be str, bytes or uri, not ${describe(prefix)}`);
    }
    if (typeof prefix === "string") checkWellFormed(prefix, InvalidTemplate);
    this.prefix = prefix;
    Object.freeze(this);
  }
}

export function prefix(p) {
  return new Prefix(p);
}

/** Matches a value equal to one of the values (whole values: a map must be equal). */
export class OneOf {
  /** @param {Iterable<unknown>} values 1 to 1024 values */
  constructor(values) {
    if (values === null || typeof values !== "object" || typeof values[Symbol.iterator] !== "function") {
      throw new InvalidTemplate(`OneOf takes an array of values, not ${describe(values)}`);
    }
    const list = [...values];
    if (list.length === 0) throw new InvalidTemplate("OneOf needs at least one value");
    if (list.length > MAX_ONE_OF) throw new InvalidTemplate(`OneOf has ${list.length} values, more than ${MAX_ONE_OF}`);
    list.forEach((v, i) => {
      try {
        toWire(v, 0);
      } catch (error) {
        throw new InvalidTemplate(`OneOf value ${i}: ${error.message}`);
      }
    });
    this.values = Object.freeze(list);
    Object.freeze(this);
  }
}

export function oneOf(values) {
  return new OneOf(values);
}

/**
 * Matches str or bytes values holding an XML document on which the XPath 1.0 expression
 * selects something; the server checks the expression.
 */
export class XPath {
  constructor(expression) {
    this.expression = checkPattern(expression, "XPath expression");
    Object.freeze(this);
  }
}

export function xpath(expression) {
  return new XPath(expression);
}
