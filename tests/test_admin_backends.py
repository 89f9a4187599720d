"""One admin whatever keeps the values: each test body runs on "db" (rows of a table) and on
"cache" (a scan of a real Redis) and expects the same pages, columns, filters, search,
actions, views and errors of both."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from statekit import GlobalState, PageState, SessionState
from statekit.backends import StateKey
from statekit.models import StateValue
from tests.conftest import BACKENDS
from tests.test_admin import LIST, change_url, listed, object_id

pytestmark = pytest.mark.parametrize("backend", [BACKENDS[0], BACKENDS[2]], indirect=True)

COLUMNS = ["name", "scope", "owner_display", "user", "size", "updated", "expires", "value_preview"]
TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


def stored(name: str) -> dict[str, StateKey]:
    GlobalState(name + "g", default=0).set(3)
    cart = SessionState(name + "s", default=list, ttl=600)
    cart.set("alpha", [1])
    cart.set("beta", [2, 2])
    PageState(name + "p").set(f"alpha.{TOKEN}", "hi")
    return {
        "global": StateKey("global", "", name + "g"),
        "alpha": StateKey("session", "alpha", name + "s"),
        "beta": StateKey("session", "beta", name + "s"),
        "page": StateKey("page", f"alpha.{TOKEN}", name + "p"),
    }


def filters(response) -> dict[str, list[str]]:
    cl = response.context["cl"]
    return {spec.title: [c["display"] for c in spec.choices(cl)] for spec in cl.filter_specs}


def test_the_list_has_the_same_columns_filters_and_actions(backend, name, root):
    stored(name)
    response = root.get(LIST)
    html = response.content.decode()
    assert re.findall(r'<th scope="col" class="[^"]*column-(\w+)', html) == COLUMNS
    shown = filters(response)
    assert list(shown) == ["scope", "variable", "status"]
    assert shown["scope"] == ["All", "global", "session", "page"]
    assert shown["status"] == ["All", "live", "expired (awaiting cleanup)"]
    assert {f"{name}g (global)", f"{name}s (session)", f"{name}p (page)"} <= set(shown["variable"])
    actions = [value for value, _ in response.context["action_form"].fields["action"].choices]
    assert actions == ["", "delete_selected", "expire_selected", "purge_expired"]
    assert '<td class="field-size">3</td>' in html  # [1]: its size in bytes, as stored


def test_filters_and_search_select_the_same_values(backend, name, root):
    keys = stored(name)

    def shown(**params: str) -> set[StateKey]:
        return {StateKey(*found) for found in listed(root.get(LIST, params))}

    assert shown() == set(keys.values())
    assert shown(scope__exact="session") == {keys["alpha"], keys["beta"]}
    assert shown(variable=f"page:{name}p") == {keys["page"]}
    assert shown(scope__exact="global", variable=f"page:{name}p") == set()  # both apply
    assert shown(q="ALPHA") == {keys["alpha"], keys["page"]}  # owners, case-insensitive
    assert shown(q=f"{name}g") == {keys["global"]}
    assert shown(q="alpha", variable=f"session:{name}s") == {keys["alpha"]}
    assert shown(status="expired") == set()
    for bad in ({"scope__exact": "browser"}, {"variable": "nope:x"}, {"size": "3"}):
        response = root.get(LIST, bad)
        assert response.status_code == 302 and response["Location"].endswith("?e=1"), bad


def test_pages_link_to_the_next_and_back(backend, name, root, monkeypatch):
    monkeypatch.setattr(admin.site._registry[StateValue], "list_per_page", 2)
    cart = SessionState(name)
    for i in range(5):
        cart.set(f"s{i}", i)
    first = root.get(LIST, {"variable": f"session:{name}"})
    assert len(listed(first)) == 2 and "p=2" in first.content.decode()
    last = root.get(LIST, {"variable": f"session:{name}", "p": "3"})
    assert len(listed(last)) == 1 and "p=2" in last.content.decode()


def test_change_history_and_delete_pages(backend, name, root):
    keys = stored(name)
    session = root.get(change_url(keys["alpha"]))
    assert session.status_code == 200
    fields = session.context["adminform"].fieldsets[0][1]["fields"]
    assert "pretty_value" in fields and "value" not in fields  # session state: read-only
    labels = [s.lower() for s in re.findall(r"<label>(\w+):</label>", session.content.decode())]
    assert labels == ["name", "scope", "owner", "user", "bytes", "updated", "expires", "value"]

    url = change_url(keys["global"])
    assert "value" in root.get(url).context["adminform"].fieldsets[0][1]["fields"]
    assert root.post(url, {"value": "41"}).status_code == 302
    assert GlobalState(name + "g", default=0).get() == 41
    history = root.get(url.replace("/change/", "/history/"))
    assert [e.get_change_message() for e in history.context["action_list"]] == ["Changed value."]
    assert LogEntry.objects.get(action_flag=CHANGE).object_id == object_id(keys["global"])

    delete = reverse("admin:statekit_statevalue_delete", args=(quote(object_id(keys["beta"])),))
    confirm = root.get(delete)
    assert confirm.status_code == 200 and f"{name}s (beta)" in confirm.content.decode()
    assert root.post(delete, {"post": "yes"}).status_code == 302
    assert SessionState(name + "s", default=list, ttl=600).get("beta") == []


@pytest.mark.parametrize("missing", ["global::nothing", "not a key", "1", "session:a:b:c"])
def test_a_value_that_is_not_there(backend, name, root, missing):
    """Gone, never there, or not a key of this backend: a message and the admin's index."""
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:statekit_statevalue_{view}", args=(quote(missing),))
        response = root.get(url, follow=True)
        assert response.status_code == 200, (view, missing)
        assert "doesn\u2019t exist" in response.content.decode(), (view, missing)
