"""Deleting expired state and the state of ended sessions, with the on_expire callbacks.

Run by ``manage.py statekit_cleanup`` (cron it) or by calling :func:`cleanup` from a worker.
Values are claimed in batches with atomic deletes that report what they deleted, so memory
stays bounded, live state is never taken, and two cleanups running at once never run one
callback twice. A claimed value's callback runs right after its batch is claimed: if the
process dies in between, that call is lost (at most once, never twice). Callbacks run here,
never inside the request of the state's owner.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from statekit.backends import get_backend
from statekit.codec import decode
from statekit.keys import StateKey, origin
from statekit.lifecycle.sessions import alive
from statekit.registry import declared, load_declarations, lookup
from statekit.state.scopes import OwnedState
from statekit.state.variable import Variable

logger = logging.getLogger("statekit")


@dataclass
class Report:
    expired: int = 0  # values past their expiry
    ended: int = 0  # values whose session ended
    callbacks: int = 0  # on_expire calls that returned
    failures: int = 0  # on_expire calls that raised (logged)
    undeclared: int = 0  # values of variables this process does not declare (logged)
    by_variable: Counter[tuple[str, str]] = field(default_factory=Counter)


def _counted(scope: str, name: str, count: int, report: Report) -> Variable[Any] | None:
    """Count ``count`` deleted values of a variable; the variable, if declared."""
    report.by_variable[scope, name] += count
    variable = lookup(scope, name)
    if variable is None:
        report.undeclared += count
        logger.warning(
            "statekit: deleted %d value(s) of %s state %r, which no module of this process "
            "declares: no on_expire could run for them.",
            count,
            scope,
            name,
        )
    return variable


def _expire(popped: list[tuple[StateKey, str]], report: Report) -> None:
    for key, text in popped:
        variable = _counted(*origin(key), 1, report)
        if not isinstance(variable, OwnedState) or variable.on_expire is None:
            continue
        try:
            variable.on_expire(variable.typed(decode(text)))  # as get() gives it
        except Exception:
            report.failures += 1
            logger.exception("statekit: on_expire of %s state %r raised.", *origin(key))
        else:
            report.callbacks += 1


def cleanup(*, batch_size: int = 1000, dry_run: bool = False) -> Report:
    """Delete expired and ended state, running on_expire callbacks; see the module doc."""
    load_declarations()  # their on_expire callbacks must be known
    backend = get_backend()
    report = Report()
    if dry_run:
        report.expired = backend.count_expired()
        for batch in backend.orphans(alive, dry_run=True):
            report.ended += len(batch)
            report.by_variable.update(origin(key) for key, _ in batch)
        return report
    # Values no on_expire needs may be deleted unread (the database backends count them).
    keep = {(v.scope, v.name) for v in declared() if getattr(v, "on_expire", None)}
    for cleared in backend.clear_expired(batch_size, keep):
        for (of_scope, name), count in cleared.dropped.items():
            report.expired += count
            _counted(of_scope, name, count, report)
        report.expired += len(cleared.popped)
        _expire(cleared.popped, report)
    for batch in backend.orphans(alive):
        report.ended += len(batch)
        _expire(batch, report)  # type: ignore[arg-type]
    return report
