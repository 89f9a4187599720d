"""A process of the outage tests that takes orders on stdin, one a line, and answers each
with a JSON line: ``get`` (the value of the declared variable), ``set <json>`` ("ok").

Run as ``python -m tests.outage_worker [retry seconds]`` with tests/outage_settings.py; the
argument stretches ``cached_db.RETRY_SECONDS`` so a test can act inside the retry window.
"""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    django.setup()
    from statekit.backends import cached_db
    from tests.outage_urls import counter

    if len(sys.argv) > 1:
        cached_db.RETRY_SECONDS = float(sys.argv[1])
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "get":
            answer = counter.get()
        else:
            counter.set(json.loads(arg))
            answer = "ok"
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
