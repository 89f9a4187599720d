"""The base of ``StateValueAdmin``: Django's ``ModelAdmin``, and for type checkers a
``ModelAdmin[StateValue]`` with the methods of ``StateValueAdmin`` that the scan pages
(:mod:`statekit.admin.scan`) use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.admin import ModelAdmin
from django.http import HttpRequest

from statekit.models import StateValue

if TYPE_CHECKING:
    from statekit.admin.listing import StateValueForm

    class AdminBase(ModelAdmin[StateValue]):
        """What the mixin uses of ``StateValueAdmin`` (statekit.admin.values)."""

        form: type[StateValueForm]

        def owner_display(self, obj: StateValue) -> str: ...
        def user(self, obj: StateValue) -> str: ...
        def updated(self, obj: StateValue) -> str: ...
        def expires(self, obj: StateValue) -> str: ...
        def value_preview(self, obj: StateValue) -> str: ...
        def pretty_value(self, obj: StateValue) -> str: ...
        def purge(self, request: HttpRequest) -> None: ...
        def expire_objects(self, request: HttpRequest, objs: list[StateValue]) -> None: ...

else:  # Django's classes are generic for type checkers only
    AdminBase = ModelAdmin
