"""The model registry: every global model of a run, by digest, with its parent.

A model's digest is :func:`dure.policies.contribution.state_digest` of its
tensors, the same digest the factories compute and the ledger records
(``aggregate_committed.model_digest``).  Each stored model names its parent
(the model the round started from; ``None`` for an initial model), its job and
round, and the sites that contributed, so a model's lineage can be walked back
to its initial model.

:class:`ModelStore` is the contract; :class:`MemoryModelStore` keeps models in
memory and :class:`DirectoryModelStore` in a folder (``<digest>.npz`` written
with ``allow_pickle=False`` and ``<digest>.json``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from dure.policies.contribution import state_digest
from dure.policies.encoding import HexDigest, digest_from_hex
from dure.server.federation.errors import FederationError

__all__ = ["DirectoryModelStore", "MemoryModelStore", "ModelRecord", "ModelStore", "lineage"]

Arrays = Mapping[str, npt.NDArray[Any]]


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """What the registry knows about one model."""

    digest: HexDigest
    parent: HexDigest | None
    job_id: str
    round: int
    contributors: tuple[str, ...] = ()


class ModelStore(Protocol):
    """Content-addressed storage of models.

    ``put`` MUST store the tensors under their :func:`state_digest` and return
    the record; storing the same tensors twice is allowed and keeps the first
    record.  ``get`` MUST return tensors equal (names, dtypes, shapes, values) to
    those stored, and raise :class:`FederationError` for an unknown digest.
    """

    def put(
        self,
        arrays: Arrays,
        *,
        parent: HexDigest | None,
        job_id: str,
        round: int,
        contributors: Sequence[str] = (),
    ) -> ModelRecord:
        """Store a model and return its record."""
        ...

    def get(self, digest: str) -> dict[str, npt.NDArray[Any]]:
        """Return the tensors of model ``digest``."""
        ...

    def record(self, digest: str) -> ModelRecord:
        """Return the record of model ``digest``."""
        ...


def lineage(store: ModelStore, digest: str) -> list[ModelRecord]:
    """Return ``digest``'s record, then its parent's, back to the initial model."""
    chain = [store.record(digest)]
    while chain[-1].parent is not None:
        chain.append(store.record(chain[-1].parent))
    return chain


class MemoryModelStore:
    """A :class:`ModelStore` in this process's memory."""

    def __init__(self) -> None:
        self._arrays: dict[str, dict[str, npt.NDArray[Any]]] = {}
        self._records: dict[str, ModelRecord] = {}

    def put(
        self,
        arrays: Arrays,
        *,
        parent: HexDigest | None,
        job_id: str,
        round: int,
        contributors: Sequence[str] = (),
    ) -> ModelRecord:
        """Store a copy of ``arrays``."""
        digest = state_digest(arrays)
        if digest not in self._records:
            self._arrays[digest] = {k: np.array(v, copy=True) for k, v in arrays.items()}
            self._records[digest] = ModelRecord(digest, parent, job_id, round, tuple(contributors))
        return self._records[digest]

    def get(self, digest: str) -> dict[str, npt.NDArray[Any]]:
        """Return a copy of model ``digest``."""
        self.record(digest)
        return {k: v.copy() for k, v in self._arrays[digest].items()}

    def record(self, digest: str) -> ModelRecord:
        """Return the record of model ``digest``."""
        try:
            return self._records[digest]
        except KeyError as exc:
            raise FederationError(f"no model {digest[:16]}… in the registry") from exc


class DirectoryModelStore:
    """A :class:`ModelStore` in a folder: ``<digest>.npz`` and ``<digest>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FederationError(f"cannot create the model registry {self.root}: {exc}") from exc

    def put(
        self,
        arrays: Arrays,
        *,
        parent: HexDigest | None,
        job_id: str,
        round: int,
        contributors: Sequence[str] = (),
    ) -> ModelRecord:
        """Write ``arrays`` (atomically) unless the digest is already stored."""
        digest = state_digest(arrays)
        if (self.root / f"{digest}.json").exists():
            return self.record(digest)
        record = ModelRecord(digest, parent, job_id, round, tuple(contributors))
        self._write(f"{digest}.npz", lambda handle: np.savez(handle, **dict(arrays)))  # type: ignore[arg-type]
        text = json.dumps(asdict(record), sort_keys=True).encode()
        self._write(f"{digest}.json", lambda handle: handle.write(text))
        return record

    def get(self, digest: str) -> dict[str, npt.NDArray[Any]]:
        """Read model ``digest`` and check its tensors still hash to it."""
        self.record(digest)
        try:
            with np.load(self.root / f"{digest}.npz", allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            raise FederationError(f"cannot read model {digest[:16]}…: {exc}") from exc
        if state_digest(arrays) != digest:
            raise FederationError(f"model file {digest}.npz does not hash to its name")
        return arrays

    def record(self, digest: str) -> ModelRecord:
        """Read the record of model ``digest``."""
        digest_from_hex(digest)
        try:
            value = json.loads((self.root / f"{digest}.json").read_text())
            return ModelRecord(
                HexDigest(value["digest"]),
                HexDigest(value["parent"]) if value["parent"] else None,
                str(value["job_id"]),
                int(value["round"]),
                tuple(value["contributors"]),
            )
        except FileNotFoundError as exc:
            raise FederationError(f"no model {digest[:16]}… in {self.root}") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FederationError(f"cannot read the record of model {digest[:16]}…: {exc}") from exc

    def _write(self, name: str, fill: Any) -> None:
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
            os.replace(temp, self.root / name)
        except OSError as exc:
            Path(temp).unlink(missing_ok=True)
            raise FederationError(f"cannot write {name} in {self.root}: {exc}") from exc
