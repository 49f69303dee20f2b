"""An independent verifier of ledger exports, written from the specifications only.

It imports nothing from Dure, so a bug shared by the production code and its own
tests cannot hide here.  Sources:

* RFC 9162 §2.1.1: ``MTH({}) = SHA-256()``, ``MTH({d0}) = SHA-256(0x00 ‖ d0)``,
  ``MTH(D[n]) = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))`` with ``k`` the largest
  power of two smaller than ``n``.
* RFC 9162 §2.1.3.1: ``PATH(m, D[n])``, from which an inclusion proof is checked
  here by rebuilding the root recursively (not with the RFC's iterative
  §2.1.3.2 loop the production code uses).
* C2SP signed-note: text, blank line, lines ``— <name> base64(keyid ‖ sig)``;
  ``keyid = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]``; verifier keys
  ``name+hex(keyid)+base64(0x01 ‖ pubkey)``.
* C2SP tlog-checkpoint: origin line, decimal size line, base64 root line.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["ExportInvalidError", "VerifiedLog", "mth", "root_from_path", "verify_export_folder"]


class ExportInvalidError(Exception):
    """The export does not verify."""


@dataclass(frozen=True)
class VerifiedLog:
    origin: str
    size: int
    root: bytes
    entries: list[bytes]


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    if not entries:
        return _h(b"")
    if len(entries) == 1:
        return _h(b"\x00" + entries[0])
    k = _k(len(entries))
    return _h(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def root_from_path(leaf_hash: bytes, m: int, n: int, path: list[bytes]) -> bytes:
    """Rebuild MTH(D[n]) from the leaf hash of d(m) and PATH(m, D[n])."""
    if not 0 <= m < n:
        raise ExportInvalidError(f"index {m} outside size {n}")
    if n == 1:
        if path:
            raise ExportInvalidError("proof too long")
        return leaf_hash
    if not path:
        raise ExportInvalidError("proof too short")
    k = _k(n)
    *rest, last = path
    if m < k:
        return _h(b"\x01" + root_from_path(leaf_hash, m, k, rest) + last)
    return _h(b"\x01" + last + root_from_path(leaf_hash, m - k, n - k, rest))


def _parse_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    name, key_id_hex, material_b64 = vkey.strip().split("+", 2)  # base64 may hold "+"
    material = base64.b64decode(material_b64, validate=True)
    if material[0] != 0x01 or len(material) != 33:
        raise ExportInvalidError("not an Ed25519 note verifier key")
    key_id = _h(name.encode() + b"\n" + material)[:4]
    if key_id.hex() != key_id_hex:
        raise ExportInvalidError("verifier key id does not match its key")
    return name, key_id, material[1:]


def verify_note(note: str, vkey: str) -> str:
    """Return the note text if the key in ``vkey`` signed it."""
    name, key_id, public = _parse_vkey(vkey)
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise ExportInvalidError("not a signed note")
    text, signatures = note[: cut + 1], note[cut + 2 : -1].split("\n")
    for line in signatures:
        dash_name, _, value = line.partition(" ")[2].partition(" ")
        if not line.startswith("\u2014 ") or dash_name != name:
            continue
        raw = base64.b64decode(value, validate=True)
        if raw[:4] != key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise ExportInvalidError("the log's signature does not verify") from exc
        return text
    raise ExportInvalidError("no signature by the trusted key")


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    lines = text.split("\n")
    origin, size, root = lines[0], lines[1], lines[2]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise ExportInvalidError("bad size line")
    digest = base64.b64decode(root, validate=True)
    if len(digest) != 32:
        raise ExportInvalidError("bad root line")
    return origin, int(size), digest


def verify_export_folder(folder: Path, vkey: str) -> VerifiedLog:
    origin, size, root = parse_checkpoint(verify_note((folder / "checkpoint").read_text(), vkey))
    entries: list[bytes] = []
    for number, line in enumerate((folder / "entries.jsonl").read_text().splitlines()):
        record = json.loads(line)
        if record["index"] != number:
            raise ExportInvalidError(f"line {number + 1} has index {record['index']}")
        entries.append(base64.b64decode(record["entry"], validate=True))
    if len(entries) != size:
        raise ExportInvalidError(f"{len(entries)} entries, checkpoint says {size}")
    if mth(entries) != root:
        raise ExportInvalidError("entries do not hash to the signed root")
    return VerifiedLog(origin, size, root, entries)
