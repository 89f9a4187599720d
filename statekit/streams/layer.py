"""A feed on a Channels channel layer, for backends with no pub/sub of their own (``db`` on
SQLite or another database without ``LISTEN``): when ``STATEKIT["CHANNEL_LAYER"]`` names a
network layer of ``CHANNEL_LAYERS`` (channels-redis), changes cross processes through it.

Each listening process joins ONE group (of the ``KEY_PREFIX``) with one channel of its own; a
change is one ``group_send`` of the :func:`~statekit.streams.hub.message`. The layer is an
instance of statekit's own, used from one event loop of its own (a daemon thread): channels-redis
keeps its connections per event loop and lets one loop only receive, and a write then never
opens a loop or a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from django.conf import settings
from django.utils.module_loading import import_string

from statekit.keys import StateKey
from statekit.streams.hub import Hub, message

#: The ``type`` of statekit's messages on the layer.
EVENT = "statekit.change"
#: How long a write waits for its ``group_send``, in seconds (then: logged, not failed).
PUBLISH_TIMEOUT = 2.0
#: How long one receive blocks in Redis, in seconds: well under the client's socket timeout.
BLOCK_SECONDS = 1


def group_of(prefix: str) -> str:
    """The group of the changes of ``KEY_PREFIX`` ``prefix`` (group names are short ASCII)."""
    return f"statekit.changes.{hashlib.blake2b(prefix.encode(), digest_size=16).hexdigest()}"


class LayerHub(Hub):
    """``group_send`` after each write, one channel in the group per listening process."""

    #: Seconds between joins of the group again: layers drop a member after ``group_expiry``
    #: (a day by default), and a process may listen longer than that.
    rejoin_seconds: ClassVar[float] = 6 * 3600

    def __init__(self, alias: str, prefix: str) -> None:
        from channels.layers import channel_layers  # statekit[live], as CHANNEL_LAYERS is set

        super().__init__()
        self.layer = channel_layers.make_backend(alias)  # statekit's own instance
        if hasattr(self.layer, "brpop_timeout"):
            # channels-redis blocks in BZPOPMIN for brpop_timeout (5 s), and redis-py 8 times
            # a socket out after 5 s by default: a message the server pops just as the client
            # gives up is lost. Blocking for less, the server always answers first.
            self.layer.brpop_timeout = BLOCK_SECONDS
        self.group = group_of(prefix)
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self.loop.run_forever, name="statekit-LayerHub-loop", daemon=True
        )
        self._loop_thread.start()

    def _submit(self, coroutine: Any) -> Future[Any]:
        # In a context of its own: asgiref's (the writer's thread-sensitive executor) must not
        # follow the call into statekit's loop.
        return contextvars.Context().run(asyncio.run_coroutine_threadsafe, coroutine, self.loop)

    def publish(self, key: StateKey, text: str | None) -> None:
        """Send the change; a write waits at most PUBLISH_TIMEOUT for it, and not at all while
        the layer is down (its outcome is then only noted): every listening process resyncs
        when its feed is back, so nothing is held."""
        sending = self._send({"type": EVENT, "text": message(key, text)})
        sent = self._submit(asyncio.wait_for(sending, PUBLISH_TIMEOUT))
        if self._down:
            sent.add_done_callback(self._noted)
            return
        try:
            sent.result(PUBLISH_TIMEOUT + 0.5)
        except Exception as exc:
            sent.cancel()
            self.failed("publish", exc)

    async def _send(self, event: dict[str, Any]) -> None:
        try:
            await self.layer.group_send(self.group, event)
        except Exception:  # after its server restarted, each pooled connection fails once
            await self.layer.group_send(self.group, event)

    def _noted(self, sent: Future[Any]) -> None:
        failure = None if sent.cancelled() else sent.exception()
        if failure is not None:
            self.failed("publish", failure)

    def listen(self, stop: Callable[[], bool]) -> None:
        self._submit(self._listen(stop)).result()

    async def _listen(self, stop: Callable[[], bool]) -> None:
        channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, channel)
        joined = time.monotonic()
        self.connected()
        receiving: asyncio.Future[Any] | None = None
        try:
            while not stop():
                if receiving is None:
                    receiving = asyncio.ensure_future(self.layer.receive(channel))
                done, _ = await asyncio.wait({receiving}, timeout=0.5)  # stop() is polled
                if done:
                    finished, receiving = receiving, None
                    try:
                        found = finished.result()
                    except Exception as exc:
                        # A socket timeout shorter than BLOCK_SECONDS times an idle receive
                        # out (builtin or redis's TimeoutError): not a failure.
                        if type(exc).__name__ == "TimeoutError":
                            continue
                        raise
                    if isinstance(found, dict) and found.get("type") == EVENT:
                        self.received(found.get("text", ""))
                if time.monotonic() - joined > self.rejoin_seconds:
                    await self.layer.group_add(self.group, channel)
                    joined = time.monotonic()
        finally:
            if receiving is not None:
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)
            try:
                await self.layer.group_discard(self.group, channel)
            except Exception:  # down: it drops the member after its group_expiry
                pass


def network_layer(alias: Any) -> dict[str, Any] | None:
    """The configuration of the channel layer ``alias`` of ``CHANNEL_LAYERS`` when it crosses
    processes; None when there is no such layer or it is the in-memory one (this process)."""
    configs = getattr(settings, "CHANNEL_LAYERS", {})
    if not isinstance(alias, str) or alias not in configs:
        return None
    from channels.layers import InMemoryChannelLayer  # statekit[live], as CHANNEL_LAYERS is set

    backend = import_string(configs[alias]["BACKEND"])
    return None if issubclass(backend, InMemoryChannelLayer) else dict(configs[alias])
