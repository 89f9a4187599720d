"""The URLconf of tests/outage_settings.py: no views, one declared global variable (a
management command imports the URLconf, so it knows the variable)."""

from __future__ import annotations

import os

from statekit import GlobalState

counter = GlobalState(os.environ["STATEKIT_TEST_VARIABLE"], default=0)
urlpatterns: list = []
