"""The auditor's run: verify the ledger without trusting the coordinator, then replay it.

:func:`run_audit` trusts only what the auditor brings: the log's pinned key, the
witness keys and quorum, the checkpoint it kept from its last audit, the
receipts its factory holds, and the signed documents it collected.  In order:

1. the checkpoint is signed by the pinned key (never the one served);
2. at least ``quorum`` of the configured witnesses validly cosigned it;
3. the entries served hash to the signed root (else the first bad entry is
   located, see :mod:`~dure.client.audit.integrity`), each is a valid entry;
4. the checkpoint extends the one kept from the last audit (a fork or a
   rewritten history fails here, even if it is internally consistent);
5. every held receipt verifies, is consistent with the checkpoint, and its
   entry is the one at its index;
6. the entries replay without violating an invariant
   (:func:`dure.policies.audit.replay.replay`).

The checkpoint is kept for next time only when every check passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from dure.client.audit.errors import AuditFailedError
from dure.client.audit.evidence import HeldReceipt
from dure.client.audit.integrity import Finding, TreeCheck, check_tree, fetch_entries
from dure.client.audit.source import LedgerSource
from dure.client.audit.state import CheckpointStore, StoredNote
from dure.policies.audit.documents import DocumentSource
from dure.policies.audit.findings import ReplayReport
from dure.policies.audit.replay import replay
from dure.policies.audit.witness import QuorumResult, check_quorum
from dure.policies.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    check_consistent,
    open_checkpoint,
)
from dure.policies.entries import LedgerEntry
from dure.policies.errors import DureError, NoteError, ProofError
from dure.policies.merkle import leaf_hash, verify_inclusion
from dure.policies.note import Ed25519Verifier
from dure.policies.receipt import verify_receipt

__all__ = ["AuditResult", "AuditSettings", "run_audit"]


@dataclass(frozen=True)
class AuditSettings:
    """What the auditor trusts and how strict it is.

    ``quorum`` defaults to every witness given; ``strict`` fails on checks that
    could not be made for lack of documents.
    """

    log_key: Ed25519Verifier
    witnesses: tuple[CosignatureVerifier, ...] = ()
    quorum: int | None = None
    documents: DocumentSource | None = None
    receipts: tuple[HeldReceipt, ...] = ()
    strict: bool = False
    consortium: str | None = None
    chunk: int = 1000


@dataclass(frozen=True)
class AuditResult:
    """Everything the audit found; :attr:`ok` is the verdict."""

    checkpoint: Checkpoint | None
    findings: tuple[Finding, ...]
    replay: ReplayReport | None
    entries: tuple[tuple[int, LedgerEntry], ...] = ()
    quorum: QuorumResult | None = None
    previous: Checkpoint | None = None
    stored: bool = False
    strict: bool = False
    receipts_checked: int = 0

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return (
            self.checkpoint is not None
            and not self.findings
            and self.replay is not None
            and self.replay.ok(strict=self.strict)
        )

    def failures(self) -> list[str]:
        """Every failure as one line: integrity first, then violations in ledger order."""
        lines = [f.describe() for f in self.findings]
        if self.replay is not None:
            lines += [v.describe() for v in self.replay.violations]
            if self.strict:
                lines += [f"unverified: {u.describe()}" for u in self.replay.unverified]
        return lines

    def raise_for_failure(self) -> None:
        """Raise :class:`AuditFailedError` naming the first failure, unless :attr:`ok`."""
        if self.ok:
            return
        lines = self.failures() or ["the audit could not complete"]
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise AuditFailedError(f"audit failed: {lines[0]}{more}")


def run_audit(
    source: LedgerSource, settings: AuditSettings, store: CheckpointStore | None = None
) -> AuditResult:
    """Audit the ledger at ``source`` (see the module docstring); never raises on findings.

    Raises
    ------
    LedgerSourceError
        If the source cannot be read at all.
    AuditStateError
        If the kept checkpoint cannot be read or no longer verifies.
    AuditError
        If the witness quorum is impossible.
    """
    note = source.checkpoint()
    try:
        checkpoint = open_checkpoint(note, settings.log_key)
    except NoteError as exc:
        finding = Finding("checkpoint.signature", f"{source.description}: {exc.message}")
        return AuditResult(None, (finding,), None, strict=settings.strict)
    findings: list[Finding] = []
    quorum = _witnesses(note, settings, findings)
    kept = store.load(settings.log_key) if store is not None else None
    leaves, fetched = fetch_entries(source, checkpoint.size, settings.chunk)
    findings += fetched
    tree = check_tree(leaves, checkpoint, source)
    findings += tree.findings
    entries = _parse(leaves, findings)
    findings += _extends(kept, checkpoint, tree, source)
    findings += _receipts(settings, checkpoint, tree, leaves)
    report = replay(entries, settings.documents, consortium=settings.consortium)
    result = AuditResult(
        checkpoint,
        tuple(findings),
        report,
        tuple(entries),
        quorum,
        kept.checkpoint if kept else None,
        strict=settings.strict,
        receipts_checked=len(settings.receipts),
    )
    if result.ok and store is not None:
        store.save(settings.log_key, note)
        return replace(result, stored=True)
    return result


def _witnesses(note: str, settings: AuditSettings, findings: list[Finding]) -> QuorumResult | None:
    if not settings.witnesses:
        return None
    quorum = settings.quorum if settings.quorum is not None else len(settings.witnesses)
    result = check_quorum(note, settings.witnesses, quorum)
    if not result.met:
        findings.append(Finding("checkpoint.witnesses", result.describe()))
    return result


def _parse(leaves: Sequence[bytes], findings: list[Finding]) -> list[tuple[int, LedgerEntry]]:
    entries = []
    for index, leaf in enumerate(leaves):
        try:
            entries.append((index, LedgerEntry.from_bytes(leaf, source=f"entry {index}")))
        except DureError as exc:
            findings.append(Finding("entries.invalid", exc.message, index))
    return entries


def _extends(
    kept: StoredNote | None, checkpoint: Checkpoint, tree: TreeCheck, source: LedgerSource
) -> list[Finding]:
    if kept is None:
        return []
    old = kept.checkpoint
    if old.size == 0 or old.size >= checkpoint.size:
        proof: list[bytes] | None = []
    elif tree.matches:
        proof = list(tree.tree.consistency_proof(old.size, checkpoint.size))
    else:
        proof = source.consistency_proof(old.size, checkpoint.size)
    if proof is None:
        return []  # the entries did not verify, which is already a finding
    try:
        check_consistent(old, checkpoint, proof)
    except ProofError as exc:
        message = (
            f"the checkpoint of size {checkpoint.size} does not extend the one kept from the "
            f"last audit (size {old.size}): {exc.message}; the log was forked or rewritten"
        )
        return [Finding("checkpoint.fork", message)]
    return []


def _receipts(
    settings: AuditSettings, checkpoint: Checkpoint, tree: TreeCheck, leaves: Sequence[bytes]
) -> list[Finding]:
    findings = []
    for held in settings.receipts:
        problem = _receipt_problem(held, settings.log_key, checkpoint, tree, leaves)
        if problem is not None:
            where = f"receipt {held.path.name}: "
            findings.append(Finding(problem[0], where + problem[1], held.receipt.index))
    return findings


def _receipt_problem(
    held: HeldReceipt,
    log_key: Ed25519Verifier,
    checkpoint: Checkpoint,
    tree: TreeCheck,
    leaves: Sequence[bytes],
) -> tuple[str, str] | None:
    receipt = held.receipt
    try:
        verify_receipt(receipt, held.entry, log_key, origin=checkpoint.origin)
        signed = open_checkpoint(receipt.checkpoint, log_key)
    except DureError as exc:
        return "receipt.invalid", f"does not verify: {exc.message}"
    if receipt.size > checkpoint.size:
        return (
            "receipt.beyond",
            f"covers {receipt.size} entries, the published checkpoint only {checkpoint.size}: "
            "either the log was rolled back, or (with a witness quorum) its checkpoint is not "
            "witnessed yet; audit again once the witnesses have cosigned a newer checkpoint",
        )
    if receipt.index >= len(leaves) or leaves[receipt.index] != held.entry:
        return "receipt.mismatch", "the entry served at this index is not the receipted one"
    if not tree.matches:
        return None
    try:
        check_consistent(signed, checkpoint, tree.tree.consistency_proof(signed.size))
        proof = tree.tree.inclusion_proof(receipt.index)
        verify_inclusion(
            leaf_hash(held.entry), receipt.index, checkpoint.size, proof, checkpoint.root_hash
        )
    except ProofError as exc:
        return "receipt.fork", f"its checkpoint is not in this history: {exc.message}"
    return None
