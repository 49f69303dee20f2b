"""The coordinator's HTTP API (FastAPI), built by :func:`dure.server.api.app.create_app`.

Framework-free modules: :mod:`~dure.server.api.signing` (signed requests),
:mod:`~dure.server.api.auth` (members, signatures, read tokens),
:mod:`~dure.server.api.ledger_view` (lineage-relevant entries, kept current),
:mod:`~dure.server.api.registrations` and :mod:`~dure.server.api.provenance`
(what the routes do), :mod:`~dure.server.api.services` (the service container).
FastAPI adapters: :mod:`~dure.server.api.app`, :mod:`~dure.server.api.deps`,
:mod:`~dure.server.api.problems`, :mod:`~dure.server.api.observability` and the
routers in :mod:`dure.server.api.routes`.  docs/api.md describes the routes.
Import from those modules; this package re-exports nothing.
"""

__all__: list[str] = []
