// Rules and the clock of a space: a reaction added, fired, listed and removed; a cycle refused
// naming it; a Push Logic rule; a failure shown as an error; a simulated clock moved.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  Conflict,
  EvaluationError,
  InvalidValue,
  LimitReached,
  NotAllowed,
  RuleCycle,
  RuleExists,
  RuleNotFound,
  connectServer,
  float,
  formal,
} from "tuplespace";
import { newName, opener, servers, spaceUrl } from "./helpers.js";

const open = opener();

const HOT = {
  template: ["reading", formal("str"), formal("float")],
  when: "t[2] > 30.0",
  write: [["alarm", "t[1]", "t[2] - 30.0"]],
};

describe("rules", () => {
  test("a reaction is added, fires, is listed and removed", async () => {
    const space = open(spaceUrl());
    const hot = await space.rules.add("hot", HOT);
    assert.deepEqual(
      { name: hot.name, kind: hot.kind, on: hot.on, level: hot.level, fired: hot.fired, lastError: hot.lastError },
      { name: "hot", kind: "reaction", on: ["write"], level: 1, fired: 0, lastError: null },
    );
    assert.deepEqual(hot.write, [["alarm", "t[1]", "t[2] - 30.0"]]);
    await space.write(["reading", "kitchen", float(31.5)]);
    assert.deepEqual(await space.readAll(["alarm", formal("str"), formal("float")]), [
      ["alarm", "kitchen", float(1.5)],
    ]);
    assert.equal((await space.rules.get("hot")).fired, 1);
    assert.deepEqual(
      (await space.rules.list()).map((r) => r.name),
      ["hot"],
    );
    await space.rules.remove("hot");
    assert.deepEqual(await space.rules.list(), []);
    await assert.rejects(space.rules.get("hot"), RuleNotFound);
    await assert.rejects(space.rules.remove("hot"), RuleNotFound);
  });

  test("a rule that could trigger itself is refused, naming the cycle", async () => {
    const space = open(spaceUrl());
    await space.rules.add("hot", HOT);
    const echo = { template: ["alarm", formal("str"), formal("float")], write: [["reading", "t[1]", float(31)]] };
    await assert.rejects(space.rules.add("echo", echo), (error) => {
      assert.ok(error instanceof RuleCycle && error instanceof InvalidValue);
      assert.deepEqual(error.cycle, ["echo", "hot", "echo"]);
      assert.equal(error.code, "rule_cycle");
      return true;
    });
    await assert.rejects(space.rules.add("hot", HOT), RuleExists);
    await assert.rejects(space.rules.add("bad", { ...HOT, when: "t[2] >" }), (error) => {
      assert.ok(error instanceof InvalidValue);
      assert.equal(error.field, "when");
      return true;
    });
    assert.deepEqual(
      (await space.rules.list()).map((r) => r.name),
      ["hot"],
    );
  });

  test("a Push Logic rule keeps a field, and a failure is the rule's last error", async () => {
    const space = open(spaceUrl());
    const kitchen = await space.create("kitchen", { temp: float(21) });
    const house = await space.create("house", { comfort: null });
    const comfort = await space.rules.add("comfort", { set: "house.comfort", to: "k.temp < 23.0", using: { k: "kitchen" } });
    assert.deepEqual(
      { kind: comfort.kind, set: comfort.set, to: comfort.to, using: comfort.using },
      { kind: "push", set: "house.comfort", to: "k.temp < 23.0", using: { k: "kitchen" } },
    );
    assert.equal(await house.get("comfort"), true);
    await kitchen.set("temp", float(25));
    assert.equal(await house.get("comfort"), false);

    await space.rules.add("ratio", { template: ["pair", formal("int"), formal("int")], write: [["'ratio'", "t[1] / t[2]"]] });
    await space.write(["pair", 1, 0]);
    const ratio = await space.rules.get("ratio");
    assert.equal(ratio.failed, 1);
    assert.ok(ratio.lastError instanceof EvaluationError);
    assert.match(ratio.lastError.message, /division by zero/);
  });
});

describe("a reaction on records", () => {
  test("refreshes, creates and calls in one step, and is told back as it was given", async () => {
    const space = open(spaceUrl());
    const give = {
      $method: { lang: "lua", source: "function(self, n) self.given = self.given + n create('jobs/' .. n, {n = n}) end" },
    };
    const farm = await space.create("farm", { given: 0, give }, { lease: 600 });
    const intake = {
      template: ["order", formal("str"), formal("int")],
      refresh: { farm: 3600 },
      create: { "'orders/' + t[1]": { qty: "t[2]", at: float(1.5) } },
      call: [["farm", "give", "t[2]"]],
    };
    const added = await space.rules.add("intake", intake);
    assert.deepEqual(
      { refresh: added.refresh, create: added.create, call: added.call },
      { refresh: intake.refresh, create: intake.create, call: intake.call },
    );
    await space.write(["order", "a", 4]);
    assert.deepEqual(await (await space.record("orders/a")).get("qty"), 4);
    assert.deepEqual(await (await space.record("jobs/4")).get("n"), 4);
    assert.deepEqual(await farm.get("given"), 4);
    await assert.rejects(
      space.rules.add("bad", { ...intake, call: [["farm"]] }),
      (e) => e instanceof InvalidValue && e.field === "call[0]",
    );
  });
});

describe("methods", () => {
  const BUMP = { $method: { lang: "lua", source: "function(self, d) self.target = self.target + d return self.target end" } };

  test("a record's method runs on the server and sets its fields", async () => {
    const space = open(spaceUrl());
    const thermo = await space.create("thermostat", { target: float(21), bump: BUMP });
    assert.deepEqual(await thermo.call("bump", [float(0.5)]), float(21.5));
    assert.deepEqual(await thermo.get("target"), float(21.5));
  });

  test("a runaway or failing method changes nothing, and a read-only handle may not call", async () => {
    const space = open(spaceUrl());
    const loop = { $method: { lang: "lua", source: "function(self) self.target = 0 while true do end end" } };
    const boom = { $method: { lang: "lua", source: "function(self) self.target = 0 error('boom') end" } };
    const thermo = await space.create("thermostat", { target: float(21), bump: BUMP, loop, boom });
    await assert.rejects(thermo.call("loop"), (e) => {
      assert.ok(e instanceof LimitReached);
      assert.ok(["method_steps", "method_ms"].includes(e.limit), e.limit);
      return true;
    });
    await assert.rejects(thermo.call("boom"), (e) => e instanceof EvaluationError && /boom/.test(e.message));
    await assert.rejects(thermo.call("bump", [[1, 2]]), (e) => e instanceof InvalidValue && e.field === "args[0]");
    await assert.rejects(thermo.call("bump", 1), (e) => e instanceof InvalidValue && e.field === "args");
    assert.deepEqual(await thermo.get("target"), float(21));
    const reader = await space.record((await thermo.readOnly()).address);
    await assert.rejects(reader.call("bump", [float(1)]), (e) => e instanceof NotAllowed && e.operation === "set");
  });

  test("run within the limits the space was created with", async () => {
    const name = newName();
    const limits = { method_steps: 700, method_ms: 50, method_memory: 65536 };
    const made = await connectServer(servers.main).createSpace(name, { ...limits, store: "memory" });
    assert.deepEqual(
      { method_steps: made.options.method_steps, method_ms: made.options.method_ms, method_memory: made.options.method_memory },
      limits,
    );
    const space = open(`${servers.main}/spaces/${name}`);
    const loop = { $method: { lang: "lua", source: "function(self) while true do end end" } };
    const spin = await space.create("spin", { loop });
    await assert.rejects(spin.call("loop"), (e) => {
      assert.ok(e instanceof LimitReached);
      assert.deepEqual([e.limit, e.maximum], ["method_steps", 700]);
      return true;
    });
    await assert.rejects(
      connectServer(servers.main).createSpace(newName(), { method_ms: 1001 }),
      (e) => e instanceof InvalidValue && e.field === "method_ms",
    );
  });
});

describe("the clock", () => {
  test("of a simulated space is moved by advance; leases and rules follow", async () => {
    const name = newName();
    await connectServer(servers.main).createSpace(name, { clock: "simulated", store: "memory" });
    const space = open(`${servers.main}/spaces/${name}`);
    const start = await space.clock.now();
    await space.rules.add("gone", { on: "expire", template: ["job", formal("int")], write: [["'gone'", "t[1]"]] });
    await space.write(["job", 1], { lease: 10 });
    await space.clock.advance(11);
    assert.deepEqual(await space.readAll(["gone", formal("int")]), [["gone", 1]]);
    assert.equal(await space.clock.now(), start + 11);
  });

  test("of a space on the system clock is not moved", async () => {
    const space = open(spaceUrl());
    await space.write(["here"]);
    await assert.rejects(space.clock.advance(5), (error) => {
      assert.ok(error instanceof Conflict);
      assert.equal(error.code, "real_clock");
      return true;
    });
  });
});
