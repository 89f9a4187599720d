"""Flow control of one websocket connection: a bounded window in flight, the rest coalesced.

ASGI servers differ: uvicorn makes a slow client's ``send`` wait, Daphne buffers whatever the
application sends, without limit. So the consumer bounds what is in flight itself. Every frame
it sends ends with an ``"ack"`` token; the client sends back the token of the last frame it
read (``{"type": "ack", "ack": token}``), which acknowledges that frame and all before it.
Tokens are random: only a client that reads its frames can acknowledge them.

- Value frames (``value``, ``change``) go out while fewer than ``window_frames`` frames and
  ``window_bytes`` bytes are unacknowledged. Beyond that the outbox keeps only *which* watches
  are behind (one entry per watch, whatever the number of changes and the size of the
  values); the consumer reads their current value when the window opens again.
- Replies (``error``, ``unwatched``) always go out, up to ``max_frames`` in flight: a client
  that keeps asking without reading the answers is over it, and is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from statekit.live.owner import current_json, unreadable

logger = logging.getLogger("statekit.live")

#: The close code of a client that does not read what it is sent.
CLOSE_TOO_SLOW = 4408

WatchId = int | str


@dataclass(frozen=True)
class Watch:
    id: WatchId
    variable: Any
    owner: str | None
    key: str  # which variable and owner: one watch of it per connection
    fields: str  # '"id":1,"scope":"global","name":"visitors"', encoded once

    def frame(self, kind: str, value_json: str) -> str:
        return f'{{"type":"{kind}",{self.fields},"value":{value_json}}}'


class Outbox:
    """What one connection has in flight and what it is behind on (no values are kept)."""

    def __init__(self, window_frames: int, window_bytes: int, max_frames: int) -> None:
        self.window_frames = window_frames
        self.window_bytes = window_bytes
        self.max_frames = max_frames
        self.in_flight: deque[tuple[str, int]] = deque()  # (token, bytes), oldest first
        self.bytes = 0
        self.behind: dict[str, str] = {}  # watch key -> frame kind ("value" or "change"), in order
        self.stalled_since: float | None = None  # behind, with the window full, since

    @property
    def open(self) -> bool:
        """Whether a value frame may go out now."""
        return len(self.in_flight) < self.window_frames and self.bytes < self.window_bytes

    @property
    def overflowing(self) -> bool:
        """Whether even a reply may not go out: the client does not read its answers."""
        return len(self.in_flight) >= self.max_frames

    def stamp(self, text: str) -> str:
        """``text`` (a JSON object) with its ack token, counted as in flight."""
        token = secrets.token_hex(4)
        framed = f'{text[:-1]},"ack":"{token}"}}'
        size = len(framed) if framed.isascii() else len(framed.encode("utf-8", "replace"))
        self.in_flight.append((token, size))
        self.bytes += size
        return framed

    def acknowledge(self, token: str) -> bool:
        """Acknowledge the frame of ``token`` and those before it; False for an unknown token."""
        if not any(sent == token for sent, _ in self.in_flight):
            return False
        while True:
            sent, size = self.in_flight.popleft()
            self.bytes -= size
            if sent == token:
                break
        if self.stalled_since is not None:
            self.stalled_since = time.monotonic()  # progress: the client reads
        return True

    def hold(self, key: str, kind: str) -> None:
        """Remember that the watch ``key`` has a frame to send (a first ``value`` stays a
        value)."""
        self.behind[key] = self.behind.get(key, kind)
        if self.stalled_since is None and not self.open:
            self.stalled_since = time.monotonic()

    def next_behind(self) -> tuple[str, str] | None:
        """The oldest watch key still to send, if the window is open (it is then no longer
        held)."""
        if not self.behind or not self.open:
            if not self.behind:
                self.stalled_since = None
            return None
        key = next(iter(self.behind))
        return key, self.behind.pop(key)

    def forget(self, key: str) -> None:
        self.behind.pop(key, None)

    def stalled_for(self) -> float:
        """Seconds the client has been behind with a full window and no acknowledgement."""
        if self.stalled_since is None:
            return 0.0
        return time.monotonic() - self.stalled_since


class FlowControl:
    """The sending half of :class:`statekit.live.consumer.StateConsumer`: frames out, bounded."""

    window_frames: ClassVar[int] = 32  # at most this much unacknowledged, ...
    window_bytes: ClassVar[int] = 256 * 1024
    max_frames: ClassVar[int] = 128  # ... answers included; more: closed as too slow
    slow_seconds: ClassVar[float] = 30.0  # behind, nothing acknowledged: closed as too slow

    members: dict[str, Watch]
    outbox: Outbox
    closing: bool
    _slow_timer: asyncio.TimerHandle | None
    _closer: asyncio.Task[None] | None

    if TYPE_CHECKING:  # the consumer's (channels is untyped)

        async def send(self, text_data: str | None = None) -> None: ...
        async def close(self, code: int | None = None, reason: str | None = None) -> None: ...
        async def _leave(self, watch: Watch) -> None: ...

    async def reply(self, frame: dict[str, Any]) -> None:
        """Send an answer (``error``, ``unwatched``); close a client that reads none."""
        if self.outbox.overflowing:
            await self.too_slow()
        elif not self.closing:
            await self.send(text_data=self.outbox.stamp(json.dumps(frame)))

    async def offer(self, watch: Watch, kind: str, value_json: str) -> None:
        """Send ``watch`` its value now, or, when the client is behind, its latest later."""
        if self.outbox.open and not self.outbox.behind:
            if not self.closing:
                await self.send(text_data=self.outbox.stamp(watch.frame(kind, value_json)))
            return
        self.outbox.hold(watch.key, kind)
        await self.flush()
        if self.outbox.stalled_since is not None and self._slow_timer is None:
            self._slow_timer = asyncio.get_running_loop().call_later(
                self.slow_seconds, self._check_slow
            )

    async def flush(self) -> None:
        """Send the watches that are behind their current value, while the window is open."""
        while not self.closing and (held := self.outbox.next_behind()) is not None:
            watch = self.members.get(held[0])
            if watch is None:
                continue
            try:
                value = await current_json(watch.variable, watch.owner)
            except Exception as exc:
                await self.unreadable(watch, exc)
                continue
            await self.send(text_data=self.outbox.stamp(watch.frame(held[1], value)))

    async def unreadable(self, watch: Watch, exc: Exception) -> None:
        """End ``watch``, whose value could not be read (:func:`~statekit.live.owner.unreadable`
        says why: ``unavailable``, the client watches again later, or ``schema``)."""
        refused = unreadable(watch.variable, exc)
        await self._leave(watch)
        await self.reply(
            {"type": "error", "id": watch.id, "code": refused.code, "message": str(refused)}
        )

    def _check_slow(self) -> None:
        self._slow_timer = None
        stalled = self.outbox.stalled_for()
        if self.closing or self.outbox.stalled_since is None:
            return
        if stalled >= self.slow_seconds:
            self._closer = asyncio.ensure_future(self.too_slow())
        else:
            loop = asyncio.get_running_loop()
            self._slow_timer = loop.call_later(self.slow_seconds - stalled, self._check_slow)

    async def too_slow(self) -> None:
        """Close a client that does not read what it is sent (it may reconnect)."""
        if not self.closing:
            self.closing = True
            logger.info("statekit consumer closes a client that does not read its frames")
            await self.close(code=CLOSE_TOO_SLOW, reason="too slow")
