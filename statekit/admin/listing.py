"""The pieces of the state-values admin that are the same whatever keeps the values: the
value form (JSON, validated like ``set()``), the list's filters and its column helpers.

A filter says what it selects as the arguments of ``backend.scan()`` (scope, name,
expired): rows are filtered by ``DatabaseBackend.selection()`` with those arguments, a scan
is given them (see :mod:`statekit.admin.rows`), so a filter selects the same values on every
backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from statekit.backends import StateKey, get_backend
from statekit.backends.db import DatabaseBackend
from statekit.exceptions import StateError
from statekit.keys import SCOPES
from statekit.models import StateValue
from statekit.state.inspection import STATUSES, parse, parse_for, pretty

#: How much of each value the list shows.
PREVIEW_CHARS = 80


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
            self.parsed = parse_for(key_of(self.instance), text)
        except StateError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return text


def short_time(when: Any) -> str:
    """A time as the list shows it, in the current time zone: to the minute, the year only
    when it is not this one (in full, to the second: its title)."""
    local = timezone.localtime(when) if timezone.is_aware(when) else when
    short = "M j, H:i" if local.year == timezone.localtime().year else "Y-m-d H:i"
    return format_html(
        '<span title="{}">{}</span>', date_format(local, "Y-m-d H:i:s"), date_format(local, short)
    )


def key_of(obj: StateValue) -> StateKey:
    return StateKey(obj.scope, obj.owner, obj.name)


# -- filters ------------------------------------------------------------------------------


class SelectionFilter(admin.SimpleListFilter):
    """A list filter whose choice is a selection of ``backend.scan()`` (keyword arguments
    among scope, name and expired); an empty one selects everything."""

    def selection(self) -> dict[str, Any]:
        raise NotImplementedError("subclasses of SelectionFilter must provide selection()")

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StateValue]
    ) -> QuerySet[StateValue]:
        chosen = self.selection()
        if not chosen:
            return queryset
        rows = cast(DatabaseBackend, get_backend())  # a list of rows: a database backend
        return queryset.filter(rows.selection(**{"expired": None, **chosen}))


def _scope(scope: str) -> str:
    """A scope from the query string, one of the stored scopes (else the list says so)."""
    if scope not in SCOPES:
        raise IncorrectLookupParameters(f"No scope {scope!r}")
    return scope


class ScopeFilter(SelectionFilter):
    title = "scope"
    parameter_name = "scope__exact"  # as Django's filter of a field: links keep working

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(scope, scope) for scope in SCOPES]

    def selection(self) -> dict[str, Any]:
        scope = self.value()
        return {"scope": _scope(scope)} if scope else {}


class VariableFilter(SelectionFilter):
    title = "variable"
    parameter_name = "variable"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The variables the admin's source knows (never a browser state)."""
        found = model_admin.variables(request)
        return [(f"{s}:{n}", f"{n} ({s})") for s, n in sorted(found, key=lambda k: k[::-1])]

    def selection(self) -> dict[str, Any]:
        scope, _, name = (self.value() or "").partition(":")
        return {"scope": _scope(scope), "name": name} if name else {}


class StatusFilter(SelectionFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "live"), ("expired", "expired (awaiting cleanup)")]

    def selection(self) -> dict[str, Any]:
        value = self.value()
        return {"expired": STATUSES[value]} if value in STATUSES else {}
