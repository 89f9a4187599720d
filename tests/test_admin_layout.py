"""The admin's list of state values in real Chromium at 1280 px with the navigation sidebar
open: every column fits (the expiry is not clipped), rows stay one line high, and each value
shows a short preview. The screenshot is saved (``STATEKIT_SCREENSHOTS``, else a temp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings

from statekit import BrowserState, GlobalState, SessionState
from tests.browser import (  # noqa: F401  (fixtures: browser, page, playwright)
    browser_fixture,
    page_fixture,
    playwright_fixture,
)
from tests.conftest import clear_redis_prefix, needs, unique_prefix

pytestmark = [*needs("chromium"), pytest.mark.django_db(transaction=True)]

GEOMETRY = """() => {
  const table = document.getElementById("result_list");
  const rows = [...table.querySelectorAll("tbody tr")];
  const results = table.closest(".results");
  return {
    sidebar: document.getElementById("nav-sidebar").getBoundingClientRect().width,
    viewport: document.documentElement.clientWidth,
    right: table.getBoundingClientRect().right,
    top: table.getBoundingClientRect().top,
    filter: document.getElementById("changelist-filter").getBoundingClientRect(),
    search: document.getElementById("searchbar").getBoundingClientRect(),
    overflow: results.scrollWidth - results.clientWidth,
    heights: rows.map((row) => row.getBoundingClientRect().height),
    headers: [...table.querySelectorAll("thead th")].map((th) => th.innerText.trim().toLowerCase()),
    preview: table.querySelector("td.field-value_preview").getBoundingClientRect().width,
  };
}"""


@pytest.fixture(
    params=[
        pytest.param({"BACKEND": "db"}, id="rows"),
        pytest.param({"BACKEND": "cache", "CACHE_ALIAS": "redis"}, id="scan", marks=needs("redis")),
    ]
)
def stored(request, live_server, name) -> Iterator[tuple[str, str]]:
    """Values of several kinds (made before Playwright starts: the ORM refuses its thread)."""
    conf = {**request.param, "KEY_PREFIX": unique_prefix()}
    with override_settings(STATEKIT=conf):
        yield store(name), conf["BACKEND"]
    if "CACHE_ALIAS" in conf:
        clear_redis_prefix(conf["CACHE_ALIAS"], conf["KEY_PREFIX"])


def store(name: str) -> str:
    User.objects.create_superuser("root", password="pw")
    GlobalState(f"{name}.config", default=dict).set(
        {"title": "A long configuration value " * 20, "limits": list(range(50))}
    )
    BrowserState(f"{name}.theme", default="light")  # not stored on the server
    GlobalState(f"{name}.unused", default=0)  # declared, never stored
    cart = SessionState(f"{name}.cart", default=list, ttl=timedelta(days=3))
    for index in range(5):
        session = SessionStore()
        session.create()
        cart.set(session.session_key, [{"sku": f"item-{index}", "quantity": index}] * 8)
    return name


def test_the_list_fits_1280_px_with_the_sidebar_and_previews_values(
    stored, live_server, page, tmp_path
):
    name, backend = stored
    page.set_viewport_size({"width": 1280, "height": 900})
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))  # the admin has none
    page.goto(live_server.url + "/admin/login/?next=/admin/statekit/statevalue/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    shots = Path(os.environ.get("STATEKIT_SCREENSHOTS") or tmp_path)
    page.screenshot(path=str(shots / f"statekit-admin-1280-{backend}.png"), full_page=True)

    geometry = page.evaluate(GEOMETRY)
    assert geometry["sidebar"] > 0  # the sidebar is open
    assert "value" in geometry["headers"]
    assert geometry["right"] <= geometry["viewport"] and geometry["overflow"] <= 0, geometry
    assert geometry["filter"]["left"] >= geometry["right"], geometry  # filters on the right
    assert geometry["filter"]["top"] < geometry["top"], geometry  # beside the list, not under
    assert geometry["search"]["bottom"] <= geometry["top"], geometry  # the search above it
    assert max(geometry["heights"]) < 40, geometry  # one line a row
    assert geometry["preview"] >= 60, geometry  # a few characters of each value at least
    preview = page.locator("#result_list tbody tr", has_text=f"{name}.cart").first
    assert '[{"sku":"item-' in preview.inner_text()

    if backend == "cache":  # the notice says what keeps the values
        assert "This backend (CacheBackend) keeps state in the cache" in page.content()
    filters = page.locator("#changelist-filter").inner_text()
    assert f"{name}.cart" in filters and f"{name}.theme" not in filters
    if backend == "db":  # rows: the variables that have some (a scan lists the declared)
        assert f"{name}.unused" not in filters
