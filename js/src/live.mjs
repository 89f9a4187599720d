// live: statekit.watch, server state over a websocket (statekit/consumers.py has the protocol).
//
// One websocket per page, opened by the first watch at the configured path. Each watched
// variable is sent once as {"type": "watch", "id", "name", "scope"[, "page"]}, whatever the
// number of statekit.watch calls for it (the server refuses a second watch of a variable);
// the server answers with {"type": "value"} (the current value) and then {"type": "change"}.
// Every server frame carries an "ack" token, sent straight back ({"type": "ack"}): the
// server keeps only a small window of frames unacknowledged, and sends a client that fell
// behind the latest value when it catches up (closing it, code 4408, if it never does).
// When the socket drops, it reconnects with exponential backoff (0.5 s doubling up to 30 s,
// with jitter) and sends every watch again: the server's "value" answers resync the page.
// The backoff restarts only once a connection answered a watch: a server that accepts the
// socket, then closes it without answering, is not asked again at once. The path and the scopes come from the configuration (statekit.live.live_config).

import { StatekitError, report } from "./core.mjs";

/** Milliseconds before reconnection `attempt` (0, 1, ...): 0.5 s doubling up to 30 s, ±25 %. */
export const backoff = (attempt, random = Math.random) =>
  Math.min(30000, 500 * 2 ** attempt) * (0.75 + random() / 2);

/** The websocket URL of `path` for a page at `href`. */
export function socketURL(path, href) {
  const url = new URL(path, href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** A server frame: its object, or null (reported) when it is not JSON. */
export function parseFrame(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    report(new StatekitError("a live update is not JSON", { cause: error }));
    return null;
  }
}

/** Throw a TypeError for arguments of statekit.watch that cannot be watched. */
export function checkWatch(name, callback, scope, scopes) {
  if (typeof name !== "string" || !name) {
    throw new TypeError("statekit.watch: the name must be a non-empty string");
  }
  if (typeof callback !== "function") {
    throw new TypeError("statekit.watch: the callback must be a function");
  }
  if (!scopes.includes(scope)) {
    throw new TypeError(`statekit.watch: scope must be one of ${scopes.join(", ")}`);
  }
}

/** Call one listener of watch `w` ({name, scope}); what it throws is reported. */
export function callListener(w, listener, value, source) {
  try {
    listener.callback(value, { name: w.name, scope: w.scope, source });
  } catch (error) {
    report(error);
  }
}

/** One more listener of watch `w`; watched already, it gets the current value too, as the
 * first one did. */
export function addListener(w, listener) {
  w.listeners.add(listener);
  if (w.last === undefined) return;
  queueMicrotask(() => {
    if (w.listeners.has(listener)) callListener(w, listener, JSON.parse(w.last), "value");
  });
}

/** Tell the listeners of watch `w` that it failed (`frame`: {code, message}). */
export function failListeners(w, frame) {
  const error = new StatekitError(`cannot watch ${w.scope} state "${w.name}": ${frame.message}`);
  error.code = frame.code;
  w.listeners.forEach((listener) => {
    if (!listener.onError) return report(error);
    try {
      listener.onError(error);
    } catch (thrown) {
      report(thrown);
    }
  });
}

/**
 * The live connection of a page: `url()` is where its websocket goes, `scopes` what may be
 * watched, `pageId()` this page's id; `WebSocket`, the timers and `random` are the page's.
 */
export function createLive({ url, scopes, pageId, WebSocket, setTimeout, clearTimeout, random = Math.random }) {
  const watches = new Map(); // id -> {id, key, name, scope, page, listeners, last}
  const byKey = new Map(); // JSON [scope, name, page] -> the same watch
  let socket = null;
  let attempt = 0; // reconnections since a connection last answered a watch
  let timer = null;
  let lastId = 0;
  const isOpen = () => socket !== null && socket.readyState === WebSocket.OPEN;

  function sendWatch(w) {
    const frame = { type: "watch", id: w.id, name: w.name, scope: w.scope };
    if (w.page !== undefined) frame.page = w.page;
    socket.send(JSON.stringify(frame));
  }

  function deliver(w, value, source) {
    const text = JSON.stringify(value);
    if (w.last === text) return; // a resync or a repeat that changes nothing
    w.last = text;
    let first = true; // each callback gets its own copy of the value
    w.listeners.forEach((listener) => {
      callListener(w, listener, first ? value : JSON.parse(text), source);
      first = false;
    });
  }

  function forget(w) {
    watches.delete(w.id);
    byKey.delete(w.key);
    if (watches.size === 0) disconnect();
  }

  function failed(w, frame) {
    if (frame.code === "unavailable") {
      // The server could not read the state (its store is down): ask again in a while.
      setTimeout(() => {
        if (watches.get(w.id) === w && isOpen()) sendWatch(w);
      }, 5000);
    } else {
      forget(w); // Refused or invalid: for good.
    }
    failListeners(w, frame);
  }

  function receive(event) {
    const frame = parseFrame(event.data);
    if (frame && typeof frame.ack === "string" && event.target.readyState === WebSocket.OPEN) {
      event.target.send(JSON.stringify({ type: "ack", ack: frame.ack })); // read: send more
    }
    const w = frame && watches.get(frame.id);
    if (frame && (frame.type === "value" || frame.type === "change")) {
      attempt = 0;
      if (w) deliver(w, frame.value, frame.type);
    } else if (frame && frame.type === "error") {
      if (w) failed(w, frame);
      else report(new StatekitError(`the live connection: ${frame.message} (${frame.code})`));
    }
  }

  function connect() {
    clearTimeout(timer);
    timer = null;
    if (socket || watches.size === 0) return;
    let opened;
    try {
      opened = new WebSocket(url());
    } catch (error) {
      report(new StatekitError("cannot open the live connection", { cause: error }));
      return;
    }
    socket = opened;
    opened.addEventListener("open", () => {
      watches.forEach(sendWatch);
    });
    opened.addEventListener("message", receive);
    opened.addEventListener("close", () => {
      if (socket !== opened) return;
      socket = null;
      if (watches.size === 0) return;
      const delay = backoff(attempt, random);
      attempt += 1;
      timer = setTimeout(connect, delay);
    });
  }

  function disconnect() {
    clearTimeout(timer);
    timer = null;
    const closing = socket;
    socket = null;
    if (closing) closing.close(1000);
  }

  /**
   * Call `callback(value, {name, scope, source})` with the current value of the server state
   * `name`, then after every change, from any process; source is "value" (the current value,
   * also after a reconnection) or "change". Options: scope "global" (a GlobalState declared
   * public=True, the default), "session" or "page" (`page`: a page id, by default this
   * page's, statekit.page.id); onError(error)
   * for a refused watch (else it is reported). Returns the function that stops watching.
   * Several watches of one variable share one server watch.
   */
  function watch(name, callback, options = {}) {
    const scope = options.scope === undefined ? "global" : options.scope;
    const page = options.page === undefined ? pageId() : options.page;
    checkWatch(name, callback, scope, scopes);
    if (scope === "page" && (typeof page !== "string" || !page)) {
      throw new TypeError(
        'statekit.watch: scope "page" needs a page id: render {% statekit_js %} with the ' +
          "session middleware, or pass options.page",
      );
    }
    const listener = { callback, onError: options.onError };
    const key = JSON.stringify([scope, name, scope === "page" ? page : null]);
    let w = byKey.get(key);
    if (w) {
      addListener(w, listener);
    } else {
      lastId += 1;
      w = { id: lastId, key, name, scope, listeners: new Set([listener]), last: undefined };
      if (scope === "page") w.page = page;
      watches.set(w.id, w);
      byKey.set(key, w);
      if (isOpen()) sendWatch(w);
      else connect();
    }
    const watching = w;
    return () => {
      if (!watching.listeners.delete(listener) || watching.listeners.size > 0) return;
      if (watches.get(watching.id) !== watching) return;
      forget(watching);
      if (isOpen()) socket.send(JSON.stringify({ type: "unwatch", id: watching.id }));
    };
  }

  return {
    watch,
    connect,
    disconnect,
    /** Connect now if not connected (back online), not after the backoff. */
    reconnect: () => socket || connect(),
    /** "open", "connecting" or "closed": the state of the live connection. */
    get status() {
      if (!socket) return "closed";
      return isOpen() ? "open" : "connecting";
    },
  };
}
