"""``dure factory simulate`` then ``dure factory ingest``, driven through typer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.builders.csv_profile import csv_profile
from tests.builders.store import tree_digest
from typer.testing import CliRunner

from dure.cli.factory_ingest import register
from dure.client.errors import IngestError, ProfileError, StoreError
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


# --- hostile files, termination, metadata changes and markup (hardening issue) ---

CSV_PROFILE: dict[str, Any] = csv_profile(
    "Zeit_ms", "pos_mm", "mm", resampling="linear", csv={"pattern": "zyklus_*.csv"}
)


def write_exports(folder: Path, count: int, rows: int = 21) -> Path:
    """``count`` small CSV exports (distinct values, so distinct episodes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        lines = ["Zeit_ms,pos_mm,cmd"] + [
            f"{1_741_932_000_000 + 60_000 * k + 50 * i},{k + i},{i / 100}" for i in range(rows)
        ]
        (folder / f"zyklus_{k:05d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_profile(path: Path, **changes: Any) -> Path:
    from dure.client.episodes.profile import SiteProfile
    from dure.client.importers.profile_io import dump_profile

    profile = SiteProfile.model_validate({**CSV_PROFILE, **changes})
    path.write_text(dump_profile(profile), encoding="utf-8")
    return path


def dure_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dure")), *args]


def test_a_fifo_matching_the_pattern_is_refused_without_blocking(tmp_path: Path) -> None:
    source = write_exports(tmp_path / "exports", 1)
    os.mkfifo(source / "zyklus_99999.csv")  # nobody ever writes to it: opening it blocks
    profile = write_profile(tmp_path / "profile.yaml")
    home = tmp_path / "home"
    command = dure_command(
        "factory", "ingest", str(source), "--profile", str(profile), "--home", str(home)
    )
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    except subprocess.TimeoutExpired:  # the child is killed by run()
        pytest.fail("ingest hung on a FIFO")
    assert done.returncode != 0
    assert "FIFO" in done.stderr and "zyklus_99999.csv" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not home.exists() or not any((home / "staging").iterdir())


def test_sigterm_mid_ingest_rolls_back_and_leaves_no_staging(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "profile.yaml")
    home = tmp_path / "home"
    first = write_exports(tmp_path / "first", 1)
    result = CliRunner().invoke(
        app(), ["factory", "ingest", str(first), "--profile", str(profile), "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    before = tree_digest(home)
    big = write_exports(tmp_path / "big", 3000)
    command = dure_command(
        "factory", "ingest", str(big), "--profile", str(profile), "--home", str(home)
    )
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not any((home / "staging").iterdir()):  # the ingest has begun staging
            assert child.poll() is None, child.communicate()
            time.sleep(0.005)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal.SIGTERM, stderr
    assert "rolled back" in stderr and "Traceback" not in stderr
    assert not any((home / "staging").iterdir())
    assert tree_digest(home) == before
    with EpisodeStore.open(home, create=False) as store:
        assert len(store.select()) == 1


def test_a_new_tag_on_re_ingest_is_refused_then_applied_with_update_metadata(
    tmp_path: Path,
) -> None:
    from dure.client.federation.selection import select_episodes
    from dure.policies.policy import Constraint
    from dure.policies.selector import EpisodeSelector

    runner = CliRunner()
    source = write_exports(tmp_path / "exports", 2)
    home = tmp_path / "home"
    plain = write_profile(tmp_path / "plain.yaml")
    confidential = write_profile(
        tmp_path / "confidential.yaml",
        context={**CSV_PROFILE["context"], "tags": ["customer-confidential"]},
    )

    def run(profile: Path, *extra: str) -> Any:
        arguments = ["factory", "ingest", str(source), "--profile", str(profile)]
        return runner.invoke(app(), [*arguments, "--home", str(home), *extra])

    assert run(plain).exit_code == 0
    before = tree_digest(home)
    refused = run(confidential)
    assert isinstance(refused.exception, StoreError)
    assert "different metadata" in refused.exception.message
    assert "--update-metadata" in refused.exception.hint
    assert tree_digest(home) == before
    applied = run(confidential, "--update-metadata")
    assert applied.exit_code == 0, applied.output
    assert "updated 2 episodes' metadata" in " ".join(applied.output.split())
    term = Constraint.model_validate(
        {
            "leftOperand": "dure:tag",
            "operator": "isNoneOf",
            "rightOperand": ["customer-confidential"],
        }
    )
    with EpisodeStore.open(home, create=False) as store:
        assert len(store.select()) == 2
        assert select_episodes(store, EpisodeSelector.intersect([term])).empty


def test_markup_in_paths_is_printed_literally(tmp_path: Path) -> None:
    source = write_exports(tmp_path / "line[/]3 [bold]", 1)
    home = tmp_path / "home[/]"
    profile = write_profile(tmp_path / "profile.yaml")
    result = CliRunner().invoke(
        app(), ["factory", "ingest", str(source), "--profile", str(profile), "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    assert f"in {home}" in result.output.replace("\n", "")  # wrapped before the path
    assert f"ingesting {source.name} " in result.output  # "]3 [bold]", literally
