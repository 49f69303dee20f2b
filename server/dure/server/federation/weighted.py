"""The weighted mean of updates, within float rounding of Flower's FedAvg, and fast decoding.

Pure (numpy, SciPy's BLAS bindings and Flower's ``Array`` type only).

:func:`weighted_mean` computes what Flower's
``flwr.serverapp.strategy.strategy_utils.aggregate_arrayrecords`` (what
``FedAvg.aggregate_train`` and ``FedProx.aggregate_train`` run) computes: each
factor is ``w / sum(weights)``, and every tensor is accumulated in its own dtype
(float32 for a float32 model), reply after reply in order.  Float32 and float64
tensors are accumulated with BLAS ``axpy`` (``acc = f * u + acc`` in place, one
pass over each update, no temporaries): at most one rounding per step instead of
Flower's two (product, then sum), so the two results agree within float rounding
(a property test bounds the difference).  Other dtypes (float16, integers,
non-native byte order, non C-contiguous arrays) take the exact two-step path,
which is Flower's arithmetic operation for operation and bit for bit.

Accumulating in the tensors' dtype (not float64) is deliberate: it is what Flower
does, and it reads each update once.  Float64 accumulation would be at most a few
ulps more accurate and slower (a conversion per element).

:func:`decode_array` turns a Flower ``Array`` into a read-only numpy view of its
bytes without copying (``Array.numpy`` goes through ``np.load``, which copies and
parses the ``.npy`` header with ``ast`` on every call).  Headers are parsed by
numpy's own parser and cached by their exact bytes (every reply of a round shares
them); the data must be exactly as long as the header says.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import Array
from scipy.linalg import blas

__all__ = ["decode_array", "weighted_mean"]

Arrays = Mapping[str, npt.NDArray[Any]]
_MAGIC = b"\x93NUMPY"
# .npy major version -> bytes of its header length (3.0 differs from 2.0 only for
# non-Latin-1 structured field names, which are not numeric tensors).
_LENGTH_BYTES = {1: 2, 2: 4}
# BLAS y <- a*x + y for the native float dtypes (``a`` is rounded to the dtype, as
# NumPy rounds a Python float multiplying a float32 array).
_AXPY: dict[np.dtype[Any], Any] = {
    np.dtype(np.float32): blas.saxpy,
    np.dtype(np.float64): blas.daxpy,
}


def weighted_mean(
    updates: Sequence[Arrays], weights: Sequence[float], names: Sequence[str]
) -> dict[str, npt.NDArray[Any]]:
    """Return the ``weights``-weighted mean of ``updates`` for each tensor in ``names``.

    Parameters
    ----------
    updates
        One mapping of tensor name to array per contributor, all with the same
        shapes (the validation step checked them).
    weights
        One positive weight per contributor (Flower's ``"num-examples"``).
    names
        The tensors to aggregate, in the order of the result.

    Raises
    ------
    ValueError
        If there is no update, the counts differ, or the weights sum to zero.
    """
    if not updates or len(updates) != len(weights):
        raise ValueError(f"{len(updates)} updates for {len(weights)} weights")
    total = sum(weights)
    if not total:
        raise ValueError("the weights sum to zero")
    factors = [weight / total for weight in weights]
    return {name: _accumulate([update[name] for update in updates], factors) for name in names}


def _accumulate(tensors: list[npt.NDArray[Any]], factors: list[float]) -> npt.NDArray[Any]:
    """``t0 * f0 + t1 * f1 + ...`` left to right in the tensors' own dtype (BLAS if it can)."""
    axpy = _AXPY.get(tensors[0].dtype)
    if axpy is None or tensors[0].size == 0 or not all(t.flags.c_contiguous for t in tensors):
        return _accumulate_exact(tensors, factors)
    flat = [t.reshape(-1) for t in tensors]  # views: every tensor is C-contiguous
    total: npt.NDArray[Any] = np.multiply(flat[0], tensors[0].dtype.type(factors[0]))
    for tensor, factor in zip(flat[1:], factors[1:], strict=True):
        total = axpy(tensor, total, a=factor)  # in place: ``total`` is contiguous and ours
    return total.reshape(tensors[0].shape)


def _accumulate_exact(tensors: list[npt.NDArray[Any]], factors: list[float]) -> npt.NDArray[Any]:
    """``t0 * f0 + t1 * f1 + ...`` exactly as Flower computes it, in place.

    A Python float times a float array is computed with the float rounded to the
    array's dtype (NumPy's weak scalars, NEP 50); rounding it up front gives the
    same products and takes NumPy's fast scalar loop (about 4x faster).
    """
    dtype = tensors[0].dtype
    scalars = [dtype.type(f) if dtype.kind == "f" else f for f in factors]
    total: npt.NDArray[Any] = np.asarray(np.multiply(tensors[0], scalars[0]))  # 0-d too
    scratch = np.empty_like(total)
    for tensor, factor in zip(tensors[1:], scalars[1:], strict=True):
        np.multiply(tensor, factor, out=scratch)
        np.add(total, scratch, out=total)
    return total


def decode_array(array: Array) -> npt.NDArray[Any]:
    """Return the tensor an ``Array`` carries as a read-only view of its bytes.

    Equal to ``array.numpy()`` (same dtype, shape, order and values) for any
    array ``np.save`` writes, without copying the data.

    Raises
    ------
    TypeError
        If the array is not numpy-serialised.
    ValueError
        If its bytes are not a ``.npy`` file holding exactly one numeric array.
    """
    if array.stype != "numpy.ndarray":
        raise TypeError(f"unsupported serialisation type {array.stype!r} (numpy only)")
    data = array.data
    if not isinstance(data, bytes) or data[:6] != _MAGIC or len(data) < 10:
        raise ValueError("the array's bytes are not a .npy file")
    size = _LENGTH_BYTES.get(data[6])
    if size is None:
        raise ValueError(f".npy format version {data[6]}.{data[7]} is not supported")
    start = 8 + size
    offset = start + int.from_bytes(data[8:start], "little")
    dtype, shape, fortran = _header(data[:offset])
    count = math.prod(shape)
    if len(data) != offset + count * dtype.itemsize:
        raise ValueError(
            f"the array's data is {len(data) - offset} bytes where its header "
            f"({dtype}{list(shape)}) needs {count * dtype.itemsize}"
        )
    if count == 0:
        flat = np.empty(0, dtype)
        flat.flags.writeable = False
    else:
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


@functools.lru_cache(maxsize=256)
def _header(header: bytes) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """Parse a ``.npy`` header (magic to the end of its dict) with numpy's parser."""
    stream = io.BytesIO(header)
    version = np.lib.format.read_magic(stream)
    reader = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    try:
        shape, fortran, dtype = reader(stream)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ValueError(f"malformed .npy header: {exc}") from exc
    if dtype.hasobject or dtype.kind not in "biufc":
        raise ValueError(f"dtype {dtype} is not numeric")
    if any(int(dim) < 0 for dim in shape):
        raise ValueError(f"shape {shape} has a negative dimension")
    return dtype, tuple(int(dim) for dim in shape), bool(fortran)
