"""An append-only RFC 9162 Merkle tree with O(log n) roots and proofs for every past size.

The tree is stored as the hashes of its *perfect* subtrees, level by level: node
``(level, index)`` is the hash of leaves ``[index·2^level, (index+1)·2^level)``,
stored once all of those leaves exist.  Level 0 holds the leaf hashes, so a tree
of ``n`` leaves stores fewer than ``2n`` hashes and nothing else.  Every node of
the RFC 9162 tree of any size ``s <= n`` is either such a perfect subtree or an
incomplete right edge whose hash folds at most ``log2 s`` stored hashes, so roots
and proofs for any past size cost O(log n) hash look-ups.

The algorithms are pure functions over a ``get_node(level, index) -> bytes``
callable (:data:`GetNode`), so a database can store the same ``(level, index,
hash)`` rows and reuse them (:func:`integrate` returns exactly the rows an append
adds).  :class:`MerkleTree` is the in-memory implementation: one ``bytearray``
per level with 32-byte slots, no per-node Python objects.

Proofs and roots match :mod:`dure.policies.merkle` hash for hash; verify them with
:func:`~dure.policies.merkle.verify_inclusion` and
:func:`~dure.policies.merkle.verify_consistency`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from dure.policies.encoding import DIGEST_SIZE, Digest
from dure.policies.merkle import EMPTY_ROOT, ProofRequestError

__all__ = [
    "GetNode",
    "MerkleTree",
    "consistency_path",
    "inclusion_path",
    "integrate",
    "perfect_subtrees",
    "tree_root",
]

GetNode = Callable[[int, int], bytes]
"""Returns the stored hash of perfect subtree ``(level, index)``."""

_sha256 = hashlib.sha256
_LEAF = b"\x00"  # SPEC: RFC 9162 §2.1.1
_NODE = b"\x01"  # SPEC: RFC 9162 §2.1.1


def perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """Split leaves ``[begin, end)`` into perfect subtrees ``(level, index)``, left to right.

    ``begin`` must be a multiple of a power of two larger than ``end - begin`` (true
    for ``begin == 0`` and for every incomplete right edge of an RFC 9162 tree); the
    subtrees are then the set bits of ``end - begin``, largest first.
    """
    nodes: list[tuple[int, int]] = []
    position, width = begin, end - begin
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def _range_root(get_node: GetNode, begin: int, end: int) -> bytes:
    """Hash of the RFC 9162 subtree over ``[begin, end)`` (aligned as in perfect_subtrees)."""
    hashes = [get_node(level, index) for level, index in perfect_subtrees(begin, end)]
    root = hashes.pop()
    while hashes:
        root = _sha256(_NODE + hashes.pop() + root).digest()
    return root


def tree_root(get_node: GetNode, size: int) -> Digest:
    """Return ``MTH(D[size])`` from stored perfect-subtree hashes (RFC 9162 §2.1.1)."""
    if size == 0:
        return EMPTY_ROOT
    return Digest(_range_root(get_node, 0, size))


def _sibling_path(get_node: GetNode, level: int, index: int, size: int) -> list[Digest]:
    """Sibling hashes from node ``(level, index)`` up to the root of the tree of ``size``.

    Walks up the grid of perfect subtrees; a sibling that starts at or past
    ``size`` does not exist in the RFC 9162 tree (its parent collapses onto the
    node itself), and one that ends past ``size`` is the incomplete right edge.
    """
    path: list[Digest] = []
    while (1 << level) < size:
        sibling = index ^ 1
        begin = sibling << level
        if begin < size:
            end = begin + (1 << level)
            if end <= size:
                path.append(Digest(get_node(level, sibling)))
            else:
                path.append(Digest(_range_root(get_node, begin, size)))
        level += 1
        index >>= 1
    return path


def inclusion_path(get_node: GetNode, index: int, size: int) -> list[Digest]:
    """Return the inclusion proof ``PATH(index, D[size])`` (RFC 9162 §2.1.3.1).

    ``size`` may be any size whose perfect subtrees ``get_node`` can return.

    Raises
    ------
    ProofRequestError
        If ``index`` is not in ``0..size-1``.
    """
    if not 0 <= index < size:
        raise ProofRequestError(f"inclusion proof: index {index} is outside a tree of size {size}")
    return _sibling_path(get_node, 0, index, size)


def consistency_path(get_node: GetNode, first: int, second: int) -> list[Digest]:
    """Return the consistency proof ``PROOF(first, D[second])`` (RFC 9162 §2.1.4.1).

    The proof is the last perfect subtree of the first tree (left out when the
    first tree is itself perfect, as the verifier knows its root) followed by that
    subtree's sibling path in the second tree.

    Raises
    ------
    ProofRequestError
        Unless ``0 < first <= second``.
    """
    if not 0 < first <= second:
        raise ProofRequestError(
            f"consistency proof: sizes {first} and {second} need 0 < first <= second"
        )
    if first == second:
        return []
    level = (first & -first).bit_length() - 1  # trailing zeros of first
    index = (first - 1) >> level
    path = _sibling_path(get_node, level, index, second)
    if index:  # first is not a power of two
        path.insert(0, Digest(get_node(level, index)))
    return path


def integrate(
    get_node: GetNode, size: int, leaf_hashes: Iterable[bytes]
) -> list[tuple[int, int, Digest]]:
    """Return the ``(level, index, hash)`` nodes that appending ``leaf_hashes`` creates.

    Reads only the O(log n) perfect subtrees covering the current tree (its compact
    range) through ``get_node``; the caller stores the returned rows.  Leaves come
    first at level 0, each followed by the parents it completes.
    """
    frontier = [get_node(level, index) for level, index in perfect_subtrees(0, size)]
    nodes: list[tuple[int, int, Digest]] = []
    for raw in leaf_hashes:
        h = _checked_leaf_hash(raw)
        nodes.append((0, size, Digest(h)))
        level, index = 0, size
        while index & 1:
            h = _sha256(_NODE + frontier.pop() + h).digest()
            level, index = level + 1, index >> 1
            nodes.append((level, index, Digest(h)))
        frontier.append(h)
        size += 1
    return nodes


def _checked_leaf_hash(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != DIGEST_SIZE:
        raise ProofRequestError(f"a leaf hash must be 32 bytes, got {value!r:.80}")
    return bytes(value)


class MerkleTree:
    """In-memory append-only Merkle tree (RFC 9162 §2.1) storing ~2n hashes.

    ``append`` costs O(1) hashes amortised; ``root`` is cached and recomputed in
    O(log n) from the compact range; proofs and past roots cost O(log n).
    """

    __slots__ = ("_frontier", "_levels", "_root", "_size")

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._frontier: list[bytes] = []  # perfect subtrees covering [0, size), largest first
        self._size = 0
        self._root: Digest | None = EMPTY_ROOT

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Iterable[bytes]) -> MerkleTree:
        """Build a tree from leaf hashes already computed (e.g. read back from storage)."""
        tree = cls()
        for h in leaf_hashes:
            tree.append_leaf_hash(h)
        return tree

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def append(self, entry: bytes) -> int:
        """Append one entry (hashed as ``SHA-256(0x00 ‖ entry)``) and return its index."""
        return self._push(_sha256(_LEAF + entry).digest())

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append a precomputed 32-byte leaf hash and return its index.

        Raises
        ------
        ProofRequestError
            If ``leaf_hash`` is not 32 bytes.
        """
        return self._push(_checked_leaf_hash(leaf_hash))

    def _push(self, h: bytes) -> int:
        index = self._size
        levels, frontier = self._levels, self._frontier
        levels[0] += h
        n, level = index, 0
        while n & 1:
            h = _sha256(_NODE + frontier.pop() + h).digest()
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += h
            n >>= 1
        frontier.append(h)
        self._size = index + 1
        self._root = None
        return index

    def node(self, level: int, index: int) -> bytes:
        """Return the stored hash of perfect subtree ``(level, index)`` (a :data:`GetNode`).

        Raises
        ------
        ProofRequestError
            If that subtree is not complete yet.
        """
        if level < 0 or index < 0 or (index + 1) << level > self._size:
            raise ProofRequestError(
                f"subtree ({level}, {index}) is not complete in a tree of size {self._size}"
            )
        offset = index * DIGEST_SIZE
        return bytes(self._levels[level][offset : offset + DIGEST_SIZE])

    def leaf_hash_at(self, index: int) -> Digest:
        """Return the leaf hash at ``index``."""
        return Digest(self.node(0, index))

    def root(self) -> Digest:
        """Return the root hash of the current tree."""
        if self._root is None:
            hashes = self._frontier
            root = hashes[-1]
            for h in reversed(hashes[:-1]):
                root = _sha256(_NODE + h + root).digest()
            self._root = Digest(root)
        return self._root

    def root_at(self, size: int) -> Digest:
        """Return the root hash the tree had at ``size`` leaves (``0 <= size <= self.size``)."""
        self._check_size(size)
        if size == self._size:
            return self.root()
        return tree_root(self._get, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]:
        """Return the inclusion proof of leaf ``index`` in the tree of ``size`` (default: now)."""
        size = self._size if size is None else size
        self._check_size(size)
        return inclusion_path(self._get, index, size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[Digest]:
        """Return the consistency proof from size ``first`` to ``second`` (default: now)."""
        second = self._size if second is None else second
        self._check_size(second)
        return consistency_path(self._get, first, second)

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ProofRequestError(f"size {size} is outside 0..{self._size}, the current size")

    def _get(self, level: int, index: int) -> bytes:
        offset = index * DIGEST_SIZE
        return bytes(self._levels[level][offset : offset + DIGEST_SIZE])

    def stored_bytes(self) -> int:
        """Return the bytes of hash storage in use (``32 x`` the number of stored nodes)."""
        return sum(len(level) for level in self._levels)
