"""The on-site store: ingest throughput, read-back, statistics and catalog selection.

One ingest of EPISODES episodes of FRAMES frames, each with a 39-number state and a
4-number action (Meta-World's shapes), into a fresh factory home: validation,
commitment, per-episode statistics, Parquet and catalog commit included.  Then
reading them back, merging the statistics of the whole selection, and catalog
queries over CATALOG_ROWS catalog rows.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np

from dure.client.episodes.query import EpisodeQuery, EpisodeSummary
from dure.client.episodes.schema import (
    ActionSpace,
    Episode,
    EpisodeContext,
    EpisodeOutcome,
    FeatureSpec,
    Frames,
    Provenance,
    Resampling,
    SensorConfig,
    Source,
    SuccessDefinition,
    frame_timestamps,
)
from dure.client.episodes.stats import episode_stats
from dure.client.store.catalog import Catalog
from dure.client.store.codec import EpisodeLocation
from dure.client.store.store import EpisodeStore

T = TypeVar("T")
EPISODES = 200
FRAMES = 500
STATE, ACTION = 39, 4
CATALOG_ROWS = 10_000
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TASKS = ("pick-place", "push", "reach", "drawer-open", "button-press")

_SENSORS = SensorConfig(
    features={
        "observation.state": FeatureSpec(
            names=tuple(f"s{i}" for i in range(STATE)), units=("1",) * STATE
        ),
        "action": FeatureSpec(names=("dx", "dy", "dz", "grip"), units=("1",) * ACTION),
    },
    mapping_version="1",
)


def _episode(seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    done = np.zeros(FRAMES, dtype=np.bool_)
    done[-1] = True
    success = np.zeros(FRAMES, dtype=np.bool_)
    success[400:] = True
    frames = Frames(
        timestamp=frame_timestamps(FRAMES, 80),
        observation={"observation.state": rng.normal(size=(FRAMES, STATE)).astype(np.float32)},
        action=rng.uniform(-1, 1, size=(FRAMES, ACTION)).astype(np.float32),
        intervention=np.zeros(FRAMES, dtype=np.bool_),
        next_success=success,
        next_reward=success.astype(np.float32),
        next_done=done,
    )
    context = EpisodeContext(
        site="bench",
        cell=f"cell-{seed % 4}",
        robot="sawyer-1",
        embodiment="sawyer",
        sensors=_SENSORS,
        task=TASKS[seed % len(TASKS)],
        instruction="",
        operator="00" * 8,
        source=Source.SCRIPTED,
        start_time=T0 + timedelta(minutes=seed),
        tags=("bench",),
    )
    return Episode(
        fps=80,
        context=context,
        action_space=ActionSpace(
            kind="end-effector", mode="delta", frame="base", gripper="open-positive"
        ),
        outcome=EpisodeOutcome(
            success=True, success_definition=SuccessDefinition.ANY_STEP, first_success_step=400
        ),
        provenance=Provenance(
            source_uri="sim://bench",
            source_sha256="00" * 32,
            converter_version="bench",
            resampling=Resampling.ZOH,
        ),
        frames=frames,
    )


def _validated_commitment(episode: Episode) -> bytes:
    episode.validate()
    return episode.commitment()


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def _catalog_figures(url: str, base: EpisodeSummary) -> dict[str, float]:
    catalog = Catalog.from_url(url)
    entries = []
    for i in range(CATALOG_ROWS):
        summary = base.model_copy(
            update={
                "episode_id": f"bench-{i:016x}",
                "episode_index": i,
                "commitment": f"{i:064x}",
                "task": TASKS[i % len(TASKS)],
                "cell": f"cell-{i % 7}",
                "start_time": T0 + timedelta(minutes=i),
                "tags": ("bench", f"t{i % 10}"),
                "success": i % 9 != 0,
            }
        )
        where = EpisodeLocation(i, 0, i * FRAMES, 0, 0, 0, 0)
        entries.append((summary, where))
    _, insert_s = _timed(lambda: catalog.record_commit("bench", entries))
    queries = {
        "task": EpisodeQuery(tasks=("push",)),
        "task_cell_success": EpisodeQuery(tasks=("push",), cells=("cell-3",), success=True),
        "time_range": EpisodeQuery(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2)),
        "tag": EpisodeQuery(tags=("t3",)),
    }
    figures = {"catalog_insert_rows_per_s": CATALOG_ROWS / insert_s}
    rounds = 20
    for name, query in queries.items():
        catalog.select(query)  # warm
        started = time.perf_counter()
        for _ in range(rounds):
            catalog.select(query)
        elapsed = time.perf_counter() - started
        figures[f"catalog_select_{name}_ms"] = elapsed / rounds * 1e3
    ids = [f"bench-{i:016x}" for i in range(0, CATALOG_ROWS, 10)]
    _, root_s = _timed(lambda: catalog.selection_root(ids))
    figures["selection_root_1000_ms"] = root_s * 1e3
    catalog.close()
    return figures


def main() -> dict[str, float]:
    episodes = [_episode(seed) for seed in range(EPISODES)]
    scalars = EPISODES * FRAMES * (STATE + ACTION)
    _, validate_s = _timed(lambda: [_validated_commitment(e) for e in episodes])
    _, stats_s = _timed(lambda: [episode_stats(e) for e in episodes])
    figures: dict[str, float] = {
        "validate_commit_episodes_per_s": EPISODES / validate_s,
        "episode_stats_episodes_per_s": EPISODES / stats_s,
    }
    with tempfile.TemporaryDirectory() as tmp, EpisodeStore.open(Path(tmp) / "home") as store:
        receipt, add_s = _timed(lambda: store.add(episodes))
        ids = [e.episode_id for e in episodes]
        _, read_s = _timed(lambda: list(store.iter_episodes(ids)))
        _, merge_s = _timed(lambda: store.stats(ids))
        size = sum(p.stat().st_size for p in (Path(tmp) / "home/dataset").rglob("*") if p.is_file())
        figures |= {
            "ingest_episodes_per_s": EPISODES / add_s,
            "ingest_scalar_samples_per_s": scalars / add_s,
            "read_episodes_per_s": EPISODES / read_s,
            "read_scalar_samples_per_s": scalars / read_s,
            "selection_stats_merge_ms": merge_s * 1e3,
            "dataset_mb": size / 2**20,
        }
        base = receipt.added[0]
        figures |= _catalog_figures(f"sqlite:///{Path(tmp) / 'bench-catalog.sqlite'}", base)
    for name, value in figures.items():
        print(f"{name:40s} {value:14,.2f}")
    return figures


if __name__ == "__main__":
    main()
