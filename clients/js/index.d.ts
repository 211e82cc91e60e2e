// Types of tuplespace.js, the JavaScript binding of PyTupleSpace (see README.md).

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
export type Value =
  null | boolean | number | bigint | string | Float | Uint8Array | Time | Date | Uri | Credit | Value[] | ValueMap;
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
}
export type EventKind = "write" | "take" | "expire" | "cancel";
export interface SubscribeOptions extends CallOptions {
  /** The kinds of events (all by default). */
  events?: EventKind | EventKind[];
  /** Resume after this event (a seq). */
  since?: number | null;
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
  store: "durable" | "memory";
  anonymous: string[];
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
  kind: EventKind;
  tuple: DecodedTuple;
  /** Seconds since the epoch. */
  time: number;
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

export class Space {
  private constructor();
  readonly name: string;
  readonly url: string;
  readonly closed: boolean;
  write(tuple: Tuple, options?: WriteOptions): Promise<Lease>;
  writeMany(tuples: Iterable<Tuple>, options?: LeaseOptions): Promise<Lease[]>;
  read(template: Template, options?: WaitOptions): Promise<DecodedTuple>;
  take(template: Template, options?: WaitOptions): Promise<DecodedTuple>;
  tryRead(template: Template, options?: CallOptions): Promise<DecodedTuple | null>;
  tryTake(template: Template, options?: CallOptions): Promise<DecodedTuple | null>;
  readAll(template: Template, options?: LimitOptions): Promise<DecodedTuple[]>;
  takeAll(template: Template, options?: LimitOptions): Promise<DecodedTuple[]>;
  count(template: Template, options?: CallOptions): Promise<number>;
  replace(template: Template, tuple: Tuple, options?: WriteOptions): Promise<DecodedTuple>;
  writeIfAbsent(template: Template, tuple: Tuple, options?: LeaseOptions): Promise<boolean>;
  subscribe(template: Template, options?: SubscribeOptions): Promise<Subscription>;
  transaction(options?: CallOptions & { lease?: number }): Promise<Transaction>;
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
export function connect(url: string, options?: ConnectOptions): Space;
/** A server, from its base URL `http://host:port`. */
export function connectServer(url: string, options?: ConnectOptions): Server;
