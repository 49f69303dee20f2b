"""The factory's side of the Message wire format.

The coordinator's twin, :mod:`dure.server.federation.wire`, documents every
message type and record; a test checks the constants agree.  Here: decoding an
instruction's config, and building replies and refusals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)

__all__ = [
    "IDENTIFY",
    "NOTHING_SELECTED",
    "RECEIPTS",
    "REFUSED",
    "STATS",
    "TRAIN",
    "RequestError",
    "TrainRequest",
    "array_record",
    "config_of",
    "numpy_arrays",
    "refusal",
    "train_reply",
]

TRAIN = "train"
IDENTIFY = "query.identify"
STATS = "query.stats"
RECEIPTS = "query.receipts"
REFUSED = 1001
NOTHING_SELECTED = 1002


_T = TypeVar("_T")


class RequestError(ValueError):
    """An instruction that does not follow the wire format."""


@dataclass(frozen=True, slots=True)
class TrainRequest:
    """The round's training instructions, decoded (the job itself is read by the gate)."""

    arrays: dict[str, npt.NDArray[Any]]
    parent_model: str
    tasks: tuple[str, ...]
    stats: str
    local_steps: int
    lr: float
    proximal_mu: float
    seed: int
    dp_clip: float | None
    batch_size: int = 256

    @classmethod
    def from_message(cls, message: Message) -> TrainRequest:
        """Decode a ``train`` instruction; raise :class:`RequestError` if malformed."""
        config = config_of(message)
        record = message.content.get("arrays")
        if not isinstance(record, ArrayRecord):
            raise RequestError("the instruction carries no global model (arrays)")
        try:
            tasks = json.loads(_get(config, "task-vocab", str))
            clip, batch = config.get("dp-clip"), config.get("batch-size", 256)
            return cls(
                arrays=numpy_arrays(record),
                parent_model=_get(config, "parent-model", str),
                tasks=tuple(str(task) for task in tasks),
                stats=_get(config, "stats", str),
                local_steps=_get(config, "local-steps", int),
                lr=float(_get(config, "lr", float)),
                proximal_mu=float(_get(config, "proximal-mu", float)),
                seed=_get(config, "seed", int),
                dp_clip=float(clip) if isinstance(clip, int | float) else None,
                batch_size=batch if isinstance(batch, int) and batch > 0 else 256,
            )
        except (ValueError, TypeError) as exc:
            raise RequestError(f"malformed train instruction: {exc}") from exc


def config_of(message: Message) -> ConfigRecord:
    """Return the instruction's ``"config"`` record; raise :class:`RequestError` if absent."""
    config = message.content.get("config")
    if not isinstance(config, ConfigRecord):
        raise RequestError("the instruction carries no config record")
    return config


def array_record(arrays: Mapping[str, npt.NDArray[Any]]) -> ArrayRecord:
    """Wrap numpy tensors (in their order) as a Flower ``ArrayRecord``."""
    return ArrayRecord({name: Array(np.asarray(value)) for name, value in arrays.items()})


def numpy_arrays(record: ArrayRecord) -> dict[str, npt.NDArray[Any]]:
    """Unwrap a Flower ``ArrayRecord`` into numpy tensors."""
    return {name: record[name].numpy() for name in record}


def train_reply(
    message: Message,
    arrays: Mapping[str, npt.NDArray[Any]],
    examples: int,
    loss: float,
    claim: bytes,
) -> Message:
    """Return the train reply: the update, its metrics and the signed claim."""
    content = RecordDict(
        {
            "arrays": array_record(arrays),
            "metrics": MetricRecord({"num-examples": examples, "train-loss": float(loss)}),
            "claim": ConfigRecord({"envelope": claim}),
        }
    )
    return Message(content, reply_to=message)


def refusal(
    message: Message, code: int, site: str, job_id: str | None, reasons: Sequence[str]
) -> Message:
    """Return ``Error(code, reason)`` with the JSON reasons the coordinator ledgers."""
    reason = json.dumps({"site": site, "job_id": job_id, "reasons": list(reasons)})
    return Message(Error(code=code, reason=reason), reply_to=message)


def _get(config: ConfigRecord, key: str, kind: type[_T]) -> _T:
    value = config.get(key)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return value  # type: ignore[return-value]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RequestError(f"config {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value
