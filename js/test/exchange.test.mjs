// The header budget, the bundles over it and their references, the server's answers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ascii, createExchange, pack } from "../src/exchange.mjs";

const B = {
  header: "X-In",
  refHeader: "X-Ref",
  missingHeader: "X-Missing",
  setHeader: "X-Set",
  setRefHeader: "X-Set-Ref",
  writesUrl: "/writes/",
  field: "in_field",
  budget: 100,
  refTtl: 10,
};
const entry = (size) => ({ v: "x".repeat(size), t: 1 });

test("ascii escapes every non-ASCII character as JSON does", () => {
  const text = ascii(JSON.stringify({ "é": "\u2028😀\u007f" }));
  assert.match(text, /^[\x20-\x7e]*$/);
  assert.deepEqual(JSON.parse(text), { "é": "\u2028😀\u007f" });
});

test("pack puts the smallest entries inline within the budget, the rest in one bundle", () => {
  const entries = [["big", entry(200)], ["b", entry(30)], ["a", entry(30)], ["c", entry(1)], ["ü", entry(5)]];
  const { inline, bundle } = pack(entries, 100);
  assert.ok(inline.length <= 100, inline);
  assert.deepEqual(Object.keys(JSON.parse(inline)), ["c", "ü", "b"]);
  assert.equal(bundle, JSON.stringify({ a: entry(30), big: entry(200) }));
  assert.deepEqual(pack([], 100), { inline: "{}", bundle: null });
  assert.deepEqual(pack([["a", entry(1)]], 2), { inline: "{}", bundle: JSON.stringify({ a: entry(1) }) });
  for (let budget = 2; budget < 400; budget += 7) {
    const packed = pack(entries, budget);
    assert.ok(packed.inline.length <= budget);
    const all = { ...JSON.parse(packed.inline), ...JSON.parse(packed.bundle || "{}") };
    assert.deepEqual(all, Object.fromEntries(entries));
  }
});

function setup(entries, { answer = "r1" } = {}) {
  const clock = { now: 0 };
  const uploads = [];
  const fetched = [];
  const applied = [];
  const ex = createExchange({
    B,
    held: () => entries,
    upload: (bundle, sync, done) => {
      uploads.push({ bundle, sync });
      if (sync) done(answer);
      else queueMicrotask(() => done(answer));
    },
    fetchWrites: (ref, sync) => {
      fetched.push([ref, sync]);
      return sync ? null : Promise.resolve();
    },
    applyText: (text, where) => applied.push([text, where]),
    now: () => clock.now,
  });
  return { ex, clock, uploads, fetched, applied };
}

test("within the budget: the header and the other modules' headers, no upload", () => {
  const { ex, uploads } = setup([["a", entry(1)]]);
  ex.sentHeaders.push(["X-Page", () => "p1"]);
  assert.deepEqual(ex.prepare(false), [
    ["X-In", '{"a":{"v":"x","t":1}}'],
    ["X-Page", "p1"],
  ]);
  assert.equal(uploads.length, 0);
  assert.deepEqual(ex.sentFields.map(([name, value]) => [name, value()]), [["in_field", '{"a":{"v":"x","t":1}}']]);
});

test("over the budget: uploaded once, concurrent requests wait for the same upload", async () => {
  const { ex, uploads } = setup([["a", entry(1)], ["big", entry(300)]]);
  const [first, second] = [ex.prepare(false), ex.prepare(false)];
  assert.ok(first instanceof Promise && second instanceof Promise);
  const expected = [["X-In", '{"a":{"v":"x","t":1}}'], ["X-Ref", "r1"]];
  assert.deepEqual(await first, expected);
  assert.deepEqual(await second, expected);
  assert.deepEqual(ex.prepare(false), expected); // known now: no wait
  assert.equal(uploads.length, 1);
});

test("a reference is uploaded again after half its time, or when the server lost it", async () => {
  const { ex, uploads, clock } = setup([["big", entry(300)]]);
  await ex.prepare(false);
  clock.now = 4999;
  assert.ok(Array.isArray(ex.prepare(false)));
  clock.now = 5000;
  assert.ok(ex.prepare(false) instanceof Promise);
  await null;
  assert.equal(uploads.length, 2);
  assert.ok(Array.isArray(ex.prepare(false)));
  ex.answered((name) => (name === "X-Missing" ? "1" : null), false);
  assert.ok(ex.prepare(false) instanceof Promise);
});

test("a synchronous request uploads synchronously; a failed upload sends no reference", () => {
  const good = setup([["big", entry(300)]]);
  assert.deepEqual(good.ex.prepare(true), [["X-In", "{}"], ["X-Ref", "r1"]]);
  assert.deepEqual(good.uploads, [{ bundle: JSON.stringify({ big: entry(300) }), sync: true }]);
  const failed = setup([["big", entry(300)]], { answer: null });
  assert.deepEqual(failed.ex.prepare(true), [["X-In", "{}"]]);
  assert.deepEqual(failed.ex.prepare(true), [["X-In", "{}"]]);
  assert.equal(failed.uploads.length, 2); // not remembered: tried again
});

test("answers: writes in the header are applied, writes by reference fetched", async () => {
  const { ex, fetched, applied } = setup([]);
  const headers = { "X-Set": '{"a":null}', "X-Set-Ref": "w1" };
  const fetching = ex.answered((name) => headers[name] ?? null, false);
  assert.ok(fetching instanceof Promise);
  assert.equal(ex.answered((name) => headers[name] ?? null, true), null);
  assert.equal(ex.answered(() => null, false), null);
  assert.deepEqual(applied, [['{"a":null}', "the X-Set header"], ['{"a":null}', "the X-Set header"]]);
  assert.deepEqual(fetched, [["w1", false], ["w1", true]]);
});
