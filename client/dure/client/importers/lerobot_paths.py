"""Untrusted LeRobot metadata: path templates, paths inside the dataset, indices.

A LeRobot dataset is input from outside the factory.  Every file the importers open
is resolved (symlinks too) by :func:`inside` and must be a regular file under the
dataset root, so it is one of the files that
:func:`~dure.client.importers.source_digest.source_digest` hashed into the
provenance.  The path templates of ``meta/info.json`` (``data_path``,
``video_path``) are parsed by :class:`PathTemplate`, never evaluated with
``str.format``: only LeRobot's own fields, as plain names, with only the integer
formats LeRobot writes (``{episode_index:06d}``), are accepted.  Untrusted values
echoed in messages are cut by :func:`clip`.
"""

from __future__ import annotations

import re
import stat
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from dure.client.errors import IngestError

__all__ = ["PathTemplate", "clip", "index_value", "inside"]

_INT_SPEC = re.compile(r"(0[1-9])?d?")
"""The integer formats LeRobot's templates use: none, ``d``, or zero-padded ``0Nd``."""
_MAX_TEMPLATE = 512
_MAX_INDEX = 2**53
"""Indices (episodes, chunks, files) above this are not a dataset's; refuse them."""
_CLIP = 120


def clip(value: object, limit: int = _CLIP) -> str:
    """``repr(value)``, cut to about ``limit`` characters: untrusted values in messages."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, deep nesting
        text = f"<a {type(value).__name__} too large to show>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _relative(relative: str | PurePosixPath, where: str) -> PurePosixPath:
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or "\\" in str(rel) or "\0" in str(rel):
        raise IngestError(
            f"{where}: path {clip(str(rel))} is not a relative path inside the dataset",
            hint="Paths in a LeRobot dataset's metadata must be relative to its root, "
            "without '..' (for example data/chunk-000/file-000.parquet).",
        )
    return rel


def inside(root: Path, relative: str | PurePosixPath, where: str) -> Path:
    """Resolve ``root / relative`` and check it is a regular file inside ``root``.

    Symlinks are followed and the result must still lie under the resolved root, so a
    template or a link cannot make the importer read a file the provenance digest did
    not hash.

    Raises
    ------
    IngestError
        If the path is absolute, climbs with ``..``, leaves the dataset folder, is
        missing, or is not a regular file.
    """
    rel = _relative(relative, where)
    try:
        base = root.resolve(strict=True)
        target = (base / rel).resolve(strict=True)
        mode = target.stat().st_mode
    except (OSError, RuntimeError) as exc:
        raise IngestError(
            f"{where}: {clip(str(root / rel))} is missing or unreadable ({clip(str(exc))})",
            hint="The dataset is incomplete; restore the file from the recording.",
        ) from exc
    if not target.is_relative_to(base):
        raise IngestError(
            f"{where}: {clip(str(root / rel))} resolves outside the dataset folder "
            f"(to {clip(str(target))})",
            hint="Copy the data into the dataset folder instead of linking to it.",
        )
    if not stat.S_ISREG(mode):
        raise IngestError(
            f"{where}: {clip(str(root / rel))} is not a regular file",
            hint="Replace it with the data file it should be.",
        )
    return target


def index_value(value: object, what: str, where: str) -> int:
    """Check ``value`` is an index LeRobot could have written: an int in [0, 2**53].

    Raises
    ------
    IngestError
        If it is not an integer (``bool`` included) or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise IngestError(
            f"{where}: {what} is {clip(value)}, not an integer",
            hint="Rewrite the metadata with LeRobot's tooling.",
        )
    if not 0 <= int(value) <= _MAX_INDEX:
        raise IngestError(
            f"{where}: {what} {clip(int(value))} is out of range (0 to 2**53)",
            hint="Rewrite the metadata with LeRobot's tooling.",
        )
    return int(value)


@dataclass(frozen=True)
class PathTemplate:
    """A parsed LeRobot path template (``data_path`` or ``video_path`` in info.json).

    Only the fields given to :meth:`parse` may appear, each as a plain name with no
    attribute or index access and no conversion; integer fields take only LeRobot's
    formats (none, ``d``, ``0Nd`` with N from 1 to 9), ``video_key`` none.
    """

    key: str
    parts: tuple[tuple[str, str | None, str], ...]

    @classmethod
    def parse(
        cls, value: object, *, key: str, fields: frozenset[str], default: str, where: str
    ) -> PathTemplate:
        """Parse ``value`` (``None`` gives ``default``), allowing only ``fields``.

        Raises
        ------
        IngestError
            If the value is not a string, is too long, cannot be parsed, or uses a
            field, attribute, index, conversion or format LeRobot does not.
        """
        text = default if value is None else value
        hint = f"Use LeRobot's own template for {key}, for example {default}."
        if not isinstance(text, str) or not 0 < len(text) <= _MAX_TEMPLATE:
            raise IngestError(
                f"{where}: {key} {clip(text)} is not a path template of at most "
                f"{_MAX_TEMPLATE} characters",
                hint=hint,
            )
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise IngestError(f"{where}: {key} {clip(text)}: {exc}", hint=hint) from exc
        parts = []
        for literal, name, spec, conversion in parsed:
            if name is not None:
                problem = cls._problem(name, spec or "", conversion, fields)
                if problem:
                    raise IngestError(f"{where}: {key} {clip(text)}: {problem}", hint=hint)
            parts.append((literal, name, spec or ""))
        parsed_template = cls(key, tuple(parts))
        sample = {name: 0 for name in fields} | {"video_key": "observation.images.cam"}
        _relative(parsed_template.render(**sample), f"{where}: {key}")
        return parsed_template

    @staticmethod
    def _problem(name: str, spec: str, conversion: str | None, fields: frozenset[str]) -> str:
        if name not in fields:
            return f"field {clip(name)} is not one of {sorted(fields)}"
        if conversion is not None:
            return f"conversion !{clip(conversion)} is not allowed"
        if name == "video_key":
            return f"format {clip(spec)} is not allowed for video_key" if spec else ""
        if not _INT_SPEC.fullmatch(spec):
            return f"format {clip(spec)} is not an integer format LeRobot uses (like 03d)"
        return ""

    def fields(self) -> frozenset[str]:
        """The fields the template uses."""
        return frozenset(name for _, name, _ in self.parts if name is not None)

    def render(self, **values: int | str) -> str:
        """Fill the template in (every used field must be given)."""
        out = []
        for literal, name, spec in self.parts:
            out.append(literal)
            if name is not None:
                out.append(format(values[name], spec))
        return "".join(out)
