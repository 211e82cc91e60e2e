// The template vectors of docs/wire-vectors.json, matched by a server: each template,
// decoded and sent from here, finds exactly its matching tuples among those written from here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";

import { ANY, connect, decode, decodeTemplate, encode } from "tuplespace";
import { spaceUrl } from "./helpers.js";

const VECTORS = JSON.parse(readFileSync(new URL("../../../docs/wire-vectors.json", import.meta.url), "utf8"));

const space = connect(spaceUrl());
after(() => space.close());

test("each template matches its tuples and rejects the others", async () => {
  for (const vector of VECTORS.templates) {
    const template = decodeTemplate(vector.template);
    const matches = vector.matches.map(decode);
    await space.writeMany([...matches, ...vector.rejects.map(decode)]);
    const found = (await space.takeAll(template)).map(encode).sort();
    assert.deepEqual(found, matches.map(encode).sort(), vector.name);
    const rejects = vector.rejects.map(decode);
    for (const arity of new Set(rejects.map((t) => t.length))) {
      assert.equal(
        (await space.takeAll(Array(arity).fill(ANY))).length,
        rejects.filter((t) => t.length === arity).length,
      );
    }
    assert.equal((await space.statistics()).tuples, 0, vector.name);
  }
});

test("the templates only the server can check are refused by it, naming the field", async () => {
  for (const name of ["regex invalid", "xpath invalid"]) {
    const vector = VECTORS.invalid_templates.find((v) => v.name === name);
    await assert.rejects(space.count(decodeTemplate(vector.input)), (e) => {
      assert.equal(e.name, vector.error, name);
      assert.deepEqual([e.field, e.path], [`template${vector.path}`, vector.path]);
      return true;
    });
  }
});
