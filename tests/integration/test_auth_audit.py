"""Audit rows of the authentication actions: each action writes exactly its row, and no row holds a secret."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from litestar.testing import TestClient

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def _fresh_address_count(fresh_address_count: None) -> None:
    """Each test starts with the in-process client's address count at zero (tests/conftest.py)."""


def email() -> str:
    return f"audit-{uuid.uuid4().hex[:10]}@example.com"


def rows_about(db: psycopg.Connection, address: str, user_id: str | None = None) -> list[dict]:
    """The audit rows about one user (by id) or one email, oldest first."""
    cursor = db.execute(
        "SELECT action, tenant_id, actor_type, actor, target_type, target_id, client_address, details "
        "FROM relay.audit_log WHERE target_id = %s OR details->>'email' = %s ORDER BY id",
        (user_id or "-", address),
    )
    names = [c.name for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class Trail:
    """Follows one user's audit rows: `new()` returns the rows written since the last call."""

    def __init__(self, db: psycopg.Connection, address: str) -> None:
        self.db, self.address, self.user_id, self.seen = db, address, None, 0

    def new(self) -> list[dict]:
        rows = rows_about(self.db, self.address, self.user_id)
        fresh, self.seen = rows[self.seen:], len(rows)
        return fresh


def actions(rows: list[dict]) -> list[str]:
    return [row["action"] for row in rows]


def csrf(page: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_each_api_auth_action_writes_exactly_its_row(api: TestClient, db: psycopg.Connection) -> None:
    address = email()
    trail = Trail(db, address)
    registered = api.post("/v1/auth/register", json={"email": address, "password": PASSWORD}).json()
    user, tenant = registered["user_id"], registered["tenant_id"]
    trail.user_id = user
    [signup] = trail.new()
    assert signup["action"] == "signup" and signup["tenant_id"] == tenant and signup["target_id"] == user
    assert signup["actor_type"] == "user" and signup["actor"] == user and signup["details"]["via"] == "api"

    logged_in = api.post("/v1/auth/login", json={"email": address, "password": PASSWORD}).json()
    [succeeded] = trail.new()
    assert succeeded["action"] == "login.succeeded" and succeeded["tenant_id"] == tenant
    assert succeeded["client_address"] == "testclient" and succeeded["details"] == {"email": address, "via": "api"}

    assert api.post("/v1/auth/login", json={"email": address, "password": "wrong password"}).status_code == 401
    [failed] = trail.new()
    assert failed["action"] == "login.failed" and failed["tenant_id"] == tenant and failed["actor_type"] == "anonymous"
    assert failed["target_id"] == user and failed["details"] == {"email": address, "via": "api"}

    rotated = api.post("/v1/auth/refresh", json={"refresh_token": logged_in["refresh_token"]}).json()
    assert trail.new() == []  # a refresh is not an audited action
    assert api.post("/v1/auth/refresh", json={"refresh_token": logged_in["refresh_token"]}).status_code == 401
    [revoked] = trail.new()
    assert revoked["action"] == "token_family.revoked" and revoked["tenant_id"] == tenant
    assert revoked["target_id"] == user and revoked["details"]["family_id"].startswith("fam_")
    assert api.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}).status_code == 401
    assert trail.new() == []  # a revoked token: refused, and counted, but nothing more to record

    assert api.post("/v1/auth/logout", json={"refresh_token": registered["refresh_token"]}).status_code == 204
    [logout] = trail.new()
    assert logout["action"] == "logout" and logout["actor"] == user and logout["tenant_id"] == tenant

    changed = api.post("/v1/auth/password", headers={"Authorization": f"Bearer {registered['access_token']}"},
                       json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 200
    [password] = trail.new()
    assert password["action"] == "password.changed" and password["actor"] == user and password["tenant_id"] == tenant
    # Both of the user's logins had ended already (one logged out, one revoked for reuse): nothing more to revoke.
    assert password["details"] == {"refresh_tokens_revoked": 0, "dashboard_sessions_ended": 0}

    wrong = api.post("/v1/auth/password", headers={"Authorization": f"Bearer {changed.json()['access_token']}"},
                     json={"current_password": PASSWORD, "new_password": "yet another passphrase"})
    assert wrong.status_code == 403
    [counted] = trail.new()
    assert counted["action"] == "login.failed" and counted["details"]["via"] == "password_change"


def test_a_failed_login_for_an_unknown_email_has_no_tenant(api: TestClient, db: psycopg.Connection) -> None:
    address = email()
    assert api.post("/v1/auth/login", json={"email": address, "password": "anything at all"}).status_code == 401
    [row] = rows_about(db, address)
    assert row["action"] == "login.failed" and row["tenant_id"] is None and row["target_id"] is None
    assert row["actor_type"] == "anonymous" and row["details"] == {"email": address, "via": "api"}


def test_a_block_is_recorded_once_when_it_starts(api: TestClient, db: psycopg.Connection) -> None:
    address = email()
    limit = api.app.state.settings.login_max_failures
    for _ in range(limit):
        assert api.post("/v1/auth/login", json={"email": address, "password": "guess"}).status_code == 401
    for _ in range(3):  # refused before the password is looked at: no row each (a flood would fill the log)
        assert api.post("/v1/auth/login", json={"email": address, "password": "guess"}).status_code == 429
    rows = rows_about(db, address)
    assert actions(rows) == ["login.failed"] * limit + ["login.throttled"]
    assert rows[-1]["details"]["blocked"] == "account" and rows[-1]["details"]["strike"] == 1
    assert rows[-1]["details"]["seconds"] == int(api.app.state.settings.login_window_seconds)


def test_dashboard_sign_in_sign_up_and_sign_out_are_recorded(api: TestClient, db: psycopg.Connection) -> None:
    address = email()
    trail = Trail(db, address)
    api.cookies.clear()
    token = csrf(api.get("/ui/signup").text)
    assert api.post("/ui/signup", data={"_csrf_token": token, "email": address, "password": PASSWORD,
                                        "password_again": PASSWORD}, follow_redirects=False).status_code == 303
    [signup] = trail.new()
    assert signup["action"] == "signup" and signup["details"]["via"] == "dashboard"
    trail.user_id = signup["target_id"]
    api.cookies.clear()
    token = csrf(api.get("/ui/login").text)
    wrong = api.post("/ui/login", data={"_csrf_token": token, "email": address, "password": "wrong password"})
    assert wrong.status_code == 401
    right = api.post("/ui/login", data={"_csrf_token": token, "email": address, "password": PASSWORD},
                     follow_redirects=False)
    assert right.status_code == 303
    assert [(r["action"], r["details"]["via"]) for r in trail.new()] == [("login.failed", "dashboard"),
                                                                          ("login.succeeded", "dashboard")]
    token = csrf(api.get("/ui").text)
    assert api.post("/ui/logout", data={"_csrf_token": token}, follow_redirects=False).status_code == 303
    [ended] = trail.new()
    assert ended["action"] == "session.ended" and ended["actor"] == signup["target_id"]
    assert ended["tenant_id"] == signup["tenant_id"]
    api.cookies.clear()


def test_no_secret_reaches_the_audit_log(api: TestClient, db: psycopg.Connection) -> None:
    """Every credential this test handles — passwords, refresh and access tokens, cookies — is absent from every row."""
    address = email()
    secrets = [PASSWORD, NEW_PASSWORD, "wrong password 123"]
    registered = api.post("/v1/auth/register", json={"email": address, "password": PASSWORD}).json()
    logged_in = api.post("/v1/auth/login", json={"email": address, "password": PASSWORD}).json()
    api.post("/v1/auth/login", json={"email": address, "password": "wrong password 123"})
    api.post("/v1/auth/login", json={"email": email(), "password": "wrong password 123"})
    rotated = api.post("/v1/auth/refresh", json={"refresh_token": logged_in["refresh_token"]}).json()
    api.post("/v1/auth/refresh", json={"refresh_token": logged_in["refresh_token"]})  # reuse: the family goes
    api.post("/v1/auth/logout", json={"refresh_token": registered["refresh_token"]})
    changed = api.post("/v1/auth/password", headers={"Authorization": f"Bearer {registered['access_token']}"},
                       json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}).json()
    api.cookies.clear()
    token = csrf(api.get("/ui/login").text)
    api.post("/ui/login", data={"_csrf_token": token, "email": address, "password": NEW_PASSWORD},
             follow_redirects=False)
    cookie = api.cookies["relay_session"]
    api.post("/ui/logout", data={"_csrf_token": csrf(api.get("/ui").text)}, follow_redirects=False)
    api.cookies.clear()
    for tokens in (registered, logged_in, rotated, changed):
        secrets += [tokens["access_token"], tokens["refresh_token"]]
    secrets += [cookie, cookie.rpartition(".")[0], token]
    everything = db.execute("SELECT coalesce(string_agg(row_to_json(a)::text, ' '), '') FROM relay.audit_log a")
    text = everything.fetchone()[0]
    assert address in text  # the rows are there (an email is not a secret) …
    leaked = [secret[:12] + "…" for secret in secrets if secret in text]
    assert leaked == []  # … and none of the secrets
