"""Hostile LeRobot metadata: paths outside the dataset, evaluated templates, deep nesting.

Each test is a regression for something a hostile ``meta/info.json`` (or episode
metadata) could do before: read a data file from anywhere (absolute or ``../``
``data_path``, a symlink out of the folder), evaluate attribute access in a template,
print a 100 MB error line from a width spec, crash with ``RecursionError`` or
``OverflowError``.  Each runs the real ingest into a real store
(:func:`~tests.unit.ingest.lerobot_cases.ingest_or_refuse`), or the real ``dure``
command.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from tests.unit.ingest.lerobot_cases import (
    copy,
    edit_info,
    ingest_or_refuse,
    write_datasets,
)
from typer.testing import CliRunner

from dure.cli.main import app
from dure.client.errors import IngestError
from dure.client.importers.lerobot_paths import PathTemplate, clip, inside
from dure.client.importers.profile_io import dump_profile
from dure.client.importers.source_digest import source_digest
from dure.client.sim.factory import site_profile
from dure.client.sim.styles import STYLES
from dure.policies.errors import CATALOG

V21_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V3_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
PATHS = {"lerobot-v21": V21_PATH, "lerobot-v3": V3_PATH}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_datasets(tmp_path_factory.mktemp("lerobot"))


@pytest.fixture(params=["lerobot-v21", "lerobot-v3"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _with_outside_copy(datasets: dict[str, Path], version: str, tmp_path: Path) -> Path:
    """The dataset at tmp/ds, and a full copy at tmp/outside for an escape to reach."""
    copy(datasets[version], tmp_path / "outside")
    return copy(datasets[version], tmp_path / "ds")


def _refusal(root: Path, version: str, home: Path) -> IngestError:
    result = ingest_or_refuse(root, version, home)
    assert isinstance(result, IngestError), f"ingested {len(result)} episodes"
    return result


def test_the_untouched_datasets_ingest(
    datasets: dict[str, Path], version: str, tmp_path: Path
) -> None:
    result = ingest_or_refuse(copy(datasets[version], tmp_path / "ds"), version, tmp_path / "h")
    assert not isinstance(result, IngestError), result
    assert len(result) == 2


@pytest.mark.parametrize("escape", ["../outside/", "absolute"])
def test_a_data_path_outside_the_dataset_is_refused(
    datasets: dict[str, Path], version: str, escape: str, tmp_path: Path
) -> None:
    root = _with_outside_copy(datasets, version, tmp_path)
    prefix = f"{tmp_path}/outside/" if escape == "absolute" else escape
    edit_info(root, data_path=prefix + PATHS[version])
    error = _refusal(root, version, tmp_path / "home")
    assert "not a relative path inside the dataset" in error.message


def test_a_video_path_outside_the_dataset_is_refused(
    datasets: dict[str, Path], version: str, tmp_path: Path
) -> None:
    root = copy(datasets[version], tmp_path / "ds")
    edit_info(root, video_path="../videos/{video_key}/{episode_index:06d}.mp4")
    error = _refusal(root, version, tmp_path / "home")
    assert "video_path" in error.message


def test_a_data_file_symlinked_out_of_the_dataset_is_refused(
    datasets: dict[str, Path], version: str, tmp_path: Path
) -> None:
    root = _with_outside_copy(datasets, version, tmp_path)
    target = next((root / "data").rglob("*.parquet"))
    target.unlink()
    target.symlink_to(tmp_path / "outside" / target.relative_to(root))
    error = _refusal(root, version, tmp_path / "home")
    assert "outside the source folder" in error.message


def test_a_symlinked_meta_folder_is_refused(
    datasets: dict[str, Path], version: str, tmp_path: Path
) -> None:
    root = _with_outside_copy(datasets, version, tmp_path)
    shutil.rmtree(root / "meta")
    (root / "meta").symlink_to(tmp_path / "outside" / "meta", target_is_directory=True)
    _refusal(root, version, tmp_path / "home")


def test_inside_refuses_a_symlink_that_leaves_the_root(tmp_path: Path) -> None:
    """The importer's own check, behind the digest's (which refuses the same link first)."""
    (tmp_path / "root" / "data").mkdir(parents=True)
    (tmp_path / "secret.parquet").write_bytes(b"x")
    (tmp_path / "root" / "data" / "f.parquet").symlink_to(tmp_path / "secret.parquet")
    (tmp_path / "root" / "data" / "ok.parquet").symlink_to("../real.parquet")
    (tmp_path / "root" / "real.parquet").write_bytes(b"y")
    with pytest.raises(IngestError, match="resolves outside the dataset folder"):
        inside(tmp_path / "root", "data/f.parquet", "here")
    assert (
        inside(tmp_path / "root", "data/ok.parquet", "here")
        == (tmp_path / "root" / "real.parquet").resolve()
    )
    with pytest.raises(IngestError, match="not a regular file"):
        inside(tmp_path / "root", "data", "here")


def test_a_symlink_inside_the_dataset_is_followed_and_hashed(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    """A link to a file in the folder is allowed; the digest covers the bytes read."""
    root = copy(datasets["lerobot-v21"], tmp_path / "ds")
    target = root / "data" / "chunk-000" / "episode_000001.parquet"
    target.rename(root / "moved.parquet")
    target.symlink_to("../../moved.parquet")
    stored = ingest_or_refuse(root, "lerobot-v21", tmp_path / "home")
    assert not isinstance(stored, IngestError), stored
    assert {e.provenance.source_sha256 for e in stored} == {source_digest(root)}
    before = source_digest(root)
    (root / "moved.parquet").write_bytes((root / "moved.parquet").read_bytes() + b"\0")
    assert source_digest(root) != before


@pytest.mark.parametrize(
    "field", ["{chunk_index.real:03d}", "{chunk_index.__class__.__name__}", "{chunk_index[0]}"]
)
def test_attribute_and_index_access_in_a_template_are_refused(
    datasets: dict[str, Path], field: str, tmp_path: Path
) -> None:
    """``{chunk_index.real}`` formats like ``{chunk_index}``: it used to be evaluated."""
    root = copy(datasets["lerobot-v3"], tmp_path / "ds")
    edit_info(root, data_path=f"data/chunk-{field}/file-{{file_index.real:03d}}.parquet")
    error = _refusal(root, "lerobot-v3", tmp_path / "home")
    assert "is not one of ['chunk_index', 'file_index']" in error.message


@pytest.mark.parametrize("spec", ["99999999d", ">9", "x", "03d}{", "{x}", "!r"])
def test_a_width_or_other_format_spec_is_refused_in_a_short_message(
    datasets: dict[str, Path], spec: str, tmp_path: Path
) -> None:
    root = copy(datasets["lerobot-v21"], tmp_path / "ds")
    field = "{episode_index" + (spec if spec.startswith("!") else ":" + spec) + "}"
    edit_info(root, data_path=f"data/chunk-000/episode_{field}.parquet")
    error = _refusal(root, "lerobot-v21", tmp_path / "home")
    assert len(error.message) < 400, len(error.message)
    assert re.search(r"is not an integer format|conversion !|field '' is not one of", error.message)


def test_a_long_template_is_echoed_cut(datasets: dict[str, Path], tmp_path: Path) -> None:
    root = copy(datasets["lerobot-v21"], tmp_path / "ds")
    edit_info(root, data_path="x" * 2_000_000 + "{episode_index:06d}")
    error = _refusal(root, "lerobot-v21", tmp_path / "home")
    assert "characters" in error.message and len(error.message) < 400


def test_the_templates_lerobot_writes_parse() -> None:
    fields = frozenset({"episode_chunk", "episode_index", "video_key"})
    for text in (
        V21_PATH,
        "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    ):
        PathTemplate.parse(text, key="k", fields=fields, default=text, where="w")
    parsed = PathTemplate.parse(
        V3_PATH,
        key="k",
        fields=frozenset({"chunk_index", "file_index"}),
        default=V3_PATH,
        where="w",
    )
    assert parsed.render(chunk_index=1, file_index=12) == "data/chunk-001/file-012.parquet"


@pytest.mark.parametrize("where", ["info", "episodes.jsonl"])
def test_deeply_nested_metadata_is_a_one_line_ingest_error(
    datasets: dict[str, Path], where: str, tmp_path: Path
) -> None:
    root = copy(datasets["lerobot-v21"], tmp_path / "ds")
    deep = "[" * 100_000 + "]" * 100_000
    if where == "info":
        (root / "meta" / "info.json").write_text(deep, encoding="utf-8")
    else:
        (root / "meta" / "episodes.jsonl").write_text(deep + "\n", encoding="utf-8")
    error = _refusal(root, "lerobot-v21", tmp_path / "home")
    assert "nests too deeply" in error.message


def test_dure_factory_ingest_exits_with_the_catalog_code_on_nested_info(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    root = copy(datasets["lerobot-v3"], tmp_path / "ds")
    (root / "meta" / "info.json").write_text("{" + '"a":{' * 100_000 + "}" * 100_001)
    profile = tmp_path / "site-profile.yaml"
    profile.write_text(dump_profile(site_profile(STYLES["lerobot-v3"])), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["factory", "ingest", str(root), "--profile", str(profile), "--home", str(tmp_path / "h")],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == CATALOG["client.ingest"].exit_code, result.output
    assert "nests too deeply" in result.output
    assert "Traceback" not in result.output and "RecursionError" not in result.output


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("episode_index", 10**4000),
        ("episode_index", "3"),
        ("episode_index", True),
        ("episode_index", -1),
        ("start_time", "9999-12-31T23:59:59+00:00"),
        ("start_time", "0001-01-01T00:00:00+14:00"),
    ],
)
def test_out_of_range_episode_metadata_is_an_ingest_error(
    datasets: dict[str, Path], key: str, value: object, tmp_path: Path
) -> None:
    root = copy(datasets["lerobot-v21"], tmp_path / "ds")
    path = root / "meta" / "episodes.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0][key] = value
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    error = _refusal(root, "lerobot-v21", tmp_path / "home")
    assert key in error.message


@pytest.mark.parametrize("value", ["abc", 0, -5, 2.5, [1], 10**4000])
def test_a_bad_chunks_size_is_an_ingest_error(
    datasets: dict[str, Path], value: object, tmp_path: Path
) -> None:
    root = copy(datasets["lerobot-v21"], tmp_path / "ds")
    edit_info(root, chunks_size=value)
    error = _refusal(root, "lerobot-v21", tmp_path / "home")
    assert "chunks_size" in error.message


def test_clip_cuts_long_and_unprintable_values() -> None:
    assert clip("x" * 10) == repr("x" * 10)
    assert clip("x" * 10_000).endswith("(10002 characters)")
    assert len(clip(10**10_000)) < 200
