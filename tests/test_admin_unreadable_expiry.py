"""An expiry set by hand on PostgreSQL that Python cannot read ('infinity', '-infinity', a
year past 9999 or before 1): the admin lists, shows and acts on the row, never answers 500."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.urls import reverse

from statekit import GlobalState, SessionState
from statekit.models import StateValue
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)  # db-postgres

LIST = "/admin/statekit/statevalue/"
STORED = ["infinity", "-infinity", "20000-01-01 00:00:00+00", "4000-01-01 00:00:00+00 BC"]


@pytest.fixture
def admin() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    return client


def rows(backend, name: str) -> list[StateValue]:
    """One session value per unreadable expiry, stored with it by hand."""
    var = SessionState(name, ttl=600)
    for n, _ in enumerate(STORED):
        var.set(f"s{n}", n)
    with connections[backend.alias].cursor() as cursor:
        for n, stored in enumerate(STORED):
            cursor.execute(
                "UPDATE statekit_statevalue SET expires_at = %s::timestamptz "
                "WHERE name = %s AND owner = %s",
                [stored, name, f"s{n}"],
            )
    return list(StateValue.objects.using(backend.alias).filter(name=name).defer("expires_at"))


def test_the_list_shows_expiries_python_cannot_read(backend, name, admin):
    GlobalState(name + "g", default=0).set(1)
    rows(backend, name)
    for query in ("", "?o=7", "?o=-7", "?status=live", "?status=expired", f"?q={name}"):
        response = admin.get(LIST + query)
        assert response.status_code == 200, query
    response = admin.get(LIST)
    shown = {obj.owner: obj for obj in response.context["cl"].result_list}
    assert set(shown) >= {"", "s0", "s1", "s2", "s3"}
    page = response.content.decode()
    assert "infinity (as stored)" in page
    assert "-infinity (as stored) (expired)" in page
    assert "20000-01-01" in page
    live = admin.get(LIST + "?status=live").context["cl"].result_list
    assert {obj.owner for obj in live} >= {"s0", "s2"}


def test_change_page_and_actions_work_on_such_rows(backend, name, admin):
    objs = rows(backend, name)
    for obj in objs:
        url = reverse("admin:statekit_statevalue_change", args=(obj.pk,))
        assert admin.get(url).status_code == 200, obj.owner
    data = {"action": "expire_selected", "_selected_action": [obj.pk for obj in objs]}
    assert admin.post(LIST, data, follow=True).status_code == 200
    data = {"action": "delete_selected", "_selected_action": [obj.pk for obj in objs]}
    assert admin.post(LIST, data).status_code == 200  # the confirmation page
    assert admin.post(LIST, {**data, "post": "yes"}, follow=True).status_code == 200
    assert not StateValue.objects.using(backend.alias).filter(name=name).exists()
