"""Cross-check merkle.py and MerkleTree against the naive RFC 6962 reference, exhaustively.

Every size 1..130, every leaf index, every pair of sizes: roots, inclusion proofs
and consistency proofs must be identical, hash for hash, and must verify.
"""

from __future__ import annotations

import itertools

import pytest
from tests.unit.merkle.merkle_reference import ReferenceTree

from dure.policies import merkle
from dure.policies.tree import MerkleTree, integrate, perfect_subtrees, tree_root

MAX_SIZE = 130
ENTRIES = [b""] + [f"entry {i}".encode() for i in range(1, MAX_SIZE)]


@pytest.fixture(scope="module")
def reference() -> ReferenceTree:
    return ReferenceTree(ENTRIES)


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    built = MerkleTree()
    for entry in ENTRIES:
        built.append(entry)
    return built


def test_roots_match_for_every_size(reference: ReferenceTree, tree: MerkleTree) -> None:
    growing = MerkleTree()
    assert growing.root() == reference.root(0) == merkle.root_hash([]) == merkle.EMPTY_ROOT
    for n in range(1, MAX_SIZE + 1):
        assert growing.append(ENTRIES[n - 1]) == n - 1
        assert growing.size == n
        expected = reference.root(n)
        assert growing.root() == expected, n
        assert tree.root_at(n) == expected, n
        assert merkle.root_hash(ENTRIES[:n]) == expected, n


def test_inclusion_proofs_match_for_every_size_and_index(
    reference: ReferenceTree, tree: MerkleTree
) -> None:
    for n in range(1, MAX_SIZE + 1):
        root = reference.root(n)
        for m in range(n):
            expected = reference.inclusion(m, n)
            assert tree.inclusion_proof(m, n) == expected, (m, n)
            assert merkle.inclusion_proof(ENTRIES[:n], m) == expected, (m, n)
            merkle.verify_inclusion(reference.leaf(m), m, n, expected, root)


def test_consistency_proofs_match_for_every_pair_of_sizes(
    reference: ReferenceTree, tree: MerkleTree
) -> None:
    for n in range(1, MAX_SIZE + 1):
        root = reference.root(n)
        for m in range(1, n + 1):
            expected = reference.consistency(m, n)
            assert tree.consistency_proof(m, n) == expected, (m, n)
            assert merkle.consistency_proof(ENTRIES[:n], m) == expected, (m, n)
            merkle.verify_consistency(m, n, expected, reference.root(m), root)


def test_default_size_is_the_current_tree(reference: ReferenceTree) -> None:
    for n in (1, 2, 7, 8, 9, 64, 100):
        fresh = MerkleTree()
        for entry in ENTRIES[:n]:
            fresh.append(entry)
        assert fresh.inclusion_proof(n - 1) == reference.inclusion(n - 1, n)
        assert fresh.consistency_proof(1) == reference.consistency(1, n)
        assert fresh.root_at(n) == fresh.root()
        assert fresh.leaf_hash_at(n - 1) == reference.leaf(n - 1)


def test_from_leaf_hashes_rebuilds_the_same_tree(tree: MerkleTree) -> None:
    rebuilt = MerkleTree.from_leaf_hashes(tree.leaf_hash_at(i) for i in range(tree.size))
    assert rebuilt.root() == tree.root()
    assert rebuilt.stored_bytes() == tree.stored_bytes()
    assert rebuilt.consistency_proof(37) == tree.consistency_proof(37)


def test_integrate_writes_exactly_the_nodes_the_tree_stores(
    reference: ReferenceTree, tree: MerkleTree
) -> None:
    store: dict[tuple[int, int], bytes] = {}
    size = 0
    for batch in (1, 2, 3, 5, 8, 13, 21, 34, 43):  # sums to MAX_SIZE
        leaves = [reference.leaf(i) for i in range(size, size + batch)]
        for level, index, value in integrate(lambda lv, ix: store[lv, ix], size, leaves):
            assert (level, index) not in store, "a node is written once"
            store[level, index] = value
        size += batch
        assert tree_root(lambda lv, ix: store[lv, ix], size) == reference.root(size)
    assert size == MAX_SIZE
    assert store == {key: tree.node(*key) for key in store}
    assert len(store) * 32 == tree.stored_bytes()


def test_perfect_subtrees_cover_the_range_left_to_right() -> None:
    assert perfect_subtrees(0, 0) == []
    assert perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_subtrees(8, 13) == [(2, 2), (0, 12)]
    for n in range(1, 200):
        covered = [(i << lv, (i + 1) << lv) for lv, i in perfect_subtrees(0, n)]
        assert covered[0][0] == 0 and covered[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
