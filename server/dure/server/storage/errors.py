"""Errors of the coordinator's registry storage.

Hierarchy (codes in :data:`dure.policies.errors.CATALOG`)::

    DureError
    ├── RegistryError            server.registry (the federation's): a document the registry refuses
    │   ├── NotFoundError        server.not_found: no such site, policy, job or model
    │   └── ConflictError        server.conflict: clashes with what is registered
    └── StorageError             server.storage: the database failed (down, locked…)

Not-found and conflict errors derive from the federation's
:class:`~dure.server.federation.errors.RegistryError`, so code written against the
:class:`~dure.server.federation.registry.SiteRegistry` contract catches them too.
"""

from __future__ import annotations

from dure.policies.errors import DureError
from dure.server.federation.errors import RegistryError

__all__ = ["ConflictError", "NotFoundError", "StorageError"]


class NotFoundError(RegistryError):
    """A site, policy, job, round or model that the coordinator does not know."""

    code = "server.not_found"
    default_hint = "Check the name or digest; list what is registered with the matching GET route."


class ConflictError(RegistryError):
    """A registration that clashes with what is already registered."""

    code = "server.conflict"
    default_hint = (
        "A name, key or document id is registered once; sign a new document "
        "(new label, new job id) instead of re-using one."
    )


class StorageError(DureError):
    """The registry's database failed or is unreachable."""

    code = "server.storage"
    default_hint = (
        "Check that the coordinator database is reachable and migrated "
        "('dure coordinator db upgrade --db URL'); retry the request."
    )
