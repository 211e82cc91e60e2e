// Every operation of a space, against a real server.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import {
  ANY,
  Conflict,
  Float,
  InvalidValue,
  NotFound,
  SpaceClosed,
  SpaceFull,
  Time,
  Timeout,
  TransactionAborted,
  TransactionError,
  UnknownLease,
  connect,
  connectServer,
  credit,
  encode,
  float,
  formal,
  range,
  time,
  uri,
} from "tuplespace";
import { newName, servers, spaceUrl, waitUntil } from "./helpers.js";

const opened = [];

/** A handle on a new space of the main server (closed after the tests). */
function newSpace(options) {
  const space = connect(spaceUrl(), options);
  opened.push(space);
  return space;
}

after(() => Promise.all(opened.map((s) => s.close())));

describe("writing, reading and taking", () => {
  test("a tuple of every type goes in and comes out the same", async () => {
    const space = newSpace();
    const tuple = [
      "every",
      null,
      true,
      7,
      2n ** 64n,
      1.5,
      float(2),
      "café 😀",
      new Uint8Array([0, 255]),
      time("2024-05-01T12:00:00.000001Z"),
      uri("tuplespace://n1/a"),
      credit("12.50"),
      [1, ["x"]],
      { temp: float(21.5), $kind: "reading" },
    ];
    const lease = await space.write(tuple);
    assert.equal(lease.expiresAt, null);
    const read = await space.read(["every", ...Array(tuple.length - 1).fill(ANY)]);
    assert.equal(encode(read), encode(tuple));
    assert.ok(read[5] instanceof Float && read[6] instanceof Float && read[9] instanceof Time);
    assert.equal(read[4], 2n ** 64n);
    const taken = await space.take(["every", ...Array(tuple.length - 1).fill(ANY)]);
    assert.equal(encode(taken), encode(tuple));
    assert.equal(await space.count([ANY, ...Array(tuple.length - 1).fill(ANY)]), 0);
  });

  test("typed equality: 1, float(1) and true are three values", async () => {
    const space = newSpace();
    await space.writeMany([
      ["v", 1],
      ["v", float(1)],
      ["v", true],
    ]);
    assert.deepEqual(await space.take(["v", float(1)]), ["v", new Float(1)]);
    assert.deepEqual(await space.take(["v", true]), ["v", true]);
    assert.deepEqual(await space.take(["v", 1]), ["v", 1]);
    assert.equal(await space.tryTake(["v", ANY]), null);
  });

  test("tryRead and tryTake answer null at once; read and take reject with Timeout", async () => {
    const space = newSpace();
    assert.equal(await space.tryRead(["none"]), null);
    assert.equal(await space.tryTake(["none"]), null);
    await assert.rejects(space.read(["none"], { timeout: 0 }), Timeout);
    await assert.rejects(
      space.take(["none"], { timeout: 0.05 }),
      (e) => e instanceof Timeout && e.message.includes('["none"]'),
    );
  });

  test("a blocking take waits, longer than the server's long polls, for a write", async () => {
    const space = newSpace();
    const writer = connect(space.url);
    opened.push(writer);
    const taking = space.take(["job", formal("int")]);
    await waitUntil(() => space.clientStatistics().longPollsReissued >= 3, "long polls asked again");
    await writer.write(["job", 1]);
    assert.deepEqual(await taking, ["job", 1]);
    const reading = space.read(["later"], { timeout: 60 });
    await waitUntil(() => space.clientStatistics().longPollsReissued >= 6, "long polls asked again");
    await writer.write(["later"]);
    assert.deepEqual(await reading, ["later"]);
  });

  test("readAll, takeAll and count, with limits", async () => {
    const space = newSpace();
    await space.writeMany([1, 2, 3, 4].map((i) => ["n", i]));
    assert.deepEqual(await space.readAll(["n", ANY]), [
      ["n", 1],
      ["n", 2],
      ["n", 3],
      ["n", 4],
    ]);
    assert.deepEqual(await space.readAll(["n", range(2, 4)], { limit: 1 }), [["n", 2]]);
    assert.equal(await space.count(["n", ANY]), 4);
    assert.deepEqual(await space.takeAll(["n", ANY], { limit: 3 }), [
      ["n", 1],
      ["n", 2],
      ["n", 3],
    ]);
    assert.deepEqual(await space.takeAll(["n", ANY]), [["n", 4]]);
    assert.equal(await space.count(["n", ANY]), 0);
    await assert.rejects(space.readAll(["n"], { limit: -1 }), (e) => e instanceof InvalidValue && e.field === "limit");
  });

  test("takeAll and readAll with a timeout wait, then answer several at once", async () => {
    const space = newSpace();
    const writer = connect(space.url);
    opened.push(writer);
    const taking = space.takeAll(["job", formal("int")], { limit: 3, timeout: null });
    // Asked again past the server's long polls of 0.1 s.
    await waitUntil(() => space.clientStatistics().longPollsReissued >= 3, "long polls asked again");
    await writer.writeMany([0, 1, 2, 3, 4].map((i) => ["job", i]));
    assert.deepEqual(await taking, [
      ["job", 0],
      ["job", 1],
      ["job", 2],
    ]);
    const reading = space.readAll(["job", formal("int")], { timeout: 60 });
    assert.deepEqual(await reading, [
      ["job", 3],
      ["job", 4],
    ]);
    const reading2 = space.readAll(["later", ANY], { timeout: 60 });
    await waitUntil(async () => (await space.statistics()).waiters === 1, "the waiting readAll");
    await writer.writeMany([
      ["later", 1],
      ["later", 2],
    ]);
    assert.deepEqual(await reading2, [
      ["later", 1],
      ["later", 2],
    ]);
    assert.equal(await space.count(["later", ANY]), 2);
  });

  test("takeAll and readAll whose timeout runs out answer [] and take nothing later", async () => {
    const space = newSpace();
    assert.deepEqual(await space.takeAll(["job", ANY], { timeout: 0.05 }), []);
    assert.deepEqual(await space.readAll(["job", ANY], { timeout: 0.05 }), []);
    assert.deepEqual(await space.takeAll(["job", ANY]), []); // no timeout: never waits
    assert.equal((await space.statistics()).waiters, 0);
    await space.write(["job", 1]);
    assert.equal(await space.count(["job", ANY]), 1);
    await assert.rejects(space.takeAll(["job"], { timeout: -1 }), (e) => e instanceof InvalidValue && e.field === "timeout");
  });

  test("replace and writeIfAbsent", async () => {
    const space = newSpace();
    assert.equal(await space.writeIfAbsent(["lock", ANY], ["lock", "a"]), true);
    assert.equal(await space.writeIfAbsent(["lock", ANY], ["lock", "b"]), false);
    assert.deepEqual(await space.replace(["lock", ANY], ["lock", "c"]), ["lock", "a"]);
    assert.deepEqual(await space.readAll(["lock", ANY]), [["lock", "c"]]);
    await assert.rejects(space.replace(["none"], ["x"], { timeout: 0 }), Timeout);
  });
});

describe("leases", () => {
  test("renew and cancel; a lease of a gone tuple is unknown", async () => {
    const space = newSpace();
    const lease = await space.write(["leased"], { lease: 30 });
    assert.ok(lease.expiresAt > Date.now() / 1000 + 20);
    await lease.renew(600);
    assert.ok(lease.expiresAt > Date.now() / 1000 + 500);
    await lease.renew(null);
    assert.equal(lease.expiresAt, null);
    await lease.cancel();
    assert.equal(await space.count(["leased"]), 0);
    await assert.rejects(lease.cancel(), (e) => e instanceof UnknownLease && e instanceof NotFound && e.status === 404);
    await assert.rejects(lease.renew(5), UnknownLease);
  });

  test("every tuple of writeMany has its lease", async () => {
    const space = newSpace();
    const leases = await space.writeMany([["a"], ["b"]], { lease: 60 });
    assert.equal(leases.length, 2);
    await leases[1].cancel();
    assert.deepEqual(await space.readAll([ANY]), [["a"]]);
  });

  test("a tuple expires when its lease runs out", async () => {
    const space = newSpace();
    const lease = await space.write(["brief"], { lease: 60 });
    assert.deepEqual(await space.read(["brief"], { timeout: 0 }), ["brief"]);
    await lease.renew(0.01);
    await waitUntil(async () => (await space.count(["brief"])) === 0, "the lease to run out");
  });

  test("leases and timeouts are checked before they travel", async () => {
    const space = newSpace();
    await assert.rejects(space.write(["x"], { lease: 0 }), (e) => e instanceof InvalidValue && e.field === "lease");
    await assert.rejects(space.write(["x"], { lease: 1e-300 }), (e) => e instanceof InvalidValue && e.field === "lease");
    await assert.rejects(space.write(["x"], { lease: "1" }), (e) => e instanceof InvalidValue && e.field === "lease");
    await assert.rejects(space.read(["x"], { timeout: -1 }), (e) => e instanceof InvalidValue && e.field === "timeout");
    assert.equal(space.clientStatistics().requests, 0);
  });
});

describe("a space with a capacity", () => {
  test("a write into a full space waits for room, or fails", async () => {
    const name = newName();
    const server = connectServer(servers.main);
    await server.createSpace(name, { capacity: 1, store: "memory" });
    const space = server.space(name);
    opened.push(space);
    await space.write(["a"]);
    await assert.rejects(space.write(["b"], { timeout: 0 }), (e) => e instanceof SpaceFull && e.code === "space_full");
    await assert.rejects(space.writeMany([["b"]]), SpaceFull);
    await assert.rejects(space.write(["b"], { timeout: 0.05 }), Timeout);
    const writing = space.write(["c"]);
    await waitUntil(async () => (await space.statistics()).waiting_writers === 1, "a waiting writer");
    assert.deepEqual(await space.take(["a"]), ["a"]);
    await writing;
    assert.deepEqual(await space.readAll([ANY]), [["c"]]);
  });

  test("a commit whose writes do not fit rejects with SpaceFull and aborts", async () => {
    const name = newName();
    const server = connectServer(servers.main);
    await server.createSpace(name, { capacity: 2, store: "memory" });
    const space = server.space(name);
    opened.push(space);
    await space.write(["kept"]);
    await space.write(["job", 1]);
    const tx = await space.transaction({ lease: 30 });
    assert.deepEqual(await tx.take(["job", ANY]), ["job", 1]);
    await tx.writeMany([["a"], ["b"]]);
    await assert.rejects(tx.commit(), (e) => e instanceof SpaceFull && e.code === "space_full");
    assert.equal(tx.state, "aborted");
    await assert.rejects(tx.write(["c"]), TransactionAborted);
    assert.deepEqual(await space.readAll([ANY, ANY]), [["job", 1]]);
    assert.equal(await space.count([ANY]), 1);
  });
});

describe("transactions", () => {
  test("writes show at commit; takes are final at commit", async () => {
    const space = newSpace();
    await space.write(["job", 1]);
    const tx = await space.transaction({ lease: 30 });
    assert.equal(tx.state, "active");
    assert.ok(typeof tx.id === "string" && tx.expiresAt > Date.now() / 1000);
    assert.deepEqual(await tx.take(["job", ANY]), ["job", 1]);
    await tx.write(["result", 1]);
    await tx.writeMany([["result", 2]]);
    assert.equal(await space.count(["job", ANY]), 0);
    assert.equal(await space.count(["result", ANY]), 0);
    assert.equal(await tx.count(["result", ANY]), 2);
    assert.deepEqual(await tx.readAll(["result", ANY]), [
      ["result", 1],
      ["result", 2],
    ]);
    assert.deepEqual(await tx.read(["result", 2]), ["result", 2]);
    assert.deepEqual(await tx.tryRead(["job", ANY]), null);
    await tx.commit();
    assert.equal(tx.state, "committed");
    assert.deepEqual(await space.readAll(["result", ANY]), [
      ["result", 1],
      ["result", 2],
    ]);
    await assert.rejects(tx.write(["late"]), TransactionError);
  });

  test("abort puts the taken tuples back and drops the writes", async () => {
    const space = newSpace();
    await space.writeMany([
      ["job", 1],
      ["job", 2],
    ]);
    const tx = await space.transaction();
    assert.deepEqual(await tx.takeAll(["job", ANY]), [
      ["job", 1],
      ["job", 2],
    ]);
    assert.deepEqual(await tx.tryTake(["job", ANY]), null);
    await tx.write(["result"]);
    await tx.abort();
    assert.equal(tx.state, "aborted");
    await tx.abort(); // nothing happens to an ended transaction
    assert.deepEqual(await space.readAll([ANY, ANY]), [
      ["job", 1],
      ["job", 2],
    ]);
    assert.equal(await space.count(["result"]), 0);
    await assert.rejects(tx.count(["job", ANY]), TransactionAborted);
  });

  test("a transaction whose lease ran out on the server is aborted", async () => {
    const space = newSpace();
    await space.write(["job"]);
    const tx = await space.transaction({ lease: 30 });
    await tx.take(["job"]);
    await tx.renew(0.05);
    await waitUntil(async () => (await space.count(["job"])) === 1, "the transaction to abort");
    assert.equal(tx.state, "aborted");
    await assert.rejects(tx.commit(), TransactionAborted);
  });

  test("a waiting takeAll in a transaction holds what a writeMany brings", async () => {
    const space = newSpace();
    const tx = await space.transaction();
    const taking = tx.takeAll(["job", ANY], { timeout: 60 });
    await waitUntil(async () => (await space.statistics()).waiters === 1, "the waiting takeAll");
    await space.writeMany([
      ["job", 1],
      ["job", 2],
    ]);
    assert.deepEqual(await taking, [
      ["job", 1],
      ["job", 2],
    ]);
    assert.equal(await space.count(["job", ANY]), 0);
    await tx.abort();
    assert.equal(await space.count(["job", ANY]), 2);
  });

  test("a blocking take in a transaction waits for a write", async () => {
    const space = newSpace();
    const tx = await space.transaction();
    const taking = tx.take(["job", ANY], { timeout: 60 });
    await waitUntil(async () => (await space.statistics()).waiters === 1, "the waiting take");
    await space.write(["job", 5]);
    assert.deepEqual(await taking, ["job", 5]);
    await tx.commit();
    assert.equal(await space.count(["job", ANY]), 0);
  });
});

describe("statistics and closing", () => {
  test("the statistics of a space and of the handle", async () => {
    const space = newSpace();
    await space.writeMany([["a", 1], ["b"]]);
    await space.take(["b"]);
    const stats = await space.statistics();
    assert.equal(stats.tuples, 1);
    assert.deepEqual(stats.arities, [2]);
    assert.equal(stats.takes, 1);
    assert.equal(stats.closed, false);
    const mine = space.clientStatistics();
    assert.equal(mine.unconfirmedClaims, 0); // statistics() confirmed the take first
    assert.equal(mine.claimsConfirmedAlone, 1);
    assert.ok(mine.requests >= 4);
  });

  test("closing rejects the waiting calls with SpaceClosed, and their tuple stays", async () => {
    const space = newSpace();
    const other = connect(space.url);
    opened.push(other);
    await other.count(["job", ANY]); // the space is made on first use
    const taking = space.take(["job", ANY]);
    await waitUntil(async () => (await other.statistics()).waiters === 1, "the waiting take");
    await space.close();
    await assert.rejects(taking, SpaceClosed);
    await assert.rejects(space.tryRead(["job", ANY]), SpaceClosed);
    await waitUntil(async () => (await other.statistics()).waiters === 0, "the wait to be withdrawn");
    await other.write(["job", 1]);
    assert.equal(await other.count(["job", ANY]), 1);
    assert.equal((await space.statistics()).closed, true); // a closed handle still answers
  });

  test("the spaces of a server", async () => {
    const server = connectServer(servers.main + "/");
    assert.equal((await server.health()).status, "ok");
    const name = newName();
    const made = await server.createSpace(name, { order: "lifo", store: "memory" });
    assert.equal(made.options.order, "lifo");
    await assert.rejects(
      server.createSpace(name, { order: "fifo" }),
      (e) => e instanceof Conflict && e.code === "space_exists",
    );
    const space = server.space(name);
    await space.writeMany([["a"], ["b"]]);
    assert.deepEqual(await space.take([ANY]), ["b"]);
    await space.close();
    const listed = (await server.spaces()).find((s) => s.name === name);
    assert.equal(listed.statistics.tuples, 1);
    assert.equal(listed.options.order, "lifo");
    assert.equal((await server.describe(name)).statistics.tuples, 1);
    await server.deleteSpace(name);
    await assert.rejects(server.describe(name), (e) => e instanceof NotFound && e.code === "not_found");
    await assert.rejects(server.deleteSpace(name), NotFound);
  });

  test("URLs that name no space are refused", () => {
    for (const url of ["ftp://h/spaces/a", "http://h/", "http://h/spaces/", "http://h/spaces/a?x=1", "nonsense"]) {
      assert.throws(
        () => connect(url),
        (e) => e instanceof InvalidValue && e.field === "url",
        url,
      );
    }
    const space = connect("http://127.0.0.1:8765/prefix/spaces/a%20b/");
    assert.equal(space.name, "a b");
    assert.equal(space.url, "http://127.0.0.1:8765/prefix/spaces/a%20b");
  });
});
