// The shipped statekit.js is a fresh build of js/src, and it starts from the page's configuration.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

import { SHIPPED, build } from "../build.mjs";

test("statekit/static/statekit/statekit.js is a build of js/src (run `node js/build.mjs`)", () => {
  assert.equal(readFileSync(SHIPPED, "utf8"), build());
});

function page(config) {
  const items = new Map();
  const listeners = [];
  const window = {
    Element: class {},
    localStorage: {
      getItem: (key) => items.get(key) ?? null,
      setItem: (key, value) => items.set(key, value),
      removeItem: (key) => items.delete(key),
    },
    location: { href: "https://site.test/shop/", origin: "https://site.test" },
    addEventListener: (type) => listeners.push(type),
    setTimeout,
    clearTimeout,
    document: {
      readyState: "complete",
      getElementById: (id) => (id === "statekit-config" ? { textContent: JSON.stringify(config) } : null),
      addEventListener: () => {},
      querySelectorAll: () => [],
    },
  };
  window.window = window;
  vm.runInNewContext(build(), window);
  return { window, items, listeners };
}

test("the script reads everything from the configuration", () => {
  const config = {
    browser: {
      prefix: "elsewhere/",
      states: { name: { signed: false, encrypted: false, maxAge: null, maxBytes: 10, default: "" } },
      writes: { name: { v: "from server", t: 5 } },
      header: "X-H",
      field: "f",
    },
    live: { path: "/ws/", scopes: ["global"] },
    page: { id: "p1", header: "X-P", field: "pf", closeUrl: null },
  };
  const { window, items, listeners } = page(config);
  const { statekit } = window;
  assert.equal(items.get("elsewhere/name"), '{"v":"from server","t":5}');
  assert.equal(statekit.browser.get("name"), "from server");
  assert.equal(statekit.page.id, "p1");
  assert.equal(statekit.live.status, "closed");
  assert.throws(() => statekit.watch("v", () => {}, { scope: "session" }), /scope must be one of global/);
  assert.ok(listeners.includes("storage") && listeners.includes("pagehide"));
});

test("without a configuration, statekit says so rather than guessing", () => {
  const { window } = page(null);
  assert.equal(window.statekit.page.id, null);
  assert.throws(() => window.statekit.browser.get("name"), /no BrowserState named "name"/);
  assert.throws(() => window.statekit.watch("v", () => {}), /needs the configuration of \{% statekit_js %\}/);
});
