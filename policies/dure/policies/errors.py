"""Dure's errors: one root, a subclass per failure domain, one catalog.

Every error Dure raises on purpose derives from :class:`DureError`.  Each class
carries a stable ``code`` (``"<domain>.<failure>"``); :data:`CATALOG` maps every
code to the CLI exit status and the HTTP status used at the two outer seams, so
the command line and the coordinator's API agree on what a failure means.

Hierarchy (kernel part; the client and coordinator add their own under these)::

    DureError
    ├── EncodingError          bytes, hex, base64 or canonical JSON that is not what it claims
    ├── DocumentError          a signed document whose content is invalid (policy, job, identity)
    ├── KeyFileError           a key file that is missing, unreadable, malformed or too open
    ├── SignatureError         a signature that does not verify, or from an unknown key
    ├── ExpiredError           a document used outside its validity period
    ├── ProofError             a Merkle inclusion or consistency proof that does not verify
    └── NoteError              a signed note or checkpoint that is malformed or unverifiable

Errors say what to do: :meth:`DureError.diagnostics` returns the message and a hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CATALOG",
    "DocumentError",
    "DureError",
    "EncodingError",
    "ErrorOutcome",
    "ExpiredError",
    "KeyFileError",
    "NoteError",
    "ProofError",
    "SignatureError",
    "outcome_for",
]


class DureError(Exception):
    """Root of every error Dure raises on purpose.

    Parameters
    ----------
    message
        What went wrong, naming the file, field or value concerned.
    hint
        How to fix it; falls back to the class's ``default_hint``.
    """

    code: ClassVar[str] = "dure.error"
    default_hint: ClassVar[str] = "See the documentation in docs/ for the expected input."

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def diagnostics(self) -> str:
        """Return the message and the hint as two lines for a person to read."""
        return f"{self.message}\nhint: {self.hint}"


class EncodingError(DureError):
    """Bytes, hex, base64 or canonical JSON that is not what it claims to be."""

    code = "kernel.encoding"
    default_hint = "Check that the value was produced by Dure and not edited by hand."


class DocumentError(DureError):
    """A document (policy, job manifest, identity, revocation) whose content is invalid."""

    code = "kernel.document"
    default_hint = "Fix the named field; docs/policy-language.md lists every accepted term."


class KeyFileError(DureError):
    """A key file that is missing, unreadable, malformed or readable by others."""

    code = "kernel.key_file"
    default_hint = "Create a key with 'dure keys new' and keep it with mode 0600."


class SignatureError(DureError):
    """A signature that does not verify, or one made by a key nobody trusts."""

    code = "kernel.signature"
    default_hint = "Ask the signer for a fresh signed copy and check you pinned the right key."


class ExpiredError(DureError):
    """A document used before or after its validity period."""

    code = "kernel.expired"
    default_hint = "Ask the signer for a renewed document."


class ProofError(DureError):
    """A Merkle inclusion or consistency proof that does not verify."""

    code = "kernel.proof"
    default_hint = "The log may have been rewritten: keep this evidence and alert the consortium."


class NoteError(DureError):
    """A signed note or checkpoint that is malformed or cannot be verified."""

    code = "kernel.note"
    default_hint = "Fetch the checkpoint again and check the pinned verifier key."


@dataclass(frozen=True, slots=True)
class ErrorOutcome:
    """How one error code surfaces at the command line and over HTTP."""

    exit_code: int
    http_status: int
    title: str


# Exit codes: 2 is the CLI's own usage error (typer); 3 bad input; 4 trust failure
# (signature, proof); 5 denied by policy; 6 state conflict; 7 local environment (keys,
# files, storage); 8 not found.
CATALOG: dict[str, ErrorOutcome] = {
    "dure.error": ErrorOutcome(1, 500, "Unexpected error"),
    # --- kernel ---
    "kernel.audit": ErrorOutcome(3, 422, "Audit input not valid"),  # audit
    "kernel.audit_unknown": ErrorOutcome(8, 404, "Not in the audited ledger"),  # audit
    "kernel.proof_request": ErrorOutcome(3, 400, "Proof request out of range"),  # merkle.py
    "kernel.encoding": ErrorOutcome(3, 400, "Malformed encoding"),
    "kernel.document": ErrorOutcome(3, 422, "Invalid document"),
    "kernel.key_file": ErrorOutcome(7, 500, "Key file problem"),
    "kernel.signature": ErrorOutcome(4, 401, "Signature not valid"),
    "kernel.expired": ErrorOutcome(5, 403, "Document expired or not yet valid"),
    "kernel.proof": ErrorOutcome(4, 409, "Proof does not verify"),
    "kernel.note": ErrorOutcome(4, 409, "Checkpoint not valid"),
    # --- client (factory) ---
    "client.training": ErrorOutcome(3, 422, "Model, data or statistics do not fit"),  # training
    "client.audit": ErrorOutcome(4, 409, "Audit found a problem"),  # audit
    "client.audit_source": ErrorOutcome(7, 502, "Ledger source unavailable or malformed"),  # audit
    "client.audit_state": ErrorOutcome(7, 500, "Auditor or witness state problem"),  # audit
    "client.witness_refused": ErrorOutcome(4, 409, "Witness refused to cosign"),  # audit
    "client.federation": ErrorOutcome(7, 500, "Factory federation setup problem"),  # federation
    "client.episode": ErrorOutcome(3, 422, "Episode breaks the canonical schema"),
    "client.profile": ErrorOutcome(3, 422, "Invalid site profile"),
    "client.ingest": ErrorOutcome(3, 422, "Source log cannot be ingested"),
    "client.store": ErrorOutcome(7, 500, "Episode store problem"),
    "client.store_not_found": ErrorOutcome(8, 404, "Episode not found"),
    "client.store_full": ErrorOutcome(7, 507, "Factory disk full"),
    # --- server (coordinator) ---
    "server.auth": ErrorOutcome(4, 401, "Request not authenticated"),  # api
    "server.replay": ErrorOutcome(4, 401, "Request replayed"),  # api
    "server.stale": ErrorOutcome(4, 401, "Request timestamp outside the window"),  # api
    "server.forbidden": ErrorOutcome(5, 403, "Not allowed for this member"),  # api
    "server.release_denied": ErrorOutcome(5, 403, "Release denied by policy"),  # api
    "server.request": ErrorOutcome(3, 422, "Invalid request"),  # api
    "server.body_too_large": ErrorOutcome(3, 413, "Request body too large"),  # api
    "server.not_found": ErrorOutcome(8, 404, "Not found"),  # storage
    "server.conflict": ErrorOutcome(6, 409, "Conflicts with the registry"),  # storage
    "server.storage": ErrorOutcome(7, 503, "Registry storage unavailable"),  # storage
    "server.registry": ErrorOutcome(3, 422, "Registry refused the document"),  # federation
    "server.federation": ErrorOutcome(6, 409, "Federated run cannot proceed"),  # federation
    "server.ledger": ErrorOutcome(7, 500, "Ledger storage problem"),
    "server.ledger_range": ErrorOutcome(3, 400, "Range outside the ledger"),
    "server.ledger_conflict": ErrorOutcome(6, 409, "Ledger checkpoint conflict"),
    "server.ledger_export": ErrorOutcome(4, 422, "Ledger export does not verify"),
    "server.unpublished": ErrorOutcome(8, 404, "No checkpoint published yet"),  # witnesses
    "server.cosignature": ErrorOutcome(3, 422, "Cosignature not a signed checkpoint"),
    "server.witness_unknown": ErrorOutcome(5, 403, "Cosignature by an unknown witness"),
    "server.witness_signature": ErrorOutcome(4, 401, "Witness cosignature not valid"),
    "server.witness_stale": ErrorOutcome(6, 409, "Cosignature for a stale checkpoint"),
    # --- cli ---
    "cli.file": ErrorOutcome(7, 400, "File problem"),
    "cli.denied": ErrorOutcome(5, 403, "Denied by policy"),
    "cli.config": ErrorOutcome(3, 422, "Invalid deployment configuration"),  # deployment
    "cli.process": ErrorOutcome(7, 500, "A deployment process failed"),  # deployment
}


def outcome_for(error: DureError) -> ErrorOutcome:
    """Return the catalog entry for ``error``.

    Raises
    ------
    KeyError
        If the error's code is missing from :data:`CATALOG`; a test checks that
        every subclass of :class:`DureError` is listed, so this is a bug.
    """
    return CATALOG[error.code]
