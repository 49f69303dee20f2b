"""The coordinator's registry storage: SQL tables and repositories.

Modules: :mod:`~dure.server.storage.tables` (the SQLModel tables),
:mod:`~dure.server.storage.database` (engine and transactions),
:mod:`~dure.server.storage.registry` (sites, policies, revocations: the
federation's ``SiteRegistry`` on SQL), :mod:`~dure.server.storage.jobs`,
:mod:`~dure.server.storage.auditors`, :mod:`~dure.server.storage.nonces`,
:mod:`~dure.server.storage.rounds` and :mod:`~dure.server.storage.retrains`.
Import from those modules; this package re-exports nothing.
"""

__all__: list[str] = []
