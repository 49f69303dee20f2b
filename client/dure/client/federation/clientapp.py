"""The factory's Flower ``ClientApp``: a thin shim from Messages to Dure's own code.

Handlers (message types in :mod:`dure.client.federation.wire`):

- ``query.identify``: sign the coordinator's challenge (reads no data);
- ``query.stats``: behind the policy gate, moments of the allowed episodes;
- ``train``: receipts first (:class:`~dure.client.federation.receipts.ReceiptBox`),
  then the policy gate, then :func:`~dure.client.federation.contribute.contribute`
  (or, for a SecAgg+ stage, :func:`~dure.client.federation.secagg.secure_train_mod`);
- ``query.receipts``: verify and keep the receipts still owed after a run.

Build one with :func:`create_client_app`, giving how a node finds its
:class:`~dure.client.federation.settings.FactorySettings` (by default from its
node config) and which trainer to use.  ``app`` is the deployment entry point
(``clientapp = "dure.client.federation.clientapp:app"``); it reads nothing
until a message arrives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from dure.client.federation.contribute import Refusal, bind_node, contribute, describe
from dure.client.federation.gate import Authorisation, authorisation, policy_gate
from dure.client.federation.receipts import ReceiptBox
from dure.client.federation.secagg import secure_train_mod
from dure.client.federation.settings import FactorySettings
from dure.client.federation.trainer import Trainer, train_policy
from dure.client.federation.wire import (
    NOTHING_SELECTED,
    REFUSED,
    RequestError,
    TrainRequest,
    config_of,
    refusal,
    train_reply,
)

__all__ = [
    "app",
    "create_client_app",
    "receipts_mod",
    "settings_by_partition",
    "settings_from_context",
]

SettingsOf = Callable[[Context], FactorySettings]


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@functools.lru_cache(maxsize=8)
def _settings_for(items: tuple[tuple[str, str], ...]) -> FactorySettings:
    return FactorySettings.from_node_config(dict(items))


def settings_from_context(context: Context) -> FactorySettings:
    """Load (once per node config) the settings a SuperNode's node config names."""
    items = tuple(sorted((str(k), str(v)) for k, v in context.node_config.items()))
    return _settings_for(items)


def settings_by_partition(configs: Sequence[Mapping[str, str]]) -> SettingsOf:
    """For the Simulation Engine: virtual node ``partition-id`` *i* reads ``configs[i]``.

    The returned function holds only strings, so Ray can ship it to its workers;
    each worker loads (once) the keys and policy the node config names.
    """
    frozen = tuple(tuple(sorted((str(k), str(v)) for k, v in c.items())) for c in configs)

    def settings_of(context: Context) -> FactorySettings:
        return _settings_for(frozen[int(context.node_config["partition-id"])])

    return settings_of


def receipts_mod(settings_of: SettingsOf) -> Mod:
    """Return a mod that keeps the receipts an instruction carries, then passes it on."""

    def keep(message: Message, context: Context, call_next: Callable[..., Message]) -> Message:
        config = message.content.get("config")
        delivered = config.get("receipts") if isinstance(config, ConfigRecord) else None
        if isinstance(delivered, str) and delivered:
            settings = settings_of(context)
            ReceiptBox(settings.receipts_dir, settings.ledger_key, settings.urn).accept(delivered)
        return call_next(message, context)

    return keep


def create_client_app(
    settings_of: SettingsOf = settings_from_context,
    trainer: Trainer = train_policy,
    clock: Callable[[], datetime] = _utc_now,
) -> ClientApp:
    """Return the factory's ClientApp (see the module docstring)."""
    app = ClientApp()
    gate = policy_gate(settings_of, clock)

    @app.query("identify")
    def identify(message: Message, context: Context) -> Message:
        config = config_of(message)
        nonce, run_id = str(config.get("nonce", "")), str(config.get("run-id", ""))
        node = message.metadata.dst_node_id
        envelope = bind_node(settings_of(context), node, run_id, nonce, clock())
        record = ConfigRecord({"envelope": envelope})
        return Message(RecordDict({"binding": record}), reply_to=message)

    @app.query("stats", mods=[gate])
    def stats(message: Message, context: Context) -> Message:
        auth = authorisation()
        answer = describe(auth)
        if isinstance(answer, Refusal):
            return _decline(message, auth, NOTHING_SELECTED, answer.reasons)
        features, tasks, episodes = answer
        record = ConfigRecord({"features": features, "tasks": tasks, "episodes": episodes})
        return Message(RecordDict({"stats": record}), reply_to=message)

    @app.train(mods=[receipts_mod(settings_of), gate, secure_train_mod(trainer, clock)])
    def train(message: Message, context: Context) -> Message:
        auth = authorisation()
        try:
            request = TrainRequest.from_message(message)
        except RequestError as exc:
            return _decline(message, auth, REFUSED, [f"[gate.message] {exc}"])
        result = contribute(auth, request, trainer, clock())
        if isinstance(result, Refusal):
            return _decline(message, auth, NOTHING_SELECTED, result.reasons)
        return train_reply(message, result.arrays, result.examples, result.loss, result.claim)

    @app.query("receipts")
    def keep_receipts(message: Message, context: Context) -> Message:
        settings = settings_of(context)
        delivered = config_of(message).get("receipts", "")
        box = ReceiptBox(settings.receipts_dir, settings.ledger_key, settings.urn)
        kept = box.accept(str(delivered))
        metrics = MetricRecord({"kept": kept.kept, "refused": len(kept.problems)})
        return Message(RecordDict({"metrics": metrics}), reply_to=message)

    return app


def _decline(message: Message, auth: Authorisation, code: int, reasons: Sequence[str]) -> Message:
    return refusal(message, code, auth.settings.urn, auth.job.document.job_id, reasons)


app = create_client_app()
"""The deployment ClientApp: settings from each SuperNode's node config."""
