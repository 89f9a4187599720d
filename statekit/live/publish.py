"""Live state: every change of a watchable variable is published to the channel layer.

One ``state_changed`` receiver sends ONE ``group_send`` per change, to the group of the
variable (global), of the session and variable, or of the page and variable. Every websocket
consumer watching that variable has joined the group, so the fan-out to clients is the channel
layer's job, never a loop over clients here.

Without a channel layer (``CHANNEL_LAYERS`` has no ``STATEKIT["CHANNEL_LAYER"]`` alias) this
does nothing. Publishing never fails a write: the write has committed already, so an
unreachable layer is logged (once per outage, logger ``statekit.live``), the change is held
until the layer answers again (:mod:`statekit.live.layer`) and the write returns normally.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.dispatch import receiver

from statekit.codec import browser_json
from statekit.conf import get_settings
from statekit.keys import Scope
from statekit.live.layer import publisher
from statekit.registry import declared
from statekit.signals import state_changed, variable_declared

logger = logging.getLogger("statekit.live")

#: The ``type`` of the channel-layer messages; consumers handle it in ``statekit_change``.
EVENT = "statekit.change"


def group_name(scope: str, owner: str | None, name: str) -> str:
    """The channel-layer group of one variable (and owner).

    Group names must be short ASCII, and session keys should not show up in Redis key names,
    so the parts are hashed (with ``STATEKIT["KEY_PREFIX"]``: another prefix, other state).
    """
    raw = "\0".join((get_settings()["KEY_PREFIX"], scope, owner or "", name))
    return f"statekit.{scope}.{hashlib.blake2b(raw.encode(), digest_size=20).hexdigest()}"


def channel_layer() -> BaseChannelLayer | None:
    """The configured channel layer, or None when live updates are off.

    The alias is looked up in ``CHANNEL_LAYERS`` first: Channels answers a missing one by
    raising and catching a KeyError, which would cost every public write that much."""
    alias = get_settings()["CHANNEL_LAYER"]
    if alias not in getattr(settings, "CHANNEL_LAYERS", {}):
        return None
    return get_channel_layer(alias)


async def current_json(variable: Any, owner: str | None) -> str:
    """The current value of ``variable`` (of ``owner``), as JSON for the browser."""
    value = await (variable.aget() if variable.scope == Scope.GLOBAL else variable.aget(owner))
    return browser_json(variable.plain(value))  # a schema's typed value in its stored form


# -- publishing ------------------------------------------------------------------------------


@receiver(variable_declared, dispatch_uid="statekit.live.watchable")
def _publish_changes_of(sender: Any, **kwargs: Any) -> None:
    """Connect :func:`publish` to the changes of a watchable variable, and of no other: a
    write to a server-only global then costs nothing here, not even the signal."""
    if sender.streamed:
        state_changed.connect(publish, sender=sender)


def publish(
    sender: Any, *, scope: str, name: str, owner: str | None, new: Any, **kwargs: Any
) -> None:
    """The ``state_changed`` receiver: hand the change to the channel layer.

    A sync receiver, so a plain sync write costs nothing extra when there is nothing to
    publish (Django runs async receivers of ``send()`` through ``async_to_sync``, a new event
    loop per write). ``asend()`` runs it in a worker thread.
    Connected per watchable variable by :func:`_publish_changes_of`.

    The message is made here, in the writer's thread; what runs in an event loop afterwards
    is the layer's ``group_send`` only. Reading the value there (``aget()``, i.e.
    ``sync_to_async``) would need the writer's thread, which is blocked waiting for that loop.
    """
    layer = channel_layer()
    if layer is None:
        return
    group = group_name(scope, owner, name)

    def message() -> dict[str, Any]:
        value = new
        if value is None:  # a deleted value (or a stored null) reads as what get() returns now
            value = sender.plain(sender.get(*([] if scope == Scope.GLOBAL else [owner])))
        return {"type": EVENT, "group": group, "value": browser_json(value)}

    _run(message, layer, group, f"{scope} state {name!r}")


def _run(
    message: Callable[[], dict[str, Any]], layer: BaseChannelLayer, group: str, what: str
) -> None:
    """Send ``message()`` to ``group``: ``message`` runs in this thread, and only when the
    change is going to be sent or held (not when nobody in this process watches)."""
    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Nobody in this process watches: skip the event loop. (A consumer joining after
            # this check reads the value after joining, and so sees this committed write.)
            if group not in getattr(layer, "groups", (group,)):
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                # Its queues belong to the consumers' loop: async_to_sync runs there when
                # called below sync_to_async (views and asend() under an ASGI server).
                async_to_sync(layer.group_send)(group, message())  # in memory: cannot fail
            else:
                task = loop.create_task(layer.group_send(group, message()))
                _pending.add(task)
                task.add_done_callback(_pending.discard)
        else:
            # A network layer works from any loop, and may fail: statekit.live.layer holds the
            # message while it is down.
            publisher().publish(layer, group, message())
    except Exception:
        logger.exception("Could not publish the change of %s to the channel layer.", what)


_pending: set[asyncio.Task[None]] = set()


for _variable in declared():  # those declared before this module was imported
    _publish_changes_of(_variable)
