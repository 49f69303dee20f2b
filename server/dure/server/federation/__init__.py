"""Federated training through Flower, under signed policies, recorded in the ledger.

Pure modules: :mod:`~dure.server.federation.registry` (sites, policies, jobs),
:mod:`~dure.server.federation.admission` (who may be sampled),
:mod:`~dure.server.federation.validation` (which updates may be aggregated),
:mod:`~dure.server.federation.budget` (ε already spent, from the ledger),
:mod:`~dure.server.federation.statistics` (consortium feature statistics),
:mod:`~dure.server.federation.models` (the model registry),
:mod:`~dure.server.federation.weighted` (FedAvg's weighted mean, bit for bit as Flower's).
Flower adapters: :mod:`~dure.server.federation.aggregation` (Flower's strategies and
DP wrappers), :mod:`~dure.server.federation.privacy` (Flower's RDP accountant),
:mod:`~dure.server.federation.wire` (the Message wire format),
:mod:`~dure.server.federation.exchange` (push and pull),
:mod:`~dure.server.federation.coordinator` (one run, round by round) and
:mod:`~dure.server.federation.serverapp` (the Flower ``ServerApp``).
Import from those modules; this package re-exports nothing.
"""

__all__: list[str] = []
