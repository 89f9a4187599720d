"""Pages for the browser tests of statekit.js (installed by tests/settings.py).

The tests use ``@pytest.mark.urls("tests.browser_app.urls")``; nothing here is part of the
example project.
"""
