"""The demos' state, declared once at module level like models (statekit imports every app's
state.py at start-up, so servers, workers and commands all know these names).

The demo pages show these lines: demo/demos.py says which lines each page shows.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from datetime import timedelta

from django.utils import timezone

from statekit import BrowserState, GlobalState, PageState, SessionState, page_resource

logger = logging.getLogger("example_project.demo")

# 1. Visitor counter. public: any page may watch it (statekit.watch("visitors", ...)).
visitors = GlobalState("visitors", default=0, public=True)

# 2. Checkout cart: one per session, shared by the session's tabs.
cart = SessionState("cart", default=list)
cart_count = SessionState("cart_count", default=0)


@cart.on_change
def count_items(session_key, old, new):
    """Derived state, like Gradio's ``cart.change(lambda cart: len(cart), cart, cart_size)``:
    after each write that changed the cart, the count follows (new is None when deleted)."""
    cart_count.set(session_key, len(new or []))


# 3. An object that cannot be serialized (it holds a lock): a page resource, one per tab,
#    like the dictionary keyed by session_hash in Gradio's guide.
class Counter:
    def __init__(self):
        self.id = secrets.token_hex(4)
        self.created = timezone.now()
        self.count = 0
        self.lock = threading.Lock()  # a Lock cannot be pickled, deep-copied or stored
        logger.info("Counter %s created", self.id)

    def increment(self):
        with self.lock:
            self.count += 1
            return self.count

    def close(self):  # called by statekit, in its background thread
        logger.info("Counter %s closed with count %d", self.id, self.count)
        closed_counters.appendleft({"id": self.id, "count": self.count, "at": timezone.now()})


counters = page_resource(Counter, ttl=timedelta(minutes=10))
closed_counters = deque(maxlen=5)  # the last ones closed in this process, for the page

# 4. Saved username and password, in the browser's localStorage.
username = BrowserState("username", default="")  # plain: the page reads and writes it
password = BrowserState("password", default="", encrypted=True, max_age=timedelta(days=30))

# 5. Score tracker: every score ever submitted, shared by everyone.
scores = GlobalState("scores", default=list, public=True)

# 6. Chat history: one per page load (a tab), like Gradio's gr.State.
chat = PageState("chat", default=list, ttl=timedelta(hours=1))

# 7. A poll anyone can edit, live in every tab with htmx (no Channels: Server-Sent Events).
#    public: statekit/events/ streams them to any page.
poll_question = GlobalState("poll_question", default="Tea or coffee?", public=True)
poll_votes = GlobalState("poll_votes", default=dict, public=True)  # {option: votes}
