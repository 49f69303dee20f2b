"""LedgerStore contract: appends, reads, roots and proofs, against the RFC 9162 reference."""

from __future__ import annotations

import pytest
from tests.contract.ledger.backends import Backend

from dure.policies import merkle
from dure.policies.merkle import EMPTY_ROOT, ProofRequestError
from dure.policies.tree import MerkleTree
from dure.server.ledger.errors import LedgerRangeError
from dure.server.ledger.store import LedgerStore

ENTRIES = [f"entry-{i}".encode() for i in range(23)]


def fill(store: LedgerStore, sizes: list[int]) -> list[bytes]:
    written: list[bytes] = []
    for k in sizes:
        batch = ENTRIES[len(written) : len(written) + k]
        assert store.append(batch) == len(written)
        written += batch
    return written


def test_empty_store(store: LedgerStore) -> None:
    assert store.size() == 0
    assert store.root(0) == EMPTY_ROOT
    assert store.entries(0, 0) == []
    assert store.leaf_hashes(0, 0) == []
    assert store.latest_checkpoint() is None


def test_append_returns_first_index_and_reads_back_exact_bytes(store: LedgerStore) -> None:
    assert store.append([b"a"]) == 0
    assert store.append([b"b", b"c", b"\x00\xff"]) == 1
    assert store.append([]) == 4  # an empty batch appends nothing
    assert store.append([b""]) == 4  # the empty entry is a valid leaf
    assert store.size() == 5
    assert store.entries(0, 5) == [b"a", b"b", b"c", b"\x00\xff", b""]
    assert store.entries(1, 3) == [b"b", b"c"]
    assert store.entries(5, 5) == []
    assert store.leaf_hashes(0, 5) == [merkle.leaf_hash(e) for e in store.entries(0, 5)]


@pytest.mark.parametrize("start,end", [(-1, 0), (0, 6), (3, 2), (6, 6)])
def test_entries_outside_the_log_are_refused(store: LedgerStore, start: int, end: int) -> None:
    store.append([b"x"] * 5)
    with pytest.raises(LedgerRangeError):
        store.entries(start, end)
    with pytest.raises(LedgerRangeError):
        store.leaf_hashes(start, end)


def test_roots_at_every_size_match_the_reference(store: LedgerStore) -> None:
    written = fill(store, [1, 2, 1, 5, 3, 11])
    for size in range(len(written) + 1):
        assert store.root(size) == merkle.root_hash(written[:size]), size


def test_inclusion_proofs_match_and_verify(store: LedgerStore) -> None:
    written = fill(store, [4, 1, 12, 6])
    for size in range(1, len(written) + 1):
        root = merkle.root_hash(written[:size])
        for index in range(size):
            proof = store.inclusion_proof(index, size)
            assert proof == merkle.inclusion_proof(written[:size], index)
            merkle.verify_inclusion(merkle.leaf_hash(written[index]), index, size, proof, root)


def test_consistency_proofs_match_and_verify(store: LedgerStore) -> None:
    written = fill(store, [7, 9, 7])
    for second in range(1, len(written) + 1):
        second_root = merkle.root_hash(written[:second])
        for first in range(1, second + 1):
            proof = store.consistency_proof(first, second)
            assert proof == merkle.consistency_proof(written[:second], first)
            merkle.verify_consistency(
                first, second, proof, merkle.root_hash(written[:first]), second_root
            )


def test_nodes_are_the_perfect_subtrees(store: LedgerStore) -> None:
    written = fill(store, [23])
    reference = MerkleTree()
    for entry in written:
        reference.append(entry)
    for level in range(5):
        for index in range(len(written) >> level):
            assert store.node(level, index) == reference.node(level, index)
    with pytest.raises(ProofRequestError):
        store.node(3, 2)  # leaves 16..23 are not all there: 23 entries


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.root(6),
        lambda s: s.inclusion_proof(5, 5),
        lambda s: s.inclusion_proof(0, 6),
        lambda s: s.inclusion_proof(-1, 3),
        lambda s: s.consistency_proof(0, 3),
        lambda s: s.consistency_proof(4, 3),
        lambda s: s.consistency_proof(2, 6),
    ],
    ids=[
        "root-past",
        "incl-index",
        "incl-size",
        "incl-neg",
        "cons-zero",
        "cons-order",
        "cons-past",
    ],
)
def test_impossible_proof_requests_are_refused(store: LedgerStore, call: object) -> None:
    store.append([b"x", b"y", b"z", b"w", b"v"])
    with pytest.raises(ProofRequestError):
        call(store)  # type: ignore[operator]


def test_a_large_batch_is_one_append(store: LedgerStore) -> None:
    batch = [f"big-{i}".encode() for i in range(1500)]
    store.append([b"first"])
    assert store.append(batch) == 1
    assert store.size() == 1501
    assert store.root(1501) == merkle.root_hash([b"first", *batch])
    assert store.entries(700, 702) == batch[699:701]


def test_state_survives_reopening(sql_backend: Backend) -> None:
    first = sql_backend.open()
    written = fill(first, [3, 8])
    again = sql_backend.open()
    assert again.size() == len(written)
    assert again.entries(0, len(written)) == written
    assert again.append([b"more"]) == len(written)
    assert first.root(len(written) + 1) == merkle.root_hash([*written, b"more"])
