"""statekit's codec side by side with the ``json`` calls it wraps, in one run.

``encode`` (type, surrogate, integer, NaN and depth checks, then ``json.dumps``) against
``json.dumps`` with Django's ``DjangoJSONEncoder``; ``decode`` (tagged values checked)
against ``json.loads``. Raw and statekit alternate within each round; the median over the
rounds is reported. No server needed.

    python benchmarks/bench_codec.py [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # statekit from this checkout
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

import django

django.setup()

from django.core.serializers.json import DjangoJSONEncoder  # noqa: E402

from statekit.codec import decode, encode  # noqa: E402

VALUES: dict[str, Any] = {
    "cart: 200 dicts, Decimals": [
        {"sku": f"item-{i}", "qty": i, "price": Decimal("9.99"), "tags": ["a", "b"]}
        for i in range(200)
    ],
    "chat: 500 non-ASCII lines": [f"héllo wörld {i}: ünïcode ✓" for i in range(500)],
    "counter: one int": 12345,
}


def per_call(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    print(f"{'value':28} {'call':7} {'raw µs':>9} {'statekit µs':>12} {'ratio':>6}")
    for label, value in VALUES.items():
        text = encode(value, "v")
        calls = 20000 if isinstance(value, int) else 100
        pairs = {
            "encode": (
                lambda v=value: json.dumps(v, cls=DjangoJSONEncoder, ensure_ascii=False),
                lambda v=value: encode(v, "v"),
            ),
            "decode": (lambda t=text: json.loads(t), lambda t=text: decode(t)),
        }
        for call, (raw, ours) in pairs.items():
            raws, oursl = [], []
            for i in range(rounds):
                order = [(raw, raws), (ours, oursl)]
                for fn, out in order if i % 2 else order[::-1]:
                    out.append(per_call(fn, calls))
            r, s = statistics.median(raws), statistics.median(oursl)
            print(f"{label:28} {call:7} {r * 1e6:9.1f} {s * 1e6:12.1f} {s / r:6.2f}")


if __name__ == "__main__":
    main()
