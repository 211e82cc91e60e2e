// The arguments of a space's calls, checked and turned into the fields of a request.

import { InvalidTemplate, InvalidValue, TupleSpaceError, UnsupportedType, about } from "./errors.js";
import { Credit, Uri, describe, isPlainObject } from "./values.js";
import { fieldToWire, inOrder, templateToWire, toWire } from "./encoding.js";
import { Record } from "./records.js";

// The shortest lease, in seconds, as the server's MIN_LEASE: a shorter one would end
// before it began.
const MIN_LEASE = 1e-6;

export function checkLease(lease, field = "lease") {
  if (lease === undefined || lease === null || lease === Infinity) return null;
  if (typeof lease !== "number" || !(lease >= MIN_LEASE)) {
    throw new InvalidValue(
      `${field} must be a positive number of seconds, at least ${MIN_LEASE} (MIN_LEASE), or null, got ${lease}`,
      { field },
    );
  }
  return lease;
}

export function checkTimeout(timeout) {
  if (timeout === undefined || timeout === null || timeout === Infinity) return null;
  if (typeof timeout !== "number" || !(timeout >= 0)) {
    throw new InvalidValue(`timeout must be a number of seconds >= 0 or null, got ${timeout}`, { field: "timeout" });
  }
  return timeout;
}

export function checkLimit(limit) {
  if (limit === undefined || limit === null) return null;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new InvalidValue(`limit must be an integer >= 0 or null, got ${limit}`, { field: "limit" });
  }
  return limit;
}

const EVENT_KINDS = ["cancel", "expire", "take", "write"];
export const SUBSCRIPTION_KINDS = [...EVENT_KINDS, "present"]; // present: with `existing`

export const CHANGE_KINDS = ["create", "destroy", "expire", "move", "update"];

export function checkKinds(events, all = EVENT_KINDS) {
  const kinds = [...new Set(typeof events === "string" ? [events] : (events ?? all))].sort();
  if (kinds.length === 0 || !kinds.every((k) => all.includes(k))) {
    throw new InvalidValue(`events must be a non-empty list of ${all.join(", ")}, got ${kinds.join(", ")}`, {
      field: "events",
    });
  }
  return kinds;
}

export function checkExisting(existing, since) {
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

export function checkSince(since) {
  if (since === undefined || since === null) return null;
  if (!Number.isSafeInteger(since) || since < 0) {
    throw new InvalidValue(`since must be an event sequence number >= 0, got ${since}`, { field: "since" });
  }
  return since;
}

export function tupleWire(t, field = "tuple") {
  try {
    if (!Array.isArray(t)) throw new UnsupportedType(`a tuple is an array, not ${describe(t)}`);
    return toWire(t, 0);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, field) : error;
  }
}

export function tuplesWire(tuples) {
  if (tuples === null || typeof tuples !== "object" || typeof tuples[Symbol.iterator] !== "function") {
    throw new UnsupportedType(`tuples are an array of tuples, not ${describe(tuples)}`, { field: "tuples" });
  }
  return [...tuples].map((t, i) => tupleWire(t, `tuples[${i}]`));
}

export function valueWire(value, field) {
  try {
    return toWire(value, 0);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, field) : error;
  }
}

export function fieldsWire(fields) {
  if (!isPlainObject(fields)) {
    throw new UnsupportedType(`fields are a plain object of tags and values, not ${describe(fields)}`, {
      field: "fields",
    });
  }
  const wire = valueWire(fields, "fields");
  inOrder.add(wire);
  return wire;
}

export function recordTemplateWire(template) {
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
export function creditWire(amount, field) {
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

export function checkPath(path, field = "path") {
  if (typeof path !== "string") {
    throw new InvalidValue(`a record's path is a string like "sensors/kitchen", not ${describe(path)}`, { field });
  }
  return path;
}

export function checkRef(ref) {
  if (ref instanceof Uri) return ref.text;
  if (ref instanceof Record) return ref.address.text;
  if (typeof ref !== "string" || ref === "") {
    throw new InvalidValue(`a record is named by a path, an address or "$", not ${describe(ref)}`, { field: "ref" });
  }
  return ref;
}

export function templateWire(template, field = "template") {
  try {
    return templateToWire(template);
  } catch (error) {
    throw error instanceof TupleSpaceError ? about(error, field) : error;
  }
}
