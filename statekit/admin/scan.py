"""The admin pages of state when the backend keeps no database rows (the "cache" backend).

The changelist, change and delete pages of ``StateValueAdmin`` then work over
``backend.scan()`` (Redis: SCAN by prefix): filters by scope, variable and status, a search
of names and owners, pages of ``PER_PAGE`` values, and the same actions, permissions, admin
log and writes through statekit as with rows. An object id is the quoted key
``<scope>:<owner>:<name>``. Pages come in the backend's order (Redis's: none in particular),
sorted within a page; page *n* scans past the values of the pages before it.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import django
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from statekit.admin.base import AdminBase
from statekit.backends import get_backend
from statekit.backends.base import Entry
from statekit.exceptions import BackendUnavailable, StateError
from statekit.keys import SCOPES, key_text, parse_key
from statekit.models import StateValue
from statekit.registry import declared
from statekit.state.inspection import (
    entry,
    remove,
    size,
    users_of,
    write,
)

PER_PAGE = 100
#: The status filter, as on the rows' changelist: absent means all values.
STATUSES = {"live": False, "expired": True}


def row(found: Entry) -> StateValue:
    """An unsaved ``StateValue`` standing for a scanned value (its pk: the key text), so the
    admin's display methods, permissions and log work on it as on a row."""
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


def _with_users(objs: list[StateValue]) -> list[StateValue]:
    users = users_of(obj.owner for obj in objs)
    for obj in objs:
        obj.user = users.get(obj.owner, "")
    return objs


class ScanAdminMixin(AdminBase):
    """The base of ``StateValueAdmin`` (a ModelAdmin); uses its display methods,
    permissions and actions."""

    def _url(self, view: str, *args: Any) -> str:
        site, opts = self.admin_site.name, self.opts
        name = f"{site}:{opts.app_label}_{opts.model_name}_{view}"
        return reverse(name, args=args, current_app=site)

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        request.current_app = self.admin_site.name
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "changelist_url": self._url("changelist"),
            "breadcrumb_list": django.VERSION >= (6,),  # Django 6: <ol>, as its CSS expects
            **extra,
        }

    def _entries(self, ids: list[str]) -> list[Entry]:
        try:
            keys = [parse_key(unquote(object_id)) for object_id in ids]
        except StateError as exc:
            raise Http404(str(exc)) from exc
        return [found for key in keys if (found := entry(key)) is not None]

    # -- the list ----------------------------------------------------------------------

    def scan_changelist(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._scan_action(request)
        # The parameters of the rows' changelist, so links and bookmarks work on both.
        params = request.GET
        scope = params.get("scope__exact") if params.get("scope__exact") in SCOPES else None
        variable = params.get("variable", "")
        name = variable.partition(":")[2] or None
        if name:
            scope = variable.partition(":")[0]
        status = params.get("status")
        query = params.get("q", "").strip()
        try:
            page = max(1, int(params.get("p", "1")))
        except ValueError:
            page = 1
        error, found = "", []
        try:
            scanned = get_backend().scan(scope, name, expired=STATUSES.get(status or ""))
            if query:
                needle = query.casefold()
                scanned = (
                    e
                    for e in scanned
                    if needle in e.key.name.casefold() or needle in e.key.owner.casefold()
                )
            found = list(islice(scanned, (page - 1) * PER_PAGE, page * PER_PAGE + 1))
        except NotImplementedError:
            error = (
                f"The backend {type(get_backend()).__name__} keeps no database rows and "
                "cannot list its values (it implements no scan() method)."
            )
        except BackendUnavailable as exc:
            error = str(exc)
        objs = _with_users(
            sorted((row(e) for e in found[:PER_PAGE]), key=lambda o: (o.scope, o.name, o.owner))
        )

        def link(**changes: Any) -> str:
            query_dict = params.copy()
            query_dict.pop("p", None)
            for key, value in changes.items():
                if value in (None, ""):
                    query_dict.pop(key, None)
                else:
                    query_dict[key] = value
            return f"?{query_dict.urlencode()}"

        filters = [
            (
                "scope",
                [("All", link(scope__exact=None), scope is None)]
                + [(s, link(scope__exact=s), scope == s) for s in SCOPES],
            ),
            (
                "variable",
                [("All", link(variable=None), name is None)]
                + [
                    (
                        f"{v.name} ({v.scope})",
                        link(variable=f"{v.scope}:{v.name}"),
                        (scope, name) == (v.scope, v.name),
                    )
                    for v in declared()
                    if v.scope in SCOPES  # browser states are never stored here
                ],
            ),
            (
                "status",
                [("All", link(status=None), status not in STATUSES)]
                + [(s, link(status=s), status == s) for s in STATUSES],
            ),
        ]
        paging = {
            "page": page,
            "previous": link(p=page - 1 if page > 2 else None) if page > 1 else "",
            "next": link(p=page + 1) if len(found) > PER_PAGE else "",
        }
        actions = [("", "---------")] + [
            (action, label)
            for action, (allowed, label) in self._scan_actions().items()
            if allowed(request)
        ]
        rows = [
            (
                quote(obj.pk),
                self._url("change", quote(obj.pk)),
                obj,
                self.owner_display(obj),
                self.updated(obj),
                self.expires(obj),
                self.value_preview(obj),
            )
            for obj in objs
        ]
        backend = type(get_backend()).__name__
        verb = "change" if self.has_change_permission(request) else "view"
        context = self._context(
            request,
            f"Select state value to {verb}",
            rows=rows,
            columns=("name", "scope", "owner", "user", "bytes", "updated", "expires", "value"),
            filters=filters,
            paging=paging,
            query=query,
            error=error,
            actions=actions if len(actions) > 1 else [],
            checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            backend=backend,
            per_page=PER_PAGE,
            hidden=[(k, v) for k, v in params.items() if k not in ("q", "p")],
        )
        return TemplateResponse(request, "statekit/admin_scan_list.html", context)

    def _scan_actions(self) -> dict[str, tuple[Any, str]]:
        """The actions of the rows' changelist (same names): permission test and label."""
        return {
            "delete_selected": (self.has_delete_permission, "Delete selected state values"),
            "expire_selected": (self.has_change_permission, "Expire selected values now"),
            "purge_expired": (
                self.has_change_permission,
                "Purge all expired values (runs on_expire)",
            ),
        }

    def _scan_action(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        actions = self._scan_actions()
        if action not in actions:
            self.message_user(request, "No action selected.", messages.WARNING)
        elif not actions[action][0](request):
            raise PermissionDenied
        elif action == "purge_expired":
            self.purge(request)
        elif not selected:
            self.message_user(
                request,
                "Items must be selected in order to perform actions on them. No items have "
                "been changed.",
                messages.WARNING,
            )
        elif action == "delete_selected":
            return self.scan_delete(request, selected)
        else:
            self.expire_objects(request, [row(e) for e in self._entries(selected)])
        return HttpResponseRedirect(request.get_full_path())

    # -- one value ---------------------------------------------------------------------

    def scan_change(self, request: HttpRequest, object_id: str) -> HttpResponse:
        found = self._entries([object_id])
        if not found:
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            self.message_user(
                request, f"No state value {unquote(object_id)!r}: it was deleted.", messages.WARNING
            )
            return HttpResponseRedirect(self._url("changelist"))
        obj = _with_users([row(found[0])])[0]
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        can_change = self.has_change_permission(request, obj)
        form = None
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            form = self.form(request.POST, instance=obj)
            if form.is_valid():
                write(found[0].key, form.parsed)
                # django-stubs types the form as a Form; Django's own calls pass a ModelForm
                message = self.construct_change_message(request, form, [])  # type: ignore[arg-type]
                self.log_change(request, obj, message)
                self.message_user(request, f"The state value “{obj}” was changed.")
                return HttpResponseRedirect(self._url("changelist"))
        elif can_change:
            form = self.form(instance=obj)
        info = [
            ("name", obj.name),
            ("scope", obj.scope),
            ("owner", obj.owner or "—"),
            ("user", self.user(obj)),
            ("bytes", obj.bytes),
            ("updated", obj.updated_at or "— (not kept by this backend)"),
            ("expires", self.expires(obj)),
        ]
        context = self._context(
            request,
            f"{'Change' if can_change else 'View'} state value",
            object=obj,
            info=info,
            form=form,
            value=self.pretty_value(obj),
            delete_url=self._url("delete", quote(obj.pk))
            if self.has_delete_permission(request, obj)
            else "",
        )
        return TemplateResponse(request, "statekit/admin_scan_entry.html", context)

    def scan_delete(self, request: HttpRequest, ids: list[str]) -> HttpResponse:
        if not self.has_delete_permission(request):
            raise PermissionDenied
        found = self._entries(ids)
        if request.method == "POST" and request.POST.get("post") == "yes":
            objs = [row(e) for e in found]
            if objs:
                # unsaved objects, not a queryset: Django only iterates it
                self.log_deletions(request, objs)  # type: ignore[arg-type]
            for obj in found:
                remove(obj.key)
            self.message_user(request, f"Deleted {len(found)} state value(s).", messages.SUCCESS)
            return HttpResponseRedirect(self._url("changelist"))
        context = self._context(
            request,
            "Delete state values?",
            objects=[row(e) for e in found],
            ids=[quote(key_text(e.key)) for e in found],
            checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        )
        return TemplateResponse(request, "statekit/admin_scan_delete.html", context)
