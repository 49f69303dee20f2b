"""Plain Flower for the deployment benchmark: a Message-API app as Flower's examples write it.

- :data:`client`: imports torch at module level (so every ``flwr-clientapp``
  process pays it), builds the 1,000,000-parameter MLP, loads the global
  arrays, trains ``local-steps`` Adam steps on the node's synthetic data
  (seeded by node id; ``batch`` rows), replies arrays and ``num-examples``.
- :data:`server`: ``FedAvg(fraction_evaluate=0)`` (training rounds only, every
  node sampled) through ``strategy.start``, i.e. ``Grid.send_and_receive`` with
  Flower's fixed 3 s pull interval; it times each round and writes them to the
  run config's ``bench-out``.
"""

from __future__ import annotations

import time

MODULE_STARTED = time.time()

import json  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from flwr.app import (  # noqa: E402
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402

from benchmarks.deployment_probe import ProbedApp  # noqa: E402

__all__ = ["INPUTS", "OUTPUTS", "WIDTH", "client", "mlp", "server"]

INPUTS, WIDTH, OUTPUTS = 32, 976, 16  # 1,001,392 parameters


def mlp() -> torch.nn.Module:
    """The benchmark's MLP (two hidden layers of ``WIDTH``)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(INPUTS, WIDTH),
        torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, WIDTH),
        torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, OUTPUTS),
    )


def _train(message: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    model = mlp()
    model.load_state_dict(message.content.array_records["arrays"].to_torch_state_dict())
    config = message.content.config_records["config"]
    steps, batch = int(str(config["local-steps"])), int(str(config["batch"]))
    generator = torch.Generator().manual_seed(context.node_id % (2**31))
    x = torch.randn(batch, INPUTS, generator=generator)
    y = torch.randn(batch, OUTPUTS, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))  # type: ignore[arg-type]
    started = time.time()
    for _ in range(steps):
        loss = torch.mean((model(x) - y) ** 2)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
    spent = time.time() - started
    metrics = MetricRecord({"num-examples": batch, "train-loss": float(loss), "train-s": spent})
    content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
    return Message(content, reply_to=message)


_app = ClientApp()
_app.train()(_train)
client = ProbedApp(_app, time.time(), MODULE_STARTED)
"""The plain ClientApp, probed: ``benchmarks.deployment_plain:client``."""


class _TimedFedAvg(FedAvg):
    """FedAvg that notes when each round's messages go out and when its replies are in."""

    def __init__(self, nodes: int) -> None:
        super().__init__(fraction_evaluate=0.0, min_train_nodes=nodes, min_available_nodes=nodes)
        self.rounds: list[dict[str, Any]] = []

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.rounds.append({"round": server_round, "push": time.time()})
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        received = time.time()
        replies = list(replies)
        result = super().aggregate_train(server_round, replies)
        train = [float(r.content["metrics"]["train-s"]) for r in replies if r.has_content()]  # type: ignore[arg-type]
        self.rounds[-1] |= {
            "replies": received,
            "end": time.time(),
            "aggregate_s": time.time() - received,
            "train_s": max(train, default=0.0),
            "valid": len(train),
        }
        return result


server = ServerApp()


@server.main()
def _main(grid: Grid, context: Context) -> None:
    config = context.run_config
    strategy = _TimedFedAvg(int(str(config["bench-nodes"])))
    started = time.time()
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(mlp().state_dict()),
        num_rounds=int(str(config["bench-rounds"])),
        train_config=ConfigRecord(
            {"local-steps": config["local-steps"], "batch": config["batch"], "lr": 1e-3}
        ),
    )
    out = {"started": started, "rounds": strategy.rounds, "end": time.time()}
    with open(str(config["bench-out"]), "w") as handle:
        json.dump(out, handle)
