// statekit.watch over a fake websocket: frames, acknowledgements, sharing, errors, backoff.
import assert from "node:assert/strict";
import { test } from "node:test";

import { backoff, createLive, parseFrame, socketURL } from "../src/live.mjs";

class FakeSocket extends EventTarget {
  static OPEN = 1;
  static made = [];
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.made.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code) {
    this.closedWith = code;
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.dispatchEvent(new Event("open"));
  }
  frame(frame) {
    const event = new Event("message");
    event.data = typeof frame === "string" ? frame : JSON.stringify(frame);
    this.dispatchEvent(event);
  }
  drop() {
    this.readyState = 3;
    this.dispatchEvent(new Event("close"));
  }
}

function setup() {
  FakeSocket.made = [];
  const timers = [];
  const live = createLive({
    url: () => "ws://test/ws/",
    scopes: ["global", "session", "page"],
    pageId: () => "page-1",
    WebSocket: FakeSocket,
    setTimeout: (fn, delay) => timers.push({ fn, delay }) && timers.length,
    clearTimeout: () => {},
    random: () => 0.5,
  });
  return { live, timers, socket: () => FakeSocket.made.at(-1) };
}

const reported = [];
globalThis.reportError = (error) => reported.push(error);

test("backoff: 0.5 s doubling up to 30 s, within ±25 %", () => {
  assert.equal(backoff(0, () => 0.5), 500);
  assert.equal(backoff(0, () => 0), 375);
  assert.equal(backoff(3, () => 1), 5000);
  assert.equal(backoff(6, () => 0.5), 30000);
  assert.equal(backoff(1000, () => 1), 37500);
});

test("socket URLs follow the page's scheme", () => {
  assert.equal(socketURL("/ws/statekit/", "http://h:8000/a/b?c"), "ws://h:8000/ws/statekit/");
  assert.equal(socketURL("/p/ws/", "https://h/x"), "wss://h/p/ws/");
});

test("a frame that is not JSON is reported, not thrown", () => {
  reported.length = 0;
  assert.equal(parseFrame("{"), null);
  assert.match(reported[0].message, /a live update is not JSON/);
  assert.deepEqual(parseFrame('{"type":"value"}'), { type: "value" });
});

test("one server watch per variable; every frame acknowledged; repeats not delivered", async () => {
  const { live, socket } = setup();
  const seen = [];
  live.watch("visitors", (value, info) => seen.push(["a", value, info.source]));
  assert.equal(live.status, "connecting");
  socket().open();
  assert.equal(live.status, "open");
  live.watch("visitors", (value, info) => seen.push(["b", value, info.source]));
  live.watch("cart", () => {}, { scope: "session" });
  live.watch("chat", () => {}, { scope: "page" });
  assert.deepEqual(socket().sent, [
    { type: "watch", id: 1, name: "visitors", scope: "global" },
    { type: "watch", id: 2, name: "cart", scope: "session" },
    { type: "watch", id: 3, name: "chat", scope: "page", page: "page-1" },
  ]);
  socket().sent.length = 0;
  socket().frame({ type: "value", id: 1, value: { n: 1 }, ack: "k1" });
  socket().frame({ type: "change", id: 1, value: { n: 1 }, ack: "k2" });
  socket().frame({ type: "change", id: 1, value: { n: 2 }, ack: "k3" });
  socket().frame({ type: "unwatched", id: 9 });
  assert.deepEqual(socket().sent, [
    { type: "ack", ack: "k1" },
    { type: "ack", ack: "k2" },
    { type: "ack", ack: "k3" },
  ]);
  live.watch("visitors", (value, info) => seen.push(["c", value, info.source]));
  await null;
  assert.deepEqual(seen, [
    ["a", { n: 1 }, "value"],
    ["b", { n: 1 }, "value"],
    ["a", { n: 2 }, "change"],
    ["b", { n: 2 }, "change"],
    ["c", { n: 2 }, "value"],
  ]);
});

test("unwatch: the last listener of a variable sends unwatch; the last watch closes", () => {
  const { live, socket } = setup();
  const stopA = live.watch("a", () => {});
  const stopB = live.watch("b", () => {});
  const stopB2 = live.watch("b", () => {});
  socket().open();
  socket().sent.length = 0;
  stopB();
  assert.deepEqual(socket().sent, []);
  stopB2();
  stopB2();
  assert.deepEqual(socket().sent, [{ type: "unwatch", id: 2 }]);
  stopA();
  assert.equal(socket().closedWith, 1000);
  assert.equal(live.status, "closed");
});

test("refused watches are forgotten; unavailable ones asked again 5 s later", () => {
  const { live, socket, timers } = setup();
  const errors = [];
  live.watch("secret", () => {}, { onError: (error) => errors.push(error) });
  live.watch("down", () => {}, { onError: (error) => errors.push(error) });
  socket().open();
  socket().sent.length = 0;
  socket().frame({ type: "error", id: 1, code: "refused", message: "no" });
  socket().frame({ type: "error", id: 2, code: "unavailable", message: "later" });
  assert.deepEqual(errors.map((error) => [error.code, error.message]), [
    ["refused", 'statekit: cannot watch global state "secret": no'],
    ["unavailable", 'statekit: cannot watch global state "down": later'],
  ]);
  assert.equal(timers.at(-1).delay, 5000);
  timers.at(-1).fn();
  assert.deepEqual(socket().sent, [{ type: "watch", id: 2, name: "down", scope: "global" }]);
});

test("a dropped socket reconnects with backoff, which restarts once a watch is answered", () => {
  const { live, socket, timers } = setup();
  live.watch("v", () => {});
  const delays = [];
  for (let i = 0; i < 3; i += 1) {
    socket().open();
    socket().drop();
    delays.push(timers.at(-1).delay);
    timers.at(-1).fn();
  }
  assert.deepEqual(delays, [500, 1000, 2000]);
  assert.equal(FakeSocket.made.length, 4);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "watch", id: 1, name: "v", scope: "global" }]);
  socket().frame({ type: "value", id: 1, value: 1 });
  socket().drop();
  assert.equal(timers.at(-1).delay, 500);
  live.reconnect();
  assert.equal(FakeSocket.made.length, 5);
});

test("bad arguments throw at once", () => {
  const { live } = setup();
  assert.throws(() => live.watch("", () => {}), /the name must be a non-empty string/);
  assert.throws(() => live.watch("a", null), /the callback must be a function/);
  assert.throws(() => live.watch("a", () => {}, { scope: "browser" }), /one of global, session, page/);
  assert.throws(() => live.watch("a", () => {}, { scope: "page", page: "" }), /needs a page id/);
  assert.equal(FakeSocket.made.length, 0);
});
