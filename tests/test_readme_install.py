"""The README's "Install into an existing project" section, followed to the letter: a brand-new
``django-admin startproject`` gets the section's snippets (read from README.md itself, so this
test breaks when the README does), passes ``check`` with no warning, and its server (daphne's
runserver) serves the counter, page state, browser state and live updates to Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.browser import launch_options, watch_errors
from tests.conftest import needs
from tests.live_support import ROOT, free_port

SECTION = "## Install into an existing project"
#: The first line of a snippet names its file: "# path", "# path: add at the end" (append),
#: "# path: replace its content", or "<!-- path -->" for a template.
TARGET = re.compile(
    r"^(?:# |<!-- )(?P<path>[\w/.]+?)(?P<how>: add at the end|: replace its content)?(?: -->)?$"
)


def snippets() -> list[tuple[str, bool, str]]:
    """(path, append, text) of each file snippet of the README's install section."""
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found = []
    for block in re.findall(r"```(?:python|html)\n(.*?)```", section, re.S):
        first = block.splitlines()[0]
        match = TARGET.match(first)
        assert match, f"a README install snippet does not name its file: {first!r}"
        found.append((match["path"], match["how"] == ": add at the end", block))
    return found


def run(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="statekit-readme-") as tmp:
        site = Path(tmp)
        run("-m", "django", "startproject", "mysite", ".", cwd=site)
        run("manage.py", "startapp", "shop", cwd=site)
        for path, append, text in snippets():
            target = site / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if append:
                text = target.read_text() + "\n" + text
            target.write_text(text)
        yield site


def test_readme_names_every_file_it_needs() -> None:
    paths = {path for path, _, _ in snippets()}
    assert {"mysite/settings.py", "mysite/urls.py", "mysite/asgi.py", "shop/state.py"} <= paths


def test_the_project_passes_its_checks(project: Path) -> None:
    out = run("manage.py", "check", "--fail-level", "WARNING", cwd=project)
    assert "no issues" in out
    run("manage.py", "migrate", "--noinput", cwd=project)
    run("manage.py", "statekit_cleanup", cwd=project)  # the cron line's command: exit 0


@pytest.fixture
def server(project: Path) -> Iterator[str]:
    run("manage.py", "migrate", "--noinput", cwd=project)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urlopen(url + "/", timeout=10).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise AssertionError(log.read().decode(errors="replace")) from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(10)


@pytest.mark.parametrize("_", [pytest.param(None, marks=needs("chromium"))])
def test_the_project_serves_every_kind_of_state(server: str, _: None) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        try:
            context = browser.new_context()
            one, two = context.new_page(), context.new_page()
            errors = [watch_errors(one), watch_errors(two)]
            failed: list[str] = []  # responses over 400, but the favicon Chromium asks for
            context.on(
                "response",
                lambda r: r.status >= 400 and "favicon" not in r.url and failed.append(r.url),
            )
            one.goto(server + "/")
            first = int(one.locator("#visitors").text_content() or "0")
            expect(one.locator("#visitors")).to_have_text(str(first))
            one.wait_for_function("statekit.live.status === 'open'")
            two.goto(server + "/")  # counted: the first tab sees it live
            expect(one.locator("#visitors")).to_have_text(str(first + 1))

            for expected in ("1", "2"):  # page state: per tab
                one.click("#click")
                expect(one.locator("#clicks")).to_have_text(expected)
            two.click("#click")
            expect(two.locator("#clicks")).to_have_text("1")

            one.fill("#name", "ada")  # browser state: kept in localStorage, sent to views
            one.locator("#name").dispatch_event("change")
            two.reload()
            expect(two.locator("#hello")).to_have_text("ada")
            with two.expect_response(lambda r: r.url.endswith("/click/")) as response:
                two.click("#click")
            assert response.value.json() == {"clicks": 1, "user": "ada"}  # reload: afresh
            assert failed == []
            assert [e for tab in errors for e in tab if "404" not in e] == []
        finally:
            browser.close()
