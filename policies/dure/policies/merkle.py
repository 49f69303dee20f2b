"""Merkle tree hashing, proofs and proof verification, exactly as RFC 9162 §2.1 defines them.

The audit ledger is an RFC 9162 (Certificate Transparency 2.0) Merkle tree, so any
CT tooling can check it.  This module is the stable, dependency-free core:

* :func:`leaf_hash`, :func:`node_hash` and :func:`root_hash` are the hashes of
  RFC 9162 §2.1.1: ``SHA-256(0x00 ‖ entry)``, ``SHA-256(0x01 ‖ left ‖ right)``
  and ``SHA-256("")`` for the empty tree.  Leaf indices start at 0.
* :func:`inclusion_proof` and :func:`consistency_proof` build the proofs of
  RFC 9162 §2.1.3.1 and §2.1.4.1 from the full list of entries (O(n); the
  incremental :class:`dure.policies.tree.MerkleTree` does it in O(log n)).
* :func:`verify_inclusion` and :func:`verify_consistency` follow the verification
  algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raise
  :class:`~dure.policies.errors.ProofError` on any failure; they never return
  ``False``.

A request for a proof that cannot exist (an index at or past the tree size, a
size of zero) raises :class:`ProofRequestError`: the caller asked a wrong
question, which is not evidence against the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dure.policies.encoding import DIGEST_SIZE, Digest
from dure.policies.errors import DureError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "ProofRequestError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"  # SPEC: RFC 9162 §2.1.1, leaf hash domain separation
_NODE_PREFIX = b"\x01"  # SPEC: RFC 9162 §2.1.1, interior node domain separation

EMPTY_ROOT = Digest(_sha256(b"").digest())
"""Root hash of the empty tree, ``SHA-256("")`` (RFC 9162 §2.1.1)."""


class ProofRequestError(DureError):
    """A proof was asked for an index or tree size that the tree cannot have."""

    code = "kernel.proof_request"
    default_hint = (
        "Ask for 0 <= index < size <= the current tree size, "
        "and 0 < first <= second <= the current tree size for a consistency proof."
    )


def leaf_hash(entry: bytes) -> Digest:
    """Return the leaf hash ``SHA-256(0x00 ‖ entry)`` of one log entry (RFC 9162 §2.1.1)."""
    return Digest(_sha256(_LEAF_PREFIX + entry).digest())


def node_hash(left: bytes, right: bytes) -> Digest:
    """Return the interior node hash ``SHA-256(0x01 ‖ left ‖ right)`` (RFC 9162 §2.1.1)."""
    return Digest(_sha256(_NODE_PREFIX + left + right).digest())


def root_hash(entries: Sequence[bytes]) -> Digest:
    """Return the Merkle tree hash ``MTH(D[n])`` of ``entries`` (RFC 9162 §2.1.1).

    The empty list gives :data:`EMPTY_ROOT`.  Runs in O(n).
    """
    if not entries:
        return EMPTY_ROOT
    return _mth([leaf_hash(e) for e in entries], 0, len(entries))


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[Digest]:
    """Return the inclusion proof ``PATH(index, D[n])`` for one entry (RFC 9162 §2.1.3.1).

    Parameters
    ----------
    entries
        Every entry of the tree, in log order; ``n = len(entries)``.
    index
        The 0-based index of the entry to prove, ``0 <= index < n``.

    Returns
    -------
    list of Digest
        The sibling hashes from the leaf up to the root.

    Raises
    ------
    ProofRequestError
        If ``index`` is outside the tree.
    """
    if not 0 <= index < len(entries):
        raise ProofRequestError(
            f"inclusion proof: index {index} is outside a tree of size {len(entries)}"
        )
    leaves = [leaf_hash(e) for e in entries]
    proof: list[Digest] = []
    _path(leaves, index, 0, len(leaves), proof)
    return proof


def consistency_proof(entries: Sequence[bytes], first_size: int) -> list[Digest]:
    """Return the consistency proof ``PROOF(m, D[n])`` (RFC 9162 §2.1.4.1).

    Parameters
    ----------
    entries
        Every entry of the newer tree, in log order; ``n = len(entries)``.
    first_size
        The size ``m`` of the older tree, ``0 < m <= n``; ``m == n`` gives ``[]``.

    Raises
    ------
    ProofRequestError
        If ``first_size`` is zero, negative or larger than the tree.
    """
    if not 0 < first_size <= len(entries):
        raise ProofRequestError(
            f"consistency proof: first size {first_size} must be in 1..{len(entries)}"
        )
    leaves = [leaf_hash(e) for e in entries]
    return _subproof(leaves, first_size, 0, len(leaves), True)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is at ``index`` in the tree of ``size`` with ``root``.

    Follows RFC 9162 §2.1.3.2 literally.

    Raises
    ------
    ProofError
        If any input is malformed (hash not 32 bytes, ``index >= size``), the proof
        has the wrong length, or the computed root differs from ``root``.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root hash", root)
    _check_proof_hashes(proof)
    if index < 0 or index >= size:  # SPEC: RFC 9162 §2.1.3.2 step 1
        raise ProofError(f"inclusion proof: index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1  # step 2
    r = bytes(leaf_hash)  # step 3
    for p in proof:  # step 4
        if sn == 0:  # 4a
            raise ProofError(f"inclusion proof for index {index} in size {size} is too long")
        if fn & 1 or fn == sn:  # 4b
            r = _sha256(_NODE_PREFIX + p + r).digest()
            while fn and not fn & 1:  # until LSB(fn) is set or fn is 0
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError(f"inclusion proof for index {index} in size {size} is too short")
    if r != root:
        raise ProofError(
            f"inclusion proof for index {index} in size {size} gives root {r.hex()}, "
            f"expected {bytes(root).hex()}"
        )


def verify_consistency(
    first_size: int,
    second_size: int,
    proof: Sequence[bytes],
    first_root: bytes,
    second_root: bytes,
) -> None:
    """Check that the tree of ``second_size`` extends the tree of ``first_size``.

    Follows RFC 9162 §2.1.4.2 literally.  Equal sizes need an empty proof and equal
    roots.  A proof from size 0 is refused: the empty tree is a prefix of every
    tree, so there is nothing to prove and a caller asking has a bug.

    Raises
    ------
    ProofError
        If a size is out of range, a hash is not 32 bytes, the proof has the wrong
        length, or either computed root differs from the one given.
    """
    _check_hash("first root", first_root)
    _check_hash("second root", second_root)
    _check_proof_hashes(proof)
    if first_size <= 0:
        raise ProofError(f"consistency proof: first size {first_size} must be at least 1")
    if second_size < first_size:
        raise ProofError(
            f"consistency proof: second size {second_size} is smaller than first size {first_size}"
        )
    if first_size == second_size:
        if proof:
            raise ProofError(f"consistency proof between equal sizes {first_size} must be empty")
        if first_root != second_root:
            raise ProofError(f"trees of the same size {first_size} have different roots")
        return
    fr, sr = _consistency_roots(first_size, second_size, proof, first_root)
    if fr != first_root:
        raise ProofError(
            f"consistency proof {first_size}->{second_size} gives first root {fr.hex()}, "
            f"expected {bytes(first_root).hex()}"
        )
    if sr != second_root:
        raise ProofError(
            f"consistency proof {first_size}->{second_size} gives second root {sr.hex()}, "
            f"expected {bytes(second_root).hex()}"
        )


def _consistency_roots(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes
) -> tuple[bytes, bytes]:
    """Run RFC 9162 §2.1.4.2 steps 1-7 and return the computed (first, second) roots."""
    what = f"consistency proof {first}->{second}"
    if not proof:  # SPEC: RFC 9162 §2.1.4.2 step 1
        raise ProofError(f"{what} is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError(f"{what} is too long")
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            while fn and not fn & 1:  # until LSB(fn) is set or fn is 0
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 7
        raise ProofError(f"{what} is too short")
    return fr, sr


def _check_hash(what: str, value: bytes) -> None:
    if isinstance(value, bytes | bytearray) and len(value) == DIGEST_SIZE:
        return
    found = f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
    raise ProofError(f"{what} must be a 32-byte SHA-256 digest, got {found}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        _check_hash(f"proof hash #{position}", value)


def _split(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> Digest:
    """``MTH(D[lo:hi])`` for a non-empty range, from precomputed leaf hashes."""
    if hi - lo == 1:
        return Digest(leaves[lo])
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def _path(leaves: Sequence[bytes], m: int, lo: int, hi: int, out: list[Digest]) -> None:
    """Append ``PATH(m, D[lo:hi])`` to ``out`` (``m`` relative to ``lo``)."""
    if hi - lo == 1:
        return
    k = _split(hi - lo)
    if m < k:
        _path(leaves, m, lo, lo + k, out)
        out.append(_mth(leaves, lo + k, hi))
    else:
        _path(leaves, m - k, lo + k, hi, out)
        out.append(_mth(leaves, lo, lo + k))


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, complete: bool) -> list[Digest]:
    """``SUBPROOF(m, D[lo:hi], complete)`` (RFC 9162 §2.1.4.1)."""
    if m == hi - lo:
        return [] if complete else [_mth(leaves, lo, hi)]
    k = _split(hi - lo)
    if m <= k:
        return [*_subproof(leaves, m, lo, lo + k, complete), _mth(leaves, lo + k, hi)]
    return [*_subproof(leaves, m - k, lo + k, hi, False), _mth(leaves, lo, lo + k)]
