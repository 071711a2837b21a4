"""A dashboard page whose API call fails unexpectedly shows a page that says so, never a 500."""

from __future__ import annotations

import re
import uuid

from litestar.testing import TestClient

from relay.ui import api_client


def signed_up(api: TestClient) -> None:
    form = api.get("/ui/signup").text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', form)
    assert token is not None
    answer = api.post("/ui/signup", data={
        "_csrf_token": token.group(1), "email": f"ui-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a long enough password", "password_again": "a long enough password", "tenant_name": "UI",
    }, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_an_api_failure_no_page_expects_becomes_a_page(api: TestClient, monkeypatch) -> None:
    signed_up(api)

    async def failing(self, method, path, **kwargs):  # noqa: ANN001, ANN003, ANN202
        raise api_client.ApiError(503, {"detail": "The database is unavailable; retry shortly."})

    monkeypatch.setattr(api_client.Api, "call", failing)
    page = api.get("/ui", follow_redirects=False)
    assert page.status_code == 502
    assert "text/html" in page.headers["content-type"]
    assert "The database is unavailable; retry shortly." in page.text
    api.cookies.clear()
