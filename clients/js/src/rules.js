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
   * or a `path` (changes of that record), `when`, and does `write`, `take` and `set`; a Push
   * Logic rule has `set: "path.tag"` and `to`. Throws RuleCycle (its `cycle` names the loop) for
   * a rule that could trigger itself, RuleExists for a name in use, InvalidValue naming the field.
   * Needs `write` on the space.
   */
  async add(name, { on, template, path, tag, when, write, take, set, to, using, principal, signal } = {}) {
    const body = { name, on, path, tag, when, set, to, using, principal };
    if (template !== undefined && template !== null) body.template = templateWire(template);
    body.write = operationsWire(write, "write");
    body.take = operationsWire(take, "take");
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
