"""One short simulated shift, shared by the ingest integration tests."""

from __future__ import annotations

import pytest

from dure.client.sim.factory import simulate_episodes
from dure.client.sim.truth import SimulatedEpisode

TASKS = ("reach-v3", "push-v3")


@pytest.fixture(scope="session")
def shift() -> list[SimulatedEpisode]:
    """Three short expert episodes over two tasks (a fast path: 30 steps each)."""
    return simulate_episodes(list(TASKS), 3, seed=11, max_steps=30)
