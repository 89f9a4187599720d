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
the watch is gone) and ``internal``. A refused frame leaves nothing registered and never
closes the connection.

Flow control (:mod:`statekit.live.outbox`): the client acknowledges what it read by sending back
the ``ack`` token of the last frame it read. At most ``window_frames`` frames and
``window_bytes`` bytes of values are unacknowledged; beyond that a watch that changes is sent
its *latest* value once the client catches up, never every intermediate one. A client that
stays behind, its window full, for ``slow_seconds`` without acknowledging anything, or that
has ``max_frames`` answers unread, is closed with code 4408 (:data:`CLOSE_TOO_SLOW`); the
client may reconnect and watch again, which resyncs it.

When the channel layer fails (its Redis died), the connection is closed with code 4503
(:data:`statekit.live.layer.CLOSE_LAYER_FAILED`): the client reconnects later and watches again.
The process logs one warning per outage, not one per connection.

Who may watch what: global variables declared ``public=True``; the session variables of the
connection's own session (``scope["session"]``, from SessionMiddlewareStack or
AuthMiddlewareStack); the page variables of the connection's own pages: the page id (from
``{% statekit_js %}``, in the watch's ``page`` or the URL's ``?statekit_page=``) must verify
as issued to that session (:func:`statekit.state.pages.verify`). A name that is not declared in the
scope is refused with the same message as a non-public one, so names cannot be probed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any, ClassVar

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from statekit.conf import get_settings
from statekit.keys import SCOPES, Scope
from statekit.live.layer import QuietReceive, on_layer
from statekit.live.outbox import FlowControl, Outbox, Watch, WatchId
from statekit.live.owner import ConnectionOwner, Refused, watched
from statekit.live.publish import current_json, group_name

logger = logging.getLogger("statekit.live")

MAX_ID_LENGTH = 64


def _watch_id(message: dict[str, Any]) -> WatchId:
    value = message.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return value
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    raise Refused("invalid", f"'id' must be an integer or a string of 1 to {MAX_ID_LENGTH}.")


# channels has no types: its consumer is Any to mypy
class StateConsumer(ConnectionOwner, QuietReceive, FlowControl, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Serves ``watch`` / ``unwatch``; joins one channel-layer group per watched variable."""

    scopes: ClassVar[tuple[str, ...]] = SCOPES
    rejoin_seconds: ClassVar[float] = 6 * 3600  # well within the layers' group_expiry
    fields: ClassVar[dict[str, set[str]]] = {
        "watch": {"type", "id", "name", "scope", "page"},
        "unwatch": {"type", "id"},
        "ack": {"type", "ack"},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watches: dict[WatchId, Watch] = {}
        self.members: dict[str, Watch] = {}  # group -> the watch of it (one per group)
        self.outbox = Outbox(self.window_frames, self.window_bytes, self.max_frames)
        self.closing = False
        self._rejoining: asyncio.Task[None] | None = None
        self._slow_timer: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None

    @property
    def channel_layer_alias(self) -> str:
        return str(get_settings()["CHANNEL_LAYER"])

    async def connect(self) -> None:
        await self.accept()
        if self.channel_layer is not None:
            self._rejoining = asyncio.create_task(self._rejoin())

    async def _rejoin(self) -> None:
        """Join the groups again now and then: channel layers drop a member after their
        ``group_expiry`` (a day by default), and a tab may stay open longer than that."""
        while True:
            await asyncio.sleep(self.rejoin_seconds)
            for group in list(self.members):
                if group in self.members:  # not left meanwhile
                    join = functools.partial(self.channel_layer.group_add, group, self.channel_name)
                    try:
                        await on_layer(self.channel_layer, join)
                    except Exception:  # noted by on_layer; the next round tries again
                        pass

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
        group = group_name(scope, owner, name)
        if group in self.members:
            raise Refused(
                "duplicate",
                f"This connection watches {scope} state {name!r} already "
                f"(id {self.members[group].id!r}).",
            )
        fields = json.dumps({"id": wid, "scope": scope, "name": name})
        watch = Watch(wid, variable, owner, group, fields[1:-1])
        try:
            await self._join(watch)  # before reading: no change between read and join is lost
        except Exception:  # the layer's server is down (noted by on_layer): the client asks again
            raise Refused("unavailable", "Live updates are unavailable; try again.") from None
        try:
            value = await current_json(variable, owner)
        except BaseException as exc:
            await self._leave(watch)  # refused: nothing stays registered
            if not isinstance(exc, Exception):
                raise
            logger.exception("statekit consumer could not read %s state %r", scope, name)
            raise Refused("unavailable", f"{scope} state {name!r} could not be read.") from None
        await self.offer(watch, "value", value)

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

    # -- frames out, flow-controlled (statekit.live.outbox) -------------------------------------

    async def _join(self, watch: Watch) -> None:
        if self.channel_layer is not None:
            join = functools.partial(self.channel_layer.group_add, watch.group, self.channel_name)
            await on_layer(self.channel_layer, join)
        self.members[watch.group] = watch
        self.watches[watch.id] = watch

    async def _leave(self, watch: Watch) -> None:
        if self.members.get(watch.group) is not watch:
            return
        del self.members[watch.group]
        del self.watches[watch.id]
        self.outbox.forget(watch.group)
        if self.channel_layer is not None:
            await self.discard(watch.group)

    # -- the channel layer -----------------------------------------------------------------

    async def statekit_change(self, event: dict[str, Any]) -> None:
        """A change published by :func:`statekit.live.publish.publish` (type ``live.EVENT``)."""
        value, watch = event.get("value"), self.members.get(event.get("group", ""))
        if isinstance(value, str) and watch is not None:
            await self.offer(watch, "change", value)  # O(1) memory: sent, or marked behind

    async def disconnect(self, code: int) -> None:
        self.closing = True
        for pending in (self._rejoining, self._slow_timer):
            if pending is not None:
                pending.cancel()
        if self.channel_layer is not None:
            for group in list(self.members):
                await self.discard(group)
        self.members.clear()
        self.watches.clear()
