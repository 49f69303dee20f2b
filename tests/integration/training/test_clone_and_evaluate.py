"""End to end on one task: simulate, ingest, clone the expert, succeed on unseen layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dure.client.importers.ingest import ingest
from dure.client.sim.factory import simulate_factory
from dure.client.store import EpisodeStore
from dure.client.training.evaluate import evaluate_in_metaworld
from dure.client.training.local import TrainConfig, train_local
from dure.client.training.model import build_policy_model
from dure.client.training.normalisation import policy_dataset_from_store

pytest.importorskip("metaworld")

TASKS = ("button-press-topdown-v3", "plate-slide-v3")


@pytest.mark.slow
def test_a_cloned_policy_solves_new_layouts_and_not_without_training(tmp_path: Path) -> None:
    factory = simulate_factory("lerobot-v21", TASKS, 24, seed=5, out=tmp_path / "raw")
    with EpisodeStore.open(tmp_path / "home") as store:
        ingest(factory.data_path, factory.profile, store.add)
        ids = [summary.episode_id for summary in store.select()]
        stats = store.stats(ids)
        dataset = policy_dataset_from_store(store, ids, stats, TASKS)
    model = build_policy_model(dataset.observation_dim, len(TASKS), dataset.action_dim)
    untrained = evaluate_in_metaworld(model, stats, TASKS, TASKS, 4, seed=1, max_steps=300)
    train_local(model, dataset, TrainConfig(local_steps=800, lr=3e-3))
    trained = evaluate_in_metaworld(model, stats, TASKS, TASKS, 4, seed=1, max_steps=300)
    assert max(untrained.values()) == 0.0
    assert min(trained.values()) >= 0.75
