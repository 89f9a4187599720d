"""The pieces of the state-values admin list and form: the value form (JSON, validated like
``set()``), the list's columns helpers, filters and change list (see :mod:`.values`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Func, IntegerField, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from statekit.backends import StateKey, get_backend
from statekit.backends.db import DatabaseBackend
from statekit.exceptions import StateError
from statekit.keys import origin
from statekit.models import StateValue
from statekit.state.inspection import (
    parse,
    pretty,
    users_of,
)


class ByteLength(Func):
    """The size of a text column in bytes (UTF-8), as ``MAX_VALUE_BYTES`` counts it."""

    function = "OCTET_LENGTH"  # PostgreSQL, MySQL, MariaDB
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "LENGTH(CAST(%(expressions)s AS BLOB))"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_oracle(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="LENGTHB", **extra)


def _canonical(text: Any) -> Any:
    try:
        return parse(str(text), "value")
    except StateError:
        return text


class JSONTextField(forms.CharField):
    """A value as pretty-printed JSON; changed only when the content is."""

    widget = forms.Textarea(attrs={"rows": 20, "cols": 100, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        return pretty(value) if isinstance(value, str) else value

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(_canonical(initial) != _canonical(data))


if TYPE_CHECKING:
    _ModelForm = forms.ModelForm[StateValue]
else:  # Django's classes are generic for type checkers only
    _ModelForm = forms.ModelForm


class StateValueForm(_ModelForm):
    value = JSONTextField(
        strip=False,
        help_text="JSON, in statekit's encoding: dates, Decimals and UUIDs are tagged, as in "
        '{"__sk__": "decimal", "v": "9.99"}. Saved through the variable: validated, '
        "size-limited, and seen by state_changed receivers and live pages.",
    )

    class Meta:
        model = StateValue
        fields = ("value",)

    def clean_value(self) -> str:
        text: str = self.cleaned_data["value"]
        try:
            self.parsed = parse(text, self.instance.name)
        except StateError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text


#: How much of each value the list shows.
PREVIEW_CHARS = 80


def short_time(when: Any) -> str:
    """A time as the list shows it, in the current time zone: to the minute, the year only
    when it is not this one (in full, to the second: its title)."""
    local = timezone.localtime(when) if timezone.is_aware(when) else when
    short = "M j, H:i" if local.year == timezone.localtime().year else "Y-m-d H:i"
    return format_html(
        '<span title="{}">{}</span>', date_format(local, "Y-m-d H:i:s"), date_format(local, short)
    )


def rows_backend() -> DatabaseBackend:
    """The backend of a list of rows: a database backend (else the admin scans)."""
    return cast(DatabaseBackend, get_backend())


def key_of(obj: StateValue) -> StateKey:
    return StateKey(obj.scope, obj.owner, obj.name)


class VariableFilter(admin.SimpleListFilter):
    title = "variable"
    parameter_name = "variable"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The variables that have rows, live or expired (so never a browser state)."""
        keys = model_admin.get_queryset(request).order_by().values_list("scope", "name")
        found = {origin(StateKey(scope, "", name)) for scope, name in keys.distinct()}
        return [(f"{s}:{n}", f"{n} ({s})") for s, n in sorted(found, key=lambda k: k[::-1])]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StateValue]
    ) -> QuerySet[StateValue]:
        scope, _, name = (self.value() or "").partition(":")
        if not name:
            return queryset
        return queryset.filter(rows_backend().selection(scope, name, expired=None))


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "live"), ("expired", "expired (awaiting cleanup)")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StateValue]
    ) -> QuerySet[StateValue]:
        if self.value() not in ("live", "expired"):
            return queryset
        return queryset.filter(rows_backend().selection(expired=self.value() == "expired"))


class StateChangeList(ChangeList):
    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[StateValue]:
        # The list shows sizes, not values: spare loading up to MAX_VALUE_BYTES per row.
        return super().get_queryset(request, exclude_parameters).defer("value")

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        users = users_of(obj.owner for obj in self.result_list)  # one batch per page
        for obj in self.result_list:
            obj.user = users.get(obj.owner, "")
