"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from relay import __version__
from relay.api.auth import provide_connection, provide_principal
from relay.api.deliveries import DeliveryController
from relay.api.endpoints import EndpointController
from relay.api.errors import exception_handlers
from relay.api.events import EventController
from relay.api.health import health
from relay.db.pool import open_pool
from relay.settings import Settings


def create_app(settings: Settings, conninfo: str) -> Litestar:
    """Build the API; the connection pool opens with the app and closes with it."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await open_pool(conninfo, min_size=2, max_size=settings.db_pool_size, name="relay-api")
        try:
            yield
        finally:
            await app.state.pool.close()

    v1 = Router(
        path="/",
        route_handlers=[EndpointController, EventController, DeliveryController],
        dependencies={"conn": Provide(provide_connection), "principal": Provide(provide_principal)},
        security=[{"apiKey": []}, {"bearer": []}],
    )
    app = Litestar(
        route_handlers=[health, v1],
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_request_bytes,
        openapi_config=OpenAPIConfig(
            title="Relay",
            version=__version__,
            description="Webhook delivery on PostgreSQL alone.",
            path="/schema",
            render_plugins=[JsonRenderPlugin(path="/openapi.json"), SwaggerRenderPlugin(path="/")],
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
    return app
