"""Check that the served entries are exactly those the signed checkpoint commits to.

The auditor downloads every entry the checkpoint covers, recomputes the RFC 9162
tree and compares its root with the signed one.  When they differ, the served
consistency proofs locate the first entry that was changed, removed or moved,
in O(log n) requests: a proof from size ``m`` to the checkpoint verifies against
the *locally* computed root of the first ``m`` entries exactly when those ``m``
entries are the ones the log signed (the proof comes from the log's stored
hashes, which an edit of one row does not change).  The largest such ``m`` is
the index of the first bad entry.  An export serves no proofs: there, only the
receipts a factory holds can point at the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dure.client.audit.errors import LedgerSourceError
from dure.client.audit.source import LedgerSource
from dure.policies.checkpoint import Checkpoint
from dure.policies.errors import ProofError
from dure.policies.merkle import verify_consistency
from dure.policies.tree import MerkleTree

__all__ = ["Finding", "TreeCheck", "check_tree", "fetch_entries", "locate_divergence"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed integrity check; ``index`` is the exact entry when it is known."""

    check: str
    message: str
    index: int | None = None

    def describe(self) -> str:
        """Return ``entry <index>: <check>: <message>`` (or without the entry)."""
        where = f"entry {self.index}: " if self.index is not None else ""
        return f"{where}{self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class TreeCheck:
    """The recomputed tree and whether it is the signed one."""

    tree: MerkleTree
    matches: bool
    findings: tuple[Finding, ...]


def fetch_entries(
    source: LedgerSource, size: int, chunk: int = 1000
) -> tuple[list[bytes], list[Finding]]:
    """Fetch entries ``0 .. size - 1`` in chunks; report gaps and misnumbering.

    Entries are kept in the order served, so a removed entry shifts the rest and
    the tree check catches it.
    """
    leaves: list[bytes] = []
    findings: list[Finding] = []
    for start in range(0, size, chunk):
        end = min(start + chunk, size)
        served = source.entries(start, end)
        for offset, (index, leaf) in enumerate(served):
            if index != start + offset:
                findings.append(
                    Finding("entries.index", f"served as index {index}", start + offset)
                )
            leaves.append(leaf)
        if len(served) != end - start:
            findings.append(
                Finding(
                    "entries.count",
                    f"asked for entries [{start}, {end}), got {len(served)}: "
                    "entries are missing or extra",
                    start + min(len(served), end - start),
                )
            )
    return leaves, findings


def check_tree(leaves: Sequence[bytes], checkpoint: Checkpoint, source: LedgerSource) -> TreeCheck:
    """Recompute the tree of ``leaves`` and compare it with the signed ``checkpoint``."""
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    if tree.size == checkpoint.size and tree.root() == checkpoint.root_hash:
        return TreeCheck(tree, True, ())
    where = locate_divergence(tree, checkpoint, source)
    located = (
        "the first entry that differs from the signed log"
        if where is not None
        else f"not located: {source.description} serves no proofs"
    )
    message = (
        f"the {tree.size} entries served do not hash to the signed root of size "
        f"{checkpoint.size} ({located}): entries were edited, removed or re-ordered"
    )
    return TreeCheck(tree, False, (Finding("entries.root", message, where),))


def locate_divergence(tree: MerkleTree, checkpoint: Checkpoint, source: LedgerSource) -> int | None:
    """Return the index of the first served entry that is not the signed log's, if provable."""
    limit = min(tree.size, checkpoint.size)

    def good(m: int) -> bool | None:
        if m == checkpoint.size:
            return tree.root_at(m) == checkpoint.root_hash
        try:
            proof = source.consistency_proof(m, checkpoint.size)
        except LedgerSourceError:
            return None
        if proof is None:
            return None
        try:
            verify_consistency(m, checkpoint.size, proof, tree.root_at(m), checkpoint.root_hash)
        except ProofError:
            return False
        return True

    low, high = 0, limit  # good(low) holds; find the largest good m <= high
    while low < high:
        middle = (low + high + 1) // 2
        verdict = good(middle)
        if verdict is None:
            return None
        low, high = (middle, high) if verdict else (low, middle - 1)
    return low
