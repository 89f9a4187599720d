from __future__ import annotations

from django.apps import AppConfig


class StatekitConfig(AppConfig):
    name = "statekit"
    verbose_name = "statekit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from statekit import (
            checks,  # noqa: F401  (registers the system checks)
            live,  # noqa: F401  (publishes changes to the channel layer)
        )
