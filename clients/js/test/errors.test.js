// Errors: each the class of its code, naming the field at fault, whether found here or by
// the server; tokens and permissions; a server that cannot be reached.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";

import {
  ANY,
  EventsLost,
  Forbidden,
  InvalidTemplate,
  InvalidValue,
  LimitReached,
  NotFound,
  TupleSpaceError,
  Unauthorized,
  UnsupportedType,
  Unreachable,
  ValueTooLarge,
  connectServer,
  regex,
} from "tuplespace";
import { newName, opener, recordingFetch, servers, spaceUrl } from "./helpers.js";

const open = opener();

/** A fetch that answers every request with `status`, `body` and `headers`. */
function answering(status, body, headers = {}) {
  return async () => new Response(body, { status, headers });
}

describe("bad input", () => {
  test("is refused before it travels, naming the field of the request", async () => {
    const fetcher = recordingFetch();
    const space = open(spaceUrl(), { fetch: fetcher });
    await assert.rejects(space.write(["x", NaN]), (e) => {
      assert.ok(e instanceof InvalidValue);
      assert.deepEqual([e.code, e.field, e.path], ["invalid_value", "tuple[1]", "[1]"]);
      assert.ok(e.message.startsWith("tuple[1]: "), e.message);
      return true;
    });
    await assert.rejects(space.writeMany([["a"], ["b", { t: [undefined] }]]), (e) => {
      assert.ok(e instanceof UnsupportedType);
      assert.deepEqual([e.field, e.path], ['tuples[1][1]["t"][0]', '[1]["t"][0]']);
      return true;
    });
    await assert.rejects(space.take(["x", { a: Symbol("s") }]), (e) => {
      assert.ok(e instanceof InvalidTemplate);
      assert.deepEqual([e.field, e.path], ['template[1]["a"]', '[1]["a"]']);
      return true;
    });
    await assert.rejects(space.write("x"), (e) => e instanceof UnsupportedType && e.field === "tuple");
    await assert.rejects(
      space.subscribe(["x"], { events: ["write", "read"] }),
      (e) => e instanceof InvalidValue && e.field === "events",
    );
    await assert.rejects(
      space.subscribe(["x"], { since: -1 }),
      (e) => e instanceof InvalidValue && e.field === "since",
    );
    await assert.rejects(space.transaction({ lease: null }), (e) => e instanceof InvalidValue && e.field === "lease");
    assert.deepEqual(fetcher.calls, []);
  });

  test("the server finds what only it checks, and the error names the field", async () => {
    const space = open(spaceUrl());
    await assert.rejects(space.count(["x", regex("(")]), (e) => {
      assert.ok(e instanceof InvalidTemplate);
      assert.deepEqual([e.code, e.status, e.field, e.path], ["invalid_template", 400, "template[1]", "[1]"]);
      assert.ok(e.message.startsWith("template[1]: "), e.message);
      return true;
    });
  });

  test("past the server's limits: ValueTooLarge with the limit; answers cut short read on", async () => {
    const space = open(spaceUrl(servers.limits));
    await assert.rejects(space.write(["a", [1, 2, 3, 4, 5]]), (e) => {
      assert.ok(e instanceof ValueTooLarge);
      assert.deepEqual(
        [e.code, e.status, e.field, e.path, e.limit, e.maximum],
        ["value_too_large", 413, "tuple[1]", "[1]", "max_fields", 4],
      );
      return true;
    });
    await space.writeMany([1, 2, 3, 4, 5].map((i) => ["n", i]));
    assert.equal((await space.readAll(["n", ANY], { limit: 3 })).length, 3);
    // readAll reads on from the cursor of each answer cut short (3 tuples an answer here).
    assert.deepEqual(
      await space.readAll(["n", ANY]),
      [1, 2, 3, 4, 5].map((i) => ["n", i]),
    );
    assert.deepEqual(
      await space.readAll(["n", ANY], { limit: 4 }),
      [1, 2, 3, 4].map((i) => ["n", i]),
    );
    // In a transaction an answer cut short has no cursor.
    const tx = await space.transaction();
    await assert.rejects(
      tx.readAll(["n", ANY]),
      (e) => e instanceof LimitReached && e.limit === "max_results" && e.maximum === 3,
    );
    await tx.abort();
    // takeAll asks again until every match is taken.
    assert.deepEqual(
      await space.takeAll(["n", ANY], { limit: 4 }),
      [1, 2, 3, 4].map((i) => ["n", i]),
    );
    await space.write(["n", 6]);
    assert.deepEqual(await space.takeAll(["n", ANY]), [
      ["n", 5],
      ["n", 6],
    ]);
  });
});

describe("tokens", () => {
  test("401 without a token or with an unknown one, 403 without the permission, 404 without admin", async () => {
    const { admin, reader, worker } = servers.secrets;
    const name = newName();
    const url = `${servers.tokens}/spaces/${name}`;
    await assert.rejects(open(url, { token: worker }).write(["x"]), (e) => e instanceof NotFound && e.status === 404);
    await connectServer(servers.tokens, { token: admin }).createSpace(name);

    await assert.rejects(
      open(url).count(["x"]),
      (e) => e instanceof Unauthorized && e.code === "unauthorized" && e.status === 401,
    );
    await assert.rejects(open(url, { token: "not-a-token-of-the-server" }).count(["x"]), Unauthorized);

    await open(url, { token: worker }).write(["x"]);
    const readOnly = open(url, { token: reader });
    assert.deepEqual(await readOnly.readAll(["x"]), [["x"]]);
    await assert.rejects(
      readOnly.take(["x"], { timeout: 0 }),
      (e) => e instanceof Forbidden && e.code === "forbidden" && e.status === 403,
    );
    await assert.rejects(readOnly.write(["y"]), Forbidden);
    await assert.rejects(readOnly.subscribe(["x"]), Forbidden);
    await (await open(url, { token: worker }).subscribe(["x"])).close();

    const listed = await connectServer(servers.tokens, { token: reader }).spaces();
    assert.ok(listed.some((s) => s.name === name));
    assert.deepEqual(await connectServer(servers.tokens).spaces(), []);
    await assert.rejects(connectServer(servers.tokens, { token: reader }).deleteSpace(name), Forbidden);
  });
});

describe("answers", () => {
  test("a server that is not there is unreachable", async () => {
    const listener = createServer();
    await new Promise((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const { port } = listener.address();
    await new Promise((resolve) => listener.close(resolve));
    const space = open(`http://127.0.0.1:${port}/spaces/gone`);
    await assert.rejects(space.write(["x"]), (e) => e instanceof Unreachable && e.message.includes("cannot reach"));
    await assert.rejects(space.tryRead(["x"]), Unreachable);
  });

  test("an unknown code is a TupleSpaceError with the code; Retry-After is kept", async () => {
    const unknown = open(spaceUrl(), {
      fetch: answering(418, '{"error":{"code":"teapot","message":"short and stout","field":null}}'),
    });
    await assert.rejects(unknown.count(["x"]), (e) => {
      assert.equal(e.constructor, TupleSpaceError);
      assert.deepEqual([e.code, e.status, e.message], ["teapot", 418, "short and stout"]);
      return true;
    });
    const limited = open(spaceUrl(), {
      fetch: answering(
        429,
        '{"error":{"code":"rate_limited","message":"slow down","field":null,"limit":"rate","maximum":5}}',
        {
          "Retry-After": "2",
        },
      ),
    });
    await assert.rejects(
      limited.count(["x"]),
      (e) => e instanceof LimitReached && e.retryAfter === 2 && e.limit === "rate" && e.maximum === 5,
    );
    const lost = open(spaceUrl(), {
      fetch: answering(
        400,
        '{"error":{"code":"events_lost","message":"gone","field":null,"first_missing":3,"oldest_available":9}}',
      ),
    });
    await assert.rejects(
      lost.count(["x"]),
      (e) => e instanceof EventsLost && e.firstMissing === 3 && e.oldestAvailable === 9,
    );
    const proxy = open(spaceUrl(), { fetch: answering(502, "<html>bad gateway</html>") });
    await assert.rejects(
      proxy.count(["x"]),
      (e) => e.constructor === TupleSpaceError && e.status === 502 && e.message.includes("bad gateway"),
    );
  });
});
