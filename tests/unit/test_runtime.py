"""The garbage-collector settings of Relay's long-running processes."""

from __future__ import annotations

import json
import subprocess
import sys


def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    # In a fresh interpreter: the test process's own collector is left as it is.
    code = (
        "import gc, json; from relay.runtime import tune_garbage_collector, YOUNG_GENERATION_THRESHOLD as Y;"
        "before = gc.get_threshold(); tune_garbage_collector();"
        "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count(), Y]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    before, after, frozen, young = json.loads(out.stdout)
    assert after == [young, before[1], before[2]]
    assert young > before[0]
    assert frozen > 1000  # the modules' objects: out of every later collection's scan


def test_every_named_query_is_short_enough_for_psycopgs_conversion_cache() -> None:
    # Longer ones were converted (placeholders found by a regular expression) on every execution.
    from psycopg import _queries as psycopg_queries

    from relay.db.sql import queries

    longest = max(len(q.encode()) for q in queries.values())
    assert longest > 4096  # the claim, recording and group ingest are: the reason for raising the limit
    assert psycopg_queries.MAX_CACHED_STATEMENT_LENGTH >= longest
