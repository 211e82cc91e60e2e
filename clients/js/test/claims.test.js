// No take loses a tuple: takes are claimed, then confirmed; a take whose answer never
// arrives leaves its claim to run out (0.3 s on the claims server) and the tuple returns.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ANY, Unreachable, formal } from "tuplespace";
import { opener, recordingFetch, servers, spaceUrl, waitUntil } from "./helpers.js";

const open = opener();

test("a take aborted while it waits takes nothing", async () => {
  const url = spaceUrl(servers.claims);
  const space = open(url);
  const other = open(url);
  await other.count(["job", ANY]);
  const controller = new AbortController();
  const taking = space.take(["job", formal("int")], { signal: controller.signal });
  await waitUntil(async () => (await other.statistics()).waiters === 1, "the waiting take");
  controller.abort(new Error("no longer wanted"));
  await assert.rejects(taking, { message: "no longer wanted" });
  await waitUntil(async () => (await other.statistics()).waiters === 0, "the wait to be withdrawn");
  await other.write(["job", 1]);
  assert.deepEqual(await other.readAll(["job", ANY]), [["job", 1]]);
});

test("a take whose answer is lost leaves the tuple to return to the space", async () => {
  const url = spaceUrl(servers.claims);
  const fetcher = recordingFetch();
  fetcher.swallow = (call) => call.url.endsWith("/take");
  const space = open(url, { fetch: fetcher });
  const other = open(url);
  await other.write(["job", 1]);
  // The server hands the tuple over under a claim, twice (the take is sent again once),
  // and neither answer arrives.
  await assert.rejects(space.take(["job", formal("int")]), Unreachable);
  assert.equal(fetcher.calls.filter((c) => c.url.endsWith("/take")).length, 2);
  assert.ok(fetcher.calls.every((c) => !c.body?.confirm));
  assert.equal(space.clientStatistics().unconfirmedClaims, 0);
  // The claim runs out, and the tuple is there to take again.
  assert.deepEqual(await other.take(["job", formal("int")], { timeout: 30 }), ["job", 1]);
  assert.equal((await other.statistics()).tuples, 0);
});

test("a waiting takeAll aborted while it waits takes nothing", async () => {
  const url = spaceUrl(servers.claims);
  const space = open(url);
  const other = open(url);
  await other.count(["job", ANY]);
  const controller = new AbortController();
  const taking = space.takeAll(["job", formal("int")], { timeout: null, signal: controller.signal });
  await waitUntil(async () => (await other.statistics()).waiters === 1, "the waiting takeAll");
  controller.abort(new Error("no longer wanted"));
  await assert.rejects(taking, { message: "no longer wanted" });
  await waitUntil(async () => (await other.statistics()).waiters === 0, "the wait to be withdrawn");
  await other.writeMany([
    ["job", 1],
    ["job", 2],
  ]);
  assert.equal(await other.count(["job", ANY]), 2);
});

test("a waiting takeAll whose answer is lost leaves the tuples to return to the space", async () => {
  const url = spaceUrl(servers.claims);
  const fetcher = recordingFetch();
  fetcher.swallow = (call) => call.url.endsWith("/take_all") && call.body.timeout !== undefined;
  const space = open(url, { fetch: fetcher });
  const other = open(url);
  await other.count(["job", ANY]);
  const taking = space.takeAll(["job", formal("int")], { timeout: 60 });
  await waitUntil(async () => (await other.statistics()).waiters === 1, "the waiting takeAll");
  await other.writeMany([
    ["job", 1],
    ["job", 2],
  ]);
  // The server hands the tuples over under a claim, the take is sent again once and waits
  // again; its answer is lost too.
  await waitUntil(async () => (await other.statistics()).waiters === 1, "the takeAll sent again");
  await other.write(["job", 3]);
  await assert.rejects(taking, Unreachable);
  assert.ok(fetcher.calls.filter((c) => c.url.endsWith("/take_all")).every((c) => c.body.claim === true));
  // The claims run out, and the tuples are there to take again, in their places.
  await waitUntil(async () => (await other.count(["job", ANY])) === 3, "the claims to run out");
  assert.deepEqual(await other.readAll(["job", ANY]), [
    ["job", 1],
    ["job", 2],
    ["job", 3],
  ]);
});

test("a take answered when the first answer was lost gets the tuple once the claim ran out", async () => {
  const url = spaceUrl(servers.claims);
  const fetcher = recordingFetch();
  let lost = 0;
  fetcher.swallow = (call) => call.url.endsWith("/take") && lost++ === 0;
  const space = open(url, { fetch: fetcher });
  await space.write(["job", 2]);
  assert.deepEqual(await space.take(["job", formal("int")]), ["job", 2]);
  assert.equal(lost, 2);
  await space.close();
  assert.equal((await open(url).statistics()).tuples, 0);
});

test("claims are confirmed riding on the next take, or alone, or when the handle closes", async () => {
  const url = spaceUrl(servers.main);
  const fetcher = recordingFetch();
  const takes = () => fetcher.calls.filter((c) => c.url.endsWith("/take"));
  const space = open(url, { fetch: fetcher, confirmDelay: 600 });
  await space.writeMany([0, 1, 2].map((i) => ["job", i]));
  assert.deepEqual(await space.take(["job", ANY]), ["job", 0]);
  assert.equal(space.clientStatistics().unconfirmedClaims, 1);
  assert.deepEqual(await space.take(["job", ANY]), ["job", 1]);
  assert.equal(takes()[1].body.confirm.length, 1);
  assert.deepEqual(await space.tryTake(["nothing"]), null);
  assert.equal(takes()[2].body.confirm.length, 1);
  assert.notEqual(takes()[2].body.confirm[0], takes()[1].body.confirm[0]);
  let stats = space.clientStatistics();
  assert.deepEqual([stats.unconfirmedClaims, stats.claimsConfirmedRiding], [0, 2]);

  const quick = open(url, { confirmDelay: 0.01 });
  assert.deepEqual(await quick.take(["job", ANY]), ["job", 2]);
  await waitUntil(() => quick.clientStatistics().claimsConfirmedAlone === 1, "a confirmation sent alone");
  assert.equal(quick.clientStatistics().unconfirmedClaims, 0);

  await space.write(["job", 3]);
  assert.deepEqual(await space.take(["job", ANY]), ["job", 3]);
  await space.close();
  stats = space.clientStatistics();
  assert.deepEqual([stats.unconfirmedClaims, stats.claimsConfirmedAlone, stats.claimsLost], [0, 1, 0]);
  const after = await open(url).statistics();
  assert.deepEqual([after.tuples, after.transactions, after.takes], [0, 0, 4]);
});

test("a claim that ran out before its confirmation is counted as lost", async () => {
  const url = spaceUrl(servers.claims);
  const space = open(url, { confirmDelay: 600 });
  const other = open(url);
  await space.write(["job", 1]);
  assert.deepEqual(await space.take(["job", ANY]), ["job", 1]);
  // Not confirmed in time: the tuple goes back, and may be taken again.
  assert.deepEqual(await other.take(["job", ANY], { timeout: 30 }), ["job", 1]);
  assert.equal(await space.tryTake(["nothing"]), null);
  assert.equal(space.clientStatistics().claimsLost, 1);
});
