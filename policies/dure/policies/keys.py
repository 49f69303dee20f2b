"""Ed25519 identities: generation, key ids, PEM files with safe permissions.

Every party (factory, consortium operator, coordinator ledger) holds one
Ed25519 signing key.  Private keys live in PKCS#8 PEM files with mode ``0600``;
loading one that group or others can read is refused, as OpenSSH does.  A key's
id is the hex SHA-256 of its raw 32-byte public key.

A public key is checked wherever it enters (:class:`VerifyKey`): the encodings
of small-order points and non-canonical encodings are refused, and so are
non-canonical signatures (:mod:`dure.policies.ed25519`), because under such a
key signatures can be forged without any private key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dure.policies.ed25519 import public_key_problem, signature_problem
from dure.policies.encoding import HexDigest, sha256, to_hex
from dure.policies.errors import EncodingError, KeyFileError, SignatureError

__all__ = ["PUBLIC_KEY_SIZE", "SigningKey", "VerifyKey"]

PUBLIC_KEY_SIZE = 32
_PRIVATE_MODE = 0o600
_NEW_KEY_HINT = (
    "This is not a key Dure generates: ask its owner for their real public key, "
    "or create a new key pair with 'dure keys new'."
)


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An Ed25519 public key: verifies signatures; its id names it in envelopes."""

    raw: bytes

    def __post_init__(self) -> None:
        problem = public_key_problem(self.raw)
        if problem is not None:
            hint = None if len(self.raw) != PUBLIC_KEY_SIZE else _NEW_KEY_HINT
            raise EncodingError(f"Ed25519 {problem}" if hint else problem, hint=hint)

    @property
    def key_id(self) -> HexDigest:
        """Hex SHA-256 of the raw public key."""
        return to_hex(sha256(self.raw))

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check ``signature`` over ``message``; raise :class:`SignatureError` if it fails.

        A non-canonical signature (``S`` not below the group order, ``R`` not a
        canonical encoding or of small order) is refused before it is verified.
        """
        problem = signature_problem(signature)
        if problem is not None:
            raise SignatureError(
                f"{problem} (key {self.key_id[:16]}…)",
                hint="Ed25519 signers never produce this; the signature was forged or altered.",
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError(f"signature does not verify with key {self.key_id[:16]}…") from exc

    def to_pem(self) -> bytes:
        """Encode as a SubjectPublicKeyInfo PEM block."""
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "public key") -> VerifyKey:
        """Decode a SubjectPublicKeyInfo PEM block holding an Ed25519 key."""
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{source}: not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{source}: not an Ed25519 public key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        try:
            return cls(raw)
        except EncodingError as exc:
            raise EncodingError(f"{source}: {exc.message}", hint=exc.hint) from exc

    @classmethod
    def load(cls, path: Path) -> VerifyKey:
        """Read a public key PEM file."""
        return cls.from_pem(_read(path), source=str(path))

    def save(self, path: Path) -> None:
        """Write the public key as PEM (world-readable is fine for a public key)."""
        _write_new(path, self.to_pem(), 0o644)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key.  Never printed, never serialised except to its own file."""

    _key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Rebuild a key from its 32-byte seed (for tests and known-answer vectors)."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(seed))
        except ValueError as exc:
            raise EncodingError("an Ed25519 seed is 32 bytes") from exc

    @property
    def public(self) -> VerifyKey:
        """The matching public key."""
        pub = self._key.public_key()
        return VerifyKey(
            pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    @property
    def key_id(self) -> HexDigest:
        """The public key's id."""
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def seed(self) -> bytes:
        """Return the raw 32-byte seed (for note signer keys; keep it secret)."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def save(self, path: Path) -> None:
        """Write the key as PKCS#8 PEM with mode 0600; refuse to overwrite a file."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(path, pem, _PRIVATE_MODE)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a private key file, refusing one that group or others may read."""
        mode = _stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"{path}: private key is accessible by others (mode {stat.S_IMODE(mode):04o})",
                hint=f"Run 'chmod 600 {path}'.",
            )
        try:
            key = serialization.load_pem_private_key(_read(path), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 private key")
        return cls(key)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id[:16]}…)"


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file ({exc.strerror})") from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file ({exc.strerror})") from exc


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise KeyFileError(
            f"{path}: already exists", hint="Choose another path; Dure never overwrites keys."
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
