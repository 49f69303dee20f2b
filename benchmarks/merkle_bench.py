"""Merkle ledger math: appends per second, memory per entry, proof and verification times.

Targets (one core): 1,000,000 appends at >= 200,000 entries/s; memory O(n) in stored
hashes only; inclusion and consistency proofs at 1,000,000 entries under 100 µs
each, verification under 100 µs.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from collections.abc import Callable

from dure.policies.merkle import verify_consistency, verify_inclusion
from dure.policies.tree import MerkleTree

SIZE = 1_000_000
SAMPLES = 5_000


def _entries(n: int) -> list[bytes]:
    # About the size of a ledger entry's canonical JSON digest line.
    template = b'{"kind":"contribution_accepted","seq":%d,"digest":"%064x"}'
    return [template % (i, i) for i in range(n)]


def _build(entries: list[bytes]) -> tuple[MerkleTree, float]:
    tree = MerkleTree()
    append = tree.append
    started = time.perf_counter()
    for entry in entries:
        append(entry)
    return tree, time.perf_counter() - started


def _traced_bytes_per_entry(entries: list[bytes]) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tree = MerkleTree()
    for entry in entries:
        tree.append(entry)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert tree.size == len(entries)
    return (after - before) / len(entries)


def _mean_us(call: Callable[..., object], arguments: list[tuple[object, ...]]) -> float:
    started = time.perf_counter()
    for args in arguments:
        call(*args)
    return (time.perf_counter() - started) / len(arguments) * 1e6


def _proof_figures(tree: MerkleTree, rng: random.Random) -> dict[str, float]:
    n, root = tree.size, tree.root()
    indices = [rng.randrange(n) for _ in range(SAMPLES)]
    firsts = [rng.randrange(1, n) for _ in range(SAMPLES)]
    starts = [rng.randrange(1, n - 1) for _ in range(SAMPLES)]
    past = [(a, rng.randrange(a + 1, n)) for a in starts]  # index < size, first < second
    inclusions = [tree.inclusion_proof(i) for i in indices]
    consistencies = [tree.consistency_proof(m) for m in firsts]
    verify_in = [
        (tree.leaf_hash_at(i), i, n, p, root) for i, p in zip(indices, inclusions, strict=True)
    ]
    verify_con = [
        (m, n, p, tree.root_at(m), root) for m, p in zip(firsts, consistencies, strict=True)
    ]
    return {
        "inclusion_proof_us": _mean_us(tree.inclusion_proof, [(i,) for i in indices]),
        "inclusion_proof_past_size_us": _mean_us(tree.inclusion_proof, list(past)),
        "consistency_proof_us": _mean_us(tree.consistency_proof, [(m,) for m in firsts]),
        "consistency_proof_past_sizes_us": _mean_us(tree.consistency_proof, list(past)),
        "verify_inclusion_us": _mean_us(verify_inclusion, list(verify_in)),
        "verify_consistency_us": _mean_us(verify_consistency, list(verify_con)),
        "root_at_past_size_us": _mean_us(tree.root_at, [(m,) for m in firsts]),
        "mean_inclusion_proof_hashes": sum(map(len, inclusions)) / SAMPLES,
    }


def main() -> dict[str, float]:
    entries = _entries(SIZE)
    tree, seconds = _build(entries)
    tree.append(b"one more")
    started = time.perf_counter()
    tree.root()
    root_us = (time.perf_counter() - started) * 1e6
    figures = {
        "entries": float(tree.size),
        "append_entries_per_s": SIZE / seconds,
        "append_total_s": seconds,
        "stored_hash_bytes_per_entry": tree.stored_bytes() / tree.size,
        "traced_bytes_per_entry": _traced_bytes_per_entry(entries),
        "root_after_append_us": root_us,
        **_proof_figures(tree, random.Random(7)),
    }
    for name, value in figures.items():
        print(f"{name:>34}  {value:,.2f}")
    return figures


if __name__ == "__main__":
    main()
