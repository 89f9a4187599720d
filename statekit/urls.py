"""``path("statekit/", include("statekit.urls"))``: the endpoints statekit.js calls."""

from django.urls import path

from statekit.browser import upload as browser_upload
from statekit.lifecycle import pages
from statekit.live import sse

app_name = "statekit"
urlpatterns = [
    path("page/close/", pages.close_page, name="page-close"),
    path("browser/", browser_upload.upload, name="browser-upload"),
    path("browser/writes/", browser_upload.writes, name="browser-writes"),
    path("events/", sse.events, name="events"),
]
