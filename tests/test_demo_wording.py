"""The demos speak to a reader who knows Gradio's guides, not this project's history, and use
only the API the README documents (a demo is what users copy)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from example_project.demo.demos import APP, DEMOS
from tests.source import parse

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["index", *DEMOS])
def test_demo_pages_name_gradio_not_the_seed(name):
    html = Client().get(reverse(f"demo:{name}")).content.decode()
    assert not re.search(r"\bseed\b", html, re.IGNORECASE)


def test_demo_code_names_no_seed():
    for path in APP.rglob("*"):
        if path.suffix in (".py", ".js", ".html"):
            assert not re.search(r"\bseed\b", path.read_text(), re.IGNORECASE), path


def test_the_demos_import_only_documented_statekit_api():
    used = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("statekit"):
                used |= {f"{node.module}.{alias.name}" for alias in node.names}
    assert used
    for dotted in sorted(used):
        module, _, name = dotted.rpartition(".")
        documented = f"{module}.{name}" in README if module != "statekit" else name in README
        assert documented, f"{dotted} is used by a demo but not in README.md"
