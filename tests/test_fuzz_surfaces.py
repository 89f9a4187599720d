"""The admin and ``manage.py statekit set`` given the codec fuzzer's text, on every backend:
each text is stored exactly as ``parse`` reads it, or refused (a form error, a CommandError)
with the stored value left as it was; never a 500 or another exception."""

from __future__ import annotations

import io

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings

from statekit import GlobalState, StateError
from statekit.backends import StateKey
from statekit.state.inspection import parse
from tests.test_admin import change_url
from tests.test_codec_fuzz import client_text

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def expected(text: str, name: str) -> object:
    try:
        return parse(text, name)
    except StateError:
        return StateError


def test_admin_edits_store_exactly_or_refuse(backend, name):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x"))
    counter = GlobalState(name, default=0)
    counter.set(0)
    url = change_url(StateKey("global", "", name))

    @FUZZ
    @given(client_text)
    def edit(text):
        before, logged = counter.get(), LogEntry.objects.count()
        want = expected(text, name)
        response = client.post(url, {"value": text})
        if want is StateError:
            assert response.status_code == 200
            assert counter.get() == before and LogEntry.objects.count() == logged
        else:
            assert response.status_code == 302
            assert counter.get() == want

    edit()


def test_command_set_stores_exactly_or_refuses(backend, name):
    counter = GlobalState(name, default=0)

    @FUZZ
    @given(client_text)
    def set_(text):
        before = counter.get()
        want = expected(text, name)
        try:
            call_command("statekit", "set", name, "--", text, stdout=io.StringIO())
        except CommandError:
            assert want is StateError and counter.get() == before
        else:
            assert counter.get() == want

    set_()
