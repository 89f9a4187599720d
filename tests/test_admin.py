"""The admin of stored state, through the test client, on every backend (the ``backend``
fixture): rows with "db" and "cached_db", a scan of Redis with "cache"."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, override_settings
from django.urls import reverse

from statekit import GlobalState, PageState, SessionState
from statekit.backends import StateKey, get_backend
from statekit.keys import key_text
from statekit.models import StateValue
from tests.live_support import live_json

LIST = "/admin/statekit/statevalue/"
TOKEN = "0123456789abcdef0123456789abcdef"


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser() -> Client:
    return _client(User.objects.create_superuser("root", password="x"))


@pytest.fixture
def viewer() -> Client:
    """Staff with the view permission only."""
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_statevalue"))
    return _client(user)


def object_id(key: StateKey) -> str:
    """The pk of the value: of its row, or (a scan) its key as text."""
    backend = get_backend()
    if backend.uses_database:
        return str(StateValue.objects.using(backend.alias).get(**key._asdict()).pk)
    return key_text(key)


def change_url(key: StateKey) -> str:
    return reverse("admin:statekit_statevalue_change", args=(quote(object_id(key)),))


def listed(response) -> set[tuple[str, str, str]]:
    """The (scope, owner, name) of the values a changelist shows."""
    assert response.status_code == 200
    return {(obj.scope, obj.owner, obj.name) for obj in response.context["cl"].result_list}


def test_lists_searches_and_filters_values_with_their_users(backend, name, superuser):
    alice = User.objects.create_user("alice")
    session = SessionStore()
    session[SESSION_KEY] = str(alice.pk)
    session.save()
    key = session.session_key
    GlobalState(name + "g", default=0).set(3)
    cart = SessionState(name + "s", ttl=600)
    cart.set(key, {"cart": [1]})
    cart.set("anonymous", "x" * 50)
    PageState(name + "p").set(f"{key}.{TOKEN}", "hello")
    everything = {
        ("global", "", name + "g"),
        ("session", key, name + "s"),
        ("session", "anonymous", name + "s"),
        ("page", f"{key}.{TOKEN}", name + "p"),
    }
    response = superuser.get(LIST)
    assert listed(response) == everything
    html = response.content.decode()
    assert "alice" in html and key in html and ">52<" in html  # the size in bytes
    assert listed(superuser.get(LIST, {"q": name + "p"})) == {
        ("page", f"{key}.{TOKEN}", name + "p")
    }
    assert listed(superuser.get(LIST, {"q": "anonym"})) == {("session", "anonymous", name + "s")}
    assert {s for s, _, _ in listed(superuser.get(LIST, {"scope__exact": "session"}))} == {
        "session"
    }
    by_variable = listed(superuser.get(LIST, {"variable": f"session:{name}s"}))
    assert by_variable == {("session", key, name + "s"), ("session", "anonymous", name + "s")}
    assert listed(superuser.get(LIST, {"status": "live"})) == everything
    assert listed(superuser.get(LIST, {"status": "expired"})) == set()

    page = superuser.get(change_url(StateKey("session", key, name + "s")))
    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html and "&quot;cart&quot;: [\n    1\n  ]" in html  # pretty-printed
    assert 'name="value"' not in html  # session state is read-only


def test_superuser_edits_a_global_value_through_statekit(backend, name, superuser, state_changes):
    counter = GlobalState(name, default=0, public=True)
    counter.set({"a": 1})
    key = StateKey("global", "", name)
    url = change_url(key)
    page = superuser.get(url)
    assert page.status_code == 200
    assert "&quot;a&quot;: 1" in page.content.decode() and 'name="value"' in page.content.decode()

    new = '{\n "a": 2,\n "price": {"__sk__": "decimal", "v": "1.50"}\n}'
    response, live = live_json(
        counter, lambda: superuser.post(url, {"value": new, "_save": "Save"})
    )
    assert response.status_code == 302
    assert counter.get() == {"a": 2, "price": Decimal("1.50")}
    assert state_changes[-1] == ("global", name, None, {"a": 2, "price": Decimal("1.50")})
    assert json.loads(live) == {"a": 2, "price": "1.50"}  # what a live page gets
    entry = LogEntry.objects.get(action_flag=CHANGE)
    assert entry.user.username == "root" and entry.object_repr == f"global:{name}"
    assert "value" in entry.get_change_message().lower()

    # The same content, formatted otherwise: no change, no signal.
    count = len(state_changes)
    superuser.post(url, {"value": '{"a":2,"price":{"__sk__":"decimal","v":"1.50"}}'})
    assert len(state_changes) == count


def test_invalid_and_oversized_values_are_refused(backend, name, superuser, state_changes):
    counter = GlobalState(name, default=0)
    counter.set(1)
    url = change_url(StateKey("global", "", name))
    for bad, message in [
        ("{bad", "not valid JSON"),
        ("NaN", "JSON cannot store"),
        ('{"__sk__": "uuid", "v": "nope"}', "not valid JSON"),
    ]:
        response = superuser.post(url, {"value": bad})
        assert response.status_code == 200 and message in response.content.decode()
    with override_settings(STATEKIT={**settings.STATEKIT, "MAX_VALUE_BYTES": 8}):
        response = superuser.post(url, {"value": '"' + "x" * 20 + '"'})
    assert response.status_code == 200 and "over the limit" in response.content.decode()
    assert counter.get() == 1 and state_changes == [("global", name, None, 1)]
    assert not LogEntry.objects.exists()


def test_actions_expire_purge_and_delete(backend, name, superuser, state_changes):
    ended = []
    cart = SessionState(name, default=0, ttl=600, on_expire=ended.append)
    sessions = []
    for _ in range(3):
        session = SessionStore()
        session.create()
        sessions.append(session.session_key)
    for i, key in enumerate(sessions):
        cart.set(key, i + 1)
    one, two, three = (StateKey("session", key, name) for key in sessions)
    counter = GlobalState(name, default=0)
    counter.set(9)

    response = superuser.post(
        LIST,
        {
            "action": "expire_selected",
            "index": "0",
            "_selected_action": [object_id(one), object_id(StateKey("global", "", name))],
        },
    )
    assert response.status_code == 302
    time.sleep(0.01)  # Redis: "now" is 1 ms ahead
    assert cart.get(sessions[0]) == 0 and counter.get() == 9  # global state never expires
    assert listed(superuser.get(LIST, {"status": "expired"})) == {one}
    assert LogEntry.objects.filter(action_flag=CHANGE, object_repr__contains=name).count() == 1

    response = superuser.post(
        LIST, {"action": "purge_expired", "index": "0", "_selected_action": [object_id(one)]}
    )
    assert response.status_code == 302 and ended == [1]
    assert listed(superuser.get(LIST, {"status": "expired"})) == set()

    selected = [object_id(two), object_id(three)]
    confirm = superuser.post(
        LIST, {"action": "delete_selected", "index": "0", "_selected_action": selected}
    )
    assert confirm.status_code == 200 and cart.get(sessions[1]) == 2  # asks first
    response = superuser.post(
        LIST, {"action": "delete_selected", "post": "yes", "_selected_action": selected}
    )
    assert response.status_code == 302
    assert cart.get(sessions[1]) == 0 and cart.get(sessions[2]) == 0
    assert {(scope, owner, new) for scope, _, owner, new in state_changes[-2:]} == {
        ("session", sessions[1], None),
        ("session", sessions[2], None),
    }
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 2
    assert listed(superuser.get(LIST)) == {("global", "", name)}


def test_delete_one_value_from_its_page(backend, name, superuser, state_changes):
    counter = GlobalState(name, default=0)
    counter.set(5)
    key = StateKey("global", "", name)
    url = reverse("admin:statekit_statevalue_delete", args=(quote(object_id(key)),))
    assert superuser.get(url).status_code == 200
    assert superuser.post(url, {"post": "yes"}).status_code == 302
    assert counter.get() == 0 and state_changes[-1] == ("global", name, None, None)
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == f"global:{name}"


def test_view_permission_only_reads(backend, name, viewer, state_changes):
    counter = GlobalState(name, default=0)
    counter.set(1)
    key = StateKey("global", "", name)
    assert listed(viewer.get(LIST)) == {("global", "", name)}
    page = viewer.get(change_url(key))
    assert page.status_code == 200 and 'name="value"' not in page.content.decode()
    assert viewer.post(change_url(key), {"value": "2"}).status_code == 403
    selected = [object_id(key)]
    for action in ("expire_selected", "delete_selected", "purge_expired"):
        # Not offered on the rows' changelist; refused (403) on the scan's.
        viewer.post(
            LIST, {"action": action, "index": "0", "post": "yes", "_selected_action": selected}
        )
    delete = reverse("admin:statekit_statevalue_delete", args=(quote(object_id(key)),))
    assert viewer.post(delete, {"post": "yes"}).status_code == 403
    assert counter.get() == 1 and state_changes == [("global", name, None, 1)]
    assert not LogEntry.objects.exists()


def test_staff_without_permissions_is_refused(backend, name):
    GlobalState(name, default=0).set(1)
    key = StateKey("global", "", name)
    client = _client(User.objects.create_user("nobody", password="x", is_staff=True))
    assert client.get(LIST).status_code == 403
    assert client.get(change_url(key)).status_code == 403
    assert client.post(change_url(key), {"value": "2"}).status_code == 403
    assert client.post(LIST, {"action": "delete_selected", "post": "yes"}).status_code == 403
    assert GlobalState(name, default=0).get() == 1


def test_values_of_undeclared_variables_are_read_only_but_deletable(backend, name, superuser):
    key = StateKey("global", "", name + "-gone")
    get_backend().set(key, '{"left": "behind"}', None)  # declared once, no longer
    page = superuser.get(change_url(key))
    assert page.status_code == 200 and 'name="value"' not in page.content.decode()
    assert superuser.post(change_url(key), {"value": "1"}).status_code == 403
    selected = [object_id(key)]
    superuser.post(LIST, {"action": "delete_selected", "post": "yes", "_selected_action": selected})
    assert get_backend().get(key) is None


def test_pages_of_values(backend, name, superuser, monkeypatch):
    from django.contrib import admin

    monkeypatch.setattr(admin.site._registry[StateValue], "list_per_page", 3)
    cart = SessionState(name)
    for i in range(7):
        cart.set(f"s{i}", i)
    seen = set()
    for page in (1, 2, 3):
        rows = listed(superuser.get(LIST, {"p": page}))
        assert len(rows) == (3 if page < 3 else 1)
        seen |= rows
    assert seen == {("session", f"s{i}", name) for i in range(7)}


@pytest.mark.parametrize(
    "bad, message",
    [
        ('"\\ud800"', "lone surrogate"),
        ("[" * 20000 + "]" * 20000, "nested over"),
        ('{"__sk__": "decimal", "v": "sNaN"}', "sNaN"),
        ("1" * 5000, "not valid JSON"),
        ('{"__sk__": "date", "v": "2099-13-45"}', "month must be"),
    ],
    ids=["surrogate", "deep", "decimal-snan", "huge-int", "bad-date"],
)
def test_hostile_values_get_a_form_error_and_write_nothing(
    backend, name, superuser, state_changes, bad, message
):
    counter = GlobalState(name, default=0)
    counter.set(1)
    response = superuser.post(change_url(StateKey("global", "", name)), {"value": bad})
    assert response.status_code == 200 and message in response.content.decode()
    assert counter.get() == 1 and state_changes == [("global", name, None, 1)]
    assert not LogEntry.objects.exists()


@override_settings(TIME_ZONE="Pacific/Kiritimati")  # UTC+14: datetime.max is past its end
def test_an_odd_stored_expiry_is_listed_and_shown(backend, name, superuser):
    from tests.test_hostile_input import _odd_expiry

    SessionState(name, default=list, ttl=60).set("s1", [1])
    key = StateKey("session", "s1", name)
    _odd_expiry(backend, key)
    assert listed(superuser.get(LIST)) == {("session", "s1", name)}
    page = superuser.get(change_url(key))
    assert page.status_code == 200 and "9999-12-31" in page.content.decode()
