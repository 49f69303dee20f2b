"""The factory as a witness: cosign the log's checkpoints only if they extend the last one.

SPEC: C2SP ``tlog-cosignature``.  :class:`FactoryWitness` keeps the last
checkpoint it cosigned in its home folder (``<home>/witness/checkpoints/``).
Shown a new checkpoint and a consistency proof from that size, it runs the pure
decision of :func:`dure.policies.audit.witness.decide`: it cosigns (Ed25519
``cosignature/v1`` with its :class:`~dure.policies.checkpoint.Cosigner`) only
a checkpoint the log's pinned key signed and that extends the one it cosigned,
keeps the new one, and otherwise refuses with the reason
(:class:`~dure.client.audit.errors.WitnessRefusedError`): a coordinator showing
this factory a different history than it showed before is caught here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dure.client.audit.errors import WitnessRefusedError
from dure.client.audit.source import LedgerSource
from dure.client.audit.state import CheckpointStore
from dure.policies.audit.witness import WitnessDecision, cosign_note, decide
from dure.policies.checkpoint import Checkpoint, Cosigner, open_checkpoint
from dure.policies.errors import NoteError
from dure.policies.note import Ed25519Verifier

__all__ = ["FactoryWitness"]


class FactoryWitness:
    """A factory's witness for one log.

    Parameters
    ----------
    home
        The factory home; the witness keeps its state under ``home/witness``.
    cosigner
        The factory's witness key.
    log_key
        The log's pinned note verifier key.
    """

    def __init__(self, home: Path, cosigner: Cosigner, log_key: Ed25519Verifier) -> None:
        self.store = CheckpointStore(Path(home) / "witness")
        self.cosigner = cosigner
        self.log_key = log_key

    def last(self) -> Checkpoint | None:
        """The last checkpoint this witness cosigned, if any."""
        kept = self.store.load(self.log_key)
        return kept.checkpoint if kept else None

    def proof_needed(self, note: str) -> tuple[int, int] | None:
        """Return the ``(first, second)`` sizes of the consistency proof to fetch, if any.

        ``None`` when no proof is needed (first checkpoint, same size, shrunk) or
        the note does not verify (the decision then refuses it).
        """
        last = self.last()
        try:
            new = open_checkpoint(note, self.log_key)
        except NoteError:
            return None
        if last is None or last.size == 0 or new.size <= last.size:
            return None
        return last.size, new.size

    def review(self, note: str, proof: Sequence[bytes]) -> WitnessDecision:
        """Return the decision on ``note`` without cosigning or keeping anything."""
        return decide(self.last(), note, self.log_key, proof)

    def cosign(self, note: str, proof: Sequence[bytes], now: int) -> str:
        """Cosign ``note`` at POSIX time ``now`` if it extends the last one; keep it.

        Returns the note with this witness's cosignature added.

        Raises
        ------
        WitnessRefusedError
            If the note is not signed by the log or is inconsistent with the
            checkpoint this witness cosigned before (nothing is kept then).
        """
        decision = self.review(note, proof)
        if not decision.cosign:
            prefix = "fork detected: " if decision.fork else ""
            raise WitnessRefusedError(
                f"witness {self.cosigner.name} refuses: {prefix}{decision.reason}"
            )
        cosigned = cosign_note(note, decision, self.cosigner, now)
        self.store.save(self.log_key, cosigned)
        return cosigned

    def cosign_from(self, source: LedgerSource, now: int) -> str:
        """Fetch the latest checkpoint and, if needed, its consistency proof; cosign it."""
        note = source.checkpoint()
        sizes = self.proof_needed(note)
        proof = source.consistency_proof(*sizes) if sizes else []
        if proof is None:
            raise WitnessRefusedError(
                f"witness {self.cosigner.name} refuses: {source.description} serves no "
                f"consistency proof from size {sizes[0] if sizes else 0}",
                hint="Cosign from the coordinator's URL, or pass the proof it serves.",
            )
        return self.cosign(note, proof, now)
