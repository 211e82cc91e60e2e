// Connecting to a server and to its spaces.

import { Http, httpUrl, parseSpaceUrl, spacePath } from "./http.js";
import { Space } from "./spaces.js";

/**
 * A space of a server, from its URL `http://host:port/spaces/NAME`. Sends nothing yet.
 *
 * Options: `token` (sent as `Authorization: Bearer <token>`), `fetch` (a fetch function to use
 * instead of the global one), `requestTimeout` (seconds to wait for an answer that involves
 * no waiting, 10), `confirmDelay` (seconds a claim waits to ride on the next take, 1).
 */
export function connect(url, options = {}) {
  const { base, name } = parseSpaceUrl(url);
  return new Space(new Http(base, options), name, options);
}

/** A server, from its base URL `http://host:port`: its spaces, their options and statistics. */
export function connectServer(url, options = {}) {
  const { origin, path } = httpUrl(url);
  return new Server(origin + path, options);
}

/** A server: its spaces, listed, made and deleted. */
export class Server {
  #http;
  #options;

  /** @internal use connectServer() */
  constructor(base, options) {
    this.#http = new Http(base, options);
    this.#options = options;
    this.url = base;
  }

  /** `{status, version}`. */
  health({ signal } = {}) {
    return this.#http.request("GET", "/health", undefined, { again: true, signal });
  }

  /** The spaces the token may read: `[{name, options, statistics}]` as the server keeps them. */
  async spaces({ signal } = {}) {
    return (await this.#http.request("GET", "/spaces", undefined, { again: true, signal })).spaces;
  }

  /** One space: `{name, options, statistics}`; NotFound if there is none. */
  describe(name, { signal } = {}) {
    return this.#http.request("GET", spacePath(name), undefined, { again: true, signal });
  }

  /**
   * Create a space with `options` (`order`, `capacity`, `event_retention`, `store`,
   * `anonymous`, as in docs/http-api.md) unless it exists; Conflict if it exists with other
   * options. `{name, options}`.
   */
  createSpace(name, options = {}, { signal } = {}) {
    return this.#http.request("PUT", spacePath(name), options, { signal });
  }

  /** Delete a space and its tuples. */
  async deleteSpace(name, { signal } = {}) {
    await this.#http.request("DELETE", spacePath(name), undefined, { signal });
  }

  /** A handle on one space (sharing this server's token and options). */
  space(name) {
    return new Space(new Http(this.url, this.#options), name, this.#options);
  }
}
