"""Settings of the CSP tests' server process: tests/live_server_settings.py serving
tests/csp_app.py under a strict nonce policy, from Django's own CSP middleware (Django 6+,
``STATEKIT_TEST_CSP=django``) or from django-csp (``STATEKIT_TEST_CSP=django-csp``)."""

from __future__ import annotations

import os

from tests.live_server_settings import *  # noqa: F403
from tests.live_server_settings import MIDDLEWARE, TEMPLATES

ROOT_URLCONF = "tests.csp_app"

if os.environ["STATEKIT_TEST_CSP"] == "django":
    from django.utils.csp import CSP

    MIDDLEWARE = [*MIDDLEWARE, "django.middleware.csp.ContentSecurityPolicyMiddleware"]
    SECURE_CSP = {
        "default-src": [CSP.SELF],
        "script-src": [CSP.NONCE],
        "style-src": [CSP.NONCE],
        "connect-src": [CSP.SELF],
    }
    _processors = TEMPLATES[0]["OPTIONS"]["context_processors"]
    TEMPLATES = [
        {
            **TEMPLATES[0],
            "OPTIONS": {
                "context_processors": [*_processors, "django.template.context_processors.csp"]
            },
        }
    ]
else:
    from csp.constants import NONCE, SELF

    MIDDLEWARE = [*MIDDLEWARE, "csp.middleware.CSPMiddleware"]
    CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [NONCE],
            "style-src": [NONCE],
            "connect-src": [SELF],
        }
    }
