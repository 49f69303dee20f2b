"""Plain Flower for the overhead benchmark: the same training with no Dure in the way.

A ClientApp that trains on every episode of its home with Dure's own trainer and
replies arrays and metrics (no gate, no claim, no receipts), and a round that
pushes ``train`` Messages, pulls the replies and runs Flower's ``FedAvg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy.typing as npt
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from dure.client.federation.contribute import local_task
from dure.client.federation.trainer import train_policy
from dure.client.federation.wire import TrainRequest
from dure.client.store.store import EpisodeStore
from dure.server.federation.coordinator import Coordinator
from dure.server.federation.exchange import exchange
from dure.server.federation.run import RunState
from dure.server.federation.wire import array_record, numpy_arrays

__all__ = ["plain_client_app", "plain_config", "plain_round", "plain_train"]

Arrays = dict[str, npt.NDArray[Any]]


def plain_client_app(home: Path) -> ClientApp:
    """Flower without Dure: train on every episode of the home, reply arrays and metrics."""
    app = ClientApp()
    app.train()(lambda message, context: plain_train(home, message))
    return app


def plain_train(home: Path, message: Message) -> Message:
    """The plain ClientApp's work: every episode, the same trainer, no gate, no claim."""
    request = TrainRequest.from_message(message)
    with EpisodeStore.open(home, create=False) as store:
        ids = [summary.episode_id for summary in store.select()]
        result = train_policy(local_task(request, store, ids))
    metrics = MetricRecord({"num-examples": result.examples, "train-loss": result.loss})
    content = RecordDict({"arrays": array_record(result.arrays), "metrics": metrics})
    return Message(content, reply_to=message)


def plain_round(
    grid: Grid, model: Arrays, config: dict[str, Any], round: int, kind: str = "train"
) -> Arrays:
    """One plain Flower round: push train Messages, pull replies, Flower's FedAvg."""
    record, arrays = ConfigRecord({**config, "seed": round}), array_record(model)
    content = RecordDict({"arrays": arrays, "config": record})
    messages = [
        Message(content, dst_node_id=node, message_type=kind, group_id=str(round))
        for node in grid.get_node_ids()
    ]
    replies = exchange(grid, messages, timeout=600, poll=0.01)
    aggregate, _ = FedAvg().aggregate_train(round, list(replies.values()))
    assert aggregate is not None
    return numpy_arrays(aggregate)


def plain_config(state: RunState, coordinator: Coordinator) -> dict[str, Any]:
    """The train config Dure's round would send, without the job or receipts."""
    settings = coordinator.settings
    return {
        "round": 0,
        "task-vocab": state.stats.tasks_json(),
        "stats": state.stats.features_json(),
        "parent-model": state.model_digest,
        "local-steps": settings.local_steps,
        "lr": settings.lr,
        "batch-size": settings.batch_size,
        "proximal-mu": 0.0,
    }
