"""``--no-auth`` serves this machine only: pages from elsewhere, and names that are not
local, are turned away, so a website a developer visits cannot act as the local user."""

from __future__ import annotations

import httpx
import pytest

from tests.served import serving

pytestmark = pytest.mark.above_the_database


def test_without_tokens_only_local_pages_and_names_get_in(db_url, tmp_path):
    with serving(db_url, tmp_path) as server:
        assert httpx.get(f"{server.url}/ok").status_code == 200
        # DNS rebinding: a foreign name that resolves to 127.0.0.1.
        rebound = httpx.get(f"{server.url}/threads/search", headers={"host": "evil.example"})
        assert rebound.status_code == 400
        preflight = {"access-control-request-method": "POST"}
        for origin, allowed in [("http://localhost:3000", True), ("https://evil.example", False)]:
            answer = httpx.options(
                f"{server.url}/threads/search", headers={**preflight, "origin": origin}
            )
            assert (answer.headers.get("access-control-allow-origin") == origin) is allowed
