"""The browser state the browser tests use, declared once at module level like models."""

from __future__ import annotations

from statekit import BrowserState

# The seed's example: a username and password the browser keeps across reloads and restarts.
creds = BrowserState("test.creds", default={"username": "", "password": ""})
note = BrowserState("test.note", default="")
falsy = BrowserState("test.falsy", default="fallback")
theme = BrowserState("test.theme", default="light")
badge = BrowserState("test.badge", default="none", signed=True)
secret = BrowserState("test.secret", default=None, encrypted=True)
fresh = BrowserState("test.fresh", default="expired", max_age=60)
small = BrowserState("test.small", default="", max_bytes=64)

STATES = {s.name: s for s in (creds, note, falsy, theme, badge, secret, fresh, small)}
