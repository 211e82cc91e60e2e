// The types of index.d.ts, exercised: `tsc --noEmit -p .` checks this file (it is never run).
import {
  ANY,
  CapabilityRevoked,
  Credit,
  DEFAULT_LIMITS,
  EventsLost,
  InsufficientCredit,
  NotAllowed,
  Float,
  RuleInfo,
  LimitReached,
  Time,
  TupleSpaceError,
  connect,
  makeStamp,
  connectServer,
  credit,
  decode,
  decodeTemplate,
  encode,
  encodeTemplate,
  float,
  formal,
  oneOf,
  prefix,
  range,
  regex,
  time,
  typeName,
  uri,
  xpath,
  type Decoded,
  type DecodedTuple,
  type Challenge,
  type Change,
  type Event,
  type Lease,
  type Record,
  type RecordData,
  type RecordSnapshot,
  type RecordWatch,
  type Space,
  type SpaceInfo,
  type Subscription,
  type Template,
  type Transaction,
  type Tuple,
  type TypeName,
} from "tuplespace";

const tuple: Tuple = [
  null,
  true,
  7,
  2n ** 70n,
  1.5,
  float(1),
  "s",
  new Uint8Array([0, 255]),
  time("2024-05-01T12:00:00.5Z"),
  new Date(),
  uri("sensors/kitchen"),
  credit("12.50"),
  [1, [2]],
  { temp: float(21.5), unit: "C", nested: { $kind: "job" } },
];
const template: Template = [
  ANY,
  formal("int"),
  range(20, 30, { includeHigh: true }),
  range(null, time(0)),
  regex("^cr"),
  prefix(new Uint8Array([1])),
  oneOf(["a", 1, float(2)]),
  xpath("/order[@state='open']"),
  ["a", formal("float")],
  { temp: range(float(20), null), unit: "C" },
  "value",
];

// @ts-expect-error: formals are the wire type names
formal("float64");
// @ts-expect-error: a symbol is not a value
encode([Symbol("x")]);
// @ts-expect-error: undefined is not a value
encode([undefined]);

const text: string = encode(tuple) + encodeTemplate(template);
const decoded: Decoded = decode(text, { limits: { maxDepth: 4 } });
const back: Template = decodeTemplate(new TextEncoder().encode("[]"));
const name: TypeName = typeName(decoded === null ? null : 1);
const limit: number = DEFAULT_LIMITS.maxBytes;
const f: number = float(2).value + new Float(3).valueOf();
const t: Date = new Time(0, 5).toDate();

async function operations(space: Space): Promise<void> {
  const signal = new AbortController().signal;
  const lease: Lease = await space.write(["job", 1], { lease: 30, timeout: 0, signal });
  await lease.renew(60);
  await lease.renew(null);
  await lease.cancel();
  const leases: Lease[] = await space.writeMany([["a"], ["b"]], { lease: null });
  const one: DecodedTuple = await space.take(["job", formal("int")], { timeout: 5, signal });
  const maybe: DecodedTuple | null = await space.tryTake(["job", ANY]);
  const read: DecodedTuple = await space.read(["job", ANY], { timeout: null });
  const all: DecodedTuple[] = await space.readAll(["job", ANY], { limit: 10 });
  const taken: DecodedTuple[] = await space.takeAll(["job", ANY]);
  const batch: DecodedTuple[] = await space.takeAll(["job", ANY], { limit: 100, timeout: 5 });
  const gathered: DecodedTuple[] = await space.readAll(["job", ANY], { timeout: null, signal });
  const n: number = await space.count(["job", ANY]);
  const old: DecodedTuple = await space.replace(["job", ANY], ["job", 2], { lease: 5 });
  const written: boolean = await space.writeIfAbsent(["lock"], ["lock"]);
  const sub: Subscription = await space.subscribe(["job", ANY], { events: ["write", "take"], since: 3 });
  for await (const event of sub) {
    const e: Event = event;
    const seq: number = e.seq + e.time;
    void seq;
  }
  const stocked: Subscription = await space.subscribe(["job", ANY], { existing: true });
  for await (const event of stocked) {
    if (event.kind === "present") break;
  }
  const tx: Transaction = await space.transaction({ lease: 10 });
  await tx.write(["result", 1]);
  const inTx: DecodedTuple | null = await tx.tryTake(["job", ANY]);
  await tx.renew(30);
  if (tx.state === "active") await tx.commit();
  else await tx.abort();
  const stats = await space.statistics();
  const tuples: number = stats.tuples + space.clientStatistics().requests;
  await space.close();
  void [leases, one, maybe, read, all, taken, batch, gathered, n, old, written, inTx, tuples];
}

async function records(space: Space): Promise<void> {
  const signal = new AbortController().signal;
  const rec: Record = await space.create("sensors/kitchen", { temp: 21.5, unit: "C" }, { credit: 100, signal });
  await space.create("sensors/hall", { temp: float(20) }, { lease: 60, credit: credit("1.5"), principal: "acme" });
  const opened: Record = await space.record(rec.address);
  const root: Record = await space.record("$");
  const temp: Decoded = await rec.get("temp", { default: 0 });
  const [t1, unit] = await rec.view("temp", "unit");
  const fields = await rec.all();
  const tags: string[] = await rec.tags();
  const snap: RecordSnapshot = await rec.snapshot();
  const left: Credit | undefined = snap.computed.$credit;
  const version: number = (await rec.set("temp", 22)) + (await rec.move("sensors/k1", { redirectLease: null }));
  const expires: number | null = await rec.refresh({ credit: 50n, lease: 10 });
  const bumped: Decoded = await rec.call("bump", [float(0.5), "x", null], { principal: "ops" });
  const copy: Record = await rec.clone("sensors/k2", { lease: 30 });
  const ro: Record = await rec.readOnly();
  const cap: Record = await rec.capability(["read", "set"], { lease: 600 });
  await cap.revoke();
  const found: Record[] = await space.find({ unit: "C", temp: range(20, 30) }, { under: "sensors", limit: 5 });
  const taken: RecordData | null = await space.tryTakeRecord({ unit: ANY });
  const waited: RecordData = await space.takeRecord({ unit: "C" }, { timeout: 1, under: "sensors" });
  const all: RecordWatch = await space.watchRecords({ under: "sensors", events: ["create", "update"], since: 2 });
  for await (const change of all) {
    const c: Change = change;
    void [c.path, c.tag, c.value, c.version];
  }
  const one: RecordWatch = await rec.watch({ since: all.lastSeq, signal });
  one.close();
  const balance: Credit = await space.grantCredit("acme", "12.5");
  const mine: Credit = await space.account("acme");
  const kept: Credit = await space.transferCredit("acme", "bob", credit("2.5"), { signal });
  const c: Challenge = await space.creditChallenge();
  const nonce: string = await makeStamp(c.challenge, c.bits, { signal });
  const minted: Credit = await space.mintCredit(c.challenge, nonce, { principal: "acme" });
  void [kept, minted, c.amount.text, c.expires];
  await copy.destroy({ force: true });
  // @ts-expect-error: a capability grants record operations only
  await rec.capability(["move"]);
  // @ts-expect-error: fields are an object of tags and values
  await space.create("x", [1, 2]);
  // @ts-expect-error: change kinds are those of records
  await space.watchRecords({ events: ["write"] });
  void [opened, root, temp, t1, unit, fields, tags, left, version, expires, bumped, ro, found, taken, waited, balance, mine];
}

async function rules(): Promise<void> {
  const space = connect("http://127.0.0.1:8765/spaces/plant");
  const hot: RuleInfo = await space.rules.add("hot", {
    template: ["reading", formal("str"), formal("float")],
    when: "t[2] > 30.0",
    write: [["alarm", "t[1]", "t[2] - 30.0"]],
  });
  await space.rules.add("comfort", { set: "house.comfort", to: "k.temp < 23.0", using: { k: "kitchen" } });
  const listed: RuleInfo[] = await space.rules.list();
  const failure: TupleSpaceError | null = (await space.rules.get("hot")).lastError;
  await space.rules.remove("hot");
  const now: number = await space.clock.now();
  await space.clock.advance(60);
  // @ts-expect-error: a rule's name is a string
  await space.rules.remove(1);
  void [hot, listed, failure, now];
}

async function server(): Promise<void> {
  const remote = connectServer("http://127.0.0.1:8765", { token: "secret-token-of-16" });
  const spaces: SpaceInfo[] = await remote.spaces();
  const order: string = spaces[0]?.options.order ?? "fifo";
  await remote.createSpace("jobs", { order: "lifo", capacity: 10 });
  const lab = await remote.createSpace("lab", { method_steps: 700, method_ms: 50, method_memory: 65536 });
  await remote.createSpace("market", { operator: "ops", mint_amount: "0.01", mint_bits: 8, redirect_charge: "0.1" });
  const steps: number = lab.options.method_steps;
  await operations(remote.space("jobs"));
  await operations(connect("http://127.0.0.1:8765/spaces/jobs", { fetch: globalThis.fetch, confirmDelay: 0.5 }));
  await remote.deleteSpace("jobs");
  void [order, steps];
}

function errors(error: unknown): string {
  if (error instanceof NotAllowed) return `${error.operation} ${error.allowed.join()}`;
  if (error instanceof CapabilityRevoked) return `${error.expired}`;
  if (error instanceof InsufficientCredit) return `${error.principal} ${error.needed} ${error.available}`;
  if (error instanceof EventsLost) return `${error.firstMissing} ${error.oldestAvailable}`;
  if (error instanceof LimitReached) return `${error.limit} ${error.maximum} ${error.retryAfter}`;
  if (error instanceof TupleSpaceError) return `${error.code} ${error.field} ${error.path} ${error.status}`;
  return "";
}

void [text, back, name, limit, f, t, server, records, errors];
