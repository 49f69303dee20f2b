"""The coordinator's audit ledger: appends entries, signs checkpoints, issues receipts.

:class:`Ledger` joins a :class:`~dure.server.ledger.store.LedgerStore` and the
coordinator's Ed25519 key, used as a C2SP note signer under the log's name.  The
checkpoint origin is the key name, as C2SP tlog-checkpoint recommends.

The coordinator never signs a checkpoint that is inconsistent with the last one it
stored: :meth:`Ledger.checkpoint` checks the RFC 9162 consistency proof from the
stored checkpoint to the new tree *before* signing, and the store checks again,
under its append lock, before keeping it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dure.policies.checkpoint import Checkpoint, check_consistent, sign_checkpoint
from dure.policies.entries import LedgerEntry
from dure.policies.errors import ProofError
from dure.policies.keys import SigningKey
from dure.policies.merkle import ProofRequestError
from dure.policies.note import Ed25519Signer, Ed25519Verifier
from dure.policies.receipt import Receipt
from dure.server.ledger.errors import LedgerConflictError
from dure.server.ledger.store import LedgerStore, StoredCheckpoint

__all__ = ["Ledger"]

_ATTEMPTS = 3


class Ledger:
    """The audit ledger service.

    Parameters
    ----------
    store
        Where entries, tree nodes and checkpoints live.
    key
        The coordinator's ledger signing key.
    name
        The note key name, also the checkpoint origin, e.g. ``dure.example/ledger``
        (no spaces, no ``+``).
    """

    def __init__(self, store: LedgerStore, key: SigningKey, name: str) -> None:
        self._store = store
        self._signer = Ed25519Signer.from_seed(name, key.seed())
        self._verifier = self._signer.verifier()

    @property
    def store(self) -> LedgerStore:
        """The underlying store."""
        return self._store

    @property
    def origin(self) -> str:
        """The checkpoint origin line (the key name)."""
        return self._signer.name

    def verifier(self) -> Ed25519Verifier:
        """Return the note verifier of the ledger's key."""
        return self._verifier

    def public_key(self) -> str:
        """Return the note verifier key string ``name+keyid+base64(0x01 ‖ key)``."""
        return self._verifier.to_vkey()

    def append(self, entry: LedgerEntry) -> int:
        """Append one entry and return its index."""
        return self._store.append([entry.to_bytes()])

    def append_all(self, entries: Iterable[LedgerEntry]) -> int:
        """Append entries in one transaction and return the first one's index."""
        return self._store.append([entry.to_bytes() for entry in entries])

    def checkpoint(self) -> str:
        """Sign and store a checkpoint for the current size; return the signed note.

        If the stored checkpoint already covers the current size it is returned
        as is (with any witness cosignatures it carries).  If another writer
        stores a larger checkpoint meanwhile, that one is returned.

        Raises
        ------
        LedgerConflictError
            If the current tree does not extend the stored checkpoint: the log
            was rewritten and nothing is signed.
        """
        for _ in range(_ATTEMPTS):
            previous = self._store.latest_checkpoint()
            size = self._store.size()
            if previous is not None and previous.checkpoint.size >= size:
                return self._current(previous)
            new = Checkpoint(self.origin, size, self._store.root(size))
            if previous is not None:
                self._check_extends(previous.checkpoint, new)
            note = sign_checkpoint(new, self._signer)
            try:
                return self._store.put_checkpoint(note, self.public_key()).note
            except LedgerConflictError:
                latest = self._store.latest_checkpoint()
                if latest is None or latest.checkpoint.size <= size:
                    raise
        raise LedgerConflictError(f"could not store a checkpoint after {_ATTEMPTS} attempts")

    def _current(self, stored: StoredCheckpoint) -> str:
        """Return ``stored`` after checking it still matches the tree it names."""
        cp = stored.checkpoint
        if cp.size > self._store.size():
            raise LedgerConflictError(
                f"the stored checkpoint has size {cp.size} but the log only "
                f"{self._store.size()} entries: entries were lost"
            )
        if cp.origin != self.origin or self._store.root(cp.size) != cp.root_hash:
            raise LedgerConflictError(
                f"stored checkpoint of {cp.origin!r} at size {cp.size} does not match this log"
            )
        return stored.note

    def _check_extends(self, old: Checkpoint, new: Checkpoint) -> None:
        proof = self._store.consistency_proof(old.size, new.size) if old.size else []
        try:
            check_consistent(old, new, proof)
        except ProofError as exc:
            raise LedgerConflictError(
                f"refusing to sign size {new.size}: it does not extend the checkpoint of size "
                f"{old.size} ({exc.message})"
            ) from exc

    def receipt(self, index: int) -> Receipt:
        """Return the receipt of entry ``index`` against the latest checkpoint.

        A new checkpoint is signed first when the stored one does not cover ``index``.

        Raises
        ------
        ProofRequestError
            If ``index`` is not in the ledger.
        """
        stored = self._store.latest_checkpoint()
        if stored is None or stored.checkpoint.size <= index:
            self.checkpoint()
            stored = self._store.latest_checkpoint()
        if stored is None or not 0 <= index < stored.checkpoint.size:
            raise ProofRequestError(f"no entry {index} in a ledger of {self._store.size()} entries")
        size = stored.checkpoint.size
        return Receipt.create(
            index, size, list(self._store.inclusion_proof(index, size)), stored.note
        )
