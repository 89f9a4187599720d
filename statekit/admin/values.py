"""The admin of stored state: list, search, filter, inspect, edit, delete and expire values.

One ModelAdmin for every backend: with "db" and "cached_db" it lists ``StateValue`` rows,
with a backend that keeps no rows ("cache") what the backend's ``scan()`` finds, as unsaved
``StateValue`` objects (:mod:`statekit.admin.rows`: the only part that differs). Columns,
filters, search, the change, delete and history pages, permissions and actions are the same.

Every write goes through statekit (:mod:`statekit.state.inspection`): an edit is validated like
``set()``, sends ``state_changed`` and reaches live clients; each edit, deletion and expiry
is recorded in the admin log. Values of the scopes in ``editable_scopes`` (global only, by
default) can be edited; others are read-only, but can be deleted or expired.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin import ShowFacets
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from statekit.admin.listing import (
    PREVIEW_CHARS,
    ScopeFilter,
    StateValueForm,
    StatusFilter,
    VariableFilter,
    key_of,
    short_time,
)
from statekit.admin.rows import (
    ScanChangeList,
    TableChangeList,
    declared_variables,
    scanned,
    scanning,
    stored_variables,
    table,
)
from statekit.keys import EXPIRED, EXPIRING, Scope
from statekit.lifecycle.cleanup import cleanup
from statekit.models import StateValue
from statekit.state.inspection import (
    expire_now,
    expiry_of,
    pretty,
    remove,
    users_of,
    variable_of,
    write,
)

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[StateValue]
else:  # Django's classes are generic for type checkers only
    _ModelAdmin = admin.ModelAdmin


@admin.register(StateValue)
class StateValueAdmin(_ModelAdmin):
    #: Scopes whose values the admin may edit; subclass and re-register to change it.
    editable_scopes: tuple[str, ...] = (Scope.GLOBAL,)

    form = StateValueForm
    list_display = (
        "name",
        "scope",
        "owner_display",
        "user",
        "size",
        "updated",
        "expires",
        "value_preview",
    )
    list_filter = (ScopeFilter, VariableFilter, StatusFilter)
    search_fields = ("name", "owner")
    ordering = ("scope", "name", "owner")
    list_per_page = 100
    actions = ("delete_selected", "expire_selected", "purge_expired")
    info_fields = ("name", "scope", "owner", "user", "size", "updated", "expires")
    show_facets = ShowFacets.NEVER  # a scan counts nothing; a table's counts cost a query each
    change_list_template = "statekit/admin/change_list.html"  # a scan's notice and pages

    class Media:
        css: ClassVar = {"all": ("statekit/admin.css",)}  # the list: a line a value at 1280 px

    # -- where the values come from: a query, or a scan (statekit.admin.rows) -------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[StateValue]:
        return table(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type:
        return ScanChangeList if scanning() else TableChangeList

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> StateValue | None:
        if scanning():
            found = scanned([object_id])
            return found[0] if found else None
        return super().get_object(request, object_id, from_field)

    def get_sortable_by(self, request: HttpRequest) -> list[Any] | tuple[Any, ...]:
        return () if scanning() else super().get_sortable_by(request)

    def variables(self, request: HttpRequest) -> set[tuple[str, str]]:
        """The variables of the list's filter: those with rows, or (a scan would read
        everything to know) the declared ones."""
        return declared_variables() if scanning() else stored_variables(self.get_queryset(request))

    @admin.display(description="owner", ordering="owner")
    def owner_display(self, obj: StateValue) -> str:
        """The owner, shortened: session keys and page tokens are long (in full: title)."""
        if not obj.owner:
            return "—"
        short = ".".join(
            f"{part[:8]}…" if len(part) > 10 else part for part in obj.owner.split(".")
        )
        return format_html('<span title="{}">{}</span>', obj.owner, short)

    @admin.display(description="user")
    def user(self, obj: StateValue) -> str:
        if not hasattr(obj, "user"):  # a change page: one row, one lookup
            obj.user = users_of([obj.owner]).get(obj.owner, "")
        return obj.user or "—"

    @admin.display(description="bytes", ordering="bytes")
    def size(self, obj: StateValue) -> int:
        return obj.bytes

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: StateValue) -> str:
        return short_time(obj.updated_at) if obj.updated_at else "—"

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj: StateValue) -> str:
        if obj.scope == EXPIRED:
            return "expired (awaiting cleanup)"
        expiry, stored = expiry_of(obj)
        if expiry is None:
            return "never"
        if stored:
            when = f"{stored} (as stored)"
        else:
            try:
                when = short_time(expiry)
            except OverflowError:  # near datetime.max: past the end of time in TIME_ZONE
                when = f"{expiry.isoformat()} (UTC)"
        return f"{when} (expired)" if self.dead(obj) else when

    @admin.display(description="value")
    def value_preview(self, obj: StateValue) -> str:
        """The start of the stored JSON (the list loads no more of it than this)."""
        head = getattr(obj, "head", None)
        text = obj.value if head is None else head
        return text if len(text) <= PREVIEW_CHARS else f"{text[: PREVIEW_CHARS - 1]}…"

    @admin.display(description="value")
    def pretty_value(self, obj: StateValue) -> str:
        return format_html("<pre>{}</pre>", pretty(obj.value))

    @staticmethod
    def dead(obj: StateValue) -> bool:
        if hasattr(obj, "expired"):  # a scanned value, judged by the backend's clock
            return obj.expired
        expiry, _ = expiry_of(obj)
        return obj.scope == EXPIRED or (expiry is not None and expiry <= timezone.now())

    # -- permissions: no adding (variables are declared in code), edits where allowed ----

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def editable(self, obj: StateValue) -> bool:
        return (
            obj.scope in self.editable_scopes
            and variable_of(key_of(obj)) is not None
            and not self.dead(obj)
        )

    def has_change_permission(self, request: HttpRequest, obj: StateValue | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or self.editable(obj))

    def get_fields(self, request: HttpRequest, obj: StateValue | None = None) -> tuple[str, ...]:
        editable = obj is not None and self.has_change_permission(request, obj)
        return (*self.info_fields, "value" if editable else "pretty_value")

    def get_readonly_fields(
        self, request: HttpRequest, obj: StateValue | None = None
    ) -> tuple[str, ...]:
        return (*self.info_fields, "pretty_value")

    # -- writes, through statekit --------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: StateValue, form: Any, change: bool) -> None:
        write(key_of(obj), form.parsed)

    def delete_model(self, request: HttpRequest, obj: StateValue) -> None:
        remove(key_of(obj))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StateValue]) -> None:
        for obj in queryset.defer("value"):
            remove(key_of(obj))

    @admin.action(description="Expire selected values now", permissions=["change"])
    def expire_selected(self, request: HttpRequest, queryset: QuerySet[StateValue]) -> None:
        objs = list(queryset.defer("value"))
        done = [obj for obj in objs if obj.scope in EXPIRING and not self.dead(obj)]
        for obj in done:
            expire_now(key_of(obj))
            self.log_change(request, obj, "Expired now.")
        if done:
            self.message_user(
                request,
                f"{len(done)} value(s) expired; the next cleanup ('Purge expired values', or "
                "statekit_cleanup) runs their on_expire callbacks.",
                messages.SUCCESS,
            )
        if len(done) < len(objs):
            self.message_user(
                request,
                f"{len(objs) - len(done)} value(s) left as they were: global state never "
                "expires (delete it instead), and expired values are expired already.",
                messages.WARNING,
            )

    @admin.action(description="Purge all expired values (runs on_expire)", permissions=["change"])
    def purge_expired(self, request: HttpRequest, queryset: Any) -> None:
        report = cleanup()
        self.message_user(
            request,
            f"Purged {report.expired} expired value(s) and {report.ended} value(s) of ended "
            f"sessions; ran {report.callbacks} on_expire callback(s).",
            messages.WARNING if report.failures else messages.SUCCESS,
        )
        if report.failures:
            self.message_user(
                request,
                f"{report.failures} on_expire callback(s) raised; see the 'statekit' log.",
                messages.ERROR,
            )
