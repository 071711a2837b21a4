# Shortcuts for Relay's developers (`just --list`). Each recipe is the same command the README shows.

venv := ".venv"

# Install into .venv (with test tools)
install:
    python3 -m venv {{venv}} && {{venv}}/bin/pip install -q -e '.[test]'

# Run API + worker on the embedded PostgreSQL
dev: install
    {{venv}}/bin/relay dev

# The whole test suite (what CI runs)
test: install
    {{venv}}/bin/pytest

# Measure ingest and delivery throughput
bench *ARGS: install
    {{venv}}/bin/relay bench {{ARGS}}

# psql on the development database
psql *ARGS: install
    {{venv}}/bin/relay psql {{ARGS}}
