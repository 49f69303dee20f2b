"""Property tests over the CSV importer's metadata: time columns, column names, file types.

Whatever the export holds, ingest either stores valid episodes or raises the
importer's :class:`IngestError` with a bounded message and a hint, leaving the store
byte for byte as it was; never another exception, never a frame grid sized by a
wrong timestamp (the generated spans reach 10^18 ms, so an unbounded grid would
raise MemoryError), never a hang on a file that is not a regular file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.builders.csv_profile import csv_profile
from tests.builders.store import tree_digest

from dure.client.episodes.profile import UNIT_TABLE, SiteProfile
from dure.client.episodes.standardise import MAX_EPISODE_FRAMES
from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest
from dure.client.store import EpisodeStore

MAX_MESSAGE = 2_000
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE: dict[str, Any] = csv_profile("t", "pos")


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dure-csv-props-") as root:
        yield Path(root)


def check_ingest(source: Path, profile: SiteProfile, home: Path) -> None:
    """Ingest ``source``: valid episodes, or IngestError and the store unchanged."""
    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        try:
            receipt = ingest(source, profile, store.add)
        except IngestError as exc:
            assert 0 < len(exc.message) <= MAX_MESSAGE, exc.message[:200]
            assert exc.hint and len(exc.hint) <= MAX_MESSAGE
            assert tree_digest(home) == before
            assert store.select() == []
            return
        limit = min(profile.validation.max_episode_s * profile.fps + 2, MAX_EPISODE_FRAMES)
        for summary in receipt.added:
            assert 2 <= summary.n_frames <= limit
            store.read(summary.episode_id).validate()


def write_rows(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


times = st.one_of(
    st.integers(-(10**20), 10**20),
    st.integers(0, 10**18),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "NaN", "inf", "-inf", "abc", "1e400", "0x10", "1,5", " 7 "]),
)


@st.composite
def time_columns(draw: st.DrawFn) -> list[Any]:
    """Mostly regular 50 ms steps, with arbitrary values, duplicates and jumps mixed in."""
    n = draw(st.integers(1, 40))
    start = draw(st.integers(-(10**15), 10**15))
    column: list[Any] = [start + 50 * i for i in range(n)]
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(["value", "duplicate", "jump"]))
        if kind == "value":
            column[at] = draw(times)
        elif kind == "duplicate" and at > 0:
            column[at] = column[at - 1]
        elif kind == "jump":
            jump = draw(st.sampled_from([-1, 1])) * 10 ** draw(st.integers(0, 18))
            column[at:] = [v + jump if isinstance(v, int) else v for v in column[at:]]
    return column


@SETTINGS
@given(column=time_columns(), unit=st.sampled_from(["s", "ms", "us", "ns"]))
# the case: one row stamped 1 ms among Unix milliseconds (a 139 GB grid)
@example(column=[1, 1_741_932_000_000, 1_741_932_000_050], unit="ms")
# the largest span the time range allows: 4e9 s, 4e10 frames
@example(column=[0, 50, 4 * 10**18, 4 * 10**18 + 50], unit="ns")
# days between two rows: refused by the span bound (not by memory)
@example(column=[0, 50, 3 * 86_400_000, 3 * 86_400_000 + 50], unit="ms")
def test_any_time_column_imports_or_is_refused_cleanly(column: list[Any], unit: str) -> None:
    profile = SiteProfile.model_validate({**BASE, "time": {"column": "t", "unit": unit}})
    with workspace() as root:
        rows = [[t, i * 1.0, i / 100] for i, t in enumerate(column)]
        source = write_rows(root / "a.csv", ["t", "pos", "cmd"], rows)
        check_ingest(source, profile, root / "home")


names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and "\x00" not in s)


@SETTINGS
@given(
    time_name=names,
    pos_name=names,
    header_pos=names,
    unit=st.sampled_from(sorted(UNIT_TABLE)),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_any_column_names_and_units_import_or_are_refused_cleanly(
    time_name: str, pos_name: str, header_pos: str, unit: str, delimiter: str
) -> None:
    """Profile column names in any script (quoted as needed); the header may not match."""
    features = {
        "observation.state": [{"fields": [pos_name], "names": ["x"], "unit": unit}],
        "action": [{"fields": ["cmd"], "names": ["dx"]}],
    }
    try:
        profile = SiteProfile.model_validate(
            {
                **BASE,
                "features": features,
                "time": {"column": time_name, "unit": "ms"},
                "csv": {"delimiter": delimiter},
            }
        )
    except ValueError:  # the profile's own validation refused the names
        return
    with workspace() as root:
        path = root / "a.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow([time_name, header_pos, "cmd"])
            writer.writerows([[1_000 + 50 * i, float(i), i / 100] for i in range(21)])
        check_ingest(path, profile, root / "home")


def good_rows() -> list[list[Any]]:
    return [[1_741_932_000_000 + 50 * i, float(i), i / 100] for i in range(21)]


def add_fifo(path: Path) -> None:
    os.mkfifo(path)


def add_directory(path: Path) -> None:
    path.mkdir()


def add_outside_symlink(path: Path) -> None:
    outside = path.parent.parent / "outside.csv"
    write_rows(outside, ["t", "pos", "cmd"], good_rows())
    path.symlink_to(outside)


def add_empty(path: Path) -> None:
    path.write_bytes(b"")


def add_junk(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


def add_socket(path: Path) -> None:
    import socket

    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    finally:
        server.close()  # the socket file stays


FILE_KINDS = {
    "fifo": add_fifo,
    "directory": add_directory,
    "symlink-outside": add_outside_symlink,
    "empty": add_empty,
    "binary-junk": add_junk,
    "socket": add_socket,
}


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
@pytest.mark.parametrize("as_source", [False, True], ids=["in-folder", "as-source"])
def test_file_types_are_refused_without_opening_or_blocking(
    kind: str, as_source: bool, tmp_path: Path
) -> None:
    """A hostile file among good exports, or passed as SOURCE itself: refused cleanly.

    A FIFO nobody writes to would block ``open`` forever: reaching the assertion at
    all shows it was never opened in blocking mode.
    """
    folder = tmp_path / "data" / "exports"
    folder.mkdir(parents=True)
    write_rows(folder / "a.csv", ["t", "pos", "cmd"], good_rows())
    hostile = folder / "z.csv"
    FILE_KINDS[kind](hostile)
    profile = SiteProfile.model_validate(BASE)
    home = tmp_path / "home"
    if as_source and kind == "symlink-outside":  # the operator named the link: it is read
        check_ingest(hostile, profile, home)
        with EpisodeStore.open(home) as store:
            assert len(store.select()) == 1
        return
    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        with pytest.raises(IngestError) as info:
            ingest(hostile if as_source else folder, profile, store.add)
        assert tree_digest(home) == before
    message = info.value.message
    assert len(message) <= MAX_MESSAGE and info.value.hint
    assert "z.csv" in message or str(hostile) in message, message
