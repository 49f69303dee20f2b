"""The factory's side of the federation: policy gate, selection, claims, receipts.

:mod:`~dure.client.federation.settings` (what a node needs, from its node config),
:mod:`~dure.client.federation.gate` (the policy gate, a ClientApp mod),
:mod:`~dure.client.federation.selection` (the episodes a job may use, the signed
claim), :mod:`~dure.client.federation.receipts` (ledger receipts kept on disk),
:mod:`~dure.client.federation.statistics` (the statistics query),
:mod:`~dure.client.federation.trainer` (local training behind a small protocol),
:mod:`~dure.client.federation.wire` (the Message wire format) and
:mod:`~dure.client.federation.clientapp` (the Flower ``ClientApp``).
Import from those modules; this package re-exports nothing.
"""

__all__: list[str] = []
