from __future__ import annotations

from django.urls import path

from benchmarks.http_project import views

NAMES = ["empty", "kit", "floor", "session", "session_ttl", "session_floor", "mix"]

urlpatterns = [path(f"{name}/", getattr(views, name)) for name in NAMES] + [
    path(f"a/{name}/", getattr(views, f"a{name}")) for name in NAMES
]
