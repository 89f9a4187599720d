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
