"""Fixtures: a real PostgreSQL (RELAY_TEST_DATABASE_URL or the embedded one), fresh per session."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient

from relay.api.app import create_app
from relay.db.admin import create_database, drop_database
from relay.db.migrate import migrate
from relay.db.tenants import create_tenant
from relay.settings import load_settings
from relay.urlguard import parse_networks
from tests.support import REPO


def _server_url() -> str:
    url = os.environ.get("RELAY_TEST_DATABASE_URL")
    if url:
        return url
    from relay.embedded import embedded_url

    # Kept between runs under .relay/ so a second run does not pay for initdb again.
    return embedded_url(REPO / ".relay" / "test-server")


@pytest.fixture(scope="session")
def conninfo() -> Iterator[str]:
    """A URL to a brand-new, migrated database, dropped after the session."""
    server = _server_url()
    name = f"relay_test_{uuid.uuid4().hex[:10]}"
    url = create_database(server, name, fresh=True)
    migrate(url)
    yield url
    drop_database(server, name)


@pytest.fixture
def db(conninfo: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test database."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn


@pytest.fixture
def tenant(db: psycopg.Connection) -> tuple[str, str]:
    """A fresh tenant (tests isolate by tenant): (tenant_id, api_key)."""
    return create_tenant(db, f"test-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="session")
def api(conninfo: str) -> Iterator[TestClient]:
    """The API app in-process (no worker): for request/response behaviour."""
    os.environ.pop("DATABASE_URL", None)
    settings = dataclasses.replace(load_settings(), allowed_networks=parse_networks("127.0.0.0/8"))
    with TestClient(create_app(settings, conninfo), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def auth(tenant: tuple[str, str]) -> dict[str, str]:
    """Authorization headers of the fresh tenant."""
    return {"Authorization": f"Bearer {tenant[1]}"}


_TIERS = {"unit": 0, "integration": 1, "migration": 2, "acceptance": 3}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tiers in order: the acceptance worker process must not pick up integration tests' rows."""
    for item in items:
        if Path(str(item.fspath)).parent.name == "acceptance":
            item.add_marker(pytest.mark.acceptance)
    items.sort(key=lambda item: _TIERS.get(Path(str(item.fspath)).parent.name, 3))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a PostgreSQL server the suite started (data under its temp dir) is still running."""
    import psutil

    try:
        base = str(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return
    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("postgres") and any(arg.startswith(base) for arg in cmdline):
            left.append(proc)
    for proc in left:
        proc.kill()  # do not let it outlive the run, whatever the verdict
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nPostgreSQL servers started by the tests were still running (killed): {[p.pid for p in left]}")


@pytest.fixture
def fresh_address_count(db: psycopg.Connection) -> Iterator[None]:
    """Every request of the in-process client comes from 'testclient': start and leave its count at zero."""
    db.execute("DELETE FROM relay.login_throttle WHERE subject = 'address:testclient'")
    yield
    db.execute("DELETE FROM relay.login_throttle WHERE subject = 'address:testclient'")
