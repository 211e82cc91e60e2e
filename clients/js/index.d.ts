// Types of the JavaScript binding of PyTupleSpace, src/index.js (see README.md).

// -- errors -------------------------------------------------------------------------------------

export interface ErrorDetails {
  code?: string | null;
  status?: number | null;
  field?: string | null;
  path?: string;
  limit?: string | null;
  maximum?: number | null;
  cause?: unknown;
}

/** The root of every error of the binding. */
export class TupleSpaceError extends Error {
  constructor(message: string, details?: ErrorDetails);
  /** The server's error code (`"wire_error"`, `"forbidden"`, …), or the one it would give; null if none. */
  code: string | null;
  /** The HTTP status of the answer, for an error the server answered. */
  status: number | null;
  /** The part of the request at fault: `tuple[2]["temp"]`, `template[1]`, `tuples[3][0]`, `lease`. */
  field: string | null;
  /** The place in the tuple or template: `[2]["temp"]`; `""` for the whole. */
  path: string;
  /** The name of the limit past which the call went (`max_fields`, `max_results`, …). */
  limit: string | null;
  /** The value of that limit. */
  maximum: number | null;
}
/** A blocking call found nothing in time. */
export class Timeout extends TupleSpaceError {}
/** A value or argument that cannot be used (also the server's `bad_request`). */
export class InvalidValue extends TupleSpaceError {}
/** A JavaScript value that is not a wire type. */
export class UnsupportedType extends InvalidValue {}
/** Past a size, field-count or nesting limit (`limit`, `maximum`). */
export class ValueTooLarge extends InvalidValue {}
/** A template that cannot be used. */
export class InvalidTemplate extends TupleSpaceError {}
/** Text that is not in the wire format. */
export class WireError extends TupleSpaceError {}
/** 401: no token, or a malformed, unknown or revoked one. */
export class Unauthorized extends TupleSpaceError {}
/** 403: the token lacks the permission. */
export class Forbidden extends TupleSpaceError {}
/** 404: no such space (or claim). */
export class NotFound extends TupleSpaceError {}
/** The leased tuple is gone: taken, expired or cancelled. */
export class UnknownLease extends NotFound {}
/** 409: the space or token exists already, with other options. */
export class Conflict extends TupleSpaceError {}
/** No record at that path or address, or the handle's record is gone. */
export class RecordNotFound extends NotFound {}
/** A create, clone or move onto a path a record holds. */
export class RecordExists extends TupleSpaceError {}
/** Destroying a record that others contain, without `force`. */
export class RecordInUse extends TupleSpaceError {}
/** A set that would make a record contain itself. */
export class ContainmentCycle extends InvalidValue {}
/** A rule that could trigger itself, directly or through others. */
export class RuleCycle extends InvalidValue {
  constructor(message: string, details?: ErrorDetails & { cycle?: readonly string[] });
  /** The rules around the loop, the new one first and last. */
  cycle: string[];
}
/** The space has a rule of that name already. */
export class RuleExists extends InvalidValue {}
/** The space has no rule of that name. */
export class RuleNotFound extends NotFound {}
/** An expression of a rule, or a method, failed as it ran. */
export class EvaluationError extends TupleSpaceError {}
/** The record handle (a capability) does not grant the operation. */
export class NotAllowed extends Forbidden {
  constructor(message: string, details?: ErrorDetails & { operation?: string | null; allowed?: readonly string[] });
  /** The operation refused. */
  operation: string | null;
  /** The operations the handle grants, sorted. */
  allowed: readonly string[];
}
/** The record capability was revoked, or its lease ran out. */
export class CapabilityRevoked extends Unauthorized {
  constructor(message: string, details?: ErrorDetails & { expired?: boolean });
  /** Whether it ran out (rather than being revoked). */
  expired: boolean;
}
/** The account cannot pay for the operation; nothing was written. */
export class InsufficientCredit extends TupleSpaceError {
  constructor(
    message: string,
    details?: ErrorDetails & { principal?: string | null; needed?: Credit | null; available?: Credit | null },
  );
  /** The account that could not pay. */
  principal: string | null;
  needed: Credit | null;
  available: Credit | null;
}
/** 429: too many waiting calls, event streams, transactions or requests. */
export class LimitReached extends TupleSpaceError {
  constructor(message: string, details?: ErrorDetails & { retryAfter?: number | null });
  /** Seconds to wait before asking again, when the server said. */
  retryAfter: number | null;
}
/** The space is at its capacity. */
export class SpaceFull extends LimitReached {}
/** Events a subscriber asked for are no longer in the server's event log. */
export class EventsLost extends TupleSpaceError {
  constructor(firstMissing: number, oldestAvailable: number, details?: ErrorDetails);
  /** The seq of the first event that cannot be delivered. */
  firstMissing: number;
  /** The oldest seq the log still holds: the subscription goes on there. */
  oldestAvailable: number;
}
/** The transaction has ended, or is unknown. */
export class TransactionError extends TupleSpaceError {}
/** The transaction was aborted (by abort, or its lease). */
export class TransactionAborted extends TransactionError {}
/** The server's durable store failed. */
export class StoreError extends TupleSpaceError {}
/** The store that keeps the space lacks the operation (transactions, records, credit in Redis). */
export class NotSupported extends TupleSpaceError {}
/** This handle was closed, or the server is shutting down. */
export class SpaceClosed extends TupleSpaceError {}
/** No answer from the server. */
export class Unreachable extends TupleSpaceError {}

// -- values -------------------------------------------------------------------------------------

/** A float: a number that travels as a float even when it is integral. */
export class Float {
  constructor(value: number | Float);
  readonly value: number;
  valueOf(): number;
  /** The canonical text: `String(value)`. */
  toString(): string;
}
/** An instant in UTC with microsecond precision, from the year 1 to 9999. */
export class Time {
  constructor(seconds: number, microseconds?: number);
  /** Whole seconds since the Unix epoch. */
  readonly seconds: number;
  /** 0 to 999999. */
  readonly microseconds: number;
  toDate(): Date;
  /** Milliseconds since the epoch, as Date's. */
  valueOf(): number;
  /** The canonical text, `YYYY-MM-DDTHH:MM:SS[.f]Z`. */
  toString(): string;
}
/** A URI: never equal to the string of its text. */
export class Uri {
  constructor(text: string);
  readonly text: string;
  toString(): string;
}
/** A non-negative decimal amount of at most 40 significant digits. */
export class Credit {
  constructor(amount: string | bigint);
  /** The canonical text. */
  readonly text: string;
  toString(): string;
}

/** A map: string keys to values. */
export interface ValueMap {
  [key: string]: Value;
}
/** What a tuple holds, as JavaScript writes it. */
/** A value to write; a record handle stands for its address (a `Uri`). */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Float
  | Uint8Array
  | Time
  | Date
  | Uri
  | Credit
  | Record
  | Value[]
  | ValueMap;
export type Tuple = Value[];

/** A map as decoded: string keys to decoded values. */
export interface DecodedMap {
  [key: string]: Decoded;
}
/** A value as decoded: floats are `Float`, times `Time`, ints past 2**53-1 `bigint`. */
export type Decoded =
  null | boolean | number | bigint | string | Float | Uint8Array | Time | Uri | Credit | Decoded[] | DecodedMap;
export type DecodedTuple = Decoded[];

export type TypeName =
  "null" | "bool" | "int" | "float" | "str" | "bytes" | "time" | "uri" | "credit" | "tuple" | "map";

export function float(x: number | Float): Float;
export function time(value: Date | string | number | Time): Time;
export function uri(text: string): Uri;
export function credit(amount: string | bigint): Credit;
/** The wire type of a value. */
export function typeName(value: Value): TypeName;

// -- templates ----------------------------------------------------------------------------------

/** The template field that matches every value. */
export interface Any {
  readonly __any: unique symbol;
}
export const ANY: Any;
export class Formal {
  constructor(type: TypeName);
  readonly type: TypeName;
}
export type RangeBound = number | bigint | Float | Credit | string | Uint8Array | Time | Date;
export class Range {
  constructor(low?: RangeBound | null, high?: RangeBound | null, options?: { includeHigh?: boolean });
  readonly low: RangeBound | null;
  readonly high: RangeBound | null;
  readonly includeHigh: boolean;
}
export class Regex {
  constructor(pattern: string);
  readonly pattern: string;
}
export class Prefix {
  constructor(prefix: string | Uint8Array | Uri);
  readonly prefix: string | Uint8Array | Uri;
}
export class OneOf {
  constructor(values: Iterable<Value>);
  readonly values: readonly Value[];
}
export class XPath {
  constructor(expression: string);
  readonly expression: string;
}

/** A map template: a map having at least these keys, each value matching. */
export interface FieldMap {
  [key: string]: Field;
}
export type Field = Value | Any | Formal | Range | Regex | Prefix | OneOf | XPath | Field[] | FieldMap;
export type Template = Field[];

/** Matches every value of one wire type. */
export function formal(type: TypeName): Formal;
/** Matches `low <= x < high` (`<= high` with includeHigh); null: unbounded. */
export function range(low: RangeBound | null, high?: RangeBound | null, options?: { includeHigh?: boolean }): Range;
/** Matches str values in which the RE2 pattern finds a match. */
export function regex(pattern: string): Regex;
/** Matches str, bytes or uri values that start with the prefix. */
export function prefix(p: string | Uint8Array | Uri): Prefix;
/** Matches a value equal to one of the values. */
export function oneOf(values: Iterable<Value>): OneOf;
/** Matches str or bytes XML documents on which the XPath 1.0 expression selects something. */
export function xpath(expression: string): XPath;

// -- the wire codec -----------------------------------------------------------------------------

export interface Limits {
  /** Elements of each array and keys of each map (256). */
  maxFields: number;
  /** Nesting (32). */
  maxDepth: number;
  /** Bytes of the input (1 MiB). */
  maxBytes: number;
}
export const DEFAULT_LIMITS: Readonly<Limits>;
export interface DecodeOptions {
  limits?: Partial<Limits>;
}

/** The canonical wire text of a value (its UTF-8 bytes are the canonical bytes). */
export function encode(value: Value): string;
/** The value of wire text or bytes. */
export function decode(data: string | Uint8Array, options?: DecodeOptions): Decoded;
/** The canonical wire text of a template. */
export function encodeTemplate(template: Template): string;
/** The template of wire text or bytes. */
export function decodeTemplate(data: string | Uint8Array, options?: DecodeOptions): Template;

// -- spaces -------------------------------------------------------------------------------------

export interface ConnectOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string | null;
  /** A fetch function to use instead of the global one. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Seconds to wait for an answer that involves no waiting (10). */
  requestTimeout?: number;
  /** Seconds a claim waits to ride on the next take before it is confirmed alone (1). */
  confirmDelay?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}
export interface WaitOptions extends CallOptions {
  /** Seconds to wait; null or absent: forever; 0: never. */
  timeout?: number | null;
}
export interface WriteOptions extends WaitOptions {
  /** Seconds to keep the tuple; null or absent: until it is taken. */
  lease?: number | null;
}
export interface LeaseOptions extends CallOptions {
  lease?: number | null;
}
export interface LimitOptions extends CallOptions {
  limit?: number | null;
  /** Seconds to wait for a first match when there is none; null: forever; absent or 0: never. */
  timeout?: number | null;
}
export type EventKind = "write" | "take" | "expire" | "cancel";
export interface SubscribeOptions extends CallOptions {
  /** The kinds of events (all by default). */
  events?: EventKind | EventKind[];
  /** Resume after this event (a seq). */
  since?: number | null;
  /** First an event of kind `present` for every matching tuple already there (not with `since`). */
  existing?: boolean;
}

/** The statistics of a space, as the server keeps them (docs/semantics.md#statistics). */
export interface SpaceStatistics {
  tuples: number;
  capacity: number | null;
  waiters: number;
  waiting_writers: number;
  subscribers: number;
  transactions: number;
  leased_tuples: number;
  last_event: number;
  logged_events: number;
  arities: number[];
  order: "fifo" | "lifo" | "random";
  closed: boolean;
  writes: number;
  takes: number;
  reads: number;
  expired: number;
  cancelled: number;
  commits: number;
  aborts: number;
  [other: string]: unknown;
}
export interface SpaceOptions {
  order: "fifo" | "lifo" | "random";
  capacity: number | null;
  event_retention: number;
  /** The most bytes of values the kept events may hold. */
  event_retention_bytes: number;
  store: "durable" | "memory";
  anonymous: string[];
  /** Credit per second for each KiB a record stores (decimal text; "0": credit off). */
  charge_rate: string;
  /** Credit every record creation costs (decimal text). */
  creation_charge: string;
  /** The account that receives what the space burns. */
  operator: string;
  /** Credit each stamp mints (decimal text; "0": no minting). */
  mint_amount: string;
  /** The zero bits a stamp needs (1 to 64). */
  mint_bits: number;
  /** Credit each access through a redirection costs (decimal text). */
  redirect_charge: string;
  /** "simulated": the space's time moves only by `space.clock.advance` (a space in memory). */
  clock: "system" | "simulated";
  /** Credit each firing of a rule costs its principal (decimal text; "0": free). */
  firing_charge: string;
  /** Credit each step of a method costs its caller (decimal text; "0": free). */
  step_charge: string;
  /** The most firings one operation may set off (1 to 100,000). */
  max_firings: number;
  /** The most steps a method may run (1 to 10,000,000). */
  method_steps: number;
  /** The most milliseconds of CPU time a method may take (1 to 1,000). */
  method_ms: number;
  /** The most bytes a method may allocate (1 to 16 MiB). */
  method_memory: number;
}
export interface SpaceInfo {
  name: string;
  options: SpaceOptions;
  statistics: SpaceStatistics;
}
export interface ClientStatistics {
  requests: number;
  longPollsReissued: number;
  claimsConfirmedRiding: number;
  claimsConfirmedAlone: number;
  claimsLost: number;
  unconfirmedClaims: number;
  closed: boolean;
}

/** The lease of a written tuple. */
export class Lease {
  private constructor();
  readonly id: number;
  /** Seconds since the epoch, or null: forever. */
  expiresAt: number | null;
  renew(seconds: number | null, options?: CallOptions): Promise<void>;
  cancel(options?: CallOptions): Promise<void>;
}

export interface Event {
  seq: number;
  /** `present`: a tuple already there when a subscription with `existing` began. */
  kind: EventKind | "present";
  tuple: DecodedTuple;
  /** Seconds since the epoch. */
  time: number;
}

export type ChangeKind = "create" | "update" | "move" | "destroy" | "expire";

/** A change of a record. */
export interface Change {
  seq: number;
  kind: ChangeKind;
  /** The record's path. */
  path: string;
  /** The tag set, for an `update`. */
  tag: string | null;
  /** `update`: the new value; `create`: the fields; `move`: the path it left; else null. */
  value: Decoded;
  version: number;
  /** Seconds since the epoch. */
  time: number;
}

export class RecordWatch implements AsyncIterableIterator<Change> {
  private constructor();
  readonly lastSeq: number;
  readonly closed: boolean;
  statistics(): { delivered: number; lastSeq: number; closed: boolean; reconnects: number };
  next(): Promise<IteratorResult<Change, undefined>>;
  return(): Promise<IteratorResult<Change, undefined>>;
  close(): void;
  [Symbol.asyncIterator](): RecordWatch;
}

export interface WatchRecordsOptions extends CallOptions {
  /** Only the records below this path. */
  under?: string | null;
  /** The kinds of changes (all by default). */
  events?: ChangeKind | ChangeKind[];
  /** Resume after this change (a seq). */
  since?: number | null;
}

/** An amount of credit in a request: a Credit, decimal text, a BigInt or a whole number. */
export type Amount = Credit | string | bigint | number;

export interface PayOptions extends CallOptions {
  /** Credit the record holds. */
  credit?: Amount | null;
  /** Seconds it lives (bought with credit when the space charges for storage). */
  lease?: number | null;
  /** The account that pays; the caller's own by default (another needs `admin`). */
  principal?: string;
}

/** A record template: some tags, each with a template field. */
export interface RecordTemplate {
  [tag: string]: Field;
}

/** What a record held. */
export interface RecordData {
  address: Uri;
  version: number;
  /** The tags in the order they were first set. */
  tags: string[];
  fields: DecodedMap;
}

/** A record at one instant, with its computed tags (none for the root record). */
export interface RecordSnapshot extends RecordData {
  computed: {
    $credit?: Credit;
    /** Seconds left; null: never ends. */
    $lifetime?: Float | null;
    $refcount?: number;
    $level?: number;
  };
}

export type RecordOperation = "read" | "set" | "refresh" | "clone" | "destroy" | "watch";

/** A handle on a record. */
export class Record {
  private constructor();
  /** The record's address for a full handle, the capability's for a capability. */
  readonly address: Uri;
  /** What this handle allows, sorted (a full handle also `move` and `capability`). */
  readonly operations: readonly string[];
  /** When this capability ends (seconds since the epoch); null: never, and for a full handle. */
  readonly expiresAt: number | null;
  readonly isCapability: boolean;
  get(tag: string, options?: CallOptions & { default?: Value | null }): Promise<Decoded>;
  view(...tags: string[]): Promise<Decoded[]>;
  all(options?: CallOptions): Promise<DecodedMap>;
  tags(options?: CallOptions): Promise<string[]>;
  snapshot(options?: CallOptions): Promise<RecordSnapshot>;
  /** The new `$version`. */
  set(tag: string, value: Value, options?: CallOptions): Promise<number>;
  /** What the method held in the field `tag` returns, run in the server's sandbox. */
  call(tag: string, args?: Value[], options?: CallOptions & { principal?: string }): Promise<Decoded>;
  /** When the record expires now, or null. */
  refresh(options?: PayOptions): Promise<number | null>;
  clone(path: string, options?: PayOptions): Promise<Record>;
  /** The new `$version`. */
  move(path: string, options?: CallOptions & { redirectLease?: number | null }): Promise<number>;
  destroy(options?: CallOptions & { force?: boolean }): Promise<void>;
  readOnly(options?: CallOptions): Promise<Record>;
  capability(
    operations: RecordOperation | Iterable<RecordOperation>,
    options?: CallOptions & { lease?: number | null },
  ): Promise<Record>;
  revoke(options?: CallOptions): Promise<void>;
  watch(options?: CallOptions & { since?: number | null }): Promise<RecordWatch>;
}

export class Subscription implements AsyncIterableIterator<Event> {
  private constructor();
  readonly lastSeq: number;
  readonly closed: boolean;
  statistics(): { delivered: number; lastSeq: number; closed: boolean; reconnects: number };
  next(): Promise<IteratorResult<Event, undefined>>;
  return(): Promise<IteratorResult<Event, undefined>>;
  close(): void;
  [Symbol.asyncIterator](): Subscription;
}

export class Transaction {
  private constructor();
  readonly id: string;
  expiresAt: number;
  readonly state: "active" | "committed" | "aborted";
  write(tuple: Tuple, options?: LeaseOptions): Promise<void>;
  writeMany(tuples: Iterable<Tuple>, options?: LeaseOptions): Promise<void>;
  read(template: Template, options?: WaitOptions): Promise<DecodedTuple>;
  take(template: Template, options?: WaitOptions): Promise<DecodedTuple>;
  tryRead(template: Template, options?: CallOptions): Promise<DecodedTuple | null>;
  tryTake(template: Template, options?: CallOptions): Promise<DecodedTuple | null>;
  readAll(template: Template, options?: LimitOptions): Promise<DecodedTuple[]>;
  takeAll(template: Template, options?: LimitOptions): Promise<DecodedTuple[]>;
  count(template: Template, options?: CallOptions): Promise<number>;
  commit(options?: CallOptions): Promise<void>;
  abort(options?: CallOptions): Promise<void>;
  renew(seconds: number, options?: CallOptions): Promise<void>;
}

export interface RuleDefinition extends CallOptions {
  /** A reaction to tuples: `"write"` (default), `"take"`, `"expire"`, `"cancel"`, or several. */
  on?: string | string[];
  template?: Template;
  /** A reaction to the changes of the record at this path (of the field `tag`). */
  path?: string;
  tag?: string | null;
  /** An expression over the event (`t`, or `path`, `tag`, `value`, `kind`); must be true to fire. */
  when?: string | null;
  /** Tuples to write: a string in them is an expression (or a bare word); `"'text'"` a constant. */
  write?: Tuple[];
  /** Templates to take with, strings as in `write`. */
  take?: Template[];
  /** A reaction: `{"path.tag": expression}`; a Push Logic rule: the field `"path.tag"` it keeps. */
  set?: string | { [target: string]: string };
  /** Records given a new lease: their path -> seconds (a number, or an expression giving one). */
  refresh?: { [path: string]: unknown };
  /** Records created: a path (or an expression giving one) -> fields, values or expressions. */
  create?: { [path: string]: { [tag: string]: unknown } };
  /** Methods called: `[path, tag, ...arguments]`, the arguments values or expressions. */
  call?: [string, string, ...unknown[]][];
  /** A Push Logic rule: the expression over record fields its field is kept equal to. */
  to?: string;
  using?: { [name: string]: string };
  /** Whose account pays its firings (default: the caller's own; another needs `admin`). */
  principal?: string;
}
export interface RuleInfo {
  name: string;
  kind: "reaction" | "record" | "push";
  principal: string;
  level: number;
  fired: number;
  failed: number;
  /** "stopped" while its latest firing could not be paid. */
  state: "active" | "stopped";
  lastError: TupleSpaceError | null;
  on?: string[];
  template?: unknown[] | null;
  path?: string | null;
  tag?: string | null;
  when?: string | null;
  write?: DecodedTuple[];
  take?: unknown[][];
  set: string | { [target: string]: string };
  refresh?: { [path: string]: unknown };
  create?: { [path: string]: { [tag: string]: unknown } };
  call?: [string, string, ...unknown[]][];
  to?: string;
  using?: { [name: string]: string };
}
export class Rules {
  private constructor();
  add(name: string, definition: RuleDefinition): Promise<RuleInfo>;
  list(options?: CallOptions): Promise<RuleInfo[]>;
  get(name: string, options?: CallOptions): Promise<RuleInfo>;
  remove(name: string, options?: CallOptions): Promise<void>;
}
export class Clock {
  private constructor();
  now(options?: CallOptions): Promise<number>;
  advance(seconds: number, options?: CallOptions): Promise<void>;
}

export class Space {
  private constructor();
  readonly name: string;
  readonly url: string;
  readonly closed: boolean;
  readonly rules: Rules;
  readonly clock: Clock;
  write(tuple: Tuple, options?: WriteOptions): Promise<Lease>;
  writeMany(tuples: Iterable<Tuple>, options?: LeaseOptions): Promise<Lease[]>;
  read(template: Template, options?: WaitOptions): Promise<DecodedTuple>;
  take(template: Template, options?: WaitOptions): Promise<DecodedTuple>;
  tryRead(template: Template, options?: CallOptions): Promise<DecodedTuple | null>;
  tryTake(template: Template, options?: CallOptions): Promise<DecodedTuple | null>;
  /**
   * Every match (at most `limit`): the server's answers, each read on from the cursor of the one
   * before. With a `timeout`, waits for a first match when there is none; [] if none came in time.
   */
  readAll(template: Template, options?: LimitOptions): Promise<DecodedTuple[]>;
  /**
   * Every match (at most `limit`), taken under a claim: the server is asked again while its
   * answers are cut short. With a `timeout`, waits for matches when there are none: the first
   * write that brings some answers with up to `limit` of them; [] if none came in time.
   */
  takeAll(template: Template, options?: LimitOptions): Promise<DecodedTuple[]>;
  count(template: Template, options?: CallOptions): Promise<number>;
  replace(template: Template, tuple: Tuple, options?: WriteOptions): Promise<DecodedTuple>;
  writeIfAbsent(template: Template, tuple: Tuple, options?: LeaseOptions): Promise<boolean>;
  /** `ANY` alone, in place of a template: every tuple, whatever its arity. */
  subscribe(template: Template | Any, options?: SubscribeOptions): Promise<Subscription>;
  transaction(options?: CallOptions & { lease?: number }): Promise<Transaction>;
  create(path: string, fields: ValueMap, options?: PayOptions): Promise<Record>;
  /** By path, address, capability address, or `"$"` for the root record. */
  record(ref: string | Uri | Record, options?: CallOptions): Promise<Record>;
  find(
    template: RecordTemplate,
    options?: CallOptions & { under?: string | null; limit?: number | null },
  ): Promise<Record[]>;
  tryTakeRecord(
    template: RecordTemplate,
    options?: CallOptions & { under?: string | null },
  ): Promise<RecordData | null>;
  takeRecord(template: RecordTemplate, options?: WaitOptions & { under?: string | null }): Promise<RecordData>;
  watchRecords(options?: WatchRecordsOptions): Promise<RecordWatch>;
  /** The new balance. */
  grantCredit(principal: string, amount: Amount, options?: CallOptions): Promise<Credit>;
  account(principal: string, options?: CallOptions): Promise<Credit>;
  /** The new balance of `source`. */
  transferCredit(source: string, target: string, amount: Amount, options?: CallOptions): Promise<Credit>;
  creditChallenge(options?: CallOptions): Promise<Challenge>;
  /** The new balance of the account minted into. */
  mintCredit(challenge: string, nonce: string, options?: CallOptions & { principal?: string | null }): Promise<Credit>;
  statistics(options?: CallOptions): Promise<SpaceStatistics>;
  clientStatistics(): ClientStatistics;
  close(): Promise<void>;
}

export class Server {
  private constructor();
  readonly url: string;
  health(options?: CallOptions): Promise<{ status: string; version: string }>;
  spaces(options?: CallOptions): Promise<SpaceInfo[]>;
  describe(name: string, options?: CallOptions): Promise<SpaceInfo>;
  createSpace(
    name: string,
    options?: Partial<SpaceOptions>,
    call?: CallOptions,
  ): Promise<{ name: string; options: SpaceOptions }>;
  deleteSpace(name: string, options?: CallOptions): Promise<void>;
  space(name: string): Space;
}

/** A space of a server, from its URL `http://host:port/spaces/NAME`. */
/** What a space asks of a stamp (docs/active.md#minting). */
export interface Challenge {
  challenge: string;
  /** The leading zero bits of the stamp's SHA-256 digest. */
  bits: number;
  /** What one stamp mints. */
  amount: Credit;
  /** Seconds since the epoch, on the space's clock, until which stamps on it are accepted. */
  expires: number;
}
/** A nonce that makes a stamp of `bits` zero bits on `challenge`: what `mintCredit` takes. */
export function makeStamp(challenge: string, bits: number, options?: CallOptions): Promise<string>;

export function connect(url: string, options?: ConnectOptions): Space;
/** A server, from its base URL `http://host:port`. */
export function connectServer(url: string, options?: ConnectOptions): Server;
