r"""The SHA-256 a provenance record names for a source file or folder.

A file's digest is the SHA-256 of its bytes.  A folder's (a rosbag2 directory, a
LeRobot dataset) is the SHA-256 of a manifest::

    b"dure/source-tree/v1\\n" + for each regular file, sorted by relative POSIX path:
        path + b"\\0" + hex(sha256(file bytes)) + b"\\n"

Files are read in 1 MiB blocks, so a multi-GB bag never sits in memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from dure.client.errors import IngestError
from dure.policies.encoding import HexDigest

__all__ = ["source_digest"]

_BLOCK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def source_digest(path: Path) -> HexDigest:
    """Return the hex SHA-256 of the file or folder at ``path`` (see module docstring).

    Raises
    ------
    IngestError
        If the path does not exist or cannot be read.
    """
    try:
        if path.is_file():
            return HexDigest(_file_digest(path))
        if not path.is_dir():
            raise FileNotFoundError(path)
        manifest = hashlib.sha256(b"dure/source-tree/v1\n")
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = item.relative_to(path).as_posix().encode("utf-8")
            manifest.update(rel + b"\0" + _file_digest(item).encode("ascii") + b"\n")
        return HexDigest(manifest.hexdigest())
    except OSError as exc:
        raise IngestError(
            f"{path}: cannot read the source ({exc.strerror or exc})",
            hint="Pass an existing, readable file or folder as SOURCE.",
        ) from exc
