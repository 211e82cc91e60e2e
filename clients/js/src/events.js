// The events of a space or of a record, as an async iterable that resumes where it stopped.

import { EventsLost, Forbidden, InvalidValue, NotFound, SpaceClosed, Unauthorized, Unreachable } from "./errors.js";
import { stringify } from "./encoding.js";
import { tupleFromWire } from "./decoding.js";
import { CHANGE_KINDS, SUBSCRIPTION_KINDS } from "./arguments.js";
import { errorFromAnswer } from "./http.js";
import { valueFrom } from "./records.js";

const RECONNECT_DELAYS = [0, 0.05, 0.1, 0.25, 0.5, 1, 2];
// Errors after which a subscription cannot go on: its space is gone, its token may no
// longer read it, or the server refuses where it would resume (a space made anew, whose
// events have not reached it yet).
const FINAL = [NotFound, Unauthorized, Forbidden, InvalidValue];

/**
 * A stream of events from the server (Server-Sent Events), resumed after the last event
 * received when its connection breaks: what subscriptions and record watches share.
 * @internal
 */
class EventStream {
  #space;
  #route;
  #received; // where to resume: the id of the last whole message
  #signal;
  #closed = false;
  #controller = null;
  #reader = null;
  #buffer = "";
  #decoder = null;
  #message = { event: "", data: [], id: null };
  #pending = null; // a message read while opening, not yet delivered
  #queue = Promise.resolve();
  #wake = null;
  #lastSeq;
  #delivered = 0;
  #reconnects = 0;

  /** `route`: the stream's path and query below the space's URL. */
  constructor(space, route, since, signal) {
    this.#space = space;
    this.#route = route;
    this.#received = since;
    this.#lastSeq = since ?? 0;
    this.#signal = signal;
    signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** The seq of the last event delivered: open again with `since` it to resume. */
  get lastSeq() {
    return this.#lastSeq;
  }

  get closed() {
    return this.#closed;
  }

  /** Events delivered, the last one, and how often the stream was opened again. */
  statistics() {
    return { delivered: this.#delivered, lastSeq: this.#lastSeq, closed: this.#closed, reconnects: this.#reconnects };
  }

  /** @internal */
  async _open() {
    this.#signal?.throwIfAborted();
    try {
      await this.#connect();
    } catch (error) {
      throw this.#signal?.aborted ? this.#signal.reason : error;
    }
    if (this.#pending?.event === "lost") {
      const lost = this.#pending;
      this.close();
      throw lostError(lost.data);
    }
  }

  /**
   * Open the stream after the last event received, and read the server's first message: a
   * greeting once the subscription is in place, or the news that events were lost.
   */
  async #connect() {
    const http = this.#space._http();
    const headers = { ...http.headers, Accept: "text/event-stream" };
    if (this.#received !== null) headers["Last-Event-ID"] = String(this.#received);
    const controller = new AbortController();
    this.#controller = controller;
    const timer = setTimeout(() => controller.abort(), http.requestTimeout * 1000);
    const url = this.#space.url + this.#route;
    try {
      let response;
      try {
        http.requests++;
        response = await http.fetch(url, { headers, signal: controller.signal });
      } catch (error) {
        throw this.#closed
          ? new SpaceClosed("the subscription was closed")
          : new Unreachable(`cannot reach ${url}: ${error}`, { cause: error });
      }
      if (response.status >= 400) throw errorFromAnswer(response.status, await response.text(), response.headers, url);
      this.#reader = response.body.getReader();
      this.#decoder = new TextDecoder();
      this.#buffer = "";
      this.#message = { event: "", data: [], id: null };
      const first = await this.#nextMessage();
      if (first.event !== "") this.#pending = first;
    } catch (error) {
      this.#drop();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #drop() {
    this.#controller?.abort();
    this.#controller = null;
    this.#reader = null;
  }

  async #line() {
    for (;;) {
      const end = this.#buffer.indexOf("\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end).replace(/\r$/, "");
        this.#buffer = this.#buffer.slice(end + 1);
        return line;
      }
      let chunk;
      try {
        chunk = await this.#reader.read();
      } catch (error) {
        throw this.#closed
          ? new SpaceClosed("the subscription was closed")
          : new Unreachable(`the event stream broke: ${error}`, { cause: error });
      }
      if (chunk.done) throw new Unreachable("the event stream ended");
      this.#buffer += this.#decoder.decode(chunk.value, { stream: true });
    }
  }

  /** The next message of the stream, `{event: ""}` for a comment between messages. */
  async #nextMessage() {
    for (;;) {
      const line = await this.#line();
      const m = this.#message;
      if (line === "") {
        // The id counts once its message is whole: a stream cut inside a message resumes before it.
        if (m.id !== null) this.#received = m.id;
        this.#message = { event: "", data: [], id: null };
        if (m.data.length) return { event: m.event || "message", data: m.data.join("\n") };
        continue;
      }
      if (line.startsWith(":")) {
        if (!m.data.length && !m.event) return { event: "", data: line.slice(1).trim() };
        continue;
      }
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") m.event = value;
      else if (name === "data") m.data.push(value);
      else if (name === "id" && /^[0-9]+$/.test(value)) m.id = Number(value);
    }
  }

  /** The next event: `{value, done}` as async iterators give. */
  next() {
    const result = this.#queue.then(() => this.#next());
    this.#queue = result.catch(() => {});
    return result;
  }

  async #next() {
    let failures = 0;
    for (;;) {
      let message;
      if (this.#signal?.aborted) throw this.#signal.reason;
      if (this.#closed) return { value: undefined, done: true };
      try {
        if (this.#reader === null) {
          await this.#connect();
          this.#reconnects++;
          failures = 0;
        }
        message = this.#pending ?? (await this.#nextMessage());
        this.#pending = null;
      } catch (error) {
        if (FINAL.some((kind) => error instanceof kind)) {
          this.close();
          throw error;
        }
        this.#drop();
        if (this.#closed) continue;
        await this.#pause(RECONNECT_DELAYS[Math.min(failures, RECONNECT_DELAYS.length - 1)]);
        failures++;
        continue;
      }
      if (message.event === "lost") throw lostError(message.data);
      if (this._kinds.includes(message.event)) {
        const event = this._decode(JSON.parse(message.data));
        this.#delivered++;
        this.#lastSeq = event.seq;
        if (this._ends(event)) this.close(); // the server ends the stream after it
        return { value: event, done: false };
      }
    }
  }

  /** Whether `event` is the last of the stream. */
  _ends() {
    return false;
  }

  /** Wait `seconds`, or less if the subscription is closed meanwhile. */
  #pause(seconds) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, seconds * 1000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** End the stream: iteration ends, the server learns it from the connection closing. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#drop();
    this.#wake?.();
    this.#space._forget(this);
  }

  /** Called when a `for await` loop is left early: closes the stream. */
  async return() {
    this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/**
 * The events of a subscription, `for await (const event of subscription)`: each is
 * `{seq, kind, tuple, time}` (`time` in seconds since the epoch). Iteration ends when the
 * subscription is closed (leaving a `for await` loop closes it). A lost connection is opened
 * again, resuming after the last event received; events the server's log no longer holds
 * reject the next call with EventsLost, and iteration can go on after it.
 */
export class Subscription extends EventStream {
  /** @internal use Space.subscribe() */
  constructor(space, template, kinds, since, existing, signal) {
    const query = `?template=${encodeURIComponent(stringify(template))}&events=${kinds.join(",")}`;
    super(space, "/events" + query + (existing ? "&existing=true" : ""), since, signal);
  }

  /** @internal */
  get _kinds() {
    return SUBSCRIPTION_KINDS;
  }

  /** @internal */
  _decode(body) {
    return { seq: body.seq, kind: body.kind, tuple: tupleFromWire(body.tuple), time: body.time };
  }
}

/**
 * The changes of records, `for await (const change of watch)`: each is `{seq, kind, path,
 * tag, value, version, time}` (docs/records.md#events-and-watching; `value` the fields for
 * `create`, the old path for `move`). Reconnects, resumes and reports lost changes as a
 * Subscription does; the watch of one record ends after its `destroy` or `expire`.
 */
export class RecordWatch extends EventStream {
  #one;

  /** @internal use Space.watchRecords() or Record.watch() */
  constructor(space, route, since, one, signal) {
    super(space, route, since, signal);
    this.#one = one;
  }

  /** @internal */
  get _kinds() {
    return CHANGE_KINDS;
  }

  /** @internal */
  _decode(body) {
    return {
      seq: body.seq,
      kind: body.kind,
      path: body.path,
      tag: body.tag,
      value: valueFrom(body.value),
      version: body.version,
      time: body.time,
    };
  }

  /** @internal */
  _ends(change) {
    return this.#one && (change.kind === "destroy" || change.kind === "expire");
  }
}

function lostError(data) {
  const body = JSON.parse(data);
  return new EventsLost(body.first_missing, body.oldest_available);
}
