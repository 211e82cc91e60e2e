// Tuples between JavaScript and Python: tests/test_js.py runs this script with
//
//   node test/cross-language.js encode              -> {case: {template, tuples, matching}}
//   node test/cross-language.js write CASE SPACEURL -> writes the tuples of CASE
//   node test/cross-language.js take CASE SPACEURL  -> the encodings of the tuples taken
//
// and checks them against the same cases written in Python (CASES in tests/test_js.py):
// each template, the first `matching` of its tuples match it. Records too:
//
//   node test/cross-language.js record-create PATH SPACEURL -> {address, version} of a record
//                                                              holding RECORD, created at PATH
//   node test/cross-language.js record-read PATH SPACEURL   -> {tags, fields (encoded), version}
//                                                              of the record at PATH, then
//                                                              sets its field "js" to true
//   node test/cross-language.js record-find UNDER SPACEURL  -> the paths FIND finds below UNDER
import {
  ANY,
  connect,
  credit,
  encode,
  encodeTemplate,
  float,
  formal,
  oneOf,
  prefix,
  range,
  regex,
  time,
  uri,
  xpath,
} from "tuplespace";

const WHEN = time("2024-05-01T12:00:00.5Z");
const later = (micros) => time((WHEN.seconds * 1e6 + WHEN.microseconds + micros) / 1e6);
const bytes = (...b) => new Uint8Array(b);
const DAY = 86400e6;

const CASES = {
  any: [
    ["any", ANY, "b"],
    4,
    [
      ["any", 1, "b"],
      ["any", null, "b"],
      ["any", [1, "x"], "b"],
      ["any", { k: 1.5 }, "b"],
      ["any", 1, "c"],
    ],
  ],
  formal: [
    [
      "formal",
      ...["int", "float", "str", "bytes", "time", "uri", "credit", "tuple", "map", "null", "bool"].map(formal),
    ],
    2,
    [
      ["formal", 1, float(1), "s", bytes(0), WHEN, uri("u"), credit("1"), [], {}, null, true],
      ["formal", 2n ** 70n, 0.5, "", bytes(), WHEN, uri("v"), credit("0"), [1], { a: 1 }, null, false],
      ["formal", true, float(1), "s", bytes(0), WHEN, uri("u"), credit("1"), [], {}, null, true],
      ["formal", 1, 1, "s", bytes(0), WHEN, uri("u"), credit("1"), [], {}, null, true],
      ["formal", 1, float(1), uri("s"), bytes(0), WHEN, "u", credit("1"), [], {}, null, true],
    ],
  ],
  value: [
    ["value", 1, float(1), true, credit("1.50"), uri("u"), bytes(0, 255), WHEN, 2n ** 60n],
    1,
    [
      ["value", 1, float(1), true, credit("1.5"), uri("u"), bytes(0, 255), WHEN, 2n ** 60n],
      ["value", float(1), float(1), true, credit("1.5"), uri("u"), bytes(0, 255), WHEN, 2n ** 60n],
      ["value", 1, 1, true, credit("1.5"), uri("u"), bytes(0, 255), WHEN, 2n ** 60n],
      ["value", 1, float(1), 1, credit("1.5"), uri("u"), bytes(0, 255), WHEN, 2n ** 60n],
      ["value", 1, float(1), true, 1.5, uri("u"), bytes(0, 255), WHEN, 2n ** 60n],
      ["value", 1, float(1), true, credit("1.5"), "u", bytes(0, 255), WHEN, 2n ** 60n],
      ["value", 1, float(1), true, credit("1.5"), uri("u"), bytes(0, 254), WHEN, 2n ** 60n],
      ["value", 1, float(1), true, credit("1.5"), uri("u"), bytes(0, 255), WHEN, float(2 ** 60)],
    ],
  ],
  range: [
    ["range", range(20, 30), range(WHEN, null), range("a", "n", { includeHigh: true })],
    3,
    [
      ["range", 20, WHEN, "a"],
      ["range", 29.5, later(DAY), "n"],
      ["range", credit("29.99"), WHEN, "mz"],
      ["range", 30, WHEN, "a"],
      ["range", 19, WHEN, "a"],
      ["range", 25, later(-1), "a"],
      ["range", 25, WHEN, "na"],
      ["range", true, WHEN, "a"],
    ],
  ],
  regex: [
    ["regex", regex("^cr[a-z]+$")],
    2,
    [
      ["regex", "crop"],
      ["regex", "cry"],
      ["regex", "scrap"],
      ["regex", "cr"],
      ["regex", uri("crop")],
    ],
  ],
  prefix: [
    ["prefix", prefix("jo"), prefix(bytes(1)), prefix(uri("tuplespace://n1/"))],
    2,
    [
      ["prefix", "job", bytes(1, 2), uri("tuplespace://n1/a")],
      ["prefix", "jo", bytes(1), uri("tuplespace://n1/")],
      ["prefix", "Job", bytes(1), uri("tuplespace://n1/")],
      ["prefix", "job", bytes(2), uri("tuplespace://n1/")],
      ["prefix", "job", bytes(1), "tuplespace://n1/a"],
    ],
  ],
  oneof: [
    ["oneof", oneOf(["a", 1, float(2), [1, 2], { k: "v" }])],
    5,
    [
      ["oneof", "a"],
      ["oneof", 1],
      ["oneof", float(2)],
      ["oneof", [1, 2]],
      ["oneof", { k: "v" }],
      ["oneof", float(1)],
      ["oneof", 2],
      ["oneof", true],
      ["oneof", { k: "v", x: 1 }],
    ],
  ],
  xpath: [
    ["xpath", xpath("/order[@state='open']")],
    2,
    [
      ["xpath", "<order state='open'/>"],
      ["xpath", new TextEncoder().encode('<order state="open"><x/></order>')],
      ["xpath", "<order state='closed'/>"],
      ["xpath", "not xml"],
    ],
  ],
  nested: [
    ["nested", ["a", formal("int"), ["b", ANY]]],
    2,
    [
      ["nested", ["a", 1, ["b", null]]],
      ["nested", ["a", 2, ["b", "x"]]],
      ["nested", ["a", float(1), ["b", null]]],
      ["nested", ["a", 1, ["b", null, null]]],
      ["nested", ["a", 1, ["c", null]]],
    ],
  ],
  map: [
    ["map", { temp: range(20, null), unit: "C", $kind: "reading" }],
    2,
    [
      ["map", { temp: 21.5, unit: "C", $kind: "reading" }],
      ["map", { temp: 20, unit: "C", $kind: "reading", extra: [1] }],
      ["map", { temp: 19, unit: "C", $kind: "reading" }],
      ["map", { temp: 21, unit: "C" }],
      ["map", { temp: 21, unit: "F", $kind: "reading" }],
    ],
  ],
};

// The record JavaScript creates (RECORD in tests/test_js.py), and the template of its find.
const RECORD = {
  temp: float(21.5),
  unit: "C",
  when: WHEN,
  price: credit("9.50"),
  link: uri("tuplespace://n1/x"),
  list: ["a", 1],
  meta: { k: 2n ** 70n, raw: bytes(0, 255) },
};
const FIND = { unit: "C", temp: range(20, 30) };

const [role, name, url] = process.argv.slice(2);
let answer;
if (role.startsWith("record-") && url) {
  const space = connect(url);
  if (role === "record-create") {
    const rec = await space.create(name, RECORD);
    answer = { address: rec.address.text, version: await rec.get("$version") };
  } else if (role === "record-read") {
    const rec = await space.record(name);
    const { tags, fields, version } = await rec.snapshot();
    answer = { tags, fields: encode(fields), version };
    await rec.set("js", true);
  } else {
    const found = await space.find(FIND, { under: name });
    const prefix = `/spaces/${space.name}/`;
    answer = found.map((r) => r.address.text.slice(r.address.text.indexOf(prefix) + prefix.length));
  }
  await space.close();
} else if (role === "encode") {
  answer = Object.fromEntries(
    Object.entries(CASES).map(([key, [template, matching, tuples]]) => [
      key,
      { template: encodeTemplate(template), tuples: tuples.map(encode), matching },
    ]),
  );
} else if ((role === "write" || role === "take") && Object.hasOwn(CASES, name) && url) {
  const [template, , tuples] = CASES[name];
  const space = connect(url);
  if (role === "write") {
    await space.writeMany(tuples);
    answer = null;
  } else {
    answer = (await space.takeAll(template)).map(encode);
  }
  await space.close();
} else {
  console.error(
    `usage: ${process.argv[1]} encode | write CASE URL | take CASE URL | record-create PATH URL | ` +
      `record-read PATH URL | record-find UNDER URL (cases: ${Object.keys(CASES)})`,
  );
  process.exit(2);
}
process.stdout.write(JSON.stringify(answer));
