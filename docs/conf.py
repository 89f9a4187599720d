"""Sphinx configuration of statekit's documentation (built by ``./run tests`` with -W)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
django.setup()  # autodoc imports statekit, whose modules need settings

project = "statekit"
author = "statekit contributors"
copyright = "statekit contributors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
html_theme = "furo"
html_title = "statekit"
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
