"""A naive Merkle tree written straight from RFC 6962 §2.1, for cross-checking.

Deliberately independent of ``dure.policies``: ``MTH``, ``PATH`` and ``SUBPROOF``
transcribed from the RFC's recursive definitions, with subtree hashes cached so
that checking every size up to a few hundred stays fast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _largest_power_of_two_below(n: int) -> int:
    """RFC 6962 §2.1: k is the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    """``D[0:n]`` for every ``n <= len(entries)``: the list of entries, hashed on demand."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = list(entries)
        self._cache: dict[tuple[int, int], bytes] = {}

    def leaf(self, index: int) -> bytes:
        return hashlib.sha256(b"\x00" + self.entries[index]).digest()

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi])."""
        key = (lo, hi)
        if key not in self._cache:
            n = hi - lo
            if n == 0:
                value = hashlib.sha256(b"").digest()
            elif n == 1:
                value = self.leaf(lo)
            else:
                k = _largest_power_of_two_below(n)
                value = hashlib.sha256(
                    b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)
                ).digest()
            self._cache[key] = value
        return self._cache[key]

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def inclusion(self, m: int, n: int) -> list[bytes]:
        return self.path(m, 0, n)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b)."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def consistency(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
        return self.subproof(m, 0, n, True)
