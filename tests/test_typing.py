"""The package passes ``mypy --strict`` (pyproject's [tool.mypy], with django-stubs), and its
public API is generic over the value type (tests/typing_check.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_state_classes_are_generic_over_their_value_type() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "tests/typing_check.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
