"""The auditor's pure rules: replay of verified ledger entries, lineage, witness decisions.

:mod:`~dure.policies.audit.findings` (what a replay reports),
:mod:`~dure.policies.audit.documents` (signed policies and jobs the auditor checks),
:mod:`~dure.policies.audit.replay` (the invariants, entry by entry),
:mod:`~dure.policies.audit.checks` (the checks against signed documents),
:mod:`~dure.policies.audit.lineage` (who learned from whose data) and
:mod:`~dure.policies.audit.witness` (cosign or refuse; quorum of cosignatures).
Nothing here reads a file or the network: the client's auditor fetches, this
package decides.  Import from those modules; this package re-exports nothing.
"""

__all__: list[str] = []
