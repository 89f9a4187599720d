from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("statekit/", include("statekit.urls")),
    path("", include("example_project.demo.urls")),
]
