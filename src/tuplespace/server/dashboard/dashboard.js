// The dashboard: the page of index.html, driven through the JavaScript binding.
//
// Every figure comes from the server's statistics, polled once a second through
// the binding (`spaces()`); the live feed is a subscription per watched template,
// and the feed of record changes a record watch per watched path.
// Tuples, templates, records and their templates are typed and shown in the text form
// (docs/records.md, "The text form"; textform.js).

import {
  ANY,
  EventsLost,
  Formal,
  NotFound,
  RuleNotFound,
  Timeout,
  connectServer,
  credit,
  encodeTemplate,
  typeName,
} from "../js/index.js";
import { address, format, parseMap, parseMapTemplate, parseTemplate, parseTuple, parseValue } from "./textform.js";

const TOKEN_KEY = "tuplespace.token";
const POLL_MS = 1000;
const CHART_POINTS = 60;
const FEED_MAX = 200;
const KINDS = ["writes", "takes", "reads"];

// The server is the one that served this page, wherever it is mounted.
const BASE = new URL(".", document.baseURI).href.replace(/\/$/, "");

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  server: null,
  name: null, // the open space
  space: null,
  rows: new Map(), // space name -> its row in the table
  watches: new Set(), // {stop()} of each running subscription and record watch
  record: null, // the open record's handle
  found: false, // whether the list of records shows a find, to be run again after changes
  rulesShown: false, // whether the open space's rules were asked for since it was opened
  totals: null, // the counters at the last poll, and when
  rates: [], // per poll: {writes, takes, reads} per second
};

// -- showing results and errors ------------------------------------------------------

// An error of the binding, or of the server through it, reads as
// "403 forbidden: the token 'reader' may not write on space 'jobs'"; its message
// starts with the part of the request at fault ("template[1]: …").
function describe(error) {
  if (error?.code) {
    return `${error.status ? `${error.status} ` : ""}${error.code}: ${error.message}`;
  }
  return String(error?.message ?? error);
}

function showError(element, error) {
  element.textContent = describe(error);
  element.hidden = false;
}

function clearError(element) {
  element.textContent = "";
  element.hidden = true;
}

// Run a form's action, showing what fails in the form's error element; a failure
// also clears what the form showed before (its elements marked data-result).
async function attempt(errorElement, action) {
  clearError(errorElement);
  try {
    await action();
  } catch (error) {
    const form = errorElement.closest("form");
    for (const result of document.querySelectorAll(`[data-result="${form.id}"]`)) {
      result.replaceChildren();
    }
    showError(errorElement, error);
  }
}

function optionalNumber(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

function code(text) {
  const element = document.createElement("code");
  element.textContent = text;
  return element;
}

// -- the token -----------------------------------------------------------------------

function options() {
  return state.token ? { token: state.token } : {};
}

function useToken(token) {
  state.token = token;
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
  state.server = connectServer(BASE, options());
  // Another token may see other spaces: their counters are no rate.
  state.totals = null;
  state.rates = [];
  $("chart").replaceChildren();
  $("chart-summary").textContent = "No figures yet.";
  if (state.name !== null) {
    openSpace(state.name);
  }
  poll();
}

// -- spaces and their figures --------------------------------------------------------

let pollTimer = null;
let polling = false;
let pollAgain = false;

// Ask for the figures now (and then every POLL_MS); a call while a poll runs makes
// that poll run once more rather than start a second loop.
async function poll() {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  clearTimeout(pollTimer);
  do {
    pollAgain = false;
    await pollOnce();
  } while (pollAgain);
  polling = false;
  pollTimer = setTimeout(poll, POLL_MS);
}

async function pollOnce() {
  const server = state.server;
  try {
    const spaces = await server.spaces();
    if (server !== state.server) {
      return; // the token changed meanwhile
    }
    clearError($("spaces-error"));
    showSpaces(spaces);
    record(spaces);
    $("server-status").textContent = `${BASE}: ${spaces.length} space${spaces.length === 1 ? "" : "s"}`;
  } catch (error) {
    if (server !== state.server) {
      return;
    }
    showError($("spaces-error"), error);
    $("server-status").textContent = `${BASE}: cannot list spaces`;
  }
}

function showSpaces(spaces) {
  const seen = new Set();
  const body = $("space-rows");
  for (const { name, statistics } of spaces) {
    seen.add(name);
    let row = state.rows.get(name);
    if (!row) {
      row = newRow(name);
      state.rows.set(name, row);
    }
    body.append(row); // keeps the server's order; a row that is there stays, with its focus
    const cells = row.cells;
    cells[1].textContent = statistics.tuples;
    cells[2].textContent = statistics.waiters;
    cells[3].textContent = statistics.subscribers;
    cells[4].textContent = statistics.writes;
    cells[5].textContent = statistics.takes;
    cells[6].textContent = statistics.reads;
    cells[7].textContent = statistics.records;
    row.classList.toggle("selected", name === state.name);
  }
  if (state.name !== null) {
    const open = spaces.find((space) => space.name === state.name);
    $("space-unlisted").hidden = open !== undefined;
    showSpaceFigures(open?.statistics ?? { tuples: 0, arities: [] });
    if (open !== undefined && !state.rulesShown) {
      attempt($("rules-error"), showRules);
    }
  }
  for (const [name, row] of state.rows) {
    if (!seen.has(name)) {
      row.remove();
      state.rows.delete(name);
    }
  }
  $("no-spaces").hidden = spaces.length > 0;
}

function newRow(name) {
  const row = document.createElement("tr");
  row.dataset.space = name;
  const head = document.createElement("th");
  head.scope = "row";
  const open = document.createElement("button");
  open.type = "button";
  open.className = "link";
  open.textContent = name;
  open.addEventListener("click", () => showSpace(name));
  head.append(open);
  row.append(head);
  for (let i = 0; i < 7; i++) {
    const cell = document.createElement("td");
    cell.className = "number";
    row.append(cell);
  }
  return row;
}

function showSpaceFigures(statistics) {
  $("space-count").textContent = statistics.tuples;
  const arities = statistics.arities;
  $("space-arities").textContent = arities.length ? arities.join(", ") : "none";
  const buttons = $("browse-arities");
  const shown = [...buttons.children].map((b) => Number(b.value));
  if (shown.join() !== arities.join()) {
    buttons.replaceChildren(
      ...arities.map((arity) => {
        const button = document.createElement("button");
        button.type = "button";
        button.value = arity;
        button.textContent = arity;
        button.setAttribute("aria-label", `Browse tuples of ${arity} field${arity === 1 ? "" : "s"}`);
        button.addEventListener("click", () => browse(arity));
        return button;
      }),
    );
  }
  $("browse").hidden = arities.length === 0;
}

// -- the chart of operations per second ----------------------------------------------

function record(spaces) {
  const now = performance.now();
  const totals = { writes: 0, takes: 0, reads: 0 };
  for (const { statistics } of spaces) {
    for (const kind of KINDS) {
      totals[kind] += statistics[kind];
    }
  }
  const last = state.totals;
  if (last !== null && now - last.at < POLL_MS * 0.9) {
    return; // an extra poll, after a write or a take: the chart keeps its pace
  }
  state.totals = { at: now, totals };
  if (last === null) {
    return;
  }
  const seconds = (now - last.at) / 1000;
  const rate = {};
  for (const kind of KINDS) {
    // A deleted space takes its counters with it: count no negative operations.
    rate[kind] = Math.max(0, totals[kind] - last.totals[kind]) / seconds;
  }
  state.rates.push(rate);
  if (state.rates.length > CHART_POINTS) {
    state.rates.shift();
  }
  drawChart();
}

const SVG = "http://www.w3.org/2000/svg";

function svg(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, value);
  }
  return element;
}

function drawChart() {
  const chart = $("chart");
  const [width, height, top, bottom, left] = [320, 120, 8, 6, 28];
  const peak = {};
  for (const kind of KINDS) {
    peak[kind] = Math.max(0, ...state.rates.map((rate) => rate[kind]));
  }
  const most = niceCeiling(Math.max(...Object.values(peak)));
  const x = (i) => left + ((width - left) * i) / (CHART_POINTS - 1);
  const y = (value) => height - bottom - ((height - bottom - top) * value) / most;
  const parts = [
    svg("line", { class: "grid", x1: left, y1: y(0), x2: width, y2: y(0) }),
    svg("line", { class: "grid", x1: left, y1: y(most), x2: width, y2: y(most) }),
  ];
  for (const [value, text] of [
    [0, "0"],
    [most, String(most)],
  ]) {
    const label = svg("text", { class: "label", x: left - 6, y: y(value) + 4, "text-anchor": "end" });
    label.textContent = text;
    parts.push(label);
  }
  const offset = CHART_POINTS - state.rates.length;
  for (const kind of KINDS) {
    const points = state.rates.map((rate, i) => `${x(offset + i).toFixed(1)},${y(rate[kind]).toFixed(1)}`);
    parts.push(svg("polyline", { class: kind, points: points.join(" ") }));
  }
  chart.replaceChildren(...parts);
  const now = state.rates[state.rates.length - 1];
  const figures = (rates) => KINDS.map((kind) => `${kind} ${round(rates[kind])}`).join(", ");
  $("chart-summary").textContent =
    `All spaces, per second. Now: ${figures(now)}. Peak of the last minute: ${figures(peak)}.`;
}

function round(value) {
  return value >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
}

// The smallest of 1, 2, 5, 10, 20, 50, … at or above value.
function niceCeiling(value) {
  let step = 1;
  for (;;) {
    for (const factor of [1, 2, 5]) {
      if (step * factor >= value) {
        return step * factor;
      }
    }
    step *= 10;
  }
}

// -- one space -----------------------------------------------------------------------

function openSpace(name) {
  stopWatches();
  // Closing the handle confirms the takes it made: none of their tuples goes back.
  // A confirmation that fails leaves the claim to run out, and the tuple returns.
  state.space?.close().catch(() => {});
  state.name = name;
  state.space = state.server.space(name);
  $("space").hidden = false;
  $("space-title-name").textContent = name;
  $("space-count").textContent = "…";
  $("space-arities").textContent = "…";
  $("feed").replaceChildren();
  $("query-tuples").replaceChildren();
  $("record-tree").replaceChildren();
  $("changes").replaceChildren();
  $("rules-list").replaceChildren();
  $("rules-result").value = "";
  closeRecord();
  state.found = false;
  for (const id of ["write-result", "take-result", "query-result", "find-result", "create-result"]) {
    $(id).value = "";
  }
  for (const id of [
    "write-error",
    "take-error",
    "query-error",
    "events-error",
    "find-error",
    "create-error",
    "changes-error",
    "rules-error",
  ]) {
    clearError($(id));
  }
  for (const [other, row] of state.rows) {
    row.classList.toggle("selected", other === name);
  }
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  state.rulesShown = false; // shown once the space is listed: a space not created yet has none
}

// Open a space the person chose, and bring its panel into view with focus on its title.
function showSpace(name) {
  openSpace(name);
  $("space-title").focus();
  $("space").scrollIntoView({ block: "start" });
}

async function write(form) {
  const tuple = parseTuple(form.tuple.value);
  const lease = optionalNumber(form.lease);
  $("write-result").value = "";
  const written = await state.space.write(tuple, lease === null ? {} : { lease });
  const until =
    written.expiresAt === null ? "" : `, until ${new Date(written.expiresAt * 1000).toLocaleTimeString()}`;
  $("write-result").value = `Written ${format(tuple)} (lease ${written.id}${until})`;
  poll();
}

async function take(form) {
  const template = parseTemplate(form.template.value);
  const timeout = optionalNumber(form.timeout);
  const result = $("take-result");
  if (timeout === null) {
    result.value = "";
    const tuple = await state.space.tryTake(template);
    result.value = tuple === null ? "Nothing matched." : `Took ${format(tuple)}`;
  } else {
    result.value = `Waiting up to ${timeout} s…`;
    try {
      result.value = `Took ${format(await state.space.take(template, { timeout }))}`;
    } catch (error) {
      if (!(error instanceof Timeout)) {
        result.value = "";
        throw error;
      }
      result.value = `Nothing matched in ${timeout} s.`;
    }
  }
  poll();
}

async function query(form, action) {
  const template = parseTemplate(form.template.value);
  const list = $("query-tuples");
  if (action === "count") {
    const count = await state.space.count(template);
    list.replaceChildren();
    $("query-result").value = `${count} matching tuple${count === 1 ? "" : "s"}`;
    return;
  }
  const limit = optionalNumber(form.limit);
  const tuples = await state.space.readAll(template, limit === null ? {} : { limit });
  list.replaceChildren(
    ...tuples.map((tuple) => {
      const item = document.createElement("li");
      item.append(code(format(tuple)));
      return item;
    }),
  );
  $("query-result").value = `${tuples.length} tuple${tuples.length === 1 ? "" : "s"} found`;
}

function browse(arity) {
  const form = $("query-form");
  form.template.value = `(${Array.from({ length: arity }, () => "?").join(", ")})`;
  attempt($("query-error"), () => query(form, "read"));
}

// -- the live feed -------------------------------------------------------------------

async function watch(form) {
  const text = form.template.value.trim();
  const template = parseTemplate(text);
  const events = [...form.querySelectorAll("input[name=kind]:checked")].map((box) => box.value);
  if (events.length === 0) {
    throw new Error("Choose at least one kind of event.");
  }
  // Listed once the subscription is in place: every event from then on is shown, after the
  // tuples already there when "existing" is checked.
  const subscription = await state.space.subscribe(template, { events, existing: form.existing.checked });
  const item = document.createElement("li");
  const stop = document.createElement("button");
  stop.type = "button";
  stop.textContent = "Stop";
  stop.setAttribute("aria-label", `Stop watching ${text}`);
  item.append(code(text), " ", stop);
  $("watches").append(item);
  const running = {
    stop() {
      state.watches.delete(running);
      item.remove();
      subscription.close();
    },
  };
  stop.addEventListener("click", () => running.stop());
  state.watches.add(running);
  for (;;) {
    let step;
    try {
      step = await subscription.next();
    } catch (error) {
      if (error instanceof EventsLost) {
        showLost(error); // the subscription goes on after the gap
        continue;
      }
      if (state.watches.has(running)) {
        showError($("events-error"), error);
        running.stop();
      }
      return;
    }
    if (step.done) {
      return;
    }
    showEvent(step.value);
  }
}

function stopWatches() {
  for (const running of [...state.watches]) {
    running.stop();
  }
}

function showEvent(event) {
  const date = new Date(event.time * 1000);
  const when = document.createElement("time");
  when.dateTime = date.toISOString();
  when.textContent = date.toLocaleTimeString();
  addToFeed(event.kind, code(format(event.tuple)), when);
}

function showLost(error) {
  addToFeed("lost", `events ${error.firstMissing} to ${error.oldestAvailable - 1} are no longer in the log`);
}

function addToFeed(kindName, ...parts) {
  addItem($("feed"), kindName, parts);
}

function addItem(feed, kindName, parts) {
  const item = document.createElement("li");
  const kind = document.createElement("span");
  kind.className = `kind ${kindName}`;
  kind.textContent = kindName;
  // Spaces between the parts, for the text a screen reader reads.
  item.append(kind, ...parts.flatMap((part) => [" ", part]));
  feed.prepend(item);
  while (feed.children.length > FEED_MAX) {
    feed.lastElementChild.remove();
  }
}

// -- records -------------------------------------------------------------------------

function lifetimeText(lifetime) {
  return lifetime === null || lifetime === undefined ? "never ends" : `${round(lifetime.value)} s`;
}

// A record's path in the open space, from its address (…/spaces/<space>/<path>); null
// for the address of anything else.
function pathOf(text) {
  const marker = `/spaces/${state.name}/`;
  const at = text.indexOf(marker);
  return at < 0 || text.includes("/$cap/") ? null : text.slice(at + marker.length);
}

async function findRecords(form) {
  const template = parseMapTemplate(form.template.value);
  const under = form.under.value.trim() || null;
  const limit = optionalNumber(form.limit);
  const records = await state.space.find(template, { under, limit });
  // A record destroyed between the find and its reading is left out.
  const snapshots = await Promise.all(records.map((rec) => rec.snapshot().catch(() => null)));
  const found = [];
  for (const [i, snap] of snapshots.entries()) {
    if (snap !== null) {
      found.push({ rec: records[i], snap, path: pathOf(snap.address.text) ?? snap.address.text });
    }
  }
  $("record-tree").replaceChildren(...treeItems(pathTree(found)));
  state.found = true;
  $("find-result").value = `${found.length} record${found.length === 1 ? "" : "s"} found`;
}

// The records as a tree of their paths: a node per path segment, holding the record at
// that path (if one was found) and the nodes below it.
function pathTree(found) {
  const root = { children: new Map() };
  for (const entry of found.sort((a, b) => (a.path < b.path ? -1 : 1))) {
    let node = root;
    for (const segment of entry.path.split("/")) {
      if (!node.children.has(segment)) {
        node.children.set(segment, { segment, entry: null, children: new Map() });
      }
      node = node.children.get(segment);
    }
    node.entry = entry;
  }
  return root;
}

function treeItems(node) {
  return [...node.children.values()].map((child) => {
    const item = document.createElement("li");
    if (child.entry === null) {
      item.append(`${child.segment}/`);
    } else {
      item.append(...recordNode(child.segment, child.entry));
    }
    if (child.children.size > 0) {
      const list = document.createElement("ul");
      list.append(...treeItems(child));
      item.append(list);
    }
    return item;
  });
}

function recordNode(segment, { rec, snap }) {
  const open = document.createElement("button");
  open.type = "button";
  open.className = "link";
  open.textContent = segment;
  open.dataset.address = snap.address.text;
  open.setAttribute("aria-label", `Open record ${snap.address.text}`);
  open.addEventListener("click", () => attempt($("find-error"), () => openRecord(rec)));
  const figures = document.createElement("span");
  figures.className = "figures";
  const money = snap.computed.$credit ?? "";
  figures.textContent = `v${snap.version}${money === "" ? "" : `, $credit ${money}`}, ${lifetimeText(snap.computed.$lifetime)}`;
  return [open, " ", fieldsView(snap.fields), " ", figures];
}

// A record's fields in the text form, where a field holding the address of a record
// of this space is a link that opens that record: its containment.
function fieldsView(fields) {
  const view = document.createElement("code");
  view.append("{");
  for (const [i, [tag, value]] of Object.entries(fields).entries()) {
    view.append(`${i ? ", " : ""}${JSON.stringify(tag)}: `);
    const path = typeName(value) === "uri" ? pathOf(address(value)) : null;
    if (path === null) {
      view.append(format(value));
    } else {
      const link = document.createElement("button");
      link.type = "button";
      link.className = "link";
      link.textContent = format(value);
      link.setAttribute("aria-label", `Open contained record ${path}`);
      link.addEventListener("click", () => attempt($("find-error"), () => openContained(address(value))));
      view.append(link);
    }
  }
  view.append("}");
  return view;
}

// Open the record at `text` (an address): in the record panel, with focus on it in the tree
// when the tree shows it.
async function openContained(text) {
  await openRecord(await state.space.record(text));
  const node = [...$("record-tree").querySelectorAll("button[data-address]")].find(
    (button) => button.dataset.address === text,
  );
  (node ?? $("record-title")).focus();
}

// After a change made here, the list shows the records as they are now.
async function refreshRecords() {
  if (state.found) {
    await attempt($("find-error"), () => findRecords($("find-form")));
  }
}

async function createRecord(form) {
  const fields = parseMap(form.fields.value);
  const lease = optionalNumber(form.lease);
  const amount = form.credit.value.trim();
  const options = {};
  if (lease !== null) {
    options.lease = lease;
  }
  if (amount !== "") {
    options.credit = credit(amount);
  }
  $("create-result").value = "";
  const rec = await state.space.create(form.path.value.trim(), fields, options);
  $("create-result").value = `Created ${rec.address}`;
  await openRecord(rec);
  await refreshRecords();
}

async function openRecord(rec) {
  state.record = rec;
  $("record-result").value = "";
  clearError($("record-error"));
  await showRecord();
  $("record-form").hidden = false;
}

async function showRecord() {
  const snap = await state.record.snapshot();
  $("record-address").textContent = snap.address.text;
  $("record-version").textContent = snap.version;
  $("record-credit").textContent = String(snap.computed.$credit ?? "");
  $("record-lifetime").textContent = lifetimeText(snap.computed.$lifetime);
  $("record-fields").replaceChildren(fieldsView(snap.fields));
}

function closeRecord() {
  state.record = null;
  $("record-form").hidden = true;
  $("record-result").value = "";
  clearError($("record-error"));
}

async function changeRecord(form, action) {
  const rec = state.record;
  if (action === "destroy") {
    await rec.destroy();
    closeRecord();
    $("create-result").value = `Destroyed ${rec.address}`;
  } else {
    const tag = form.tag.value.trim();
    const version = await rec.set(tag, parseValue(form.value.value));
    await showRecord();
    $("record-result").value = `Set ${tag}: version ${version}`;
  }
  await refreshRecords();
}

async function watchChanges(form) {
  const under = form.under.value.trim() || null;
  const where = under === null ? "every record" : `records under ${under}`;
  // Listed once the watch is in place: every change from then on is shown.
  const watch = await state.space.watchRecords({ under });
  const item = document.createElement("li");
  const stop = document.createElement("button");
  stop.type = "button";
  stop.textContent = "Stop";
  stop.setAttribute("aria-label", `Stop watching ${where}`);
  item.append(where, " ", stop);
  $("record-watches").append(item);
  const running = {
    stop() {
      state.watches.delete(running);
      item.remove();
      watch.close();
    },
  };
  stop.addEventListener("click", () => running.stop());
  state.watches.add(running);
  for (;;) {
    let step;
    try {
      step = await watch.next();
    } catch (error) {
      if (error instanceof EventsLost) {
        addItem($("changes"), "lost", [
          `changes ${error.firstMissing} to ${error.oldestAvailable - 1} are no longer in the log`,
        ]);
        continue;
      }
      if (state.watches.has(running)) {
        showError($("changes-error"), error);
        running.stop();
      }
      return;
    }
    if (step.done) {
      return;
    }
    showChange(step.value);
  }
}

function showChange(change) {
  const date = new Date(change.time * 1000);
  const when = document.createElement("time");
  when.dateTime = date.toISOString();
  when.textContent = date.toLocaleTimeString();
  let what;
  if (change.kind === "create") {
    what = format(change.value);
  } else if (change.kind === "update") {
    what = `${change.tag} = ${format(change.value)}`;
  } else if (change.kind === "move") {
    what = `from ${change.value}`;
  } else {
    what = "";
  }
  const text = code(`${change.path} v${change.version}${what ? ` ${what}` : ""}`);
  addItem($("changes"), change.kind, [text, when]);
}

// -- rules ---------------------------------------------------------------------------

// A template in the text form: `?` any value, `?int` any int, other fields as the wire has them.
function templateText(fields) {
  const field = (f) => {
    if (f === ANY) return "?";
    if (f instanceof Formal) return `?${f.type}`;
    if (Array.isArray(f)) return templateText(f);
    try {
      return format(f);
    } catch {
      return encodeTemplate([f]).slice(1, -1);
    }
  };
  return `(${fields.map(field).join(", ")})`;
}

// What a rule does, in one line: "on write of (…) when …: write (…); take (…); set {…}".
function ruleText(rule) {
  if (rule.kind === "push") {
    const using = Object.entries(rule.using).map(([name, path]) => `${name} = ${path}`);
    return `${rule.set} := ${rule.to}${using.length ? ` (with ${using.join(", ")})` : ""}`;
  }
  const source =
    rule.kind === "reaction" ? `of ${templateText(rule.template)}` : `of ${rule.path}${rule.tag ? `.${rule.tag}` : ""}`;
  const actions = [
    ...rule.write.map((t) => `write ${format(t)}`),
    ...rule.take.map((t) => `take ${templateText(t)}`),
    ...Object.entries(rule.set).map(([target, expr]) => `set ${target} := ${expr}`),
  ];
  return `on ${rule.on.join(", ")} ${source}${rule.when ? ` when ${rule.when}` : ""}: ${actions.join("; ")}`;
}

function ruleItem(rule) {
  const item = document.createElement("li");
  const name = code(rule.name);
  const figures = document.createElement("span");
  figures.textContent = `level ${rule.level}, fired ${rule.fired}, failed ${rule.failed}`;
  const what = code(ruleText(rule));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove rule ${rule.name}`);
  remove.addEventListener("click", () => attempt($("rules-error"), () => removeRule(rule.name)));
  item.append(name, " ", figures, " ", what);
  if (rule.lastError) {
    const failure = document.createElement("span");
    failure.className = "error";
    failure.textContent = `last failure: ${describe(rule.lastError)}`;
    item.append(" ", failure);
  }
  item.append(" ", remove);
  return item;
}

// The open space's rules; a space not created yet has none.
async function showRules() {
  const space = state.space;
  state.rulesShown = true;
  let rules;
  try {
    rules = await space.rules.list();
  } catch (error) {
    if (!(error instanceof NotFound) || error instanceof RuleNotFound) throw error;
    rules = [];
  }
  if (space !== state.space) return; // another space was opened meanwhile
  $("rules-list").replaceChildren(...rules.map(ruleItem));
  $("rules-result").value = rules.length === 1 ? "1 rule" : `${rules.length} rules`;
}

async function removeRule(name) {
  await state.space.rules.remove(name);
  await showRules();
  $("rules-result").value = `Removed rule ${name}; ${$("rules-result").value}`;
}

// -- wiring --------------------------------------------------------------------------

function onSubmit(id, action) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    action(event.target, event.submitter);
  });
}

// Enter in a text area submits its form, as in a one-line field; Shift+Enter starts a new line.
document.addEventListener("keydown", (event) => {
  const area = event.target;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && area instanceof HTMLTextAreaElement) {
    event.preventDefault();
    area.form.requestSubmit(area.form.querySelector('[type="submit"]')); // its first action, as Enter in a field
  }
});

onSubmit("token-form", (form) => useToken(form.token.value.trim()));
$("token-clear").addEventListener("click", () => {
  $("token").value = "";
  useToken("");
});
onSubmit("open-form", (form) => showSpace(form.space.value.trim()));
onSubmit("write-form", (form) => attempt($("write-error"), () => write(form)));
onSubmit("take-form", (form) => attempt($("take-error"), () => take(form)));
onSubmit("query-form", (form, submitter) => attempt($("query-error"), () => query(form, submitter.value)));
onSubmit("events-form", (form) => attempt($("events-error"), () => watch(form)));
onSubmit("find-form", (form) => attempt($("find-error"), () => findRecords(form)));
onSubmit("create-form", (form) => attempt($("create-error"), () => createRecord(form)));
onSubmit("record-form", (form, submitter) => attempt($("record-error"), () => changeRecord(form, submitter.value)));
onSubmit("changes-form", (form) => attempt($("changes-error"), () => watchChanges(form)));
onSubmit("rules-form", () => attempt($("rules-error"), showRules));

$("token").value = state.token;
state.server = connectServer(BASE, options());
if (location.hash.length > 1) {
  openSpace(decodeURIComponent(location.hash.slice(1)));
}
poll();
