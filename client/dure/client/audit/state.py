"""Checkpoints an auditor or a witness keeps in its home folder, one per log key.

The auditor keeps the last checkpoint it fully verified; the witness the last one
it cosigned.  Each is the signed note, verbatim, in
``<home>/checkpoints/<key name>-<key id>.note``, written atomically (temporary
file, flush, rename) so a crash never leaves half a note.  A stored note is
checked again with the pinned key when read: a note edited on disk is refused.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dure.client.audit.errors import AuditStateError
from dure.policies.checkpoint import Checkpoint, open_checkpoint
from dure.policies.errors import NoteError
from dure.policies.note import Ed25519Verifier

__all__ = ["CheckpointStore", "StoredNote"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class StoredNote:
    """A kept signed note and its verified checkpoint body."""

    note: str
    checkpoint: Checkpoint


class CheckpointStore:
    """The checkpoints kept under ``home`` (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    def path(self, log_key: Ed25519Verifier) -> Path:
        """Return the file that keeps the checkpoint of the log signed by ``log_key``."""
        name = _UNSAFE.sub("_", log_key.name)
        return self.home / "checkpoints" / f"{name}-{log_key.key_id.hex()}.note"

    def load(self, log_key: Ed25519Verifier) -> StoredNote | None:
        """Return the kept checkpoint of this log, or ``None`` if none was kept.

        Raises
        ------
        AuditStateError
            If the file cannot be read or no longer verifies with ``log_key``.
        """
        path = self.path(log_key)
        if not path.exists():
            return None
        try:
            note = path.read_text(encoding="utf-8")
            return StoredNote(note, open_checkpoint(note, log_key))
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditStateError(f"{path}: cannot read the kept checkpoint ({exc})") from exc
        except NoteError as exc:
            raise AuditStateError(
                f"{path}: the kept checkpoint does not verify with the pinned key: {exc.message}",
                hint="The file was changed on disk; restore it from a backup before going on.",
            ) from exc

    def save(self, log_key: Ed25519Verifier, note: str) -> Path:
        """Keep ``note`` as this log's checkpoint, atomically; return the file."""
        path = self.path(log_key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(note)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except OSError as exc:
            raise AuditStateError(f"{path}: cannot keep the checkpoint ({exc})") from exc
        return path
