// The rules of a space and its clock (docs/active.md; docs/http-api.md, Rules and Simulated time).

import { InvalidValue } from "./errors.js";
import { describe } from "./values.js";
import { templateFromWire, tupleFromWire } from "./decoding.js";
import { templateWire, tupleWire } from "./arguments.js";
import { errorOf } from "./http.js";

/** The operations of a rule, as a request carries them: tuples, or templates for `take`. */
function operationsWire(items, key) {
  if (items === undefined) return undefined;
  if (!Array.isArray(items)) {
    throw new InvalidValue(`${key} is an array of ${key === "take" ? "templates" : "tuples"}, not ${describe(items)}`, {
      field: key,
    });
  }
  return items.map((item, i) => (key === "take" ? templateWire(item, `${key}[${i}]`) : tupleWire(item, `${key}[${i}]`)));
}

/** One value of an operation on records, as a request carries it: a string is an expression. */
function fieldWire(value, field) {
  return tupleWire([value], field)[0];
}

/** A map of `map`'s entries, each value made by `f(value, key)`. */
function mapped(map, f) {
  return Object.fromEntries(Object.entries(map).map(([key, value]) => [key, f(value, key)]));
}

function objectOf(value, field, what) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidValue(`${field} is an object ${what}, not ${describe(value)}`, { field });
  }
  return value;
}

/** A reaction's operations on records (`refresh`, `create`, `call`), as a request carries them. */
function recordsWire(body, refresh, create, call) {
  if (refresh !== undefined) {
    body.refresh = mapped(objectOf(refresh, "refresh", "from paths to leases"), (v, p) => fieldWire(v, `refresh.${p}`));
  }
  if (create !== undefined) {
    body.create = mapped(objectOf(create, "create", "from paths to fields"), (fields, p) =>
      mapped(objectOf(fields, `create.${p}`, "of fields"), (v, t) => fieldWire(v, `create.${p}.${t}`)),
    );
  }
  if (call !== undefined) {
    if (!Array.isArray(call)) throw new InvalidValue(`call is an array of calls, not ${describe(call)}`, { field: "call" });
    body.call = call.map((c, i) => {
      if (!Array.isArray(c) || c.length < 2 || typeof c[0] !== "string" || typeof c[1] !== "string") {
        throw new InvalidValue(`a call is [path, tag, ...arguments], not ${describe(c)}`, { field: `call[${i}]` });
      }
      return [c[0], c[1], ...tupleWire(c.slice(2), `call[${i}]`)];
    });
  }
}

/** One value of an operation on records, as the server tells of it. */
function fieldFrom(value) {
  return tupleFromWire([value])[0];
}

/** A rule as the server tells of it: its definition, level, counts and last failure. */
function ruleFrom(wire) {
  const rule = {
    name: wire.name,
    kind: wire.kind,
    principal: wire.principal,
    level: wire.level,
    fired: wire.fired,
    failed: wire.failed,
    state: wire.state,
    lastError: wire.last_error === null ? null : errorOf(wire.last_error),
  };
  if (wire.kind === "push") return { ...rule, set: wire.set, to: wire.to, using: wire.using };
  return {
    ...rule,
    on: wire.on,
    template: wire.template === null ? null : templateFromWire(wire.template),
    path: wire.path,
    tag: wire.tag,
    when: wire.when,
    write: wire.write.map(tupleFromWire),
    take: wire.take.map(templateFromWire),
    set: wire.set,
    refresh: mapped(wire.refresh ?? {}, fieldFrom),
    create: mapped(wire.create ?? {}, (fields) => mapped(fields, fieldFrom)),
    call: (wire.call ?? []).map(([path, tag, ...args]) => [path, tag, ...tupleFromWire(args)]),
  };
}

/**
 * The rules of a space (`space.rules`): reactions and Push Logic rules, as data. A string in
 * a tuple of `write` or a template of `take` is an expression (or a bare word that names
 * nothing the rule knows: that word); a constant string is written as a CEL literal, `"'t[1]'"`.
 */
export class Rules {
  #space;

  /** @internal use space.rules */
  constructor(space) {
    this.#space = space;
  }

  /**
   * Add a rule; resolves to it. A reaction has a `template` (events `on` of tuples matching it)
   * or a `path` (changes of that record), `when`, and does `write`, `take`, `set`, `refresh`
   * (`{path: lease}`), `create` (`{path: fields}`, the path a path or an expression giving one)
   * and `call` (`[[path, tag, ...arguments]]`), all in one step; a Push
   * Logic rule has `set: "path.tag"` and `to`. Throws RuleCycle (its `cycle` names the loop) for
   * a rule that could trigger itself, RuleExists for a name in use, InvalidValue naming the field.
   * Needs `write` on the space.
   */
  async add(
    name,
    { on, template, path, tag, when, write, take, set, refresh, create, call, to, using, principal, signal } = {},
  ) {
    const body = { name, on, path, tag, when, set, to, using, principal };
    if (template !== undefined && template !== null) body.template = templateWire(template);
    body.write = operationsWire(write, "write");
    body.take = operationsWire(take, "take");
    recordsWire(body, refresh, create, call);
    for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
    return ruleFrom((await this.#space._request("POST", "/rules", body, { signal })).rule);
  }

  /** Every rule, by level, then by name. */
  async list({ signal } = {}) {
    return (await this.#space._request("GET", "/rules", undefined, { again: true, signal })).rules.map(ruleFrom);
  }

  /** The rule `name`; RuleNotFound if there is none. */
  async get(name, { signal } = {}) {
    const path = "/rules/" + encodeURIComponent(name);
    return ruleFrom((await this.#space._request("GET", path, undefined, { again: true, signal })).rule);
  }

  /** Remove the rule `name`; RuleNotFound if there is none. Needs `write` on the space. */
  async remove(name, { signal } = {}) {
    await this.#space._request("DELETE", "/rules/" + encodeURIComponent(name), undefined, { signal });
  }
}

/**
 * The clock of a space (`space.clock`): its time, and for a space created with
 * `clock: "simulated"` (in memory), `advance`, which an admin of the space may call.
 */
export class Clock {
  #space;

  /** @internal use space.clock */
  constructor(space) {
    this.#space = space;
  }

  /** The space's time, in seconds since the epoch. */
  async now({ signal } = {}) {
    return (await this.#space._request("GET", "/clock", undefined, { again: true, signal })).now;
  }

  /**
   * Move the space's simulated clock `seconds` forward and run what falls due (leases, waits,
   * rules). Conflict (`code` "real_clock") for a space on the system clock.
   */
  async advance(seconds, { signal } = {}) {
    await this.#space._request("POST", "/clock", { advance: seconds }, { signal });
  }
}
