"""The auditor and the factory witness: fetch, verify, replay, cosign.

:mod:`~dure.client.audit.source` (the ledger over the coordinator's read API or
an export folder), :mod:`~dure.client.audit.state` (checkpoints kept in a home
folder), :mod:`~dure.client.audit.integrity` (recompute the tree, locate a
tampered entry), :mod:`~dure.client.audit.evidence` (receipts and signed
documents from folders), :mod:`~dure.client.audit.auditor` (the ``dure audit
run`` checks) and :mod:`~dure.client.audit.witness` (the factory's cosigner).
The rules themselves are pure and live in :mod:`dure.policies.audit`.  Import
from those modules; this package re-exports nothing.
"""

__all__: list[str] = []
