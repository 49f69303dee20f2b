"""Dure's ServerApp for the deployment benchmark: the coordinator, timed round by round.

The coordinator is built from the run config exactly as the deployment
ServerApp builds it (:func:`~dure.server.federation.deployment.coordinator_from_run_config`:
SQLite ledger, registry folder, signed job), with two benchmark changes: the
initial model is the multi-task policy widened to about 1,000,000 parameters
for the consortium's shapes, and the rounds are played one by one
(:meth:`Coordinator.start`, :meth:`~Coordinator.play`, :meth:`~Coordinator.finish`)
so each is timed.  While it runs, the round's steps are timed by wrapping them:
the exchange (push, wait, pull: Dure's own short poll), the aggregation, the
ledger appends and the signed checkpoint.  Figures go to the run config's
``bench-out``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy.typing as npt
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

import dure.server.federation.rounds as rounds_module
from dure.client.training.model import build_policy_model
from dure.server.federation.deployment import coordinator_from_run_config
from dure.server.federation.statistics import ConsortiumStats
from dure.server.ledger.service import Ledger

__all__ = ["PARAMETERS", "million_parameter_policy", "server"]

PARAMETERS = 1_000_000


def million_parameter_policy(stats: ConsortiumStats) -> dict[str, npt.NDArray[Any]]:
    """The policy with two hidden layers as wide as gives about :data:`PARAMETERS`."""
    inputs, heads = stats.observation_dim + len(stats.tasks), len(stats.tasks) * stats.action_dim
    linear = inputs + heads + 2  # params(w) = w**2 + linear * w + heads
    width = int((-linear + math.sqrt(linear**2 + 4 * (PARAMETERS - heads))) / 2)
    model = build_policy_model(
        stats.observation_dim, len(stats.tasks), stats.action_dim, hidden=(width, width)
    )
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


class _Steps:
    """Wall seconds spent in wrapped functions, per round (see the module docstring)."""

    def __init__(self) -> None:
        self.current: dict[str, Any] = {}

    @contextmanager
    def wrapped(self, targets: Mapping[str, tuple[object, str]]) -> Iterator[None]:
        saved = [(owner, name, getattr(owner, name)) for owner, name in targets.values()]
        for label, (owner, name) in targets.items():
            setattr(owner, name, self._timed(label, getattr(owner, name)))
        try:
            yield
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)

    def _timed(self, label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                if label == "exchange":
                    self.current.setdefault("push", started)
                    self.current["replies"] = time.time()
                spent = time.time() - started
                self.current[f"{label}_s"] = self.current.get(f"{label}_s", 0.0) + spent

        return timed


server = ServerApp()


@server.main()
def _main(grid: Grid, context: Context) -> None:
    coordinator, job = coordinator_from_run_config(context.run_config)
    coordinator = dataclasses.replace(coordinator, initial_model=million_parameter_policy)
    steps = _Steps()
    targets = {
        "exchange": (rounds_module, "exchange"),
        "aggregate": (rounds_module, "aggregate"),
        "ledger": (rounds_module, "append"),
        "checkpoint": (Ledger, "checkpoint"),
    }
    started = time.time()
    state = coordinator.start(grid, job)
    setup = time.time() - started
    played: list[dict[str, Any]] = []
    with steps.wrapped(targets):
        for number in range(1, state.job.document.rounds + 1):
            steps.current = {"round": number, "start": time.time()}
            report = coordinator.play(grid, state, number)
            steps.current |= {"end": time.time(), "status": report.status}
            steps.current["contributors"] = len(report.contributors)
            played.append(steps.current)
    coordinator.finish(grid, state)
    parameters = sum(int(v.size) for v in state.model.values())
    out = {"setup_s": setup, "rounds": played, "parameters": parameters}
    with open(str(context.run_config["bench-out"]), "w") as handle:
        json.dump(out, handle)
