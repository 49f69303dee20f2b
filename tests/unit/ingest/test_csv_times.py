"""CSV time columns: checked and bounded before anything is sized from them.

One out-of-order ``Zeit_ms`` (1 ms among Unix milliseconds) used to size the
episode's frame grid from the file's minimum to its maximum time (a terabyte); now
the importer refuses the row, and the shared standardisation step bounds every
importer's episodes by ``validation.max_episode_s`` before the grid is allocated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.builders.csv_profile import csv_profile
from tests.builders.store import tree_digest

from dure.client.episodes.profile import SiteProfile
from dure.client.errors import IngestError
from dure.client.importers.ingest import ingest, iter_episodes
from dure.client.store import EpisodeStore

T0_MS = 1_741_932_000_000

PROFILE: dict[str, Any] = csv_profile("Zeit_ms", "pos_mm", "mm", resampling="linear")


def profile(**changes: Any) -> SiteProfile:
    return SiteProfile.model_validate({**PROFILE, **changes})


def write_csv(path: Path, times_ms: list[Any], header: str = "Zeit_ms,pos_mm,cmd") -> Path:
    rows = [header] + [f"{t},{i * 10.0},{i / 100}" for i, t in enumerate(times_ms)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def regular(n: int = 21, step_ms: int = 50) -> list[Any]:
    return [T0_MS + i * step_ms for i in range(n)]


def refused(source: Path, site: SiteProfile, home: Path) -> IngestError:
    """Ingest ``source`` into ``home`` expecting a refusal that leaves the store as it was."""
    with EpisodeStore.open(home) as store:
        before = tree_digest(home)
        with pytest.raises(IngestError) as info:
            ingest(source, site, store.add)
        assert tree_digest(home) == before
        assert store.select() == []
    assert info.value.hint
    return info.value


def test_a_regular_export_ingests(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "a.csv", regular())
    (episode,) = iter_episodes(source, profile())
    assert episode.n_frames == 11
    state = episode.frames.observation["observation.state"][:, 0]
    np.testing.assert_allclose(state, np.arange(11) * 0.02, rtol=1e-6)  # 10 mm per row


def test_one_row_stamped_1_ms_is_refused_by_row_before_any_grid(tmp_path: Path) -> None:
    times = regular()
    times[7] = 1
    error = refused(write_csv(tmp_path / "a.csv", times), profile(), tmp_path / "home")
    assert "goes backwards at data row 8" in error.message
    assert "'Zeit_ms'" in error.message


def test_a_first_row_stamped_1_ms_is_refused_by_the_span_bound(tmp_path: Path) -> None:
    times = regular()
    times[0] = 1  # increasing, but 55 years before the next row
    error = refused(write_csv(tmp_path / "a.csv", times), profile(), tmp_path / "home")
    assert "max_episode_s" in error.message
    assert "segmentation" in error.hint and "max_episode_s" in error.hint


def test_a_jump_of_days_is_refused_and_raising_the_limit_is_the_documented_way(
    tmp_path: Path,
) -> None:
    times = regular()
    times[-1] = times[-2] + 3 * 86_400_000
    source = write_csv(tmp_path / "a.csv", times)
    error = refused(source, profile(), tmp_path / "home")
    assert "max_episode_s = 3600 s" in error.message
    # with the limit raised the span is allowed, and the gap check names the hole
    relaxed = profile(validation={"max_episode_s": 4 * 86_400, "max_gap_s": 0.5})
    with pytest.raises(IngestError, match="no sample for"):
        list(iter_episodes(source, relaxed))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "empty or NaN time at data row 4"),
        ("1e300", "more than 146 years"),
        ("-1e300", "more than 146 years"),
        ("NaN", "empty or NaN time"),
    ],
)
def test_empty_nan_and_out_of_range_times_are_refused(
    tmp_path: Path, value: str, words: str
) -> None:
    times: list[Any] = regular()
    times[3] = value
    error = refused(write_csv(tmp_path / "a.csv", times), profile(), tmp_path / "home")
    assert words in error.message


def test_rows_stamped_at_the_same_time_are_kept_and_the_last_wins(tmp_path: Path) -> None:
    times = regular()
    times[3] = times[2]  # two rows at 100 ms: pos_mm 20 then 30
    source = write_csv(tmp_path / "a.csv", times)
    for method in ("zoh", "linear"):
        (episode,) = iter_episodes(source, profile(resampling=method))
        state = episode.frames.observation["observation.state"][:, 0]
        assert state[1] == pytest.approx(0.03), method
