"""statekit.js takes what Python defines from the page's configuration, never from a copy.

Its source is built from js/src (``node js/build.mjs``; the node unit tests are in js/test).
Here: no header name, field name, prefix, budget, time, path or close code that Python
defines appears in its code (comments aside), and the configuration gives each of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import statekit
from statekit.browser.state import browser_config
from statekit.live.consumer import StateConsumer
from statekit.live.outbox import CLOSE_TOO_SLOW
from statekit.live.wiring import live_config
from statekit.state import pages

SCRIPT = Path(statekit.__file__).parent / "static" / "statekit" / "statekit.js"


def code() -> str:
    """statekit.js without its comments."""
    text = re.sub(r"/\*.*?\*/", "", SCRIPT.read_text(), flags=re.S)
    return re.sub(r"(^|\s)//\s.*$", "", text, flags=re.M)


def python_constants() -> list[Any]:
    browser = browser_config({})
    return [
        *(browser[key] for key in ("prefix", "header", "refHeader", "missingHeader")),
        *(browser[key] for key in ("setHeader", "setRefHeader", "field", "writesId")),
        browser["budget"],
        browser["refTtl"],
        live_config()["path"],
        pages.HEADER,
        pages.FIELD,
        CLOSE_TOO_SLOW,
    ]


def test_the_script_holds_no_copy_of_what_python_defines():
    source = code()
    for constant in python_constants():
        if isinstance(constant, str):
            for quote in "\"'`":
                assert f"{quote}{constant}{quote}" not in source, constant
        else:
            assert not re.search(rf"\b{constant}\b", source), constant
    assert json.dumps(list(StateConsumer.scopes))[1:-1] not in source


def test_the_configuration_gives_the_live_scopes():
    assert live_config()["scopes"] == list(StateConsumer.scopes)
