"""The coordinator's FastAPI app, built by :func:`create_app` from settings.

Nothing is built at import time.  :func:`create_app` wires the routers, the
problem handlers (one error catalog, :mod:`~dure.server.api.problems`), the
observability middleware and ``/metrics``; it builds the
:class:`~dure.server.api.services.Services` from the settings unless given
some (tests pass their own), and closes what it built at shutdown.
:func:`app_from_env` is the factory ``uvicorn --factory`` calls for workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from dure.server.api.fastpath import ProofFastPath
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
    )
    app.state.services = ready
    app.state.metrics = Metrics(
        lambda: float(ready.ledger.store.size()),
        proof_copy=lambda: float(getattr(ready.proofs, "cached", 0)),
    )
    for router in _ROUTERS:
        app.include_router(router)
    _operations(app)
    install_problem_handlers(app)
    app.add_middleware(ProofFastPath)
    app.add_middleware(Observability, metrics=app.state.metrics, max_body=settings.max_body_bytes)
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
