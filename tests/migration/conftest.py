"""Migration tier: each test gets brand-new databases of its own, dropped afterwards even when it fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.db.admin import create_database, drop_database
from relay.db.sql import parse_queries
from tests.conftest import _server_url

DATA = Path(__file__).parent / "data"
# procrastinate 3.0.2's schema.sql: the oldest 3.x schema (see its header) an older Relay could have left.
OLDEST_PROCRASTINATE_SCHEMA = DATA / "procrastinate-3.0.2-schema.sql"
SCHEMA_FACTS = parse_queries((Path(__file__).parent / "schema_facts.sql").read_text())


@pytest.fixture
def new_database() -> Iterator[Callable[[], str]]:
    """A factory of empty databases on the test server: call it for a URL; all of them are dropped at teardown."""
    server = _server_url()
    names: list[str] = []

    def create() -> str:
        names.append(f"relay_migration_{uuid.uuid4().hex[:10]}")
        return create_database(server, names[-1], fresh=True)

    yield create
    for name in names:
        drop_database(server, name)
