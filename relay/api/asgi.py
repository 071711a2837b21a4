"""The ASGI app for `relay api` (uvicorn imports it in every API process)."""

from __future__ import annotations

from relay.api.app import create_app
from relay.runtime import tune_garbage_collector
from relay.settings import load_settings

_settings = load_settings()
if not _settings.database_url:
    raise SystemExit("relay api: set DATABASE_URL")
app = create_app(_settings, _settings.database_url)
tune_garbage_collector()  # after the app exists: its objects are frozen out of the collector's scans
