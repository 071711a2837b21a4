"""CPU time per component, read from /proc: API processes, worker processes, PostgreSQL backends.

Throughput on a shared machine moves ±20 % between runs; CPU milliseconds per event are
steadier, so the bench reports them. A component's CPU is the sum of utime+stime of its
processes (a process and all its descendants, e.g. `relay api --workers N`'s children);
PostgreSQL's is that of the backends serving the bench database (found in pg_stat_activity,
readable when the server runs on this machine).
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def family(pids: list[int]) -> list[int]:
    """Return the pids with all their descendants."""
    tree, seen, todo = _children(), [], list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(tree.get(pid, []))
    return seen


def backend_pids(conninfo: str, database: str) -> list[int]:
    """Return the pids of the PostgreSQL backends connected to `database` (this connection's own excluded)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds spent by each component between start() and stop()."""

    def __init__(self, conninfo: str, database: str, components: dict[str, list[int]],
                 alone: dict[str, list[int]] | None = None) -> None:
        self.conninfo = conninfo
        self.database = database
        self.components = components  # name -> top-level pids, counted with their descendants
        self.alone = alone or {}  # name -> pids counted without their children (the bench itself)
        self._start: dict[str, dict[int, float]] = {}

    def _pids(self) -> dict[str, list[int]]:
        pids = {name: family(top) for name, top in self.components.items()} | self.alone
        pids["postgresql"] = backend_pids(self.conninfo, self.database)
        return pids

    def start(self) -> None:
        self._start = {name: {pid: _cpu_seconds(pid) for pid in pids} for name, pids in self._pids().items()}

    def stop(self) -> dict[str, float]:
        """Return CPU seconds per component since start() (processes that appeared since count from zero)."""
        spent: dict[str, float] = {}
        for name, pids in self._pids().items():
            before = self._start.get(name, {})
            spent[name] = sum(max(0.0, _cpu_seconds(pid) - before.get(pid, 0.0)) for pid in pids)
        return spent


def top_statements(conninfo: str, limit: int = 8) -> list[dict[str, object]] | None:
    """Return the statements with the most total time from pg_stat_statements, or None when it is not loaded."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            rows = conn.execute(
                "SELECT calls, round(total_exec_time::numeric, 1) AS total_ms,"
                " round((total_exec_time / greatest(calls, 1))::numeric, 3) AS mean_ms,"
                " left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query"
                " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY total_exec_time DESC LIMIT %s",
                (limit,),
            ).fetchall()
    except psycopg.Error:
        return None
    return [{"calls": r[0], "total_ms": float(r[1]), "mean_ms": float(r[2]), "query": r[3]} for r in rows]


def reset_statements(conninfo: str) -> None:
    """Start pg_stat_statements' counts afresh (when it is loaded)."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error:
        pass
