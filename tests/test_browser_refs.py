"""The upload endpoint of browser state over the header budget, and references to what it
stores, on every backend (real servers): statekit/browser_upload.py, statekit/browser_refs.py."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import include, path

from statekit.browser.refs import MISSING_HEADER, REF_HEADER
from statekit.middleware import HEADER
from tests.browser_app import views
from tests.browser_app.state import badge, note

pytestmark = pytest.mark.urls(__name__)
urlpatterns = [path("echo/", views.echo), path("statekit/", include("statekit.urls"))]

ENTRY = {"v": "€" * 1364, "t": 1}


def upload(client: Client, body: str) -> tuple[int, dict]:
    response = client.post("/statekit/browser/", body, content_type="application/json")
    return response.status_code, json.loads(response.content)


def echo(client: Client, ref: str, inline: str = "{}") -> tuple[dict, bool]:
    response = client.get("/echo/", headers={HEADER: inline, REF_HEADER: ref})
    return json.loads(response.content), MISSING_HEADER in response


def test_an_uploaded_bundle_is_read_by_reference(backend):
    client = Client()
    status, answer = upload(client, json.dumps({note.name: ENTRY}))
    assert status == 200 and len(answer["ref"]) == 64
    values, missing = echo(client, answer["ref"], json.dumps({"test.theme": {"v": "dark", "t": 1}}))
    assert values[note.name] == ENTRY["v"] and values["test.theme"] == "dark" and not missing


def test_an_unknown_reference_reads_defaults_and_asks_for_the_upload(backend):
    values, missing = echo(Client(), "0" * 64)
    assert values[note.name] == "" and missing
    values, missing = echo(Client(), "not a reference")
    assert values[note.name] == "" and missing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status"),
    [("x" * 10**6, 413), ("", 413), ("[1]", 400), ("{", 400)],
)
def test_bad_uploads_are_refused_and_store_nothing(body, status):
    assert upload(Client(), body)[0] == status


@pytest.mark.django_db
def test_only_entries_the_server_accepts_are_kept():
    forged = {badge.name: {"s": '"gold":1:forged', "t": 1}, "undeclared": ENTRY}
    assert upload(Client(), json.dumps(forged)) == (200, {"ref": None})
    assert Client().get("/statekit/browser/").status_code == 405
