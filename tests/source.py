"""Reading Python source in tests."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def parse(path: Path) -> ast.Module:
    """``ast.parse`` in a thread of its own: on Python 3.11.7 a thread whose recursion counter
    was left off by earlier deep recursion (the codec's fuzz tests) can raise "AST constructor
    recursion depth mismatch" (a CPython bug, fixed in 3.11.8)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(ast.parse, path.read_text()).result()
