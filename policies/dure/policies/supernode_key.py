"""The ECDSA key a site's Flower SuperNode authenticates with (OpenSSH format).

Flower's SuperNode authentication takes an SSH-format ECDSA key pair
(``ssh-keygen -t ecdsa -b 384``); Dure writes the same with ``cryptography`` so
an operator needs no OpenSSH install.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dure.policies.errors import KeyFileError

__all__ = ["generate_supernode_key"]


def generate_supernode_key(path: Path, comment: str = "dure-supernode") -> str:
    """Write an ECDSA P-384 private key to ``path`` (0600) and its public key to ``path.pub``.

    Returns the public key line (``ecdsa-sha2-nistp384 AAAA… comment``).
    """
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode('ascii')} {comment}"
    _create(path, private, 0o600)
    _create(path.with_name(path.name + ".pub"), (line + "\n").encode("ascii"), 0o644)
    return line


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise KeyFileError(f"{path}: already exists", hint="Choose another path.") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
