"""The coordinator's side of the Message wire format (Flower Message API).

Message types and their records (the factory's twin is
:mod:`dure.client.federation.wire`; a test checks both agree):

``query.identify``
    request ``"config"`` {``"nonce"``: 64 hex, ``"run-id"``: decimal str};
    reply ``"binding"`` {``"envelope"``: DSSE JSON of a signed
    :class:`~dure.policies.contribution.NodeBinding`}.
``query.stats``
    request ``"config"`` {``"job"``, ``"round"`` (0), ``"site"``};
    reply ``"stats"`` {``"features"``: JSON {feature: {count, mean, m2, min, max}},
    ``"tasks"``: JSON list, ``"episodes"``: int}.
``train``
    request ``"arrays"`` (global model) and ``"config"`` {``"job"``: DSSE JSON bytes of
    the signed job, ``"round"``, ``"site"``, ``"parent-model"``, ``"task-vocab"``
    (JSON list), ``"stats"`` (JSON consortium statistics), ``"local-steps"``,
    ``"lr"``, ``"batch-size"``, ``"proximal-mu"``, ``"seed"``, ``"receipts"`` (JSON list of receipts
    for this site, possibly empty) and, for client-side DP clipping, ``"dp-clip"``};
    reply ``"arrays"``, ``"metrics"`` {``"num-examples"``, ``"train-loss"``},
    ``"claim"`` {``"envelope"``: DSSE JSON of the signed claim}.
``query.receipts``
    request ``"config"`` {``"receipts"``}; reply ``"metrics"`` {``"kept"``: int}.

Refusals are ``Message(Error(code, reason), reply_to=msg)`` with ``reason`` the
JSON ``{"site", "job_id", "reasons": ["[code] message", ...]}``; codes
:data:`REFUSED` (policy gate) and :data:`NOTHING_SELECTED` (no episode allowed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from dure.server.federation.weighted import decode_array

__all__ = [
    "IDENTIFY",
    "NOTHING_SELECTED",
    "RECEIPTS",
    "REFUSED",
    "STATS",
    "TRAIN",
    "ReplyError",
    "TrainReply",
    "array_record",
    "config_message",
    "error_reasons",
    "numpy_arrays",
    "parse_train_reply",
    "train_message",
]

TRAIN = "train"
IDENTIFY = "query.identify"
STATS = "query.stats"
RECEIPTS = "query.receipts"
REFUSED = 1001
NOTHING_SELECTED = 1002


class ReplyError(ValueError):
    """A reply that does not follow the wire format (becomes a rejection reason)."""


@dataclass(frozen=True, slots=True)
class TrainReply:
    """A train reply, decoded: the update, its metrics and the signed claim's bytes."""

    arrays: dict[str, npt.NDArray[Any]]
    examples: int
    loss: float
    claim: bytes


def array_record(arrays: Mapping[str, npt.NDArray[Any]]) -> ArrayRecord:
    """Wrap numpy tensors (in their order) as a Flower ``ArrayRecord``."""
    return ArrayRecord({name: Array(np.asarray(value)) for name, value in arrays.items()})


def numpy_arrays(record: ArrayRecord) -> dict[str, npt.NDArray[Any]]:
    """Unwrap a Flower ``ArrayRecord`` into numpy tensors (read-only views, no copy)."""
    return {name: decode_array(record[name]) for name in record}


def train_message(node_id: int, arrays: ArrayRecord, config: ConfigRecord, round: int) -> Message:
    """Return the ``train`` instruction for ``node_id``."""
    content = RecordDict({"arrays": arrays, "config": config})
    return Message(content, dst_node_id=node_id, message_type=TRAIN, group_id=str(round))


def config_message(node_id: int, message_type: str, config: Mapping[str, Any]) -> Message:
    """Return a ``query.*`` instruction carrying only a config record."""
    content = RecordDict({"config": ConfigRecord(dict(config))})
    return Message(content, dst_node_id=node_id, message_type=message_type)


def parse_train_reply(reply: Message) -> TrainReply:
    """Decode a train reply; raise :class:`ReplyError` naming what is missing or wrong."""
    content = reply.content
    try:
        arrays, metrics, claim = content["arrays"], content["metrics"], content["claim"]
    except KeyError as exc:
        raise ReplyError(f"the reply lacks the record {exc.args[0]!r}") from exc
    if not isinstance(arrays, ArrayRecord) or not isinstance(metrics, MetricRecord):
        raise ReplyError("the reply's arrays or metrics record has the wrong type")
    if not isinstance(claim, ConfigRecord) or not isinstance(claim.get("envelope"), bytes):
        raise ReplyError("the reply carries no signed claim (claim.envelope bytes)")
    examples, loss = metrics.get("num-examples"), metrics.get("train-loss", float("nan"))
    if isinstance(examples, bool) or not isinstance(examples, int | float):
        raise ReplyError("the reply's metrics lack num-examples")
    if examples != int(examples):
        raise ReplyError(f"num-examples {examples} is not a whole number")
    loss_value = float(loss) if isinstance(loss, int | float) else float("nan")
    try:
        tensors = numpy_arrays(arrays)
    except (ValueError, TypeError) as exc:
        raise ReplyError(f"the reply's arrays cannot be decoded: {exc}") from exc
    return TrainReply(tensors, int(examples), loss_value, bytes(claim["envelope"]))  # type: ignore[arg-type]


def error_reasons(reply: Message) -> list[str]:
    """Return the reasons of an ``Error`` reply (the factory's JSON, or its raw text)."""
    error = reply.error
    if error.code < REFUSED:  # Flower's own codes: the ClientApp failed or never ran
        return [f"no valid reply: Flower error {error.code}: {(error.reason or '')[:1500]}"]
    prefix = f"the factory refused (code {error.code})"
    try:
        value = json.loads(error.reason or "")
        reasons = value["reasons"] if isinstance(value, dict) else None
    except (ValueError, KeyError):
        reasons = None
    if isinstance(reasons, list) and reasons and all(isinstance(r, str) for r in reasons):
        return [f"{prefix}: {reason}" for reason in reasons]
    return [f"{prefix}: {(error.reason or 'no reason given')[:1500]}"]
