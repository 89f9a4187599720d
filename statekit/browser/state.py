"""Browser state: values the browser keeps in localStorage, under the server's rules.

``BrowserState`` declares such a value. statekit.js (``{% statekit_js %}``) keeps it in
localStorage under ``STATEKIT["BROWSER_PREFIX"]`` and sends it with same-origin requests, so
``state.get(request)`` reads what the page holds; ``state.set(request, value)`` writes it back
with the response (see :mod:`statekit.middleware`).

An *entry* is what the browser keeps and sends for one state, a JSON object:

- ``{"v": value, "t": ms}``, plain: the browser reads and writes it;
- ``{"s": token, "t": ms}``, ``signed=True``: the browser reads it, only the server writes it,
  and a token edited in the browser is refused;
- ``{"e": token, "t": ms}``, ``encrypted=True``: the browser sees ciphertext only.

``t`` is when the value was written (ms since the epoch). statekit.js drops a value older than
``max_age``; the server checks the age of signed and encrypted values by itself.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from statekit.browser import sealing
from statekit.browser.delivery import SET_HEADER, WRITES_ID, writes_url
from statekit.browser.refs import (
    HEADER,
    HEADER_BUDGET,
    MISSING_HEADER,
    REF_HEADER,
    REF_TTL,
    SET_REF_HEADER,
)
from statekit.browser.transport import FIELD, Entry, exchange
from statekit.codec import decode, dumps
from statekit.conf import get_settings
from statekit.exceptions import ValueTooLarge
from statekit.keys import BROWSER
from statekit.registry import declared, lookup
from statekit.signals import browser_state_rejected
from statekit.state.variable import Default, T, Variable, positive_seconds

logger = logging.getLogger("statekit.browser")


def get_browser_state(name: str) -> BrowserState[Any]:
    """The BrowserState declared as ``name``; ImproperlyConfigured if there is none."""
    state = lookup(BROWSER, name)
    if not isinstance(state, BrowserState):
        raise ImproperlyConfigured(
            f"No BrowserState named {name!r} is declared (is the module that declares it "
            "imported?)."
        )
    return state


class BrowserState(Variable[T]):
    """A value kept in the browser (localStorage), read and written through requests.

    ``signed=True``: only the server writes it; a value changed in the browser reads as the
    default (logged, and ``browser_state_rejected`` is sent). ``encrypted=True``: the same, and
    the browser sees ciphertext only. ``max_age`` (seconds or timedelta): an older value reads
    as the default. ``max_bytes``: the largest value, in bytes of UTF-8 JSON (default
    ``STATEKIT["BROWSER_MAX_BYTES"]``).

    ``get``/``set``/``delete`` take the view's request. They do no I/O, so they (and their
    ``a``-prefixed twins) are safe in async views.
    """

    scope = BROWSER

    def __init__(
        self,
        name: str,
        *,
        default: Default[T] = None,
        signed: bool = False,
        encrypted: bool = False,
        max_age: float | timedelta | None = None,
        max_bytes: int | None = None,
    ) -> None:
        if signed and encrypted:
            raise ImproperlyConfigured(
                f"BrowserState {name!r}: pass signed=True or encrypted=True, not both "
                "(encrypted values are authenticated already)."
            )
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0
        ):
            raise ImproperlyConfigured(
                f"max_bytes of BrowserState {name!r} must be a positive integer, not {max_bytes!r}."
            )
        if encrypted:
            sealing.require_cryptography(name)
        self.signed = bool(signed)
        self.encrypted = bool(encrypted)
        self.max_age = positive_seconds(max_age, f"max_age of BrowserState {name!r}")
        self._max_bytes = max_bytes
        super().__init__(name, default=default)

    def _signature(self) -> tuple[Any, ...]:
        return (*super()._signature(), self.signed, self.encrypted, self.max_age, self._max_bytes)

    def __repr__(self) -> str:
        default = self._factory or decode(self._default_text or "null")
        options = [f"{self.name!r}", f"default={default!r}"]
        options += [f"{k}=True" for k in ("signed", "encrypted") if getattr(self, k)]
        if self.max_age is not None:
            options.append(f"max_age={self.max_age:g}")
        if self._max_bytes is not None:
            options.append(f"max_bytes={self._max_bytes}")
        return f"BrowserState({', '.join(options)})"

    @property
    def max_bytes(self) -> int:
        return self._max_bytes or get_settings()["BROWSER_MAX_BYTES"]

    @property
    def wire_limit(self) -> int:
        """The most characters a sound entry of this state takes in a request."""
        # JSON's \\u escapes of non-ASCII take up to 3 times the UTF-8 size; tokens less.
        return 3 * self.max_bytes + 256

    def client_config(self) -> dict[str, Any]:
        """What statekit.js knows of this state. The default of an encrypted one stays here."""
        config: dict[str, Any] = {
            "signed": self.signed,
            "encrypted": self.encrypted,
            "maxAge": self.max_age,
            "maxBytes": self.max_bytes,
        }
        if not self.encrypted:
            config["default"] = json.loads(self._default_json())
        return config

    def on_change(self, receiver: Any) -> Any:
        raise ImproperlyConfigured(
            f"BrowserState {self.name!r} changes in the browser, which the server does not "
            "see: subscribe in the page with statekit.browser.subscribe(name, callback)."
        )

    # -- the request's view of the value -------------------------------------------------

    def get(self, request: Any) -> T:
        """This request's own write, else what the page sent (verified), else the default."""
        ex = exchange(request)
        if self.name not in ex.texts:
            sent = ex.writes if self.name in ex.writes else ex.received()
            entry = sent.get(self.name)
            ex.texts[self.name] = None if entry is None else self.verify(ex.request, entry)
        text = ex.texts[self.name]
        return self._read(text)

    def set(self, request: Any, value: T) -> None:
        """Write ``value``: it reaches the browser with the response."""
        text = dumps(value, self.name)
        size = len(text.encode())
        if size > self.max_bytes:
            raise ValueTooLarge(
                f"The value of BrowserState {self.name!r} is {size} bytes encoded, over its "
                f"limit of {self.max_bytes} bytes (max_bytes); nothing was written."
            )
        self._queue(request, self._seal(text), text)

    def delete(self, request: Any) -> None:
        """Remove the value from the browser: it reads as the default again."""
        self._queue(request, None, None)

    async def aget(self, request: Any) -> T:
        return self.get(request)

    async def aset(self, request: Any, value: T) -> None:
        self.set(request, value)

    async def adelete(self, request: Any) -> None:
        self.delete(request)

    def _queue(self, request: Any, entry: Entry, text: str | None) -> None:
        ex = exchange(request)
        if not ex.delivering:
            raise ImproperlyConfigured(
                f"BrowserState {self.name!r} cannot be written: add "
                "'statekit.middleware.StatekitMiddleware' to MIDDLEWARE."
            )
        ex.queue(self.name, entry)
        ex.texts[self.name] = text

    # -- entries -------------------------------------------------------------------------

    def _seal(self, text: str) -> dict[str, Any]:
        written = sealing.now_ms()
        if self.encrypted:
            return {"e": sealing.encrypt(self.name, text, written), "t": written}
        if self.signed:
            return {"s": sealing.sign(self.name, text), "t": written}
        return {"v": json.loads(text), "t": written}

    def verify(self, request: Any, entry: Any) -> str | None:
        """The JSON text of an entry, or None (the default) when it is refused."""
        try:
            return self._open(entry)
        except sealing.Rejected as exc:
            if exc.reason == "expired":
                logger.debug("BrowserState %r: %s; using the default.", self.name, exc)
                return None
            logger.warning(
                "BrowserState %r: the value from the browser is refused (%s): %s; using the "
                "default.",
                self.name,
                exc.reason,
                exc,
            )
            browser_state_rejected.send(
                sender=self.sender,
                request=request,
                name=self.name,
                reason=exc.reason,
                detail=str(exc),
            )
            return None

    def _open(self, entry: Any) -> str:
        """The JSON text of an entry the browser sent; raises sealing.Rejected."""
        if not isinstance(entry, dict):
            raise sealing.Rejected("malformed", f"it is a JSON {type(entry).__name__}")
        limit = self.max_bytes
        unsealed: str | None = None
        if self.encrypted:
            token = self._token(entry, "e", sealing.encrypted_length(limit))
            unsealed = sealing.decrypt(self.name, token, self.max_age)
        elif self.signed:
            token = self._token(entry, "s", limit + sealing.SIGNED_OVERHEAD)
            unsealed = sealing.unsign(self.name, token, self.max_age)
        elif "v" not in entry:
            raise sealing.Rejected("malformed", 'it has no "v"')
        try:
            value = decode(json.dumps(entry["v"]) if unsealed is None else unsealed)
            text = dumps(value, self.name)
            size = len(text.encode())
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError):
            raise sealing.Rejected("malformed", "it is not a value statekit can read") from None
        if size > limit:
            raise sealing.Rejected(
                "too_large", f"it is {size} bytes encoded, over the limit of {limit} bytes"
            )
        return text

    def _token(self, entry: dict[str, Any], field: str, longest: int) -> str:
        token = entry.get(field)
        if not isinstance(token, str):
            kind = "encrypted" if self.encrypted else "signed"
            raise sealing.Rejected("tampered", f"it is not {kind} by the server")
        if len(token) > longest:
            raise sealing.Rejected(
                "too_large", f"its token is {len(token)} characters, over {longest}"
            )
        return token


def browser_config(writes: dict[str, Entry]) -> dict[str, Any]:
    """The browser part of the configuration ``{% statekit_js %}`` gives statekit.js."""
    try:
        upload_url: str | None = reverse("statekit:browser-upload")
    except NoReverseMatch:  # statekit.urls not included: states over the budget are not sent
        upload_url = None
    return {
        "prefix": get_settings()["BROWSER_PREFIX"],
        "header": HEADER,
        "refHeader": REF_HEADER,
        "missingHeader": MISSING_HEADER,
        "budget": HEADER_BUDGET,
        "refTtl": REF_TTL,
        "uploadUrl": upload_url,
        "setHeader": SET_HEADER,
        "setRefHeader": SET_REF_HEADER,
        "writesUrl": writes_url(),
        "field": FIELD,
        "writesId": WRITES_ID,
        "states": {state.name: state.client_config() for state in declared(BROWSER)},
        "writes": writes,
    }
