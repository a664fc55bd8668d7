"""/api/docs in a real browser: Swagger UI renders every operation under the app's CSP, offline."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.browser


def test_the_api_docs_render_every_operation_from_files_the_app_serves(page, server):
    outside: list[str] = []
    blocked: list[str] = []
    page.on(
        "request", lambda request: None if request.url.startswith(server) else outside.append(request.url)
    )
    page.on(
        "console",
        lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None,
    )

    page.goto("/api/docs")
    page.wait_for_selector(".opblock", timeout=15_000)

    spec = requests.get(server + "/api/v1/openapi.json", timeout=10).json()
    operations = sum(
        len([m for m in item if m in ("get", "post", "patch", "put", "delete")])
        for item in spec["paths"].values()
    )
    assert page.locator(".opblock").count() == operations
    assert outside == []
    assert blocked == []
