/*!
 * statekit.js: the browser side of statekit (see statekit/browser.py, statekit/middleware.py).
 * Plain modern JavaScript: no build step, no dependency. {% statekit_js %} loads it after
 * <script type="application/json" id="statekit-config">, which it reads once.
 *
 * One global object, `statekit`, built in sections:
 *   1. core      statekit.config, statekit.StatekitError, small helpers
 *   2. browser   statekit.browser.get / set / remove / subscribe: BrowserState in localStorage
 *   3. exchange  sends the browser state (and the page id) with same-origin fetch, XHR (htmx)
 *                and POST forms, and applies the writes the server sends back
 *   4. page      statekit.page.id: this page load's id, the owner of its PageState; a
 *                pagehide beacon tells the server the page closed
 *   5. render    keeps the elements of {% statekit_value %} equal to the state
 *   6. live      statekit.watch: server state (global, session, page) kept live over a
 *                websocket (statekit/consumers.py), reconnecting with backoff
 *   7. start     applies the writes that came with the page
 * A new section goes before "start", on the same pattern:
 * its config under statekit.config.<section>, its API under statekit.<section>.
 */
(() => {
  "use strict";

  // ---- 1. core ------------------------------------------------------------------------

  if (window.statekit && window.statekit.browser) return; // Loaded twice: the first one stays.

  class StatekitError extends Error {
    constructor(message, options) {
      super(`statekit: ${message}`, options);
      this.name = "StatekitError";
    }
  }

  const report = (error) =>
    typeof window.reportError === "function" ? window.reportError(error) : console.error(error);
  const own = (object, key) =>
    object !== null && typeof object === "object" && Object.prototype.hasOwnProperty.call(object, key);
  const whenReady = (fn) =>
    document.readyState === "loading"
      ? document.addEventListener("DOMContentLoaded", fn, { once: true })
      : fn();
  const readJSON = (id, what) => {
    const element = id && document.getElementById(id);
    if (!element) return null;
    try {
      return JSON.parse(element.textContent);
    } catch (error) {
      report(new StatekitError(`${what} (#${id}) is not JSON`, { cause: error }));
      return null;
    }
  };

  const config = readJSON("statekit-config", "the configuration") || {};
  const statekit = (window.statekit = Object.assign(window.statekit || {}, { config, StatekitError }));

  // ---- 2. browser: BrowserState in localStorage -----------------------------------------
  //
  // localStorage[prefix + name] holds an entry: {"v": value, "t": ms} for plain state,
  // {"s": token, "t": ms} for signed and {"e": token, "t": ms} for encrypted state, where t is
  // when it was written. Values are the JSON of statekit.codec: a datetime, Decimal or UUID
  // appears as {"__sk__": "datetime", "v": "..."}.

  const B = Object.assign(
    { prefix: "statekit:", states: {}, writes: {}, budget: 1536, refTtl: 3600 },
    config.browser,
  );
  const states = B.states;
  const listeners = new Map(); // name -> Set of {callback}
  const changeHooks = []; // (name) => void, for the sections below
  const warned = new Set();

  const warnOnce = (key, message) => {
    if (!warned.has(key)) {
      warned.add(key);
      console.warn(`statekit: ${message}`);
    }
  };

  function meta(name) {
    if (!own(states, name)) {
      throw new StatekitError(`no BrowserState named "${name}" is declared on the server`);
    }
    return states[name];
  }

  function unavailable(error) {
    return new StatekitError(
      "localStorage is unavailable (disabled, blocked, or a sandboxed page): browser state " +
        "reads its defaults and cannot be saved",
      { cause: error },
    );
  }

  function storage() {
    let area;
    try {
      area = window.localStorage;
    } catch (error) {
      throw unavailable(error);
    }
    if (!area) throw unavailable(null);
    return area;
  }

  /** The valid, unexpired entry localStorage holds for `name`, or null. Never throws. */
  function read(name) {
    const m = states[name];
    let text;
    try {
      text = storage().getItem(B.prefix + name);
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
    if (
      !own(entry, field) ||
      typeof entry.t !== "number" ||
      (field !== "v" && typeof entry[field] !== "string")
    ) {
      warnOnce(`malformed:${name}`, `the value of "${name}" in localStorage is malformed`);
      return null;
    }
    if (m.maxAge != null && !(Date.now() - entry.t <= m.maxAge * 1000)) {
      try {
        storage().removeItem(B.prefix + name);
        queueMicrotask(() => changed(name, "expired"));
      } catch {
        // Unavailable since: nothing to remove.
      }
      return null;
    }
    return entry;
  }

  /** A django.core.signing token is "<value JSON>:<timestamp>:<signature>". */
  function signedValue(token) {
    return JSON.parse(token.slice(0, token.lastIndexOf(":", token.lastIndexOf(":") - 1)));
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

  function encode(name, value) {
    try {
      const json = JSON.stringify(value, (key, item) => {
        if (item === undefined || typeof item === "function" || typeof item === "symbol") {
          throw new TypeError(`${typeof item} is not JSON`);
        }
        if (typeof item === "number" && !Number.isFinite(item)) {
          throw new TypeError(`${item} is not a JSON number`);
        }
        return item;
      });
      return json;
    } catch (error) {
      throw new StatekitError(`"${name}" cannot store this value: ${error.message}`, {
        cause: error,
      });
    }
  }

  /** Write an entry's JSON (null: remove it); throws StatekitError when it cannot. */
  function store(name, text) {
    const area = storage();
    try {
      if (text === null) area.removeItem(B.prefix + name);
      else area.setItem(B.prefix + name, text);
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
    store(name, `{"v":${json},"t":${Date.now()}}`);
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

  window.addEventListener("storage", (event) => {
    let area;
    try {
      area = window.localStorage;
    } catch {
      return;
    }
    if (event.storageArea !== area) return;
    if (event.key === null) {
      Object.keys(states).forEach((name) => changed(name, "tab"));
    } else if (event.key.startsWith(B.prefix)) {
      const name = event.key.slice(B.prefix.length);
      if (own(states, name)) changed(name, "tab");
    }
  });

  statekit.browser = { get, set, remove, subscribe };

  // ---- 3. exchange: browser state to the server, writes back ----------------------------
  //
  // What a fetch/XHR carries stays small whatever is stored: the entries that fit in
  // B.budget characters go inline in B.header; the others form one bundle, uploaded once to
  // B.uploadUrl and referenced by the hash the server answers (B.refHeader). A request that
  // needs a bundle the server does not have yet waits for its upload. Forms carry every
  // entry in their body. See statekit/browser_refs.py.

  const ascii = (text) =>
    text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

  /** The entries this page holds, as [name, entry] pairs. */
  function held() {
    const found = [];
    for (const name of Object.keys(states)) {
      const entry = read(name);
      if (entry !== null) found.push([name, entry]);
    }
    return found;
  }

  /** {inline: the header value (ASCII JSON), bundle: JSON of the entries left out, or null}. */
  function outgoing() {
    const pieces = held().map(([name, entry]) => [
      name,
      entry,
      ascii(`${JSON.stringify(name)}:${JSON.stringify(entry)}`),
    ]);
    pieces.sort((a, b) => a[2].length - b[2].length); // the most values inline
    const inline = [];
    const left = {};
    let size = 2;
    for (const [name, entry, piece] of pieces) {
      if (size + piece.length + 1 <= B.budget) {
        inline.push(piece);
        size += piece.length + 1;
      } else left[name] = entry;
    }
    const names = Object.keys(left).sort();
    const bundle = names.length ? JSON.stringify(Object.fromEntries(names.map((n) => [n, left[n]]))) : null;
    return { inline: `{${inline.join(",")}}`, bundle };
  }

  const refs = new Map(); // bundle JSON -> {ref, at}: what the server holds, as far as we know
  const uploads = new Map(); // bundle JSON -> Promise of its ref, while it uploads

  function known(bundle) {
    const found = refs.get(bundle);
    // Uploaded again after half its time on the server, which keeps it REF_TTL after each use.
    return found && Date.now() - found.at < B.refTtl * 500 ? found.ref : null;
  }

  const XHR = window.XMLHttpRequest && window.XMLHttpRequest.prototype;
  const native = XHR && {
    open: XHR.open,
    send: XHR.send,
    setRequestHeader: XHR.setRequestHeader,
    abort: XHR.abort,
  };

  /** Upload `bundle`; calls done(ref), ref null when it failed (then it is not sent). */
  function upload(bundle, sync, done) {
    const finish = (xhr) => {
      let ref = null;
      try {
        if (xhr && xhr.status === 200) ref = JSON.parse(xhr.responseText).ref || null;
      } catch {
        ref = null;
      }
      if (ref) {
        refs.set(bundle, { ref, at: Date.now() });
        if (refs.size > 8) refs.delete(refs.keys().next().value);
      } else {
        warnOnce("upload", "browser state over the header budget could not be uploaded: " +
          "it reads as its default on the server (is statekit.urls included?)");
      }
      done(ref);
    };
    if (!B.uploadUrl || !native) return finish(null);
    const xhr = new XMLHttpRequest();
    try {
      native.open.call(xhr, "POST", B.uploadUrl, !sync);
      native.setRequestHeader.call(xhr, "Content-Type", "application/json");
      if (!sync) xhr.addEventListener("loadend", () => finish(xhr));
      native.send.call(xhr, bundle);
    } catch {
      return finish(null);
    }
    if (sync) finish(xhr);
  }

  function ensure(bundle) {
    if (!uploads.has(bundle)) {
      const uploading = new Promise((resolve) => upload(bundle, false, resolve));
      uploads.set(bundle, uploading);
      uploading.then(() => uploads.delete(bundle));
    }
    return uploads.get(bundle);
  }

  /** Headers other sections add to every same-origin fetch/XHR: [name, () => value]. */
  const sentHeaders = [];
  /** What every same-origin POST form sends: [field name, () => value]. Sections add. */
  const sentFields = [[B.field, () => JSON.stringify(Object.fromEntries(held()))]];

  /**
   * The [name, value] headers of a same-origin request, or a Promise of them when a bundle
   * must be uploaded first (`sync`: a synchronous XHR, which uploads synchronously).
   */
  function prepare(sync) {
    const plan = outgoing();
    const build = (ref) => {
      const pairs = [[B.header, plan.inline], ...sentHeaders.map(([name, value]) => [name, value()])];
      if (ref) pairs.push([B.refHeader, ref]);
      return pairs;
    };
    if (plan.bundle === null) return build(null);
    const ref = known(plan.bundle);
    if (ref) return build(ref);
    if (!sync) return ensure(plan.bundle).then(build);
    let uploaded = null;
    upload(plan.bundle, true, (found) => (uploaded = found));
    return build(uploaded);
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

  /**
   * Fetch the writes the server kept by reference (too large for its header) and apply them.
   * Returns a Promise that settles once they are applied (or lost), null when `sync`: then a
   * synchronous request, as the page's own, applies them before it returns.
   */
  function fetchWrites(ref, sync) {
    const url = `${B.writesUrl}?ref=${encodeURIComponent(ref)}`;
    const lost = (why) =>
      console.warn(`statekit: writes of the server were lost (${why}): see statekit/browser_refs.py`);
    if (sync || typeof nativeFetch !== "function") {
      const xhr = new XMLHttpRequest();
      try {
        native.open.call(xhr, "GET", url, !sync);
        if (!sync) {
          return new Promise((resolve) => {
            xhr.addEventListener("loadend", () => {
              if (xhr.status === 200) applyText(xhr.responseText, "the kept writes");
              else lost(`status ${xhr.status}`);
              resolve();
            });
            native.send.call(xhr);
          });
        }
        native.send.call(xhr);
      } catch (error) {
        lost(String(error));
        return null;
      }
      if (xhr.status === 200) applyText(xhr.responseText, "the kept writes");
      else lost(`status ${xhr.status}`);
      return null;
    }
    return nativeFetch
      .call(window, url, { credentials: "same-origin", cache: "no-store" })
      .then((response) => (response.ok ? response.text() : Promise.reject(`status ${response.status}`)))
      .then((text) => applyText(text, "the kept writes"), (why) => lost(String(why)));
  }

  /**
   * What a same-origin response says: writes, and whether our bundle is gone. Returns a
   * Promise when writes must be fetched first (see fetchWrites), else null.
   */
  function answered(header, sync) {
    if (header(B.missingHeader)) refs.clear();
    const text = header(B.setHeader);
    if (text) applyText(text, `the ${B.setHeader} header`);
    const ref = header(B.setRefHeader);
    return ref && B.writesUrl ? fetchWrites(ref, sync) : null;
  }

  function sameOrigin(url) {
    try {
      return new URL(url, document.baseURI).origin === window.location.origin;
    } catch {
      return false;
    }
  }

  const nativeFetch = window.fetch;
  if (typeof nativeFetch === "function") {
    window.fetch = function fetch(input, init) {
      let prepared = null;
      let headersOf = null;
      try {
        const isRequest = input instanceof Request;
        if (sameOrigin(isRequest ? input.url : String(input))) {
          const given = init && init.headers !== undefined ? init.headers : undefined;
          const base = new Headers(given ?? (isRequest ? input.headers : undefined));
          headersOf = (pairs) => {
            const headers = new Headers(base);
            for (const [name, value] of pairs) {
              if (!headers.has(name)) headers.set(name, value);
            }
            return headers;
          };
          prepared = prepare(false);
        }
      } catch {
        prepared = null; // Let fetch itself report what is wrong with the arguments.
      }
      if (prepared === null) return nativeFetch.call(window, input, init);
      const send = (pairs) =>
        nativeFetch.call(window, input, { ...init, headers: headersOf(pairs) }).then((response) => {
          const fetching = answered((name) => response.headers.get(name), false);
          return fetching ? fetching.then(() => response) : response;
        });
      return prepared instanceof Promise ? prepared.then(send) : send(prepared);
    };
  }

  if (XHR) {
    const { open, send, setRequestHeader, abort } = native;
    const requests = new WeakMap(); // XMLHttpRequest -> {sameOrigin, sync, headersSet, applied, held}
    const watched = new WeakSet();
    // While the writes of a response are fetched (fetchWrites), its events wait: the page's
    // handlers run after the writes are applied, as when they come in the header. Listening
    // in the capture phase, statekit runs before the page's own listeners on the request.
    const EVENTS = ["readystatechange", "progress", "load", "error", "abort", "timeout", "loadend"];
    const replay = (xhr, sent) => {
      const held = sent.held;
      sent.held = null;
      if (requests.get(xhr) !== sent) return; // Aborted or opened again meanwhile.
      for (const { event, readyState } of held) {
        Object.defineProperty(xhr, "readyState", { configurable: true, get: () => readyState });
        try {
          xhr.dispatchEvent(new event.constructor(event.type, event));
        } finally {
          delete xhr.readyState;
        }
      }
    };
    const onEvent = function (event) {
      const sent = requests.get(this);
      if (!sent || !sent.sameOrigin || !event.isTrusted) return;
      if (this.readyState >= 2 && !sent.applied) {
        sent.applied = true;
        const fetching = answered((name) => this.getResponseHeader(name), sent.sync);
        if (fetching) {
          sent.held = [];
          fetching.then(() => replay(this, sent));
        }
      }
      if (sent.held) {
        event.stopImmediatePropagation();
        sent.held.push({ event, readyState: this.readyState });
      }
    };
    XHR.open = function (...args) {
      requests.set(this, {
        sameOrigin: sameOrigin(String(args[1])),
        sync: args.length > 2 && !args[2],
        headersSet: new Set(),
      });
      if (!watched.has(this)) {
        watched.add(this);
        for (const type of EVENTS) this.addEventListener(type, onEvent, true);
      }
      return open.apply(this, args);
    };
    XHR.abort = function (...args) {
      requests.delete(this); // A send waiting for an upload stays unsent.
      return abort.apply(this, args);
    };
    XHR.setRequestHeader = function (...args) {
      const sent = requests.get(this);
      if (sent) sent.headersSet.add(String(args[0]).toLowerCase());
      return setRequestHeader.apply(this, args);
    };
    XHR.send = function (...args) {
      const sent = requests.get(this);
      if (!sent || !sent.sameOrigin) return send.apply(this, args);
      const go = (pairs) => {
        for (const [name, value] of pairs) {
          if (sent.headersSet.has(name.toLowerCase())) continue;
          try {
            setRequestHeader.call(this, name, value);
          } catch (error) {
            report(error);
          }
        }
        return send.apply(this, args);
      };
      let prepared;
      try {
        prepared = prepare(sent.sync);
      } catch (error) {
        report(error);
        return send.apply(this, args);
      }
      if (!(prepared instanceof Promise)) return go(prepared);
      // Sent once the bundle is uploaded; not if it was aborted or opened again meanwhile.
      prepared.then((pairs) => {
        if (requests.get(this) === sent) go(pairs);
      });
      return undefined;
    };
  }

  // Same-origin POST forms get hidden fields. Not GET forms: the values would end up in
  // URLs and logs. Not form.submit() either, which submits without a submit event.
  const formProperty = (form, property) =>
    Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, property).get.call(form);
  window.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
    const by = event.submitter;
    const method = by && by.hasAttribute("formmethod") ? by.formMethod : formProperty(form, "method");
    const action = by && by.hasAttribute("formaction") ? by.formAction : formProperty(form, "action");
    const sending = method === "post" && sameOrigin(action);
    for (const [name, value] of sentFields) {
      let field = form.querySelector(`input[data-statekit-field="${CSS.escape(name)}"]`);
      if (!sending) {
        if (field) field.remove();
        continue;
      }
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden";
        field.name = name;
        field.setAttribute("data-statekit-field", name);
        form.append(field);
      }
      field.value = value();
    }
  });

  // ---- 4. page: this page load's id, the owner of its PageState (statekit/pages.py) -----
  //
  // {% statekit_js %} gives every rendered page a new id, signed for this session. It goes
  // with every same-origin request; when the page is hidden for good (closed, reloaded, or
  // left without entering the back/forward cache), a beacon tells the server, which keeps
  // the page's state PAGE_CLOSED_TTL more. A page the cache evicts later sends nothing: its
  // state then lives until its ttl or its session's end.

  const P = config.page || null;
  if (P) {
    sentHeaders.push([P.header, () => P.id]);
    sentFields.push([P.field, () => P.id]);
    window.addEventListener("pagehide", (event) => {
      // Kept in the back/forward cache (persisted), the page may come back: not closed.
      if (event.persisted || !P.closeUrl || typeof navigator.sendBeacon !== "function") return;
      const body = new FormData();
      body.append(P.field, P.id);
      navigator.sendBeacon(P.closeUrl, body);
    });
  }
  statekit.page = { id: P ? P.id : null };

  // ---- 5. render: {% statekit_value %} elements -----------------------------------------

  function pick(value, key) {
    if (Array.isArray(value)) {
      return /^(0|[1-9][0-9]*)$/.test(key) && Number(key) < value.length ? value[Number(key)] : "";
    }
    return own(value, key) ? value[key] : "";
  }

  function renderElement(element) {
    const name = element.getAttribute("data-statekit-value");
    if (!own(states, name) || states[name].encrypted) return;
    const key = element.getAttribute("data-statekit-key");
    const value = key === null ? current(name) : pick(current(name), key);
    const shown = typeof value === "string" ? value : JSON.stringify(value);
    const control =
      element instanceof HTMLInputElement ||
      element instanceof HTMLTextAreaElement ||
      element instanceof HTMLSelectElement;
    // As text, never as HTML: a stored value cannot inject markup.
    if (control && element.value !== shown) element.value = shown;
    if (!control && element.textContent !== shown) element.textContent = shown;
  }

  /** Show the current values in the {% statekit_value %} elements in `root` (a document or element). */
  function render(root = document) {
    if (root instanceof Element && root.hasAttribute("data-statekit-value")) renderElement(root);
    root.querySelectorAll("[data-statekit-value]").forEach(renderElement);
  }

  changeHooks.push((name) =>
    document
      .querySelectorAll(`[data-statekit-value="${CSS.escape(name)}"]`)
      .forEach(renderElement),
  );
  document.addEventListener("htmx:load", (event) => {
    if (event.target instanceof Element) render(event.target);
  });
  statekit.browser.render = render;

  // ---- 6. live: statekit.watch, server state over a websocket (statekit/consumers.py) ----
  //
  // One websocket per page, opened by the first watch at config.live.path. Each watched
  // variable is sent once as {"type": "watch", "id", "name", "scope"[, "page"]}, whatever the
  // number of statekit.watch calls for it (the server refuses a second watch of a variable);
  // the server answers with {"type": "value"} (the current value) and then {"type": "change"}.
  // Every server frame carries an "ack" token, sent straight back ({"type": "ack"}): the
  // server keeps only a small window of frames unacknowledged, and sends a client that fell
  // behind the latest value when it catches up (closing it, code 4408, if it never does).
  // When the socket drops, it reconnects with exponential backoff (0.5 s doubling up to 30 s,
  // with jitter) and sends every watch again: the server's "value" answers resync the page.
  // The backoff restarts only once a connection answered a watch: a server whose channel
  // layer is down accepts the socket, then closes it (code 4503), and is not asked again at
  // once.

  const L = Object.assign({ path: "/ws/statekit/" }, config.live);
  const SCOPES = ["global", "session", "page"];
  const watches = new Map(); // id -> {id, key, name, scope, page, listeners, last}
  const byKey = new Map(); // JSON [scope, name, page] -> the same watch
  let socket = null;
  let attempt = 0; // reconnections since a connection last answered a watch
  let timer = null;
  let lastId = 0;

  function liveURL() {
    const url = new URL(L.path, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  function sendWatch(w) {
    const frame = { type: "watch", id: w.id, name: w.name, scope: w.scope };
    if (w.page !== undefined) frame.page = w.page;
    socket.send(JSON.stringify(frame));
  }

  function call(w, listener, value, source) {
    try {
      listener.callback(value, { name: w.name, scope: w.scope, source });
    } catch (error) {
      report(error);
    }
  }

  function deliver(w, value, source) {
    const text = JSON.stringify(value);
    if (w.last === text) return; // a resync or a repeat that changes nothing
    w.last = text;
    let first = true; // each callback gets its own copy of the value
    w.listeners.forEach((listener) => {
      call(w, listener, first ? value : JSON.parse(text), source);
      first = false;
    });
  }

  function forget(w) {
    watches.delete(w.id);
    byKey.delete(w.key);
    if (watches.size === 0) disconnect();
  }

  function failed(w, frame) {
    const error = new StatekitError(`cannot watch ${w.scope} state "${w.name}": ${frame.message}`);
    error.code = frame.code;
    if (frame.code === "unavailable") {
      // The server could not read the state (its store is down): ask again in a while.
      setTimeout(() => {
        if (watches.get(w.id) === w && socket && socket.readyState === WebSocket.OPEN) sendWatch(w);
      }, 5000);
    } else {
      forget(w); // Refused or invalid: for good.
    }
    w.listeners.forEach((listener) => {
      if (!listener.onError) return report(error);
      try {
        listener.onError(error);
      } catch (thrown) {
        report(thrown);
      }
    });
  }

  function receive(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (error) {
      report(new StatekitError("a live update is not JSON", { cause: error }));
      return;
    }
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
      opened = new WebSocket(liveURL());
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
      const delay = Math.min(30000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
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
    const page = options.page === undefined ? statekit.page.id : options.page;
    if (typeof name !== "string" || !name) {
      throw new TypeError("statekit.watch: the name must be a non-empty string");
    }
    if (typeof callback !== "function") {
      throw new TypeError("statekit.watch: the callback must be a function");
    }
    if (!SCOPES.includes(scope)) {
      throw new TypeError(`statekit.watch: scope must be one of ${SCOPES.join(", ")}`);
    }
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
      w.listeners.add(listener);
      if (w.last !== undefined) {
        // Watched already: this callback gets the current value too, as the first one did.
        queueMicrotask(() => {
          if (w.listeners.has(listener)) call(w, listener, JSON.parse(w.last), "value");
        });
      }
    } else {
      lastId += 1;
      w = { id: lastId, key, name, scope, listeners: new Set([listener]), last: undefined };
      if (scope === "page") w.page = page;
      watches.set(w.id, w);
      byKey.set(key, w);
      if (socket && socket.readyState === WebSocket.OPEN) sendWatch(w);
      else connect();
    }
    const watching = w;
    return () => {
      if (!watching.listeners.delete(listener) || watching.listeners.size > 0) return;
      if (watches.get(watching.id) !== watching) return;
      forget(watching);
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "unwatch", id: watching.id }));
      }
    };
  }

  // Back online, or back from the back/forward cache: reconnect now, not after the backoff.
  window.addEventListener("online", () => {
    if (!socket) connect();
  });
  window.addEventListener("pagehide", (event) => {
    if (event.persisted) disconnect();
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) connect();
  });

  statekit.watch = watch;
  statekit.live = {
    watch,
    /** "open", "connecting" or "closed": the state of the live connection. */
    get status() {
      if (!socket) return "closed";
      return socket.readyState === WebSocket.OPEN ? "open" : "connecting";
    },
  };

  // ---- 7. start -------------------------------------------------------------------------

  apply(B.writes); // Queued before the page rendered: in the configuration.
  whenReady(() => {
    apply(readJSON(B.writesId, "the late writes")); // Queued after: added by the middleware.
    render();
  });
})();
