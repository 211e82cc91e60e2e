// The text form of values and tuples (docs/records.md "The text form"), as `ts.format`
// writes them and `ts.parse` reads them: `("job", 42, 1.5, true, null, bytes"AP8=")`.
// Templates add two fields: `?` matches any value, `?int` (or `? int`) any value of
// one wire type: `("job", ?int, ?)`; `?` alone, in place of a tuple, is every tuple
// (ANY, which a subscription takes for every arity).
//
// Text is read into wire JSON and decoded by the binding, which checks every value
// (canonical base64, RFC 3339 times, int sizes, ...) as it checks what the server sends.

import { ANY, WireError, decode, decodeTemplate, time, typeName } from "../js/index.js";

const MAX_NESTING = 100;
const FORMALS = new Set(["null", "bool", "int", "float", "str", "bytes", "time", "uri", "credit", "tuple", "map"]);
const TYPED = { bytes: "$bytes", time: "$time", uri: "$uri", credit: "$credit" };
const LITERALS = { null: null, true: true, false: false };
const TOKEN =
  /\s*(?:(?<str>"(?:[^"\\\u0000-\u001f]|\\.)*")|(?<num>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_-]))|(?<word>\$?[A-Za-z0-9_-]+)|(?<punct>[(){}:,?]))/y;

class Reader {
  constructor(text, template) {
    this.text = text;
    this.template = template; // whether `?` fields are allowed
    this.pos = 0; // where the next token is looked for
    this.start = 0; // where the latest token starts
    this.token = null; // the next token, once peeked
  }

  error(message) {
    return new WireError(`${message} at offset ${this.start} of the text`);
  }

  peek() {
    if (this.token === null) {
      TOKEN.lastIndex = this.pos;
      const m = TOKEN.exec(this.text);
      if (m === null) {
        const rest = this.text.slice(this.pos);
        this.start = this.pos + rest.length - rest.trimStart().length;
        if (rest.trim()) throw this.error(`unexpected ${JSON.stringify(rest.trimStart().slice(0, 20))}`);
        return null;
      }
      const [kind, text] = Object.entries(m.groups).find(([, t]) => t !== undefined);
      this.token = { kind, text };
      this.start = m.index + m[0].length - text.length;
      this.pos = TOKEN.lastIndex;
    }
    return this.token;
  }

  next() {
    const token = this.peek();
    if (token === null) throw this.error("unexpected end of the text");
    this.token = null;
    return token;
  }

  isPunct(text) {
    const token = this.peek();
    return token !== null && token.kind === "punct" && token.text === text;
  }

  expect(punct) {
    const { kind, text } = this.next();
    if (kind !== "punct" || text !== punct) throw this.error(`expected "${punct}", found ${JSON.stringify(text)}`);
  }

  string(text) {
    try {
      return JSON.parse(text);
    } catch {
      throw this.error("invalid escape in a string");
    }
  }

  // The wire JSON of the value (or template field) that comes next.
  value(depth) {
    if (depth > MAX_NESTING) throw this.error(`nesting is deeper than ${MAX_NESTING}`);
    const { kind, text } = this.next();
    if (kind === "str") return this.string(text);
    if (kind === "num") return this.number(text);
    if (kind === "word") {
      if (Object.hasOwn(LITERALS, text)) return LITERALS[text];
      if (Object.hasOwn(TYPED, text)) {
        const payload = this.next();
        if (payload.kind !== "str") throw this.error(`${text} is followed by a JSON string`);
        return { [TYPED[text]]: this.string(payload.text) };
      }
      throw this.error(`unknown word ${JSON.stringify(text)}`);
    }
    if (text === "?") return this.field();
    if (text === "(") return this.sequence(depth + 1);
    if (text === "{") return this.map(depth + 1);
    throw this.error(`unexpected "${text}"`);
  }

  number(text) {
    if (/[.eE]/.test(text)) {
      const x = Number(text);
      if (!Number.isFinite(x)) throw this.error(`the float ${text} is too large`);
      return { $float: String(x) };
    }
    return { $int: BigInt(text).toString() };
  }

  // After a `?`: a formal when a type's name follows, else ANY.
  field() {
    if (!this.template) throw this.error('"?" (any value) is for templates, not values');
    const token = this.peek();
    if (token !== null && token.kind === "word") {
      this.next();
      if (!FORMALS.has(token.text)) {
        throw this.error(`unknown type ${JSON.stringify(token.text)}; types are ${[...FORMALS].join(", ")}`);
      }
      return { $formal: token.text };
    }
    return { $any: true };
  }

  sequence(depth) {
    const out = [];
    for (;;) {
      if (this.isPunct(")")) {
        this.next();
        return out;
      }
      out.push(this.value(depth));
      const { kind, text } = this.next();
      if (kind === "punct" && text === ")") return out;
      if (kind !== "punct" || text !== ",") throw this.error(`expected "," or ")", found ${JSON.stringify(text)}`);
    }
  }

  map(depth) {
    const out = {};
    let tagged = false;
    for (;;) {
      if (this.isPunct("}")) {
        this.next();
        break;
      }
      const key = this.next();
      if (key.kind !== "str") throw this.error(`a map's key is a JSON string, found ${JSON.stringify(key.text)}`);
      const name = this.string(key.text);
      if (Object.hasOwn(out, name)) throw this.error(`the key ${key.text} is given twice`);
      tagged ||= name.startsWith("$");
      this.expect(":");
      Object.defineProperty(out, name, { value: this.value(depth), enumerable: true });
      const { kind, text } = this.next();
      if (kind === "punct" && text === "}") break;
      if (kind !== "punct" || text !== ",") throw this.error(`expected "," or "}", found ${JSON.stringify(text)}`);
    }
    return tagged ? { $map: out } : out;
  }

  // The wire JSON text of the whole text: one value of the kind `what`.
  read(what) {
    const token = this.peek();
    const opening = what === "tuple" ? "(" : "{";
    if (token === null || token.kind !== "punct" || token.text !== opening) {
      throw this.error(`a ${what} starts with "${opening}"`);
    }
    const wire = this.value(0);
    if (this.peek() !== null) throw this.error("expected the end of the text");
    return JSON.stringify(wire);
  }
}

/** The tuple that `text` writes in the text form: `("job", 1, 2.5)`. Throws WireError
 *  giving the offset of what is wrong, or the binding's error naming the field. */
export function parseTuple(text) {
  return decode(new Reader(text, false).read("tuple"));
}

/** The template that `text` writes: a tuple in the text form whose fields may be `?`
 *  or `?type`, or `?` alone (ANY: every tuple); a JSON array is read as a wire template
 *  (for ranges, regexes, ...). */
export function parseTemplate(text) {
  if (text.trim() === "?") return ANY;
  if (text.trimStart().startsWith("[")) return decodeTemplate(text);
  return decodeTemplate(new Reader(text, true).read("tuple"));
}

/** A map in the text form, `{"unit": "C", "temp": 21.5}`: a record's fields. */
export function parseMap(text) {
  return decode(new Reader(text, false).read("map"));
}

/** A map whose values may be `?` or `?type`: a record template, `{"unit": "C", "temp": ?float}`. */
export function parseMapTemplate(text) {
  const [fields] = decodeTemplate(`[${new Reader(text, true).read("map")}]`);
  return fields;
}

/** Any one value in the text form: `21.5`, `"C"`, `uri"tuplespace://…"`. */
export function parseValue(text) {
  const reader = new Reader(text, false);
  const wire = reader.value(0);
  if (reader.peek() !== null) throw reader.error("expected the end of the text");
  return decode(JSON.stringify(wire));
}

/** The text form of a value (of a tuple, usually), as Python's `ts.format` writes it. */
export function format(value) {
  switch (typeName(value)) {
    case "null":
      return "null";
    case "bool":
      return value ? "true" : "false";
    case "int":
      return String(value);
    case "float":
      return floatText(Number(value));
    case "str":
      return JSON.stringify(value);
    case "bytes":
      return `bytes${JSON.stringify(base64(value))}`;
    case "time":
      return `time${JSON.stringify(time(value).toString())}`;
    case "uri":
      return `uri${JSON.stringify(address(value))}`;
    case "credit":
      return `credit${JSON.stringify(String(value))}`;
    case "tuple":
      return `(${value.map(format).join(", ")})`;
    default:
      return `{${Object.keys(value)
        .map((key) => `${JSON.stringify(key)}: ${format(value[key])}`)
        .join(", ")}}`;
  }
}

/** The text of an address: a Uri, or a record handle standing for its address. */
export function address(value) {
  return value.address?.text ?? value.text;
}

// Python's repr of a float: the shortest digits that read back the same, positional
// from 1e-4 up to 1e16, else with an exponent of at least two digits.
function floatText(x) {
  const [mantissa, exponent] = x.toExponential().split("e");
  const exp = Number(exponent);
  if (exp < -4 || exp >= 16) {
    return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const sign = x < 0 ? "-" : "";
  const digits = mantissa.replace(/^-/, "").replace(".", "");
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
  return `${sign}${whole}.${digits.slice(exp + 1) || "0"}`;
}

function base64(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}
