// Stamps for minting credit by proof of work (docs/active.md#minting), as the Python binding's
// `ts.make_stamp` makes them: a nonce such that the SHA-256 digest of `"<challenge>:<nonce>"`
// (UTF-8) begins with `bits` zero bits. Web Crypto hashes, in Node.js and in browsers alike.

import { InvalidValue } from "./errors.js";
import { describe } from "./values.js";

/** The most zero bits a space asks of a stamp. */
const MAX_BITS = 64;
/** Digests asked for at once: Web Crypto answers each in a promise. */
const BATCH = 256;

const utf8 = new TextEncoder();

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The leading zero bits of `digest` (an ArrayBuffer). */
function zeroBits(digest) {
  let n = 0;
  for (const byte of new Uint8Array(digest)) {
    if (byte !== 0) return n + Math.clz32(byte) - 24;
    n += 8;
  }
  return n;
}

/**
 * A nonce that makes a stamp of `bits` zero bits on `challenge` (about `2 ** bits` hashes of
 * work): what `space.mintCredit` takes. Each call searches from a random start, so callers
 * find different stamps. InvalidValue unless `bits` is an integer from 0 to 64.
 */
export async function makeStamp(challenge, bits, { signal } = {}) {
  if (typeof challenge !== "string") {
    throw new InvalidValue(`challenge is a string, got ${describe(challenge)}`, { field: "challenge" });
  }
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_BITS) {
    throw new InvalidValue(`bits is an integer from 0 to ${MAX_BITS}, got ${describe(bits)}`, { field: "bits" });
  }
  const start = hex(globalThis.crypto.getRandomValues(new Uint8Array(8)));
  for (let n = 0; ; n += BATCH) {
    signal?.throwIfAborted();
    const nonces = Array.from({ length: BATCH }, (_, i) => start + (n + i).toString(16));
    const digests = await Promise.all(
      nonces.map((nonce) => globalThis.crypto.subtle.digest("SHA-256", utf8.encode(`${challenge}:${nonce}`))),
    );
    const found = digests.findIndex((d) => zeroBits(d) >= bits);
    if (found >= 0) return nonces[found];
  }
}
