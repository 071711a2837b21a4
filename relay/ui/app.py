"""The dashboard's part of the app: its pages under `/ui`, their templates, assets, session guard and CSRF check."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import structlog
from litestar import Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from relay.settings import Settings
from relay.ui.account import AccountController
from relay.ui.alerts import AlertsController
from relay.ui.api_client import ApiError
from relay.ui.api_keys import ApiKeysController
from relay.ui.audit_log import AuditLogController
from relay.ui.dead_letter import DeadLetterController, OperationController
from relay.ui.deliveries import DeliveriesController
from relay.ui.endpoints import EndpointsController
from relay.ui.events import EventsController
from relay.ui.guard import DashboardGuard
from relay.ui.overview import OverviewController
from relay.ui.refusals import problem_page
from relay.ui.sign_in import SignInController, root

HERE = Path(__file__).parent
log = structlog.get_logger("relay.ui")


def unhandled_refusal(request: Request[Any, Any, Any], error: ApiError) -> Response[Any]:
    """Show an API refusal that reached no page's own handling; log the API's own failures."""
    if error.status >= 500:
        log.warning("ui.api_failed", path=request.url.path, status=error.status)
    return problem_page(request, error)
PAGES: list[ControllerRouterHandler] = [SignInController, OverviewController,
                                      DeadLetterController, OperationController, AlertsController, ApiKeysController,
                                      EndpointsController, EventsController, DeliveriesController,
                                      AuditLogController, AccountController]


def dashboard(settings: Settings) -> tuple[list[ControllerRouterHandler], TemplateConfig]:
    """Return the dashboard's route handlers and template configuration for the app factory."""
    secure = (settings.public_url or "").startswith("https://")
    # The real secret is the shared dashboard key, set by the guard before the CSRF check runs.
    csrf = CSRFConfig(secret=secrets.token_hex(32), cookie_path="/ui", cookie_secure=secure, cookie_samesite="strict",
                      cookie_httponly=True)
    pages = Router(
        path="/",
        route_handlers=PAGES,
        # Outermost first: the guard loads the signing key the CSRF middleware checks with.
        middleware=[DashboardGuard(csrf), DefineMiddleware(CSRFMiddleware, config=csrf)],
        # An API refusal no page handles itself still becomes a page (never a 500).
        exception_handlers={ApiError: unhandled_refusal},
        include_in_schema=False,
    )
    assets = create_static_files_router(
        path="/ui/static", directories=[HERE / "static"], include_in_schema=False,
        cache_control=None, name="ui-static",
    )
    templates = TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)
    return [pages, assets, root], templates
