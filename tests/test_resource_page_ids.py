"""Session resources do not read page ids: one object per session, whatever page (or forged
page id) a request comes from; a request without a session gets one for its resource."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

from statekit import session_resource
from statekit.state.pages import HEADER
from tests import page_app
from tests.test_page_ids import ended_page, forgeries

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

BUILT: list[object] = []
models = session_resource(lambda: BUILT.append(object()) or BUILT[-1])


def use(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": id(models.get(request))})


async def ause(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": id(await models.aget(request))})


urlpatterns = [path("use/", use), path("ause/", ause), *page_app.urlpatterns]


@pytest.mark.parametrize("url", ["/use/", "/ause/"])
def test_any_page_id_gets_the_sessions_one_object(url):
    _, stale = ended_page()
    owner = Client()
    page = owner.get("/chat/id/").json()["page"]
    mine = owner.get(url, headers={HEADER: page}).json()["id"]
    built = len(BUILT)
    for page_id in [stale, *forgeries(page)]:
        assert owner.get(url, headers={HEADER: page_id}).json()["id"] == mine, page_id
    assert owner.get(url).json()["id"] == mine
    assert len(BUILT) == built


@pytest.mark.parametrize("url", ["/use/", "/ause/"])
def test_without_a_page_id_the_resource_still_gets_a_session(url):
    client = Client()
    first = client.get(url).json()["id"]
    assert client.cookies  # a resource needs a session: it is created and its cookie sent
    assert client.get(url).json()["id"] == first
