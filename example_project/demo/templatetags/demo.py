"""``{% current_demo as demo %}``: the Demo (demo/demos.py) of the page being rendered."""

from __future__ import annotations

from django import template

from example_project.demo.demos import DEMOS, Demo

register = template.Library()


@register.simple_tag(takes_context=True)
def current_demo(context: template.Context) -> Demo | None:
    match = getattr(context.get("request"), "resolver_match", None)
    return DEMOS.get(match.url_name) if match is not None else None
