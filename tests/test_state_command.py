"""``manage.py statekit``: every subcommand, on every backend (the ``backend`` fixture)."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.test import override_settings

from statekit import GlobalState, PageState, SessionState
from statekit.backends import StateKey, get_backend
from statekit.management.commands.statekit import Command

TOKEN = "0123456789abcdef0123456789abcdef"


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("statekit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_set_get_delete_global(backend, name, state_changes):
    GlobalState(name, default=0)
    out, _ = run(
        "set", name, '{"a": [1, 2.5, null], "when": {"__sk__": "date", "v": "2024-05-01"}}'
    )
    assert "Set global state" in out
    assert state_changes == [
        ("global", name, None, {"a": [1, 2.5, None], "when": datetime(2024, 5, 1).date()})
    ]
    out, err = run("get", name)
    assert json.loads(out) == {"a": [1, 2.5, None], "when": {"__sk__": "date", "v": "2024-05-01"}}
    assert err == ""
    out, _ = run("delete", name)
    assert out.startswith("Deleted")
    assert state_changes[-1] == ("global", name, None, None)
    out, err = run("get", name)
    assert out.strip() == "0" and "default" in err
    assert run("delete", name)[0].startswith("Nothing stored")


def test_session_and_page_values(backend, name, state_changes):
    cart = SessionState(name, default=list, ttl=600)
    chat = PageState(name, default=list)
    page = f"sess1.{TOKEN}"
    run("set", name, '["apple"]', "--session", "sess1")
    run("set", name, '["hi"]', "--page", page)
    assert cart.get("sess1") == ["apple"] and chat.get(page) == ["hi"]
    assert state_changes == [("session", name, "sess1", ["apple"]), ("page", name, page, ["hi"])]
    assert json.loads(run("get", name, "--session", "sess1")[0]) == ["apple"]
    assert json.loads(run("get", name, "--page", page)[0]) == ["hi"]
    run("delete", name, "--page", page)
    assert chat.get(page) == [] and cart.get("sess1") == ["apple"]


def test_set_validates_through_the_variable(backend, name):
    counter = GlobalState(name, default=0)
    for bad, message in [
        ("{not json", "not valid JSON"),
        ("NaN", "JSON cannot store"),
        ('{"__sk__": "decimal", "v": "x"}', "not valid JSON"),
    ]:
        with pytest.raises(CommandError, match=message):
            run("set", name, bad)
    with override_settings(STATEKIT={**settings.STATEKIT, "MAX_VALUE_BYTES": 10}):
        with pytest.raises(CommandError, match="over the limit"):
            run("set", name, '"' + "x" * 20 + '"')
    with pytest.raises(CommandError, match="is declared"):
        run("set", name + "-undeclared", "1")
    with pytest.raises(CommandError, match="must be the request, or a page owner"):
        PageState(name, default=0)
        run("set", name, "1", "--page", "not-a-page")
    assert counter.get() == 0
    assert get_backend().get(StateKey("global", "", name)) is None


def test_errors_exit_non_zero(backend, name, capsys):
    with pytest.raises(SystemExit) as exit_:
        Command().run_from_argv(["manage.py", "statekit", "get", name])
    assert exit_.value.code == 1
    assert "is stored or declared" in capsys.readouterr().err


def _values(backend, name):
    GlobalState(name, default=0).set(Decimal("1.50"))
    session = SessionState(name, ttl=600)
    session.set("s1", {"n": 1})
    session.set("s2", "x" * 100)
    PageState(name).set(f"s1.{TOKEN}", [1, 2, 3])


def test_list_filters_and_json(backend, name):
    _values(backend, name)
    out, _ = run("list")
    lines = out.splitlines()
    assert lines[0].split() == ["SCOPE", "NAME", "OWNER", "BYTES", "EXPIRES"]
    assert len(lines) == 5
    rows = json.loads(run("list", "--json")[0])
    assert {(r["scope"], r["owner"]) for r in rows} == {
        ("global", ""),
        ("session", "s1"),
        ("page", f"s1.{TOKEN}"),
        ("session", "s2"),
    }
    sizes = {r["owner"]: r["bytes"] for r in rows}
    assert sizes["s2"] == 102 and sizes[""] == len('{"__sk__":"decimal","v":"1.50"}')
    by_owner = json.loads(run("list", "--json", "--owner", "s1")[0])
    assert {r["scope"] for r in by_owner} == {"session", "page"}  # a session and its pages
    assert [r["owner"] for r in json.loads(run("list", "--json", "--scope", "session")[0])]
    one = json.loads(run("list", "--json", "--scope", "session", "--owner", "s2")[0])
    assert [(r["owner"], r["expired"]) for r in one] == [("s2", False)]
    assert one[0]["expires_at"]
    assert len(json.loads(run("list", "--json", "--limit", "2")[0])) == 2
    assert json.loads(run("list", "--json", "--name", name + "x")[0]) == []


def test_expire_then_list_expired_and_cleanup(backend, name):
    expired = []
    cart = SessionState(name, default=0, ttl=600, on_expire=expired.append)
    s1, s2 = SessionStore(), SessionStore()
    s1.create()
    s2.create()  # live sessions: the cleanup leaves their state alone
    s1, s2 = s1.session_key, s2.session_key
    cart.set(s1, 5)
    cart.set(s2, 6)
    with pytest.raises(CommandError, match="never expires"):
        GlobalState(name, default=0)
        run("expire", name)
    run("expire", name, "--session", s1)
    time.sleep(0.01)  # Redis: "now" is 1 ms ahead
    assert cart.get(s1) == 0 and cart.get(s2) == 6
    dead = json.loads(run("list", "--json", "--status", "expired")[0])
    assert [(r["owner"], r["expired"]) for r in dead] == [(s1, True)]
    assert len(json.loads(run("list", "--json", "--status", "all")[0])) == 2
    call_command("statekit_cleanup", stdout=io.StringIO())
    assert expired == [5]


def test_export_then_import_restores_exactly(backend, name, tmp_path):
    _values(backend, name)
    first = tmp_path / "first.jsonl"
    _, err = run("export", "--output", str(first))
    assert "Exported 4 value(s)" in err
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    assert len(lines) == 4
    assert all(set(line) == {"scope", "owner", "name", "value", "expires_at"} for line in lines)
    (session,) = [line for line in lines if line["scope"] == "session" and line["owner"] == "s1"]
    assert session["value"] == '{"n":1}' and session["expires_at"]
    stdout_export, _ = run("export")
    assert sorted(stdout_export.splitlines()) == sorted(first.read_text().splitlines())

    for line in lines:
        get_backend().discard(StateKey(line["scope"], line["owner"], line["name"]))
    assert run("export")[0] == ""
    out, _ = run("import", str(first), "--dry-run")
    assert "Would import 4 value(s)" in out
    assert run("export")[0] == ""
    out, _ = run("import", str(first))
    assert "Imported 4 value(s)" in out

    again = {(r["scope"], r["owner"]): r for r in map(json.loads, run("export")[0].splitlines())}
    for line in lines:
        restored = again[line["scope"], line["owner"]]
        assert restored["value"] == line["value"]
        if line["expires_at"] is None:
            assert restored["expires_at"] is None
        else:
            before = datetime.fromisoformat(line["expires_at"])
            after = datetime.fromisoformat(restored["expires_at"])
            assert abs((after - before).total_seconds()) < 2
    assert GlobalState(name, default=0).get() == Decimal("1.50")


def test_import_validates_every_line_before_writing(backend, name, tmp_path):
    counter = GlobalState(name, default=0)
    SessionState(name)
    good = {"scope": "global", "owner": "", "name": name, "value": "7", "expires_at": None}
    bad_lines = [
        "{oops",
        json.dumps({**good, "extra": 1}),
        json.dumps({**good, "scope": "nowhere"}),
        json.dumps({**good, "name": name + "-undeclared"}),
        json.dumps({**good, "value": "[1,"}),
        json.dumps({**good, "owner": "someone"}),
        json.dumps({**good, "expires_at": "2099-01-01T00:00:00+00:00"}),
        json.dumps({**good, "scope": "session", "owner": "s", "expires_at": "tomorrow"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(good), *bad_lines]) + "\n")
    with pytest.raises(CommandError) as error:
        run("import", str(path))
    message = str(error.value)
    assert "nothing was written; 8 bad line(s)" in message
    for number in range(2, 10):
        assert f"line {number}:" in message
    assert counter.get() == 0
    path.write_text(json.dumps(good) + "\n\n")
    assert "Imported 1 value(s)" in run("import", str(path))[0]
    assert counter.get() == 7


def test_import_skips_values_expired_since_the_export(backend, name, tmp_path):
    SessionState(name, ttl=60)
    past = datetime(2020, 1, 1, tzinfo=UTC).isoformat()
    line = {"scope": "session", "owner": "s", "name": name, "value": "1", "expires_at": past}
    path = tmp_path / "late.jsonl"
    path.write_text(json.dumps(line) + "\n")
    out, _ = run("import", str(path))
    assert "Imported 0 value(s)" in out and "Skipped 1" in out
    assert run("export")[0] == ""


def test_stats(backend, name):
    _values(backend, name)
    SessionState(name, ttl=600).set("s3", 1)
    run("expire", name, "--session", "s3")
    time.sleep(0.01)
    data = json.loads(run("stats", "--json")[0])
    assert data["scopes"]["global"] == {
        "values": 1,
        "bytes": len('{"__sk__":"decimal","v":"1.50"}'),
        "expired": 0,
        "expired_bytes": 0,
    }
    assert data["scopes"]["session"] == {
        "values": 2,
        "bytes": len('{"n":1}') + 102,
        "expired": 1,
        "expired_bytes": 1,
    }
    assert data["scopes"]["page"]["values"] == 1
    variables = {(v["scope"], v["name"]): v for v in data["variables"]}
    assert variables["page", name]["bytes"] == len("[1,2,3]")
    table, _ = run("stats")
    assert table.splitlines()[0].split() == ["SCOPE", "VALUES", "BYTES", "EXPIRED", "EXPIRED_BYTES"]
    assert any(line.startswith(name) for line in table.splitlines())


def test_buried_values_are_expired_values_of_their_variable(backend, name):
    cart = SessionState(name, default=0, ttl=600)
    cart.set("s1", 1)
    run("expire", name, "--session", "s1")
    time.sleep(0.01)
    cart.set("s1", 2)  # over the dead value, which waits (buried) for its on_expire
    rows = json.loads(run("list", "--json", "--status", "all", "--name", name)[0])
    assert sorted((r["scope"], r["owner"], r["expired"]) for r in rows) == [
        ("expired", "s1", True),
        ("session", "s1", False),
    ]
    for filters in (["--scope", "session"], ["--owner", "s1"], ["--name", name]):
        dead = json.loads(run("list", "--json", "--status", "expired", *filters)[0])
        assert [r["scope"] for r in dead] == ["expired"]
    assert json.loads(run("list", "--json", "--status", "expired", "--scope", "page")[0]) == []
    data = json.loads(run("stats", "--json")[0])
    (variable,) = [v for v in data["variables"] if v["name"] == name]
    assert (variable["scope"], variable["values"], variable["expired"]) == ("session", 1, 1)
    assert "Exported 1 value(s)" in run("export")[1]  # live values only
