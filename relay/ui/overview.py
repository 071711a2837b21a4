"""The overview page: the last 24 hours as a chart, today's health, the queue, what is failing, open alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from relay.ui.api_client import Api
from relay.ui.charts import HourBar, hourly_chart
from relay.ui.pages import page
from relay.ui.refusals import endpoints_by_id

FAILING_WINDOW = timedelta(minutes=15)


async def hourly_bars(api: Api, endpoint_id: str | None = None) -> list[HourBar]:
    """The last 24 hours of one endpoint, or of the tenant, as chart bars."""
    hours = await api.get("/v1/stats/hourly", hours=24, endpoint_id=endpoint_id)
    return [
        HourBar(datetime.fromisoformat(h["hour"]), h["succeeded"], h["failed_attempts"], h["dead"])
        for h in hours["data"]
    ]


def failing_now(stats: dict[str, Any], endpoints: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoints with failed attempts in the last minutes, most recent first, with their latest error."""
    since = datetime.now(UTC) - FAILING_WINDOW
    seen: dict[str, dict[str, Any]] = {}
    for failure in stats["recent_failures"]:
        if datetime.fromisoformat(failure["started_at"]) < since:
            continue
        entry = seen.setdefault(failure["endpoint_id"], {
            "endpoint_id": failure["endpoint_id"],
            "url": endpoints.get(failure["endpoint_id"], {}).get("url", failure["endpoint_id"]),
            "failures": 0, "last": failure,
        })
        entry["failures"] += 1
    return list(seen.values())


class OverviewController(Controller):
    """The dashboard's front page."""

    path = "/ui"
    include_in_schema = False

    @get("/")
    async def overview(self, request: Request) -> Template:
        """Show the overview."""
        return page(request, "overview.html", section="overview", **await self._figures(request))

    @get("/overview/live")
    async def live(self, request: Request) -> Template:
        """The part of the overview that refreshes itself every few seconds."""
        return page(request, "_overview_live.html", **await self._figures(request))

    @get("/{rest:path}")
    async def not_found(self, request: Request, rest: str) -> Template:
        """Any other address under /ui: a page that says so (after sign-in, so it reveals nothing)."""
        return page(request, "not_found.html", message=None, status_code=404)

    async def _figures(self, request: Request) -> dict[str, Any]:
        api = Api(request)
        stats = await api.get("/v1/stats")
        bars = await hourly_bars(api)
        endpoints = await endpoints_by_id(api)
        alerts = await api.get("/v1/ai/alerts", status="open")
        return {
            "stats": stats,
            "chart": hourly_chart(bars, label="Deliveries per hour over the last 24 hours"),
            "totals_24h": {
                "succeeded": sum(b.succeeded for b in bars), "failed": sum(b.failed for b in bars),
                "dead": sum(b.dead for b in bars),
            },
            "failing": failing_now(stats, endpoints),
            "alerts": alerts["data"],
            "updated_at": datetime.now(UTC),
        }
