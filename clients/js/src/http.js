// Requests to a server over its HTTP API (docs/http-api.md), and the error of each answer
// with an error status.

import {
  CapabilityRevoked,
  Conflict,
  ContainmentCycle,
  EvaluationError,
  EventsLost,
  Forbidden,
  InsufficientCredit,
  InvalidTemplate,
  InvalidValue,
  LimitReached,
  NotAllowed,
  NotFound,
  RecordExists,
  RecordInUse,
  RecordNotFound,
  RuleCycle,
  RuleExists,
  RuleNotFound,
  SpaceClosed,
  SpaceFull,
  StoreError,
  NotSupported,
  TransactionAborted,
  TransactionError,
  TupleSpaceError,
  Unauthorized,
  UnknownLease,
  Unreachable,
  UnsupportedType,
  ValueTooLarge,
  WireError,
} from "./errors.js";
import { Credit, quote } from "./values.js";
import { stringify } from "./encoding.js";
import { Decoder, RECEIVED } from "./decoding.js";

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
  real_clock: Conflict,
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
  evaluation_error: EvaluationError,
  rule_cycle: RuleCycle,
  rule_exists: RuleExists,
  rule_not_found: RuleNotFound,
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
export function errorFromAnswer(status, body, headers, where) {
  let error;
  try {
    error = JSON.parse(body).error;
    if (typeof error?.code !== "string" || typeof error.message !== "string") throw new TypeError();
  } catch {
    return new TupleSpaceError(`${where}: the server answered ${status}: ${body.slice(0, 200)}`, { status });
  }
  return errorOf(error, status, headers);
}

/**
 * The error of the `error` object of an error body: an answer's, or the `last_error` of a
 * rule (then without a status).
 */
export function errorOf(error, status = null, headers = null) {
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

/** The fields of the errors that carry more: not_allowed, capability_revoked, insufficient_credit, rule_cycle. */
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
    cycle: Array.isArray(error.cycle) ? error.cycle.filter((name) => typeof name === "string") : [],
    principal: typeof error.principal === "string" ? error.principal : null,
    needed: amount(error.needed),
    available: amount(error.available),
  };
}

// How much longer than the wait it asked for a call waits for the server's answer.
const ANSWER_MARGIN = 30;
// Waits longer than this wait for their answer without a limit (timers cannot be so long).
const LONGEST_ANSWER = 86400;
export const now = () => performance.now() / 1000;

/** Requests to one server: its base URL, the token, the fetch function, errors. */
export class Http {
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

export function spacePath(name) {
  return "/spaces/" + encodeURIComponent(name);
}

/** The parts of an http:// or https:// URL without query or fragment. */
export function httpUrl(url) {
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
export function parseSpaceUrl(url) {
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
