"""Errors of the coordinator's audit ledger.

Hierarchy (codes in :data:`dure.policies.errors.CATALOG`)::

    DureError
    └── LedgerError                server.ledger: the store failed (database down, locked…)
        ├── LedgerRangeError       server.ledger_range: entries asked outside 0..size
        ├── LedgerConflictError    server.ledger_conflict: a checkpoint that would fork the log
        ├── LedgerExportError      server.ledger_export: an export that does not verify
        ├── UnpublishedError       server.unpublished: no checkpoint reached the witness quorum yet
        └── CosignatureError       server.cosignature: a posted cosignature that is not a note
            ├── WitnessUnknownError    server.witness_unknown: by no configured witness
            ├── WitnessSignatureError  server.witness_signature: a configured witness's, invalid
            └── WitnessStaleError      server.witness_stale: not for the pending checkpoint

Proof requests outside the tree raise the kernel's
:class:`~dure.policies.merkle.ProofRequestError`; proofs that fail raise
:class:`~dure.policies.errors.ProofError`.
"""

from __future__ import annotations

from dure.policies.errors import DureError

__all__ = [
    "CosignatureError",
    "LedgerConflictError",
    "LedgerError",
    "LedgerExportError",
    "LedgerRangeError",
    "UnpublishedError",
    "WitnessSignatureError",
    "WitnessStaleError",
    "WitnessUnknownError",
]


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


class UnpublishedError(LedgerError):
    """No checkpoint has reached the consortium's witness quorum yet."""

    code = "server.unpublished"
    default_hint = (
        "Wait for the witnesses to cosign the pending checkpoint (GET /v1/witness/checkpoint, "
        "dure factory witness cosign --url); the operator can list the missing ones."
    )


class CosignatureError(LedgerError):
    """A posted cosignature that is not a signed checkpoint note."""

    code = "server.cosignature"
    default_hint = (
        "POST the pending checkpoint note (GET /v1/witness/checkpoint) with your "
        "cosignature line appended, as text/plain."
    )


class WitnessUnknownError(CosignatureError):
    """A cosignature by no witness the consortium configured."""

    code = "server.witness_unknown"
    default_hint = (
        "Only the configured witnesses' cosignatures count: give the consortium your witness "
        "verifier key (dure factory witness key) and sign with that key."
    )


class WitnessSignatureError(CosignatureError):
    """A configured witness's cosignature that does not verify over the checkpoint."""

    code = "server.witness_signature"
    default_hint = (
        "Cosign the exact checkpoint body with the witness key the consortium configured; "
        "a forged or altered cosignature is never stored."
    )


class WitnessStaleError(CosignatureError):
    """A cosignature for a checkpoint that is not the coordinator's pending one."""

    code = "server.witness_stale"
    default_hint = (
        "Fetch the pending checkpoint again (GET /v1/witness/checkpoint), check it "
        "extends the one you cosigned, and cosign that one."
    )
