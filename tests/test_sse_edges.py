"""The event stream at its edges: line separators inside values, GZipMiddleware, a watch
whose value cannot be read or rendered (it ends alone, the others stream on)."""

from __future__ import annotations

import json
import logging
from contextlib import aclosing

import pytest
from django.conf import settings
from django.test import AsyncClient, AsyncRequestFactory, override_settings

from statekit import GlobalState
from statekit.backends import StateKey, get_backend
from statekit.live.sse import ERROR_EVENT, events_view
from statekit.streams.feeds import hub
from tests.live_support import run
from tests.test_sse import URL, events

pytestmark = pytest.mark.django_db(transaction=True)


def test_sse_a_value_with_unicode_line_separators_stays_one_data_line(name):
    """EventSource ends lines at CR and LF only; U+2028 and the like are the value's text."""
    value = "one\u2028two\u2029three\x85four\x1cfive\nsix"
    note = GlobalState(name, default="", public=True)
    note.set(value)

    async def scenario():
        response = await AsyncClient().get(URL, {"watch": f"global:{name}"})
        text = ""
        async with aclosing(response.streaming_content) as chunks:
            async for chunk in chunks:
                text += chunk.decode()
                if "\n\n" in text.partition("event:")[2]:
                    return text

    block = run(scenario).partition("event:")[2]
    lines = [line for line in block.split("\n") if line.startswith("data: ")]
    assert lines == [f"data: {json.dumps(value, ensure_ascii=False)}"]


@override_settings(MIDDLEWARE=["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE])
def test_sse_is_not_compressed_by_gzip_middleware(name):
    """Django's GZipMiddleware compresses each chunk of an async stream as a gzip file of its
    own, which EventSource cannot read: the stream opts out."""
    visitors = GlobalState(name, default=0, public=True)
    visitors.set(3)

    async def scenario():
        response = await AsyncClient().get(
            URL, {"watch": f"global:{name}"}, headers={"Accept-Encoding": "gzip, deflate"}
        )
        assert "gzip" not in response.get("Content-Encoding", "")
        async with aclosing(response.streaming_content):
            return await events(response, 1)

    assert run(scenario) == [(f"global:{name}", "3")]


def test_sse_a_value_that_no_longer_fits_its_schema_ends_that_watch_only(name, caplog):
    GlobalState(name, default=0, public=True, schema=int)
    visitors = GlobalState(name + "v", default=0, public=True)
    get_backend().set(StateKey("global", "", name), '"a str, stored before the schema"', None)
    visitors.set(1)

    async def scenario():
        watches = {"watch": [f"global:{name}v", f"global:{name}"]}
        response = await AsyncClient().get(URL, watches)
        async with aclosing(response.streaming_content):
            first = await events(response, 2)
            await visitors.aset(2)
            return first + await events(response, 1)

    found = run(scenario)
    assert (f"global:{name}v", "1") in found and found[-1] == (f"global:{name}v", "2")
    [error] = [json.loads(data) for event, data in found if event == ERROR_EVENT]
    assert error == {
        "watch": f"global:{name}",
        "code": "schema",
        "message": f"global state {name!r} holds a value that does not fit its schema.",
    }
    assert "does not fit its schema" in caplog.text
    assert hub().count() == 0


def test_sse_a_failing_render_ends_that_watch_with_its_traceback_logged(name, caplog):
    GlobalState(name, default=0, public=True)
    visitors = GlobalState(name + "v", default=0, public=True)

    def render(variable, value):
        if variable.name == name:
            return {"typo": 1}["value"]
        return str(value)

    view = events_view(render=render)

    async def scenario():
        request = AsyncRequestFactory().get(URL, {"watch": [f"global:{name}", f"global:{name}v"]})
        response = await view(request)
        async with aclosing(response.streaming_content):
            first = await events(response, 2)
            await visitors.aset(7)
            return first + await events(response, 1)

    with caplog.at_level(logging.ERROR, logger="statekit.live"):
        found = run(scenario)
    assert found[-1] == (f"global:{name}v", "7")
    [error] = [json.loads(data) for event, data in found if event == ERROR_EVENT]
    assert error["watch"] == f"global:{name}" and error["code"] == "internal"
    [record] = [r for r in caplog.records if "render() failed" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_sse_html_form_shows_nothing_for_none(name):
    note = GlobalState(name, default=None, public=True)

    async def scenario():
        response = await AsyncClient().get(URL, {"watch": f"global:{name}", "format": "html"})
        async with aclosing(response.streaming_content):
            first = await events(response, 1)
            await note.aset("<i>x</i>")
            return first + await events(response, 1)

    assert run(scenario) == [(f"global:{name}", ""), (f"global:{name}", "&lt;i&gt;x&lt;/i&gt;")]
