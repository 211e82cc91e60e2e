// Records the requests of the node suite: loaded into each of its processes (as
// `NODE_OPTIONS=--import=…/record-requests.js`) when TUPLESPACE_TEST_REQUESTS names a file,
// it appends a line "METHOD URL" to that file for each fetch. tests/test_js.py checks each
// line against the operation table of the HTTP API (tuplespace/_httpapi.py).
import { appendFileSync } from "node:fs";

const log = process.env.TUPLESPACE_TEST_REQUESTS;
if (log) {
  const send = globalThis.fetch;
  globalThis.fetch = (url, init = {}) => {
    appendFileSync(log, `${init.method ?? "GET"} ${url}\n`);
    return send(url, init);
  };
}
