"""The demo's state, declared once at module level like models."""

from statekit import GlobalState

# public: any page may watch it over the websocket (statekit.watch("visitors", ...)).
visitors = GlobalState("visitors", default=0, public=True)
