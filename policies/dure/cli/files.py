"""File access for the CLI: read inputs and create outputs with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from dure.policies.errors import DureError

if TYPE_CHECKING:
    from dure.policies.keys import SigningKey

__all__ = ["CliFileError", "load_signing_key", "read_bytes", "read_text", "write_new"]

_PUBLIC_MARKERS = (b"-----BEGIN PUBLIC KEY-----", b"ssh-", b"ecdsa-sha2-")


class CliFileError(DureError):
    """An input file that cannot be read, or an output that cannot be created."""

    code = "cli.file"
    default_hint = "Check the path and its permissions."


def read_bytes(path: Path) -> bytes:
    """Read ``path`` or raise :class:`CliFileError` naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliFileError(f"{path}: cannot read ({exc.strerror})") from exc


def read_text(path: Path) -> str:
    """Read ``path`` as UTF-8 text."""
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliFileError(f"{path}: not UTF-8 text") from exc


def write_new(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuse to replace a file unless asked."""
    if path.exists() and not overwrite:
        raise CliFileError(f"{path}: already exists", hint="Choose another path or remove it.")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliFileError(f"{path}: cannot write ({exc.strerror})") from exc


def load_signing_key(path: Path) -> SigningKey:
    """Load the Ed25519 private key ``path``; a public key given instead is named as one.

    A public key file is world-readable by design, so the kernel's permission
    check would otherwise report it as a private key "accessible by others".

    Raises
    ------
    KeyFileError
        If ``path`` holds a public key, or cannot be used as a private key.
    """
    from dure.policies.errors import KeyFileError
    from dure.policies.keys import SigningKey

    try:
        with path.open("rb") as handle:
            head = handle.read(64).lstrip()
    except OSError:
        head = b""  # the kernel names the problem
    if head.startswith(_PUBLIC_MARKERS):
        private = path.with_suffix("") if path.suffix == ".pub" else None
        where = f" ({private})" if private is not None else ""
        raise KeyFileError(
            f"{path}: this is a public key; pass the private key file",
            hint=f"Pass the private key{where} that 'dure keys new' wrote next to the .pub file.",
        )
    return SigningKey.load(path)
