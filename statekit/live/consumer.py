"""The websocket consumer that lets pages watch state.

Protocol (JSON text frames; ``id`` is the client's number or string for one watch):

    client  {"type": "watch", "id": 1, "name": "visitors", "scope": "global"}
            {"type": "watch", "id": 2, "name": "cart", "scope": "session"}
            {"type": "watch", "id": 3, "name": "chat", "scope": "page", "page": "<page id>"}
            {"type": "unwatch", "id": 1}
            {"type": "ack", "ack": "9f86d081"}
    server  {"type": "value", "id": 1, "scope": "global", "name": "visitors", "value": 41}
            {"type": "change", "id": 1, "scope": "global", "name": "visitors", "value": 42}
            {"type": "unwatched", "id": 1}
            {"type": "error", "id": 1, "code": "refused", "message": "..."}

Every server frame also holds an ``"ack"`` token (flow control, below).
``value`` answers a watch with the current value; ``change`` follows changes. A connection
watches a variable (and owner) once: a second watch of it is refused (``duplicate``), so no
change is ever sent twice. Error codes: ``invalid`` (a malformed frame), ``refused`` (not
allowed to watch that), ``duplicate``, ``limit`` (``STATEKIT["WS_MAX_MESSAGE_BYTES"]`` or
``["WS_MAX_WATCHES"]``), ``unavailable`` (the backend could not be read: watch again later;
the watch is gone), ``schema`` (the stored value no longer fits the variable's schema: the
watch is gone) and ``internal``. A refused frame leaves nothing registered and never
closes the connection.

Flow control (:mod:`statekit.live.outbox`): the client acknowledges what it read by sending back
the ``ack`` token of the last frame it read. At most ``window_frames`` frames and
``window_bytes`` bytes of values are unacknowledged; beyond that a watch that changes is sent
its *latest* value once the client catches up, never every intermediate one. A client that
stays behind, its window full, for ``slow_seconds`` without acknowledging anything, or that
has ``max_frames`` answers unread, is closed with code 4408 (:data:`CLOSE_TOO_SLOW`); the
client may reconnect and watch again, which resyncs it.

Changes come from the change streams (:mod:`statekit.streams`), as for ``changes()`` and the
event stream: each watch follows its variable (and owner) on the process's one feed of the
backend, so a write is published once and reaches websockets in every process, with or without
a channel layer (Channels is only the websocket's transport here). When the session of a
session or page watch ends or gets a new key (logout, login), the connection is closed with
code 4401 (:data:`CLOSE_SESSION_CHANGED`): statekit.js reconnects with the session it has
now. When the feed reconnects
after an outage, every watch reads its value again and is sent it if it changed: the socket
stays open. A watch whose value cannot be read then (the store is still down) gets
``unavailable`` and is gone; statekit.js watches again a few seconds later.

Who may watch what: global variables declared ``public=True``; the session variables of the
connection's own session (``scope["session"]``, from SessionMiddlewareStack or
AuthMiddlewareStack); the page variables of the connection's own pages: the page id (from
``{% statekit_js %}``, in the watch's ``page`` or the URL's ``?statekit_page=``) must verify
as issued to that session (:func:`statekit.state.pages.verify`). A name that is not declared in the
scope is refused with the same message as a non-public one, so names cannot be probed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from statekit.conf import get_settings
from statekit.keys import SCOPES, Scope
from statekit.live.outbox import FlowControl, Outbox, Watch, WatchId
from statekit.live.owner import ConnectionOwner, Refused, as_json, unreadable, watched

logger = logging.getLogger("statekit.live")

MAX_ID_LENGTH = 64
#: The close code when the connection's session ended or got a new key (logout, login): the
#: client reconnects, with the session it has now.
CLOSE_SESSION_CHANGED = 4401


def _watch_id(message: dict[str, Any]) -> WatchId:
    value = message.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return value
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    raise Refused("invalid", f"'id' must be an integer or a string of 1 to {MAX_ID_LENGTH}.")


# channels has no types: its consumer is Any to mypy
class StateConsumer(ConnectionOwner, FlowControl, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Serves ``watch`` / ``unwatch``; each watch follows its variable's change stream."""

    #: No channel layer: changes come from statekit.streams (no channel name, no receive).
    channel_layer_alias: ClassVar[str | None] = None
    scopes: ClassVar[tuple[str, ...]] = SCOPES
    fields: ClassVar[dict[str, set[str]]] = {
        "watch": {"type", "id", "name", "scope", "page"},
        "unwatch": {"type", "id"},
        "ack": {"type", "ack"},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watches: dict[WatchId, Watch] = {}
        self.members: dict[str, Watch] = {}  # watch key -> the watch of it (one per key)
        self.following: dict[str, asyncio.Task[None]] = {}  # watch key -> its stream's task
        self.outbox = Outbox(self.window_frames, self.window_bytes, self.max_frames)
        self.closing = False
        self._slow_timer: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None

    # -- frames in -------------------------------------------------------------------------

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        content: Any = None
        try:
            content = self._decode(message.get("text"))
            kind = content.get("type")
            if not isinstance(kind, str) or kind not in self.fields:
                raise Refused("invalid", f"'type' must be one of: {', '.join(self.fields)}.")
            unknown = set(content) - self.fields[kind]
            if unknown:
                raise Refused("invalid", f"Unknown field(s): {', '.join(sorted(unknown))}.")
            await getattr(self, kind)(content)
        except Refused as exc:
            await self.error(content, exc.code, str(exc))
        except StopConsumer:
            raise
        except Exception:
            logger.exception("statekit consumer failed on a frame")
            await self.error(content, "internal", "The server could not handle this frame.")

    @staticmethod
    def _decode(text: Any) -> dict[str, Any]:
        if not isinstance(text, str):
            raise Refused("invalid", "Frames must be text: a JSON object.")
        limit = get_settings()["WS_MAX_MESSAGE_BYTES"]
        if len(text) > limit:
            raise Refused("limit", f"Frames are limited to {limit} bytes.")
        try:
            if len(text.encode()) > limit:
                raise Refused("limit", f"Frames are limited to {limit} bytes.")
            content = json.loads(text)
            # Escapes may spell lone surrogates ("\\ud800"): no valid text holds one.
            json.dumps(content, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise Refused("invalid", "The frame holds a lone surrogate: not Unicode.") from None
        except (ValueError, RecursionError):
            raise Refused("invalid", "The frame is not valid JSON.") from None
        if not isinstance(content, dict):
            raise Refused("invalid", "A frame must be a JSON object.")
        return content

    async def error(self, content: Any, code: str, text: str) -> None:
        """Send an error frame, with the frame's id when it has a valid one."""
        try:
            wid = _watch_id(content) if isinstance(content, dict) else None
        except Refused:
            wid = None
        await self.reply({"type": "error", "id": wid, "code": code, "message": text})

    # -- watch / unwatch -------------------------------------------------------------------

    async def watch(self, content: dict[str, Any]) -> None:
        wid = _watch_id(content)
        name, scope = content.get("name"), content.get("scope", Scope.GLOBAL)
        if not isinstance(name, str):
            raise Refused("invalid", "'name' must be a string.")
        if scope not in self.scopes:
            raise Refused("invalid", f"'scope' must be one of: {', '.join(self.scopes)}.")
        if wid in self.watches:
            raise Refused("duplicate", f"The id {wid!r} is already watching.")
        limit = get_settings()["WS_MAX_WATCHES"]
        if len(self.watches) >= limit:
            raise Refused("limit", f"A connection may watch at most {limit} variables.")
        variable = watched(scope, name)
        owner = await self.owner(scope, content)
        key = json.dumps([scope, owner, name])
        if key in self.members:
            raise Refused(
                "duplicate",
                f"This connection watches {scope} state {name!r} already "
                f"(id {self.members[key].id!r}).",
            )
        fields = json.dumps({"id": wid, "scope": scope, "name": name})
        watch = Watch(wid, variable, owner, key, fields[1:-1])
        values = variable.changes() if scope == Scope.GLOBAL else variable.changes(owner)
        try:
            value = await anext(values)  # subscribes, then reads: no change is lost between
        except BaseException as exc:
            await values.aclose()  # refused: nothing stays registered
            if not isinstance(exc, Exception):
                raise
            raise unreadable(variable, exc) from None
        self.members[key] = watch
        self.watches[wid] = watch
        await self.offer(watch, "value", as_json(variable, value))
        if self.closing or self.members.get(key) is not watch:  # closed or left meanwhile
            await values.aclose()
        else:
            self.following[key] = asyncio.create_task(self._follow(watch, values))

    async def unwatch(self, content: dict[str, Any]) -> None:
        wid = _watch_id(content)
        watch = self.watches.get(wid)
        if watch is None:
            raise Refused("invalid", f"The id {wid!r} is not watching.")
        await self._leave(watch)
        await self.reply({"type": "unwatched", "id": wid})

    async def ack(self, content: dict[str, Any]) -> None:
        token = content.get("ack")
        if not isinstance(token, str) or not self.outbox.acknowledge(token):
            raise Refused("invalid", "'ack' must be the token of a frame not acknowledged yet.")
        await self.flush()

    # -- the change stream of each watch ---------------------------------------------------

    async def _follow(self, watch: Watch, values: AsyncGenerator[Any]) -> None:
        """Send ``watch`` each change of its stream (latest value wins) until it is left; a
        stream that ends (its session ended or got a new key) closes the connection."""
        try:
            async with aclosing(values):
                async for value in values:
                    await self.offer(watch, "change", as_json(watch.variable, value))
        except Exception as exc:  # a resync could not read: the store is down, or a schema
            if self.members.get(watch.key) is watch:
                await self.unreadable(watch, exc)
            return
        if self.members.get(watch.key) is watch and not self.closing:
            self.closing = True
            await self.close(code=CLOSE_SESSION_CHANGED, reason="session changed")

    async def _leave(self, watch: Watch) -> None:
        """Forget ``watch`` and release its subscription (at once: its task is awaited)."""
        if self.members.get(watch.key) is not watch:
            return
        del self.members[watch.key]
        del self.watches[watch.id]
        self.outbox.forget(watch.key)
        task = self.following.pop(watch.key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self._slow_timer is not None:
            self._slow_timer.cancel()
        tasks = list(self.following.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.following.clear()
        self.members.clear()
        self.watches.clear()
