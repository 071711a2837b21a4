"""Load `sql/queries/*.sql` into a dict of named queries (`-- name: claim_due_deliveries` blocks)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg import _queries as psycopg_queries
from psycopg.rows import dict_row

import relay

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """Return the `sql/` folder: packaged inside `relay/` in a wheel, beside it in a checkout."""
    packaged = Path(relay.__file__).parent / "sql"
    return packaged if packaged.is_dir() else Path(relay.__file__).parent.parent / "sql"


def parse_queries(text: str) -> dict[str, str]:
    """Split one file's text into {name: query} at each `-- name:` line."""
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_queries(folder: Path) -> dict[str, str]:
    """Read every .sql file in `folder`; a name defined twice is an error.

    A block named `fragment_…` is not a query but text that queries include as
    `{{fragment_…}}` (a column list written once, say).
    """
    blocks: dict[str, str] = {}
    for path in sorted(folder.glob("*.sql")):
        for name, body in parse_queries(path.read_text()).items():
            if name in blocks:
                raise ValueError(f"query {name!r} is defined twice (again in {path.name})")
            blocks[name] = body
    fragments = {name: _strip_comments(body) for name, body in blocks.items() if name.startswith("fragment_")}

    def include(match: re.Match[str]) -> str:
        return fragments[match.group(1)]

    return {name: _FRAGMENT.sub(include, body) for name, body in blocks.items() if name not in fragments}


_FRAGMENT = re.compile(r"\{\{(fragment_\w+)\}\}")


def _strip_comments(body: str) -> str:
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--")).strip()


queries = load_queries(sql_dir() / "queries")

# psycopg finds a query's %(name)s placeholders with a regular expression on every execution
# unless the text is at most MAX_CACHED_STATEMENT_LENGTH bytes (4,096): a guard against
# caching ad-hoc text. Relay's queries are this fixed set, and the hot ones are longer (the
# claim ~10 kB, recording ~9 kB, group ingest ~6 kB): profiled at 1,000 events/s, converting
# them again took ~7 % of the worker's CPU. Raising the limit to the longest of them lets
# psycopg's own (bounded, 128-entry) cache keep their conversion.
psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(
    psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, *(len(q.encode()) for q in queries.values())
)


async def fetch_all(conn: AsyncConnection, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run named query `name` and return its rows as dicts."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(queries[name], params)
    return await cursor.fetchall()


async def fetch_one(conn: AsyncConnection, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """Run named query `name` and return its first row as a dict, or None."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(queries[name], params)
    return await cursor.fetchone()
