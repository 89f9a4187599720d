"""The seven demos: what each one shows, and which lines of code do it.

A demo page shows its code read from the files that run (``Demo.code``), never a copy:
top-level definitions of a Python module picked by name (with the comments just above them
and their decorators), or a whole static file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

APP = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Demo:
    name: str  # the URL name, in the "demo" namespace
    title: str
    feature: str
    summary: str
    sources: tuple[tuple[str, tuple[str, ...]], ...]  # (file in this app, names; () = all)

    @property
    def url_name(self) -> str:
        return f"demo:{self.name}"

    @property
    def code(self) -> list[tuple[str, str]]:
        """(file, source) of each excerpt this demo shows."""
        return [(f"demo/{path}", excerpt(path, names)) for path, names in self.sources]


DEMOS = {
    demo.name: demo
    for demo in [
        Demo(
            "visitors",
            "Visitor counter",
            "GlobalState(public=True) and statekit.watch",
            "Global state shared by every user and every server process, counted on each page "
            "load and live in every open tab.",
            (
                ("state.py", ("visitors",)),
                ("views.py", ("visitor_counter",)),
                ("static/demo/visitors.js", ()),
            ),
        ),
        Demo(
            "cart",
            "Checkout cart",
            'SessionState, on_change and statekit.watch(scope: "session")',
            "A cart per session, shared by the session's tabs. The item count is derived from "
            "the cart by an on_change receiver, and both are live in every tab of the session.",
            (
                ("state.py", ("cart", "cart_count", "count_items")),
                ("views.py", ("ITEMS", "checkout")),
                ("static/demo/cart.js", ()),
            ),
        ),
        Demo(
            "counter",
            "An object that cannot be serialized",
            "page_resource",
            "A counter guarded by a threading.Lock, one per tab in this process, as in "
            "Gradio's guide: built when the page loads, closed when that tab or the session "
            "closes.",
            (
                ("state.py", ("Counter", "counters", "closed_counters")),
                (
                    "views.py",
                    (
                        "counter_load",
                        "counter_increment",
                        "end_session",
                        "closed_log",
                        "counter_json",
                    ),
                ),
                ("static/demo/counter.js", ()),
            ),
        ),
        Demo(
            "credentials",
            "Saved username and password",
            "BrowserState, plain and encrypted=True",
            "Kept in this browser's localStorage: they survive a refresh and a browser "
            "restart. The password is encrypted by the server; the browser holds ciphertext.",
            (
                ("state.py", ("username", "password")),
                ("views.py", ("PasswordForm", "load_password", "save_password", "generate")),
                ("static/demo/credentials.js", ()),
            ),
        ),
        Demo(
            "scores",
            "Score tracker",
            "GlobalState.update (atomic) and statekit.watch",
            "A list of every score submitted, shared by everyone. Everyone sees the top 3 "
            "live, and concurrent submissions, from any number of processes, lose no score.",
            (
                ("state.py", ("scores",)),
                ("views.py", ("ScoreForm", "score_tracker")),
                ("static/demo/scores.js", ()),
            ),
        ),
        Demo(
            "chat",
            "Chat history per tab",
            "PageState",
            "A history per page load, like Gradio's gr.State: a refresh starts afresh, and two "
            "tabs keep separate histories.",
            (
                ("state.py", ("chat",)),
                ("views.py", ("MessageForm", "chat_say")),
                ("static/demo/chat.js", ()),
            ),
        ),
        Demo(
            "poll",
            "Live poll with htmx",
            "events_view(render=...) and htmx's SSE extension, without Channels",
            "A question and its votes, shared by everyone. Anyone adds an option, votes or asks "
            "another question, and every open page shows it at once: the server renders the "
            "HTML, htmx swaps it in, over Server-Sent Events.",
            (
                ("state.py", ("poll_question", "poll_votes")),
                ("views.py", ("poll_vote", "counted", "poll_rows", "poll_html", "poll_events")),
                ("templates/demo/poll.html", ()),
                ("templates/demo/poll_results.html", ()),
            ),
        ),
    ]
}


@cache
def excerpt(path: str, names: tuple[str, ...]) -> str:
    """The source of the top-level definitions ``names`` in ``path`` (a whole file if none),
    in file order, with their decorators and the comment lines right above them."""
    text = (APP / path).read_text()
    if not names:
        return text.strip()
    lines = text.splitlines()
    spans: list[list[int]] = []
    found: set[str] = set()
    for node in ast.parse(text).body:
        defined = _names(node) & set(names)
        if not defined:
            continue
        found |= defined
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        if spans and not "".join(lines[spans[-1][1] : start - 1]).strip():
            spans[-1][1] = node.end_lineno or start  # only blank lines between: one excerpt
        else:
            spans.append([start, node.end_lineno or start])
    if found != set(names):
        raise LookupError(f"demo/{path} defines no {sorted(set(names) - found)}")
    return "\n\n\n".join("\n".join(lines[start - 1 : end]) for start, end in spans)


def _names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else []
    if isinstance(node, ast.AnnAssign):
        targets = [node.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}
