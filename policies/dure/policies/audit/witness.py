"""A witness's decision to cosign a checkpoint, and the quorum check of cosignatures.

SPEC: C2SP ``tlog-cosignature`` and ``tlog-witness``.  A witness (here, a
factory) keeps the last checkpoint it cosigned.  Shown a new one, it cosigns only
if the log's key signed it and it extends the old one: same origin, no smaller,
and a valid RFC 9162 consistency proof (equal sizes need equal roots).  A
checkpoint that fails is refused with the reason; an inconsistent one is the
evidence of a fork: the log showed another history to someone else.

:func:`check_quorum` is the other side: which of the configured witnesses
validly cosigned a note, and whether at least ``quorum`` did.  An invalid
cosignature by a configured witness counts against the quorum (fail closed).
Time is passed in, never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dure.policies.audit.errors import AuditError
from dure.policies.checkpoint import (
    Checkpoint,
    CosignatureVerifier,
    Cosigner,
    add_cosignature,
    check_consistent,
    open_checkpoint,
)
from dure.policies.errors import NoteError, ProofError
from dure.policies.note import Ed25519Verifier, SignedNote, verified_signatures

__all__ = ["QuorumResult", "WitnessDecision", "check_quorum", "cosign_note", "decide"]


@dataclass(frozen=True, slots=True)
class WitnessDecision:
    """Whether to cosign, why, and the checkpoint shown (``None`` if it did not verify)."""

    cosign: bool
    reason: str
    checkpoint: Checkpoint | None
    fork: bool = False
    """True when the checkpoint contradicts the one cosigned before (evidence of a fork)."""


def decide(
    last: Checkpoint | None,
    note: str | bytes,
    log_keys: Ed25519Verifier | Iterable[Ed25519Verifier],
    proof: Sequence[bytes],
) -> WitnessDecision:
    """Decide whether to cosign ``note`` given ``last``, the checkpoint cosigned before.

    Parameters
    ----------
    last
        The last checkpoint this witness cosigned, or ``None`` for the first one.
    note
        The signed checkpoint note the log asks the witness to cosign.
    log_keys
        The log's pinned verifier keys.
    proof
        The RFC 9162 consistency proof from ``last.size`` to the new size (empty
        when ``last`` is ``None`` or the sizes are equal).
    """
    try:
        new = open_checkpoint(note, log_keys)
    except NoteError as exc:
        return WitnessDecision(False, f"the checkpoint is not signed by the log: {exc}", None)
    if last is None:
        return WitnessDecision(
            True, f"first checkpoint of {new.origin} seen (size {new.size})", new
        )
    if last.origin != new.origin:
        why = f"the checkpoint is for log {new.origin!r}, not {last.origin!r}"
        return WitnessDecision(False, why, new)
    try:
        check_consistent(last, new, proof)
    except ProofError as exc:
        why = (
            f"the checkpoint of size {new.size} is inconsistent with the one cosigned at size "
            f"{last.size} ({exc.message}): the log is showing a different history"
        )
        return WitnessDecision(False, why, new, fork=True)
    return WitnessDecision(True, f"size {new.size} extends the cosigned size {last.size}", new)


def cosign_note(note: str | bytes, decision: WitnessDecision, cosigner: Cosigner, now: int) -> str:
    """Return ``note`` with ``cosigner``'s cosignature at POSIX time ``now`` added.

    Raises
    ------
    AuditError
        If ``decision`` refused the checkpoint: a witness never cosigns then.
    """
    if not decision.cosign or decision.checkpoint is None:
        raise AuditError(f"refusing to cosign: {decision.reason}")
    return add_cosignature(note, cosigner.cosign(decision.checkpoint, now))


@dataclass(frozen=True, slots=True)
class QuorumResult:
    """Which configured witnesses validly cosigned, which did not, and the verdict."""

    quorum: int
    cosigned: tuple[str, ...]
    missing: tuple[str, ...]
    invalid: tuple[str, ...]

    @property
    def met(self) -> bool:
        """At least ``quorum`` valid cosignatures and no invalid one from a known witness."""
        return len(self.cosigned) >= self.quorum and not self.invalid

    def describe(self) -> str:
        """Return a one-line summary."""
        parts = [f"{len(self.cosigned)} of {self.quorum} required witness cosignatures"]
        if self.missing:
            parts.append(f"missing: {', '.join(self.missing)}")
        if self.invalid:
            parts.append(f"INVALID: {', '.join(self.invalid)}")
        return "; ".join(parts)


def check_quorum(
    note: str | bytes, witnesses: Sequence[CosignatureVerifier], quorum: int
) -> QuorumResult:
    """Return which of ``witnesses`` validly cosigned ``note`` and whether ``quorum`` did.

    Raises
    ------
    AuditError
        If ``quorum`` is not between 1 and the number of distinct witnesses.
    NoteError
        If the note or its checkpoint body is malformed.
    """
    distinct = {(w.name, w.key_id): w for w in witnesses}
    if not 1 <= quorum <= len(distinct):
        raise AuditError(
            f"a quorum of {quorum} cannot be met by {len(distinct)} witness keys",
            hint="Give --quorum between 1 and the number of --witness keys.",
        )
    parsed = SignedNote.from_text(note)
    Checkpoint.from_text(parsed.text)
    cosigned: list[str] = []
    missing: list[str] = []
    invalid: list[str] = []
    for witness in distinct.values():
        try:
            found = verified_signatures(parsed, [witness])
        except NoteError:
            invalid.append(witness.name)
            continue
        (cosigned if found else missing).append(witness.name)
    return QuorumResult(quorum, tuple(cosigned), tuple(missing), tuple(invalid))
