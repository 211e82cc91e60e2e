// The values of the wire types JavaScript lacks (Float, Time, Uri, Credit), their limits, and
// the wire type of a JavaScript value.

import { InvalidValue, UnsupportedType, ValueTooLarge } from "./errors.js";
import { Record } from "./records.js";

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export const INT_BITS = 1024;
export const INT_LIMIT = 1n << 1024n; // ints are below this in magnitude
export const MAX_INT_DIGITS = 309; // decimal digits of 2**1024
const MAX_CREDIT_DIGITS = 40;
const MAX_CREDIT_TEXT = 100;
const MAX_URI = 8192;
export const MAX_PATTERN = 4096;
export const MAX_ONE_OF = 1024;
export const MAX_NESTING = 100; // the deepest the codec goes whatever the limits, as in every binding

/** A float: a JavaScript number that travels as a float even when it is integral. */
export class Float {
  /** @param {number | Float} value a finite number (-0 is 0) */
  constructor(value) {
    const x = value instanceof Float ? value.value : value;
    if (typeof x !== "number") throw new UnsupportedType(`a float is made of a number, not ${describe(x)}`);
    if (!Number.isFinite(x)) throw new InvalidValue(`float must be finite, got ${x}`);
    this.value = x + 0; // -0 is stored as 0
    Object.freeze(this);
  }
  valueOf() {
    return this.value;
  }
  /** The canonical text: ECMAScript's `Number.prototype.toString`. */
  toString() {
    return String(this.value);
  }
}

/** `float(1)` is the float 1.0; a bare `1` is the int 1. */
export function float(x) {
  return new Float(x);
}

const DAY = 86400;
const MIN_SECONDS = -62135596800; // 0001-01-01T00:00:00Z
const MAX_SECONDS = 253402300799; // 9999-12-31T23:59:59Z
const TIME_TEXT =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))$/;

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

function civilFromDays(days) {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, doy - Math.floor((153 * mp + 2) / 5) + 1];
}

function daysInMonth(y, m) {
  if (m === 2) return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

const pad = (n, width) => String(n).padStart(width, "0");

/** An instant in UTC with microsecond precision, from the year 1 to 9999. */
export class Time {
  /**
   * @param {number} seconds whole seconds since the Unix epoch
   * @param {number} [microseconds] 0 to 999999
   */
  constructor(seconds, microseconds = 0) {
    if (
      !Number.isSafeInteger(seconds) ||
      !Number.isInteger(microseconds) ||
      microseconds < 0 ||
      microseconds > 999999
    ) {
      throw new InvalidValue(`a time is whole seconds and 0 to 999999 microseconds, got ${seconds}, ${microseconds}`);
    }
    if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) {
      throw new InvalidValue("time must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z");
    }
    this.seconds = seconds;
    this.microseconds = microseconds;
    Object.freeze(this);
  }
  /** A `Date` (which keeps milliseconds: the microseconds below them are dropped). */
  toDate() {
    return new Date(this.seconds * 1000 + Math.floor(this.microseconds / 1000));
  }
  /** Milliseconds since the epoch, as `Date`'s; times compare with `<` and `>`. */
  valueOf() {
    return this.seconds * 1000 + this.microseconds / 1000;
  }
  /** The canonical text, `YYYY-MM-DDTHH:MM:SS[.f]Z`. */
  toString() {
    const days = Math.floor(this.seconds / DAY);
    const rest = this.seconds - days * DAY;
    const [y, m, d] = civilFromDays(days);
    const clock = `${pad(Math.floor(rest / 3600), 2)}:${pad(Math.floor(rest / 60) % 60, 2)}:${pad(rest % 60, 2)}`;
    const fraction = this.microseconds ? "." + pad(this.microseconds, 6).replace(/0+$/, "") : "";
    return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${clock}${fraction}Z`;
  }
}

/** The time of an RFC 3339 text, or null when the text is not one. */
export function parseTime(text) {
  const m = TIME_TEXT.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let seconds = daysFromCivil(year, month, day) * DAY + hour * 3600 + minute * 60 + second;
  if (m[8] !== undefined) {
    const [offH, offM] = [Number(m[9]), Number(m[10])];
    if (offH > 23 || offM > 59) return null;
    seconds -= (m[8] === "+" ? 1 : -1) * (offH * 3600 + offM * 60);
  }
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return null;
  return new Time(seconds, m[7] === undefined ? 0 : Number(m[7].padEnd(6, "0")));
}

/**
 * A time from a `Date`, an RFC 3339 text (`"2024-05-01T12:00:00.5Z"`, an offset allowed) or
 * a number of seconds since the epoch (rounded to the microsecond).
 */
export function time(value) {
  if (value instanceof Time) return value;
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new InvalidValue("an invalid Date is not a time");
    const seconds = Math.floor(ms / 1000);
    return new Time(seconds, (ms - seconds * 1000) * 1000);
  }
  if (typeof value === "string") {
    const t = parseTime(value);
    if (t === null) throw new InvalidValue(`not an RFC 3339 time like "2024-05-01T12:00:00Z": ${quote(value)}`);
    return t;
  }
  if (typeof value === "number" && Number.isFinite(value)) {
    const seconds = Math.floor(value);
    const micros = Math.round((value - seconds) * 1e6); // value - seconds is exact
    return micros === 1e6 ? new Time(seconds + 1) : new Time(seconds, micros);
  }
  throw new UnsupportedType(`a time is made of a Date, an RFC 3339 text or seconds, not ${describe(value)}`);
}

/** A URI: the address of a named tuple or record; never equal to the string of its text. */
export class Uri {
  /** @param {string} text not empty, at most 8192 characters, no spaces or control characters */
  constructor(text) {
    if (typeof text !== "string") throw new UnsupportedType(`a URI is made of a string, not ${describe(text)}`);
    if (text === "") throw new InvalidValue("URI must not be empty");
    if (text.length > MAX_URI && [...text].length > MAX_URI) {
      throw new ValueTooLarge(`URI is longer than ${MAX_URI} characters`, { limit: "uri_length", maximum: MAX_URI });
    }
    if (/[\u0000-\u0020\u007f]/.test(text)) throw new InvalidValue("URI must hold no spaces or control characters");
    checkWellFormed(text, InvalidValue);
    this.text = text;
    Object.freeze(this);
  }
  toString() {
    return this.text;
  }
}

export function uri(text) {
  return new Uri(text);
}

const CREDIT_TEXT = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

/** The canonical text of a credit's decimal text; null when the text is not a decimal. */
export function creditText(text) {
  const m = CREDIT_TEXT.exec(text);
  if (m === null) return null;
  const [, minus, whole, fraction = "", expText = "0"] = m;
  const digits = (whole + fraction).replace(/^0+/, "");
  if (digits === "") return "0";
  if (minus) throw new InvalidValue(`credit must not be negative, got ${quote(text)}`);
  const expDigits = expText.replace(/^[+-]/, "").replace(/^0+/, "");
  if (expDigits.length > 9) {
    throw new ValueTooLarge(`credit text would be longer than ${MAX_CREDIT_TEXT} characters`, {
      limit: "credit_length",
      maximum: MAX_CREDIT_TEXT,
    });
  }
  const s = digits.replace(/0+$/, "");
  const exp = Number(expText) - fraction.length + (digits.length - s.length); // value = s * 10**exp
  const k = s.length;
  // Measured before it is built: a short exponent can make a very long text.
  const length = exp >= 0 ? k + exp : k + exp > 0 ? k + 1 : 2 - exp;
  if (length > MAX_CREDIT_TEXT) {
    throw new ValueTooLarge(`credit text would be ${length} characters, more than ${MAX_CREDIT_TEXT}`, {
      limit: "credit_length",
      maximum: MAX_CREDIT_TEXT,
    });
  }
  if (k > MAX_CREDIT_DIGITS) {
    throw new ValueTooLarge(`credit has more than ${MAX_CREDIT_DIGITS} significant digits`, {
      limit: "credit_digits",
      maximum: MAX_CREDIT_DIGITS,
    });
  }
  if (exp >= 0) return s + "0".repeat(exp);
  const point = k + exp;
  return point > 0 ? `${s.slice(0, point)}.${s.slice(point)}` : `0.${"0".repeat(-point)}${s}`;
}

/** A non-negative decimal amount of at most 40 significant digits; equal amounts are equal. */
export class Credit {
  /** @param {string | bigint} amount decimal text like `"12.50"` or `"1E+3"`, or a BigInt */
  constructor(amount) {
    const given = typeof amount === "bigint" ? amount.toString() : amount;
    if (typeof given !== "string") {
      throw new UnsupportedType(`a credit is made of decimal text or a BigInt, not ${describe(amount)}`);
    }
    const text = creditText(given);
    if (text === null) throw new InvalidValue(`not a decimal amount: ${quote(given)}`);
    /** The canonical text: no exponent, no sign, no needless zeros. */
    this.text = text;
    Object.freeze(this);
  }
  toString() {
    return this.text;
  }
}

export function credit(amount) {
  return new Credit(amount);
}

export function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function describe(v) {
  if (v === null) return "null";
  if (typeof v === "object") return v.constructor?.name ? `a ${v.constructor.name}` : "an object";
  return `a ${typeof v}`;
}

/** A text as an error message quotes it: JSON, its first 60 characters. */
export function quote(s) {
  return JSON.stringify(String(s).slice(0, 60));
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function checkWellFormed(s, kind) {
  if (LONE_SURROGATE.test(s)) throw new kind("string holds a lone surrogate");
  return s;
}

/**
 * The wire type of a value: `"null"`, `"bool"`, `"int"`, `"float"`, `"str"`, `"bytes"`,
 * `"time"`, `"uri"`, `"credit"`, `"tuple"` or `"map"`.
 */
export function typeName(value) {
  switch (typeof value) {
    case "boolean":
      return "bool";
    case "number":
      return Number.isInteger(value) ? "int" : "float";
    case "bigint":
      return "int";
    case "string":
      return "str";
  }
  if (value === null) return "null";
  if (Array.isArray(value)) return "tuple";
  if (value instanceof Float) return "float";
  if (value instanceof Uint8Array) return "bytes";
  if (value instanceof Time || value instanceof Date) return "time";
  if (value instanceof Uri || value instanceof Record) return "uri";
  if (value instanceof Credit) return "credit";
  if (isPlainObject(value)) return "map";
  throw new UnsupportedType(`${describe(value)} is not a wire type`);
}
