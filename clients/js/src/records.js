// Records (docs/records.md): handles on them, and what a record held.

import { NotAllowed, UnsupportedType, WireError } from "./errors.js";
import { Uri, typeName } from "./values.js";
import { define } from "./encoding.js";
import { Decoder, RECEIVED } from "./decoding.js";
import { checkLease, checkPath, checkSince, creditWire, valueWire } from "./arguments.js";

// What a full handle may do: every operation, move the record and make capabilities.
export const FULL = Object.freeze(["capability", "clone", "destroy", "move", "read", "refresh", "set", "watch"]);
const COMPUTED = ["$credit", "$lifetime", "$refcount", "$level"];

export function valueFrom(wire) {
  return new Decoder(RECEIVED).value(wire, 0);
}

export function addressFrom(wire) {
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
export function recordDataFrom(wire) {
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
   * Run the method held in the field `tag` (a map `{$method: {lang: "lua", source}}`) with
   * `args` (null, booleans, numbers, strings), in the server's sandbox; what it returns.
   * The caller's account pays for its steps when the space charges for them (an admin may
   * name another `principal`). It needs `set`: a method may set the record's fields, all
   * together when it returns. A method stopped at a limit rejects with LimitReached (naming
   * `method_steps`, `method_ms` or `method_memory`), one that fails with EvaluationError, one
   * its payer cannot pay for with InsufficientCredit; then it changed nothing.
   */
  async call(tag, args = [], { principal, signal } = {}) {
    if (!Array.isArray(args)) {
      throw new UnsupportedType(`args are an array of values, not ${typeName(args)}`, { field: "args" });
    }
    const body = this.#body({ tag, args: args.map((a, i) => valueWire(a, `args[${i}]`)), principal });
    return valueFrom((await this.#post("call", body, signal)).value);
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
