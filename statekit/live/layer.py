"""The channel layer when it fails: quiet, and no latest value lost.

- A call is retried once at once (:func:`on_layer`): after the layer's server restarted, the
  first use of each pooled connection fails, and the retry opens a new one.
- A failure is logged as ONE warning per process per outage (logger ``statekit.live``), by
  whoever notices it first (a publish, a consumer's receive or join); the first call that
  works again ends the outage (logged at INFO). No traceback: an outage is not a bug.
- While a layer is down, writes do not wait for it: the :class:`Publisher` keeps the latest
  message of each group (at most :data:`MAX_HELD` groups; beyond that the oldest is dropped,
  and counted) and its thread sends them, oldest first, once the layer answers again. It tries
  every :data:`RETRY_SECONDS`.
- A websocket consumer whose receive from the layer fails closes its websocket with
  :data:`CLOSE_LAYER_FAILED` (:class:`QuietReceive`); statekit.js reconnects with its backoff
  and watches again, which resyncs the page.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from channels.layers import BaseChannelLayer
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("statekit.live")
T = TypeVar("T")

#: How long a sync write waits for its change to be handed to the channel layer, in seconds.
PUBLISH_TIMEOUT = 2.0
#: While a layer is down, how often the publisher's thread tries it again, in seconds.
RETRY_SECONDS = 1.0
#: At most this many groups' latest messages are held while a layer is down.
MAX_HELD = 10_000
#: What a receive that got nothing in time raises (its server answered: not a failure).
READ_TIMEOUTS = (TimeoutError, RedisTimeoutError)
#: The close code of a websocket whose channel layer failed (1012 "service restart" would say
#: it best, but Daphne's websocket library refuses to send it).
CLOSE_LAYER_FAILED = 4503

_down_lock = threading.Lock()
_down: weakref.WeakSet[BaseChannelLayer] = weakref.WeakSet()


def layer_failed(layer: BaseChannelLayer, exc: BaseException) -> None:
    """Note that ``layer`` failed: the first failure of an outage is logged as a warning."""
    with _down_lock:
        first = layer not in _down
        _down.add(layer)
    if first:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        logger.warning(
            "The channel layer failed (%s): live updates pause until it answers again.", reason
        )


def layer_answered(layer: BaseChannelLayer) -> None:
    """Note that a call to ``layer`` worked: that ends its outage, if it had one."""
    if layer in _down:
        with _down_lock:
            if layer not in _down:
                return
            _down.discard(layer)
        logger.info("The channel layer answers again.")


async def on_layer(layer: BaseChannelLayer, call: Callable[[], Awaitable[T]]) -> T:
    """Make a channel-layer call, and once more at once if it fails (a layer that is down
    fails both fast: connection refused). A failure of the retry is noted, then raised."""
    try:
        try:
            result = await call()
        except Exception:
            result = await call()
    except Exception as exc:
        layer_failed(layer, exc)
        raise
    layer_answered(layer)
    return result


class QuietReceive:
    """For a websocket consumer (Channels' ``AsyncConsumer``): a failure of its receive from
    the channel layer closes the websocket with CLOSE_LAYER_FAILED.

    ``AsyncConsumer.__call__`` sets ``channel_receive`` to the layer's receive and awaits it,
    with the client's receive, in ``channels.utils.await_many_dispatch``: an exception there
    ends the consumer, and the ASGI server logs it with a traceback, once per websocket. Here
    the first failure becomes one ``statekit.layer_failed`` message, dispatched like any other
    (it closes the websocket); after it the layer's receive waits until the websocket is gone.
    """

    channel_layer: BaseChannelLayer
    channel_name: str
    _layer_receive: Callable[[], Awaitable[dict[str, Any]]]
    _layer_failed = False

    if TYPE_CHECKING:  # the consumer's (channels is untyped)

        async def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._receive_from_layer

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive = receive

    async def _receive_from_layer(self) -> dict[str, Any]:
        failed = 0  # the first failure may be a stale pooled connection: receive again
        while not self._layer_failed:
            try:
                return await self._layer_receive()
            except READ_TIMEOUTS:
                # Nothing arrived within the client's socket timeout: redis-py 8 defaults it
                # to 5 s, the time channels-redis blocks for (BZPOPMIN). Not a failure.
                failed = 0
            except Exception as exc:
                failed += 1
                if failed == 2:
                    self._layer_failed = True
                    layer_failed(self.channel_layer, exc)
                    return {"type": "statekit.layer_failed"}
        never: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        return await never  # cancelled when the websocket is gone

    async def statekit_layer_failed(self, message: dict[str, Any]) -> None:
        await self.close(code=CLOSE_LAYER_FAILED, reason="channel layer failed")

    async def discard(self, group: str) -> None:
        """Leave ``group``. A layer that is down has lost it, or drops it after its
        ``group_expiry``: the failure is only noted (once per outage)."""
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:
            layer_failed(self.channel_layer, exc)


@dataclass
class _Held:
    """What is held for one layer while it is down: group -> (sequence, message), oldest
    first."""

    messages: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    sent: int = 0
    dropped: int = 0


class Publisher:
    """Hands changes to network channel layers; holds them while a layer is down.

    Sync code (no running event loop) waits at most PUBLISH_TIMEOUT, in one long-lived event
    loop of a daemon thread, so each write does not open a new event loop and connection.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.held: weakref.WeakKeyDictionary[BaseChannelLayer, _Held] = weakref.WeakKeyDictionary()
        self.sequence = itertools.count()  # orders the messages of this process
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="statekit-live-publisher", daemon=True
        )
        self.thread.start()
        self.tasks: set[asyncio.Task[None]] = set()

    def publish(self, layer: BaseChannelLayer, group: str, message: dict[str, Any]) -> None:
        """Send ``message`` to ``group``; never raises, never waits longer than
        PUBLISH_TIMEOUT, and not at all while the layer is down (the message is held)."""
        seq = next(self.sequence)
        if self._hold(layer, group, seq, message, only_if_down=True):
            return
        sending = self._send(layer, group, seq, message)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # In a context of its own: the writer's (asgiref's thread-sensitive executor,
            # which may be this blocked thread) must not follow the send into the loop.
            run = asyncio.run_coroutine_threadsafe
            future = contextvars.Context().run(run, sending, self.loop)
            try:
                future.result(PUBLISH_TIMEOUT)
            except FutureTimeout:
                future.cancel()
                failure = TimeoutError(f"it did not answer in {PUBLISH_TIMEOUT:g} s")
                self._failed(layer, group, seq, message, failure)
        else:  # async code (or sync code in the loop's thread): it cannot block here
            task = loop.create_task(sending)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send(
        self, layer: BaseChannelLayer, group: str, seq: int, message: dict[str, Any]
    ) -> None:
        try:
            await on_layer(layer, functools.partial(layer.group_send, group, message))
        except Exception as exc:
            self._failed(layer, group, seq, message, exc)

    def _failed(
        self,
        layer: BaseChannelLayer,
        group: str,
        seq: int,
        message: dict[str, Any],
        exc: BaseException,
    ) -> None:
        layer_failed(layer, exc)
        self._hold(layer, group, seq, message, only_if_down=False)

    def _hold(
        self,
        layer: BaseChannelLayer,
        group: str,
        seq: int,
        message: dict[str, Any],
        *,
        only_if_down: bool,
    ) -> bool:
        """Keep ``message`` as the latest of ``group`` (unless a later one is kept); with
        ``only_if_down``, only when messages are held for ``layer`` already."""
        with self.lock:
            held = self.held.get(layer)
            if held is None:
                if only_if_down:
                    return False
                held = self.held[layer] = _Held()
                retry = self._retry(weakref.ref(layer))
                contextvars.Context().run(asyncio.run_coroutine_threadsafe, retry, self.loop)
            kept = held.messages.pop(group, None)
            held.messages[group] = kept if kept is not None and kept[0] > seq else (seq, message)
            if len(held.messages) > MAX_HELD:
                del held.messages[next(iter(held.messages))]
                held.dropped += 1
        return True

    async def _retry(self, ref: weakref.ref[BaseChannelLayer]) -> None:
        """In the publisher's loop while a layer is down: send what is held, oldest first,
        until nothing is (a layer no longer in use is let go, with what it held)."""
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            layer = ref()
            if layer is None or await self._flush(layer):
                return
            del layer  # not kept while sleeping

    async def _flush(self, layer: BaseChannelLayer) -> bool:
        """Send what is held for ``layer``; False if it failed again."""
        try:
            while (oldest := self._oldest(layer)) is not None:
                group, (seq, message) = oldest
                send = functools.partial(layer.group_send, group, message)
                await asyncio.wait_for(on_layer(layer, send), PUBLISH_TIMEOUT)
                with self.lock:
                    held = self.held[layer]
                    held.sent += 1
                    if held.messages.get(group, (None,))[0] == seq:
                        del held.messages[group]
        except Exception as exc:
            layer_failed(layer, exc)
            return False
        return True

    def _oldest(self, layer: BaseChannelLayer) -> tuple[str, tuple[int, dict[str, Any]]] | None:
        with self.lock:
            held = self.held[layer]
            if held.messages:
                return next(iter(held.messages.items()))
            del self.held[layer]
        if held.dropped:
            logger.warning(
                "%d changes held while the channel layer was down were not published: more "
                "than %d variables changed (pages see them at their next change).",
                held.dropped,
                MAX_HELD,
            )
        logger.info("%d changes held while the channel layer was down are sent.", held.sent)
        return None


_publisher_lock = threading.Lock()
_publisher_instance: Publisher | None = None


def publisher() -> Publisher:
    """This process's publisher."""
    global _publisher_instance
    with _publisher_lock:
        # A forked child inherits the object but not the thread: start its own.
        if _publisher_instance is None or _publisher_instance.pid != os.getpid():
            _publisher_instance = Publisher()
        return _publisher_instance
