"""`relay psql` uses a psql that matches the server: the embedded one's own, or PATH's with a warning when older."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def run_relay_psql(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", "psql", *args], env=env, capture_output=True, text=True,
                          cwd=REPO, timeout=180)


def test_against_the_embedded_server_it_uses_the_embedded_psql(tmp_path: Path) -> None:
    # A PATH psql older than the embedded server used to answer `\l` with "column d.daticulocale does not exist".
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    old_psql = fake_bin / "psql"
    old_psql.write_text("#!/bin/sh\necho 'psql (PostgreSQL) 9.6.24'\nexit 3\n")
    old_psql.chmod(old_psql.stat().st_mode | stat.S_IEXEC)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAY_") and key != "DATABASE_URL"}
    env.update({"RELAY_HOME": str(tmp_path / "home"), "PATH": f"{fake_bin}:{env['PATH']}"})
    result = run_relay_psql(env, "-At", "-c", "select current_setting('server_version_num')::int / 10000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.strip()) >= 16  # the embedded server answered, through a psql that understands it
    listing = run_relay_psql(env, "-c", "\\l")
    assert listing.returncode == 0 and "postgres" in listing.stdout, listing.stdout + listing.stderr


def test_with_database_url_an_older_psql_on_path_gets_a_warning(tmp_path: Path, conninfo: str) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    old_psql = fake_bin / "psql"
    old_psql.write_text("#!/bin/sh\necho 'psql (PostgreSQL) 9.6.24'\n")
    old_psql.chmod(old_psql.stat().st_mode | stat.S_IEXEC)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELAY_")}
    env.update({"DATABASE_URL": conninfo, "PATH": f"{fake_bin}:{env['PATH']}"})
    result = run_relay_psql(env, "-c", "select 1")
    assert "psql 9, older than the server" in result.stderr, result.stderr
