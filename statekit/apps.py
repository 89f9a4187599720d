from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class StatekitConfig(AppConfig):
    name = "statekit"
    verbose_name = "statekit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every app's state.py, like admin.py for the admin: declarations are known in
        # every process (servers, management commands, workers) from the start.
        autodiscover_modules("state")
        from statekit import checks  # noqa: F401  (registers the system checks)
