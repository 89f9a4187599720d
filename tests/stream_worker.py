"""Another process for the change-stream tests: ``python -m tests.stream_worker SETUP NAME
VALUE`` sets public global state ``NAME`` to ``VALUE`` (JSON) with the test's settings.

``SETUP`` (JSON): ``databases`` (alias: the test database's name) and ``statekit`` (settings),
as in tests/update_worker.py."""

from __future__ import annotations

import json
import sys

import django
from django.conf import settings


def main(setup: dict[str, object], name: str, value: object) -> None:
    for alias, database in setup["databases"].items():  # type: ignore[attr-defined]
        settings.DATABASES[alias]["NAME"] = database
    settings.STATEKIT = setup["statekit"]
    django.setup()
    from statekit import GlobalState

    GlobalState(name, default=0, public=True).set(value)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]))
