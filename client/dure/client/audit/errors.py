"""Errors of the auditor and the factory witness (client section of the catalog).

Hierarchy::

    DureError
    ├── AuditFailedError      the audit found a problem (the report names the entry)
    ├── LedgerSourceError     the coordinator or export cannot be read, or answers nonsense
    ├── AuditStateError       the auditor's or witness's home folder cannot be used
    └── WitnessRefusedError   the witness refused to cosign a checkpoint, and why
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = ["AuditFailedError", "AuditStateError", "LedgerSourceError", "WitnessRefusedError"]


class AuditFailedError(DureError):
    """The audit found a problem: a bad signature, a rewritten entry, a broken invariant."""

    code = "client.audit"
    default_hint = (
        "Keep the audit output and the coordinator's answers as evidence and alert the "
        "consortium; every finding is listed above, with its ledger entry when known."
    )


class LedgerSourceError(DureError):
    """The coordinator's read API or an export folder cannot be read, or answers nonsense."""

    code = "client.audit_source"
    default_hint = "Check the --url (and network) or the --export folder, then run again."


class AuditStateError(DureError):
    """The auditor's or witness's home folder (stored checkpoints) cannot be used."""

    code = "client.audit_state"
    default_hint = "Check the --home folder: it must be writable and hold files Dure wrote."


class WitnessRefusedError(DureError):
    """The factory witness refused to cosign a checkpoint (inconsistent, or not the log's)."""

    code = "client.witness_refused"
    default_hint = (
        "Do not accept this checkpoint: keep it with the one you cosigned before as evidence "
        "of a fork and alert the consortium."
    )
