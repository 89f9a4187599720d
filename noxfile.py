"""The test matrix: the suite on each supported (Python, Django) pair, against the real
services, with deprecation warnings as errors (pytest's ``filterwarnings = error``).

    ./run matrix              every cell (what .ci/run runs)
    ./run matrix -s "tests-3.13(django='6.1')" -- -k csp    one cell, pytest arguments after --

Each cell installs statekit with its test extras into its own virtualenv under .nox/.
``STATEKIT_MATRIX_SKIP=3.11/5.2,3.12/6.0`` skips cells (.ci/run: the one ``./run tests`` ran,
and Django 6.0 between the oldest and the newest pair, to stay within CI's time).
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True

#: (Python, Django): the oldest supported pair, the newest, and Django 6.0 between them.
MATRIX = [("3.11", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")]


@nox.session
@nox.parametrize(("python", "django"), MATRIX)
def tests(session: nox.Session, django: str) -> None:
    if f"{session.python}/{django}" in os.environ.get("STATEKIT_MATRIX_SKIP", "").split(","):
        session.skip("skipped by STATEKIT_MATRIX_SKIP")
    session.install("-e", ".[test]", f"django=={django}.*")
    session.run("python", "-m", "django", "--version")
    session.run("python", "-W", "error::DeprecationWarning", "-m", "pytest", *session.posargs)
