"""Property tests over LeRobot metadata: whatever info.json and the episode rows say.

For arbitrary path templates (absolute, ``../``, attribute and index access, unknown
fields, conversions, format specs, stray braces), arbitrary ``info.json`` values
(wrong types, huge integers, deep nesting, missing keys) and arbitrary episode rows,
the real ingest into a real store must either store episodes read from inside the
dataset or refuse with :class:`IngestError` (the store untouched): never another
exception, never a value read from outside.

"Never read outside" is checked with a decoy: beside each dataset lies a copy of it
with different values (another simulation seed), at every place a template can reach
with ``../`` or an absolute path.  Any stored frame must be one of the dataset's own.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.unit.ingest.lerobot_cases import (
    VERSIONS,
    copy,
    ingest_or_refuse,
    write_datasets,
)

from dure.client.errors import IngestError
from dure.client.sim.factory import simulate_episodes
from dure.client.sim.styles import STYLES
from dure.client.sim.writers import write_native

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEMPLATES = {
    "lerobot-v21": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
    "lerobot-v3": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
}


class Sources:
    """The honest datasets, their decoys, and the frames the honest ones hold."""

    def __init__(self, root: Path) -> None:
        self.datasets = write_datasets(root / "honest")
        decoy = simulate_episodes(["push-v3"], 2, seed=99, max_steps=8)
        self.decoys = {}
        for version in VERSIONS:
            write_native(root / "decoy" / version, decoy, STYLES[version])
            self.decoys[version] = root / "decoy" / version
        self.frames: dict[str, set[bytes]] = {}
        with tempfile.TemporaryDirectory() as scratch:
            for version in VERSIONS:
                stored = ingest_or_refuse(self.datasets[version], version, Path(scratch) / version)
                assert not isinstance(stored, IngestError), stored
                self.frames[version] = {row for e in stored for row in _states(e)}

    @contextmanager
    def layout(self, version: str) -> Iterator[tuple[Path, Path]]:
        """A scratch folder: ``<s>/ds`` (the dataset) beside decoys it could escape to.

        Decoys lie at ``<s>/<decoy files>``, ``<s>/outside/<decoy files>`` and
        ``<s>/ds/..`` paths alike, so ``../``, ``../outside/`` and the absolute
        ``<s>/outside/`` all find a readable LeRobot file.
        """
        with tempfile.TemporaryDirectory() as scratch:
            base = Path(scratch)
            for name in ("data", "meta"):
                shutil.copytree(self.decoys[version] / name, base / name)
            copy(self.decoys[version], base / "outside")
            yield copy(self.datasets[version], base / "ds"), base


def _states(episode: Any) -> list[bytes]:
    """Each frame's ``observation.state`` as bytes: an episode drawn from any rows of the
    dataset (a slice, another order) holds only the dataset's own frames, never a decoy's."""
    return [bytes(row.tobytes()) for row in episode.frames.observation["observation.state"]]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    return Sources(tmp_path_factory.mktemp("lerobot-properties"))


def check(root: Path, version: str, sources: Sources, home: Path) -> None:
    """The contract: stored frames are the dataset's own, or a clean IngestError."""
    result = ingest_or_refuse(root, version, home)
    if isinstance(result, IngestError):
        return
    for episode in result:
        outside = [row for row in _states(episode) if row not in sources.frames[version]]
        assert not outside, f"{len(outside)} frames came from outside the dataset"
        assert episode.provenance.source_uri.startswith(str(root))


def _edit_info(root: Path, edit: dict[str, Any], drop: list[str]) -> None:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info.update(edit)
    for key in drop:
        info.pop(key, None)
    path.write_text(json.dumps(info), encoding="utf-8")


# -- path templates ----------------------------------------------------------------

FIELDS = ("episode_index", "episode_chunk", "chunk_index", "file_index", "video_key", "x", "0", "")
ACCESS = ("", "", ".real", ".__class__.__name__", "[0]", ".numerator")
SPECS = ("", ":03d", ":06d", ":d", ":99999999d", ":>9", ":x", ":{x}", ":,", ":03", ":0100d")
CONVERSIONS = ("", "", "!r", "!s", "!a")
field = st.builds(
    lambda f, a, c, s: "{" + f + a + c + s + "}",
    st.sampled_from(FIELDS),
    st.sampled_from(ACCESS),
    st.sampled_from(CONVERSIONS),
    st.sampled_from(SPECS),
)
literal = st.text(alphabet="ab/.-_{}\\\0:!~", max_size=8)
PREFIXES = ("", "", "../", "../outside/", "./", "data/../", "data/../../", "//", "ABS/", "~/")


@st.composite
def templates(draw: st.DrawFn, version: str) -> str:
    """Honest templates with an escape in front, or arbitrary literal/field mixes."""
    prefix = draw(st.sampled_from(PREFIXES))
    if draw(st.booleans()):
        body = TEMPLATES[version]
        if draw(st.booleans()):
            body = body.replace(
                ":03d}", draw(st.sampled_from(ACCESS)) + draw(st.sampled_from(SPECS)) + "}", 1
            )
    else:
        body = "".join(draw(st.lists(st.one_of(literal, field), max_size=6)))
    return prefix + body


@pytest.mark.parametrize("version", VERSIONS)
@SETTINGS
@given(data=st.data(), key=st.sampled_from(["data_path", "video_path"]))
@example(data=None, key="data_path")
def test_any_path_template_reads_only_inside_or_is_refused(
    version: str, data: st.DataObject | None, key: str, sources: Sources
) -> None:
    template = "../" + TEMPLATES[version] if data is None else data.draw(templates(version))
    with sources.layout(version) as (root, base):
        template = template.replace("ABS/", f"{base}/outside/")
        _edit_info(root, {key: template}, [])
        check(root, version, sources, base / "home")


# -- info.json values ---------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**4000, -(2**63), 2**64, 0, -1])
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["v2.1", "v3.0", "v3", TEMPLATES["lerobot-v21"], TEMPLATES["lerobot-v3"]]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
INFO_KEYS = (
    "codebase_version",
    "features",
    "data_path",
    "video_path",
    "chunks_size",
    "fps",
    "robot_type",
    "total_episodes",
    "total_frames",
    "splits",
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("version", VERSIONS)
@SETTINGS
@given(
    edit=st.dictionaries(st.sampled_from(INFO_KEYS), json_values, max_size=3),
    drop=st.lists(st.sampled_from(INFO_KEYS), max_size=2),
    feature_edit=st.one_of(st.none(), json_values),
    depth=st.one_of(st.none(), st.integers(1, 200_000)),
)
@example(edit={}, drop=[], feature_edit=None, depth=100_000)
def test_any_info_json_imports_or_is_refused(
    version: str,
    edit: dict[str, Any],
    drop: list[str],
    feature_edit: Any,
    depth: int | None,
    sources: Sources,
) -> None:
    with sources.layout(version) as (root, base):
        info_path = root / "meta" / "info.json"
        if depth is not None:
            text = info_path.read_text(encoding="utf-8")
            info_path.write_text(text[:-1] + f', "deep": {_nested(depth)}}}', encoding="utf-8")
        else:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if feature_edit is not None:
                info["features"]["observation.state"]["names"] = feature_edit
            info.update(edit)
            for key in drop:
                info.pop(key, None)
            info_path.write_text(json.dumps(info), encoding="utf-8")
        check(root, version, sources, base / "home")


# -- episode rows ---------------------------------------------------------------------

EPISODE_KEYS = ("episode_index", "tasks", "length", "start_time", "task_index")


@SETTINGS
@given(
    edits=st.lists(
        st.dictionaries(st.sampled_from(EPISODE_KEYS), json_values, max_size=3),
        min_size=2,
        max_size=2,
    ),
    extra=st.lists(st.one_of(json_values.map(json.dumps), st.text(max_size=20)), max_size=2),
)
def test_any_v21_episode_lines_import_or_are_refused(
    edits: list[dict[str, Any]], extra: list[str], sources: Sources
) -> None:
    with sources.layout("lerobot-v21") as (root, base):
        path = root / "meta" / "episodes.jsonl"
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        out = [json.dumps(line | edit) for line, edit in zip(lines, edits, strict=True)] + extra
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        check(root, "lerobot-v21", sources, base / "home")


V3_INDEX_COLUMNS = (
    "episode_index",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
column_values = st.one_of(
    st.lists(
        st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, 8, 16]), min_size=2, max_size=2
    ),
    st.lists(st.none() | st.integers(0, 20), min_size=2, max_size=2),
    st.lists(st.text(max_size=4), min_size=2, max_size=2),
    st.lists(st.floats(), min_size=2, max_size=2),
)


@SETTINGS
@given(columns=st.dictionaries(st.sampled_from(V3_INDEX_COLUMNS), column_values, max_size=3))
def test_any_v3_episode_rows_import_or_are_refused(
    columns: dict[str, list[Any]], sources: Sources
) -> None:
    with sources.layout("lerobot-v3") as (root, base):
        path = next((root / "meta" / "episodes").rglob("*.parquet"))
        table = pq.read_table(path)
        for name, values in columns.items():
            position = table.column_names.index(name)
            table = table.set_column(position, name, pa.array(values))
        pq.write_table(table, path)
        check(root, "lerobot-v3", sources, base / "home")


def test_a_symlink_out_of_the_dataset_anywhere_is_refused(sources: Sources) -> None:
    """Every file and folder of the dataset, in turn, replaced by a link to the decoy's."""
    for version in VERSIONS:
        with sources.layout(version) as (root, base):
            names = sorted(p.relative_to(root) for p in root.rglob("*"))
        for name in names:
            with sources.layout(version) as (root, base):
                target = root / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink()
                target.symlink_to(base / "outside" / name)
                result = ingest_or_refuse(root, version, base / "home")
                assert isinstance(result, IngestError), f"{version}: {name} linked out was read"
