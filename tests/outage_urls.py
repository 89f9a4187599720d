"""The URLconf of tests/outage_settings.py: one declared global variable (a management
command imports the URLconf, so it knows it) and a view that increments it."""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse
from django.urls import path

from statekit import GlobalState

counter = GlobalState(os.environ["STATEKIT_TEST_VARIABLE"], default=0)


def incr(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": counter.incr()})


urlpatterns = [path("incr/", incr)]
