"""Settings of the Daphne process of tests/test_browser_budget.py: the live tests' settings
(the test run's database), with tests/budget_app.py as the site, and a strict limit on what a
request may send: 8190 bytes for its request line plus headers, gunicorn's limit on one
header line (Twisted's default, which Daphne keeps, is 16384)."""

from __future__ import annotations

from twisted.web import http

from tests.live_server_settings import *  # noqa: F403

ROOT_URLCONF = "tests.budget_app"
HEADERS_LIMIT = 8190
http.HTTPChannel.totalHeadersSize = HEADERS_LIMIT  # read per connection by Daphne's Twisted
