"""``manage.py statekit`` under hostile input, on every backend: a CommandError (exit 1, no
traceback) and nothing written; a closed stdout ends the command quietly."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from statekit import GlobalState, SessionState
from statekit.management.commands.statekit import Command

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 20000 + "]" * 20000
HOSTILE = [
    pytest.param(DEEP, "nested over", id="deep"),
    pytest.param('["\\ud800"]', "lone surrogate", id="surrogate"),
    pytest.param("1" * 5000, "not valid JSON", id="huge-int"),
    pytest.param('{"__sk__": "decimal", "v": "sNaN"}', "sNaN", id="decimal-snan"),
    pytest.param('{"__sk__": "date", "v": "2099-13-45"}', "month must be", id="bad-date"),
    pytest.param('{"__sk__": "timedelta", "v": [1e300, 0, 0]}', "not a timedelta", id="td"),
]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("statekit", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize("text, message", HOSTILE)
def test_set_refuses_hostile_json_with_a_command_error(backend, name, text, message, capsys):
    counter = GlobalState(name, default=0)
    with pytest.raises(CommandError, match=message):
        run("set", name, text)
    with pytest.raises(SystemExit) as exit_:
        Command().run_from_argv(["manage.py", "statekit", "set", name, text])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("CommandError: statekit set:")
    assert counter.get() == 0 and list(backend.scan(name=name, expired=None)) == []


def test_import_refuses_hostile_lines_and_writes_nothing(backend, name, tmp_path):
    counter = GlobalState(name, default=0)
    cart = SessionState(name, default=list, ttl=60)
    good = {"scope": "global", "owner": "", "name": name, "value": "7", "expires_at": None}
    session = {**good, "scope": "session", "owner": "s1", "value": "[1]"}
    hostile = [
        {**good, "value": DEEP},
        {**good, "value": '{"__sk__": "date", "v": "2099-13-45"}'},
        {**good, "value": '["\\ud800"]'},
        {**session, "expires_at": "2099-13-45T00:00:00+00:00"},
        {**session, "expires_at": "9999-12-31T23:59:59-14:00"},
        {**session, "expires_at": "2300-01-01T00:00:00+00:00"},
        {**session, "owner": "s\ud800"},
        {**good, "name": name + "\ud800"},
    ]
    lines = [json.dumps(session), *map(json.dumps, hostile), "[" * 50000, json.dumps(good)]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError) as error:
        run("import", str(path))
    message = str(error.value)
    assert "nothing was written; 9 bad line(s)" in message
    assert "line 2: The value of" in message and "nested over" in message
    assert "line 5: expires_at '2099-13-45T00:00:00+00:00' is not an ISO 8601" in message
    assert "line 6: expires_at 9999-12-31T23:59:59-14:00 is more than 100 years" in message
    assert "line 7: expires_at 2300" in message and "line 10: not JSON" in message
    assert counter.get() == 0 and cart.get("s1") == []
    assert list(backend.scan(name=name, expired=None)) == []


@pytest.mark.django_db(transaction=True)
def test_a_closed_stdout_ends_the_command_quietly(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    for var in ("DATABASE_URL", "REDIS_URL"):
        env.pop(var, None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True, timeout=120)
    subprocess.run([*manage, "statekit", "set", "visitors", "3"], env=env, check=True, timeout=60)
    for args in (["list", "--json"], ["list"], ["export"], ["stats"]):
        with subprocess.Popen(
            [*manage, "statekit", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            process.stdout.close()  # the reader is gone before the command writes: `| head -0`
            err = process.stderr.read().decode()
            assert process.wait(timeout=60) == 0, err
        assert err == "" or err.startswith("Exported"), err
