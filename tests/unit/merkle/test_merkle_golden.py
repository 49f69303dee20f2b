"""Known answers and mutated proofs: every mutation of a valid proof must raise ProofError."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import pytest
from tests.unit.merkle.merkle_reference import ReferenceTree

from dure.policies.errors import ProofError
from dure.policies.merkle import (
    EMPTY_ROOT,
    ProofRequestError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from dure.policies.tree import MerkleTree

# Leaves and roots published with transparency-dev/merkle (testonly/constants.go),
# which CT implementations share.
KNOWN_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
KNOWN_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# The happy-path proof shared by inclusion (leaf 0 in 8) and consistency (1 -> 8).
KNOWN_PROOF_0_IN_8 = [
    "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
    "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
    "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
]

MUTATION_SIZES = range(1, 41)
ENTRIES = [f"leaf {i}".encode() for i in range(2 * max(MUTATION_SIZES) + 1)]


def test_known_hashes() -> None:
    assert EMPTY_ROOT.hex() == KNOWN_ROOTS[0]
    assert leaf_hash(b"").hex() == KNOWN_ROOTS[1]
    for n, expected in enumerate(KNOWN_ROOTS):
        assert root_hash(KNOWN_LEAVES[:n]).hex() == expected
        tree = MerkleTree()
        for entry in KNOWN_LEAVES[:n]:
            tree.append(entry)
        assert tree.root().hex() == expected
    assert node_hash(leaf_hash(b""), leaf_hash(b"\x00")).hex() == KNOWN_ROOTS[2]


def test_known_proofs() -> None:
    proof = [base64.b64decode(h) for h in KNOWN_PROOF_0_IN_8]
    root8 = bytes.fromhex(KNOWN_ROOTS[8])
    assert inclusion_proof(KNOWN_LEAVES, 0) == proof
    assert consistency_proof(KNOWN_LEAVES, 1) == proof
    verify_inclusion(leaf_hash(b""), 0, 8, proof, root8)
    verify_consistency(1, 8, proof, bytes.fromhex(KNOWN_ROOTS[1]), root8)


def test_rfc_example_tree_of_seven_leaves() -> None:
    # SPEC: RFC 9162 §2.1.5 (RFC 6962 §2.1.3): d0..d6, with its named nodes as leaf ranges.
    ref = ReferenceTree([f"d{i}".encode() for i in range(7)])
    tree = MerkleTree()
    for entry in ref.entries:
        tree.append(entry)
    a, b, c, d, j = ref.mth(0, 1), ref.mth(1, 2), ref.mth(2, 3), ref.mth(3, 4), ref.mth(6, 7)
    g, h, i, k = ref.mth(0, 2), ref.mth(2, 4), ref.mth(4, 6), ref.mth(0, 4)
    l = ref.mth(4, 7)  # noqa: E741 (the RFC's name)
    assert a == tree.leaf_hash_at(0)
    assert tree.inclusion_proof(0) == [b, h, l]  # audit path of d0
    assert tree.inclusion_proof(3) == [c, g, l]
    assert tree.inclusion_proof(4) == [ref.mth(5, 6), j, k]
    assert tree.inclusion_proof(6) == [i, k]
    assert tree.consistency_proof(3) == [c, d, g, l]
    assert tree.consistency_proof(4) == [l]
    assert tree.consistency_proof(6) == [i, j, k]


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _proof_mutations(
    proof: Sequence[bytes], extra: Sequence[bytes]
) -> list[tuple[str, list[bytes]]]:
    """Bit flips in every hash, truncations and extensions of ``proof``."""
    cases: list[tuple[str, list[bytes]]] = []
    for position, value in enumerate(proof):
        for bit in (0, 133, 255):
            mutated = list(proof)
            mutated[position] = _flip(value, bit)
            cases.append((f"bit {bit} of hash {position}", mutated))
    if proof:
        cases += [("truncated", list(proof[:-1])), ("first removed", list(proof[1:]))]
    for value in extra:
        cases += [("extended", [*proof, value]), ("prefixed", [value, *proof])]
        if proof:
            cases.append(("inserted", [proof[0], value, *proof[1:]]))
    return cases


def _rejects(check: Callable[..., None], *args: object, what: str) -> None:
    with pytest.raises(ProofError):
        check(*args)
        pytest.fail(f"mutation accepted: {what}")


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    built = MerkleTree()
    for entry in ENTRIES:
        built.append(entry)
    return built


def test_mutated_inclusion_proofs_are_rejected(tree: MerkleTree) -> None:
    garbage = b"\x5a" * 32
    for n in MUTATION_SIZES:
        root = tree.root_at(n)
        for m in range(n):
            leaf, proof = tree.leaf_hash_at(m), tree.inclusion_proof(m, n)
            verify_inclusion(leaf, m, n, proof, root)
            for name, bad in _proof_mutations(proof, [garbage, root, leaf]):
                _rejects(verify_inclusion, leaf, m, n, bad, root, what=f"{name} ({m}, {n})")
            # Sizes off by one can share a proof shape; the signed checkpoint binds the
            # size, so (like transparency-dev's golden set) size mutations double or halve.
            for m2, n2 in {(m + 1, n), (m - 1, n), (m ^ 1, n), (m ^ 2, n), (m, 2 * n), (m, n // 2)}:
                if (m2, n2) != (m, n):
                    _rejects(verify_inclusion, leaf, m2, n2, proof, root, what=f"({m2}, {n2})")
            other_leaf = tree.leaf_hash_at(m + 1)
            for name, lf, rt in [
                ("wrong leaf", other_leaf, root),
                ("wrong root", leaf, tree.root_at(n + 1)),
                ("empty root", leaf, EMPTY_ROOT),
                ("flipped root", leaf, _flip(root, 7)),
            ]:
                _rejects(verify_inclusion, lf, m, n, proof, rt, what=f"{name} ({m}, {n})")


def test_mutated_consistency_proofs_are_rejected(tree: MerkleTree) -> None:
    garbage = b"\xa5" * 32
    for n in MUTATION_SIZES:
        root2 = tree.root_at(n)
        for m in range(1, n):
            root1, proof = tree.root_at(m), tree.consistency_proof(m, n)
            verify_consistency(m, n, proof, root1, root2)
            for name, bad in _proof_mutations(proof, [garbage, root1, root2]):
                _rejects(verify_consistency, m, n, bad, root1, root2, what=f"{name} {m}->{n}")
            sizes = {(m + 1, n), (m - 1, n), (m ^ 2, n), (m, 2 * n), (m, n // 2), (n, m), (0, n)}
            for m2, n2 in sizes - {(m, n)}:
                _rejects(verify_consistency, m2, n2, proof, root1, root2, what=f"{m2}->{n2}")
            for name, r1, r2 in [
                ("swapped roots", root2, root1),
                ("wrong first root", tree.root_at(m - 1), root2),
                ("wrong second root", root1, tree.root_at(n + 1)),
                ("flipped first root", _flip(root1, 200), root2),
            ]:
                _rejects(verify_consistency, m, n, proof, r1, r2, what=f"{name} {m}->{n}")
            _rejects(verify_consistency, m, n, [], root1, root2, what=f"empty proof {m}->{n}")


def test_equal_sizes_need_an_empty_proof_and_equal_roots(tree: MerkleTree) -> None:
    root = tree.root_at(5)
    verify_consistency(5, 5, [], root, root)
    assert tree.consistency_proof(5, 5) == []
    _rejects(verify_consistency, 5, 5, [root], root, root, what="non-empty proof")
    _rejects(verify_consistency, 5, 5, [], root, tree.root_at(4), what="different roots")


def test_malformed_inputs_are_proof_errors(tree: MerkleTree) -> None:
    leaf, root, proof = tree.leaf_hash_at(2), tree.root_at(9), tree.inclusion_proof(2, 9)
    short = [*proof[:-1], proof[-1][:31]]
    for what, args in [
        ("short proof hash", (leaf, 2, 9, short, root)),
        ("long root", (leaf, 2, 9, proof, root + b"\x00")),
        ("short leaf", (leaf[:16], 2, 9, proof, root)),
        ("index = size", (leaf, 9, 9, proof, root)),
        ("negative index", (leaf, -1, 9, proof, root)),
        ("size 0", (leaf, 0, 0, [], EMPTY_ROOT)),
    ]:
        _rejects(verify_inclusion, *args, what=what)
    with pytest.raises(ProofError, match="32-byte"):
        verify_inclusion("not bytes", 2, 9, proof, root)  # type: ignore[arg-type]
    root1 = tree.root_at(1)
    _rejects(verify_consistency, 0, 9, [], EMPTY_ROOT, root, what="from size 0")
    _rejects(verify_consistency, 1, 9, proof[:1], root1[:8], root, what="short first root")


def test_impossible_proof_requests_are_request_errors(tree: MerkleTree) -> None:
    size = tree.size
    calls: list[Callable[[], object]] = [
        lambda: inclusion_proof(ENTRIES[:3], 3),
        lambda: inclusion_proof([], 0),
        lambda: consistency_proof(ENTRIES[:3], 0),
        lambda: consistency_proof(ENTRIES[:3], 4),
        lambda: tree.inclusion_proof(size),
        lambda: tree.inclusion_proof(0, size + 1),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.consistency_proof(0),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.consistency_proof(1, size + 1),
        lambda: tree.root_at(size + 1),
        lambda: tree.leaf_hash_at(size),
        lambda: tree.node(1, size // 2),
        lambda: tree.append_leaf_hash(b"short"),
    ]
    for call in calls:
        with pytest.raises(ProofRequestError):
            call()
    assert ProofRequestError.code == "kernel.proof_request"
