"""One test per system check, plus the clean configurations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections
from django.test import override_settings

from statekit.checks import (
    check_browser_settings,
    check_lifecycle,
    check_live_settings,
    check_prepared_statements,
    check_settings,
)
from statekit.conf import DEFAULTS
from statekit.lifecycle.closing import sweep_seconds
from tests.conftest import needs

CHECKS = (check_settings, check_lifecycle, check_browser_settings, check_live_settings)

REDIS = settings.CACHES["redis"]
ROOT = Path(__file__).resolve().parent.parent


def ids(**overrides) -> list[str]:
    with override_settings(**overrides):
        return [m.id for check in CHECKS for m in check()]


def test_default_configuration_is_clean():
    assert ids() == []


@pytest.mark.parametrize("backend", ["cache", "cached_db"])
def test_redis_backends_on_a_redis_cache_are_clean(backend):
    assert ids(STATEKIT={"BACKEND": backend, "CACHE_ALIAS": "redis"}) == []


def test_e001_unknown_backend():
    assert ids(STATEKIT={"BACKEND": "nope"}) == ["statekit.E001"]
    assert ids(STATEKIT={"BACKEND": "statekit.conf.DEFAULTS"}) == ["statekit.E001"]


def test_e001_unknown_setting_name():
    assert ids(STATEKIT={"BAKCEND": "db"}) == ["statekit.E001"]
    with override_settings(STATEKIT={"BAKCEND": "db", "MAX_VALU_BYTES": 1, "ZZZ": 1, 7: 1}):
        (message,) = check_settings()
    assert "'BAKCEND', 'MAX_VALU_BYTES', 'ZZZ', 7" in message.msg
    assert message.hint == (
        "STATEKIT['BAKCEND']: did you mean 'BACKEND'?; STATEKIT['MAX_VALU_BYTES']: did you "
        "mean 'MAX_VALUE_BYTES'?; STATEKIT['ZZZ']: remove it; STATEKIT[7]: remove it"
    )


@pytest.mark.parametrize("value", [None, ["BACKEND"], "db"])
def test_e001_statekit_not_a_dict(value):
    assert ids(STATEKIT=value) == ["statekit.E001"]


@pytest.mark.parametrize("conf", [{"MAX_VALU_BYTES": 1}, {"RESOURCE_SWEEP_SECONDS": 0}])
def test_the_resource_sweep_runs_on_its_default_while_settings_are_wrong(conf):
    with override_settings(STATEKIT=conf):
        assert sweep_seconds() == DEFAULTS["RESOURCE_SWEEP_SECONDS"]
    with override_settings(STATEKIT={"RESOURCE_SWEEP_SECONDS": 0.5}):
        assert sweep_seconds() == 0.5


def test_a_setting_typo_is_reported_by_the_checks_before_anything_fails(tmp_path):
    """A project that declares a session_resource (its sweeping thread starts at once)."""
    (tmp_path / "typo_settings.py").write_text(
        "from example_project.settings import *\n"
        'STATEKIT = {**STATEKIT, "RESOURCE_SWEEP_SECOND": 5}\n'
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "typo_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("SystemCheckError"), done.stderr
    assert "Traceback" not in done.stderr and "Exception in thread" not in done.stderr
    assert "(statekit.E001) Unknown STATEKIT setting(s): 'RESOURCE_SWEEP_SECOND'" in done.stderr
    assert "did you mean 'RESOURCE_SWEEP_SECONDS'?" in done.stderr


def test_e002_cache_alias_not_in_caches():
    assert ids(STATEKIT={"BACKEND": "cache", "CACHE_ALIAS": "missing"}) == ["statekit.E002"]


@pytest.mark.parametrize(
    "cache",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.filebased.FileBasedCache",
    ],
)
@pytest.mark.parametrize("backend", ["cache", "cached_db"])
def test_e003_process_local_cache(backend, cache, tmp_path):
    caches = {"default": {"BACKEND": cache, "LOCATION": str(tmp_path)}}
    messages = ids(CACHES=caches, STATEKIT={"BACKEND": backend})
    assert messages == ["statekit.E003"]


def test_e004_cache_without_atomic_operations():
    caches = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "cache_table",
        },
    }
    assert ids(CACHES=caches, STATEKIT={"BACKEND": "cache", "CACHE_ALIAS": "shared"}) == [
        "statekit.E004"
    ]


def test_redis_cluster_nodes_are_clean():
    nodes = ["redis://127.0.0.1:7000", "rediss://user:secret@10.0.0.2:7001"]
    assert ids(STATEKIT={"BACKEND": "cache", "REDIS_CLUSTER": nodes}) == []


@pytest.mark.parametrize(
    "nodes",
    ["redis://127.0.0.1:7000", [], ["127.0.0.1:7000"], ["http://h:1"], [7000], ["redis://h:99999"]],
)
@pytest.mark.parametrize("backend", ["cache", "cached_db"])
def test_e009_redis_cluster_not_a_list_of_node_urls(backend, nodes):
    assert ids(STATEKIT={"BACKEND": backend, "REDIS_CLUSTER": nodes}) == ["statekit.E009"]


def test_e005_database_alias_not_in_databases():
    assert ids(STATEKIT={"BACKEND": "db", "DATABASE": "nope"}) == ["statekit.E005"]


@pytest.mark.parametrize("limit", [0, -1, "1MB", True])
def test_e006_bad_max_value_bytes(limit):
    assert ids(STATEKIT={"MAX_VALUE_BYTES": limit}) == ["statekit.E006"]


def test_hints_name_the_setting_to_change():
    with override_settings(STATEKIT={"BACKEND": "cache"}):
        (message,) = check_settings()
    assert message.id == "statekit.E003" and 'STATEKIT["CACHE_ALIAS"]' in message.hint


def test_manage_py_check_fails_on_an_error():
    with override_settings(STATEKIT={"BACKEND": "cache"}):
        with pytest.raises(SystemCheckError, match=r"statekit\.E003"):
            call_command("check")


def test_w001_middleware_missing(settings):
    middleware = [m for m in settings.MIDDLEWARE if "statekit" not in m]
    assert ids(MIDDLEWARE=middleware) == ["statekit.W001"]


def test_e007_signed_cookie_sessions():
    engine = "django.contrib.sessions.backends.signed_cookies"
    assert ids(SESSION_ENGINE=engine) == ["statekit.E007"]


@pytest.mark.parametrize("key", ["PAGE_CLOSED_TTL", "RESOURCE_SWEEP_SECONDS", "CACHE_TIMEOUT"])
def test_e008_lifetimes_must_be_positive(key):
    assert ids(STATEKIT={key: 0}) == ["statekit.E008"]


@pytest.mark.parametrize(
    "backend", [pytest.param(name, marks=needs("postgres")) for name in ("db", "cached_db")]
)
def test_i010_statements_not_prepared_on_postgresql_at_deploy(backend, monkeypatch):
    conf = {"BACKEND": backend, "DATABASE": "postgres", "CACHE_ALIAS": "redis"}
    options = connections["postgres"].settings_dict.setdefault("OPTIONS", {})
    monkeypatch.delitem(options, "prepare_threshold", raising=False)
    with override_settings(STATEKIT=conf):
        found = check_prepared_statements()
        assert [m.id for m in found] == ["statekit.I010"]
        assert 'DATABASES["postgres"]["OPTIONS"]["prepare_threshold"]' in found[0].hint
        for chosen in (5, None):  # prepared, or kept off on purpose
            monkeypatch.setitem(options, "prepare_threshold", chosen)
            assert check_prepared_statements() == []
    # Not a plain check: the demo and development need no such advice.
    assert "statekit.I010" not in ids(STATEKIT=conf)


@pytest.mark.parametrize(
    "conf",
    [{"BACKEND": "db", "DATABASE": "default"}, {"BACKEND": "cache", "CACHE_ALIAS": "redis"}],
)
def test_i010_not_on_sqlite_nor_redis(conf):
    with override_settings(STATEKIT=conf):
        assert check_prepared_statements() == []
