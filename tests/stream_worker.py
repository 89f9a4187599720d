"""Another process for the change-stream tests.

``python -m tests.stream_worker set SETUP NAME VALUE`` sets public global state ``NAME`` to
``VALUE`` (JSON) with the test's settings (``SETUP``, JSON: ``databases``, alias: the test
database's name, and ``statekit``, as in tests/update_worker.py).

``python -m tests.stream_worker follow NAME`` prints the values of ``NAME.changes()`` (JSON,
one a line) until its stdin closes, with the settings of ``DJANGO_SETTINGS_MODULE``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import aclosing
from typing import Any

import django
from django.conf import settings


def write(setup: dict[str, Any], name: str, value: object) -> None:
    for alias, database in setup["databases"].items():
        settings.DATABASES[alias]["NAME"] = database
    settings.STATEKIT = setup["statekit"]
    django.setup()
    from statekit import GlobalState

    GlobalState(name, default=0, public=True).set(value)


async def follow(name: str) -> None:
    django.setup()
    from statekit import GlobalState

    variable = GlobalState(name, default=0, public=True)
    closed = asyncio.ensure_future(asyncio.to_thread(sys.stdin.read))
    async with aclosing(variable.changes()) as values:
        while not closed.done():
            step = asyncio.ensure_future(anext(values))
            await asyncio.wait([step, closed], return_when=asyncio.FIRST_COMPLETED)
            if step.done():
                print(json.dumps(step.result()), flush=True)
            else:
                step.cancel()


if __name__ == "__main__":
    if sys.argv[1] == "set":
        write(json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))
    else:
        asyncio.run(follow(sys.argv[2]))
