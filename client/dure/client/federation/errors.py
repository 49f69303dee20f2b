"""Errors of the factory's side of the federation.

Hierarchy (code in :data:`dure.policies.errors.CATALOG`)::

    DureError
    └── FederationSetupError   client.federation: node configuration, keys or policy missing

A job refused by the policy gate is not an error on the factory: the gate
answers the coordinator with a Flower ``Error`` reply carrying every reason.
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = ["FederationSetupError"]


class FederationSetupError(DureError):
    """The factory's federation settings (node config, keys, policy, home) are unusable."""

    code = "client.federation"
    default_hint = (
        'Start the SuperNode with --node-config \'dure-home="…" dure-site="…" …\' '
        "naming the factory home, the site key, the signed policy and the pinned keys."
    )
