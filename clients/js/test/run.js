// `npm test`: runs the node suite (test/*.test.js) against servers of its own.
//
// It starts four `tuplespace serve` servers on free ports of 127.0.0.1, each keeping its
// spaces in memory, names them to the tests in the variables test/helpers.js reads, runs
// `node --test`, and stops the servers when the tests have ended (or the run is
// interrupted). The `tuplespace` command is the one named by TUPLESPACE_COMMAND, else the
// project's environment (../../.venv/bin/tuplespace), else the first on PATH.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const EXE = process.platform === "win32" ? ".exe" : "";

// The tokens of the server with tokens: "admin", "reader" (read on every space) and
// "worker" (read, write, take, subscribe on every space).
const TOKENS = {
  admin: ["admin-token-0123456789", { admin: true }],
  reader: ["reader-token-0123456789", { spaces: { "*": ["read"] } }],
  worker: ["worker-token-0123456789", { spaces: { "*": ["read", "write", "take", "subscribe"] } }],
};

/** The `tuplespace` command to start servers with; exits with a clear message if there is none. */
function tuplespaceCommand() {
  const named = process.env.TUPLESPACE_COMMAND;
  if (named) return named;
  const local = join(PACKAGE, "..", "..", ".venv", process.platform === "win32" ? "Scripts" : "bin", "tuplespace" + EXE);
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "tuplespace" + EXE))) return join(dir, "tuplespace" + EXE);
  }
  console.error(
    "npm test needs the tuplespace command to start its servers: none at ../../.venv/bin/tuplespace " +
      "(run `make .venv/.installed` at the root of the project) nor on PATH; or name it in TUPLESPACE_COMMAND.",
  );
  process.exit(2);
}

const PATIENCE = 30_000; // how long a server may take to start

/** Start `tuplespace serve` with `options`; resolves to {url, stop} once it listens. */
function serve(command, options) {
  const args = ["serve", "--host", "127.0.0.1", "--port", "0", "--memory", "--log-level", "info", ...options];
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = ""; // its last output, shown if it fails to start
  const stop = () =>
    new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once("exit", () => done());
      child.kill("SIGTERM");
    });
  return new Promise((ready, failed) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      failed(new Error(`${command} serve did not start within ${PATIENCE / 1000} s:\n${log}`));
    }, PATIENCE);
    child.on("error", (error) => {
      clearTimeout(timer);
      failed(new Error(`could not run ${command}: ${error.message}`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      failed(new Error(`${command} serve ${options.join(" ")} ended (${signal ?? code}):\n${log}`));
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text) => {
      log = (log + text).slice(-4000);
      const found = /serving on (http:\/\/\S+)/.exec(log);
      if (found) {
        clearTimeout(timer);
        ready({ url: found[1], stop });
      }
    });
  });
}

async function main() {
  const command = tuplespaceCommand();
  const scratch = mkdtempSync(join(tmpdir(), "tuplespace-js-"));
  const tokensFile = join(scratch, "tokens.json");
  const tokens = Object.entries(TOKENS).map(([name, [token, grant]]) => ({ name, token, ...grant }));
  writeFileSync(tokensFile, JSON.stringify({ tokens }));
  const servers = [];
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(scratch, { recursive: true, force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => stopAll().then(() => process.exit(130)));
  }
  let code = 1;
  try {
    const started = Promise.allSettled([
      serve(command, ["--long-poll", "0.1"]), // short long polls: blocking calls are asked again often
      serve(command, ["--claim-lease", "0.3"]),
      serve(command, ["--limit", "max_results=3", "--limit", "max_fields=4"]),
      serve(command, ["--tokens", tokensFile]),
    ]);
    const results = await started;
    for (const r of results) if (r.status === "fulfilled") servers.push(r.value);
    const failure = results.find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
    const [main, claims, limits, withTokens] = servers;
    const env = {
      ...process.env,
      TUPLESPACE_TEST_URL: main.url,
      TUPLESPACE_TEST_CLAIMS_URL: claims.url,
      TUPLESPACE_TEST_LIMITS_URL: limits.url,
      TUPLESPACE_TEST_TOKENS_URL: withTokens.url,
      TUPLESPACE_TEST_TOKENS: JSON.stringify(Object.fromEntries(Object.entries(TOKENS).map(([n, [t]]) => [n, t]))),
    };
    const files = readdirSync(join(PACKAGE, "test"))
      .filter((f) => f.endsWith(".test.js"))
      .sort()
      .map((f) => join("test", f));
    // A test that hangs is cancelled after a minute, and the run ends when the tests have.
    const tests = spawn(
      process.execPath,
      ["--test", "--test-timeout=60000", "--test-force-exit", ...process.argv.slice(2), ...files],
      { cwd: PACKAGE, env, stdio: "inherit" },
    );
    code = await new Promise((done) => tests.on("exit", (c, signal) => done(c ?? (signal ? 1 : 0))));
  } catch (error) {
    console.error(error.message);
  } finally {
    await stopAll();
  }
  process.exit(code);
}

await main();
