"""The signed job's training section and server optimisers, through real Flower Messages.

The coordinator sends each factory the local steps, batch size and the round's
learning rate the job signed (its schedule included); a server optimiser's
Flower strategy keeps its state from round to round of a run, and a restarted
coordinator does not resume such a job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.builders.federation import build_consortium, linear_trainer, plain_policy

from dure.client.federation.trainer import LocalResult, LocalTask
from dure.client.training.local import round_learning_rate
from dure.policies.canonical import JsonValue
from dure.policies.examples import example_job_value
from dure.policies.job import JobManifest
from dure.server.federation.errors import FederationError
from dure.server.federation.resume import OPTIMISER_STOP
from dure.server.federation.run import RunSettings, check_settings

OPTIMISERS = ["fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad"]


def _optimising(name: str) -> dict[str, JsonValue]:
    """The plain policy, accepting the server optimisers too."""
    value: Any = plain_policy(name)
    for constraint in value["permission"][0]["constraint"]:
        if constraint["leftOperand"] == "dure:aggregation":
            constraint["rightOperand"] = OPTIMISERS
    return value  # type: ignore[no-any-return]


def test_the_signed_training_reaches_every_factory_each_round(tmp_path: Path) -> None:
    seen: list[tuple[int, int, float]] = []

    def recording(task: LocalTask) -> LocalResult:
        seen.append((task.local_steps, task.batch_size, task.lr))
        return linear_trainer(task)

    consortium = build_consortium(tmp_path)
    training = {
        "local_steps": 3,
        "batch_size": 32,
        "lr": "0.02",
        "schedule": {"kind": "cosine", "rounds": 2, "floor": "0.1"},
    }
    job = consortium.job(training=training)
    report = consortium.coordinator().run(consortium.grid(recording), job)
    assert [r.status for r in report.rounds] == ["committed"] * 3
    rates = [round_learning_rate(0.02, r, 2, floor=0.1) for r in (1, 2)] + [0.02 * 0.1]
    assert len(seen) == 9
    for index, (steps, batch, lr) in enumerate(seen):
        assert (steps, batch) == (3, 32)
        assert lr == pytest.approx(rates[index // 3], rel=1e-12)
    assert rates[0] > rates[1] > rates[2]


def test_unsigned_settings_that_contradict_the_job_are_refused(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path)
    coordinator = consortium.coordinator(local_steps=50, lr=0.05)
    with pytest.raises(FederationError, match=r"local_steps=50 \(the job says 5\)") as caught:
        coordinator.run(consortium.grid(), consortium.job())
    assert "training section" in caught.value.hint
    assert consortium.of_kind("job_signed") == []  # refused before anything is ledgered
    # Equal values are no contradiction (the demo passes its own, equal to the defaults).
    value = example_job_value(dp=False)
    value["training"] = {"lr": "0.05", "local_steps": 50}
    check_settings(
        RunSettings(consortium="x", lr=0.05, local_steps=50), JobManifest.from_value(value)
    )


def _two_rounds(tmp_path: Path, strategy: str, params: dict[str, JsonValue]) -> Any:
    consortium = build_consortium(tmp_path / strategy, policy=_optimising)
    aggregation = {"strategy": strategy, "secure": False, "norm_bound": "100", "params": params}
    job = consortium.job(aggregation=aggregation, rounds=2)
    coordinator, grid = consortium.coordinator(), consortium.grid()
    state = coordinator.start(grid, job)
    optimiser = state.optimiser
    models = []
    for number in (1, 2):
        assert coordinator.play(grid, state, number).status == "committed"
        assert state.optimiser is optimiser  # one strategy, its state kept, for the run
        models.append({k: v.copy() for k, v in state.model.items()})
    return models, optimiser


def test_fedavgm_differs_from_fedavg_from_round_2_by_its_momentum(tmp_path: Path) -> None:
    plain, none = _two_rounds(tmp_path, "fedavg", {})
    momentum, optimiser = _two_rounds(
        tmp_path, "fedavgm", {"server_momentum": "0.9", "server_learning_rate": "1"}
    )
    assert none is None and optimiser is not None
    for name, value in plain[0].items():  # round 1: v = g, x - v is FedAvg's mean
        np.testing.assert_allclose(momentum[0][name], value, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(momentum[1][k], v) for k, v in plain[1].items())
    assert optimiser.momentum_vector is not None


def test_fedadam_keeps_its_moments_across_rounds(tmp_path: Path) -> None:
    _, optimiser = _two_rounds(tmp_path, "fedadam", {"eta": "0.01"})
    assert optimiser.m_t is not None and optimiser.v_t is not None


def test_a_restarted_coordinator_does_not_resume_a_server_optimiser(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, policy=_optimising)
    aggregation = {"strategy": "fedyogi", "secure": False, "norm_bound": "100", "params": {}}
    job = consortium.job(aggregation=aggregation, rounds=3)
    grid = consortium.grid()
    first = consortium.coordinator()
    state = first.start(grid, job)
    assert first.play(grid, state, 1).status == "committed"
    # The coordinator stops here (killed); a new one runs the same signed job.
    report = consortium.coordinator().run(grid, job)
    assert report.rounds == () and report.stopped == OPTIMISER_STOP
    assert len(consortium.of_kind("aggregate_committed")) == 1
