"""How long a change takes to reach N websocket clients: statekit vs a raw Channels group_send,
and N Server-Sent Events streams (statekit's event stream, no Channels) beside them.

For N = 100 and 1000 clients, on the in-memory channel layer and (when Redis answers) on
channels-redis, side by side in one run:

- raw:      ``channel_layer.group_send(group, {...frame...})`` to N minimal consumers that
            forward the frame to their socket: Channels' own fan-out, nothing else.
- statekit: ``await GlobalState.aset(value)`` with N ``StateConsumer`` clients watching the
            variable: the write, its one publish to the backend's change stream, the one
            subscription of this process fanning it out, and each consumer building its frame.
- SSE:      the same ``aset`` with N event streams (``statekit.live.sse``, through Django's
            ASGI handler) watching it.

Both statekit columns use the same backend per row: on the in-memory layer's row, the "db"
backend on SQLite (the change stream of one process); on the channels-redis row, the "cache"
backend (Redis pub/sub carries the change, as between processes). The raw column is Channels'
group_send on that row's layer; statekit's websockets need no channel layer.

The time is from the call until the LAST of the N clients has received its frame (clients are
Channels' WebsocketCommunicator, in this process, as in Channels' own tests). Rounds alternate
raw and statekit; the median is reported, with the write alone (no watcher, no publish) as a
reference for what the database costs. A ratio over the target is reported, never a failure.

    python benchmarks/bench_live.py [--rounds R] [--clients 100,1000] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # statekit from this checkout

REDIS_URL = "redis://127.0.0.1:6379/12"
RUN = uuid.uuid4().hex[:10]
PREFIX = f"statekit-bench-live-{RUN}"  # every Redis key of this run starts with it
TARGET = 1.5  # statekit / raw time to reach every client, write included
RAW_GROUP = "bench.raw"
TIMEOUT = 30.0
SETTLE = 0.1  # seconds between measurements


@dataclass
class Result:
    layer: str
    clients: int
    raw: list[float] = field(default_factory=list)  # seconds, one per round
    kit: list[float] = field(default_factory=list)
    write: list[float] = field(default_factory=list)
    sse: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.kit) / statistics.median(self.raw)

    @property
    def sse_ratio(self) -> float:
        return statistics.median(self.sse) / statistics.median(self.raw)


def configure_django(db_file: Path) -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        DEBUG=False,
        SECRET_KEY="statekit-bench",
        USE_TZ=True,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.auth",
            "statekit",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_file}},
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL},
        },
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        STATEKIT={"BACKEND": "db"},
        ROOT_URLCONF="statekit.urls",  # the event stream at /events/
    )
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def layers(use_redis: bool) -> list[tuple[str, dict[str, Any]]]:
    found = [("in-memory", {"BACKEND": "channels.layers.InMemoryChannelLayer"})]
    if use_redis:
        # A long socket timeout: redis-py's 5 s would end the raw consumers' blocking receive
        # while the event streams of a round are opened (statekit's consumers receive again).
        hosts = [{"address": REDIS_URL, "socket_timeout": 120}]
        config = {"hosts": hosts, "prefix": PREFIX, "capacity": 1000}
        found.append(("channels-redis", {"BACKEND": "channels_redis.core.RedisChannelLayer"}))
        found[-1][1]["CONFIG"] = config
    return found


def redis_answers() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


def cleanup_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
        client.unlink(key)


# -- the two sides ---------------------------------------------------------------------------


def raw_consumer() -> Any:
    from channels.generic.websocket import AsyncWebsocketConsumer

    class RawConsumer(AsyncWebsocketConsumer):
        """What a hand-written Channels app does: join a group, forward its messages."""

        async def connect(self) -> None:
            await self.channel_layer.group_add(RAW_GROUP, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(RAW_GROUP, self.channel_name)

        async def bench_frame(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    return RawConsumer.as_asgi()


async def open_clients(app: Any, n: int, watch: str | None) -> list[Any]:
    from channels.testing import WebsocketCommunicator

    clients = [WebsocketCommunicator(app, "/ws/statekit/") for _ in range(n)]
    for client in clients:
        accepted, _ = await client.connect(timeout=TIMEOUT)
        assert accepted
        if watch is not None:
            await client.send_json_to({"type": "watch", "id": 1, "name": watch})
            answer = await client.receive_json_from(timeout=TIMEOUT)
            assert answer["type"] == "value", answer
    return clients


class Stream:
    """One event stream, driven through Django's ASGI handler as an ASGI server would."""

    def __init__(self, app: Any, watch: str) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.requests.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/events/",
            "raw_path": b"/events/",
            "root_path": "",
            "query_string": f"watch=global:{watch}".encode(),
            "headers": [(b"host", b"bench")],
            "server": ("bench", 80),
            "client": ("127.0.0.1", 1),
        }
        self.task = asyncio.ensure_future(app(scope, self.requests.get, self.received.put))

    async def until(self, text: bytes) -> None:
        """Until a body chunk holding ``text`` arrives."""
        while True:
            message = await asyncio.wait_for(self.received.get(), TIMEOUT)
            if text in message.get("body", b""):
                return

    async def close(self) -> None:
        await self.requests.put({"type": "http.disconnect"})
        try:
            await asyncio.wait_for(self.task, TIMEOUT)
        except Exception:
            self.task.cancel()


async def open_streams(n: int, watch: str, first: bytes) -> list[Stream]:
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()
    streams = [Stream(app, watch) for _ in range(n)]
    await asyncio.gather(*(s.until(first) for s in streams))
    return streams


async def until_all_received(clients: list[Any]) -> None:
    frames = await asyncio.gather(*(c.receive_output(TIMEOUT) for c in clients))
    assert all(f["type"] == "websocket.send" for f in frames)


async def settle() -> None:
    """Let the consumers of the previous round finish their bookkeeping (re-arming their
    receives) and collect garbage, so it is not counted in the next measurement."""
    await asyncio.sleep(SETTLE)
    gc.collect()


async def measure(layer_name: str, n: int, rounds: int) -> Result:
    from channels.layers import get_channel_layer
    from channels.routing import URLRouter

    from statekit import GlobalState
    from statekit.codec import browser_json
    from statekit.routing import urlpatterns

    live = GlobalState("bench.live", default=0, public=True)
    quiet = GlobalState("bench.quiet", default=0)  # not public: written, never published
    layer = get_channel_layer()
    raw = await open_clients(raw_consumer(), n, None)
    result = Result(layer_name, n)

    async def raw_round(i: int) -> float:
        # The frame statekit's clients receive for the same value, built before the clock.
        value = browser_json({"round": i, "run": RUN, "title": "statekit"})
        frame = f'{{"type":"change","id":1,"scope":"global","name":"{live.name}","value":{value}}}'
        start = time.perf_counter()
        await layer.group_send(RAW_GROUP, {"type": "bench.frame", "text": frame})
        await until_all_received(raw)
        return time.perf_counter() - start

    async def kit_round(i: int) -> float:
        start = time.perf_counter()
        await live.aset({"round": i, "run": RUN, "title": "statekit"})
        await until_all_received(kit)
        return time.perf_counter() - start

    async def sse_round(i: int) -> float:
        value = {"round": i, "run": RUN, "title": "sse"}
        start = time.perf_counter()
        await live.aset(value)
        wanted = f'"round":{i},'.encode()
        await asyncio.gather(*(s.until(wanted) for s in streams))
        return time.perf_counter() - start

    async def write_round(i: int) -> float:
        start = time.perf_counter()
        await quiet.aset({"round": i, "run": RUN, "title": "statekit"})
        return time.perf_counter() - start

    streams: list[Stream] = []
    kit: list[Any] = []
    try:
        await raw_round(-1)  # warm-up: connections, code paths
        await live.aset(-1)
        kit = await open_clients(URLRouter(urlpatterns()), n, live.name)
        streams = await open_streams(n, live.name, b"data: -1")
        await kit_round(-1)
        await sse_round(-1)
        for i in range(rounds):
            trio = [(raw_round, result.raw), (kit_round, result.kit), (sse_round, result.sse)]
            for fn, times in trio if i % 2 == 0 else trio[::-1]:
                await settle()
                times.append(await fn(i))
            result.write.append(await write_round(i))
    finally:
        await asyncio.gather(*(s.close() for s in streams))
        # Stop the clients' consumers at once (a graceful close of each channels-redis
        # consumer can wait up to a second on its blocking receive); run_all then drops the
        # layer with its groups.
        for client in raw + kit:
            client.stop(exceptions=False)
        await asyncio.gather(*(client.future for client in raw + kit), return_exceptions=True)
    return result


async def run_all(clients: list[int], rounds: int, use_redis: bool) -> list[Result]:
    from django.test import override_settings

    results = []
    for name, conf in layers(use_redis):
        backend = (  # statekit's, for both its columns (and their hub)
            {"BACKEND": "cache", "CACHE_ALIAS": "redis", "KEY_PREFIX": PREFIX}
            if name == "channels-redis"
            else {"BACKEND": "db"}
        )
        for n in clients:
            # a new layer, and statekit's backend
            with override_settings(CHANNEL_LAYERS={"default": conf}, STATEKIT=backend):
                results.append(await measure(name, n, rounds))
            if name == "channels-redis":
                cleanup_redis()
    return results


# -- report ----------------------------------------------------------------------------------


def print_table(results: list[Result], rounds: int, redis_note: str) -> None:
    import channels
    import django

    print(
        f"statekit live benchmark: time for one change to reach every websocket client, "
        f"median of {rounds} interleaved rounds"
    )
    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, Channels "
        f"{channels.__version__}; statekit's backends: in the module docstring; {redis_note}"
    )
    header = (
        f"{'layer':<15} {'clients':>7} {'raw group_send':>15} {'statekit aset':>14} "
        f"{'ratio':>7} {'per round':>12} {'write alone':>12} {'target':>7}  result "
        f"{'SSE aset':>11} {'SSE ratio':>9}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        spread = [k / w for k, w in zip(r.kit, r.raw, strict=True)]
        verdict = "PASS" if r.ratio <= TARGET else "over"
        print(
            f"{r.layer:<15} {r.clients:>7} {statistics.median(r.raw) * 1e3:>12.2f} ms "
            f"{statistics.median(r.kit) * 1e3:>11.2f} ms {r.ratio:>6.2f}x "
            f"{min(spread):>5.2f}-{max(spread):.2f}x {statistics.median(r.write) * 1e3:>9.2f} ms "
            f"<={TARGET:.1f}x  {verdict:<6} {statistics.median(r.sse) * 1e3:>8.2f} ms "
            f"{r.sse_ratio:>8.2f}x"
        )
    print()
    print(
        "ratio = median statekit time / median raw time (lower is better; 1.00x = no "
        "overhead); per round = range of single-round ratios; write alone = aset() of a "
        "variable nobody watches (the database's share). SSE aset: the same change "
        "reaching as many event streams (no Channels); "
        "SSE ratio = SSE median / raw group_send median."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--clients", default="100,1000", help="client counts, comma-separated")
    parser.add_argument("--no-redis", action="store_true", help="only the in-memory layer")
    args = parser.parse_args(argv)
    try:
        clients = [int(n) for n in args.clients.split(",")]
    except ValueError:
        parser.error("--clients takes numbers, e.g. 100,1000")
    if args.rounds < 1 or min(clients) < 1:
        parser.error("--rounds and --clients must be positive")

    use_redis = not args.no_redis and redis_answers()
    redis_note = (
        f"channels-redis on {REDIS_URL}"
        if use_redis
        else "channels-redis skipped (--no-redis)"
        if args.no_redis
        else f"channels-redis skipped: Redis does not answer on {REDIS_URL}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            configure_django(Path(tmp) / "bench.sqlite3")
            results = asyncio.run(run_all(clients, args.rounds, use_redis))
        finally:
            if use_redis:
                cleanup_redis()
    print_table(results, args.rounds, redis_note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
