"""Endpoint URLs the sender's HTTP client cannot use are refused with a 422 naming `url`, and nothing is stored."""

import pytest
from litestar.testing import TestClient

# Each passes the schema's pattern (http(s)://, no space, tab or line break) and used to be stored.
UNUSABLE_URLS = [
    "http://ex\x01ample.com/hook",
    "https://example.com/\x7f",
    "https://example.com/\u202egnp.exe",
    "http://ex\u00adample.com/hook",
    "https://exa\u3000mple.com/",
    "http://xn--a.com/",
    "http://a..b/",
    "http://" + "a" * 64 + ".com/",
    "https://🔥.com/",
    "http://0x7f.1/",
    "http://1.2.3/",
    "http://@example.com/",
    "https://example.com/%zz",
]


def assert_refuses_url(response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["detail"].startswith("The URL is not valid: ")
    assert [error["field"] for error in body["errors"]] == ["$.url"]


def endpoint_urls(db, tenant_id: str) -> list[str]:
    rows = db.execute("SELECT url FROM relay.endpoints WHERE tenant_id = %s ORDER BY id", (tenant_id,)).fetchall()
    return [url for (url,) in rows]


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_create_refuses_an_unusable_url_and_stores_nothing(api: TestClient, auth, db, tenant, url: str) -> None:
    assert_refuses_url(api.post("/v1/endpoints", json={"url": url}, headers=auth))
    assert endpoint_urls(db, tenant[0]) == []


@pytest.mark.parametrize("url", UNUSABLE_URLS)
def test_update_refuses_an_unusable_url_and_changes_nothing(api: TestClient, auth, db, tenant, url: str) -> None:
    endpoint = api.post("/v1/endpoints", json={"url": "https://example.com/hook"}, headers=auth).json()
    response = api.patch(f"/v1/endpoints/{endpoint['id']}", json={"url": url, "description": "moved"}, headers=auth)
    assert_refuses_url(response)
    unchanged = api.get(f"/v1/endpoints/{endpoint['id']}", headers=auth).json()
    assert (unchanged["url"], unchanged["description"]) == ("https://example.com/hook", "")
    assert endpoint_urls(db, tenant[0]) == ["https://example.com/hook"]


def test_international_urls_are_accepted_and_kept_as_typed(api: TestClient, auth, db, tenant) -> None:
    created = api.post("/v1/endpoints", json={"url": "https://bücher.example/hook"}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["url"] == "https://bücher.example/hook"
    changed = api.patch(f"/v1/endpoints/{created.json()['id']}", json={"url": "https://例え.テスト/"}, headers=auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == "https://例え.テスト/"
    assert endpoint_urls(db, tenant[0]) == ["https://例え.テスト/"]
