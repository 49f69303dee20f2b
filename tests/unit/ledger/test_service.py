"""The Ledger service on the in-memory store: appends, checkpoints, receipts, refusals."""

from __future__ import annotations

import pytest
from tests.builders.ledger import sample_entries

from dure.policies import merkle
from dure.policies.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from dure.policies.keys import SigningKey
from dure.policies.merkle import ProofRequestError
from dure.policies.note import Ed25519Signer, Ed25519Verifier
from dure.policies.receipt import verify_receipt
from dure.policies.tree import MerkleTree
from dure.server.ledger.errors import LedgerConflictError
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger
from dure.server.ledger.store import StoredCheckpoint

KEY = SigningKey.from_seed(b"\x03" * 32)
NAME = "dure.test/ledger"
ENTRIES = sample_entries()


def make_ledger(store: MemoryLedgerStore | None = None) -> Ledger:
    return Ledger(store or MemoryLedgerStore(), KEY, NAME)


def test_appends_return_indices_and_store_exact_bytes() -> None:
    ledger = make_ledger()
    assert ledger.append(ENTRIES[0]) == 0
    assert ledger.append_all(ENTRIES[1:4]) == 1
    assert ledger.append(ENTRIES[4]) == 4
    assert ledger.store.entries(0, 5) == [e.to_bytes() for e in ENTRIES[:5]]


def test_public_key_is_the_note_verifier_of_the_signing_key() -> None:
    verifier = Ed25519Verifier.from_vkey(make_ledger().public_key())
    assert verifier.name == NAME
    assert verifier.public_key == KEY.public.raw


def test_checkpoint_is_signed_and_describes_the_log() -> None:
    ledger = make_ledger()
    ledger.append_all(ENTRIES)
    note = ledger.checkpoint()
    checkpoint = open_checkpoint(note, Ed25519Verifier.from_vkey(ledger.public_key()))
    assert checkpoint.origin == NAME
    assert checkpoint.size == len(ENTRIES)
    assert checkpoint.root_hash == merkle.root_hash([e.to_bytes() for e in ENTRIES])
    assert ledger.checkpoint() == note  # nothing new: the same note


def test_successive_checkpoints_are_consistent() -> None:
    ledger = make_ledger()
    verifier = ledger.verifier()
    ledger.append_all(ENTRIES[:3])
    first = open_checkpoint(ledger.checkpoint(), verifier)
    ledger.append_all(ENTRIES[3:])
    second = open_checkpoint(ledger.checkpoint(), verifier)
    proof = ledger.store.consistency_proof(first.size, second.size)
    merkle.verify_consistency(first.size, second.size, proof, first.root_hash, second.root_hash)


def test_an_empty_log_gets_a_checkpoint_of_size_zero() -> None:
    checkpoint = open_checkpoint(make_ledger().checkpoint(), make_ledger().verifier())
    assert checkpoint.size == 0 and checkpoint.root_hash == merkle.EMPTY_ROOT


class ForkedStore(MemoryLedgerStore):
    """A store whose stored checkpoint describes another history (as after a rewrite)."""

    def __init__(self, stored: StoredCheckpoint) -> None:
        super().__init__()
        self.stored = stored
        self.puts = 0

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self.stored

    def put_checkpoint(self, note: str, verifier_key: str) -> StoredCheckpoint:
        self.puts += 1
        return super().put_checkpoint(note, verifier_key)


def forked_store(size: int) -> ForkedStore:
    signer = Ed25519Signer.from_seed(NAME, KEY.seed())
    other = MerkleTree()
    for entry in [b"another", b"history", b"entirely"][:size]:
        other.append(entry)
    body = Checkpoint(NAME, other.size, other.root())
    stored = StoredCheckpoint(sign_checkpoint(body, signer), signer.verifier().to_vkey(), body)
    return ForkedStore(stored)


def test_refuses_to_sign_a_tree_inconsistent_with_the_stored_checkpoint() -> None:
    store = forked_store(2)
    ledger = make_ledger(store)
    ledger.append_all(ENTRIES)
    with pytest.raises(LedgerConflictError, match="refusing to sign"):
        ledger.checkpoint()
    assert store.puts == 0  # nothing was signed or stored


def test_refuses_to_vouch_for_a_stored_checkpoint_that_no_longer_matches() -> None:
    store = forked_store(3)
    ledger = make_ledger(store)
    ledger.append_all(ENTRIES[:3])
    with pytest.raises(LedgerConflictError, match="does not match this log"):
        ledger.checkpoint()
    ledger_short = make_ledger(forked_store(3))
    with pytest.raises(LedgerConflictError, match="entries were lost"):
        ledger_short.checkpoint()


def test_receipts_verify_for_every_entry() -> None:
    ledger = make_ledger()
    ledger.append_all(ENTRIES)
    for index, entry in enumerate(ENTRIES):
        receipt = ledger.receipt(index)
        assert receipt.size == len(ENTRIES)
        verify_receipt(receipt, entry.to_bytes(), ledger.public_key(), origin=NAME)


def test_a_receipt_signs_a_new_checkpoint_only_when_needed() -> None:
    ledger = make_ledger()
    ledger.append_all(ENTRIES[:4])
    early = ledger.receipt(1)
    ledger.append(ENTRIES[4])
    assert ledger.receipt(2).checkpoint == early.checkpoint  # still covered by size 4
    late = ledger.receipt(4)
    assert late.size == 5 and late.checkpoint != early.checkpoint
    verify_receipt(late, ENTRIES[4].to_bytes(), ledger.verifier())


def test_no_receipt_for_an_entry_that_does_not_exist() -> None:
    ledger = make_ledger()
    ledger.append(ENTRIES[0])
    with pytest.raises(ProofRequestError):
        ledger.receipt(1)
