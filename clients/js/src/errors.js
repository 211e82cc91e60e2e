// The errors of the binding, one tree (drawn in index.js), and how an error names the place
// at fault: `.path` in a tuple or template, `.field` in a request.

export const reasons = new WeakMap(); // error -> its message without the path, to prefix the path later

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
export class RuleCycle extends InvalidValue {
  constructor(message, details = {}) {
    super(message, details);
    /** The rules around the loop, the new one first and last. */
    this.cycle = details.cycle ?? [];
  }
}
RuleCycle.code = "rule_cycle";
export class RuleExists extends InvalidValue {}
RuleExists.code = "rule_exists";
export class RuleNotFound extends NotFound {}
RuleNotFound.code = "rule_not_found";
export class EvaluationError extends TupleSpaceError {}
EvaluationError.code = "evaluation_error";
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
  RuleCycle,
  RuleExists,
  RuleNotFound,
  EvaluationError,
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
export function at(error, part) {
  error.path = part + error.path;
  error.message = `${error.path}: ${reasons.get(error)}`;
  return error;
}

/** The same error about the part of a request named `field` (`tuple`, `template`, `tuples[2]`). */
export function about(error, field) {
  error.field = field + error.path;
  error.message = `${error.field}: ${reasons.get(error)}`;
  return error;
}
