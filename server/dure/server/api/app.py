"""The coordinator's FastAPI app, built by :func:`create_app` from settings.

Nothing is built at import time.  :func:`create_app` wires the routers, the
problem handlers (one error catalog, :mod:`~dure.server.api.problems`), the
observability middleware and ``/metrics``, and the security headers on every
response (:mod:`~dure.server.api.headers`).  ``/openapi.json`` is always
served; ``/docs`` (Swagger UI) only from local assets the settings name
(``docs_assets``), never from a CDN, and ``/redoc`` never; it builds the
:class:`~dure.server.api.services.Services` from the settings unless given
some (tests pass their own), and closes what it built at shutdown.
:func:`app_from_env` is the factory ``uvicorn --factory`` calls for workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from dure.policies.errors import DocumentError
from dure.server.api.fastpath import ProofFastPath
from dure.server.api.headers import SecurityHeaders
from dure.server.api.observability import Metrics, Observability
from dure.server.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from dure.server.api.routes import dashboard, jobs, ledger, members, models, policies, sites
from dure.server.api.routes import witness as witness_routes
from dure.server.api.services import Services
from dure.server.settings import ServiceSettings

__all__ = ["app_from_env", "create_app"]

_ROUTERS = (
    ledger.router,
    members.router,
    sites.router,
    policies.router,
    jobs.router,
    models.router,
    dashboard.router,
    witness_routes.router,
)


def create_app(settings: ServiceSettings, *, services: Services | None = None) -> FastAPI:
    """Build the coordinator's app.

    Parameters
    ----------
    settings
        The service settings.
    services
        Ready services (tests); built from ``settings`` and closed at shutdown
        when not given.
    """
    owned = services is None
    ready = services or Services.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warming = asyncio.create_task(ready.proofs.warm())  # the proofs' memory copy loads
        yield
        warming.cancel()
        with suppress(asyncio.CancelledError):
            await warming
        await ready.proofs.close()
        if owned:
            ready.close()

    app = FastAPI(
        title="Dure coordinator",
        version="1",
        summary="Registry, jobs, rounds, lineage and the audit ledger of a Dure consortium.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = ready
    app.state.metrics = Metrics(
        lambda: float(ready.ledger.store.size()),
        proof_copy=lambda: float(getattr(ready.proofs, "cached", 0)),
    )
    for router in _ROUTERS:
        app.include_router(router)
    _operations(app)
    if settings.docs_assets is not None:
        _swagger_ui(app, settings.docs_assets)
    install_problem_handlers(app)
    app.add_middleware(ProofFastPath)
    app.add_middleware(Observability, metrics=app.state.metrics, max_body=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: also on what the middleware answers
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Build the app from ``DURE_*`` environment variables (``uvicorn --factory``)."""
    return create_app(ServiceSettings.from_env())


def _operations(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        registry = app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}


_SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")


def _swagger_ui(app: FastAPI, folder: Path) -> None:
    """Serve Swagger UI at ``/docs`` from ``folder`` only (no CDN, no external favicon)."""
    missing = [name for name in _SWAGGER_ASSETS if not (folder / name).is_file()]
    if missing:
        raise DocumentError(
            f"coordinator settings: docs_assets {folder} lacks {', '.join(missing)}",
            hint="Point DURE_DOCS_ASSETS at the dist folder of npm's swagger-ui-dist, "
            "or unset it to serve /openapi.json only.",
        )
    app.mount("/docs/assets", StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/dashboard/favicon.svg",
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with every error response as ``application/problem+json``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                _problem_media(operation.get("responses", {}))
        schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


def _problem_media(responses: dict[str, Any]) -> None:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for status, response in responses.items():
        if status == "default" or status.startswith(("4", "5")):
            response["content"] = {PROBLEM_MEDIA_TYPE: problem}
