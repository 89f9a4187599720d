"""The release: ``python -m build`` makes a wheel and an sdist that install in a clean virtualenv
and pass ``manage.py check`` with only the db backend's dependencies (no Redis client, no
Channels); a feature whose extra is missing says which extra to install."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "packaging-test"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "statekit",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "statekit.middleware.StatekitMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
ROOT_URLCONF = "urls"
USE_TZ = True
import os
STATEKIT = {"BACKEND": os.environ.get("BACKEND", "db")}
"""

URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("statekit/", include("statekit.urls"))]
"""


def run(*command: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd), "DJANGO_SETTINGS_MODULE": "settings", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    ok(run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=out))
    return out


def test_the_wheel_and_sdist_hold_the_app_and_its_files(dist):
    (wheel,) = dist.glob("statekit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [
        "statekit/py.typed",
        "statekit/static/statekit/statekit.js",
        "statekit/static/statekit/admin.css",
        "statekit/templates/statekit/admin/change_list.html",
        "statekit/migrations/0001_initial.py",
    ]:
        assert name in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if not n.startswith("statekit")]  # no tests, no demo
    metadata = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    )
    assert "License-Expression: BSD-3-Clause" in metadata
    required = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert sorted(re.split("[<>=]", r)[0] for r in required) == ["cryptography", "django"]
    (sdist,) = dist.glob("statekit-*.tar.gz")
    with tarfile.open(sdist) as archive:
        files = {Path(*Path(n).parts[1:]).as_posix() for n in archive.getnames()}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= files
    assert "statekit/templatetags/statekit.py" in files
    assert not [f for f in files if f.startswith(("tests/", "example_project/"))]


@pytest.mark.parametrize("kind", ["whl", "tar.gz"])
def test_a_clean_install_passes_check_with_the_db_backend_only(dist, tmp_path, kind):
    (package,) = dist.glob(f"statekit-*.{kind}")
    ok(run(sys.executable, "-m", "venv", tmp_path / "venv", cwd=tmp_path))
    python = tmp_path / "venv" / "bin" / "python"
    ok(run(python, "-m", "pip", "install", "-q", package, cwd=tmp_path))
    (tmp_path / "settings.py").write_text(SETTINGS)
    (tmp_path / "urls.py").write_text(URLS)

    assert "no issues" in ok(run(python, "-m", "django", "check", cwd=tmp_path))
    ok(run(python, "-m", "django", "migrate", "-v", "0", cwd=tmp_path))
    write = "from statekit import GlobalState; v = GlobalState('n', default=0); print(v.incr(5))"
    assert ok(run(python, "-c", f"import django; django.setup(); {write}", cwd=tmp_path)) == "5\n"
    for package_name in ("channels", "redis", "django_redis"):
        absent = f"import importlib.util as u; assert u.find_spec({package_name!r}) is None"
        ok(run(python, "-c", absent, cwd=tmp_path))

    # A feature whose extra is missing names the extra, in one line.
    done = run(python, "-m", "django", "check", cwd=tmp_path, BACKEND="cache")
    assert done.returncode == 1
    assert 'pip install "statekit[redis]"' in done.stderr and "Traceback" not in done.stderr
    routing = "import django; django.setup(); import statekit.routing"
    done = run(python, "-c", routing, cwd=tmp_path)
    assert "ImproperlyConfigured: statekit.routing (live state) needs the " in done.stderr
    assert 'pip install "statekit[live]"' in done.stderr
