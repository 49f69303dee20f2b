"""File access for the CLI: read inputs and create outputs with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

from dure.policies.errors import DureError

__all__ = ["CliFileError", "read_bytes", "read_text", "write_new"]


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
