"""Property tests: proofs built by either API verify, and verifiers never raise anything else."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from dure.policies import merkle
from dure.policies.errors import ProofError
from dure.policies.tree import MerkleTree

BIG = 5000
_TREE = MerkleTree()
for _i in range(BIG):
    _TREE.append(_i.to_bytes(4, "big"))

PROPERTY = settings(max_examples=200, deadline=None)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, BIG))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(st.integers(1, BIG))
    return draw(st.integers(1, second)), second


@PROPERTY
@given(size_and_index())
def test_inclusion_proof_verifies_at_any_past_size(case: tuple[int, int]) -> None:
    size, index = case
    proof = _TREE.inclusion_proof(index, size)
    assert len(proof) <= (size - 1).bit_length()
    merkle.verify_inclusion(_TREE.leaf_hash_at(index), index, size, proof, _TREE.root_at(size))


@PROPERTY
@given(two_sizes())
def test_consistency_proof_verifies_between_any_two_sizes(case: tuple[int, int]) -> None:
    first, second = case
    proof = _TREE.consistency_proof(first, second)
    merkle.verify_consistency(first, second, proof, _TREE.root_at(first), _TREE.root_at(second))


@PROPERTY
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40), st.data())
def test_both_apis_agree_on_arbitrary_entries(entries: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree()
    for entry in entries:
        tree.append(entry)
    root = merkle.root_hash(entries)
    assert tree.root() == root
    index = data.draw(st.integers(0, len(entries) - 1))
    proof = merkle.inclusion_proof(entries, index)
    assert proof == tree.inclusion_proof(index)
    merkle.verify_inclusion(merkle.leaf_hash(entries[index]), index, len(entries), proof, root)
    first = data.draw(st.integers(1, len(entries)))
    assert merkle.consistency_proof(entries, first) == tree.consistency_proof(first)


@PROPERTY
@given(size_and_index(), st.integers(0, BIG - 1))
def test_a_proof_does_not_prove_another_leaf(case: tuple[int, int], other: int) -> None:
    size, index = case
    if other == index:
        return
    proof = _TREE.inclusion_proof(index, size)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(_TREE.leaf_hash_at(other), index, size, proof, _TREE.root_at(size))


_hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))


@PROPERTY
@given(
    _hashes,
    st.integers(-3, 2**70),
    st.integers(-3, 2**70),
    st.lists(_hashes, max_size=70),
    _hashes,
)
def test_verify_inclusion_only_raises_proof_error(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return


@PROPERTY
@given(
    st.integers(-3, 2**70),
    st.integers(-3, 2**70),
    st.lists(_hashes, max_size=70),
    _hashes,
    _hashes,
)
def test_verify_consistency_only_raises_proof_error(
    first: int, second: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    try:
        merkle.verify_consistency(first, second, proof, root1, root2)
    except ProofError:
        return
