from django.apps import AppConfig


class BrowserAppConfig(AppConfig):
    name = "tests.browser_app"
    label = "browser_app"
