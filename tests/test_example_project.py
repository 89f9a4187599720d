"""The example project through Django's test client: the index, the visitor counter, the code
each demo page shows, the server side of the demos, and the settings it runs on. The demos are
driven in Chromium in tests/test_demos.py; the README's demo command in test_demo_command.py.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from example_project.demo import views
from example_project.demo.demos import APP, DEMOS, excerpt
from example_project.demo.state import cart, cart_count, poll_question, poll_votes, scores

ROOT = Path(__file__).resolve().parent.parent

#: The line that does the work, for each demo: its page must show it.
KEY_LINES = {
    "visitors": "visitors.incr()",
    "cart": "@cart.on_change",
    "counter": "page_resource(Counter",
    "credentials": "encrypted=True",
    "scores": "scores.update(lambda scores: [*scores, score])",
    "chat": "chat.update(request, lambda history: [*history, message])",
    "poll": "events_view(render=poll_html)",
}


def page_id(html: str) -> str:
    """The page id that {% statekit_js %} gave a rendered page."""
    config = re.search(r'<script id="statekit-config" type="application/json">(.*?)</script>', html)
    assert config, html
    return json.loads(config.group(1))["page"]["id"]


@pytest.mark.django_db
def test_each_page_load_counts_a_visitor(client):
    counts = []
    for _ in range(3):
        response = client.get("/visitors/")
        assert response.status_code == 200
        counts.append(int(re.search(r'id="visitors">(\d+)<', response.text).group(1)))
    assert counts[1] == counts[0] + 1 and counts[2] == counts[1] + 1


@pytest.mark.django_db
def test_the_index_links_the_seven_demos(client):
    html = client.get("/").text
    assert len(DEMOS) == 7
    for demo in DEMOS.values():
        assert f'<a href="{reverse(demo.url_name)}">{escape(demo.title)}</a>' in html


@pytest.mark.django_db
@pytest.mark.parametrize("demo", DEMOS.values(), ids=list(DEMOS))
def test_each_demo_says_what_it_shows_and_shows_the_code_that_does_it(client, demo):
    html = client.get(reverse(demo.url_name)).text
    assert f"<h1>{escape(demo.title)}</h1>" in html
    assert escape(demo.feature) in html
    for path, source in demo.code:
        assert f"<h3>{path}</h3>" in html and f"<pre><code>{escape(source)}</code></pre>" in html
    assert KEY_LINES[demo.name] in "\n".join(source for _, source in demo.code)


def test_the_code_shown_is_read_from_the_files_that_run():
    assert excerpt("views.py", ("checkout",)) == inspect.getsource(views.checkout).rstrip()
    assert excerpt("static/demo/cart.js", ()) == (APP / "static/demo/cart.js").read_text().strip()
    shown = excerpt("state.py", ("cart", "cart_count", "count_items"))
    assert shown.startswith("# 2. Checkout cart")  # the comment above it
    assert "@cart.on_change\ndef count_items(" in shown  # with its decorator
    with pytest.raises(LookupError, match="no_such_name"):
        excerpt("state.py", ("cart", "no_such_name"))


@pytest.mark.django_db(transaction=True)  # on_change runs once the write is committed
def test_the_cart_count_is_kept_by_on_change(client):
    response = client.post("/cart/", {"items": ["Milk", "Water", "Caviar"]})  # Caviar: unknown
    assert response.status_code == 302
    key = client.session.session_key
    assert cart.get(key) == ["Milk", "Water"] and cart_count.get(key) == 2
    client.post("/cart/", {"items": ["Milk"]})
    assert cart_count.get(key) == 3
    assert re.search(r'id="cart-count">3<', client.get("/cart/").text)
    client.post("/cart/", {"empty": "1"})
    assert cart.get(key) == [] and cart_count.get(key) == 0


@pytest.mark.django_db
def test_the_score_tracker_keeps_every_score_and_shows_the_top_3(client):
    scores.delete()
    for score in (5, 50, 20, 30):
        assert client.post("/scores/", {"score": score}).status_code == 302
    assert scores.get() == [5, 50, 20, 30]
    html = client.get("/scores/").text
    assert '<ol id="top"><li>50</li><li>30</li><li>20</li></ol>' in html
    invalid = client.post("/scores/", {"score": "many"})
    assert invalid.status_code == 200 and "Enter a whole number." in invalid.text
    assert scores.get() == [5, 50, 20, 30]


@pytest.mark.django_db
def test_the_chat_belongs_to_the_page_that_sends_it(client):
    assert client.post("/chat/say/", {"message": "hi"}).status_code == 400  # no page id
    first, second = page_id(client.get("/chat/").text), page_id(client.get("/chat/").text)

    def say(page: str, message: str) -> dict:
        return client.post("/chat/say/", {"message": message}, headers={"X-Statekit-Page": page})

    assert say(first, "hi").json() == {"current": "hi", "previous": []}
    assert say(first, "there").json() == {"current": "there", "previous": ["hi"]}
    assert say(second, "yo").json() == {"current": "yo", "previous": []}
    assert say(first, "").status_code == 400


@pytest.mark.django_db
def test_the_poll_counts_votes_and_renders_what_htmx_swaps_in(client):
    poll_votes.delete()
    for option in ("Tea", "Coffee", "Tea", "<b>Cocoa</b>", *(f"option {i}" for i in range(6))):
        assert client.post("/poll/vote/", {"option": option}).status_code == 204
    votes = poll_votes.get()  # eight options at most: "option 5" was not counted
    assert votes == {"Tea": 2, "Coffee": 1, "<b>Cocoa</b>": 1} | {
        f"option {i}": 1 for i in range(5)
    }
    assert client.post("/poll/vote/", {"option": "Coffee"}).status_code == 204
    assert client.post("/poll/vote/", {"option": ""}).status_code == 400
    fragment = views.poll_html(poll_votes, poll_votes.get())
    options = re.findall(
        r'<span class="option">(.*?)</span> <strong class="count">(\d+)<', fragment
    )
    assert options[:3] == [("Coffee", "2"), ("Tea", "2"), ("&lt;b&gt;Cocoa&lt;/b&gt;", "1")]
    assert 'name="option" value="&lt;b&gt;Cocoa&lt;/b&gt;"' in fragment

    assert client.post("/poll/ask/", {"question": "<i>Why?</i>"}).status_code == 204
    assert client.post("/poll/ask/", {"question": "?" * 121}).status_code == 400
    assert views.poll_html(poll_question, poll_question.get()) == "&lt;i&gt;Why?&lt;/i&gt;"
    page = client.get("/poll/").text
    assert '<h2 id="question" sse-swap="global:poll_question">&lt;i&gt;Why?&lt;/i&gt;</h2>' in page
    assert fragment in page  # the page starts with what the stream sends


@pytest.mark.django_db
def test_the_password_reaches_the_browser_encrypted(client):
    response = client.post("/credentials/generate/", headers={"X-Statekit-Browser": "{}"})
    generated = response.json()
    writes = json.loads(response["X-Statekit-Browser-Set"])
    assert writes["username"]["v"] == generated["username"]  # plain
    assert set(writes["password"]) == {"e", "t"}  # ciphertext only
    assert generated["password"] not in response["X-Statekit-Browser-Set"]
    sent = {"X-Statekit-Browser": json.dumps(writes)}  # what statekit.js sends back
    assert client.get("/credentials/password/", headers=sent).json() == {
        "password": generated["password"]
    }
    assert client.get("/credentials/password/").json() == {"password": ""}  # nothing sent

    saved = client.post("/credentials/password/save/", {"password": " typed "}, headers=sent)
    entry = json.loads(saved["X-Statekit-Browser-Set"])["password"]
    assert set(entry) == {"e", "t"} and "typed" not in saved["X-Statekit-Browser-Set"]
    sent = {"X-Statekit-Browser": json.dumps({"password": entry})}
    assert client.get("/credentials/password/", headers=sent).json() == {"password": " typed "}
    too_long = client.post("/credentials/password/save/", {"password": "x" * 201})
    assert too_long.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/cart/",
        "/scores/",
        "/chat/say/",
        "/counter/load/",
        "/counter/end/",
        "/credentials/generate/",
        "/poll/vote/",
        "/poll/ask/",
    ],
)
def test_posts_need_the_csrf_token(url):
    assert Client(enforce_csrf_checks=True).post(url).status_code == 403


def settings_with(**env: str) -> dict:
    """Some settings of example_project.settings in a new process with ``env`` set."""
    code = """if True:
        import django, json
        django.setup()
        from django.conf import settings
        db = settings.DATABASES["default"]
        print(json.dumps({
            "engine": db["ENGINE"], "name": str(db["NAME"]),
            "backend": settings.STATEKIT["BACKEND"],
            "cache": settings.CACHES["default"]["BACKEND"],
            "layers": getattr(settings, "CHANNEL_LAYERS", {}),
        }))
    """
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_with_no_environment_it_runs_on_sqlite_with_no_channel_layer(tmp_path):
    assert settings_with() == {
        "engine": "django.db.backends.sqlite3",
        "name": str(ROOT / "db.sqlite3"),
        "backend": "db",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "layers": {},  # live state needs none: it rides the backend's change streams
    }
    assert settings_with(SQLITE_PATH=str(tmp_path / "demo.sqlite3"))["name"] == str(
        tmp_path / "demo.sqlite3"
    )


def test_with_database_url_and_redis_url_it_runs_on_postgresql_and_redis():
    assert settings_with(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/demo", REDIS_URL="redis://127.0.0.1/3"
    ) == {
        "engine": "django.db.backends.postgresql",
        "name": "demo",
        "backend": "cached_db",
        "cache": "django_redis.cache.RedisCache",
        "layers": {},
    }
