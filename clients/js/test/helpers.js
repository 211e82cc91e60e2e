// What the tests share: the servers they run against, new space names, waiting for a
// condition, and a fetch that records requests and can break them.
//
// test/run.js (`npm test`) starts the servers and names them in environment variables:
//   TUPLESPACE_TEST_URL         no tokens, long polls of 0.1 s
//   TUPLESPACE_TEST_CLAIMS_URL  claims that run out after 0.3 s
//   TUPLESPACE_TEST_LIMITS_URL  read_all and take_all answer 3 tuples at most; tuples of 4 fields at most
//   TUPLESPACE_TEST_TOKENS_URL  tokens checked; TUPLESPACE_TEST_TOKENS is {name: secret}
//                               for "admin", "reader" (read on every space) and "worker"
//                               (read, write, take, subscribe on every space)

import { after } from "node:test";

import { connect } from "tuplespace";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (test/run.js)`);
  return value;
}

export const servers = {
  get main() {
    return env("TUPLESPACE_TEST_URL");
  },
  get claims() {
    return env("TUPLESPACE_TEST_CLAIMS_URL");
  },
  get limits() {
    return env("TUPLESPACE_TEST_LIMITS_URL");
  },
  get tokens() {
    return env("TUPLESPACE_TEST_TOKENS_URL");
  },
  get secrets() {
    return JSON.parse(env("TUPLESPACE_TEST_TOKENS"));
  },
};

let made = 0;

/** A new space name. */
export function newName(prefix = "js") {
  made += 1;
  return `${prefix}-${process.pid}-${made}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * `connect`, for a test file: every space it opens is closed after the file's tests.
 * Call it once, at the top of the file.
 */
export function opener() {
  const opened = [];
  after(() => Promise.all(opened.map((s) => s.close())));
  return (url, options) => {
    const space = connect(url, options);
    opened.push(space);
    return space;
  };
}

/** The URL of a new space on a server. */
export function spaceUrl(server = servers.main) {
  return `${server}/spaces/${newName()}`;
}

// How long a test waits for something that must happen soon. Generous: it only bounds a
// hang, it never decides a result.
const PATIENCE = 30_000;

/** Poll `condition` (which may be async) until it is true; fail after PATIENCE. */
export async function waitUntil(condition, what = "the condition") {
  const deadline = Date.now() + PATIENCE;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * A fetch that records each request (`calls`: {url, method, headers, body}) and, while
 * `swallow(url, body)` says so, lets the request reach the server and then fails as if the
 * connection had broken before the answer arrived.
 */
export function recordingFetch() {
  const calls = [];
  const fetcher = async (url, init = {}) => {
    const call = {
      url,
      method: init.method ?? "GET",
      headers: { ...(init.headers ?? {}) },
      body: init.body === undefined ? undefined : JSON.parse(init.body),
    };
    calls.push(call);
    const response = await fetch(url, init);
    if (fetcher.swallow(call)) {
      await response.arrayBuffer();
      throw new TypeError("fetch failed: the connection broke");
    }
    return response;
  };
  fetcher.calls = calls;
  fetcher.swallow = () => false;
  return fetcher;
}
