// statekit.watch over a fake EventSource: one stream for all watches, values then changes,
// resync after the browser reconnects, a refused watch failing alone, the websocket's backoff.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createEvents, eventsURL } from "../src/events.mjs";

class FakeSource extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static made = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    FakeSource.made.push(this);
  }
  close() {
    this.readyState = 2;
  }
  open() {
    this.readyState = 1;
  }
  send(name, value) {
    const event = new Event(name);
    event.data = JSON.stringify(value);
    this.dispatchEvent(event);
  }
  fail(state) {
    this.readyState = state;
    this.dispatchEvent(new Event("error"));
  }
}

function setup(answer = null) {
  FakeSource.made = [];
  const timers = [];
  const fetched = [];
  const live = createEvents({
    url: "/statekit/events/",
    href: () => "http://test/page/",
    scopes: ["global", "session", "page"],
    pageId: () => "page-1",
    pageField: "statekit_page",
    EventSource: FakeSource,
    fetch: async (url) => {
      fetched.push(url);
      return { status: answer ? 403 : 500, json: async () => answer };
    },
    setTimeout: (fn, delay) => timers.push({ fn, delay }) && timers.length,
    clearTimeout: () => {},
    random: () => 0.5,
  });
  return { live, timers, fetched, source: () => FakeSource.made.at(-1) };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const reported = [];
globalThis.reportError = (error) => reported.push(error);

test("the stream's URL names every watch, and the page id when one is not global", () => {
  const base = "/statekit/events/";
  assert.equal(
    eventsURL(base, "http://h/x", [{ scope: "global", name: "v" }], "p", "id-1"),
    "http://h/statekit/events/?watch=global%3Av",
  );
  const both = [{ scope: "global", name: "v" }, { scope: "page", name: "chat" }];
  assert.equal(
    eventsURL(base, "http://h/x", both, "p", "id-1"),
    "http://h/statekit/events/?watch=global%3Av&watch=page%3Achat&p=id-1",
  );
});

test("the watches of one task share one stream; a value, then changes, repeats dropped", async () => {
  const { live, source } = setup();
  const seen = [];
  live.watch("visitors", (value, info) => seen.push([info.name, value, info.source]));
  live.watch("cart", (value, info) => seen.push([info.name, value, info.source]), { scope: "session" });
  await tick();
  assert.equal(FakeSource.made.length, 1);
  assert.match(source().url, /watch=global%3Avisitors&watch=session%3Acart&statekit_page=page-1$/);
  source().open();
  assert.equal(live.status, "open");
  source().send("global:visitors", 41);
  source().send("session:cart", ["tea"]);
  source().send("global:visitors", 42);
  source().send("global:visitors", 42);
  assert.deepEqual(seen, [
    ["visitors", 41, "value"],
    ["cart", ["tea"], "value"],
    ["visitors", 42, "change"],
  ]);
});

test("after the browser reconnects, the values resync (unchanged ones are not repeated)", async () => {
  const { live, source } = setup();
  const seen = [];
  live.watch("visitors", (value, info) => seen.push([value, info.source]));
  await tick();
  source().open();
  source().send("global:visitors", 1);
  source().fail(FakeSource.CONNECTING); // the browser reconnects by itself
  source().open();
  source().send("global:visitors", 1);
  source().send("global:visitors", 3);
  assert.deepEqual(seen, [[1, "value"], [3, "change"]]);
  assert.equal(FakeSource.made.length, 1);
});

test("a refused watch fails alone; the others are streamed again", async () => {
  const answer = { code: "refused", message: "not public", watch: "global:secret" };
  const { live, source, fetched } = setup(answer);
  const errors = [];
  const seen = [];
  live.watch("visitors", (value) => seen.push(value));
  live.watch("secret", () => seen.push("secret"), { onError: (error) => errors.push(error.code) });
  await tick();
  const first = source();
  first.fail(FakeSource.CLOSED); // the server answered 403: the browser gives up
  await tick();
  await tick();
  assert.deepEqual(errors, ["refused"]);
  assert.deepEqual(fetched, [first.url]);
  assert.equal(FakeSource.made.length, 2);
  assert.doesNotMatch(source().url, /secret/);
  source().open();
  source().send("global:visitors", 5);
  assert.deepEqual(seen, [5]);
});

test("a watch the server ends (statekit:error) fails alone; the others go on", async () => {
  const { live, source } = setup();
  const errors = [];
  const seen = [];
  live.watch("visitors", (value) => seen.push(value));
  live.watch("typed", () => seen.push("typed"), { onError: (error) => errors.push(error.code) });
  await tick();
  const first = source();
  first.open();
  first.send("global:visitors", 4);
  first.send("statekit:error", { watch: "global:typed", code: "unavailable", message: "no" });
  await tick();
  assert.deepEqual(errors, ["unavailable"]);
  assert.equal(FakeSource.made.length, 2);
  assert.doesNotMatch(source().url, /typed/);
  source().open();
  source().send("global:visitors", 4); // the resync repeats nothing
  source().send("global:visitors", 5);
  assert.deepEqual(seen, [4, 5]);
});

test("a stream that fails otherwise reconnects with the backoff", async () => {
  const { live, source, timers } = setup(null);
  live.watch("visitors", () => {});
  await tick();
  source().fail(FakeSource.CLOSED);
  await tick();
  await tick();
  assert.equal(timers.length, 1);
  assert.equal(timers[0].delay, 500);
  timers[0].fn();
  assert.equal(FakeSource.made.length, 2);
});

test("the last unwatch closes the stream; page state of another page is refused", async () => {
  const { live, source } = setup();
  const stop = live.watch("visitors", () => {});
  await tick();
  const first = source();
  stop();
  await tick();
  assert.equal(first.readyState, FakeSource.CLOSED);
  assert.equal(live.status, "closed");
  assert.throws(() => live.watch("chat", () => {}, { scope: "page", page: "other" }), TypeError);
});
