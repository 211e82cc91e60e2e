/**
 * PyTupleSpace for JavaScript: the spaces of a `tuplespace serve` server, over its HTTP API
 * (docs/http-api.md), and the wire codec of docs/wire-format.md. ES modules without
 * dependencies, for Node.js 20 and later and for browsers.
 *
 *     import { connect, ANY, formal } from "tuplespace";
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
 *      │    ├── ContainmentCycle  a set that would make a record contain itself
 *      │    ├── RuleCycle         a rule that could trigger itself (.cycle names the loop)
 *      │    └── RuleExists        a rule of that name exists already
 *      ├── InvalidTemplate        a template that cannot be used
 *      ├── WireError              text that is not in the wire format
 *      ├── Unauthorized           401: no token, or an unknown or revoked one
 *      │    └── CapabilityRevoked the record capability was revoked or ran out (.expired)
 *      ├── Forbidden              403: the token lacks the permission
 *      │    └── NotAllowed        the record handle does not grant it (.operation, .allowed)
 *      ├── NotFound               404: no such space (or claim)
 *      │    ├── UnknownLease      the leased tuple is gone (taken, expired, cancelled)
 *      │    ├── RecordNotFound    no record there, or the handle's record is gone
 *      │    └── RuleNotFound      no rule of that name
 *      ├── Conflict               409: the space or token exists already, otherwise
 *      ├── RecordExists           create, clone or move onto a path a record holds
 *      ├── RecordInUse            destroying a contained record without force
 *      ├── InsufficientCredit     the account cannot pay (.principal, .needed, .available)
 *      ├── EvaluationError        an expression of a rule failed as it ran (a rule's lastError)
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

export {
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
} from "./errors.js";
export { Float, float, Time, time, Uri, uri, Credit, credit, typeName } from "./values.js";
export {
  ANY,
  Formal,
  formal,
  Range,
  range,
  Regex,
  regex,
  Prefix,
  prefix,
  OneOf,
  oneOf,
  XPath,
  xpath,
} from "./templates.js";
export { encode, encodeTemplate } from "./encoding.js";
export { DEFAULT_LIMITS, decode, decodeTemplate } from "./decoding.js";
export { Space, Lease, Transaction } from "./spaces.js";
export { Record } from "./records.js";
export { Rules, Clock } from "./rules.js";
export { makeStamp } from "./minting.js";
export { Subscription, RecordWatch } from "./events.js";
export { connect, connectServer, Server } from "./connect.js";
