"""The factory's side of secure aggregation: Flower's ``secaggplus_mod`` around Dure's training.

:func:`secure_train_mod` sits after the receipts mod and the policy gate on the
``train`` handler.  A ``train`` message without a ``"secaggplus_configs"`` record is a
plain round and passes on untouched.  A SecAgg+ stage message (the coordinator
sends the signed job, round and site with every stage, so the gate has already
verified the job and re-evaluated the factory's own policy) goes to Flower's
:func:`~flwr.client.mod.secaggplus_mod`, which keeps the protocol's state in
the node's context and, at the ``collect_masked_vectors`` stage only, calls
:func:`secure_update`:

- exactly the episodes the gate's decision allows are selected and trained on
  (the same trainer as a plain round);
- the update sent is ``local - global`` in the global model's tensor order, in
  Flower's legacy ``FitRes`` layout (``fitres.parameters``,
  ``fitres.num_examples``, ``fitres.metrics``, ``fitres.status``) that the mod
  reads, quantises, weights and masks (and then clears from the reply);
- it is refused, with the reasons, if it is not finite, exceeds the job's norm
  bound (also SecAgg+'s quantisation range) or its examples exceed
  ``secagg-max-weight`` (its weight would overflow the quantisation).

Once the mod has masked the update, the factory signs a
:class:`~dure.policies.contribution.ContributionClaim` whose ``update_digest``
is :func:`masked_digest` of exactly the masked vector in the reply (the plain
update is never shown to the coordinator), with its examples, episodes root and
policy id, and attaches it as the ``"claim"`` record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import Mod
from flwr.common import Code, FitRes, Status, bytes_to_ndarray, ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from flwr.compat.common import recorddict_compat as compat

from dure.client.federation.contribute import Refusal, local_task
from dure.client.federation.gate import Authorisation, authorisation
from dure.client.federation.selection import select_episodes
from dure.client.federation.trainer import Trainer
from dure.client.federation.wire import (
    NOTHING_SELECTED,
    REFUSED,
    RequestError,
    TrainRequest,
    config_of,
    refusal,
)
from dure.client.store.store import EpisodeStore
from dure.policies.contribution import ContributionClaim, state_digest
from dure.policies.encoding import HexDigest
from dure.policies.signed import sign_document

__all__ = ["SecureUpdate", "masked_digest", "secure_train_mod", "secure_update"]

_PENDING: ContextVar[list[_Pending] | None] = ContextVar("dure_secagg", default=None)


def masked_digest(chunks: Iterable[bytes]) -> HexDigest:
    """Digest of a masked vector: :func:`state_digest` of its arrays named ``masked.0000``….

    Twin of :func:`dure.server.federation.secagg_grid.masked_digest` (a test checks
    both agree).
    """
    arrays = {f"masked.{i:04d}": bytes_to_ndarray(chunk) for i, chunk in enumerate(chunks)}
    return state_digest(arrays)


@dataclass(frozen=True, slots=True)
class SecureUpdate:
    """A trained update for SecAgg+: ``local - global`` (model order), examples, loss, root."""

    deltas: list[Any]
    examples: int
    loss: float
    episodes_root: str


@dataclass(frozen=True, slots=True)
class _Pending:
    auth: Authorisation
    update: SecureUpdate


class _DeclinedError(Exception):
    """The handler refused: the reply is the refusal (not a FitRes for the mod)."""

    def __init__(self, reply: Message) -> None:
        super().__init__("declined")
        self.reply = reply


def secure_update(
    auth: Authorisation, request: TrainRequest, trainer: Trainer, max_weight: float
) -> SecureUpdate | Refusal:
    """Train on the allowed episodes; return the update SecAgg+ will mask, or why not."""
    with EpisodeStore.open(auth.settings.home, create=False) as store:
        selection = select_episodes(store, auth.decision.selector)
        if selection.empty or selection.root is None:
            why = f"[selection.empty] no episode matches {auth.decision.selector.describe()}"
            return Refusal((why,))
        result = trainer(local_task(request, store, selection.episode_ids))
    bound = float(auth.job.document.aggregation.norm_bound_value)
    deltas = [
        np.asarray(result.arrays[name], np.float64) - np.asarray(value, np.float64)
        for name, value in request.arrays.items()
    ]
    problems = _problems(deltas, result.examples, bound, max_weight)
    if problems:
        return Refusal(tuple(problems))
    shaped = [
        d.astype(np.asarray(v).dtype) for d, v in zip(deltas, request.arrays.values(), strict=True)
    ]
    return SecureUpdate(shaped, result.examples, result.loss, selection.root)


def _problems(deltas: Sequence[Any], examples: int, bound: float, max_weight: float) -> list[str]:
    if not all(np.isfinite(d).all() for d in deltas):
        return ["[secagg.update] the update has non-finite values"]
    norm = float(np.sqrt(sum(float(np.square(d).sum()) for d in deltas)))
    problems = []
    if norm > bound:
        problems.append(f"[secagg.norm] update L2 norm {norm:.6g} exceeds the job's bound {bound}")
    if not 1 <= examples <= max_weight:
        problems.append(
            f"[secagg.weight] {examples} examples, outside 1..{max_weight:g} (secagg-max-weight)"
        )
    return problems


def secure_train_mod(trainer: Trainer, clock: Callable[[], datetime]) -> Mod:
    """Return the mod that runs SecAgg+ stage messages (see the module docstring)."""

    def handler(message: Message, context: Context) -> Message:
        auth = authorisation()
        try:
            request = TrainRequest.from_message(message)
            weight = config_of(message).get("secagg-max-weight")
            if not isinstance(weight, int | float) or isinstance(weight, bool):
                raise RequestError("config 'secagg-max-weight' must be a number")
        except RequestError as exc:
            raise _DeclinedError(
                _decline(message, auth, REFUSED, [f"[gate.message] {exc}"])
            ) from exc
        update = secure_update(auth, request, trainer, float(weight))
        if isinstance(update, Refusal):
            code = NOTHING_SELECTED if update.reasons[0].startswith("[selection") else REFUSED
            raise _DeclinedError(_decline(message, auth, code, update.reasons))
        _remember(_Pending(auth, update))
        fitres = FitRes(
            Status(Code.OK, "trained"),
            ndarrays_to_parameters(update.deltas),
            update.examples,
            {"train-loss": float(update.loss)},
        )
        return Message(compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=message)

    def mod(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        if RECORD_KEY_CONFIGS not in message.content:
            return call_next(message, context)
        return _run_protocol(message, context, handler, clock)

    return mod


# Module-level on purpose: Ray pickles the ClientApp's closures by value, and a
# ContextVar cannot be pickled; functions of an importable module go by reference.


def _run_protocol(
    message: Message,
    context: Context,
    handler: Callable[[Message, Context], Message],
    clock: Callable[[], datetime],
) -> Message:
    pending: list[_Pending] = []
    token = _PENDING.set(pending)
    try:
        reply = secaggplus_mod(message, context, handler)
    except _DeclinedError as declined:
        return declined.reply
    finally:
        _PENDING.reset(token)
    if pending:
        _attach_claim(reply, pending[0], clock())
    return reply


def _remember(pending: _Pending) -> None:
    collected = _PENDING.get()
    assert collected is not None  # set by _run_protocol around the handler
    collected.append(pending)


def _attach_claim(reply: Message, pending: _Pending, now: datetime) -> None:
    record = reply.content[RECORD_KEY_CONFIGS]
    assert isinstance(record, ConfigRecord)  # secaggplus_mod always writes it
    chunks = record[Key.MASKED_PARAMETERS]
    assert isinstance(chunks, list)
    auth, update = pending.auth, pending.update
    claim = ContributionClaim.model_validate(
        {
            "job_id": auth.job.document.job_id,
            "job_digest": auth.job.document_id,
            "round": auth.round,
            "site": auth.settings.urn,
            "update_digest": masked_digest(bytes(c) for c in chunks),  # type: ignore[arg-type]
            "examples": update.examples,
            "episodes_root": update.episodes_root,
            "policy_id": auth.settings.policy.document_id,
            "issued": now.replace(microsecond=0),
        }
    )
    envelope = sign_document("contribution", claim, auth.settings.key).to_json()
    reply.content["claim"] = ConfigRecord({"envelope": envelope})


def _decline(message: Message, auth: Authorisation, code: int, reasons: Sequence[str]) -> Message:
    return refusal(message, code, auth.settings.urn, auth.job.document.job_id, reasons)
