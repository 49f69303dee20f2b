r"""The content commitment of an episode: SHA-256 over its canonical frames encoding.

Encoding (version 1), the exact bytes hashed::

    b"dure/episode-frames/v1\n"
    for each column, in ascending code-point order of its name:
        header  = f"{name} {typestr} {shape}\n" in ASCII
        payload = the array's bytes, C-contiguous, in the dtype named by typestr

* ``name`` is the canonical column name from :meth:`Frames.columns`
  (``timestamp``, ``observation.*``, ``action``, ``dure.intervention``,
  ``dure.phase`` when phases are set, ``next.success``, ``next.reward``,
  ``next.done``); names match ``[a-z0-9_.]+`` so they hold no space or newline.
* ``typestr`` is the little-endian numpy type string of the canonical dtype:
  ``<f8`` (timestamp), ``<f4`` (observations, action, next.reward), ``|b1``
  (booleans, one byte 0x00 or 0x01), ``<i2`` (phase).
* ``shape`` is the decimal dimensions joined by ``x``: ``500`` or ``500x39``.

The payload length follows from the header, so the encoding is unambiguous.
Every value, every dtype, every shape and every column name is bound; the
episode's metadata (context, outcome, provenance) are not, they are recorded
beside the commitment in the store and the catalog.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from dure.policies.encoding import Digest

if TYPE_CHECKING:
    from dure.client.episodes.schema import Frames

__all__ = ["FRAMES_DOMAIN", "frames_commitment"]

FRAMES_DOMAIN = b"dure/episode-frames/v1\n"

_CANONICAL_DTYPE: dict[str, dict[int, np.dtype[Any]]] = {
    "f": {8: np.dtype("<f8"), 4: np.dtype("<f4")},
    "b": {1: np.dtype("|b1")},
    "i": {2: np.dtype("<i2")},
}


def frames_commitment(frames: Frames) -> Digest:
    """Return SHA-256 of the canonical encoding of ``frames`` (see the module docstring).

    The arrays are expected to have their canonical dtypes (as
    :meth:`~dure.client.episodes.schema.Episode.validate` checks); a big-endian
    array of the same kind is converted to little-endian first, so the
    commitment depends on values, not on memory layout.
    """
    hasher = hashlib.sha256(FRAMES_DOMAIN)
    columns = frames.columns()
    for name in sorted(columns):
        array = _canonical(columns[name])
        shape = "x".join(str(dim) for dim in array.shape)
        hasher.update(f"{name} {array.dtype.str} {shape}\n".encode("ascii"))
        hasher.update(array.tobytes(order="C"))
    return Digest(hasher.digest())


def _canonical(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    target = _CANONICAL_DTYPE.get(array.dtype.kind, {}).get(array.dtype.itemsize)
    if target is None:
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array, dtype=target)
