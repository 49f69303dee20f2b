"""Errors of the audit rules (kernel section of the catalog).

Hierarchy::

    DureError
    └── AuditError              audit input that cannot be used (bad quorum, bad document)
        └── UnknownInLedgerError  a model (or other id) the audited ledger never mentions
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = ["AuditError", "UnknownInLedgerError"]


class AuditError(DureError):
    """Audit input that cannot be used: a malformed document set, an impossible quorum."""

    code = "kernel.audit"
    default_hint = "Check the auditor's options: documents, witness keys and quorum."


class UnknownInLedgerError(AuditError):
    """A model digest (or other identifier) that no verified ledger entry mentions."""

    code = "kernel.audit_unknown"
    default_hint = "Check the digest (64 lowercase hex) against the ledger's aggregate entries."
