"""Strict Ed25519 encodings: refuse weak public keys and non-canonical signatures.

``cryptography`` (OpenSSL) verifies Ed25519 signatures but accepts any 32 bytes
as a public key, including the encodings of the eight points of small order.
Under such a key anyone can forge signatures without a private key: with
``A`` of order 4, ``R`` of small order and ``S = 0`` the check ``[S]B = R + [k]A``
holds for about one message in four.  This module decides, with integer
arithmetic written from RFC 8032, whether an encoding is one Dure accepts; the
signature itself is still verified by ``cryptography``.

A public key is refused when (SPEC: RFC 8032 §5.1.3, decoding):

- its ``y`` coordinate is not below ``p = 2^255 - 19`` (a non-canonical encoding);
- ``x^2 = (y^2 - 1) / (d y^2 + 1)`` has no square root (not a curve point);
- ``x = 0`` with the sign bit set (the spec's decoding failure);
- the point's order divides the cofactor 8 (one of the eight small-order points).

A signature ``R ‖ S`` is refused when ``S`` is not below the group order ``L``
(SPEC: RFC 8032 §5.1.7, "check the range 0 <= s < L") or when ``R`` is refused
by the same rules as a public key.

The functions return a sentence describing the problem, or ``None``; callers
raise the error of their own domain (a key in a document, in a note verifier
string, in a signature).
"""

from __future__ import annotations

from typing import Final

__all__ = ["GROUP_ORDER", "public_key_problem", "signature_problem"]

_P: Final = 2**255 - 19  # SPEC: RFC 8032 §5.1, the field prime
_D: Final = (-121665 * pow(121666, -1, _P)) % _P  # SPEC: RFC 8032 §5.1, curve constant d
_SQRT_M1: Final = pow(2, (_P - 1) // 4, _P)  # a square root of -1 mod p
GROUP_ORDER: Final = 2**252 + 27742317777372353535851937790883648493
"""``L``, the order of the Ed25519 base point (SPEC: RFC 8032 §5.1)."""

_Point = tuple[int, int, int, int]  # extended homogeneous coordinates (X, Y, Z, T)


def public_key_problem(encoded: bytes) -> str | None:
    """Say why ``encoded`` is not an acceptable Ed25519 public key, or return ``None``."""
    if len(encoded) != 32:
        return f"an Ed25519 public key is 32 bytes, got {len(encoded)}"
    return _point_problem(encoded, "public key")


def signature_problem(signature: bytes) -> str | None:
    """Say why ``signature`` is not a canonical Ed25519 signature, or return ``None``."""
    if len(signature) != 64:
        return f"an Ed25519 signature is 64 bytes, got {len(signature)}"
    if int.from_bytes(signature[32:], "little") >= GROUP_ORDER:
        return "signature is not canonical: its S half is not below the group order L"
    problem = _point_problem(signature[:32], "signature's R")
    return None if problem is None else f"signature is not canonical: {problem}"


def _point_problem(encoded: bytes, what: str) -> str | None:
    point = _decode(encoded)
    if isinstance(point, str):
        return f"{what} {point}"
    if _is_small_order(point):
        return f"{what} is a point of small order (forgeable without a private key)"
    return None


def _decode(encoded: bytes) -> _Point | str:
    """Decode a point (SPEC: RFC 8032 §5.1.3), or return why the encoding fails."""
    number = int.from_bytes(encoded, "little")
    sign, y = number >> 255, number & ((1 << 255) - 1)
    if y >= _P:
        return "is not canonical: its y coordinate is not below 2^255 - 19"
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P != 0:
        if (v * x * x + u) % _P != 0:
            return "does not decode to a point on the curve"
        x = (x * _SQRT_M1) % _P
    if x == 0 and sign == 1:
        return "is not canonical: x is 0 but its sign bit is set"
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, (x * y) % _P)


def _is_small_order(point: _Point) -> bool:
    """Whether ``[8]point`` is the neutral element, i.e. the order divides the cofactor."""
    for _ in range(3):
        point = _double(point)
    x, y, z, _t = point
    return x % _P == 0 and (y - z) % _P == 0


def _double(point: _Point) -> _Point:
    """Point doubling in extended coordinates (SPEC: RFC 8032 §5.1.4)."""
    x1, y1, z1, _t1 = point
    a, b = x1 * x1 % _P, y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = (a + b) % _P
    e = (h - (x1 + y1) * (x1 + y1)) % _P
    g = (a - b) % _P
    f = (c + g) % _P
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)
