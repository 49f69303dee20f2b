"""C2SP signed notes: text signed by one or more Ed25519 keys.

SPEC: https://c2sp.org/signed-note (v1.0.0).  A note is a text ending in a
newline, a blank line, then one or more signature lines::

    <text, ending in a newline>

    — <key name> base64(key ID (4 bytes) ‖ signature)

The key ID is ``SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`` (type ``0x01`` for
Ed25519 note signatures).  Verifier keys are written ``name+hex(key ID)+base64(type ‖
public key)``, signer keys ``PRIVATE+KEY+name+hex(key ID)+base64(type ‖ seed)``.

Parsing (:meth:`SignedNote.from_text`) and checking (:func:`open_note`) are separate
steps.  :func:`verified_signatures` applies the spec's rules: signatures from keys
the caller does not know are ignored; a signature from a known key that fails to
verify rejects the whole note; :func:`open_note` also rejects a note that no known
key signed.  Verifiers are anything with ``name``, ``key_id`` and ``verify(text,
signature)`` (:class:`NoteVerifier`), so the timestamped cosignatures of
:mod:`dure.policies.checkpoint` plug in beside :class:`Ed25519Verifier`.
Every failure raises :class:`~dure.policies.errors.NoteError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dure.policies.ed25519 import public_key_problem, signature_problem
from dure.policies.encoding import b64decode, b64encode
from dure.policies.errors import EncodingError, NoteError

__all__ = [
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_COSIGNATURE_V1",
    "SIGNATURE_TYPE_ED25519",
    "Ed25519Signer",
    "Ed25519Verifier",
    "KeyString",
    "NoteSignature",
    "NoteVerifier",
    "SignedNote",
    "check_key_name",
    "checked_public_key",
    "key_id",
    "open_note",
    "sign_note",
    "verified_signatures",
]

SIGNATURE_TYPE_ED25519 = 0x01  # SPEC: c2sp.org/signed-note "Signature types"
SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04  # SPEC: c2sp.org/tlog-cosignature, Ed25519
MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the spec requires accepting at least 16)."""

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


@runtime_checkable
class NoteVerifier(Protocol):
    """A key that can check note signatures carrying its name and key ID."""

    @property
    def name(self) -> str:
        """The key name in the signature line."""
        ...

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes the signature."""
        ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` (key ID removed) is valid over note ``text``."""
        ...


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid key name: non-empty, no Unicode space, no ``+``.

    Raises
    ------
    NoteError
        Otherwise, naming the offending value.
    """
    if (
        not isinstance(name, str)
        or not name
        or "+" in name
        or any(c.isspace() for c in name)
        or _CONTROL.search(name)
    ):
        raise NoteError(f"invalid note key name {name!r}: need non-empty, no spaces, no '+'")
    return name


def checked_public_key(name: str, public_key: bytes) -> Ed25519PublicKey:
    """Load the Ed25519 public key of note key ``name``, refusing weak encodings.

    Raises
    ------
    NoteError
        If ``public_key`` is not 32 bytes, not a canonical curve point, or a
        point of small order (:func:`~dure.policies.ed25519.public_key_problem`).
    """
    raw = bytes(public_key) if isinstance(public_key, bytes | bytearray) else b""
    problem = public_key_problem(raw)
    if problem is not None:
        raise NoteError(
            f"key {name!r}: Ed25519 {problem}",
            hint="Ask the key's owner for their real verifier key; Dure never generates this one.",
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """Return ``SHA-256(name ‖ 0x0A ‖ type ‖ public_key)[:4]`` (SPEC: c2sp.org/signed-note)."""
    data = name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(data).digest()[:4]


@dataclass(frozen=True, slots=True)
class KeyString:
    """A verifier (``vkey``) or signer (``PRIVATE+KEY+…``) key string, split into its parts."""

    name: str
    key_id: bytes
    signature_type: int
    material: bytes = field(repr=False)
    private: bool = False

    @classmethod
    def from_text(cls, text: str, *, private: bool = False) -> KeyString:
        """Parse ``[PRIVATE+KEY+]name+hexkeyid+base64(type ‖ key)``.

        Raises
        ------
        NoteError
            If the string does not have that shape.
        """
        what = "signer key" if private else "verifier key"
        # The name holds no '+', but standard base64 may: split from the left only.
        parts = text.strip().split("+", 4 if private else 2) if isinstance(text, str) else []
        if private:
            parts = parts[2:] if parts[:2] == ["PRIVATE", "KEY"] else []
        if len(parts) != 3 or not _HEX_KEY_ID.fullmatch(parts[1]):
            shown = "<private key>" if private else repr(text)[:120]
            raise NoteError(f"{what} is not name+keyid+base64: {shown}")
        try:
            raw = b64decode(parts[2])
        except EncodingError as exc:
            raise NoteError(f"{what} {parts[0]!r} has invalid base64 key material") from exc
        if len(raw) < 2:
            raise NoteError(f"{what} {parts[0]!r} has no key material")
        name = check_key_name(parts[0])
        return cls(name, bytes.fromhex(parts[1]), raw[0], raw[1:], private)

    def to_text(self) -> str:
        """Return the key string this was parsed from."""
        material = b64encode(bytes([self.signature_type]) + self.material)
        body = f"{self.name}+{self.key_id.hex()}+{material}"
        return f"PRIVATE+KEY+{body}" if self.private else body

    def expect(self, signature_type: int, size: int) -> bytes:
        """Return the key material after checking its type byte and length."""
        if self.signature_type != signature_type or len(self.material) != size:
            raise NoteError(
                f"key {self.name!r} has type {self.signature_type:#04x} and {len(self.material)} "
                f"bytes; expected type {signature_type:#04x} and {size} bytes"
            )
        return self.material


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    """An Ed25519 note verifier key (signature type ``0x01``)."""

    name: str
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "_key", checked_public_key(self.name, self.public_key))

    @property
    def key_id(self) -> bytes:
        """``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``."""
        return key_id(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    @classmethod
    def from_vkey(cls, text: str) -> Ed25519Verifier:
        """Parse a verifier key ``name+hexkeyid+base64(0x01 ‖ public key)``."""
        parsed = KeyString.from_text(text)
        verifier = cls(parsed.name, parsed.expect(SIGNATURE_TYPE_ED25519, 32))
        if verifier.key_id != parsed.key_id:
            raise NoteError(f"verifier key {parsed.name!r}: key ID does not match the key")
        return verifier

    def to_vkey(self) -> str:
        """Return the verifier key string."""
        return KeyString(self.name, self.key_id, SIGNATURE_TYPE_ED25519, self.public_key).to_text()

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is this key's Ed25519 signature over ``text``.

        A non-canonical signature (:func:`~dure.policies.ed25519.signature_problem`)
        is never valid.
        """
        if signature_problem(signature) is not None:
            return False
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True, eq=False)  # keys compare by identity
class Ed25519Signer:
    """An Ed25519 note signer: a key name and a private key (never printed)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """Create a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Ed25519Signer:
        """Create a signer from a 32-byte Ed25519 seed (RFC 8032 private key)."""
        try:
            return cls(name, Ed25519PrivateKey.from_private_bytes(bytes(seed)))
        except (TypeError, ValueError) as exc:
            raise NoteError(f"key {name!r}: not a 32-byte Ed25519 seed") from exc

    @classmethod
    def from_skey(cls, text: str) -> Ed25519Signer:
        """Parse ``PRIVATE+KEY+name+hexkeyid+base64(0x01 ‖ seed)``."""
        parsed = KeyString.from_text(text, private=True)
        signer = cls.from_seed(parsed.name, parsed.expect(SIGNATURE_TYPE_ED25519, 32))
        if signer.key_id != parsed.key_id:
            raise NoteError(f"signer key {parsed.name!r}: key ID does not match the key")
        return signer

    def to_skey(self) -> str:
        """Return the signer key string (secret: store it with mode 0600)."""
        seed = self.private_key.private_bytes_raw()
        return KeyString(self.name, self.key_id, SIGNATURE_TYPE_ED25519, seed, True).to_text()

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self.private_key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        """``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``."""
        return key_id(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    def verifier(self) -> Ed25519Verifier:
        """Return the matching verifier."""
        return Ed25519Verifier(self.name, self.public_key)

    def sign(self, text: str) -> NoteSignature:
        """Sign note ``text`` (which must end in a newline) and return the signature line."""
        _check_text(text)
        raw = self.private_key.sign(text.encode("utf-8"))
        return NoteSignature(self.name, self.key_id, raw)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_id) != 4 or not self.signature:
            raise NoteError(f"signature by {self.name!r} needs a 4-byte key ID and a signature")

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse ``— name base64(keyid ‖ signature)`` (no trailing newline)."""
        if not line.startswith(_SIGNATURE_PREFIX):
            raise NoteError(
                f"signature line does not start with an em dash and a space: {line[:80]!r}"
            )
        name, space, value = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        if not space:
            raise NoteError(f"signature line has no space after the key name: {line[:80]!r}")
        try:
            raw = b64decode(value)
        except EncodingError as exc:
            raise NoteError(f"signature by {name[:80]!r} is not canonical base64") from exc
        if len(raw) < 5:
            raise NoteError(f"signature by {name[:80]!r} is shorter than a key ID and one byte")
        return cls(name, raw[:4], raw[4:])

    def to_line(self) -> str:
        """Return the signature line without its newline."""
        return f"{_SIGNATURE_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note text and its signature lines, exactly as written (duplicates kept)."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text)
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise NoteError(
                f"a signed note needs 1 to {MAX_SIGNATURES} signatures, got {len(self.signatures)}"
            )

    @classmethod
    def from_text(cls, data: str | bytes) -> SignedNote:
        """Parse a signed note; the text ends at the last blank line.

        Raises
        ------
        NoteError
            If the note is not UTF-8, holds control characters, has no blank line
            before the signatures, or a signature line is malformed.
        """
        note = _decode(data)
        split = note.rfind("\n\n")
        if split < 0:
            raise NoteError("signed note has no blank line before its signatures")
        text, block = note[: split + 1], note[split + 2 :]
        if not block.endswith("\n"):
            raise NoteError("signed note does not end with a newline after its signatures")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"signed note has more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(NoteSignature.from_line(line) for line in lines))

    def to_text(self) -> str:
        """Return the note as text; ``from_text(n.to_text()) == n``."""
        return self.text + "\n" + "".join(s.to_line() + "\n" for s in self.signatures)

    def with_signature(self, signature: NoteSignature) -> SignedNote:
        """Return this note with ``signature`` appended (unchanged if already present)."""
        if signature in self.signatures:
            return self
        return SignedNote(self.text, (*self.signatures, signature))


def _decode(data: str | bytes) -> str:
    if isinstance(data, bytes | bytearray):
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(f"signed note is not UTF-8 (byte {exc.start})") from exc
    if not isinstance(data, str):
        raise NoteError(f"a signed note is text, got {type(data).__name__}")
    return data


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("note text must be non-empty and end with a newline")
    match = _CONTROL.search(text)
    if match:
        raise NoteError(f"note holds control character {match.group()!r} at {match.start()}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"note holds a lone surrogate at {exc.start}") from exc


def sign_note(text: str, signers: Iterable[Ed25519Signer]) -> SignedNote:
    """Sign ``text`` with each of ``signers`` (at least one)."""
    return SignedNote(text, tuple(signer.sign(text) for signer in signers))


def verified_signatures(
    note: SignedNote, verifiers: Iterable[NoteVerifier]
) -> tuple[NoteSignature, ...]:
    """Return the signatures made by known keys, each key once, after verifying them all.

    A signature counts as a known key's when both its name and key ID match;
    others are ignored (SPEC: c2sp.org/signed-note "Signatures").  The result may
    be empty.

    Raises
    ------
    NoteError
        If any signature from a known key does not verify.
    """
    known = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode("utf-8")
    good: dict[tuple[str, bytes], NoteSignature] = {}
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text, sig.signature):
            raise NoteError(f"signature by known key {sig.name!r} ({sig.key_id.hex()}) is invalid")
        good.setdefault((sig.name, sig.key_id), sig)
    return tuple(good.values())


def open_note(
    note: SignedNote | str | bytes, verifiers: NoteVerifier | Iterable[NoteVerifier]
) -> SignedNote:
    """Parse ``note`` and return it if at least one known key validly signed it.

    Raises
    ------
    NoteError
        If the note is malformed, a known key's signature is invalid, or no
        signature comes from a known key.
    """
    parsed = note if isinstance(note, SignedNote) else SignedNote.from_text(note)
    keys = [verifiers] if isinstance(verifiers, NoteVerifier) else list(verifiers)
    if not verified_signatures(parsed, keys):
        names = ", ".join(sorted({s.name for s in parsed.signatures}))
        raise NoteError(f"note is not signed by any trusted key (signed by: {names})")
    return parsed
