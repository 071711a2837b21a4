"""Accounts, tokens and API keys (F21, F22), including the ways they must fail."""

from __future__ import annotations

import dataclasses
import time
import uuid

import jwt
import pytest
from litestar.testing import TestClient

from relay.api.app import create_app
from relay.settings import load_settings
from relay.tokens import issue_access_token


def email() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


def register(api: TestClient, address: str | None = None, password: str = "correct horse battery") -> dict:
    response = api.post("/v1/auth/register", json={"email": address or email(), "password": password})
    assert response.status_code == 201, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_register_login_me(api: TestClient) -> None:
    address = email()
    tokens = register(api, address.upper())  # emails are case-insensitive
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    me = api.get("/v1/auth/me", headers=bearer(tokens["access_token"])).json()
    assert me["user"]["email"] == address and me["tenant_id"] == tokens["tenant_id"] and me["api_key"] is None
    login = api.post("/v1/auth/login", json={"email": address, "password": "correct horse battery"})
    assert login.status_code == 200 and login.json()["tenant_id"] == tokens["tenant_id"]
    # An access token works on every /v1 route, like an API key.
    assert api.get("/v1/endpoints", headers=bearer(login.json()["access_token"])).status_code == 200


def test_password_is_stored_hashed(api: TestClient, db) -> None:
    address = email()
    register(api, address)
    stored = db.execute("SELECT password_hash FROM relay.users WHERE email = %s", (address,)).fetchone()[0]
    assert stored.startswith("$argon2id$") and "correct horse battery" not in stored


def test_wrong_password_and_unknown_email_look_the_same(api: TestClient) -> None:
    address = email()
    register(api, address)
    wrong = api.post("/v1/auth/login", json={"email": address, "password": "not the password"})
    unknown = api.post("/v1/auth/login", json={"email": email(), "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_duplicate_email_is_a_conflict_and_stores_nothing(api: TestClient, db) -> None:
    address = email()
    register(api, address)
    tenants_before = db.execute("SELECT count(*) FROM relay.tenants").fetchone()[0]
    again = api.post("/v1/auth/register", json={"email": address, "password": "another long password"})
    assert again.status_code == 409
    assert db.execute("SELECT count(*) FROM relay.tenants").fetchone()[0] == tenants_before


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email", "password": "long enough password"}, {"email": "a@b.co", "password": "short"},
     {"email": "a@b.co"}, {"email": "a@b.co", "password": "long enough password", "admin": True}, {}],
)
def test_bad_registrations(api: TestClient, body: dict) -> None:
    assert api.post("/v1/auth/register", json=body).status_code in (400, 422)


def test_refresh_rotates_and_reuse_revokes_the_family(api: TestClient) -> None:
    first = register(api)
    second = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    # The spent token again: someone copied it. Refused, and the whole family is revoked.
    reuse = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and "already used" in reuse.json()["detail"]
    assert api.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}).status_code == 401


def test_logout_revokes_the_refresh_token(api: TestClient) -> None:
    tokens = register(api)
    assert api.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    assert api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert api.post("/v1/auth/logout", json={"refresh_token": "rrt_unknown"}).status_code == 401


def test_expired_forged_and_misused_tokens_are_refused(api: TestClient) -> None:
    tokens = register(api)
    secret = api.app.state.jwt_secret  # loaded by the requests above
    expired = issue_access_token(secret, tokens["user_id"], tokens["tenant_id"], ttl_seconds=-10)
    forged = issue_access_token(b"another secret entirely, 32 bytes", tokens["user_id"], tokens["tenant_id"], 900)
    none_alg = jwt.encode({"sub": tokens["user_id"], "tid": tokens["tenant_id"], "typ": "access",
                           "exp": int(time.time()) + 900}, key="", algorithm="none")
    refresh_typ = jwt.encode({"sub": tokens["user_id"], "tid": tokens["tenant_id"], "typ": "refresh",
                              "exp": int(time.time()) + 900}, secret, algorithm="HS256")
    for token in (expired, forged, none_alg, refresh_typ, tokens["refresh_token"], "eyJ.garbled.token", tokens["access_token"][:-3]):
        response = api.get("/v1/endpoints", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_signup_can_be_turned_off(conninfo: str) -> None:
    settings = dataclasses.replace(load_settings(), signup_enabled=False)
    with TestClient(create_app(settings, conninfo)) as closed:
        response = closed.post("/v1/auth/register", json={"email": email(), "password": "long enough password"})
    assert response.status_code == 403 and "Sign-up is turned off" in response.json()["detail"]


def test_api_keys_create_list_revoke(api: TestClient, auth) -> None:
    created = api.post("/v1/api-keys", json={"name": "ci", "rate_limit": 50}, headers=auth)
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("rly_") and key["prefix"] == key["key"][:12] and key["rate_limit"] == 50
    assert api.get("/v1/auth/me", headers=bearer(key["key"])).json()["api_key"]["id"] == key["id"]
    listed = api.get("/v1/api-keys", headers=auth).json()["data"]
    mine = next(k for k in listed if k["id"] == key["id"])
    assert "key" not in mine and mine["last_used_at"] is not None  # used just now
    assert api.delete(f"/v1/api-keys/{key['id']}", headers=auth).status_code == 204
    assert api.get("/v1/endpoints", headers=bearer(key["key"])).status_code == 401  # the very next request
    assert api.delete(f"/v1/api-keys/{key['id']}", headers=auth).status_code == 404
    assert next(k for k in api.get("/v1/api-keys", headers=auth).json()["data"] if k["id"] == key["id"])["revoked_at"]


def test_api_keys_are_stored_hashed(api: TestClient, auth, db) -> None:
    key = api.post("/v1/api-keys", json={"name": "x"}, headers=auth).json()["key"]
    rows = db.execute("SELECT key_hash::text, prefix FROM relay.api_keys").fetchall()
    assert all(key not in (row[0] or "") for row in rows)
    assert key[:12] in {row[1] for row in rows}


def test_ingest_rate_limit_answers_429_with_headers(api: TestClient, auth) -> None:
    limited = api.post("/v1/api-keys", json={"name": "slow", "rate_limit": 3}, headers=auth).json()["key"]
    headers = bearer(limited)
    answers = [api.post("/v1/events", json={"type": "a.b", "payload": {}}, headers=headers) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert 202 in statuses and 429 in statuses, statuses
    ok = answers[statuses.index(202)]
    assert ok.headers["ratelimit-limit"] == "3" and int(ok.headers["ratelimit-remaining"]) <= 2
    refused = answers[statuses.index(429)]
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 1 and refused.headers["ratelimit-reset"] == refused.headers["retry-after"]
    assert refused.headers["content-type"].startswith("application/problem+json")
    too_big = api.post("/v1/events/batch", json={"events": [{"type": "a.b", "payload": {}}] * 4}, headers=headers)
    assert too_big.status_code == 429 and "never fit" in too_big.json()["detail"]
