"""Receipts: a valid one verifies; every tampering is caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders.ledger import sample_entries

from dure.policies.checkpoint import Checkpoint, sign_checkpoint
from dure.policies.encoding import b64decode, b64encode
from dure.policies.errors import DocumentError, NoteError, ProofError
from dure.policies.note import Ed25519Signer
from dure.policies.receipt import Receipt, verify_receipt
from dure.policies.tree import MerkleTree

LOG = Ed25519Signer.from_seed("dure.test/ledger", b"\x01" * 32)
ENTRIES = [e.to_bytes() for e in sample_entries()]


def tree_of(entries: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for entry in entries:
        tree.append(entry)
    return tree


TREE = tree_of(ENTRIES)
NOTE = sign_checkpoint(Checkpoint(LOG.name, TREE.size, TREE.root()), LOG)


def receipt_for(index: int) -> Receipt:
    return Receipt.create(index, TREE.size, list(TREE.inclusion_proof(index)), NOTE)


def test_every_entry_has_a_verifying_receipt() -> None:
    for index, entry in enumerate(ENTRIES):
        verify_receipt(receipt_for(index), entry, LOG.verifier())
        verify_receipt(receipt_for(index), entry, LOG.verifier().to_vkey(), origin=LOG.name)


def test_json_round_trip() -> None:
    receipt = receipt_for(4)
    assert Receipt.from_json(receipt.to_json()) == receipt
    assert Receipt.from_json(receipt.to_json().encode()) == receipt


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "[]",
        "not json",
        '{"index": -1, "size": 1, "hashes": [], "checkpoint": "x"}',
        '{"index": "0", "size": 1, "hashes": [], "checkpoint": "x"}',
        '{"index": 0, "size": 1, "hashes": ["AAAA"], "checkpoint": "x"}',
        '{"index": 0, "size": 1, "hashes": [], "checkpoint": "x", "extra": 1}',
    ],
)
def test_malformed_receipts_are_refused(text: str) -> None:
    with pytest.raises(DocumentError):
        Receipt.from_json(text)


def with_changes(receipt: Receipt, **changes: object) -> Receipt:
    return receipt.model_copy(update=changes)


def flip(text: str) -> str:
    raw = bytearray(b64decode(text))
    raw[7] ^= 0x10
    return b64encode(bytes(raw))


R = receipt_for(4)
OTHER = Ed25519Signer.from_seed(LOG.name, b"\x02" * 32)


@pytest.mark.parametrize(
    "receipt,entry,error",
    [
        (R, ENTRIES[5], ProofError),  # another entry's bytes
        (R, ENTRIES[4] + b" ", ProofError),  # the entry altered
        (with_changes(R, index=5), ENTRIES[4], ProofError),
        (with_changes(R, index=R.size), ENTRIES[4], ProofError),
        (with_changes(R, size=R.size - 1), ENTRIES[4], ProofError),
        (with_changes(R, hashes=R.hashes[:-1]), ENTRIES[4], ProofError),
        (with_changes(R, hashes=(*R.hashes, R.hashes[0])), ENTRIES[4], ProofError),
        (with_changes(R, hashes=(flip(R.hashes[0]), *R.hashes[1:])), ENTRIES[4], ProofError),
        (with_changes(R, hashes=tuple(reversed(R.hashes))), ENTRIES[4], ProofError),
        (
            with_changes(
                R, checkpoint=sign_checkpoint(Checkpoint(LOG.name, 11, TREE.root()), OTHER)
            ),
            ENTRIES[4],
            NoteError,
        ),
        (with_changes(R, checkpoint=NOTE.replace("\n11\n", "\n12\n")), ENTRIES[4], NoteError),
        (with_changes(R, checkpoint="not a note"), ENTRIES[4], NoteError),
    ],
    ids=[
        "other-entry",
        "altered-entry",
        "wrong-index",
        "index-past-size",
        "wrong-size",
        "truncated-proof",
        "extended-proof",
        "flipped-hash",
        "reordered-proof",
        "foreign-signer",
        "edited-checkpoint",
        "garbage-checkpoint",
    ],
)
def test_tampered_receipts_fail(receipt: Receipt, entry: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_receipt(receipt, entry, LOG.verifier())


def test_a_checkpoint_of_another_origin_fails_when_pinned() -> None:
    with pytest.raises(ProofError, match=r"not 'dure\.test/other'"):
        verify_receipt(R, ENTRIES[4], LOG.verifier(), origin="dure.test/other")


def test_a_checkpoint_signed_by_an_honest_but_forked_log_fails() -> None:
    forked = tree_of([*ENTRIES[:4], b"rewritten", *ENTRIES[5:]])
    note = sign_checkpoint(Checkpoint(LOG.name, forked.size, forked.root()), LOG)
    with pytest.raises(ProofError):
        verify_receipt(with_changes(R, checkpoint=note), ENTRIES[4], LOG.verifier())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_receipts_from_random_logs_verify(data: st.DataObject) -> None:
    entries = data.draw(st.lists(st.binary(max_size=16), min_size=1, max_size=40))
    index = data.draw(st.integers(min_value=0, max_value=len(entries) - 1))
    tree = tree_of(entries)
    note = sign_checkpoint(Checkpoint(LOG.name, tree.size, tree.root()), LOG)
    receipt = Receipt.create(index, tree.size, list(tree.inclusion_proof(index)), note)
    verify_receipt(Receipt.from_json(receipt.to_json()), entries[index], LOG.verifier())
