// A space of a server, its leases and its transactions.

import {
  InvalidValue,
  LimitReached,
  NotFound,
  SpaceClosed,
  SpaceFull,
  Timeout,
  TransactionAborted,
  TransactionError,
} from "./errors.js";
import { describe } from "./values.js";
import { ANY } from "./templates.js";
import { encodeTemplate, stringify } from "./encoding.js";
import { creditFrom, tupleFromWire } from "./decoding.js";
import {
  CHANGE_KINDS,
  checkExisting,
  checkKinds,
  checkLease,
  checkLimit,
  checkPath,
  checkRef,
  checkSince,
  checkTimeout,
  creditWire,
  fieldsWire,
  recordTemplateWire,
  templateWire,
  tupleWire,
  tuplesWire,
} from "./arguments.js";
import { now, spacePath } from "./http.js";
import { FULL, Record, addressFrom, recordDataFrom } from "./records.js";
import { RecordWatch, Subscription } from "./events.js";
import { Clock, Rules } from "./rules.js";

/** Seconds a claim waits for the next take to carry its confirmation before it is sent alone. */
const CONFIRM_DELAY = 1;

/**
 * A space on a server. Made by `connect(url)` or `server.space(name)`; no request is sent
 * until an operation is called (a space is created on first use when the token may).
 */
export class Space {
  #http;
  #path;
  #closing = new AbortController();
  #closed = false;
  #confirmations = [];
  #confirmDelay;
  #confirmTimer = null;
  #transactions = new Set();
  #subscriptions = new Set();
  #rules = null;
  #clock = null;
  #stats = { longPollsReissued: 0, claimsConfirmedRiding: 0, claimsConfirmedAlone: 0, claimsLost: 0 };

  /** @internal use connect() or Server.space() */
  constructor(http, name, options = {}) {
    this.#http = http;
    this.#path = spacePath(name);
    this.#confirmDelay = options.confirmDelay ?? CONFIRM_DELAY;
    this.name = name;
    this.url = http.base + this.#path;
  }

  get closed() {
    return this.#closed;
  }

  /** The space's rules (docs/active.md): `space.rules.add`, `list`, `get`, `remove`. */
  get rules() {
    this.#rules ??= new Rules(this);
    return this.#rules;
  }

  /** The space's clock: `now()`, and `advance(seconds)` for a simulated one. */
  get clock() {
    this.#clock ??= new Clock(this);
    return this.#clock;
  }

  /** @internal */
  _request(method, path, body, options = {}) {
    if (this.#closed) return Promise.reject(new SpaceClosed("the space was closed"));
    return this.#http.request(method, this.#path + path, body, { ...options, closing: this.#closing.signal });
  }

  /** @internal the requests of this space: its subscriptions open their streams with them */
  _http() {
    return this.#http;
  }

  /** @internal */
  _forget(handle) {
    this.#transactions.delete(handle);
    this.#subscriptions.delete(handle);
  }

  /**
   * Post until the answer holds `key` or says the wait is over: the server cuts a long wait at
   * its long-poll maximum (`more: true`) and it is asked again for the time left.
   * @internal
   */
  async _longPoll(path, body, timeout, key, { again = false, signal } = {}) {
    const wait = checkTimeout(timeout);
    const deadline = wait === null ? null : now() + wait;
    for (;;) {
      const left = deadline === null ? null : Math.max(deadline - now(), 0);
      const answer = await this._request("POST", path, { ...body, timeout: left }, { wait: left, again, signal });
      if ((answer[key] ?? null) !== null || !answer.more) return answer;
      this.#stats.longPollsReissued++;
    }
  }

  // -- writing

  /**
   * Write a tuple; its Lease. `lease`: seconds to keep it (null: until taken). Into a full
   * space it waits for room up to `timeout` (0: SpaceFull at once, else Timeout after it).
   */
  async write(tuple, { lease, timeout, signal } = {}) {
    const body = { tuple: tupleWire(tuple), lease: checkLease(lease) };
    let answer;
    try {
      answer = await this._longPoll("/write", body, timeout, "lease", { signal });
    } catch (error) {
      if (!(error instanceof SpaceFull) || timeout === 0) throw error;
      // A write that waited and found no room ran out of time.
      throw new Timeout("the space stayed full: no room for the tuple in time");
    }
    return this.#lease(answer.lease);
  }

  /** Write several tuples at once, all or none (never waits for room); their leases. */
  async writeMany(tuples, { lease, signal } = {}) {
    const body = { tuples: tuplesWire(tuples), lease: checkLease(lease) };
    const answer = await this._request("POST", "/write_many", body, { signal });
    return answer.leases.map((l) => this.#lease(l));
  }

  #lease(wire) {
    return new Lease(this, wire.id, wire.expires_at);
  }

  // -- reading and taking

  /** The first tuple matching `template`, left in the space; Timeout after `timeout` s. */
  async read(template, { timeout, signal } = {}) {
    return found(await this._read("", template, timeout, signal), template);
  }

  /** The first tuple matching `template`, removed from the space; Timeout after `timeout` s. */
  async take(template, { timeout, signal } = {}) {
    return found(await this.#take(template, timeout, signal), template);
  }

  /** A matching tuple, or null at once. */
  tryRead(template, { signal } = {}) {
    return this._read("", template, 0, signal);
  }

  /** A matching tuple taken, or null at once. */
  tryTake(template, { signal } = {}) {
    return this.#take(template, 0, signal);
  }

  /**
   * Every matching tuple (at most `limit`). The server answers so many at a time (its
   * `max_results` and `max_answer`): the answers are gathered, each read on from the cursor
   * where the one before stopped. With a `timeout` (seconds; null: forever) it waits for a
   * first match when there is none, then reads every match; [] if none came in time. Absent
   * or 0: never waits.
   */
  readAll(template, { limit, timeout = 0, signal } = {}) {
    return this._all("", "/read_all", template, limit, timeout, signal);
  }

  /**
   * Every matching tuple (at most `limit`), taken under a claim, as `take`'s. With a `timeout`
   * (seconds; null: forever) it waits for matches when there are none: the first write that
   * brings some (a writeMany: all of them) answers with up to `limit`; [] if none came in time.
   * Absent or 0: never waits.
   */
  takeAll(template, { limit, timeout = 0, signal } = {}) {
    return this._all("", "/take_all", template, limit, timeout, signal);
  }

  /** How many tuples match. */
  count(template, { signal } = {}) {
    return this._count("", template, signal);
  }

  /** @internal */
  async _read(prefix, template, timeout, signal) {
    const body = { template: templateWire(template) };
    const answer = await this._longPoll(prefix + "/read", body, timeout, "tuple", { again: true, signal });
    return answer.tuple === null ? null : tupleFromWire(answer.tuple);
  }

  /** Take under a claim; the claims of earlier takes ride along to be confirmed. */
  async #take(template, timeout, signal) {
    const answer = await this.#claiming("/take", { template: templateWire(template) }, "tuple", timeout, signal);
    return answer.tuple === null ? null : tupleFromWire(answer.tuple);
  }

  /** Post a take under a claim; asks again while the server cuts the wait short. */
  async #claiming(path, fields, key, timeout, signal) {
    const wait = checkTimeout(timeout);
    const deadline = wait === null ? null : now() + wait;
    for (;;) {
      const left = deadline === null ? null : Math.max(deadline - now(), 0);
      const answer = await this.#claim(path, { ...fields, timeout: left }, left, signal);
      if (answer[key] !== null || !answer.more) return answer;
      this.#stats.longPollsReissued++;
    }
  }

  /** Post a take (or takeAll) under a claim, with the claims of earlier takes riding along to
   * be confirmed; keep the new claim to confirm later. */
  async #claim(path, fields, wait, signal) {
    const confirm = this.#confirmations.splice(0);
    let answer;
    try {
      answer = await this._request(
        "POST",
        path,
        { ...fields, claim: true, confirm: confirm.length ? confirm : undefined },
        { wait, again: true, signal },
      );
    } catch (error) {
      this.#confirmations.unshift(...confirm);
      throw error;
    }
    const lost = new Set(answer.unconfirmed ?? []);
    this.#stats.claimsConfirmedRiding += confirm.length - lost.size;
    this.#stats.claimsLost += lost.size;
    if (answer.claim) {
      this.#confirmations.push(answer.claim.id);
      this.#confirmTimer ??= setTimeout(() => {
        this.#confirmTimer = null;
        this.#confirmPending();
      }, this.#confirmDelay * 1000);
    }
    return answer;
  }

  /** Confirm, one request each, the claims no take has carried. */
  async #confirmPending() {
    for (let claims; (claims = this.#confirmations.splice(0)).length;) {
      for (const [i, id] of claims.entries()) {
        try {
          // Not cut by closing: a take answered while the handle closes is confirmed too.
          await this.#http.request("POST", `${this.#path}/claims/${encodeURIComponent(id)}/confirm`, undefined, {
            again: true,
          });
          this.#stats.claimsConfirmedAlone++;
        } catch (error) {
          if (error instanceof NotFound) {
            this.#stats.claimsLost++; // it ran out: what it took went back and may be taken again
            continue;
          }
          this.#confirmations.unshift(...claims.slice(i));
          this.#confirmTimer ??= setTimeout(() => {
            this.#confirmTimer = null;
            this.#confirmPending();
          }, this.#confirmDelay * 1000);
          return;
        }
      }
    }
  }

  /**
   * `readAll` or `takeAll`. A server answers so many tuples at a time (then `more`): a read
   * goes on from the cursor of the answer before, a take is asked again, each for the limit
   * left, until the last answer. A read in a transaction has no cursor, so it throws
   * LimitReached instead. A takeAll outside a transaction is claimed, as take is. With a
   * `timeout`, the first answer is a long poll, asked again for the time left while the server
   * cuts the wait short (an answer with no tuples and `more`).
   * @internal
   */
  async _all(prefix, operation, template, limit, timeout, signal) {
    const body = { template: templateWire(template), limit: checkLimit(limit) };
    const wait = checkTimeout(timeout);
    const deadline = wait === null ? null : now() + wait;
    const reading = operation === "/read_all";
    const claiming = !reading && !prefix; // a transaction holds what it takes
    const out = [];
    for (;;) {
      const left = out.length || wait === 0 ? 0 : deadline === null ? null : Math.max(deadline - now(), 0);
      const fields = left === 0 ? body : { ...body, timeout: left };
      const answer = claiming
        ? await this.#claim(operation, fields, left, signal)
        : await this._request("POST", prefix + operation, fields, { wait: left, again: reading, signal });
      if (left !== 0 && !answer.tuples.length && answer.more) {
        this.#stats.longPollsReissued++;
        continue;
      }
      for (const t of answer.tuples) out.push(tupleFromWire(t));
      if (!answer.more) return out;
      if (reading) {
        if (answer.cursor === undefined) {
          throw new LimitReached(
            `the server answered ${out.length} tuples at once (its max_results or max_answer) and more match, ` +
              "past where it can go on: read them with a limit",
            { limit: "max_results", maximum: out.length },
          );
        }
        body.cursor = answer.cursor;
      }
      if (body.limit !== null) body.limit = limit - out.length;
    }
  }

  /** @internal */
  async _count(prefix, template, signal) {
    const answer = await this._request(
      "POST",
      prefix + "/count",
      { template: templateWire(template) },
      { again: true, signal },
    );
    return answer.count;
  }

  // -- atomic compound operations

  /** Take the first match and write `tuple` in its place, in one step; the old tuple. */
  async replace(template, tuple, { lease, timeout, signal } = {}) {
    const body = { template: templateWire(template), tuple: tupleWire(tuple), lease: checkLease(lease) };
    const answer = await this._longPoll("/replace", body, timeout, "tuple", { signal });
    return found(answer.tuple === null ? null : tupleFromWire(answer.tuple), template);
  }

  /** Write `tuple` only if no tuple matches `template`, in one step; whether it wrote. */
  async writeIfAbsent(template, tuple, { lease, signal } = {}) {
    const body = { template: templateWire(template), tuple: tupleWire(tuple), lease: checkLease(lease) };
    return (await this._request("POST", "/write_if_absent", body, { signal })).written;
  }

  // -- events and transactions

  /**
   * Subscribe to the events of tuples matching `template` (`ANY` alone: every tuple, whatever
   * its arity): resolves once the subscription is in place, to an async iterator of events
   * `{seq, kind, tuple, time}`.
   *
   * `events`: the kinds (`write`, `take`, `expire`, `cancel`; all by default). `since`: resume
   * after that event (a `seq`); EventsLost when the log no longer holds what came after it.
   * `existing: true`: first an event of kind `present` for every matching tuple already there
   * (its `seq` the last event before the subscription began), then the live events, each
   * tuple once; not with `since`. A broken connection is opened again after the last event
   * received, with the live events only.
   */
  async subscribe(template, { events, since, existing = false, signal } = {}) {
    if (this.#closed) throw new SpaceClosed("the space was closed");
    const subscription = new Subscription(
      this,
      template === ANY ? { $any: true } : templateWire(template),
      checkKinds(events),
      checkSince(since),
      checkExisting(existing, since),
      signal,
    );
    await subscription._open();
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /** Begin a transaction of `lease` seconds (60 by default). */
  async transaction({ lease = 60, signal } = {}) {
    const seconds = checkLease(lease);
    if (seconds === null)
      throw new InvalidValue("a transaction's lease is a positive number of seconds", { field: "lease" });
    const asked = now();
    const answer = await this._request("POST", "/transactions", { lease: seconds }, { signal });
    const tx = new Transaction(this, answer.id, answer.expires_at, asked + seconds);
    this.#transactions.add(tx);
    return tx;
  }

  // -- records

  /**
   * Create a record at `path` with `fields` (a plain object of tags and values); its handle.
   * `credit` (a `Credit`, decimal text, BigInt or integer) and `lease` (seconds) pay for it
   * (docs/records.md#credit); `principal` names the account that pays, the caller's own by
   * default (another needs `admin` on the space). RecordExists if the path is taken,
   * InsufficientCredit if the account cannot pay.
   */
  async create(path, fields, { credit, lease, principal, signal } = {}) {
    const body = {
      path: checkPath(path),
      fields: fieldsWire(fields),
      credit: creditWire(credit, "credit"),
      lease: checkLease(lease),
      principal,
    };
    const answer = await this._request("POST", "/records/create", body, { signal });
    return this._record(answer.record);
  }

  /** @internal the full handle of a record in an answer */
  _record(wire) {
    return new Record(this, addressFrom(wire.address), wire.id ?? null, FULL, null, false);
  }

  /**
   * A handle on a record, by its path, its address (a `Uri` or its text), a capability's
   * address (which needs no token), `"$"` for the root record, or another handle. RecordNotFound if there
   * is none; a moved record's old path opens it at its new address while it redirects.
   */
  async record(ref, { signal } = {}) {
    const answer = await this._request("POST", "/records/open", { ref: checkRef(ref) }, { again: true, signal });
    const h = answer.handle;
    const operations = Object.freeze([...h.operations]);
    return new Record(this, addressFrom(h.address), h.id ?? null, operations, h.expires_at, false);
  }

  /**
   * The records matching a record template (a plain object of tags and template fields),
   * oldest first, below the path `under`, at most `limit`. Needs `read` on the space: a
   * caller holding only capabilities finds nothing.
   */
  async find(template, { under, limit, signal } = {}) {
    const body = { template: recordTemplateWire(template), under: under ?? null, limit: checkLimit(limit) };
    const answer = await this._request("POST", "/records/find", body, { again: true, signal });
    if (answer.more) {
      const n = answer.records.length;
      throw new LimitReached(`the server answers at most ${n} records at once and more match: find them with a limit`, {
        limit: "max_results",
        maximum: n,
      });
    }
    return answer.records.map((r) => this._record(r));
  }

  /** Remove the oldest record matching `template` and return what it held, or null at once. */
  async tryTakeRecord(template, { under, signal } = {}) {
    return this.#takeRecord(template, under, 0, signal);
  }

  /**
   * Remove the oldest record matching `template` and return what it held, waiting up to
   * `timeout` seconds for one (Timeout after). Taken under a claim, as tuples are: a record
   * whose answer is lost goes back to its place.
   */
  async takeRecord(template, { under, timeout, signal } = {}) {
    const taken = await this.#takeRecord(template, under, timeout, signal);
    if (taken === null) throw new Timeout(`no record matched ${stringify(recordTemplateWire(template))} in time`);
    return taken;
  }

  async #takeRecord(template, under, timeout, signal) {
    const body = { template: recordTemplateWire(template), under: under ?? null };
    const answer = await this.#claiming("/records/take", body, "record", timeout, signal);
    return answer.record === null ? null : recordDataFrom(answer.record);
  }

  /**
   * Watch the changes of the records below `under` (all without it): resolves once the watch
   * is in place, to an async iterator of changes `{seq, kind, path, tag, value, version, time}`.
   * `events`: the kinds (`create`, `update`, `move`, `destroy`, `expire`; all by default);
   * `since`: resume after that change. Reconnects and reports lost changes as `subscribe`.
   */
  async watchRecords({ under, events, since, signal } = {}) {
    let query = `?events=${checkKinds(events, CHANGE_KINDS).join(",")}`;
    if (under !== undefined && under !== null) query += `&under=${encodeURIComponent(checkPath(under, "under"))}`;
    return this._watch(query, checkSince(since), false, signal);
  }

  /** @internal open a record watch of the query and keep it with this handle */
  async _watch(query, since, one, signal) {
    if (this.#closed) throw new SpaceClosed("the space was closed");
    const watch = new RecordWatch(this, "/records/events" + query, since, one, signal);
    await watch._open();
    this.#subscriptions.add(watch);
    return watch;
  }

  /** Add `amount` to the credit account of `principal` (needs `admin`); the new balance. */
  async grantCredit(principal, amount, { signal } = {}) {
    const body = { principal, amount: creditWire(amount, "amount") };
    return creditFrom((await this._request("POST", "/credit/grant", body, { signal })).balance.$credit);
  }

  /** The balance of the account of `principal` (another's than the caller's needs `admin`). */
  async account(principal, { signal } = {}) {
    if (typeof principal !== "string" || principal === "") {
      throw new InvalidValue(`a principal is a non-empty string, got ${describe(principal)}`, { field: "principal" });
    }
    const path = "/credit/" + encodeURIComponent(principal);
    return creditFrom((await this._request("GET", path, undefined, { again: true, signal })).balance.$credit);
  }

  /**
   * Move `amount` from the account of `source` to that of `target`, all or nothing; the new
   * balance of `source`. A `source` other than the caller's own account (its token's name,
   * `anonymous` without a token) needs `admin`; InsufficientCredit if it holds less.
   */
  async transferCredit(source, target, amount, { signal } = {}) {
    const body = { principal: source, to: target, amount: creditWire(amount, "amount") };
    return creditFrom((await this._request("POST", "/credit/transfer", body, { signal })).balance.$credit);
  }

  /**
   * The challenge of the moment to make stamps on (docs/active.md#minting): `{challenge, bits,
   * amount, expires}`, `amount` a `Credit` and `expires` seconds since the epoch on the space's
   * clock. Forbidden if the space mints nothing.
   */
  async creditChallenge({ signal } = {}) {
    const answer = await this._request("POST", "/credit/challenge", undefined, { again: true, signal });
    const { challenge, bits, amount, expires } = answer;
    return { challenge, bits, amount: creditFrom(amount.$credit), expires };
  }

  /**
   * Mint credit for the stamp `nonce` on `challenge` (see `makeStamp`); the new balance. The
   * credit goes to the caller's own account; `principal` names another, which needs `admin`.
   * InvalidValue (`field` "challenge" or "nonce") for a stale challenge or a bad or spent stamp.
   */
  async mintCredit(challenge, nonce, { principal, signal } = {}) {
    const body = { challenge, nonce };
    if (principal !== undefined && principal !== null) body.principal = principal;
    return creditFrom((await this._request("POST", "/credit/mint", body, { signal })).balance.$credit);
  }

  // -- statistics and closing

  /**
   * The space's statistics as the server keeps them (docs/semantics.md#statistics), once the
   * takes of this handle are final; `closed` says whether this handle is closed.
   */
  async statistics({ signal } = {}) {
    if (!this.#closed) await this.#flush();
    const answer = await this.#http.request("GET", this.#path, undefined, { again: true, signal });
    return { ...answer.statistics, closed: this.#closed };
  }

  /** What this handle did: requests, long polls asked again, claims; asks the server nothing. */
  clientStatistics() {
    return {
      requests: this.#http.requests,
      ...this.#stats,
      unconfirmedClaims: this.#confirmations.length,
      closed: this.#closed,
    };
  }

  async #flush() {
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = null;
    await this.#confirmPending();
  }

  /**
   * Close this handle: the claims it received are confirmed, its open transactions abort, its
   * subscriptions end, and calls still waiting reject with SpaceClosed. The space stays.
   */
  async close() {
    if (this.#closed) return;
    await this.#flush();
    for (const tx of [...this.#transactions]) {
      await tx.abort().catch(() => {}); // its lease ends it otherwise
    }
    this.#closed = true;
    this.#closing.abort();
    for (const sub of [...this.#subscriptions]) sub.close();
  }
}

function found(t, template) {
  if (t === null) throw new Timeout(`no tuple matched ${encodeTemplate(template)} in time`);
  return t;
}

/** The lease of a written tuple: `expiresAt` is seconds since the epoch, or null (forever). */
export class Lease {
  #space;

  /** @internal */
  constructor(space, id, expiresAt) {
    this.#space = space;
    this.id = id;
    this.expiresAt = expiresAt;
  }

  /** Keep the tuple `seconds` from now (null: forever); UnknownLease once it is gone. */
  async renew(seconds, { signal } = {}) {
    const answer = await this.#space._request(
      "POST",
      `/leases/${this.id}/renew`,
      { lease: checkLease(seconds) },
      { signal },
    );
    this.expiresAt = answer.expires_at;
  }

  /** Remove the tuple now; UnknownLease once it is gone. */
  async cancel({ signal } = {}) {
    await this.#space._request("DELETE", `/leases/${this.id}`, undefined, { signal });
  }
}

/**
 * A transaction: the operations of a space, private until `commit()`; `abort()` puts every
 * taken tuple back. Its lease runs out unless renewed, and then it aborts by itself.
 */
export class Transaction {
  #space;
  #prefix;
  #state = "active";
  #ends; // when the lease runs out, on this side's clock

  /** @internal use Space.transaction() */
  constructor(space, id, expiresAt, ends) {
    this.#space = space;
    this.#prefix = `/transactions/${encodeURIComponent(id)}`;
    this.#ends = ends;
    this.id = id;
    this.expiresAt = expiresAt;
  }

  /** `"active"`, `"committed"` or `"aborted"` (also once its lease ran out). */
  get state() {
    if (this.#state === "active" && now() >= this.#ends) this.#ended("aborted");
    return this.#state;
  }

  #ended(state) {
    this.#state = state;
    this.#space._forget(this);
  }

  #ready() {
    const state = this.state;
    if (state === "aborted") throw new TransactionAborted("the transaction was aborted");
    if (state === "committed") throw new TransactionError("the transaction has ended: it was committed");
    return this.#prefix;
  }

  async #watch(operation) {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof TransactionAborted) this.#ended("aborted");
      throw error;
    }
  }

  /** Write `tuple` at commit; its `lease` counts from then. */
  async write(tuple, { lease, signal } = {}) {
    const body = { tuple: tupleWire(tuple), lease: checkLease(lease) };
    await this.#watch(() => this.#space._request("POST", this.#ready() + "/write", body, { signal }));
  }

  /** Write several tuples at commit. */
  async writeMany(tuples, { lease, signal } = {}) {
    const body = { tuples: tuplesWire(tuples), lease: checkLease(lease) };
    await this.#watch(() => this.#space._request("POST", this.#ready() + "/write_many", body, { signal }));
  }

  async read(template, { timeout, signal } = {}) {
    return found(await this.#watch(() => this.#space._read(this.#ready(), template, timeout, signal)), template);
  }

  async take(template, { timeout, signal } = {}) {
    return found(await this.#take(template, timeout, signal), template);
  }

  tryRead(template, { signal } = {}) {
    return this.#watch(() => this.#space._read(this.#ready(), template, 0, signal));
  }

  tryTake(template, { signal } = {}) {
    return this.#take(template, 0, signal);
  }

  // No claim: a tuple taken in a transaction is held by it, and returns if it aborts.
  async #take(template, timeout, signal) {
    const body = { template: templateWire(template) };
    const answer = await this.#watch(() =>
      this.#space._longPoll(this.#ready() + "/take", body, timeout, "tuple", { signal }),
    );
    return answer.tuple === null ? null : tupleFromWire(answer.tuple);
  }

  readAll(template, { limit, timeout = 0, signal } = {}) {
    return this.#watch(() => this.#space._all(this.#ready(), "/read_all", template, limit, timeout, signal));
  }

  takeAll(template, { limit, timeout = 0, signal } = {}) {
    return this.#watch(() => this.#space._all(this.#ready(), "/take_all", template, limit, timeout, signal));
  }

  count(template, { signal } = {}) {
    return this.#watch(() => this.#space._count(this.#ready(), template, signal));
  }

  /**
   * Make the takes final and the writes visible, atomically; rejects with SpaceFull, the
   * transaction aborted, when its writes do not fit in the space's capacity.
   */
  async commit({ signal } = {}) {
    try {
      await this.#watch(() => this.#space._request("POST", this.#ready() + "/commit", undefined, { signal }));
    } catch (error) {
      if (error instanceof SpaceFull) this.#ended("aborted");
      throw error;
    }
    this.#ended("committed");
  }

  /** Drop the writes and put every taken tuple back; nothing happens once it has ended. */
  async abort({ signal } = {}) {
    if (this.state !== "active") return;
    try {
      await this.#space._request("POST", this.#prefix + "/abort", undefined, { signal });
    } catch (error) {
      if (!(error instanceof TransactionError)) throw error; // else it had ended on the server
    }
    this.#ended("aborted");
  }

  /** Give the transaction `seconds` more from now. */
  async renew(seconds, { signal } = {}) {
    const lease = checkLease(seconds);
    if (lease === null)
      throw new InvalidValue("a transaction's lease is a positive number of seconds", { field: "lease" });
    const asked = now();
    const answer = await this.#watch(() =>
      this.#space._request("POST", this.#ready() + "/renew", { lease }, { signal }),
    );
    this.expiresAt = answer.expires_at;
    this.#ends = asked + lease;
  }
}
