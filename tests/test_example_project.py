"""The example project's first page: the seed's visitor counter."""

from __future__ import annotations

import re

import pytest


@pytest.mark.django_db
def test_each_page_load_counts_a_visitor(client):
    counts = []
    for _ in range(3):
        response = client.get("/")
        assert response.status_code == 200
        counts.append(int(re.search(r'id="visitors">(\d+)<', response.text).group(1)))
    assert counts[1] == counts[0] + 1 and counts[2] == counts[1] + 1
