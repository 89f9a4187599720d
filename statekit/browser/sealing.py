"""Sealing browser-state values: signed with django.core.signing, or encrypted with AES-GCM.

Both take the value's JSON text and give back a token for the browser to keep, and both verify
with SECRET_KEY and then each of SECRET_KEY_FALLBACKS, so keys can be rotated. The salt (for
signing) and the associated data (for encryption) name the state, so a token made for one
state is refused for another.

Encryption uses ``cryptography``'s AES-GCM (authenticated: an edited token does not decrypt)
with a 256-bit key derived from the secret by HKDF-SHA256; the key never leaves the server.
A token is base64url (no padding) of ``version (1 byte) | nonce (12) | ciphertext + tag``,
where the plaintext is ``written at, in ms (8 bytes, big-endian) | value JSON (UTF-8)``.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.utils.encoding import force_bytes

if TYPE_CHECKING:  # an optional dependency, imported when used
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
STAMP = struct.Struct(">Q")
#: Characters a token adds around the value: the signer's ":timestamp:signature".
SIGNED_OVERHEAD = 64


class Rejected(Exception):
    """A value from the browser that the server refuses.

    ``reason`` is "tampered", "malformed", "too_large" or "expired".
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def now_ms() -> int:
    return int(time.time() * 1000)


# -- signing -------------------------------------------------------------------------------


def _signer(name: str) -> signing.TimestampSigner:
    # Built per use: the signer reads SECRET_KEY and SECRET_KEY_FALLBACKS when created.
    return signing.TimestampSigner(salt=f"statekit.browser.{name}")


def sign(name: str, text: str) -> str:
    return _signer(name).sign(text)


def unsign(name: str, token: str, max_age: float | None) -> str:
    try:
        return _signer(name).unsign(
            token, max_age=None if max_age is None else timedelta(seconds=max_age)
        )
    except signing.SignatureExpired as exc:
        raise Rejected("expired", f"its signature is too old ({exc})") from None
    except signing.BadSignature:
        raise Rejected(
            "tampered",
            "its signature does not match: it was changed in the browser, or signed with a "
            "key that is no longer in SECRET_KEY or SECRET_KEY_FALLBACKS",
        ) from None


# -- encryption ----------------------------------------------------------------------------


def require_cryptography(name: str) -> None:
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        raise ImproperlyConfigured(
            f"BrowserState {name!r} is encrypted, which needs the 'cryptography' package: "
            "pip install cryptography."
        ) from None


@lru_cache(maxsize=8)
def _derive(secret: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(
        algorithm=SHA256(),
        length=32,
        salt=b"statekit.browser",
        info=b"statekit browser state encryption v1",
    )
    return AESGCM(hkdf.derive(secret))


def _ciphers() -> list[AESGCM]:
    """The AES-GCM ciphers of SECRET_KEY, then of each of SECRET_KEY_FALLBACKS."""
    if not settings.SECRET_KEY:
        raise ImproperlyConfigured("Encrypted BrowserState needs a non-empty SECRET_KEY.")
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [_derive(force_bytes(secret)) for secret in secrets]


def _aad(name: str) -> bytes:
    return f"statekit.browser:{name}".encode()


def encrypt(name: str, text: str, written_ms: int | None = None) -> str:
    """Encrypt the JSON ``text`` of state ``name``, stamped ``written_ms`` (default: now)."""
    stamp = now_ms() if written_ms is None else written_ms
    nonce = os.urandom(NONCE_BYTES)
    sealed = _ciphers()[0].encrypt(nonce, STAMP.pack(stamp) + text.encode(), _aad(name))
    return base64.urlsafe_b64encode(VERSION + nonce + sealed).rstrip(b"=").decode("ascii")


def encrypted_length(max_bytes: int) -> int:
    """The longest token :func:`encrypt` makes for a value of ``max_bytes``."""
    raw = len(VERSION) + NONCE_BYTES + STAMP.size + max_bytes + TAG_BYTES
    return -(-raw * 4 // 3)


def decrypt(name: str, token: str, max_age: float | None) -> str:
    """The JSON text inside ``token``; Rejected when it does not decrypt or is too old."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise Rejected("tampered", "it is not an encrypted token (bad base64)") from None
    if raw[:1] != VERSION or len(raw) < len(VERSION) + NONCE_BYTES + STAMP.size + TAG_BYTES:
        raise Rejected("tampered", "it is not an encrypted token (bad version or length)")
    from cryptography.exceptions import InvalidTag

    nonce, sealed = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
    for cipher in _ciphers():
        try:
            plain = cipher.decrypt(nonce, sealed, _aad(name))
            break
        except InvalidTag:
            continue
    else:
        raise Rejected(
            "tampered",
            "it does not decrypt: it was changed in the browser, made for another state, or "
            "encrypted with a key that is no longer in SECRET_KEY or SECRET_KEY_FALLBACKS",
        )
    (stamp,) = STAMP.unpack_from(plain)
    if max_age is not None and now_ms() - stamp > max_age * 1000:
        raise Rejected("expired", f"it was written {(now_ms() - stamp) / 1000:.0f} s ago")
    return plain[STAMP.size :].decode()
