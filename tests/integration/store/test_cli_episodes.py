"""``dure factory episodes list | show | stats | export`` on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from tests.builders.episodes import make_episode
from typer.testing import CliRunner

from dure.cli.factory_episodes import register
from dure.client.errors import EpisodeNotFoundError, StoreError
from dure.client.store import DatasetReader, EpisodeStore

T0 = datetime(2025, 6, 1, tzinfo=UTC)
EPISODES = [
    make_episode(0, task="push", cell="c1", start=T0, tags=("sim",)),
    make_episode(1, task="reach", cell="c2", start=T0 + timedelta(days=1), success=False),
    make_episode(2, task="push", cell="c2", start=T0 + timedelta(days=2), tags=("sim", "x")),
]
runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    factory = typer.Typer()
    register(factory)
    app.add_typer(factory, name="factory")
    return app


@pytest.fixture
def home(tmp_path: Path) -> Path:
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(EPISODES)
    return tmp_path / "home"


def _run(*args: str, home: Path | None = None) -> str:
    env = {"COLUMNS": "250"}
    if home is not None:
        env["DURE_FACTORY_HOME"] = str(home)
    result = runner.invoke(_app(), ["factory", "episodes", *args], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_list_with_filters(home: Path) -> None:
    everything = _run("list", home=home)
    assert all(e.episode_id in everything for e in EPISODES)
    assert "3 episodes" in everything
    pushes = _run("list", "--home", str(home), "--task", "push", "--tag", "sim")
    assert "2 episodes" in pushes and EPISODES[1].episode_id not in pushes
    failures = _run("list", "--failure", home=home)
    assert "1 episodes" in failures and EPISODES[1].episode_id in failures
    window = _run("list", "--since", "2025-06-01T12:00", "--until", "2025-06-03T00:01Z", home=home)
    assert "2 episodes" in window and EPISODES[0].episode_id not in window
    assert "1 episodes" in _run("list", "--cell", "c1", "--source", "scripted", home=home)


def test_bad_options_are_usage_errors(home: Path) -> None:
    env = {"DURE_FACTORY_HOME": str(home)}
    result = runner.invoke(_app(), ["factory", "episodes", "list", "--since", "soon"], env=env)
    assert result.exit_code == 2 and "ISO 8601" in result.output
    result = runner.invoke(_app(), ["factory", "episodes", "list", "--source", "magic"], env=env)
    assert result.exit_code == 2 and "teleoperation" in result.output


def test_show(home: Path) -> None:
    out = _run("show", EPISODES[2].episode_id, home=home)
    assert EPISODES[2].commitment().hex() in out
    assert "push" in out and "observation.state" in out and "50 at 80 Hz" in out


def test_stats(home: Path) -> None:
    out = _run("stats", "--task", "push", "--feature", "action", home=home)
    assert "2 episodes" in out and "action (100 frames)" in out
    assert "observation.state" not in out
    assert "no episodes match" in _run("stats", "--tag", "nothing", home=home)


def test_export(home: Path, tmp_path: Path) -> None:
    out = _run("export", "--out", str(tmp_path / "exp"), "--cell", "c2", home=home)
    assert "exported 2 episodes" in out
    assert [e.episode_id for e in DatasetReader(tmp_path / "exp").iter_episodes()] == [
        EPISODES[1].episode_id,
        EPISODES[2].episode_id,
    ]


def test_errors_surface_as_dure_errors(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["factory", "episodes", "show", "nope", "--home", str(home)])
    assert isinstance(result.exception, EpisodeNotFoundError)
    result = runner.invoke(
        _app(), ["factory", "episodes", "list", "--home", str(tmp_path / "missing")]
    )
    assert isinstance(result.exception, StoreError)
    assert not (tmp_path / "missing").exists()
