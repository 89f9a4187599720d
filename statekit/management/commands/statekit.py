"""``manage.py statekit``: list, read, write, delete, export, import and count stored state.

Writes go through the declared variables (validated, ``state_changed`` sent, live clients
updated), like the admin's (:mod:`statekit.state.inspection`). The command first imports the
project's URLconf, as a server does, so it knows the variables the site declares.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from contextlib import nullcontext
from itertools import chain, islice
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, transaction
from django.utils import timezone

from statekit.backends import StateKey, get_backend
from statekit.backends.db import DatabaseBackend
from statekit.codec import encode
from statekit.exceptions import StateError
from statekit.keys import SCOPES, Scope, origin
from statekit.management.commands._lines import export_line, planned, when
from statekit.registry import load_declarations
from statekit.state.inspection import (
    STATUSES,
    expire_now,
    parse_for,
    remove,
    size,
    variable_of,
    write,
)

STATUS_CHOICES: dict[str, bool | None] = {**STATUSES, "all": None}
MAX_ERRORS = 20  # import: errors shown before "... and N more"


class Command(BaseCommand):
    help = (
        "Inspect and change statekit state: list, get, set, delete, export, import, stats. "
        "Writes go through the declared variables, so they are validated and send "
        "state_changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

        def filters(sub: CommandParser) -> None:
            sub.add_argument("--scope", choices=SCOPES, help="Only this scope.")
            sub.add_argument("--name", help="Only this variable.")
            sub.add_argument("--owner", help="Only this owner (a session key: also its pages).")

        def key(sub: CommandParser) -> None:
            sub.add_argument("name", metavar="NAME", help="The variable (global by default).")
            owner = sub.add_mutually_exclusive_group()
            owner.add_argument("--session", metavar="KEY", help="The session state of KEY.")
            owner.add_argument("--page", metavar="OWNER", help="The page state of OWNER.")

        sub = commands.add_parser("list", help="List stored values (a table, or --json).")
        filters(sub)
        sub.add_argument("--status", choices=STATUS_CHOICES, default="live", help="live (default).")
        sub.add_argument("--limit", type=int, help="At most this many values.")
        sub.add_argument(
            "--json", action="store_true", dest="as_json", help="A JSON array, not a table."
        )

        key(commands.add_parser("get", help="Print a value as JSON (or its default)."))
        key(sub := commands.add_parser("set", help="Store a value, given as JSON."))
        sub.add_argument(
            "text",
            metavar="JSON",
            help="The value in JSON ('-': stdin; '-- -1e5' for one like -1e5).",
        )
        key(commands.add_parser("delete", help="Delete a value."))
        key(commands.add_parser("expire", help="Expire a session or page value now."))

        sub = commands.add_parser("export", help="Write live values as JSON lines.")
        filters(sub)
        sub.add_argument("--output", "-o", metavar="FILE", help="A file, not stdout.")

        sub = commands.add_parser("import", help="Load an export (validated first).")
        sub.add_argument("file", metavar="FILE", help="The export ('-': stdin).")
        sub.add_argument("--dry-run", action="store_true", help="Validate; write nothing.")

        sub = commands.add_parser("stats", help="Counts and bytes per scope and variable.")
        sub.add_argument("--json", action="store_true", dest="as_json", help="JSON, not tables.")

    def handle(self, *args: Any, command: str, **options: Any) -> None:
        load_declarations()
        try:
            getattr(self, f"do_{command}")(**options)
            self.stdout.flush()
        except BrokenPipeError:  # the reader is gone (`statekit list | head`)
            _silence_stdout()
        except (StateError, DatabaseError, OSError, UnicodeError) as exc:
            raise CommandError(f"statekit {command}: {exc}") from exc

    def _key(self, name: str, session: str | None, page: str | None, **options: Any) -> StateKey:
        if session is not None:
            return StateKey(Scope.SESSION, session, name)
        if page is not None:
            return StateKey(Scope.PAGE, page, name)
        return StateKey(Scope.GLOBAL, "", name)

    # -- one value ---------------------------------------------------------------------

    def do_get(self, **options: Any) -> None:
        key = self._key(**options)
        text = get_backend().get(key)  # no ttl: reading here never extends an expiry
        if text is None:
            var = variable_of(key)
            if var is None:
                raise StateError(f"no {key.scope} state {key.name!r} is stored or declared")
            text = encode(var.plain(var.default()), key.name)
            self.stderr.write("(nothing stored: this is the default)")
        self.stdout.write(text)

    def do_set(self, text: str, **options: Any) -> None:
        key = self._key(**options)
        write(key, parse_for(key, sys.stdin.read() if text == "-" else text))
        self.stdout.write(f"Set {key.scope} state {key.name!r}.")

    def do_delete(self, **options: Any) -> None:
        key = self._key(**options)
        done = remove(key)
        self.stdout.write(
            f"{'Deleted' if done else 'Nothing stored in'} {key.scope} state {key.name!r}."
        )

    def do_expire(self, **options: Any) -> None:
        key = self._key(**options)
        expire_now(key)
        self.stdout.write(
            f"Expired {key.scope} state {key.name!r}; statekit_cleanup runs its on_expire."
        )

    # -- many values -------------------------------------------------------------------

    def do_list(
        self,
        *,
        scope: str | None,
        name: str | None,
        owner: str | None,
        status: str,
        limit: int | None,
        as_json: bool,
        **options: Any,
    ) -> None:
        if limit is not None and limit < 0:
            raise CommandError("--limit must be 0 or more.")
        found = get_backend().scan(scope, name, owner, expired=STATUS_CHOICES[status])
        found = iter(islice(found, limit) if limit is not None else found)
        first = next(found, None)  # a failing backend fails before any output
        found = chain([first], found) if first is not None else iter(())
        if as_json:
            self._list_json(found)
            return
        self.stdout.write(f"{'SCOPE':<8} {'NAME':<28} {'OWNER':<66} {'BYTES':>8}  EXPIRES")
        for entry in found:
            expires = when(entry.expires_at) or "never"
            expires += " (expired)" if entry.expired else ""
            self.stdout.write(
                f"{entry.key.scope:<8} {entry.key.name:<28} {entry.key.owner or '-':<66} "
                f"{size(entry.text):>8}  {expires}"
            )

    def _list_json(self, found: Any) -> None:
        self.stdout.write("[", ending="")
        for i, entry in enumerate(found):
            item = {
                "scope": entry.key.scope,
                "owner": entry.key.owner,
                "name": entry.key.name,
                "bytes": size(entry.text),
                "updated_at": when(entry.updated_at),
                "expires_at": when(entry.expires_at),
                "expired": entry.expired,
            }
            self.stdout.write(("," if i else "") + json_dumps(item), ending="")
        self.stdout.write("]")

    def do_export(
        self,
        *,
        scope: str | None,
        name: str | None,
        owner: str | None,
        output: str | None,
        **options: Any,
    ) -> None:
        with open(output, "w", encoding="utf-8") if output else nullcontext(None) as out:
            count = 0
            for entry in get_backend().scan(scope, name, owner):
                line = export_line(entry)
                if out is None:
                    self.stdout.write(line)
                else:
                    out.write(line + "\n")
                count += 1
        self.stderr.write(f"Exported {count} value(s).")

    def do_import(self, *, file: str, dry_run: bool, **options: Any) -> None:
        with nullcontext(sys.stdin) if file == "-" else open(file, encoding="utf-8") as source:
            plans, errors = self._validate(source)
        if errors:
            more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
            shown = "\n".join(errors[:MAX_ERRORS])
            raise StateError(f"nothing was written; {len(errors)} bad line(s):\n{shown}{more}")
        if dry_run:
            self.stdout.write(f"Would import {len(plans)} value(s); wrote nothing.")
            return
        backend = get_backend()
        atomic = (
            transaction.atomic(using=backend.alias)
            if isinstance(backend, DatabaseBackend)
            else nullcontext()
        )
        late = 0
        with atomic:  # the database backends: all lines or none
            for key, value, expires_at in plans:
                left = None if expires_at is None else (expires_at - timezone.now()).total_seconds()
                if left is not None and left <= 0:
                    late += 1  # expired since the export: it would be dead on arrival
                    continue
                write(key, value)
                if left is not None:
                    backend.expire(key, left)
        self.stdout.write(f"Imported {len(plans) - late} value(s).")
        if late:
            self.stdout.write(f"Skipped {late} value(s) whose expiry has passed.")

    def _validate(self, source: IO[str]) -> tuple[list[Any], list[str]]:
        plans, errors = [], []
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                plans.append(planned(line))
            except StateError as exc:
                errors.append(f"line {number}: {exc}")
        return plans, errors

    def do_stats(self, *, as_json: bool, **options: Any) -> None:
        columns = ("values", "bytes", "expired", "expired_bytes")
        scopes: dict[str, Counter[str]] = {scope: Counter() for scope in SCOPES}
        variables: dict[tuple[str, str], Counter[str]] = {}
        for entry in get_backend().scan(expired=None):
            scope, name = origin(entry.key)
            dead = "expired_" if entry.expired else ""
            per_variable = variables.setdefault((scope, name), Counter())
            for counts in (scopes.setdefault(scope, Counter()), per_variable):
                counts["expired" if entry.expired else "values"] += 1
                counts[f"{dead}bytes"] += size(entry.text)
        if as_json:
            self.stdout.write(
                json_dumps(
                    {
                        "scopes": {s: {c: n[c] for c in columns} for s, n in scopes.items()},
                        "variables": [
                            {"scope": s, "name": v, **{c: n[c] for c in columns}}
                            for (s, v), n in sorted(variables.items())
                        ],
                    }
                )
            )
            return
        header = "".join(f"{c.upper():>15}" for c in columns)
        self.stdout.write(f"{'SCOPE':<38}{header}")
        for scope, counts in scopes.items():
            self.stdout.write(f"{scope:<38}" + "".join(f"{counts[c]:>15}" for c in columns))
        self.stdout.write(f"\n{'VARIABLE':<28}{'SCOPE':<10}{header}")
        for (scope, name), counts in sorted(variables.items()):
            cells = "".join(f"{counts[c]:>15}" for c in columns)
            self.stdout.write(f"{name:<28}{scope:<10}{cells}")


def _silence_stdout() -> None:
    """End quietly, as Unix tools do when their reader goes: what is still buffered for
    stdout goes nowhere, so Python's last flush at exit cannot fail loudly either."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def json_dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
