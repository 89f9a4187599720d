"""The backend contract every storage backend implements.

A backend stores encoded values (JSON text) under a :class:`StateKey`. It knows nothing of
defaults, owners or signals: ``statekit.state`` does that on top. Every write returns the
previous stored text so the caller can tell whether the content changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, NamedTuple

from asgiref.sync import sync_to_async

from statekit.codec import decode, encode
from statekit.exceptions import StateTypeError
from statekit.keys import StateKey, origin, owned_by

#: Given the stored text (``None`` when absent or expired), return the text to store.
Updater = Callable[[str | None], str]


class Expired(NamedTuple):
    """What a batch of :meth:`BaseBackend.clear_expired` deleted."""

    dropped: Counter[tuple[str, str]]  # values deleted unread: how many per (scope, name)
    popped: list[tuple[StateKey, str]]  # values deleted with their text


#: Given session keys, return those whose session still exists.
Alive = Callable[[set[str]], set[str]]


#: A read with a ttl extends the expiry to now + ttl only once it is short of that by more
#: than a tenth of the ttl, at most ``SLACK_MAX_SECONDS``: reads do not write each time.
SLACK_FRACTION = 10
SLACK_MAX_SECONDS = 60


def slack(ttl: float) -> float:
    """How far (seconds) an expiry may fall short of now + ``ttl`` before a read with that
    ``ttl`` extends it (every backend: the database's rows, Redis's index)."""
    return min(ttl / SLACK_FRACTION, SLACK_MAX_SECONDS)


class Entry(NamedTuple):
    """A stored value, as :meth:`BaseBackend.scan` finds it."""

    key: StateKey
    text: str
    expires_at: datetime | None
    expired: bool  # dead to readers (past its expiry, or buried), by the backend's clock
    updated_at: datetime | None = None  # None where the backend does not keep it (cache)


def matches(key: StateKey, scope: str | None, name: str | None, owner: str | None) -> bool:
    """Whether ``key`` passes the filters of :meth:`BaseBackend.scan`."""
    var_scope, var_name = origin(key)
    return (
        scope in (None, var_scope)
        and name in (None, var_name)
        and (not owner or owned_by(key.owner, owner))
    )


def add_to(name: str, text: str, amount: int | float | Decimal) -> str:
    """The encoded result of adding ``amount`` to the number stored as ``text``."""
    value = decode(text)
    if type(value) not in (int, float, Decimal) or type(amount) not in (int, float, Decimal):
        raise StateTypeError(
            f"incr() adds numbers, but {name!r} holds a {type(value).__name__} and the "
            f"amount is a {type(amount).__name__}.",
            name,
        )
    try:
        total = value + amount
    except (TypeError, ArithmeticError) as exc:  # Decimal + float, a float overflow
        raise StateTypeError(f"incr() on {name!r}: {exc}", name) from exc
    return encode(total, name)


def adding(key: StateKey, amount: int | float | Decimal, default: str) -> Updater:
    """The update that adds ``amount`` (the absent value counts as ``default``)."""
    return lambda old: add_to(key.name, default if old is None else old, amount)


class BaseBackend:
    """Subclasses provide the methods that raise NotImplementedError here.

    ``ttl`` is in seconds (a float) or ``None`` for no expiry; a write sets the expiry anew.
    ``uses_database`` / ``uses_cache`` tell the system checks which settings to verify.
    """

    uses_database: ClassVar[bool] = False
    uses_cache: ClassVar[bool] = False

    def get(self, key: StateKey, ttl: float | None = None) -> str | None:
        """The live text of ``key``; with ``ttl``, the read also extends its expiry."""
        raise NotImplementedError("subclasses of BaseBackend must provide a get() method")

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        """Store ``text``; return the previous text."""
        raise NotImplementedError("subclasses of BaseBackend must provide a set() method")

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        """Atomically replace the stored text by ``fn(old)``; return ``(old, new)``.

        ``fn`` may run more than once when another writer got there first.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide an update() method")

    def delete(self, key: StateKey) -> str | None:
        """Delete the value; return the previous text."""
        raise NotImplementedError("subclasses of BaseBackend must provide a delete() method")

    def expire(self, key: StateKey, ttl: float) -> None:
        """Let the value live at most ``ttl`` more seconds (a closed page's state)."""
        raise NotImplementedError("subclasses of BaseBackend must provide an expire() method")

    def move_owner(self, old: str, new: str) -> None:
        """Give session key ``new`` the state of session ``old`` and of its pages."""
        raise NotImplementedError("subclasses of BaseBackend must provide a move_owner() method")

    # -- cleanup: claims are atomic, so two cleanups never both get the same value ---------

    def clear_expired(self, batch_size: int, keep: Set[tuple[str, str]]) -> Iterator[Expired]:
        """Delete the expired values, batch by batch; yield what each batch deleted.

        A batch returns at most ``batch_size`` values (``popped``). Values of the variables
        not in ``keep`` (``(scope, name)``, those with an ``on_expire``) need not be read: a
        backend may delete them unread, in larger batches, and count them per variable
        (``dropped``). Buried values are always returned."""
        raise NotImplementedError("subclasses of BaseBackend must provide a clear_expired() method")

    def count_expired(self) -> int:
        raise NotImplementedError("subclasses of BaseBackend must provide a count_expired() method")

    def orphans(
        self, alive: Alive, dry_run: bool = False
    ) -> Iterator[Sequence[tuple[StateKey, str | None]]]:
        """Delete, batch by batch, the session and page values whose session has ended.

        ``alive`` gets a set of session keys and returns those whose session still exists.
        Yields the values each batch deleted (with ``dry_run``, would delete; text None).
        """
        raise NotImplementedError("subclasses of BaseBackend must provide an orphans() method")

    def after_write(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the write is durable (at once, unless transactional)."""
        callback()

    def incr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        """Atomically add ``amount`` (the absent value counts as ``default``)."""
        return self.update(key, adding(key, amount, default), ttl)

    async def aget(self, key: StateKey, ttl: float | None = None) -> str | None:
        return await sync_to_async(self.get)(key, ttl)

    async def aset(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        return await sync_to_async(self.set)(key, text, ttl)

    async def aupdate(
        self, key: StateKey, fn: Updater, ttl: float | None
    ) -> tuple[str | None, str]:
        return await sync_to_async(self.update)(key, fn, ttl)

    async def aincr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        return await sync_to_async(self.incr)(key, amount, default, ttl)

    async def adelete(self, key: StateKey) -> str | None:
        return await sync_to_async(self.delete)(key)

    async def aexpire(self, key: StateKey, ttl: float) -> None:
        await sync_to_async(self.expire)(key, ttl)

    async def amove_owner(self, old: str, new: str) -> None:
        await sync_to_async(self.move_owner)(old, new)

    # -- inspection (the admin and ``manage.py statekit``) ---------------------------------

    def scan(
        self,
        scope: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        *,
        expired: bool | None = False,
    ) -> Iterator[Entry]:
        """The stored values, batch by batch (memory stays bounded), in no set order.

        ``scope`` and ``name`` select a variable's values, buried ones included (see
        :func:`origin`); ``owner`` selects an owner and, for a session key, its pages too.
        ``expired``: ``False`` live values only, ``True`` dead ones only, ``None`` both.
        Reads never extend an expiry.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a scan() method")

    def entry(self, key: StateKey) -> Entry | None:
        """The stored value of ``key``, live or dead, as :meth:`scan` would find it."""
        scope, name = origin(key)
        found = self.scan(scope, name, key.owner or None, expired=None)
        return next((entry for entry in found if entry.key == key), None)

    def discard(self, key: StateKey) -> bool:
        """Remove the stored value of ``key``, live or dead, at once: no on_expire, no
        signal (``statekit.state`` sends those). Return whether there was one."""
        raise NotImplementedError("subclasses of BaseBackend must provide a discard() method")
