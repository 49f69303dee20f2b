"""C2SP checkpoints of the audit ledger, their signatures and witness cosignatures.

SPEC: https://c2sp.org/tlog-checkpoint.  A checkpoint is the body of a signed note
(:mod:`dure.policies.note`)::

    <origin>
    <tree size, decimal, no leading zeros>
    <root hash, base64>
    [<extension line>...]

SPEC: https://c2sp.org/tlog-cosignature (``cosignature/v1``, Ed25519).  A witness
cosigns a checkpoint it has checked to be consistent with what it saw before.  The
cosignature is an ordinary note signature line whose key ID is
``SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]`` and whose value is
``key ID ‖ timestamp (uint64, big-endian) ‖ Ed25519 signature`` over::

    cosignature/v1
    time <timestamp>
    <checkpoint body>

A log never signs a checkpoint inconsistent with an earlier one:
:func:`check_consistent` is the guard a log and every witness run first.  Malformed
or unverifiable notes raise :class:`~dure.policies.errors.NoteError`; an
inconsistency raises :class:`~dure.policies.errors.ProofError`.  Time is passed in,
never read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dure.policies.ed25519 import signature_problem
from dure.policies.encoding import Digest, b64encode, digest_from_b64
from dure.policies.errors import EncodingError, NoteError, ProofError
from dure.policies.merkle import EMPTY_ROOT, verify_consistency
from dure.policies.note import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    Ed25519Signer,
    Ed25519Verifier,
    KeyString,
    NoteSignature,
    SignedNote,
    check_key_name,
    checked_public_key,
    key_id,
    open_note,
    verified_signatures,
)

__all__ = [
    "MAX_TIMESTAMP",
    "Checkpoint",
    "Cosignature",
    "CosignatureVerifier",
    "Cosigner",
    "add_cosignature",
    "check_consistent",
    "cosignature_message",
    "open_checkpoint",
    "sign_checkpoint",
    "verify_cosignatures",
]

MAX_TIMESTAMP = 2**63 - 1  # SPEC: c2sp.org/tlog-cosignature, "MUST NOT exceed 2^63 - 1"
_MAX_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")  # 2^64 - 1 has 20 digits; bounds int()
_BAD_LINE = re.compile(r"[\x00-\x1f]")
_COSIGNATURE_HEADER = b"cosignature/v1\ntime "  # SPEC: c2sp.org/tlog-cosignature


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: Digest
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        for line in self.extensions:
            _check_line("extension line", line)
        if type(self.size) is not int or not 0 <= self.size <= _MAX_SIZE:
            shown = _shown(self.size)
            raise NoteError(f"checkpoint size {shown} is not an unsigned 64-bit integer")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise NoteError(f"checkpoint root hash must be 32 bytes, got {self.root_hash!r:.80}")

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (the note text, ending in a newline).

        Raises
        ------
        NoteError
            If a line is missing, empty or malformed, or the size is not canonical
            decimal, or the root hash is not the base64 of 32 bytes.
        """
        if not isinstance(text, str) or not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(f"checkpoint has {len(lines)} lines, needs origin, size and root hash")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise NoteError(
                f"checkpoint size line {size[:40]!r} is not a decimal of at most 20 digits "
                "without leading zeros"
            )
        try:
            root_hash = digest_from_b64(root)
        except EncodingError as exc:
            raise NoteError(
                f"checkpoint root hash {root[:80]!r} is not base64 of 32 bytes"
            ) from exc
        return cls(origin, int(size), root_hash, tuple(extensions))

    def to_text(self) -> str:
        """Return the checkpoint body; ``from_text(c.to_text()) == c``."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def _shown(value: object) -> str:
    """Show a value in a message without converting a huge integer to decimal."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"<integer of {value.bit_length()} bits>"
    return f"{value!r:.40}"


def _check_line(what: str, line: str) -> None:
    if not isinstance(line, str) or not line or _BAD_LINE.search(line):
        raise NoteError(f"checkpoint {what} {line!r:.80} must be a non-empty line of text")


def sign_checkpoint(checkpoint: Checkpoint, signer: Ed25519Signer) -> str:
    """Return the signed note text of ``checkpoint`` signed by the log's ``signer``.

    The caller must have run :func:`check_consistent` against the last checkpoint
    it signed: a log never signs two inconsistent checkpoints.
    """
    return SignedNote(checkpoint.to_text(), (signer.sign(checkpoint.to_text()),)).to_text()


def open_checkpoint(
    text: str | bytes, verifiers: Ed25519Verifier | Iterable[Ed25519Verifier]
) -> Checkpoint:
    """Verify a signed checkpoint against the log's keys, then parse its body.

    Pass the *log's* verifier keys here, not witness keys; check witnesses with
    :func:`verify_cosignatures`.

    Raises
    ------
    NoteError
        If the note is malformed, not validly signed by one of ``verifiers``, or
        its body is not a checkpoint.
    """
    keys = [verifiers] if isinstance(verifiers, Ed25519Verifier) else list(verifiers)
    return Checkpoint.from_text(open_note(text, keys).text)


def check_consistent(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old``: same origin, no shrinking, a valid proof.

    An ``old`` of size 0 needs the empty-tree root and an empty proof.

    Raises
    ------
    ProofError
        If the two checkpoints cannot belong to one append-only log.
    """
    if old.origin != new.origin:
        raise ProofError(f"checkpoints come from different logs: {old.origin!r}, {new.origin!r}")
    if new.size < old.size:
        raise ProofError(f"log {new.origin!r} shrank from {old.size} to {new.size} entries")
    if old.size == 0:
        if old.root_hash != EMPTY_ROOT or proof:
            raise ProofError("a checkpoint of size 0 needs the empty-tree root and an empty proof")
        return
    verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)


def cosignature_message(body: str, timestamp: int) -> bytes:
    """Return the bytes a ``cosignature/v1`` signs: header, time line, checkpoint body."""
    return _COSIGNATURE_HEADER + str(timestamp).encode("ascii") + b"\n" + body.encode("utf-8")


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's Ed25519 ``cosignature/v1`` key (signature type ``0x04``)."""

    name: str
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "_key", checked_public_key(self.name, self.public_key))

    @property
    def key_id(self) -> bytes:
        """``SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]``."""
        return key_id(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    @classmethod
    def from_vkey(cls, text: str) -> CosignatureVerifier:
        """Parse a witness key ``name+hexkeyid+base64(0x04 ‖ public key)``."""
        parsed = KeyString.from_text(text)
        verifier = cls(parsed.name, parsed.expect(SIGNATURE_TYPE_COSIGNATURE_V1, 32))
        if verifier.key_id != parsed.key_id:
            raise NoteError(f"witness key {parsed.name!r}: key ID does not match the key")
        return verifier

    def to_vkey(self) -> str:
        """Return the witness verifier key string."""
        kind = SIGNATURE_TYPE_COSIGNATURE_V1
        return KeyString(self.name, self.key_id, kind, self.public_key).to_text()

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Return whether ``timestamp ‖ signature`` is a valid cosignature over note ``text``."""
        if len(signature) != 72 or signature_problem(signature[8:]) is not None:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        message = _COSIGNATURE_HEADER + str(timestamp).encode("ascii") + b"\n" + text
        try:
            self._key.verify(signature[8:], message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True, eq=False)  # keys compare by identity
class Cosigner:
    """A witness's signing key for ``cosignature/v1`` (never printed)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        """Create a cosigner with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, text: str) -> Cosigner:
        """Parse ``PRIVATE+KEY+name+hexkeyid+base64(0x04 ‖ seed)``."""
        parsed = KeyString.from_text(text, private=True)
        seed = parsed.expect(SIGNATURE_TYPE_COSIGNATURE_V1, 32)
        cosigner = cls(parsed.name, Ed25519Signer.from_seed(parsed.name, seed).private_key)
        if cosigner.verifier().key_id != parsed.key_id:
            raise NoteError(f"witness signer key {parsed.name!r}: key ID does not match the key")
        return cosigner

    def to_skey(self) -> str:
        """Return the signer key string with type ``0x04`` (secret)."""
        seed = self.private_key.private_bytes_raw()
        kind = SIGNATURE_TYPE_COSIGNATURE_V1
        return KeyString(self.name, self.verifier().key_id, kind, seed, True).to_text()

    def verifier(self) -> CosignatureVerifier:
        """Return the matching witness verifier key."""
        return CosignatureVerifier(self.name, self.private_key.public_key().public_bytes_raw())

    def cosign(self, checkpoint: Checkpoint, timestamp: int) -> NoteSignature:
        """Return this witness's cosignature line for ``checkpoint`` at POSIX ``timestamp``.

        Raises
        ------
        NoteError
            If ``timestamp`` is negative or above 2^63 - 1.
        """
        if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
            raise NoteError(f"cosignature timestamp {_shown(timestamp)} is outside 0..2^63-1")
        raw = self.private_key.sign(cosignature_message(checkpoint.to_text(), timestamp))
        return NoteSignature(self.name, self.verifier().key_id, timestamp.to_bytes(8, "big") + raw)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified witness cosignature: who, with which key ID, and when."""

    name: str
    key_id: bytes
    timestamp: int


def add_cosignature(note_text: str | bytes, signature: NoteSignature) -> str:
    """Return the signed note with ``signature`` appended (once).

    Raises
    ------
    NoteError
        If ``note_text`` is not a signed note.
    """
    return SignedNote.from_text(note_text).with_signature(signature).to_text()


def verify_cosignatures(
    note: SignedNote | str | bytes, witnesses: Iterable[CosignatureVerifier]
) -> tuple[Cosignature, ...]:
    """Return the witnesses among ``witnesses`` that validly cosigned the checkpoint.

    Signatures from other keys (the log's, unknown witnesses) are ignored.  The
    caller decides what quorum it needs; the result may be empty.

    Raises
    ------
    NoteError
        If the note or its checkpoint body is malformed, or a cosignature from
        one of ``witnesses`` does not verify.
    """
    parsed = note if isinstance(note, SignedNote) else SignedNote.from_text(note)
    Checkpoint.from_text(parsed.text)
    return tuple(
        Cosignature(sig.name, sig.key_id, int.from_bytes(sig.signature[:8], "big"))
        for sig in verified_signatures(parsed, witnesses)
    )
