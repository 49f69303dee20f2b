"""Errors of the coordinator's federation.

Hierarchy (codes in :data:`dure.policies.errors.CATALOG`)::

    DureError
    ├── RegistryError      server.registry: a site, policy, revocation or job the registry refuses
    └── FederationError    server.federation: a run that cannot start or go on

A site refused by its policy, an update rejected by validation or a round
aborted below its minimum is *not* an error: each is a ledger entry with reasons.
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = ["FederationError", "RegistryError"]


class RegistryError(DureError):
    """A site identity, policy, revocation or job that the registry refuses."""

    code = "server.registry"
    default_hint = (
        "Register the site's signed identity first, then policies and revocations "
        "signed with that site's key; jobs must be signed by a pinned operator key."
    )


class FederationError(DureError):
    """A federated run that cannot start or continue (setup, job, Flower)."""

    code = "server.federation"
    default_hint = (
        "Check the run configuration (job, registry, ledger, model) and that enough "
        "admitted factories are connected."
    )
