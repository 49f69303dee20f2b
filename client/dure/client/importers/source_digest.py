r"""The SHA-256 a provenance record names for a source file or folder.

A file's digest is the SHA-256 of its bytes.  A folder's (a rosbag2 directory, a
LeRobot dataset) is the SHA-256 of a manifest::

    b"dure/source-tree/v1\\n" + for each regular file, sorted by relative POSIX path:
        path + b"\\0" + hex(sha256(file bytes)) + b"\\n"

Files are read in 1 MiB blocks, so a multi-GB bag never sits in memory.  Only
regular files are read, and a folder holding a FIFO, socket or device is refused
(such a file is never opened).  A symlink to a file
inside the folder counts as that file; a symlink whose target lies outside the folder
is refused, so an importer that reads only inside the folder (see
:func:`dure.client.importers.lerobot_paths.inside`) reads nothing the digest does not
cover.  Symlinked folders are not descended (their targets inside the folder are).
"""

from __future__ import annotations

import hashlib
import stat
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


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _regular(item: Path, base: Path) -> bool:
    """Whether ``item`` is a file to hash; refuse a symlink that leaves ``base``.

    A FIFO, socket or device anywhere in the folder is refused: an importer that
    opened one (a bag's storage file replaced by a FIFO) would block for ever.
    """
    if item.is_symlink() and not item.resolve().is_relative_to(base):
        raise IngestError(
            f"{item}: a symlink to {item.resolve()}, outside the source folder",
            hint="Copy the file into the source folder instead of linking to it.",
        )
    if not item.exists():
        return False
    mode = item.stat().st_mode
    for check, kind in _SPECIAL:
        if check(mode):
            raise IngestError(
                f"{item}: is {kind}, not a regular file",
                hint="Remove it from the source folder: sources hold regular files only.",
            )
    return stat.S_ISREG(mode)


def source_digest(path: Path) -> HexDigest:
    """Return the hex SHA-256 of the file or folder at ``path`` (see module docstring).

    Raises
    ------
    IngestError
        If the path does not exist or cannot be read, or the folder holds a symlink
        to something outside it.
    """
    try:
        if path.is_file():
            return HexDigest(_file_digest(path))
        if not path.is_dir():
            raise FileNotFoundError(path)
        manifest = hashlib.sha256(b"dure/source-tree/v1\n")
        base = path.resolve(strict=True)
        for item in sorted(p for p in path.rglob("*") if _regular(p, base)):
            rel = item.relative_to(path).as_posix().encode("utf-8")
            manifest.update(rel + b"\0" + _file_digest(item).encode("ascii") + b"\n")
        return HexDigest(manifest.hexdigest())
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise IngestError(
            f"{path}: cannot read the source ({getattr(exc, 'strerror', None) or exc})",
            hint="Pass an existing, readable file or folder as SOURCE.",
        ) from exc
