"""``dure demo`` end to end on small settings: real simulation, ingest, Flower, ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.ledger.independent_verifier import verify_export_folder
from typer.testing import CliRunner

from dure.cli.main import app


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's and run_simulation's own
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # Ray leaves its raylet to exit on its own
def test_demo_runs_and_writes_the_documented_summary(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    args = ["demo", "--out", str(out), "--rounds", "2", "--demos", "3", "--eval-episodes", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"sites", "success", "rounds", "dp", "ledger", "wall_s"}
    sites = summary["sites"]
    assert sorted(sites) == [f"factory-{c}" for c in "abcde"]
    assert sites["factory-e"]["admitted"] is False
    assert any("prohibition" in reason for reason in sites["factory-e"]["reasons"])
    assert all(sites[s]["admitted"] for s in ("factory-a", "factory-b", "factory-c", "factory-d"))
    for site in sites.values():
        assert set(site) == {"admitted", "reasons", "tasks", "episodes", "local_only_success"}
        assert len(site["tasks"]) == 2 and site["episodes"] == 6
        assert set(site["tasks"]) <= set(site["local_only_success"])
    federated_tasks = set(summary["success"]["federated"])
    assert federated_tasks == set(summary["success"]["pooled"])
    assert federated_tasks.isdisjoint(sites["factory-e"]["tasks"])  # its data never used
    assert summary["rounds"] == 2 and summary["dp"] is None
    export = Path(summary["ledger"]["export_dir"])
    lines = (export / "entries.jsonl").read_text().splitlines()
    assert summary["ledger"]["size"] == len(lines)
    verified = verify_export_folder(export, (export / "public-key").read_text().strip())
    assert len(verified.entries) == summary["ledger"]["size"]
