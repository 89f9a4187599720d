// statekit.browser over a fake localStorage: values round-trip, limits refuse, nothing half-written.
import assert from "node:assert/strict";
import { test } from "node:test";

import { StatekitError } from "../src/core.mjs";
import { createBrowser, encode, signedValue } from "../src/storage.mjs";

class FakeStorage {
  constructor() {
    this.items = new Map();
    this.quota = Infinity;
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    if (value.length > this.quota) throw Object.assign(new Error("full"), { name: "QuotaExceededError" });
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

const STATES = {
  plain: { signed: false, encrypted: false, maxAge: null, maxBytes: 64, default: { n: [1] } },
  aged: { signed: false, encrypted: false, maxAge: 10, maxBytes: 64, default: "old" },
  signed: { signed: true, encrypted: false, maxAge: null, maxBytes: 64, default: "anon" },
  secret: { signed: false, encrypted: true, maxAge: null, maxBytes: 64 },
};

function setup({ area, clock } = {}) {
  const store = area === undefined ? new FakeStorage() : area;
  const time = clock || { now: 1000 };
  const browser = createBrowser({ prefix: "p:", states: STATES, area: () => store, now: () => time.now });
  return { store, time, browser, api: browser.api };
}

test("falsy and nested values round-trip through localStorage", () => {
  const { api, store } = setup();
  for (const value of [0, "", false, null, [], {}, -0.5, "é\u2028", [null, { a: false }]]) {
    api.set("plain", value);
    assert.deepEqual(api.get("plain"), value);
  }
  assert.equal(store.getItem("p:plain"), '{"v":[null,{"a":false}],"t":1000}');
});

test("a missing value reads as a fresh copy of the default", () => {
  const { api } = setup();
  const first = api.get("plain");
  first.n.push(2);
  assert.deepEqual(api.get("plain"), { n: [1] });
  api.set("plain", 1);
  api.remove("plain");
  assert.deepEqual(api.get("plain"), { n: [1] });
});

test("a malformed entry reads as the default", () => {
  const { api, store } = setup();
  for (const text of ["{", "[]", '{"v":1}', '{"t":1}', "null", '{"s":1,"t":1}']) {
    store.setItem("p:plain", text);
    assert.deepEqual(api.get("plain"), { n: [1] }, text);
  }
});

test("an entry older than maxAge is removed and notified as expired", async () => {
  const { api, store, time } = setup();
  const seen = [];
  api.subscribe("aged", (value, { source }) => seen.push([value, source]));
  api.set("aged", "new");
  time.now += 10000;
  assert.equal(api.get("aged"), "new");
  time.now += 1;
  assert.equal(api.get("aged"), "old");
  assert.equal(store.getItem("p:aged"), null);
  await null;
  assert.deepEqual(seen, [["new", "local"], ["old", "expired"]]);
});

test("signed values are read from their token and never written by the page", () => {
  const { api, store } = setup();
  assert.deepEqual(signedValue('{"a":"x:y"}:1abc:sig'), { a: "x:y" });
  store.setItem("p:signed", JSON.stringify({ s: '"alice":1abc:sig', t: 1 }));
  assert.equal(api.get("signed"), "alice");
  assert.throws(() => api.set("signed", "eve"), StatekitError);
  store.setItem("p:signed", JSON.stringify({ s: "garbage", t: 1 }));
  assert.equal(api.get("signed"), "anon");
  assert.throws(() => api.get("secret"), /encrypted: only the server can read it/);
  assert.throws(() => api.set("secret", 1), /encrypted: only the server can write it/);
});

test("what JSON cannot hold, or over maxBytes, is refused and nothing is written", () => {
  const { api, store } = setup();
  api.set("plain", "kept");
  for (const value of [NaN, Infinity, undefined, [1, undefined], { f() {} }, Symbol("s")]) {
    assert.throws(() => api.set("plain", value), StatekitError);
  }
  assert.throws(() => encode("x", { a: [NaN] }), /"x" cannot store this value: NaN is not a JSON number/);
  assert.throws(() => api.set("plain", "é".repeat(32)), /66 bytes encoded, over its limit of 64/);
  assert.equal(api.get("plain"), "kept");
  assert.equal(store.items.size, 1);
  assert.throws(() => api.set("nope", 1), /no BrowserState named "nope"/);
});

test("a full or unavailable localStorage: a StatekitError to set, the default to get", () => {
  const { api, store } = setup();
  store.quota = 5;
  assert.throws(() => api.set("plain", 1), /localStorage is full: "plain" was not saved/);
  const blocked = createBrowser({
    prefix: "p:",
    states: STATES,
    area: () => {
      throw new Error("SecurityError");
    },
  }).api;
  assert.deepEqual(blocked.get("plain"), { n: [1] });
  assert.throws(() => blocked.set("plain", 1), /localStorage is unavailable/);
  const missing = setup({ area: null }).api;
  assert.throws(() => missing.remove("plain"), /localStorage is unavailable/);
});

test("server writes are applied and other tabs' changes notified", () => {
  const { browser, api, store } = setup();
  const seen = [];
  api.subscribe("plain", (value, { source }) => seen.push([value, source]));
  api.subscribe("secret", (value, { source }) => seen.push([value, source]));
  browser.applyText('{"plain":{"v":7,"t":1},"secret":{"e":"token","t":1}}', "test");
  assert.equal(store.getItem("p:secret"), '{"e":"token","t":1}');
  browser.apply({ plain: null });
  store.setItem("p:plain", '{"v":8,"t":1}');
  browser.changedElsewhere("p:plain");
  browser.changedElsewhere("other:plain");
  assert.deepEqual(seen, [
    [7, "server"],
    [undefined, "server"],
    [{ n: [1] }, "server"],
    [8, "tab"],
  ]);
  assert.deepEqual(
    browser.held().map(([name]) => name),
    ["plain", "secret"],
  );
});
