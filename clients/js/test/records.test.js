// Records: every operation of a record handle and of the space, capabilities used without a
// token, watches resumed by sequence number, credit, and the errors of each.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ANY,
  CapabilityRevoked,
  ContainmentCycle,
  Credit,
  Float,
  Forbidden,
  InsufficientCredit,
  InvalidTemplate,
  InvalidValue,
  NotAllowed,
  RecordExists,
  RecordInUse,
  RecordNotFound,
  Timeout,
  Unauthorized,
  Uri,
  connectServer,
  credit,
  float,
  formal,
  makeStamp,
  range,
  uri,
} from "tuplespace";
import { newName, opener, servers, spaceUrl, waitUntil } from "./helpers.js";

const open = opener();

/** The next `n` changes of a watch, as [kind, path, tag]. */
async function changes(watch, n) {
  const out = [];
  while (out.length < n) {
    const { value, done } = await watch.next();
    assert.equal(done, false);
    out.push([value.kind, value.path, value.tag]);
  }
  return out;
}

describe("a record", () => {
  test("is created, read, set, refreshed, cloned, moved and destroyed", async () => {
    const space = open(spaceUrl());
    const rec = await space.create("sensors/kitchen", { temp: 21.5, unit: "C" }, { lease: 600 });
    assert.ok(rec.address instanceof Uri);
    assert.equal(rec.address.text, `tuplespace://local/spaces/${space.name}/sensors/kitchen`);
    assert.equal(rec.isCapability, false);
    assert.ok(rec.operations.includes("move") && rec.operations.includes("capability"));

    assert.deepEqual(await rec.get("temp"), float(21.5));
    assert.equal(await rec.get("missing"), null);
    assert.equal(await rec.get("missing", { default: "none" }), "none");
    assert.deepEqual(await rec.view("unit", "temp", "$version"), ["C", float(21.5), 1]);
    assert.deepEqual(await rec.get("$PK"), rec.address);
    assert.deepEqual(await rec.get("$credit"), credit("0"));
    const lifetime = await rec.get("$lifetime");
    assert.ok(lifetime instanceof Float && lifetime.value > 0 && lifetime.value <= 600);
    assert.deepEqual(await rec.view(), []);

    assert.equal(await rec.set("temp", 22), 2);
    assert.equal(await rec.set("seen", [1, { by: uri("tuplespace://n1/x") }]), 3);
    assert.deepEqual(await rec.tags(), ["temp", "unit", "seen"]);
    assert.deepEqual(await rec.all(), { temp: 22, unit: "C", seen: [1, { by: uri("tuplespace://n1/x") }] });
    const snap = await rec.snapshot();
    assert.deepEqual([snap.address, snap.version, snap.tags], [rec.address, 3, ["temp", "unit", "seen"]]);
    assert.deepEqual(Object.keys(snap.computed), ["$credit", "$lifetime", "$refcount", "$level"]);
    assert.deepEqual([snap.computed.$refcount, snap.computed.$level], [0, 0]);

    const expires = await rec.refresh({ lease: 3600 });
    assert.ok(expires > Date.now() / 1000 + 3000);
    assert.equal(await rec.refresh({ credit: 5 }), expires);
    assert.deepEqual(await rec.get("$credit"), credit("5"));

    const copy = await rec.clone("sensors/copy");
    assert.deepEqual([await copy.all(), await copy.get("$version")], [await rec.all(), 1]);
    await assert.rejects(rec.clone("sensors/copy"), (e) => e instanceof RecordExists && e.code === "record_exists");

    const old = rec.address;
    assert.equal(await rec.move("sensors/k1"), 4);
    assert.equal(rec.address.text, `tuplespace://local/spaces/${space.name}/sensors/k1`);
    const redirected = await space.record(old); // the old address answers with the new one
    assert.deepEqual(redirected.address, rec.address);
    assert.deepEqual(await (await space.record("sensors/kitchen")).get("temp"), 22);
    await assert.rejects(rec.move("sensors/copy"), RecordExists);

    await rec.destroy();
    await assert.rejects(rec.get("temp"), (e) => e instanceof RecordNotFound && e.status === 404);
    await assert.rejects(space.record("sensors/k1"), RecordNotFound);
    await copy.destroy();
  });

  test("a handle stays with its record: another at its path is not it", async () => {
    const space = open(spaceUrl());
    const first = await space.create("a", { n: 1 });
    const byPath = await space.record("a");
    await first.destroy();
    await space.create("a", { n: 2 });
    await assert.rejects(byPath.get("n"), RecordNotFound);
    assert.equal(await (await space.record("a")).get("n"), 2);
  });

  test("contains records by address: in use, forced, cycles, the root", async () => {
    const space = open(spaceUrl());
    const inner = await space.create("inner", { v: 1 });
    const outer = await space.create("outer", { holds: inner.address });
    assert.deepEqual(await inner.view("$refcount", "$level"), [1, 0]);
    assert.equal(await outer.get("$level"), 1);
    await assert.rejects(inner.set("back", outer.address), (e) => {
      assert.ok(e instanceof ContainmentCycle);
      assert.equal(e.code, "containment_cycle");
      return true;
    });
    const root = await space.record("$");
    const top = await root.get("TUPS");
    assert.deepEqual(Object.keys(top), ["outer"]);
    assert.deepEqual(top.outer, outer.address);
    await assert.rejects(root.set("x", 1), NotAllowed);
    await assert.rejects(inner.destroy(), (e) => e instanceof RecordInUse && e.code === "record_in_use");
    await inner.destroy({ force: true });
    assert.equal(await outer.get("holds"), null);
  });

  test("a handle stands for its address wherever one goes", async () => {
    const space = open(spaceUrl());
    const a = await space.create("a", { n: 1 });
    const b = await space.create("b", { n: 2, child: a });
    assert.deepEqual(await b.get("child"), a.address);
    assert.equal(await a.get("$refcount"), 1);
    await b.set("other", a);
    assert.deepEqual(await b.get("other"), a.address);
    assert.deepEqual(
      (await space.find({ child: a })).map((r) => r.address.text),
      [b.address.text],
    );
    assert.equal((await space.record(a)).address.text, a.address.text);
    await space.write(["ref", a]);
    assert.deepEqual(await space.take(["ref", a], { timeout: 5 }), ["ref", a.address]);
    await assert.rejects(a.set("loop", b), ContainmentCycle);
  });

  test("bad input is refused before it travels, naming the field", async () => {
    const space = open(spaceUrl());
    await assert.rejects(space.create("x", [1]), (e) => e.field === "fields");
    await assert.rejects(space.create("x", { n: NaN }), (e) => e.field === 'fields["n"]');
    await assert.rejects(space.find(["x"]), InvalidTemplate);
    await assert.rejects(
      space.find({ n: Symbol("s") }),
      (e) => e instanceof InvalidTemplate && e.field === 'template["n"]',
    );
    await assert.rejects(space.create("x", { n: 1 }, { credit: -1 }), (e) => e.field === "credit");
  });
});

describe("finding and taking", () => {
  test("find matches a template over some tags, below a path, oldest first", async () => {
    const space = open(spaceUrl());
    await space.create("sensors/a", { unit: "C", temp: 21 });
    await space.create("sensors/b", { unit: "C", temp: float(29.5) });
    await space.create("sensors/c", { unit: "C", temp: 30 });
    await space.create("sensors/d", { unit: "F", temp: 25 });
    await space.create("other/e", { unit: "C", temp: 25 });
    const found = await space.find({ unit: "C", temp: range(20, 30) }, { under: "sensors" });
    const paths = found.map((r) => r.address.text.split("/").slice(-2).join("/"));
    assert.deepEqual(paths, ["sensors/a", "sensors/b"]);
    assert.equal((await space.find({ unit: "C" })).length, 4);
    assert.equal((await space.find({ unit: "C" }, { limit: 1 })).length, 1);
    assert.deepEqual(await space.find({ temp: formal("str") }), []);
    assert.equal(await found[1].set("unit", "K"), 2); // find gives full handles
  });

  test("takes remove the oldest match and return what it held", async () => {
    const space = open(spaceUrl());
    assert.equal(await space.tryTakeRecord({ job: ANY }), null);
    await assert.rejects(space.takeRecord({ job: ANY }, { timeout: 0.3 }), Timeout); // asked again past 0.1 s
    await space.create("jobs/1", { job: 1 });
    await space.create("jobs/2", { job: 2 });
    const taken = await space.tryTakeRecord({ job: ANY }, { under: "jobs" });
    assert.deepEqual(taken, {
      address: uri(`tuplespace://local/spaces/${space.name}/jobs/1`),
      version: 1,
      tags: ["job"],
      fields: { job: 1 },
    });
    const waiting = space.takeRecord({ job: 3 }, { timeout: 30 });
    const other = open(space.url);
    await other.create("jobs/3", { job: 3 });
    assert.deepEqual((await waiting).fields, { job: 3 });
    assert.equal((await space.find({ job: ANY })).length, 1);
  });
});

describe("watching", () => {
  test("every change in order, resumed after a seq", async () => {
    const space = open(spaceUrl());
    const watch = await space.watchRecords({ under: "s" });
    const rec = await space.create("s/one", { n: 1 });
    await space.create("t/other", { n: 1 });
    await rec.set("n", 2);
    await rec.move("s/two");
    await rec.destroy();
    const first = await watch.next();
    assert.deepEqual(first.value.value, { n: 1 });
    assert.equal(first.value.kind, "create");
    assert.deepEqual(await changes(watch, 3), [
      ["update", "s/one", "n"],
      ["move", "s/two", null],
      ["destroy", "s/two", null],
    ]);
    watch.close();
    assert.deepEqual(await watch.next(), { value: undefined, done: true });

    const resumed = await space.watchRecords({ under: "s", since: first.value.seq });
    assert.deepEqual(await changes(resumed, 3), [
      ["update", "s/one", "n"],
      ["move", "s/two", null],
      ["destroy", "s/two", null],
    ]);
    resumed.close();
    const creates = await space.watchRecords({ events: ["create"], since: 0 });
    assert.deepEqual(await changes(creates, 2), [
      ["create", "s/one", null],
      ["create", "t/other", null],
    ]);
    creates.close();
  });

  test("a record's watch ends after it is destroyed", async () => {
    const space = open(spaceUrl());
    const rec = await space.create("r", { n: 1 });
    const watch = await rec.watch();
    await rec.set("n", 2);
    const { value } = await watch.next();
    assert.deepEqual([value.kind, value.tag, value.value, value.version], ["update", "n", 2, 2]);
    const again = await rec.watch({ since: value.seq - 1 }); // from before the update
    await rec.destroy();
    assert.deepEqual(await changes(watch, 1), [["destroy", "r", null]]);
    assert.deepEqual(await watch.next(), { value: undefined, done: true });
    assert.deepEqual(await changes(again, 2), [
      ["update", "r", "n"],
      ["destroy", "r", null],
    ]);
    assert.equal(again.closed, true);
  });
});

describe("capabilities", () => {
  const admin = () => open(`${servers.tokens}/spaces/${newName("caps")}`, { token: servers.secrets.admin });

  test("allow their operations without a token, and nothing else", async () => {
    const owner = admin();
    const rec = await owner.create("offers/1", { price: credit("9.50"), state: "offered" });
    const cap = await rec.capability(["read", "set", "watch"], { lease: 600 });
    assert.equal(cap.isCapability, true);
    assert.deepEqual(cap.operations, ["read", "set", "watch"]);
    assert.ok(cap.expiresAt > Date.now() / 1000);
    assert.match(cap.address.text, new RegExp(`/spaces/${owner.name}/\\$cap/[A-Za-z0-9_-]{32}$`));

    const nobody = open(owner.url); // no token at all
    await assert.rejects(nobody.record("offers/1"), Unauthorized);
    const handle = await nobody.record(cap.address);
    assert.deepEqual(handle.operations, ["read", "set", "watch"]);
    assert.deepEqual(await handle.get("price"), credit("9.5"));
    assert.deepEqual(await handle.all(), { price: credit("9.5"), state: "offered" });
    const watch = await handle.watch();
    assert.equal(await handle.set("state", "accepted"), 2);
    assert.deepEqual(await changes(watch, 1), [["update", "offers/1", "state"]]);
    watch.close();
    for (const [operation, call] of [
      ["destroy", () => handle.destroy()],
      ["refresh", () => handle.refresh({ lease: 10 })],
      ["clone", () => handle.clone("offers/2")],
    ]) {
      await assert.rejects(call(), (e) => {
        assert.ok(e instanceof NotAllowed, String(e));
        const allowed = ["read", "set", "watch"];
        assert.deepEqual([e.code, e.status, e.operation, e.allowed], ["not_allowed", 403, operation, allowed]);
        return true;
      });
    }
    await assert.rejects(handle.capability(["read"]), NotAllowed); // only the full handle
    await assert.rejects(handle.revoke(), NotAllowed); // only the handle capability() returned

    const ro = await rec.readOnly();
    assert.deepEqual(ro.operations, ["read", "watch"]);
    assert.deepEqual(ro.address, (await rec.readOnly()).address);
    const reader = await nobody.record(ro.address);
    assert.equal(await reader.get("state"), "accepted");
    await assert.rejects(reader.set("state", "x"), (e) => e instanceof NotAllowed && e.operation === "set");

    await cap.revoke();
    await assert.rejects(handle.get("state"), (e) => {
      assert.ok(e instanceof CapabilityRevoked && e instanceof Unauthorized);
      assert.deepEqual([e.code, e.status, e.expired], ["capability_revoked", 401, false]);
      return true;
    });
    await assert.rejects(nobody.record(cap.address), CapabilityRevoked);
    await ro.revoke();
    await assert.rejects(reader.get("state"), CapabilityRevoked);
    await assert.rejects(rec.revoke(), NotAllowed); // a full handle is not revoked
  });

  test("that allow destroy end with the record", async () => {
    const owner = admin();
    const rec = await owner.create("r", { n: 1 });
    const cap = await rec.capability("destroy");
    const handle = await open(owner.url).record(cap.address);
    await assert.rejects(handle.get("n"), NotAllowed);
    await handle.destroy();
    await assert.rejects(rec.get("n"), RecordNotFound);
  });
});

describe("credit", () => {
  test("creation is paid from the caller's account; too little is refused and nothing written", async () => {
    const name = newName("credit");
    await connectServer(servers.main).createSpace(name, { creation_charge: "1" });
    const space = open(`${servers.main}/spaces/${name}`);
    assert.deepEqual(await space.account("anonymous"), credit("0"));
    assert.deepEqual(await space.grantCredit("anonymous", "3.5"), credit("3.5"));
    const rec = await space.create("paid", { n: 1 }, { credit: 2 });
    assert.deepEqual(await rec.get("$credit"), credit("2"));
    assert.deepEqual(await space.account("anonymous"), credit("0.5"));
    await assert.rejects(space.create("unpaid", { n: 1 }), (e) => {
      assert.ok(e instanceof InsufficientCredit, String(e));
      assert.equal(e.status, 402);
      assert.deepEqual([e.principal, e.needed, e.available], ["anonymous", credit("1"), credit("0.5")]);
      assert.ok(e.needed instanceof Credit);
      return true;
    });
    await assert.rejects(space.record("unpaid"), RecordNotFound);
    await assert.rejects(rec.refresh({ credit: "0.75" }), InsufficientCredit);
    await rec.refresh({ credit: "0.5" });
    assert.deepEqual(await rec.get("$credit"), credit("2.5"));
    assert.deepEqual(await space.account("anonymous"), credit("0"));
  });

  test("a space that charges for storage sells lifetime", async () => {
    const name = newName("rate");
    await connectServer(servers.main).createSpace(name, { charge_rate: "1024" });
    const space = open(`${servers.main}/spaces/${name}`);
    await space.grantCredit("anonymous", 1_000_000);
    const rec = await space.create("r", { n: 1 }, { lease: 3600 });
    const { computed } = await rec.snapshot();
    assert.ok(computed.$credit instanceof Credit);
    assert.ok(computed.$lifetime.value > 3500 && computed.$lifetime.value <= 3600, String(computed.$lifetime));
  });

  test("a caller transfers from its own account; only an admin from another's", async () => {
    const name = newName("transfer");
    const admin = open(`${servers.tokens}/spaces/${name}`, { token: servers.secrets.admin });
    await admin.grantCredit("worker", "10");
    const worker = open(`${servers.tokens}/spaces/${name}`, { token: servers.secrets.worker });
    assert.deepEqual(await worker.transferCredit("worker", "bob", "2.5"), credit("7.5"));
    assert.deepEqual(await admin.account("bob"), credit("2.5"));
    await assert.rejects(worker.transferCredit("worker", "bob", 8), (e) => {
      assert.ok(e instanceof InsufficientCredit, String(e));
      assert.deepEqual([e.principal, e.needed, e.available], ["worker", credit("8"), credit("7.5")]);
      return true;
    });
    await assert.rejects(worker.transferCredit("bob", "worker", 1), Forbidden);
    await assert.rejects(worker.transferCredit("worker", "bob", 0), (e) => {
      assert.ok(e instanceof InvalidValue, String(e));
      assert.equal(e.field, "amount");
      return true;
    });
    assert.deepEqual(await admin.transferCredit("bob", "worker", "2.5"), credit("0"));
    assert.deepEqual(await worker.account("worker"), credit("10"));
  });

  test("an anonymous caller mints by proof of work, once per stamp", async () => {
    const name = newName("mint");
    await connectServer(servers.main).createSpace(name, { mint_amount: "0.5", mint_bits: 6 });
    const space = open(`${servers.main}/spaces/${name}`);
    const c = await space.creditChallenge();
    assert.deepEqual([c.bits, c.amount], [6, credit("0.5")]);
    assert.ok(c.amount instanceof Credit);
    assert.ok(typeof c.challenge === "string" && c.expires > Date.now() / 1000, JSON.stringify(c));
    const nonce = await makeStamp(c.challenge, c.bits);
    const other = await makeStamp(c.challenge, c.bits);
    assert.notEqual(nonce, other); // each search starts at random
    assert.deepEqual(await space.mintCredit(c.challenge, nonce), credit("0.5"));
    assert.deepEqual(await space.mintCredit(c.challenge, other, { principal: "anonymous" }), credit("1"));
    const refused = (field) => (e) => {
      assert.ok(e instanceof InvalidValue, String(e));
      assert.equal(e.field, field);
      return true;
    };
    await assert.rejects(space.mintCredit(c.challenge, nonce), refused("nonce")); // spent already
    await assert.rejects(space.mintCredit("0".repeat(32), nonce), refused("challenge"));
    await assert.rejects(makeStamp(c.challenge, 65), refused("bits"));
    assert.deepEqual(await space.account("anonymous"), credit("1"));
    const plain = newName("plain");
    await connectServer(servers.main).createSpace(plain, {});
    await assert.rejects(open(`${servers.main}/spaces/${plain}`).creditChallenge(), Forbidden);
  });
});

test("a record take is claimed and its claim confirmed: the record does not come back", async () => {
  const url = spaceUrl(servers.claims);
  const space = open(url, { confirmDelay: 0.01 });
  await space.create("jobs/1", { kind: "job" });
  const taken = await space.takeRecord({ kind: "job" });
  assert.deepEqual(taken.fields, { kind: "job" });
  await waitUntil(() => space.clientStatistics().claimsConfirmedAlone === 1, "a confirmation sent alone");
  await new Promise((resolve) => setTimeout(resolve, 500)); // past the claim's lease (0.3 s)
  assert.equal(await open(url).tryTakeRecord({ kind: "job" }), null);
  assert.equal(space.clientStatistics().claimsLost, 0);
});
