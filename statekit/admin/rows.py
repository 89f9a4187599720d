"""Where the admin's values come from, the one thing that differs between backends.

A database backend ("db", "cached_db") keeps ``StateValue`` rows: the admin lists a query,
as any ModelAdmin does (:class:`TableChangeList`). A backend that keeps no rows ("cache")
finds its values by ``scan()`` (Redis: SCAN by key prefix): :class:`ScanChangeList` lists a
page of what it finds as unsaved ``StateValue`` objects whose pk is the key text, so
:class:`statekit.admin.values.StateValueAdmin` shows, edits, deletes and logs them as rows,
with Django's own views and templates.

A scan has no order and no count: its pages come in the backend's order, sorted within a
page, and page *n* scans past the values of the pages before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import Func, IntegerField, QuerySet
from django.db.models.functions import Substr
from django.http import HttpRequest

from statekit.admin.listing import PREVIEW_CHARS
from statekit.backends import get_backend
from statekit.backends.base import Entry
from statekit.backends.db import DatabaseBackend
from statekit.backends.db_listing import INTERNAL
from statekit.exceptions import BackendUnavailable, StateError
from statekit.keys import SCOPES, StateKey, key_text, origin, parse_key
from statekit.models import StateValue
from statekit.registry import declared
from statekit.state.inspection import entry, readable_expiry, size, users_of

if TYPE_CHECKING:
    _QuerySet = QuerySet[StateValue]
else:  # Django's classes are generic for type checkers only
    _QuerySet = QuerySet


def scanning() -> bool:
    """Whether the backend keeps no database rows, so the admin lists what it scans."""
    return not isinstance(get_backend(), DatabaseBackend)


def with_users(objs: Iterable[StateValue]) -> list[StateValue]:
    """``objs``, each with the user of its owner's session (one batch for them all)."""
    objs = list(objs)
    users = users_of(obj.owner for obj in objs)
    for obj in objs:
        obj.user = users.get(obj.owner, "")
    return objs


# -- rows of a database backend --------------------------------------------------------------


class ByteLength(Func):
    """The size of a text column in bytes (UTF-8), as ``MAX_VALUE_BYTES`` counts it."""

    function = "OCTET_LENGTH"  # PostgreSQL, MySQL, MariaDB
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "LENGTH(CAST(%(expressions)s AS BLOB))"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_oracle(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="LENGTHB", **extra)


def table(rows: QuerySet[StateValue]) -> QuerySet[StateValue]:
    """The rows the admin shows, with their size and the start of their value."""
    backend = get_backend()
    if isinstance(backend, DatabaseBackend):
        rows = rows.using(backend.alias)
    # bytes: declared on the model (its type), which the plugin takes for a redefinition
    return readable_expiry(rows.exclude(INTERNAL)).annotate(  # type: ignore[no-redef]
        bytes=ByteLength("value"), head=Substr("value", 1, PREVIEW_CHARS + 1)
    )


def stored_variables(rows: QuerySet[StateValue]) -> set[tuple[str, str]]:
    """The variables that have rows, live or expired."""
    keys = rows.order_by().values_list("scope", "name").distinct()
    return {origin(StateKey(scope, "", name)) for scope, name in keys}


class TableChangeList(ChangeList):
    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[StateValue]:
        # The list shows sizes, not values: spare loading up to MAX_VALUE_BYTES per row.
        return super().get_queryset(request, exclude_parameters).defer("value")

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = with_users(self.result_list)


# -- what a backend without rows scans ------------------------------------------------------


def row(found: Entry) -> StateValue:
    """An unsaved ``StateValue`` standing for a scanned value (its pk: the key text), so the
    admin's display methods, forms, permissions and log work on it as on a row."""
    obj = StateValue(
        pk=key_text(found.key),
        scope=found.key.scope,
        owner=found.key.owner,
        name=found.key.name,
        value=found.text,
        updated_at=found.updated_at,  # type: ignore[misc]  # unsaved: None if not kept
        expires_at=found.expires_at,
    )
    obj.bytes = size(found.text)
    obj.expired = found.expired  # by the backend's clock (Redis's)
    return obj


def scanned(object_ids: Iterable[str]) -> list[StateValue]:
    """The stored values of these keys (as text; the ones that are not a key or hold no
    value are left out), each read on its own: no scan."""
    keys: list[StateKey] = []
    for object_id in object_ids:
        try:
            keys.append(parse_key(object_id))
        except StateError:
            continue
    return with_users(row(found) for key in keys if (found := entry(key)) is not None)


def declared_variables() -> set[tuple[str, str]]:
    return {(v.scope, v.name) for v in declared() if v.scope in SCOPES}


class Found(_QuerySet):
    """Scanned values where Django's admin expects a queryset (the actions it runs): held
    in memory, never sent to the database; ``filter(pk__in=...)`` reads the values of
    those keys."""

    def __init__(self, objs: Iterable[StateValue] = ()) -> None:
        super().__init__(StateValue)
        self._result_cache = list(objs)
        self._prefetch_done = True

    def filter(self, *args: Any, pk__in: Iterable[str] = (), **kwargs: Any) -> Found:
        if args or kwargs:
            raise TypeError("scanned values are selected by pk__in only")
        return Found(scanned(pk__in))

    def defer(self, *fields: str | None) -> Found:
        return self

    def _clone(self) -> Found:  # any other chained call: the same values, still no query
        return Found(self._result_cache or ())


class ScanChangeList(ChangeList):
    """A page of what the backend scans, filtered and searched as the rows would be."""

    scanning = True
    more = False  # whether a page follows this one
    backend_name = ""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Found:
        self.backend_name = type(get_backend()).__name__
        (self.filter_specs, self.has_filters, remaining, _, self.has_active_filters) = (
            self.get_filters(request)
        )
        self.clear_all_filters_qs = self.get_query_string(remove=self.get_filters_params())
        if remaining:  # lookups of fields: only a query can make them
            raise IncorrectLookupParameters(f"{', '.join(remaining)}: not with this backend")
        if self.page_num < 1:
            raise IncorrectLookupParameters(f"No page {self.page_num}")
        chosen: dict[str, Any] = {}
        for spec in self.filter_specs:
            for field, value in spec.selection().items():  # type: ignore[attr-defined]
                if chosen.setdefault(field, value) != value:
                    return Found()  # e.g. the scope "session" and a page variable
        try:
            return Found(with_users(self._page(chosen)))
        except NotImplementedError:
            messages.error(
                request,
                f"The backend {self.backend_name} keeps no database rows and cannot list its "
                "values (it implements no scan() method).",
            )
        except BackendUnavailable as exc:
            messages.error(request, str(exc))
        return Found()

    def _page(self, chosen: dict[str, Any]) -> list[StateValue]:
        found = get_backend().scan(
            chosen.get("scope"), chosen.get("name"), expired=chosen.get("expired")
        )
        if self.query:
            needle = self.query.casefold()
            found = (
                e
                for e in found
                if needle in e.key.name.casefold() or needle in e.key.owner.casefold()
            )
        start = (self.page_num - 1) * self.list_per_page
        page = list(islice(found, start, start + self.list_per_page + 1))
        self.more = len(page) > self.list_per_page
        objs = map(row, page[: self.list_per_page])
        return sorted(objs, key=lambda obj: (obj.scope, obj.name, obj.owner))

    def get_results(self, request: HttpRequest) -> None:
        self.result_list = list(self.queryset)
        self.result_count = self.full_result_count = len(self.result_list)
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = self.page_num > 1 or self.more
        self.paginator = Paginator(self.result_list, self.list_per_page)
        pages = {"previous": self.page_num - 1, "next": self.page_num + 1}
        self.links = {
            label: self.get_query_string({PAGE_VAR: number})
            for label, number in pages.items()
            if number >= 1 and (label == "previous" or self.more)
        }
