// main: builds the global `statekit` of a page from its configuration, which
// {% statekit_js %} renders as <script type="application/json" id="statekit-config"> before
// statekit.js (statekit/templatetags/statekit.py). Every name, limit and URL the server
// defines comes from there: the modules hold no copy of them.

import { StatekitError, readJSON, whenReady } from "./core.mjs";
import { createExchange } from "./exchange.mjs";
import { createEvents } from "./events.mjs";
import { createLive, socketURL } from "./live.mjs";
import { installPage } from "./page.mjs";
import { installRender } from "./render.mjs";
import { createBrowser } from "./storage.mjs";
import { createTransport } from "./transport.mjs";

/** statekit in the window `win`, once: loaded twice, the first one stays. */
export function start(win) {
  if (win.statekit && win.statekit.browser) return;
  const doc = win.document;
  const config = readJSON(doc, "statekit-config", "the configuration") || {};
  const statekit = (win.statekit = Object.assign(win.statekit || {}, { config, StatekitError }));

  const B = Object.assign({ states: {}, writes: {} }, config.browser);
  const browser = createBrowser({ prefix: B.prefix, states: B.states, area: () => win.localStorage });
  win.addEventListener("storage", (event) => {
    let area;
    try {
      area = win.localStorage;
    } catch {
      return;
    }
    if (event.storageArea === area) browser.changedElsewhere(event.key);
  });
  statekit.browser = browser.api;

  let ex = null; // Without the configuration, requests are left as they are.
  if (config.browser) {
    const transport = createTransport(win, B, browser.applyText);
    ex = createExchange({ B, held: browser.held, applyText: browser.applyText, ...transport });
    transport.install(ex);
  }

  const P = config.page || null;
  if (P) installPage(win, P, ex);
  statekit.page = { id: P ? P.id : null };

  statekit.browser.render = installRender(win, B.states, browser);

  const L = config.live;
  const timers = { setTimeout: win.setTimeout.bind(win), clearTimeout: win.clearTimeout.bind(win) };
  let live = null;
  if (L && L.path) {
    live = createLive({
      url: () => socketURL(L.path, win.location.href),
      scopes: L.scopes,
      pageId: () => statekit.page.id,
      WebSocket: win.WebSocket,
      ...timers,
    });
  } else if (L && L.events && win.EventSource) {
    live = createEvents({
      url: L.events,
      href: () => win.location.href,
      scopes: L.scopes,
      pageId: () => statekit.page.id,
      pageField: L.pageField,
      EventSource: win.EventSource,
      fetch: win.fetch.bind(win),
      ...timers,
    });
  }
  const watch = (...args) => {
    if (!live) throw new StatekitError("statekit.watch needs the configuration of {% statekit_js %}");
    return live.watch(...args);
  };
  if (live) {
    // Back online, or back from the back/forward cache: reconnect now, not after the backoff.
    win.addEventListener("online", () => live.reconnect());
    win.addEventListener("pagehide", (event) => event.persisted && live.disconnect());
    win.addEventListener("pageshow", (event) => event.persisted && live.connect());
  }
  statekit.watch = watch;
  statekit.live = {
    watch,
    /** "open", "connecting" or "closed": the state of the live connection. */
    get status() {
      return live ? live.status : "closed";
    },
  };

  browser.apply(B.writes); // Queued before the page rendered: in the configuration.
  whenReady(doc, () => {
    browser.apply(readJSON(doc, B.writesId, "the late writes")); // Queued after: by the middleware.
    statekit.browser.render();
  });
}
