"""``dure factory simulate`` then ``dure factory ingest``, driven through typer."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dure.cli.factory_ingest import register
from dure.client.errors import IngestError, ProfileError
from dure.client.store import EpisodeStore


def app() -> typer.Typer:
    root = typer.Typer()
    factory = typer.Typer()
    register(factory)
    root.add_typer(factory, name="factory")
    return root


def test_simulate_then_ingest(tmp_path: Path) -> None:
    runner = CliRunner()
    out, home = tmp_path / "out", tmp_path / "home"
    result = runner.invoke(
        app(),
        [
            "factory",
            "simulate",
            "--style",
            "mcap",
            "--tasks",
            "reach-v3",
            "--episodes",
            "2",
            "--max-steps",
            "10",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "site-profile.yaml").is_file()
    result = runner.invoke(
        app(),
        [
            "factory",
            "ingest",
            str(out / "bag"),
            "--profile",
            str(out / "site-profile.yaml"),
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "stored 2 episodes" in result.output
    with EpisodeStore.open(home, create=False) as store:
        assert len(store.select()) == 2


def test_bad_arguments_and_profiles_are_reported(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app(), ["factory", "simulate", "--style", "vhs", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--style" in result.output
    result = runner.invoke(
        app(),
        ["factory", "simulate", "--style", "csv", "--tasks", "juggle-v3", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2 and "juggle-v3" in result.output
    bad = tmp_path / "p.yaml"
    bad.write_text("format: rosbag\nfps: 80\n")
    result = runner.invoke(
        app(),
        ["factory", "ingest", str(tmp_path), "--profile", str(bad), "--home", str(tmp_path / "h")],
    )
    assert isinstance(result.exception, ProfileError)
    assert "p.yaml" in result.exception.message


@pytest.mark.parametrize("source", ["missing-dir"])
def test_a_missing_source_is_one_clear_error(tmp_path: Path, source: str) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    runner.invoke(
        app(),
        [
            "factory",
            "simulate",
            "--style",
            "csv",
            "--episodes",
            "1",
            "--max-steps",
            "5",
            "--out",
            str(out),
        ],
    )
    result = runner.invoke(
        app(),
        [
            "factory",
            "ingest",
            str(tmp_path / source),
            "--profile",
            str(out / "site-profile.yaml"),
            "--home",
            str(tmp_path / "h"),
        ],
    )
    assert isinstance(result.exception, IngestError)
    assert "no such file" in result.exception.message
