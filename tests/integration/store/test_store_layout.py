"""The dataset on disk is the LeRobot v3.0 layout, with Dure's fields as extensions."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tests.builders.episodes import make_episode, make_episodes

from dure.client.store import EpisodeStore

LEROBOT_INFO_KEYS = {
    "codebase_version",
    "robot_type",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "fps",
    "splits",
    "data_path",
    "video_path",
    "features",
}
LEROBOT_EPISODE_COLUMNS = {
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
    "meta/episodes/chunk_index",
    "meta/episodes/file_index",
}


def _store(tmp_path: Path) -> Path:
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([*make_episodes(3, force=True), make_episode(5, task="push", force=True)])
    return tmp_path / "home" / "dataset"


def test_files_are_where_lerobot_expects_them(tmp_path: Path) -> None:
    root = _store(tmp_path)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        "data/chunk-000/file-000.parquet",
        "meta/dure/stats_state.json",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
    ]


def test_info_json(tmp_path: Path) -> None:
    info = json.loads((_store(tmp_path) / "meta/info.json").read_text())
    assert set(info) >= LEROBOT_INFO_KEYS
    assert info["codebase_version"] == "v3.0"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (info["fps"], info["total_episodes"], info["total_frames"], info["total_tasks"]) == (
        80,
        4,
        200,
        2,
    )
    assert info["splits"] == {"train": "0:4"}
    assert info["chunks_size"] == 1000
    state = info["features"]["observation.state"]
    assert (state["dtype"], state["shape"], state["names"][:2]) == ("float32", [39], ["q0", "q1"])
    assert info["features"]["observation.force"]["dure.units"] == ["N", "N", "N"]
    for name in ("index", "episode_index", "frame_index", "task_index"):
        assert info["features"][name] == {"dtype": "int64", "shape": [1], "names": None}
    assert info["dure"]["action_space"]["mode"] == "delta"


def test_data_file_columns_match_info(tmp_path: Path) -> None:
    root = _store(tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert table.column_names == list(info["features"])
    assert table.schema.field("observation.state").type == pa.list_(pa.float32(), 39)
    assert table.column("index").to_pylist() == list(range(200))
    assert table.column("frame_index").to_pylist()[48:52] == [48, 49, 0, 1]
    assert table.column("task_index").to_pylist()[-1] == 1
    assert pq.ParquetFile(root / "data/chunk-000/file-000.parquet").num_row_groups == 4


def test_episodes_tasks_and_stats(tmp_path: Path) -> None:
    root = _store(tmp_path)
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
    assert set(episodes.column_names) >= LEROBOT_EPISODE_COLUMNS
    row = episodes.to_pylist()[3]
    assert (row["episode_index"], row["tasks"], row["length"]) == (3, ["push"], 50)
    assert (row["dataset_from_index"], row["dataset_to_index"]) == (150, 200)
    assert row["stats/observation.state/count"] == [50]
    assert {"dure/context", "dure/outcome", "dure/provenance", "dure/commitment"} <= set(row)
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0, 1], "task": ["pick-place", "push"]}
    assert b"pandas" in tasks.schema.metadata
    stats = json.loads((root / "meta/stats.json").read_text())
    assert sorted(stats) == ["action", "observation.force", "observation.state"]
    assert set(stats["action"]) == {
        "min",
        "max",
        "mean",
        "std",
        "count",
        "q01",
        "q10",
        "q50",
        "q90",
        "q99",
    }
    assert stats["action"]["count"] == [200]


def test_appending_adds_files_and_keeps_old_ones(tmp_path: Path) -> None:
    root = _store(tmp_path)
    old_data = (root / "data/chunk-000/file-000.parquet").read_bytes()
    old_meta = (root / "meta/episodes/chunk-000/file-000.parquet").read_bytes()
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add([make_episode(20, force=True)])
    assert (root / "data/chunk-000/file-000.parquet").read_bytes() == old_data
    assert (root / "meta/episodes/chunk-000/file-000.parquet").read_bytes() == old_meta
    new = pq.read_table(root / "data/chunk-000/file-001.parquet")
    assert new.column("episode_index").to_pylist()[0] == 4
    assert new.column("index").to_pylist()[0] == 200
    info = json.loads((root / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (5, 250)
    row = pq.read_table(root / "meta/episodes/chunk-000/file-001.parquet").to_pylist()[0]
    assert (row["data/file_index"], row["meta/episodes/file_index"]) == (1, 1)


def test_large_ingests_roll_over_to_new_data_files(tmp_path: Path) -> None:
    episodes = make_episodes(5)
    with EpisodeStore.open(tmp_path / "home", data_file_mb=0.001) as store:
        store.add(episodes)
        names = sorted(p.name for p in (tmp_path / "home/dataset/data/chunk-000").iterdir())
        assert names == [f"file-{i:03d}.parquet" for i in range(5)]
        assert [e.episode_id for e in store.iter_episodes([e.episode_id for e in episodes])] == [
            e.episode_id for e in episodes
        ]
        assert store.read(episodes[3].episode_id).commitment() == episodes[3].commitment()
