"""The procrastinate app: `procrastinate --app=relay.worker.app.app <command>` inspects its jobs.

Deliveries do not go through procrastinate (the deliveries table is their queue,
see relay/delivery); procrastinate carries periodic duties and background jobs.
"""

from __future__ import annotations

import os

import procrastinate

# The CLI reads DATABASE_URL; `relay worker` swaps in the connector it was configured with.
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("DATABASE_URL", "")),
    import_paths=[],
)
