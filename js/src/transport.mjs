// transport: sends the exchange (exchange.mjs) with same-origin fetch, XHR (htmx) and POST
// forms, and applies the writes of their responses before the page sees them.

import { report } from "./core.mjs";

/** The page's requests: `win` is its window, `applyText` applies the server's writes. */
export function createTransport(win, B, applyText) {
  const XHR = win.XMLHttpRequest && win.XMLHttpRequest.prototype;
  const native = XHR && { open: XHR.open, send: XHR.send, setRequestHeader: XHR.setRequestHeader, abort: XHR.abort };
  const nativeFetch = win.fetch;

  function sameOrigin(url) {
    try {
      return new URL(url, win.document.baseURI).origin === win.location.origin;
    } catch {
      return false;
    }
  }

  /** Upload `bundle`; calls done(ref), ref null when it failed (then it is not sent). */
  function upload(bundle, sync, done) {
    const finish = (xhr) => {
      let ref = null;
      try {
        if (xhr && xhr.status === 200) ref = JSON.parse(xhr.responseText).ref || null;
      } catch {
        ref = null;
      }
      done(ref);
    };
    if (!B.uploadUrl || !native) return finish(null);
    const xhr = new win.XMLHttpRequest();
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
      const xhr = new win.XMLHttpRequest();
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
      .call(win, url, { credentials: "same-origin", cache: "no-store" })
      .then((response) => (response.ok ? response.text() : Promise.reject(`status ${response.status}`)))
      .then((text) => applyText(text, "the kept writes"), (why) => lost(String(why)));
  }

  function wrapFetch(ex) {
    win.fetch = function fetch(input, init) {
      let prepared = null;
      let headersOf = null;
      try {
        const isRequest = input instanceof win.Request;
        if (sameOrigin(isRequest ? input.url : String(input))) {
          const given = init && init.headers !== undefined ? init.headers : undefined;
          const base = new win.Headers(given ?? (isRequest ? input.headers : undefined));
          headersOf = (pairs) => {
            const headers = new win.Headers(base);
            for (const [name, value] of pairs) {
              if (!headers.has(name)) headers.set(name, value);
            }
            return headers;
          };
          prepared = ex.prepare(false);
        }
      } catch {
        prepared = null; // Let fetch itself report what is wrong with the arguments.
      }
      if (prepared === null) return nativeFetch.call(win, input, init);
      const send = (pairs) =>
        nativeFetch.call(win, input, { ...init, headers: headersOf(pairs) }).then((response) => {
          const fetching = ex.answered((name) => response.headers.get(name), false);
          return fetching ? fetching.then(() => response) : response;
        });
      return prepared instanceof Promise ? prepared.then(send) : send(prepared);
    };
  }

  function wrapXHR(ex) {
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
        const fetching = ex.answered((name) => this.getResponseHeader(name), sent.sync);
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
      requests.set(this, { sameOrigin: sameOrigin(String(args[1])), sync: args.length > 2 && !args[2], headersSet: new Set() });
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
        prepared = ex.prepare(sent.sync);
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
  function fillForms(ex) {
    const Form = win.HTMLFormElement;
    const formProperty = (form, property) => Object.getOwnPropertyDescriptor(Form.prototype, property).get.call(form);
    win.addEventListener("submit", (event) => {
      const form = event.target;
      if (event.defaultPrevented || !(form instanceof Form)) return;
      const by = event.submitter;
      const method = by && by.hasAttribute("formmethod") ? by.formMethod : formProperty(form, "method");
      const action = by && by.hasAttribute("formaction") ? by.formAction : formProperty(form, "action");
      const sending = method === "post" && sameOrigin(action);
      for (const [name, value] of ex.sentFields) {
        let field = form.querySelector(`input[data-statekit-field="${win.CSS.escape(name)}"]`);
        if (!sending) {
          if (field) field.remove();
          continue;
        }
        if (!field) {
          field = win.document.createElement("input");
          field.type = "hidden";
          field.name = name;
          field.setAttribute("data-statekit-field", name);
          form.append(field);
        }
        field.value = value();
      }
    });
  }

  /** Send the exchange `ex` with the page's requests from now on. */
  function install(ex) {
    if (typeof nativeFetch === "function") wrapFetch(ex);
    if (XHR) wrapXHR(ex);
    fillForms(ex);
  }

  return { upload, fetchWrites, install };
}
