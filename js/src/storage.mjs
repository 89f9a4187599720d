// storage: statekit.browser, BrowserState in localStorage.
//
// localStorage[prefix + name] holds an entry: {"v": value, "t": ms} for plain state,
// {"s": token, "t": ms} for signed and {"e": token, "t": ms} for encrypted state, where t is
// when it was written. Values are the JSON of statekit.codec: a datetime, Decimal or UUID
// appears as {"__sk__": "datetime", "v": "..."}. The prefix and the declared states come from
// the page's configuration (statekit.browser.browser_config).

import { StatekitError, own, report, warnOnce } from "./core.mjs";

/** A django.core.signing token is "<value JSON>:<timestamp>:<signature>". */
export function signedValue(token) {
  return JSON.parse(token.slice(0, token.lastIndexOf(":", token.lastIndexOf(":") - 1)));
}

/** The JSON of `value` for state `name`; StatekitError for what JSON cannot hold. */
export function encode(name, value) {
  try {
    return JSON.stringify(value, (key, item) => {
      if (item === undefined || typeof item === "function" || typeof item === "symbol") {
        throw new TypeError(`${typeof item} is not JSON`);
      }
      if (typeof item === "number" && !Number.isFinite(item)) {
        throw new TypeError(`${item} is not a JSON number`);
      }
      return item;
    });
  } catch (error) {
    throw new StatekitError(`"${name}" cannot store this value: ${error.message}`, { cause: error });
  }
}

function unavailable(error) {
  return new StatekitError(
    "localStorage is unavailable (disabled, blocked, or a sandboxed page): browser state " +
      "reads its defaults and cannot be saved",
    { cause: error },
  );
}

/**
 * The browser state of a page: `prefix` and `states` from its configuration, `area()` returns
 * its localStorage (and may throw, as window.localStorage does when it is blocked).
 */
export function createBrowser({ prefix, states, area, now = Date.now }) {
  const listeners = new Map(); // name -> Set of {callback}
  const changeHooks = []; // (name) => void, for the other modules

  function meta(name) {
    if (!own(states, name)) {
      throw new StatekitError(`no BrowserState named "${name}" is declared on the server`);
    }
    return states[name];
  }

  function storage() {
    let found;
    try {
      found = area();
    } catch (error) {
      throw unavailable(error);
    }
    if (!found) throw unavailable(null);
    return found;
  }

  /** The valid, unexpired entry localStorage holds for `name`, or null. Never throws. */
  function read(name) {
    const m = states[name];
    let text;
    try {
      text = storage().getItem(prefix + name);
    } catch (error) {
      warnOnce("unavailable", error.message.replace(/^statekit: /, ""));
      return null;
    }
    if (text === null) return null;
    let entry = null;
    try {
      entry = JSON.parse(text);
    } catch {
      // Malformed: handled below.
    }
    const field = m.encrypted ? "e" : m.signed ? "s" : "v";
    if (!own(entry, field) || typeof entry.t !== "number" || (field !== "v" && typeof entry[field] !== "string")) {
      warnOnce(`malformed:${name}`, `the value of "${name}" in localStorage is malformed`);
      return null;
    }
    if (m.maxAge != null && !(now() - entry.t <= m.maxAge * 1000)) {
      try {
        storage().removeItem(prefix + name);
        queueMicrotask(() => changed(name, "expired"));
      } catch {
        // Unavailable since: nothing to remove.
      }
      return null;
    }
    return entry;
  }

  function current(name) {
    const m = states[name];
    const entry = read(name);
    if (entry !== null) {
      if (!m.signed) return entry.v;
      try {
        return signedValue(entry.s);
      } catch {
        warnOnce(`malformed:${name}`, `the value of "${name}" in localStorage is malformed`);
      }
    }
    return structuredClone(m.default);
  }

  /** Write an entry's JSON (null: remove it); throws StatekitError when it cannot. */
  function store(name, text) {
    const found = storage();
    try {
      if (text === null) found.removeItem(prefix + name);
      else found.setItem(prefix + name, text);
    } catch (error) {
      if (error && (error.name === "QuotaExceededError" || error.code === 22)) {
        throw new StatekitError(`localStorage is full: "${name}" was not saved`, { cause: error });
      }
      throw unavailable(error);
    }
  }

  function changed(name, source) {
    const m = states[name];
    for (const listener of [...(listeners.get(name) || [])]) {
      try {
        listener.callback(m.encrypted ? undefined : current(name), { name, source });
      } catch (error) {
        report(error);
      }
    }
    for (const hook of changeHooks) {
      try {
        hook(name);
      } catch (error) {
        report(error);
      }
    }
  }

  /** The value of `name`: what localStorage holds, or the declared default (a fresh copy). */
  function get(name) {
    if (meta(name).encrypted) {
      throw new StatekitError(`"${name}" is encrypted: only the server can read it`);
    }
    return current(name);
  }

  /** Store `value` (any JSON value, falsy ones included) for this tab, the others and the server. */
  function set(name, value) {
    const m = meta(name);
    if (m.signed || m.encrypted) {
      const kind = m.encrypted ? "encrypted" : "signed";
      throw new StatekitError(`"${name}" is ${kind}: only the server can write it`);
    }
    const json = encode(name, value);
    const size = new TextEncoder().encode(json).length;
    if (size > m.maxBytes) {
      throw new StatekitError(
        `the value of "${name}" is ${size} bytes encoded, over its limit of ` +
          `${m.maxBytes} bytes; nothing was saved`,
      );
    }
    store(name, `{"v":${json},"t":${now()}}`);
    changed(name, "local");
  }

  /** Forget the value: `name` reads as its default again. */
  function remove(name) {
    meta(name);
    store(name, null);
    changed(name, "local");
  }

  /**
   * Call `callback(value, {name, source})` after each change of `name`, whichever tab or
   * response made it; source is "local", "tab", "server" or "expired". The value of an
   * encrypted state is undefined. Returns the function that unsubscribes.
   */
  function subscribe(name, callback) {
    meta(name);
    if (typeof callback !== "function") {
      throw new TypeError("statekit.browser.subscribe: the callback must be a function");
    }
    const listener = { callback };
    if (!listeners.has(name)) listeners.set(name, new Set());
    listeners.get(name).add(listener);
    return () => listeners.get(name).delete(listener);
  }

  /** The entries this page holds, as [name, entry] pairs. */
  function held() {
    const found = [];
    for (const name of Object.keys(states)) {
      const entry = read(name);
      if (entry !== null) found.push([name, entry]);
    }
    return found;
  }

  /** Apply the server's writes: {name: entry, or null to remove}. */
  function apply(writes) {
    if (writes === null || typeof writes !== "object") return;
    for (const name of Object.keys(writes)) {
      const entry = writes[name];
      try {
        store(name, entry === null ? null : JSON.stringify(entry));
      } catch (error) {
        report(error); // Full or unavailable: the page goes on with what it has.
        continue;
      }
      if (own(states, name)) changed(name, "server");
    }
  }

  /** Parse and apply the JSON text of writes (from a header or the writes endpoint). */
  function applyText(text, where) {
    let writes;
    try {
      writes = JSON.parse(text);
    } catch (error) {
      report(new StatekitError(`${where} is not JSON`, { cause: error }));
      return;
    }
    apply(writes);
  }

  /** Another tab changed localStorage `key` (null: it was cleared). */
  function changedElsewhere(key) {
    if (key === null) {
      Object.keys(states).forEach((name) => changed(name, "tab"));
    } else if (key.startsWith(prefix)) {
      const name = key.slice(prefix.length);
      if (own(states, name)) changed(name, "tab");
    }
  }

  return {
    api: { get, set, remove, subscribe },
    current,
    held,
    apply,
    applyText,
    changedElsewhere,
    onChange: (hook) => changeHooks.push(hook),
  };
}
