// events: statekit.watch over Server-Sent Events, when no websocket route is configured
// (statekit/live/sse.py has the protocol; plain ASGI, no Channels).
//
// One EventSource per page, at the configured URL, naming every watched variable:
// ?watch=<scope>:<name>&watch=...&<page field>=<page id>. Its events are named like the
// watches, their data the value as JSON: the first after (re)connecting is the current value
// ("value"), the rest changes ("change"). Adding or dropping a watch reopens the stream with
// the new list (batched: the watches of one task open one stream). The browser reconnects a
// dropped stream by itself (the server's retry:) and the server sends the current values
// again, which resyncs the page. A stream the server refused (4xx) is not retried by the
// browser: its JSON answer names the refused watch, which fails (onError) while the others
// are watched again; any other failure reconnects with the websocket's backoff. A watch that
// ends on its own (its value cannot be read: a `statekit:error` event naming it) fails the
// same way.

import { StatekitError, report } from "./core.mjs";
import { addListener, backoff, callListener, checkWatch, failListeners } from "./live.mjs";

/** The stream's URL for `watches` (each {scope, name}) and this page's id. */
export function eventsURL(base, href, watches, pageField, pageId) {
  const url = new URL(base, href);
  for (const w of watches) url.searchParams.append("watch", `${w.scope}:${w.name}`);
  if (pageId && watches.some((w) => w.scope !== "global")) url.searchParams.set(pageField, pageId);
  return url.href;
}

/**
 * statekit.watch over an EventSource: the same interface as createLive (live.mjs).
 * `url` is the stream's path, `pageField` the name of the page id's parameter; `EventSource`,
 * `fetch` and the timers are the page's.
 */
export function createEvents({ url, href, scopes, pageId, pageField, EventSource, fetch, setTimeout, clearTimeout, random = Math.random }) {
  const watches = new Map(); // "<scope>:<name>" -> {event, name, scope, listeners, last, fresh}
  let source = null;
  let attempt = 0;
  let timer = null;
  let pending = false;

  function deliver(w, text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return report(new StatekitError("a live update is not JSON", { cause: error }));
    }
    const kind = w.fresh ? "value" : "change";
    w.fresh = false;
    if (w.last === text) return; // a resync that changes nothing
    w.last = text;
    w.listeners.forEach((listener) => callListener(w, listener, JSON.parse(text), kind));
  }

  function retryLater() {
    clearTimeout(timer);
    timer = setTimeout(open, backoff(attempt, random));
    attempt += 1;
  }

  async function refused(streamURL) {
    // EventSource tells nothing of a refusal: ask the same URL what it was.
    let answer = null;
    try {
      const response = await fetch(streamURL, { credentials: "same-origin" });
      if (response.status >= 400 && response.status < 500) answer = await response.json();
    } catch (error) {
      answer = null;
    }
    if (!drop(answer)) retryLater();
  }

  /** Fail the watch that `answer` ({watch, code, message}) names, and stream the others. */
  function drop(answer) {
    const w = answer && watches.get(answer.watch);
    if (!w) return false;
    watches.delete(w.event);
    failListeners(w, answer);
    schedule();
    return true;
  }

  function open() {
    clearTimeout(timer);
    timer = null;
    close();
    if (watches.size === 0) return;
    const list = [...watches.values()];
    const streamURL = eventsURL(url, href(), list, pageField, pageId());
    let opened;
    try {
      opened = new EventSource(streamURL, { withCredentials: true });
    } catch (error) {
      report(new StatekitError("cannot open the live event stream", { cause: error }));
      return;
    }
    source = opened;
    list.forEach((w) => {
      w.fresh = true;
      opened.addEventListener(w.event, (event) => {
        attempt = 0;
        if (source === opened && watches.get(w.event) === w) deliver(w, event.data);
      });
    });
    opened.addEventListener("statekit:error", (event) => {
      if (source !== opened) return;
      try {
        drop(JSON.parse(event.data));
      } catch (error) {
        report(new StatekitError("a live error is not JSON", { cause: error }));
      }
    });
    opened.addEventListener("error", () => {
      if (source !== opened) return;
      if (opened.readyState === EventSource.CLOSED) {
        source = null;
        refused(streamURL);
      } else {
        list.forEach((w) => (w.fresh = true)); // the browser reconnects: values come again
      }
    });
  }

  function close() {
    const closing = source;
    source = null;
    if (closing) closing.close();
  }

  function schedule() {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      open();
    });
  }

  /** statekit.watch (see live.mjs): the same arguments, callbacks and return value. */
  function watch(name, callback, options = {}) {
    const scope = options.scope === undefined ? "global" : options.scope;
    checkWatch(name, callback, scope, scopes);
    if (scope === "page" && (!pageId() || (options.page !== undefined && options.page !== pageId()))) {
      throw new TypeError(
        'statekit.watch: scope "page" over the event stream watches this page\'s state: ' +
          "render {% statekit_js %} with the session middleware",
      );
    }
    const listener = { callback, onError: options.onError };
    const event = `${scope}:${name}`;
    let w = watches.get(event);
    if (w) {
      addListener(w, listener);
    } else {
      w = { event, name, scope, listeners: new Set([listener]), last: undefined, fresh: true };
      watches.set(event, w);
      schedule();
    }
    const watching = w;
    return () => {
      if (!watching.listeners.delete(listener) || watching.listeners.size > 0) return;
      if (watches.get(watching.event) !== watching) return;
      watches.delete(watching.event);
      schedule();
    };
  }

  return {
    watch,
    connect: () => source || schedule(),
    disconnect: () => {
      clearTimeout(timer);
      close();
    },
    reconnect: () => source || open(),
    /** "open", "connecting" or "closed": the state of the live connection. */
    get status() {
      if (!source) return "closed";
      return source.readyState === EventSource.OPEN ? "open" : "connecting";
    },
  };
}
