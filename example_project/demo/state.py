"""The demo's state, declared once at module level like models."""

from statekit import GlobalState

visitors = GlobalState("visitors", default=0)
