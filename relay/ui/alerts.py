"""The alerts page: anomalies the periodic scan found, each endpoint against its own baseline (F36)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from relay.ui.api_client import Api, ApiError
from relay.ui.pages import page
from relay.ui.refusals import endpoints_by_id, paging, problem_page, refusal

PAGE_SIZE = 50
SHOWN = {"open": "open", "resolved": "resolved", "all": None}  # the page's choice → the API's `status`


def evidence_facts(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures behind an alert, as label and value: rates in per cent, durations in ms."""
    facts = []
    for key, value in evidence.items():
        label = key.replace("_", " ").removesuffix(" ms").capitalize()
        if isinstance(value, (int, float)) and key.endswith("_rate"):
            shown = f"{value * 100:.1f} %"
        elif isinstance(value, (int, float)) and key.endswith("_ms"):
            shown = f"{value:.0f} ms"
        elif value is None:
            shown = "—"
        else:
            shown = str(value)
        facts.append((label, shown))
    return facts


class AlertsController(Controller):
    """Anomaly alerts of the tenant."""

    path = "/ui/alerts"
    include_in_schema = False

    @get("/")
    async def alerts_page(self, request: Request, status: str = "open", cursor: str | None = None) -> Template:
        """Show open (or resolved, or all) alerts, newest first."""
        status = status if status in SHOWN else "open"
        api = Api(request)
        try:
            listing = await api.get("/v1/ai/alerts", status=SHOWN[status], limit=PAGE_SIZE, cursor=cursor)
            endpoints = await endpoints_by_id(api)
        except ApiError as error:
            if error.status == 404 or error.status >= 500:
                return problem_page(request, error)
            return page(request, "alerts.html", section="alerts", alerts=[], endpoints={}, status=status,
                        next_url=None, paged=False, error=refusal(error), status_code=400)
        alerts = [{**alert, "facts": evidence_facts(alert["evidence"])} for alert in listing["data"]]
        return page(request, "alerts.html", section="alerts", alerts=alerts, endpoints=endpoints, status=status,
                    error=None, **paging("/ui/alerts", {"status": status}, cursor, listing["next_cursor"]))
