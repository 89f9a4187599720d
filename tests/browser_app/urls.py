from django.urls import path

from tests.browser_app import views

urlpatterns = [
    path("creds/", views.creds_page, name="creds"),
    path("creds/generate/", views.generate, name="generate"),
    path("values/", views.values, name="values"),
    path("unprotected/", views.unprotected, name="unprotected"),
    path("sandboxed/", views.sandboxed, name="sandboxed"),
    path("echo/", views.echo, name="echo"),
    path("write/", views.write, name="write"),
    path("late/", views.late, name="late"),
    path("form/", views.form, name="form"),
    path("unprotected/form/", views.unprotected_form, name="unprotected_form"),
    path("htmx/", views.htmx_page, name="htmx"),
    path("htmx/theme/", views.htmx_theme, name="htmx_theme"),
]
