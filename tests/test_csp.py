"""statekit under a strict Content-Security-Policy in real Chromium: the nonce of Django 6's
CSP middleware and of django-csp reaches statekit's script, and browser state and live state
work with no violation. The page is served by daphne (websockets) on tests/csp_settings.py."""

from __future__ import annotations

import django
import pytest

from tests.browser import launch_options, watch_errors
from tests.conftest import needs
from tests.live_support import Server, process_env

pytestmark = [*needs("chromium"), pytest.mark.django_db(transaction=True)]

DJANGO_CSP = pytest.mark.skipif(
    django.VERSION < (6,), reason="Django's own CSP middleware is new in Django 6.0"
)

#: Runs before the page's scripts (Playwright's init scripts are not subject to the CSP).
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""

WATCH_CLICKS = """() => new Promise((resolve) => {
  window.seen = [];
  statekit.watch("csp.clicks", (value, info) => {
    window.seen.push(value);
    if (info.source === "value") resolve(value);
  }, { onError: (error) => resolve(String(error)) });
})"""

CLICK = "async () => (await fetch('/click/')).json()"


@pytest.mark.parametrize("csp", [pytest.param("django", marks=DJANGO_CSP), "django-csp"])
def test_browser_and_live_state_work_under_a_strict_nonce_policy(csp):
    from playwright.sync_api import expect, sync_playwright

    env = process_env(DJANGO_SETTINGS_MODULE="tests.csp_settings", STATEKIT_TEST_CSP=csp)
    with Server(env) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        page = browser.new_page()
        page.add_init_script(RECORD_VIOLATIONS)
        errors = watch_errors(page)
        response = page.goto(server.url + "/")
        policy = response.headers["content-security-policy"]
        assert "script-src 'nonce-" in policy and "unsafe-inline" not in policy, policy
        page.wait_for_function("() => window.statekit && window.statekit.browser")
        nonces = page.evaluate(
            "() => [...document.querySelectorAll('script[src], link')].map((e) => e.nonce)"
        )
        assert len(nonces) == 2 and all(f"'nonce-{n}'" in policy for n in nonces), nonces
        color = "() => getComputedStyle(document.getElementById('note')).color"
        assert page.evaluate(color) == "rgb(0, 128, 128)"  # the stylesheet, by its nonce

        first = page.evaluate(WATCH_CLICKS)  # live state: the websocket, then its changes
        assert isinstance(first, int), first
        page.evaluate("() => statekit.browser.set('csp.note', 'hi')")
        assert page.evaluate(CLICK) == {"sent": "hi", "clicks": first + 1}
        page.wait_for_function("(n) => window.seen.includes(n)", arg=first + 1, timeout=10_000)
        expect(page.locator("#note")).to_have_text("seen hi")  # the server's write arrived
        assert page.evaluate("() => statekit.browser.get('csp.note')") == "seen hi"

        assert page.evaluate("() => window.violations") == []
        assert errors == []
        browser.close()


def render(context: dict[str, object], request: object) -> str:
    from django.template import Context, Template

    template = Template("{% load statekit %}{% statekit_js %}|{% statekit_nonce %}")
    return template.render(Context({**context, "request": request}))


def new_request(**attributes: object) -> object:
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = SessionStore()
    for name, value in attributes.items():
        setattr(request, name, value)
    return request


def test_the_nonce_comes_from_the_context_or_the_request_even_unused():
    from django.utils.functional import SimpleLazyObject

    # Django 6's context processor (``csp_nonce``): used as is.
    assert render({"csp_nonce": "ctx"}, new_request()).count(' nonce="ctx"') == 2
    # django-csp's lazy nonce, not yet rendered by anything else (it is falsy until then).
    made: list[str] = []

    class Lazy(SimpleLazyObject):
        def __bool__(self) -> bool:
            return bool(made)

    lazy = Lazy(lambda: made.append("lazy") or "lazy")
    assert render({}, new_request(csp_nonce=lazy)).count(' nonce="lazy"') == 2 and made
    # No CSP middleware: no nonce attribute.
    assert "nonce" not in render({}, new_request())
