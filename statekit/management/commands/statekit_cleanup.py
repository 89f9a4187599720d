from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from statekit.exceptions import StateError
from statekit.lifecycle.cleanup import cleanup


class Command(BaseCommand):
    help = (
        "Delete expired statekit state and the state of ended sessions, running their "
        "on_expire callbacks. Safe to run while serving traffic, and twice at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Values claimed per batch (1000)."
        )

    def handle(self, *args: Any, dry_run: bool, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            report = cleanup(batch_size=batch_size, dry_run=dry_run)
        except (DatabaseError, StateError) as exc:
            raise CommandError(f"statekit_cleanup failed: {exc}") from exc
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {report.expired} expired value(s) and {report.ended} value(s) of ended "
            "sessions."
        )
        for (scope, name), count in sorted(report.by_variable.items()):
            self.stdout.write(f"  {scope} {name}: {count}")
        if not dry_run:
            self.stdout.write(f"Ran {report.callbacks} on_expire callback(s).")
        if report.undeclared:
            self.stdout.write(
                f"{report.undeclared} value(s) of variables no module declares went without "
                "on_expire (see the 'statekit' log)."
            )
        if report.failures:
            raise CommandError(
                f"{report.failures} on_expire callback(s) raised; see the 'statekit' log."
            )
