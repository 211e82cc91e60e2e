/**
 * PyTupleSpace for JavaScript: the spaces of a `tuplespace serve` server, over its HTTP API
 * (docs/http-api.md), and the wire codec of docs/wire-format.md. One ES module, no
 * dependencies, for Node.js 20 and later and for browsers.
 *
 *     import { connect, ANY, formal } from "./tuplespace.js";
 *     const space = connect("http://127.0.0.1:8765/spaces/jobs");
 *     await space.write(["job", 1, "resize"]);
 *     const job = await space.take(["job", formal("int"), ANY], { timeout: 5 });
 *
 * Values. JavaScript's own types carry what they can: null, booleans, strings, integers
 * (numbers in the safe range, BigInt beyond), arrays (tuples), plain objects (maps),
 * `Uint8Array` (bytes) and `Date` (times). Other numbers are floats; `float(1)` is the float
 * 1.0, which a bare `1` is not. `time()`, `uri()` and `credit()` make the types JavaScript
 * lacks. What comes back from a space is decoded the same way, with every float a `Float`
 * and every time a `Time` (microseconds), so a tuple read and written back is the same tuple.
 *
 * Waiting. A `timeout` in seconds: absent or null waits forever, 0 never waits. Waits longer
 * than the server holds a request are asked again for the time left. Every call takes a
 * `signal` (an AbortSignal); aborting it rejects the call with the signal's reason.
 *
 * No take loses a tuple: takes ask the server for a claim, confirmed once the answer has
 * arrived (riding on the next take, or sent alone within `confirmDelay` seconds); a take
 * whose answer is lost leaves the claim to run out, and the tuple returns to the space.
 *
 * Errors, one tree (`.code` is the server's error code, `.field` the part of the request at
 * fault, `.path` the place in the tuple or template, `.limit` and `.maximum` a limit's):
 *
 *     TupleSpaceError
 *      ├── Timeout                a blocking call found nothing in time
 *      ├── InvalidValue           a value or argument that cannot be used (also bad_request)
 *      │    ├── UnsupportedType   a JavaScript value that is not a wire type
 *      │    ├── ValueTooLarge     past a size, field-count or nesting limit
 *      │    └── ContainmentCycle  a set that would make a record contain itself
 *      ├── InvalidTemplate        a template that cannot be used
 *      ├── WireError              text that is not in the wire format
 *      ├── Unauthorized           401: no token, or an unknown or revoked one
 *      │    └── CapabilityRevoked the record capability was revoked or ran out (.expired)
 *      ├── Forbidden              403: the token lacks the permission
 *      │    └── NotAllowed        the record handle does not grant it (.operation, .allowed)
 *      ├── NotFound               404: no such space (or claim)
 *      │    ├── UnknownLease      the leased tuple is gone (taken, expired, cancelled)
 *      │    └── RecordNotFound    no record there, or the handle's record is gone
 *      ├── Conflict               409: the space or token exists already, otherwise
 *      ├── RecordExists           create, clone or move onto a path a record holds
 *      ├── RecordInUse            destroying a contained record without force
 *      ├── InsufficientCredit     the account cannot pay (.principal, .needed, .available)
 *      ├── LimitReached           429: too many waiting calls, streams, transactions, requests
 *      │    └── SpaceFull         the space is at its capacity
 *      ├── EventsLost             events a subscriber asked for are no longer in the log
 *      ├── TransactionError       the transaction has ended, or is unknown
 *      │    └── TransactionAborted  it was aborted (by abort, or its lease)
 *      ├── StoreError             the server's durable store failed
 *      ├── NotSupported           501: the store that keeps the space lacks the operation
 *      ├── SpaceClosed            this handle was closed, or the server is shutting down
 *      └── Unreachable            no answer from the server
 */

// -- errors ------------------------------------------------------------------------------------

const reasons = new WeakMap(); // error -> its message without the path, to prefix the path later

export class TupleSpaceError extends Error {
  /**
   * @param {string} message
   * @param {{code?: string|null, status?: number|null, field?: string|null, path?: string,
   *   limit?: string|null, maximum?: number|null, cause?: unknown}} [details]
   */
  constructor(message, details = {}) {
    const path = details.path ?? "";
    super(path ? `${path}: ${message}` : message, details.cause === undefined ? undefined : { cause: details.cause });
    reasons.set(this, message);
    this.code = details.code ?? new.target.code ?? null;
    this.status = details.status ?? null;
    this.field = details.field ?? null;
    this.path = path;
    this.limit = details.limit ?? null;
    this.maximum = details.maximum ?? null;
  }
}
TupleSpaceError.code = null;

export class Timeout extends TupleSpaceError {}
export class InvalidValue extends TupleSpaceError {}
InvalidValue.code = "invalid_value";
export class UnsupportedType extends InvalidValue {}
UnsupportedType.code = "unsupported_type";
export class ValueTooLarge extends InvalidValue {}
ValueTooLarge.code = "value_too_large";
export class InvalidTemplate extends TupleSpaceError {}
InvalidTemplate.code = "invalid_template";
export class WireError extends TupleSpaceError {}
WireError.code = "wire_error";
export class Unauthorized extends TupleSpaceError {}
Unauthorized.code = "unauthorized";
export class Forbidden extends TupleSpaceError {}
Forbidden.code = "forbidden";
export class NotFound extends TupleSpaceError {}
NotFound.code = "not_found";
export class UnknownLease extends NotFound {}
UnknownLease.code = "unknown_lease";
export class Conflict extends TupleSpaceError {}
export class RecordNotFound extends NotFound {}
RecordNotFound.code = "record_not_found";
export class RecordExists extends TupleSpaceError {}
RecordExists.code = "record_exists";
export class RecordInUse extends TupleSpaceError {}
RecordInUse.code = "record_in_use";
export class ContainmentCycle extends InvalidValue {}
ContainmentCycle.code = "containment_cycle";
export class NotAllowed extends Forbidden {
  constructor(message, details = {}) {
    super(message, details);
    /** The operation the handle does not grant. */
    this.operation = details.operation ?? null;
    /** The operations it grants, sorted. */
    this.allowed = details.allowed ?? [];
  }
}
NotAllowed.code = "not_allowed";
export class CapabilityRevoked extends Unauthorized {
  constructor(message, details = {}) {
    super(message, details);
    /** Whether the capability ran out (rather than being revoked). */
    this.expired = details.expired ?? false;
  }
}
CapabilityRevoked.code = "capability_revoked";
export class InsufficientCredit extends TupleSpaceError {
  constructor(message, details = {}) {
    super(message, details);
    /** The account that could not pay, and the amounts (`Credit`). */
    this.principal = details.principal ?? null;
    this.needed = details.needed ?? null;
    this.available = details.available ?? null;
  }
}
InsufficientCredit.code = "insufficient_credit";
export class LimitReached extends TupleSpaceError {
  constructor(message, details = {}) {
    super(message, details);
    /** Seconds to wait before asking again, when the server said (`rate_limited`). */
    this.retryAfter = details.retryAfter ?? null;
  }
}
LimitReached.code = "limit_reached";
export class SpaceFull extends LimitReached {}
SpaceFull.code = "space_full";
export class EventsLost extends TupleSpaceError {
  /**
   * @param {number} firstMissing the sequence number of the first event that cannot be delivered
   * @param {number} oldestAvailable the oldest the log still holds; the subscription goes on there
   */
  constructor(firstMissing, oldestAvailable, details = {}) {
    super(
      `events from ${firstMissing} to ${oldestAvailable - 1} are no longer in the event log; ` +
        `the oldest available is ${oldestAvailable}`,
      details,
    );
    this.firstMissing = firstMissing;
    this.oldestAvailable = oldestAvailable;
  }
}
EventsLost.code = "events_lost";
export class TransactionError extends TupleSpaceError {}
export class TransactionAborted extends TransactionError {}
TransactionAborted.code = "transaction_aborted";
export class StoreError extends TupleSpaceError {}
StoreError.code = "store_error";
export class NotSupported extends TupleSpaceError {}
NotSupported.code = "not_supported";
export class SpaceClosed extends TupleSpaceError {}
export class Unreachable extends TupleSpaceError {}

for (const kind of [
  TupleSpaceError,
  Timeout,
  InvalidValue,
  UnsupportedType,
  ValueTooLarge,
  InvalidTemplate,
  WireError,
  Unauthorized,
  Forbidden,
  NotFound,
  UnknownLease,
  Conflict,
  RecordNotFound,
  RecordExists,
  RecordInUse,
  ContainmentCycle,
  NotAllowed,
  CapabilityRevoked,
  InsufficientCredit,
  LimitReached,
  SpaceFull,
  EventsLost,
  TransactionError,
  TransactionAborted,
  StoreError,
  NotSupported,
  SpaceClosed,
  Unreachable,
]) {
  Object.defineProperty(kind.prototype, "name", { value: kind.name, writable: true, configurable: true });
}

/** Prefix `part` to the path of `error` (errors are thrown innermost first). */
function at(error, part) {
  error.path = part + error.path;
  error.message = `${error.path}: ${reasons.get(error)}`;
  return error;
}

/** The same error about the part of a request named `field` (`tuple`, `template`, `tuples[2]`). */
function about(error, field) {
  error.field = field + error.path;
  error.message = `${error.field}: ${reasons.get(error)}`;
  return error;
}

// -- values ------------------------------------------------------------------------------------

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const INT_BITS = 1024;
const INT_LIMIT = 1n << 1024n; // ints are below this in magnitude
const MAX_INT_DIGITS = 309; // decimal digits of 2**1024
const MAX_CREDIT_DIGITS = 40;
const MAX_CREDIT_TEXT = 100;
const MAX_URI = 8192;
const MAX_PATTERN = 4096;
const MAX_ONE_OF = 1024;
const MAX_NESTING = 100; // the deepest the codec goes whatever the limits, as in every binding

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
function parseTime(text) {
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
function creditText(text) {
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

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v) {
  if (v === null) return "null";
  if (typeof v === "object") return v.constructor?.name ? `a ${v.constructor.name}` : "an object";
  return `a ${typeof v}`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkWellFormed(s, kind) {
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

// -- templates ---------------------------------------------------------------------------------

class Any {
  toString() {
    return "ANY";
  }
}

/** The template field that matches every value. */
export const ANY = Object.freeze(new Any());

const FORMALS = ["null", "bool", "int", "float", "str", "bytes", "time", "uri", "credit", "tuple", "map"];

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

// -- encoding ----------------------------------------------------------------------------------

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
const inOrder = new WeakSet();

/**
 * The canonical text of parsed JSON (strings escaped as JSON.stringify does, keys sorted
 * except in the objects of `inOrder`).
 */
function stringify(w) {
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

function keyPath(key) {
  return `[${JSON.stringify(key)}]`;
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function tooDeep(maximum) {
  return new ValueTooLarge(`nesting is deeper than ${maximum}`, { limit: "max_depth", maximum });
}

/** The parsed-JSON form of a value; throws InvalidValue (or a subclass) naming the path. */
function toWire(v, depth) {
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
function define(obj, key, value) {
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

function templateToWire(template) {
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

function fieldToWire(f, depth) {
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

// -- decoding ----------------------------------------------------------------------------------

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

function creditFrom(payload) {
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

function quote(s) {
  return JSON.stringify(String(s).slice(0, 60));
}

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
class Decoder {
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
const RECEIVED = { maxFields: 2 ** 30, maxDepth: 1 << 10, maxBytes: Infinity };

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

function tupleFromWire(o) {
  const t = new Decoder(RECEIVED).value(o, 0);
  if (!Array.isArray(t)) throw new WireError(`the server answered ${typeName(t)} where a tuple belongs`);
  return t;
}

// -- arguments ---------------------------------------------------------------------------------

function checkLease(lease, field = "lease") {
  if (lease === undefined || lease === null || lease === Infinity) return null;
  if (typeof lease !== "number" || !(lease > 0)) {
    throw new InvalidValue(`${field} must be a positive number of seconds or null, got ${lease}`, { field });
  }
  return lease;
}

function checkTimeout(timeout) {
  if (timeout === undefined || timeout === null || timeout === Infinity) return null;
  if (typeof timeout !== "number" || !(timeout >= 0)) {
    throw new InvalidValue(`timeout must be a number of seconds >= 0 or null, got ${timeout}`, { field: "timeout" });
  }
  return timeout;
}

function checkLimit(limit) {
  if (limit === undefined || limit === null) return null;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new InvalidValue(`limit must be an integer >= 0 or null, got ${limit}`, { field: "limit" });
  }
  return limit;
}

const EVENT_KINDS = ["cancel", "expire", "take", "write"];
const SUBSCRIPTION_KINDS = [...EVENT_KINDS, "present"]; // present: with `existing`

const CHANGE_KINDS = ["create", "destroy", "expire", "move", "update"];

function checkKinds(events, all = EVENT_KINDS) {
  const kinds = [...new Set(typeof events === "string" ? [events] : (events ?? all))].sort();
  if (kinds.length === 0 || !kinds.every((k) => all.includes(k))) {
    throw new InvalidValue(`events must be a non-empty list of ${all.join(", ")}, got ${kinds.join(", ")}`, {
      field: "events",
    });
  }
  return kinds;
}

function checkExisting(existing, since) {
  if (typeof existing !== "boolean") {
    throw new InvalidValue(`existing must be true or false, got ${existing}`, { field: "existing" });
  }
  if (existing && since !== undefined && since !== null) {
    throw new InvalidValue("existing starts a subscription with the tuples present, since resumes one: give one of them", {
      field: "existing",
    });
  }
  return existing;
}

function checkSince(since) {
  if (since === undefined || since === null) return null;
  if (!Number.isSafeInteger(since) || since < 0) {
    throw new InvalidValue(`since must be an event sequence number >= 0, got ${since}`, { field: "since" });
  }
  return since;
}

function tupleWire(t, field = "tuple") {
  try {
    if (!Array.isArray(t)) throw new UnsupportedType(`a tuple is an array, not ${describe(t)}`);
    return toWire(t, 0);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, field) : error;
  }
}

function tuplesWire(tuples) {
  if (tuples === null || typeof tuples !== "object" || typeof tuples[Symbol.iterator] !== "function") {
    throw new UnsupportedType(`tuples are an array of tuples, not ${describe(tuples)}`, { field: "tuples" });
  }
  return [...tuples].map((t, i) => tupleWire(t, `tuples[${i}]`));
}

function valueWire(value, field) {
  try {
    return toWire(value, 0);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, field) : error;
  }
}

function fieldsWire(fields) {
  if (!isPlainObject(fields)) {
    throw new UnsupportedType(`fields are a plain object of tags and values, not ${describe(fields)}`, {
      field: "fields",
    });
  }
  const wire = valueWire(fields, "fields");
  inOrder.add(wire);
  return wire;
}

function recordTemplateWire(template) {
  try {
    if (!isPlainObject(template)) {
      throw new InvalidTemplate(
        `a record template is a plain object of tags and template fields, not ${describe(template)}`,
      );
    }
    return fieldToWire(template, 0);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, "template") : error;
  }
}

/** An amount of credit as a request carries it: a `Credit`, decimal text, a BigInt or an integer. */
function creditWire(amount, field) {
  if (amount === undefined || amount === null) return null;
  try {
    if (amount instanceof Credit) return { $credit: amount.text };
    if (typeof amount === "number") {
      if (!Number.isSafeInteger(amount)) {
        throw new InvalidValue(
          `an amount of credit in a number is a whole number; write others as text, got ${amount}`,
        );
      }
      return { $credit: new Credit(BigInt(amount)).text };
    }
    return { $credit: new Credit(amount).text };
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, field) : error;
  }
}

function checkPath(path, field = "path") {
  if (typeof path !== "string") {
    throw new InvalidValue(`a record's path is a string like "sensors/kitchen", not ${describe(path)}`, { field });
  }
  return path;
}

function checkRef(ref) {
  if (ref instanceof Uri) return ref.text;
  if (ref instanceof Record) return ref.address.text;
  if (typeof ref !== "string" || ref === "") {
    throw new InvalidValue(`a record is named by a path, an address or "$", not ${describe(ref)}`, { field: "ref" });
  }
  return ref;
}

function templateWire(template) {
  try {
    return templateToWire(template);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, "template") : error;
  }
}

// -- HTTP --------------------------------------------------------------------------------------

// The class of each error code: the table ERRORS of the Python package (src/tuplespace/_errors.py),
// which tests/test_errors.py checks this one against.
const ERRORS = {
  wire_error: WireError,
  invalid_value: InvalidValue,
  bad_request: InvalidValue,
  unsupported_type: UnsupportedType,
  invalid_template: InvalidTemplate,
  value_too_large: ValueTooLarge,
  unauthorized: Unauthorized,
  forbidden: Forbidden,
  not_found: NotFound,
  unknown_claim: NotFound,
  unknown_lease: UnknownLease,
  unknown_transaction: TransactionError,
  transaction_aborted: TransactionAborted,
  transaction_ended: TransactionError,
  space_exists: Conflict,
  token_exists: Conflict,
  limit_reached: LimitReached,
  rate_limited: LimitReached,
  space_full: SpaceFull,
  store_error: StoreError,
  not_supported: NotSupported,
  shutting_down: SpaceClosed,
  record_not_found: RecordNotFound,
  record_exists: RecordExists,
  record_in_use: RecordInUse,
  containment_cycle: ContainmentCycle,
  not_allowed: NotAllowed,
  capability_revoked: CapabilityRevoked,
  insufficient_credit: InsufficientCredit,
};

/** The place in a tuple or template that a request's `field` names (`tuple[2]` is `[2]`). */
function pathOf(field) {
  if (typeof field !== "string") return "";
  for (const whole of ["tuple", "template"]) {
    if (field === whole || field.startsWith(whole + "[")) return field.slice(whole.length);
  }
  return "";
}

/** The error of an answer with an error status. */
function errorFromAnswer(status, body, headers, where) {
  let error;
  try {
    error = JSON.parse(body).error;
    if (typeof error?.code !== "string" || typeof error.message !== "string") throw new TypeError();
  } catch {
    return new TupleSpaceError(`${where}: the server answered ${status}: ${body.slice(0, 200)}`, { status });
  }
  const { code, message } = error;
  const details = {
    code,
    status,
    field: typeof error.field === "string" ? error.field : null,
    limit: typeof error.limit === "string" ? error.limit : null,
    maximum: typeof error.maximum === "number" ? error.maximum : null,
  };
  let result;
  if (code === "events_lost") {
    result = new EventsLost(error.first_missing, error.oldest_available, details);
  } else {
    const kind = ERRORS[code] ?? TupleSpaceError;
    const retry = Number(headers?.get("retry-after"));
    result = new kind(message, {
      ...details,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
      ...recordDetails(error),
    });
  }
  result.path = pathOf(details.field);
  if (details.field) result.message = `${details.field}: ${message}`;
  return result;
}

/** The fields of the record errors: not_allowed, capability_revoked, insufficient_credit. */
function recordDetails(error) {
  const amount = (wire) => {
    try {
      const value = new Decoder(RECEIVED).value(wire, 0);
      return value instanceof Credit ? value : null;
    } catch {
      return null;
    }
  };
  return {
    operation: typeof error.operation === "string" ? error.operation : null,
    allowed: Array.isArray(error.allowed) ? error.allowed.filter((op) => typeof op === "string") : [],
    expired: error.expired === true,
    principal: typeof error.principal === "string" ? error.principal : null,
    needed: amount(error.needed),
    available: amount(error.available),
  };
}

// How much longer than the wait it asked for a call waits for the server's answer.
const ANSWER_MARGIN = 30;
// Waits longer than this wait for their answer without a limit (timers cannot be so long).
const LONGEST_ANSWER = 86400;
const now = () => performance.now() / 1000;

/** Requests to one server: its base URL, the token, the fetch function, errors. */
class Http {
  constructor(base, options = {}) {
    this.base = base;
    this.headers =
      options.token === undefined || options.token === null ? {} : { Authorization: `Bearer ${options.token}` };
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.requestTimeout = options.requestTimeout ?? 10;
    this.requests = 0;
  }

  /**
   * Send a request; its JSON answer (null when it has none).
   *
   * `wait`: how long the server may hold it (null: without end). `again`: the request may
   * be sent a second time when the connection fails before an answer (it changes nothing,
   * or takes only under a claim). `signal` (the caller's) and `closing` (the handle's) abort it.
   */
  async request(method, path, body, { wait = 0, again = false, signal, closing } = {}) {
    const url = this.base + path;
    const headers = { ...this.headers };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const content = body === undefined ? undefined : stringify(body);
    const limit =
      wait === null || wait > LONGEST_ANSWER ? null : wait === 0 ? this.requestTimeout : wait + ANSWER_MARGIN;
    for (;;) {
      const controller = new AbortController();
      const timer = limit === null ? null : setTimeout(() => controller.abort(), limit * 1000);
      const stop = () => controller.abort();
      signal?.addEventListener("abort", stop);
      closing?.addEventListener("abort", stop);
      try {
        signal?.throwIfAborted();
        if (closing?.aborted) throw new SpaceClosed("the space was closed");
        this.requests++;
        const response = await this.fetch(url, { method, headers, body: content, signal: controller.signal });
        const answer = await response.text();
        if (response.status >= 400) throw errorFromAnswer(response.status, answer, response.headers, url);
        return answer ? JSON.parse(answer) : null;
      } catch (error) {
        if (error instanceof TupleSpaceError) throw error;
        if (signal?.aborted) throw signal.reason;
        if (closing?.aborted) throw new SpaceClosed("the space was closed while the call was waiting");
        if (controller.signal.aborted) throw new Unreachable(`${url}: no answer in ${limit} s`);
        if (!again) throw new Unreachable(`cannot reach the tuple space server for ${url}: ${error}`, { cause: error });
        again = false;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", stop);
        closing?.removeEventListener("abort", stop);
      }
    }
  }
}

function spacePath(name) {
  return "/spaces/" + encodeURIComponent(name);
}

/** The parts of an http:// or https:// URL without query or fragment. */
function httpUrl(url) {
  let parts;
  try {
    parts = new URL(url);
  } catch {
    throw new InvalidValue(`${quote(url)} is not a URL`, { field: "url" });
  }
  if (parts.protocol !== "http:" && parts.protocol !== "https:") {
    throw new InvalidValue(`${quote(url)} is not an http:// or https:// URL`, { field: "url" });
  }
  if (parts.search || parts.hash) {
    throw new InvalidValue(`${quote(url)}: options are not part of the URL`, { field: "url" });
  }
  return { origin: parts.origin, path: parts.pathname.replace(/\/+$/, "") };
}

/** The server's base URL and the space's name of `http://host:port[/prefix]/spaces/<name>`. */
function parseSpaceUrl(url) {
  const { origin, path } = httpUrl(url);
  const cut = path.lastIndexOf("/spaces/");
  let name = "";
  try {
    name = cut < 0 ? "" : decodeURIComponent(path.slice(cut + "/spaces/".length));
  } catch {
    // a malformed escape: no name
  }
  if (!name || name.includes("/")) {
    throw new InvalidValue(`${quote(url)} names no space: write http://host:port/spaces/<name>`, { field: "url" });
  }
  return { base: origin + path.slice(0, cut), name };
}

// -- spaces ------------------------------------------------------------------------------------

/** Seconds a claim waits for the next take to carry its confirmation before it is sent alone. */
const CONFIRM_DELAY = 1;

/**
 * A space on a server. Made by `connect(url)` or `server.space(name)`; no request is sent
 * until an operation is called (a space is created on first use when the token may).
 */
export class Space {
  #http;
  #path;
  #closing = new AbortController();
  #closed = false;
  #confirmations = [];
  #confirmDelay;
  #confirmTimer = null;
  #transactions = new Set();
  #subscriptions = new Set();
  #stats = { longPollsReissued: 0, claimsConfirmedRiding: 0, claimsConfirmedAlone: 0, claimsLost: 0 };

  /** @internal use connect() or Server.space() */
  constructor(http, name, options = {}) {
    this.#http = http;
    this.#path = spacePath(name);
    this.#confirmDelay = options.confirmDelay ?? CONFIRM_DELAY;
    this.name = name;
    this.url = http.base + this.#path;
  }

  get closed() {
    return this.#closed;
  }

  /** @internal */
  _request(method, path, body, options = {}) {
    if (this.#closed) return Promise.reject(new SpaceClosed("the space was closed"));
    return this.#http.request(method, this.#path + path, body, { ...options, closing: this.#closing.signal });
  }

  /** @internal the requests of this space: its subscriptions open their streams with them */
  _http() {
    return this.#http;
  }

  /** @internal */
  _forget(handle) {
    this.#transactions.delete(handle);
    this.#subscriptions.delete(handle);
  }

  /**
   * Post until the answer holds `key` or says the wait is over: the server cuts a long wait at
   * its long-poll maximum (`more: true`) and it is asked again for the time left.
   * @internal
   */
  async _longPoll(path, body, timeout, key, { again = false, signal } = {}) {
    const wait = checkTimeout(timeout);
    const deadline = wait === null ? null : now() + wait;
    for (;;) {
      const left = deadline === null ? null : Math.max(deadline - now(), 0);
      const answer = await this._request("POST", path, { ...body, timeout: left }, { wait: left, again, signal });
      if ((answer[key] ?? null) !== null || !answer.more) return answer;
      this.#stats.longPollsReissued++;
    }
  }

  // -- writing

  /**
   * Write a tuple; its Lease. `lease`: seconds to keep it (null: until taken). Into a full
   * space it waits for room up to `timeout` (0: SpaceFull at once, else Timeout after it).
   */
  async write(tuple, { lease, timeout, signal } = {}) {
    const body = { tuple: tupleWire(tuple), lease: checkLease(lease) };
    let answer;
    try {
      answer = await this._longPoll("/write", body, timeout, "lease", { signal });
    } catch (error) {
      if (!(error instanceof SpaceFull) || timeout === 0) throw error;
      // A write that waited and found no room ran out of time.
      throw new Timeout("the space stayed full: no room for the tuple in time");
    }
    return this.#lease(answer.lease);
  }

  /** Write several tuples at once, all or none (never waits for room); their leases. */
  async writeMany(tuples, { lease, signal } = {}) {
    const body = { tuples: tuplesWire(tuples), lease: checkLease(lease) };
    const answer = await this._request("POST", "/write_many", body, { signal });
    return answer.leases.map((l) => this.#lease(l));
  }

  #lease(wire) {
    return new Lease(this, wire.id, wire.expires_at);
  }

  // -- reading and taking

  /** The first tuple matching `template`, left in the space; Timeout after `timeout` s. */
  async read(template, { timeout, signal } = {}) {
    return found(await this._read("", template, timeout, signal), template);
  }

  /** The first tuple matching `template`, removed from the space; Timeout after `timeout` s. */
  async take(template, { timeout, signal } = {}) {
    return found(await this.#take(template, timeout, signal), template);
  }

  /** A matching tuple, or null at once. */
  tryRead(template, { signal } = {}) {
    return this._read("", template, 0, signal);
  }

  /** A matching tuple taken, or null at once. */
  tryTake(template, { signal } = {}) {
    return this.#take(template, 0, signal);
  }

  /**
   * Every matching tuple (at most `limit`). The server answers so many at a time (its
   * `max_results` and `max_answer`): the answers are gathered, each read on from the cursor
   * where the one before stopped. With a `timeout` (seconds; null: forever) it waits for a
   * first match when there is none, then reads every match; [] if none came in time. Absent
   * or 0: never waits.
   */
  readAll(template, { limit, timeout = 0, signal } = {}) {
    return this._all("", "/read_all", template, limit, timeout, signal);
  }

  /**
   * Every matching tuple (at most `limit`), taken under a claim, as `take`'s. With a `timeout`
   * (seconds; null: forever) it waits for matches when there are none: the first write that
   * brings some (a writeMany: all of them) answers with up to `limit`; [] if none came in time.
   * Absent or 0: never waits.
   */
  takeAll(template, { limit, timeout = 0, signal } = {}) {
    return this._all("", "/take_all", template, limit, timeout, signal);
  }

  /** How many tuples match. */
  count(template, { signal } = {}) {
    return this._count("", template, signal);
  }

  /** @internal */
  async _read(prefix, template, timeout, signal) {
    const body = { template: templateWire(template) };
    const answer = await this._longPoll(prefix + "/read", body, timeout, "tuple", { again: true, signal });
    return answer.tuple === null ? null : tupleFromWire(answer.tuple);
  }

  /** Take under a claim; the claims of earlier takes ride along to be confirmed. */
  async #take(template, timeout, signal) {
    const answer = await this.#claiming("/take", { template: templateWire(template) }, "tuple", timeout, signal);
    return answer.tuple === null ? null : tupleFromWire(answer.tuple);
  }

  /** Post a take under a claim; asks again while the server cuts the wait short. */
  async #claiming(path, fields, key, timeout, signal) {
    const wait = checkTimeout(timeout);
    const deadline = wait === null ? null : now() + wait;
    for (;;) {
      const left = deadline === null ? null : Math.max(deadline - now(), 0);
      const answer = await this.#claim(path, { ...fields, timeout: left }, left, signal);
      if (answer[key] !== null || !answer.more) return answer;
      this.#stats.longPollsReissued++;
    }
  }

  /** Post a take (or takeAll) under a claim, with the claims of earlier takes riding along to
   * be confirmed; keep the new claim to confirm later. */
  async #claim(path, fields, wait, signal) {
    const confirm = this.#confirmations.splice(0);
    let answer;
    try {
      answer = await this._request(
        "POST",
        path,
        { ...fields, claim: true, confirm: confirm.length ? confirm : undefined },
        { wait, again: true, signal },
      );
    } catch (error) {
      this.#confirmations.unshift(...confirm);
      throw error;
    }
    const lost = new Set(answer.unconfirmed ?? []);
    this.#stats.claimsConfirmedRiding += confirm.length - lost.size;
    this.#stats.claimsLost += lost.size;
    if (answer.claim) {
      this.#confirmations.push(answer.claim.id);
      this.#confirmTimer ??= setTimeout(() => {
        this.#confirmTimer = null;
        this.#confirmPending();
      }, this.#confirmDelay * 1000);
    }
    return answer;
  }

  /** Confirm, one request each, the claims no take has carried. */
  async #confirmPending() {
    for (let claims; (claims = this.#confirmations.splice(0)).length;) {
      for (const [i, id] of claims.entries()) {
        try {
          // Not cut by closing: a take answered while the handle closes is confirmed too.
          await this.#http.request("POST", `${this.#path}/claims/${encodeURIComponent(id)}/confirm`, undefined, {
            again: true,
          });
          this.#stats.claimsConfirmedAlone++;
        } catch (error) {
          if (error instanceof NotFound) {
            this.#stats.claimsLost++; // it ran out: what it took went back and may be taken again
            continue;
          }
          this.#confirmations.unshift(...claims.slice(i));
          this.#confirmTimer ??= setTimeout(() => {
            this.#confirmTimer = null;
            this.#confirmPending();
          }, this.#confirmDelay * 1000);
          return;
        }
      }
    }
  }

  /**
   * `readAll` or `takeAll`. A server answers so many tuples at a time (then `more`): a read
   * goes on from the cursor of the answer before, a take is asked again, each for the limit
   * left, until the last answer. A read in a transaction has no cursor, so it throws
   * LimitReached instead. A takeAll outside a transaction is claimed, as take is. With a
   * `timeout`, the first answer is a long poll, asked again for the time left while the server
   * cuts the wait short (an answer with no tuples and `more`).
   * @internal
   */
  async _all(prefix, operation, template, limit, timeout, signal) {
    const body = { template: templateWire(template), limit: checkLimit(limit) };
    const wait = checkTimeout(timeout);
    const deadline = wait === null ? null : now() + wait;
    const reading = operation === "/read_all";
    const claiming = !reading && !prefix; // a transaction holds what it takes
    const out = [];
    for (;;) {
      const left = out.length || wait === 0 ? 0 : deadline === null ? null : Math.max(deadline - now(), 0);
      const fields = left === 0 ? body : { ...body, timeout: left };
      const answer = claiming
        ? await this.#claim(operation, fields, left, signal)
        : await this._request("POST", prefix + operation, fields, { wait: left, again: reading, signal });
      if (left !== 0 && !answer.tuples.length && answer.more) {
        this.#stats.longPollsReissued++;
        continue;
      }
      for (const t of answer.tuples) out.push(tupleFromWire(t));
      if (!answer.more) return out;
      if (reading) {
        if (answer.cursor === undefined) {
          throw new LimitReached(
            `the server answered ${out.length} tuples at once (its max_results or max_answer) and more match, ` +
              "past where it can go on: read them with a limit",
            { limit: "max_results", maximum: out.length },
          );
        }
        body.cursor = answer.cursor;
      }
      if (body.limit !== null) body.limit = limit - out.length;
    }
  }

  /** @internal */
  async _count(prefix, template, signal) {
    const answer = await this._request(
      "POST",
      prefix + "/count",
      { template: templateWire(template) },
      { again: true, signal },
    );
    return answer.count;
  }

  // -- atomic compound operations

  /** Take the first match and write `tuple` in its place, in one step; the old tuple. */
  async replace(template, tuple, { lease, timeout, signal } = {}) {
    const body = { template: templateWire(template), tuple: tupleWire(tuple), lease: checkLease(lease) };
    const answer = await this._longPoll("/replace", body, timeout, "tuple", { signal });
    return found(answer.tuple === null ? null : tupleFromWire(answer.tuple), template);
  }

  /** Write `tuple` only if no tuple matches `template`, in one step; whether it wrote. */
  async writeIfAbsent(template, tuple, { lease, signal } = {}) {
    const body = { template: templateWire(template), tuple: tupleWire(tuple), lease: checkLease(lease) };
    return (await this._request("POST", "/write_if_absent", body, { signal })).written;
  }

  // -- events and transactions

  /**
   * Subscribe to the events of tuples matching `template` (`ANY` alone: every tuple, whatever
   * its arity): resolves once the subscription is in place, to an async iterator of events
   * `{seq, kind, tuple, time}`.
   *
   * `events`: the kinds (`write`, `take`, `expire`, `cancel`; all by default). `since`: resume
   * after that event (a `seq`); EventsLost when the log no longer holds what came after it.
   * `existing: true`: first an event of kind `present` for every matching tuple already there
   * (its `seq` the last event before the subscription began), then the live events, each
   * tuple once; not with `since`. A broken connection is opened again after the last event
   * received, with the live events only.
   */
  async subscribe(template, { events, since, existing = false, signal } = {}) {
    if (this.#closed) throw new SpaceClosed("the space was closed");
    const subscription = new Subscription(
      this,
      template === ANY ? { $any: true } : templateWire(template),
      checkKinds(events),
      checkSince(since),
      checkExisting(existing, since),
      signal,
    );
    await subscription._open();
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /** Begin a transaction of `lease` seconds (60 by default). */
  async transaction({ lease = 60, signal } = {}) {
    const seconds = checkLease(lease);
    if (seconds === null)
      throw new InvalidValue("a transaction's lease is a positive number of seconds", { field: "lease" });
    const asked = now();
    const answer = await this._request("POST", "/transactions", { lease: seconds }, { signal });
    const tx = new Transaction(this, answer.id, answer.expires_at, asked + seconds);
    this.#transactions.add(tx);
    return tx;
  }

  // -- records

  /**
   * Create a record at `path` with `fields` (a plain object of tags and values); its handle.
   * `credit` (a `Credit`, decimal text, BigInt or integer) and `lease` (seconds) pay for it
   * (docs/records.md#credit); `principal` names the account that pays, the caller's own by
   * default (another needs `admin` on the space). RecordExists if the path is taken,
   * InsufficientCredit if the account cannot pay.
   */
  async create(path, fields, { credit, lease, principal, signal } = {}) {
    const body = {
      path: checkPath(path),
      fields: fieldsWire(fields),
      credit: creditWire(credit, "credit"),
      lease: checkLease(lease),
      principal,
    };
    const answer = await this._request("POST", "/records/create", body, { signal });
    return this._record(answer.record);
  }

  /** @internal the full handle of a record in an answer */
  _record(wire) {
    return new Record(this, addressFrom(wire.address), wire.id ?? null, FULL, null, false);
  }

  /**
   * A handle on a record, by its path, its address (a `Uri` or its text), a capability's
   * address (which needs no token), `"$"` for the root record, or another handle. RecordNotFound if there
   * is none; a moved record's old path opens it at its new address while it redirects.
   */
  async record(ref, { signal } = {}) {
    const answer = await this._request("POST", "/records/open", { ref: checkRef(ref) }, { again: true, signal });
    const h = answer.handle;
    const operations = Object.freeze([...h.operations]);
    return new Record(this, addressFrom(h.address), h.id ?? null, operations, h.expires_at, false);
  }

  /**
   * The records matching a record template (a plain object of tags and template fields),
   * oldest first, below the path `under`, at most `limit`. Needs `read` on the space: a
   * caller holding only capabilities finds nothing.
   */
  async find(template, { under, limit, signal } = {}) {
    const body = { template: recordTemplateWire(template), under: under ?? null, limit: checkLimit(limit) };
    const answer = await this._request("POST", "/records/find", body, { again: true, signal });
    if (answer.more) {
      const n = answer.records.length;
      throw new LimitReached(`the server answers at most ${n} records at once and more match: find them with a limit`, {
        limit: "max_results",
        maximum: n,
      });
    }
    return answer.records.map((r) => this._record(r));
  }

  /** Remove the oldest record matching `template` and return what it held, or null at once. */
  async tryTakeRecord(template, { under, signal } = {}) {
    return this.#takeRecord(template, under, 0, signal);
  }

  /**
   * Remove the oldest record matching `template` and return what it held, waiting up to
   * `timeout` seconds for one (Timeout after). Taken under a claim, as tuples are: a record
   * whose answer is lost goes back to its place.
   */
  async takeRecord(template, { under, timeout, signal } = {}) {
    const taken = await this.#takeRecord(template, under, timeout, signal);
    if (taken === null) throw new Timeout(`no record matched ${stringify(recordTemplateWire(template))} in time`);
    return taken;
  }

  async #takeRecord(template, under, timeout, signal) {
    const body = { template: recordTemplateWire(template), under: under ?? null };
    const answer = await this.#claiming("/records/take", body, "record", timeout, signal);
    return answer.record === null ? null : recordDataFrom(answer.record);
  }

  /**
   * Watch the changes of the records below `under` (all without it): resolves once the watch
   * is in place, to an async iterator of changes `{seq, kind, path, tag, value, version, time}`.
   * `events`: the kinds (`create`, `update`, `move`, `destroy`, `expire`; all by default);
   * `since`: resume after that change. Reconnects and reports lost changes as `subscribe`.
   */
  async watchRecords({ under, events, since, signal } = {}) {
    let query = `?events=${checkKinds(events, CHANGE_KINDS).join(",")}`;
    if (under !== undefined && under !== null) query += `&under=${encodeURIComponent(checkPath(under, "under"))}`;
    return this._watch(query, checkSince(since), false, signal);
  }

  /** @internal open a record watch of the query and keep it with this handle */
  async _watch(query, since, one, signal) {
    if (this.#closed) throw new SpaceClosed("the space was closed");
    const watch = new RecordWatch(this, "/records/events" + query, since, one, signal);
    await watch._open();
    this.#subscriptions.add(watch);
    return watch;
  }

  /** Add `amount` to the credit account of `principal` (needs `admin`); the new balance. */
  async grantCredit(principal, amount, { signal } = {}) {
    const body = { principal, amount: creditWire(amount, "amount") };
    return creditFrom((await this._request("POST", "/credit/grant", body, { signal })).balance.$credit);
  }

  /** The balance of the account of `principal` (another's than the caller's needs `admin`). */
  async account(principal, { signal } = {}) {
    if (typeof principal !== "string" || principal === "") {
      throw new InvalidValue(`a principal is a non-empty string, got ${describe(principal)}`, { field: "principal" });
    }
    const path = "/credit/" + encodeURIComponent(principal);
    return creditFrom((await this._request("GET", path, undefined, { again: true, signal })).balance.$credit);
  }

  // -- statistics and closing

  /**
   * The space's statistics as the server keeps them (docs/semantics.md#statistics), once the
   * takes of this handle are final; `closed` says whether this handle is closed.
   */
  async statistics({ signal } = {}) {
    if (!this.#closed) await this.#flush();
    const answer = await this.#http.request("GET", this.#path, undefined, { again: true, signal });
    return { ...answer.statistics, closed: this.#closed };
  }

  /** What this handle did: requests, long polls asked again, claims; asks the server nothing. */
  clientStatistics() {
    return {
      requests: this.#http.requests,
      ...this.#stats,
      unconfirmedClaims: this.#confirmations.length,
      closed: this.#closed,
    };
  }

  async #flush() {
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = null;
    await this.#confirmPending();
  }

  /**
   * Close this handle: the claims it received are confirmed, its open transactions abort, its
   * subscriptions end, and calls still waiting reject with SpaceClosed. The space stays.
   */
  async close() {
    if (this.#closed) return;
    await this.#flush();
    for (const tx of [...this.#transactions]) {
      await tx.abort().catch(() => {}); // its lease ends it otherwise
    }
    this.#closed = true;
    this.#closing.abort();
    for (const sub of [...this.#subscriptions]) sub.close();
  }
}

function found(t, template) {
  if (t === null) throw new Timeout(`no tuple matched ${encodeTemplate(template)} in time`);
  return t;
}

/** The lease of a written tuple: `expiresAt` is seconds since the epoch, or null (forever). */
export class Lease {
  #space;

  /** @internal */
  constructor(space, id, expiresAt) {
    this.#space = space;
    this.id = id;
    this.expiresAt = expiresAt;
  }

  /** Keep the tuple `seconds` from now (null: forever); UnknownLease once it is gone. */
  async renew(seconds, { signal } = {}) {
    const answer = await this.#space._request(
      "POST",
      `/leases/${this.id}/renew`,
      { lease: checkLease(seconds) },
      { signal },
    );
    this.expiresAt = answer.expires_at;
  }

  /** Remove the tuple now; UnknownLease once it is gone. */
  async cancel({ signal } = {}) {
    await this.#space._request("DELETE", `/leases/${this.id}`, undefined, { signal });
  }
}

/**
 * A transaction: the operations of a space, private until `commit()`; `abort()` puts every
 * taken tuple back. Its lease runs out unless renewed, and then it aborts by itself.
 */
export class Transaction {
  #space;
  #prefix;
  #state = "active";
  #ends; // when the lease runs out, on this side's clock

  /** @internal use Space.transaction() */
  constructor(space, id, expiresAt, ends) {
    this.#space = space;
    this.#prefix = `/transactions/${encodeURIComponent(id)}`;
    this.#ends = ends;
    this.id = id;
    this.expiresAt = expiresAt;
  }

  /** `"active"`, `"committed"` or `"aborted"` (also once its lease ran out). */
  get state() {
    if (this.#state === "active" && now() >= this.#ends) this.#ended("aborted");
    return this.#state;
  }

  #ended(state) {
    this.#state = state;
    this.#space._forget(this);
  }

  #ready() {
    const state = this.state;
    if (state === "aborted") throw new TransactionAborted("the transaction was aborted");
    if (state === "committed") throw new TransactionError("the transaction has ended: it was committed");
    return this.#prefix;
  }

  async #watch(operation) {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof TransactionAborted) this.#ended("aborted");
      throw error;
    }
  }

  /** Write `tuple` at commit; its `lease` counts from then. */
  async write(tuple, { lease, signal } = {}) {
    const body = { tuple: tupleWire(tuple), lease: checkLease(lease) };
    await this.#watch(() => this.#space._request("POST", this.#ready() + "/write", body, { signal }));
  }

  /** Write several tuples at commit. */
  async writeMany(tuples, { lease, signal } = {}) {
    const body = { tuples: tuplesWire(tuples), lease: checkLease(lease) };
    await this.#watch(() => this.#space._request("POST", this.#ready() + "/write_many", body, { signal }));
  }

  async read(template, { timeout, signal } = {}) {
    return found(await this.#watch(() => this.#space._read(this.#ready(), template, timeout, signal)), template);
  }

  async take(template, { timeout, signal } = {}) {
    return found(await this.#take(template, timeout, signal), template);
  }

  tryRead(template, { signal } = {}) {
    return this.#watch(() => this.#space._read(this.#ready(), template, 0, signal));
  }

  tryTake(template, { signal } = {}) {
    return this.#take(template, 0, signal);
  }

  // No claim: a tuple taken in a transaction is held by it, and returns if it aborts.
  async #take(template, timeout, signal) {
    const body = { template: templateWire(template) };
    const answer = await this.#watch(() =>
      this.#space._longPoll(this.#ready() + "/take", body, timeout, "tuple", { signal }),
    );
    return answer.tuple === null ? null : tupleFromWire(answer.tuple);
  }

  readAll(template, { limit, timeout = 0, signal } = {}) {
    return this.#watch(() => this.#space._all(this.#ready(), "/read_all", template, limit, timeout, signal));
  }

  takeAll(template, { limit, timeout = 0, signal } = {}) {
    return this.#watch(() => this.#space._all(this.#ready(), "/take_all", template, limit, timeout, signal));
  }

  count(template, { signal } = {}) {
    return this.#watch(() => this.#space._count(this.#ready(), template, signal));
  }

  /** Make the takes final and the writes visible, atomically. */
  async commit({ signal } = {}) {
    await this.#watch(() => this.#space._request("POST", this.#ready() + "/commit", undefined, { signal }));
    this.#ended("committed");
  }

  /** Drop the writes and put every taken tuple back; nothing happens once it has ended. */
  async abort({ signal } = {}) {
    if (this.state !== "active") return;
    try {
      await this.#space._request("POST", this.#prefix + "/abort", undefined, { signal });
    } catch (error) {
      if (!(error instanceof TransactionError)) throw error; // else it had ended on the server
    }
    this.#ended("aborted");
  }

  /** Give the transaction `seconds` more from now. */
  async renew(seconds, { signal } = {}) {
    const lease = checkLease(seconds);
    if (lease === null)
      throw new InvalidValue("a transaction's lease is a positive number of seconds", { field: "lease" });
    const asked = now();
    const answer = await this.#watch(() =>
      this.#space._request("POST", this.#ready() + "/renew", { lease }, { signal }),
    );
    this.expiresAt = answer.expires_at;
    this.#ends = asked + lease;
  }
}

// -- records -----------------------------------------------------------------------------------

// What a full handle may do: every operation, move the record and make capabilities.
const FULL = Object.freeze(["capability", "clone", "destroy", "move", "read", "refresh", "set", "watch"]);
const COMPUTED = ["$credit", "$lifetime", "$refcount", "$level"];

function valueFrom(wire) {
  return new Decoder(RECEIVED).value(wire, 0);
}

function addressFrom(wire) {
  const address = valueFrom(wire);
  if (!(address instanceof Uri)) {
    throw new WireError(`the server answered ${typeName(address)} where an address belongs`);
  }
  return address;
}

/** The fields of a record in an answer, as a plain object in the order its tags were first set. */
function fieldsFrom(wire) {
  const fields = valueFrom(wire.fields);
  const out = {};
  for (const tag of wire.tags) define(out, tag, fields[tag]);
  return out;
}

/** What a record held: `{address, version, tags, fields}`. */
function recordDataFrom(wire) {
  return { address: addressFrom(wire.address), version: wire.version, tags: [...wire.tags], fields: fieldsFrom(wire) };
}

/**
 * A handle on a record of a space (docs/records.md). Made by `space.create()`,
 * `space.record()`, `space.find()`, `clone()`, `capability()` and `readOnly()`.
 *
 * A full handle names its record by the record's number on the server: it follows the
 * record through moves, and fails with RecordNotFound once the record is gone, even if
 * another record takes its path. Its `address` is the one it knows: the record's when the
 * handle was made, or after a `move()` through it. A capability is named by its own address,
 * which is all a request needs: it works without any token, for what it allows.
 */
export class Record {
  #space;
  #id;
  #owner; // made by capability() or readOnly(): it may revoke itself

  /** @internal */
  constructor(space, address, id, operations, expiresAt, owner) {
    this.#space = space;
    this.#id = id;
    this.#owner = owner;
    /** The record's address for a full handle, the capability's for a capability (a `Uri`). */
    this.address = address;
    /** What this handle allows, sorted. */
    this.operations = operations;
    /** When this capability ends (seconds since the epoch); null: never, and for a full handle. */
    this.expiresAt = expiresAt;
  }

  /** Whether this handle is a capability (whose address is `…/$cap/<token>`). */
  get isCapability() {
    return this.#id === null && this.address.text.includes("/$cap/");
  }

  #body(fields = {}) {
    const body = { ref: this.address.text, ...fields };
    if (this.#id !== null) body.id = this.#id;
    return body;
  }

  #post(operation, body, signal, again = false) {
    return this.#space._request("POST", "/records/" + operation, body, { again, signal });
  }

  // -- reading

  /**
   * One field (GetValue), or a computed tag: `$PK`, `$version`, `$credit`, `$lifetime`,
   * `$refcount`, `$level`. `default` for a tag the record does not hold (else null).
   */
  async get(tag, { default: otherwise, signal } = {}) {
    const body = this.#body({ tags: [tag] });
    if (otherwise !== undefined && otherwise !== null) body.default = valueWire(otherwise, "default");
    return valueFrom((await this.#post("get", body, signal, true)).values[0]);
  }

  /** Several fields at one instant, in the order asked. */
  async view(...tags) {
    if (tags.length === 0) return [];
    return (await this.#post("get", this.#body({ tags }), undefined, true)).values.map(valueFrom);
  }

  /** Every stored field, as a plain object. */
  async all({ signal } = {}) {
    return (await this.snapshot({ signal })).fields;
  }

  /** The stored tags (ListTags), in the order they were first set. */
  async tags({ signal } = {}) {
    return (await this.snapshot({ signal })).tags;
  }

  /**
   * The record at one instant: `{address, version, tags, fields, computed}`, `computed`
   * holding `$credit`, `$lifetime`, `$refcount` and `$level` (none for the root record).
   */
  async snapshot({ signal } = {}) {
    const wire = (await this.#post("get", this.#body(), signal, true)).record;
    const computed = {};
    for (const tag of COMPUTED) {
      if (Object.hasOwn(wire.computed, tag)) computed[tag] = valueFrom(wire.computed[tag]);
    }
    return { ...recordDataFrom(wire), computed };
  }

  // -- changing

  /** Set one field, atomically (SetValue); the record's new `$version`. */
  async set(tag, value, { signal } = {}) {
    return (await this.#post("set", this.#body({ tag, value: valueWire(value, "value") }), signal)).version;
  }

  /**
   * Refinance (Refresh): add `credit`, or keep the record `lease` more seconds, paid by
   * `principal` as for `space.create()`. When it expires now (seconds since the epoch), or null.
   */
  async refresh({ credit, lease, principal, signal } = {}) {
    const body = this.#body({ credit: creditWire(credit, "credit"), lease: checkLease(lease), principal });
    return (await this.#post("refresh", body, signal)).expires_at;
  }

  /** A new record at `path` with the same fields, paid as `space.create()`; its full handle. */
  async clone(path, { credit, lease, principal, signal } = {}) {
    const body = this.#body({
      path: checkPath(path),
      credit: creditWire(credit, "credit"),
      lease: checkLease(lease),
      principal,
    });
    return this.#space._record((await this.#post("clone", body, signal)).record);
  }

  /**
   * Give the record a new path; its new `$version`. The old path redirects to it for
   * `redirectLease` seconds (3600; 0: no redirection; null: as long as the record lives).
   */
  async move(path, { redirectLease = 3600, signal } = {}) {
    const redirect = redirectLease === 0 ? 0 : checkLease(redirectLease, "redirect_lease");
    const answer = await this.#post("move", this.#body({ path: checkPath(path), redirect_lease: redirect }), signal);
    this.address = addressFrom(answer.address);
    return answer.version;
  }

  /** Remove the record; RecordInUse if another contains it, unless `force` (their fields become null). */
  async destroy({ force = false, signal } = {}) {
    await this.#post("destroy", this.#body({ force: force === true }), signal);
  }

  // -- capabilities

  #capability(answer) {
    const operations = Object.freeze([...answer.operations]);
    return new Record(this.#space, addressFrom(answer.address), null, operations, answer.expires_at, true);
  }

  /** The record's `$RO` handle: a capability that can read and watch, the same one until revoked. */
  async readOnly({ signal } = {}) {
    return this.#capability(await this.#post("read_only", this.#body(), signal));
  }

  /**
   * A capability granting `operations` (some of `read`, `set`, `refresh`, `clone`,
   * `destroy`, `watch`) for `lease` seconds (absent or null: until revoked).
   */
  async capability(operations, { lease, signal } = {}) {
    const ops = [...new Set(typeof operations === "string" ? [operations] : operations)].sort();
    const body = this.#body({ operations: ops, lease: checkLease(lease) });
    return this.#capability(await this.#post("capability", body, signal));
  }

  /** End this capability: only the handle `capability()` or `readOnly()` returned may. */
  async revoke({ signal } = {}) {
    if (!this.isCapability) {
      throw new NotAllowed("a full handle cannot be revoked; revoke the capabilities made from it", {
        operation: "revoke",
        allowed: this.operations,
      });
    }
    if (!this.#owner) {
      throw new NotAllowed("only the handle that capability() or readOnly() returned can revoke the capability", {
        operation: "revoke",
        allowed: this.operations,
      });
    }
    await this.#post("revoke", { ref: this.address.text }, signal);
  }

  // -- watching

  /**
   * Watch the record's changes, in order (the upcall): resolves once the watch is in place,
   * to an async iterator of changes that ends after the record's `destroy` or `expire`.
   * `since`: resume after that change.
   */
  watch({ since, signal } = {}) {
    let query = `?ref=${encodeURIComponent(this.address.text)}`;
    if (this.#id !== null) query += `&id=${this.#id}`;
    return this.#space._watch(query, checkSince(since), true, signal);
  }
}

// -- events ------------------------------------------------------------------------------------

const RECONNECT_DELAYS = [0, 0.05, 0.1, 0.25, 0.5, 1, 2];
// Errors after which a subscription cannot go on: its space is gone, its token may no
// longer read it, or the server refuses where it would resume (a space made anew, whose
// events have not reached it yet).
const FINAL = [NotFound, Unauthorized, Forbidden, InvalidValue];

/**
 * A stream of events from the server (Server-Sent Events), resumed after the last event
 * received when its connection breaks: what subscriptions and record watches share.
 * @internal
 */
class EventStream {
  #space;
  #route;
  #received; // where to resume: the id of the last whole message
  #signal;
  #closed = false;
  #controller = null;
  #reader = null;
  #buffer = "";
  #decoder = null;
  #message = { event: "", data: [], id: null };
  #pending = null; // a message read while opening, not yet delivered
  #queue = Promise.resolve();
  #wake = null;
  #lastSeq;
  #delivered = 0;
  #reconnects = 0;

  /** `route`: the stream's path and query below the space's URL. */
  constructor(space, route, since, signal) {
    this.#space = space;
    this.#route = route;
    this.#received = since;
    this.#lastSeq = since ?? 0;
    this.#signal = signal;
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** The seq of the last event delivered: open again with `since` it to resume. */
  get lastSeq() {
    return this.#lastSeq;
  }

  get closed() {
    return this.#closed;
  }

  /** Events delivered, the last one, and how often the stream was opened again. */
  statistics() {
    return { delivered: this.#delivered, lastSeq: this.#lastSeq, closed: this.#closed, reconnects: this.#reconnects };
  }

  /** @internal */
  async _open() {
    this.#signal?.throwIfAborted();
    try {
      await this.#connect();
    } catch (error) {
      throw this.#signal?.aborted ? this.#signal.reason : error;
    }
    if (this.#pending?.event === "lost") {
      const lost = this.#pending;
      this.close();
      throw lostError(lost.data);
    }
  }

  /**
   * Open the stream after the last event received, and read the server's first message: a
   * greeting once the subscription is in place, or the news that events were lost.
   */
  async #connect() {
    const http = this.#space._http();
    const headers = { ...http.headers, Accept: "text/event-stream" };
    if (this.#received !== null) headers["Last-Event-ID"] = String(this.#received);
    const controller = new AbortController();
    this.#controller = controller;
    const timer = setTimeout(() => controller.abort(), http.requestTimeout * 1000);
    const url = this.#space.url + this.#route;
    try {
      let response;
      try {
        http.requests++;
        response = await http.fetch(url, { headers, signal: controller.signal });
      } catch (error) {
        throw this.#closed
          ? new SpaceClosed("the subscription was closed")
          : new Unreachable(`cannot reach ${url}: ${error}`, { cause: error });
      }
      if (response.status >= 400) throw errorFromAnswer(response.status, await response.text(), response.headers, url);
      this.#reader = response.body.getReader();
      this.#decoder = new TextDecoder();
      this.#buffer = "";
      this.#message = { event: "", data: [], id: null };
      const first = await this.#nextMessage();
      if (first.event !== "") this.#pending = first;
    } catch (error) {
      this.#drop();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #drop() {
    this.#controller?.abort();
    this.#controller = null;
    this.#reader = null;
  }

  async #line() {
    for (;;) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end).replace(/\r$/, "");
        this.#buffer = this.#buffer.slice(end + 1);
        return line;
      }
      let chunk;
      try {
        chunk = await this.#reader.read();
      } catch (error) {
        throw this.#closed
          ? new SpaceClosed("the subscription was closed")
          : new Unreachable(`the event stream broke: ${error}`, { cause: error });
      }
      if (chunk.done) throw new Unreachable("the event stream ended");
      this.#buffer += this.#decoder.decode(chunk.value, { stream: true });
    }
  }

  /** The next message of the stream, `{event: ""}` for a comment between messages. */
  async #nextMessage() {
    for (;;) {
      const line = await this.#line();
      const m = this.#message;
      if (line === "") {
        // The id counts once its message is whole: a stream cut inside a message resumes before it.
        if (m.id !== null) this.#received = m.id;
        this.#message = { event: "", data: [], id: null };
        if (m.data.length) return { event: m.event || "message", data: m.data.join("\n") };
        continue;
      }
      if (line.startsWith(":")) {
        if (!m.data.length && !m.event) return { event: "", data: line.slice(1).trim() };
        continue;
      }
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") m.event = value;
      else if (name === "data") m.data.push(value);
      else if (name === "id" && /^[0-9]+$/.test(value)) m.id = Number(value);
    }
  }

  /** The next event: `{value, done}` as async iterators give. */
  next() {
    const result = this.#queue.then(() => this.#next());
    this.#queue = result.catch(() => {});
    return result;
  }

  async #next() {
    let failures = 0;
    for (;;) {
      let message;
      if (this.#signal?.aborted) throw this.#signal.reason;
      if (this.#closed) return { value: undefined, done: true };
      try {
        if (this.#reader === null) {
          await this.#connect();
          this.#reconnects++;
          failures = 0;
        }
        message = this.#pending ?? (await this.#nextMessage());
        this.#pending = null;
      } catch (error) {
        if (FINAL.some((kind) => error instanceof kind)) {
          this.close();
          throw error;
        }
        this.#drop();
        if (this.#closed) continue;
        await this.#pause(RECONNECT_DELAYS[Math.min(failures, RECONNECT_DELAYS.length - 1)]);
        failures++;
        continue;
      }
      if (message.event === "lost") throw lostError(message.data);
      if (this._kinds.includes(message.event)) {
        const event = this._decode(JSON.parse(message.data));
        this.#delivered++;
        this.#lastSeq = event.seq;
        if (this._ends(event)) this.close(); // the server ends the stream after it
        return { value: event, done: false };
      }
    }
  }

  /** Whether `event` is the last of the stream. */
  _ends() {
    return false;
  }

  /** Wait `seconds`, or less if the subscription is closed meanwhile. */
  #pause(seconds) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, seconds * 1000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** End the stream: iteration ends, the server learns it from the connection closing. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#drop();
    this.#wake?.();
    this.#space._forget(this);
  }

  /** Called when a `for await` loop is left early: closes the stream. */
  async return() {
    this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/**
 * The events of a subscription, `for await (const event of subscription)`: each is
 * `{seq, kind, tuple, time}` (`time` in seconds since the epoch). Iteration ends when the
 * subscription is closed (leaving a `for await` loop closes it). A lost connection is opened
 * again, resuming after the last event received; events the server's log no longer holds
 * reject the next call with EventsLost, and iteration can go on after it.
 */
export class Subscription extends EventStream {
  /** @internal use Space.subscribe() */
  constructor(space, template, kinds, since, existing, signal) {
    const query = `?template=${encodeURIComponent(stringify(template))}&events=${kinds.join(",")}`;
    super(space, "/events" + query + (existing ? "&existing=true" : ""), since, signal);
  }

  /** @internal */
  get _kinds() {
    return SUBSCRIPTION_KINDS;
  }

  /** @internal */
  _decode(body) {
    return { seq: body.seq, kind: body.kind, tuple: tupleFromWire(body.tuple), time: body.time };
  }
}

/**
 * The changes of records, `for await (const change of watch)`: each is `{seq, kind, path,
 * tag, value, version, time}` (docs/records.md#events-and-watching; `value` the fields for
 * `create`, the old path for `move`). Reconnects, resumes and reports lost changes as a
 * Subscription does; the watch of one record ends after its `destroy` or `expire`.
 */
export class RecordWatch extends EventStream {
  #one;

  /** @internal use Space.watchRecords() or Record.watch() */
  constructor(space, route, since, one, signal) {
    super(space, route, since, signal);
    this.#one = one;
  }

  /** @internal */
  get _kinds() {
    return CHANGE_KINDS;
  }

  /** @internal */
  _decode(body) {
    return {
      seq: body.seq,
      kind: body.kind,
      path: body.path,
      tag: body.tag,
      value: valueFrom(body.value),
      version: body.version,
      time: body.time,
    };
  }

  /** @internal */
  _ends(change) {
    return this.#one && (change.kind === "destroy" || change.kind === "expire");
  }
}

function lostError(data) {
  const body = JSON.parse(data);
  return new EventsLost(body.first_missing, body.oldest_available);
}

// -- connecting --------------------------------------------------------------------------------

/**
 * A space of a server, from its URL `http://host:port/spaces/NAME`. Sends nothing yet.
 *
 * Options: `token` (sent as `Authorization: Bearer <token>`), `fetch` (a fetch function to use
 * instead of the global one), `requestTimeout` (seconds to wait for an answer that involves
 * no waiting, 10), `confirmDelay` (seconds a claim waits to ride on the next take, 1).
 */
export function connect(url, options = {}) {
  const { base, name } = parseSpaceUrl(url);
  return new Space(new Http(base, options), name, options);
}

/** A server, from its base URL `http://host:port`: its spaces, their options and statistics. */
export function connectServer(url, options = {}) {
  const { origin, path } = httpUrl(url);
  return new Server(origin + path, options);
}

/** A server: its spaces, listed, made and deleted. */
export class Server {
  #http;
  #options;

  /** @internal use connectServer() */
  constructor(base, options) {
    this.#http = new Http(base, options);
    this.#options = options;
    this.url = base;
  }

  /** `{status, version}`. */
  health({ signal } = {}) {
    return this.#http.request("GET", "/health", undefined, { again: true, signal });
  }

  /** The spaces the token may read: `[{name, options, statistics}]` as the server keeps them. */
  async spaces({ signal } = {}) {
    return (await this.#http.request("GET", "/spaces", undefined, { again: true, signal })).spaces;
  }

  /** One space: `{name, options, statistics}`; NotFound if there is none. */
  describe(name, { signal } = {}) {
    return this.#http.request("GET", spacePath(name), undefined, { again: true, signal });
  }

  /**
   * Create a space with `options` (`order`, `capacity`, `event_retention`, `store`,
   * `anonymous`, as in docs/http-api.md) unless it exists; Conflict if it exists with other
   * options. `{name, options}`.
   */
  createSpace(name, options = {}, { signal } = {}) {
    return this.#http.request("PUT", spacePath(name), options, { signal });
  }

  /** Delete a space and its tuples. */
  async deleteSpace(name, { signal } = {}) {
    await this.#http.request("DELETE", spacePath(name), undefined, { signal });
  }

  /** A handle on one space (sharing this server's token and options). */
  space(name) {
    return new Space(new Http(this.url, this.#options), name, this.#options);
  }
}
