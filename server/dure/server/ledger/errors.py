"""Errors of the coordinator's audit ledger.

Hierarchy (codes in :data:`dure.policies.errors.CATALOG`)::

    DureError
    └── LedgerError                server.ledger: the store failed (database down, locked…)
        ├── LedgerRangeError       server.ledger_range: entries asked outside 0..size
        ├── LedgerConflictError    server.ledger_conflict: a checkpoint that would fork the log
        └── LedgerExportError      server.ledger_export: an export that does not verify

Proof requests outside the tree raise the kernel's
:class:`~dure.policies.merkle.ProofRequestError`; proofs that fail raise
:class:`~dure.policies.errors.ProofError`.
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = ["LedgerConflictError", "LedgerError", "LedgerExportError", "LedgerRangeError"]


class LedgerError(DureError):
    """The ledger's storage failed or holds something it should not."""

    code = "server.ledger"
    default_hint = (
        "Check that the ledger database is reachable and writable (--db URL); "
        "transient lock errors are retried, persistent ones need an operator."
    )


class LedgerRangeError(LedgerError):
    """Entries were asked for outside ``0 <= start <= end <= size``."""

    code = "server.ledger_range"
    default_hint = "Ask for 0 <= start <= end <= the ledger's current size."


class LedgerConflictError(LedgerError):
    """A checkpoint that is smaller than, or inconsistent with, the log or the stored one."""

    code = "server.ledger_conflict"
    default_hint = (
        "Never sign or store a checkpoint that does not extend the last one; if the stored "
        "log really diverged, stop the coordinator and alert the consortium."
    )


class LedgerExportError(LedgerError):
    """A ledger export whose entries, checkpoint or key do not agree."""

    code = "server.ledger_export"
    default_hint = (
        "Do not trust this export: fetch it again from the coordinator and compare its "
        "checkpoint with the one your witnesses cosigned."
    )
