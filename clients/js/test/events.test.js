// Subscriptions: events in order, resumed by sequence number after a closed or broken
// stream, lost events reported, and the ways a subscription ends.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ANY, EventsLost, InvalidValue, NotFound, connect, connectServer, formal } from "tuplespace";
import { newName, opener, servers, spaceUrl, waitUntil } from "./helpers.js";

const open = opener();

/** The next `n` events of a subscription, as [kind, ...tuple]. */
async function take(subscription, n) {
  const out = [];
  while (out.length < n) {
    const { value, done } = await subscription.next();
    assert.equal(done, false);
    out.push([value.kind, ...value.tuple]);
  }
  return out;
}

/**
 * A fetch whose event streams can be broken: `breakStreams()` cuts every stream opened so
 * far, as a lost connection would; `calls` holds the headers of each events request.
 */
function breakableFetch() {
  const streams = [];
  const calls = [];
  const fetcher = async (url, init = {}) => {
    const response = await fetch(url, init);
    if (!url.includes("/events")) return response;
    calls.push({ ...init.headers });
    const source = response.body.getReader();
    let cut;
    const broken = new Promise((resolve) => {
      cut = resolve;
    });
    streams.push(cut);
    const body = new ReadableStream({
      async pull(controller) {
        const next = await Promise.race([source.read(), broken]);
        if (next === undefined) {
          source.cancel().catch(() => {});
          controller.error(new TypeError("terminated: the connection broke"));
        } else if (next.done) {
          controller.close();
        } else {
          controller.enqueue(next.value);
        }
      },
      cancel() {
        return source.cancel();
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  fetcher.calls = calls;
  fetcher.breakStreams = () => streams.forEach((cut) => cut());
  return fetcher;
}

test("events arrive in order, of the kinds asked for", async () => {
  const space = open(spaceUrl());
  const all = await space.subscribe(["job", formal("int")]);
  const takes = await space.subscribe(["job", ANY], { events: "take" });
  const lease = await space.write(["job", 1], { lease: 60 });
  await space.write(["job", 2]);
  await space.write(["other", 3]);
  assert.deepEqual(await space.take(["job", 2]), ["job", 2]);
  await space.statistics(); // confirms the take: its event is then in the log
  await lease.cancel();
  await space.write(["job", 3], { lease: 0.01 });
  const events = [];
  for await (const event of all) {
    events.push(event);
    if (events.length === 6) break;
  }
  assert.deepEqual(
    events.map((e) => [e.kind, ...e.tuple]),
    [
      ["write", "job", 1],
      ["write", "job", 2],
      ["take", "job", 2],
      ["cancel", "job", 1],
      ["write", "job", 3],
      ["expire", "job", 3],
    ],
  );
  assert.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1].seq));
  assert.ok(events.every((e) => typeof e.time === "number" && e.time > 1.7e9));
  assert.equal(all.closed, true); // leaving the loop closed it
  assert.deepEqual(await take(takes, 1), [["take", "job", 2]]);
  takes.close();
  assert.deepEqual(await takes.next(), { value: undefined, done: true });
  await waitUntil(async () => (await space.statistics()).subscribers === 0, "the server to end the subscriptions");
});

test("ANY alone watches every tuple, whatever its arity", async () => {
  const space = open(spaceUrl());
  await space.writeMany([["a"], []]);
  const sub = await space.subscribe(ANY, { existing: true });
  await space.write(["b", 1, 2]);
  await space.write(Array.from({ length: 40 }, (_, i) => i));
  const events = [];
  for await (const event of sub) {
    events.push([event.kind, event.tuple.length]);
    if (events.length === 4) break;
  }
  assert.deepEqual(events, [
    ["present", 1],
    ["present", 0],
    ["write", 3],
    ["write", 40],
  ]);
});

test("existing: the tuples already there come first, as present, then the live events", async () => {
  const space = open(spaceUrl());
  await space.writeMany([
    ["job", 1],
    ["other", 0],
    ["job", 2],
  ]);
  const before = (await space.statistics()).last_event;
  const sub = await space.subscribe(["job", ANY], { existing: true, events: "write" });
  await space.write(["job", 3]);
  const events = [];
  for await (const event of sub) {
    events.push(event);
    if (events.length === 3) break;
  }
  assert.deepEqual(
    events.map((e) => [e.kind, ...e.tuple]),
    [
      ["present", "job", 1],
      ["present", "job", 2],
      ["write", "job", 3],
    ],
  );
  assert.deepEqual(
    events.map((e) => e.seq),
    [before, before, before + 1],
  );
  await assert.rejects(space.subscribe(["job", ANY], { existing: true, since: 0 }), (e) => {
    assert.ok(e instanceof InvalidValue);
    assert.equal(e.field, "existing");
    return true;
  });
});

test("a subscription resumes after the last event seen, with since", async () => {
  const space = open(spaceUrl());
  const first = await space.subscribe(["n", ANY]);
  await space.writeMany([
    ["n", 1],
    ["n", 2],
  ]);
  const seen = await take(first, 1);
  assert.deepEqual(seen, [["write", "n", 1]]);
  const last = first.lastSeq;
  first.close();
  await space.write(["n", 3]);
  const again = await space.subscribe(["n", ANY], { since: last });
  assert.deepEqual(await take(again, 2), [
    ["write", "n", 2],
    ["write", "n", 3],
  ]);
  assert.deepEqual(again.statistics(), { delivered: 2, lastSeq: last + 2, closed: false, reconnects: 0 });
  again.close();
});

test("a broken stream is opened again after the last event received, and nothing is missed", async () => {
  const fetcher = breakableFetch();
  const url = spaceUrl();
  const space = open(url, { fetch: fetcher });
  const writer = open(url);
  const subscription = await space.subscribe(["n", ANY]);
  await writer.write(["n", 1]);
  assert.deepEqual(await take(subscription, 1), [["write", "n", 1]]);
  const event = subscription.lastSeq;
  fetcher.breakStreams();
  await writer.writeMany([
    ["n", 2],
    ["n", 3],
  ]);
  assert.deepEqual(await take(subscription, 2), [
    ["write", "n", 2],
    ["write", "n", 3],
  ]);
  assert.equal(fetcher.calls.length, 2);
  assert.equal(fetcher.calls[0]["Last-Event-ID"], undefined);
  assert.equal(fetcher.calls[1]["Last-Event-ID"], String(event));
  assert.equal(subscription.statistics().reconnects, 1);
  subscription.close();
});

test("events the log no longer holds are reported, and the subscription goes on", async () => {
  const name = newName();
  const server = connectServer(servers.main);
  await server.createSpace(name, { event_retention: 2, store: "memory" });
  const fetcher = breakableFetch();
  const space = open(`${servers.main}/spaces/${name}`, { fetch: fetcher });
  const subscription = await space.subscribe(["n", ANY]);
  await space.write(["n", 1]);
  assert.deepEqual(await take(subscription, 1), [["write", "n", 1]]);
  fetcher.breakStreams();
  await space.writeMany([
    ["n", 2],
    ["n", 3],
    ["n", 4],
  ]);
  await assert.rejects(
    subscription.next(),
    (e) => e instanceof EventsLost && e.firstMissing === 2 && e.oldestAvailable === 3,
  );
  assert.deepEqual(await take(subscription, 2), [
    ["write", "n", 3],
    ["write", "n", 4],
  ]);
  subscription.close();

  // Asked for from a point the log has left: at once.
  await assert.rejects(
    space.subscribe(["n", ANY], { since: 1 }),
    (e) => e instanceof EventsLost && e.firstMissing === 2 && e.oldestAvailable === 3,
  );
});

test("aborting the signal rejects the waiting call with its reason and ends the subscription", async () => {
  const space = open(spaceUrl());
  const controller = new AbortController();
  const subscription = await space.subscribe(["n"], { signal: controller.signal });
  const waiting = subscription.next();
  controller.abort(new Error("enough"));
  await assert.rejects(waiting, { message: "enough" });
  assert.equal(subscription.closed, true);
  await waitUntil(async () => (await space.statistics()).subscribers === 0, "the server to end the subscription");
});

test("a subscription to a space that was deleted ends with NotFound", async () => {
  const { admin, worker } = servers.secrets;
  const name = newName();
  const server = connectServer(servers.tokens, { token: admin });
  await server.createSpace(name);
  const space = open(`${servers.tokens}/spaces/${name}`, { token: worker });
  const subscription = await space.subscribe(["n"]);
  await server.deleteSpace(name);
  await assert.rejects(subscription.next(), NotFound);
  assert.equal(subscription.closed, true);
  assert.deepEqual(await subscription.next(), { value: undefined, done: true });
});

test("a subscription that cannot resume in a space made anew ends with InvalidValue", async () => {
  const name = newName();
  const space = open(`${servers.main}/spaces/${name}`);
  const subscription = await space.subscribe(["n"]);
  await space.write(["n"]);
  assert.deepEqual(await take(subscription, 1), [["write", "n"]]);
  await connectServer(servers.main).deleteSpace(name);
  // Opened again, the stream makes the space anew, whose log does not reach event 1.
  await assert.rejects(subscription.next(), (e) => e instanceof InvalidValue && e.field === "since");
  assert.equal(subscription.closed, true);
});

test("closing the space ends its subscriptions", async () => {
  const space = connect(spaceUrl());
  const subscription = await space.subscribe(["n"]);
  const waiting = subscription.next();
  await space.close();
  assert.deepEqual(await waiting, { value: undefined, done: true });
});
