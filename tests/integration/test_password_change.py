"""Changing a password ends every session of the user, everywhere, and stores nothing by halves (issue 13)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from psycopg import sql

from relay.api.app import create_app
from relay.settings import load_settings
from relay.urlguard import parse_networks
from tests.support import wait_until

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def _fresh_address_count(fresh_address_count: None) -> None:
    """Each test starts with the in-process client's address count at zero (tests/conftest.py)."""


@pytest.fixture(scope="module")
def other_api(conninfo: str) -> Iterator[TestClient]:
    """A second API app on the same database, with its own caches and listener: another process, in effect."""
    settings = dataclasses.replace(load_settings(), allowed_networks=parse_networks("127.0.0.0/8"))
    with TestClient(create_app(settings, conninfo), raise_server_exceptions=False) as client:
        yield client


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(api: TestClient) -> dict:
    address = email()
    response = api.post("/v1/auth/register", json={"email": address, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {**response.json(), "email": address}


def login(api: TestClient, address: str, password: str = PASSWORD) -> dict:
    response = api.post("/v1/auth/login", json={"email": address, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def dashboard_session(api: TestClient, address: str, password: str = PASSWORD) -> str:
    """Sign in through the dashboard's form; return the session cookie."""
    api.cookies.clear()
    token = re.search(r'name="_csrf_token" value="([^"]+)"', api.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    answer = api.post("/ui/login", data={"_csrf_token": token, "email": address, "password": password},
                      follow_redirects=False)
    assert answer.status_code == 303, answer.text
    cookie = api.cookies["relay_session"]
    api.cookies.clear()
    return cookie


def dashboard_open(api: TestClient, cookie: str) -> bool:
    api.cookies.clear()
    api.cookies.set("relay_session", cookie)
    try:
        return api.get("/ui", follow_redirects=False).status_code == 200
    finally:
        api.cookies.clear()


def change(api: TestClient, access_token: str, current: str = PASSWORD, new: str = NEW_PASSWORD):
    return api.post("/v1/auth/password", headers=bearer(access_token),
                    json={"current_password": current, "new_password": new})


def test_a_password_change_ends_every_session_of_the_user_and_no_one_elses(api: TestClient,
                                                                           other_api: TestClient) -> None:
    user = register(api)
    second_login = login(api, user["email"])
    cookie = dashboard_session(api, user["email"])
    bystander = register(api)
    bystander_cookie = dashboard_session(api, bystander["email"])
    old_access = bearer(user["access_token"])
    assert other_api.get("/v1/endpoints", headers=old_access).status_code == 200  # cached there as still good

    changed = change(api, user["access_token"])
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert set(fresh) >= {"access_token", "refresh_token", "expires_in"} and fresh["user_id"] == user["user_id"]

    # Access tokens issued before the change: refused here at once, and on the other app within a second.
    assert api.get("/v1/endpoints", headers=old_access).status_code == 401
    assert "password was changed" in api.get("/v1/endpoints", headers=old_access).json()["detail"]
    wait_until(lambda: other_api.get("/v1/endpoints", headers=old_access).status_code == 401, timeout=1.0,
               interval=0.02, what="the other app to refuse the old access token")
    # Every refresh token and dashboard session of the user: revoked.
    for token in (user["refresh_token"], second_login["refresh_token"]):
        assert api.post("/v1/auth/refresh", json={"refresh_token": token}).status_code == 401
    assert not dashboard_open(api, cookie)
    # The caller's new tokens carry on, on both apps.
    for app in (api, other_api):
        assert app.get("/v1/endpoints", headers=bearer(fresh["access_token"])).status_code == 200
    assert api.post("/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 200
    # The old password no longer opens anything; the new one does.
    assert api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD}).status_code == 401
    login(api, user["email"], NEW_PASSWORD)
    # Nobody else lost a session.
    assert api.get("/v1/endpoints", headers=bearer(bystander["access_token"])).status_code == 200
    assert api.post("/v1/auth/refresh", json={"refresh_token": bystander["refresh_token"]}).status_code == 200
    assert dashboard_open(api, bystander_cookie)


def test_old_access_tokens_are_refused_while_the_listener_is_down(api: TestClient, other_api: TestClient) -> None:
    user = register(api)
    cutoffs = other_api.app.state.key_cache.sessions
    cutoffs.listening = False  # as while its LISTEN connection is lost: the cache is not used, the database is
    try:
        assert other_api.get("/v1/endpoints", headers=bearer(user["access_token"])).status_code == 200
        assert change(api, user["access_token"]).status_code == 200
        assert other_api.get("/v1/endpoints", headers=bearer(user["access_token"])).status_code == 401
    finally:
        cutoffs.listening = other_api.app.state.key_cache.listening


def test_a_wrong_current_password_is_refused_counted_and_changes_nothing(api: TestClient, db) -> None:
    user = register(api)
    before = db.execute("SELECT password_hash, sessions_valid_after FROM relay.users WHERE id = %s",
                        (user["user_id"],)).fetchone()
    refused = change(api, user["access_token"], current="not my password")
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "$.current_password"
    subject = "account:" + hashlib.sha256(user["email"].encode()).hexdigest()
    assert db.execute("SELECT failures FROM relay.login_throttle WHERE subject = %s", (subject,)).fetchone() == (1,)
    assert db.execute("SELECT password_hash, sessions_valid_after FROM relay.users WHERE id = %s",
                      (user["user_id"],)).fetchone() == before
    assert api.get("/v1/endpoints", headers=bearer(user["access_token"])).status_code == 200
    assert api.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}).status_code == 200


def test_guessing_the_current_password_is_throttled_like_a_login(api: TestClient) -> None:
    user = register(api)
    limit = api.app.state.settings.login_max_failures
    for _ in range(limit):
        assert change(api, user["access_token"], current="guess").status_code == 403
    blocked = change(api, user["access_token"])  # the right one, too
    assert blocked.status_code == 429 and blocked.headers["retry-after"].isdigit()
    assert api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD}).status_code == 429


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"current_password": PASSWORD, "new_password": "short"}, 400, "$.new_password"),
     ({"current_password": PASSWORD, "new_password": "x" * 257}, 400, "$.new_password"),
     ({"current_password": PASSWORD, "new_password": PASSWORD}, 422, "$.new_password"),
     ({"current_password": PASSWORD}, 400, None),
     ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "sessions": "keep"}, 400, None)],
)
def test_a_bad_new_password_is_refused_and_nothing_is_stored(api: TestClient, db, body, status, field) -> None:
    user = register(api)
    before = db.execute("SELECT password_hash, sessions_valid_after FROM relay.users WHERE id = %s",
                        (user["user_id"],)).fetchone()
    refused = api.post("/v1/auth/password", headers=bearer(user["access_token"]), json=body)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    if field:
        assert refused.json()["errors"][0]["field"] == field
    assert db.execute("SELECT password_hash, sessions_valid_after FROM relay.users WHERE id = %s",
                      (user["user_id"],)).fetchone() == before
    assert api.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}).status_code == 200


def test_an_api_key_has_no_password_to_change(api: TestClient, auth) -> None:
    refused = api.post("/v1/auth/password", headers=auth, json={"current_password": "x", "new_password": NEW_PASSWORD})
    assert refused.status_code == 403 and "API keys have no password" in refused.json()["detail"]
    reader = api.post("/v1/api-keys", json={"name": "reader", "scopes": ["read"]}, headers=auth).json()["key"]
    refused = api.post("/v1/auth/password", headers=bearer(reader),
                       json={"current_password": "x", "new_password": NEW_PASSWORD})
    assert refused.status_code == 403 and refused.json()["required_scope"] == "admin"


def test_a_change_that_fails_midway_stores_nothing(api: TestClient, db) -> None:
    """The audit row is written last but one: when it fails, the new hash, the cutoff and the revocations roll back."""
    user = register(api)
    cookie = dashboard_session(api, user["email"])
    before = db.execute("SELECT password_hash, sessions_valid_after FROM relay.users WHERE id = %s",
                        (user["user_id"],)).fetchone()
    function = sql.Identifier(f"relay_test_refuse_{uuid.uuid4().hex[:8]}")
    db.execute(sql.SQL(
        "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.action = 'password.changed' AND NEW.target_id = {} THEN RAISE EXCEPTION 'refused by the test'; "
        "END IF; RETURN NEW; END $$").format(function, sql.Literal(user["user_id"])))
    db.execute(sql.SQL("CREATE TRIGGER {} BEFORE INSERT ON relay.audit_log FOR EACH ROW EXECUTE FUNCTION {}()")
               .format(function, function))
    try:
        failed = change(api, user["access_token"])
    finally:
        db.execute(sql.SQL("DROP TRIGGER {} ON relay.audit_log").format(function))
        db.execute(sql.SQL("DROP FUNCTION {}()").format(function))
    assert failed.status_code == 500
    assert db.execute("SELECT password_hash, sessions_valid_after FROM relay.users WHERE id = %s",
                      (user["user_id"],)).fetchone() == before
    assert api.get("/v1/endpoints", headers=bearer(user["access_token"])).status_code == 200
    assert dashboard_open(api, cookie)
    assert api.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}).status_code == 200
    login(api, user["email"], PASSWORD)


def test_dashboard_sign_out_ends_the_session_and_logout_revokes_the_whole_family(api: TestClient) -> None:
    user = register(api)
    cookie = dashboard_session(api, user["email"])
    other_cookie = dashboard_session(api, user["email"])
    api.cookies.set("relay_session", cookie)
    page = api.get("/ui")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert api.post("/ui/logout", data={"_csrf_token": token}, follow_redirects=False).status_code == 303
    api.cookies.clear()
    assert not dashboard_open(api, cookie)  # presented again by hand: refused
    assert dashboard_open(api, other_cookie)  # another browser's session of the same user goes on
    rotated = api.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}).json()
    assert api.post("/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]}).status_code == 204
    for token in (user["refresh_token"], rotated["refresh_token"]):  # every token of that login
        assert api.post("/v1/auth/refresh", json={"refresh_token": token}).status_code == 401
