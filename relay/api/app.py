"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from relay import __version__
from relay.ai.claude import Claude
from relay.api.accounts import AccountController
from relay.api.ai import AiController, make_claude
from relay.api.api_keys import ApiKeyController
from relay.api.audit_log import AuditLogController
from relay.api.auth import DOCS_PATH, Authentication, provide_connection, provide_tenant_db
from relay.api.dead_letter import DeadLetterController
from relay.api.deliveries import DeliveryController
from relay.api.docs_assets import LocalSwaggerRenderPlugin
from relay.api.endpoint_actions import EndpointActionController
from relay.api.endpoints import EndpointController
from relay.api.errors import exception_handlers
from relay.api.event_types import EventTypeController
from relay.api.events import EventController
from relay.api.health import health, ready
from relay.api.metrics import http_metrics, metrics, metrics_head
from relay.api.nul_guard import refuse_nul_characters
from relay.api.open_counts import OpenCounts
from relay.api.openapi import document_common_errors, document_decoded_bodies, mark_strict_bodies
from relay.api.operations import OperationController
from relay.api.security_headers import add_security_headers
from relay.api.stats import hourly_stats, tenant_stats
from relay.db.group_commit import GroupCommit
from relay.db.key_cache import ApiKeyCache, following_revocations
from relay.db.pool import open_pool
from relay.jobs import api_jobs_app
from relay.settings import Settings
from relay.ui.app import dashboard
from relay.urlguard import AddressPolicy


def create_app(settings: Settings, conninfo: str) -> Litestar:
    """Build the API; the connection pool opens with the app and closes with it."""
    address_policy = AddressPolicy(settings.allowed_networks or ())
    claude = make_claude(settings)

    def provide_address_policy() -> AddressPolicy:
        return address_policy

    def provide_claude() -> Claude | None:
        return claude

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # The API starts even while PostgreSQL is away: requests then answer 503 and
        # /health/ready says why, instead of the process crash-looping.
        app.state.pool = await open_pool(
            conninfo, min_size=2, max_size=settings.db_pool_size, name="relay-api", wait=False, timeout=5
        )
        # Background jobs (bulk replay, verification) are queued through procrastinate.
        jobs_pool = await open_pool(
            conninfo, min_size=1, max_size=2, name="relay-api-jobs", autocommit=False, wait=False, timeout=5
        )
        app.state.jwt_secret = settings.jwt_secret  # None: loaded from the database on first use
        # Single events are written in groups (relay/db/group_commit.py); API keys are
        # remembered until revoked (relay/db/key_cache.py): the hot path has one round trip.
        app.state.group_commit = GroupCommit(app.state.pool)
        app.state.group_commit.start()
        app.state.open_counts = OpenCounts(app.state.pool)  # /v1/stats on a large queue (relay/api/open_counts.py)
        app.state.jobs = api_jobs_app(conninfo)
        try:
            async with (
                following_revocations(ApiKeyCache(), conninfo) as key_cache,
                app.state.jobs.open_async(pool=jobs_pool),
            ):
                app.state.key_cache = key_cache
                yield
        finally:
            await app.state.group_commit.stop()
            await app.state.open_counts.close()
            await app.state.pool.close()
            await jobs_pool.close()

    v1 = Router(
        path="/",
        route_handlers=[
            AccountController,
            ApiKeyController,
            AuditLogController,
            EndpointController,
            EndpointActionController,
            EventController,
            EventTypeController,
            DeliveryController,
            DeadLetterController,
            OperationController,
            tenant_stats,
            hourly_stats,
            AiController,
        ],
        security=[{"apiKey": []}, {"bearer": []}],
    )
    dashboard_handlers, templates = dashboard(settings)
    app = Litestar(
        route_handlers=[health, ready, metrics, metrics_head, v1, *dashboard_handlers],
        template_config=templates,
        dependencies={
            "conn": Provide(provide_connection),  # public routes only; the others use `db`
            "db": Provide(provide_tenant_db, sync_to_thread=False),
            "address_policy": Provide(provide_address_policy, sync_to_thread=False),
            "claude": Provide(provide_claude, sync_to_thread=False),
        },
        # Outermost first: the HTTP metrics also count the 401s that Authentication answers.
        middleware=[http_metrics.middleware, Authentication()],
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        before_request=refuse_nul_characters,
        before_send=[add_security_headers],  # CSP and the other browser defaults (relay/api/security_headers.py)
        request_max_body_size=settings.max_request_bytes,
        openapi_config=OpenAPIConfig(
            title="Relay",
            version=__version__,
            description="Webhook delivery on PostgreSQL alone.",
            path=DOCS_PATH,
            # Swagger UI's files are served by Relay (relay/api/docs_assets.py): the page works offline.
            render_plugins=[JsonRenderPlugin(path="/openapi.json"), LocalSwaggerRenderPlugin(DOCS_PATH, path="/")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="An API key as a bearer token."),
                    "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
                }
            ),
        ),
        debug=False,
        logging_config=None,
    )
    app.state.settings = settings
    mark_strict_bodies(app)
    document_decoded_bodies(app)
    document_common_errors(app)
    return app
