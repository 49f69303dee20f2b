"""A factory killed mid-round: the round completes above the minimum; the site rejoins.

Three honest sites, a three-round job needing two contributors.  As soon as the
ledger shows round 1 open, factory-c's SuperNode, worker and any task process
are killed with ``SIGKILL`` (a machine losing power) and ``dure factory up`` is
started again.  Flower keeps the crashed node "online" until its heartbeat
lapses (up to 60 s) and only then lets the restarted SuperNode in again, under
the same registered key and node id.  Round 1 commits with factory-a and
factory-b (above the minimum), with or without factory-c; every round of the
job is ledgered as committed.  Once factory-c is back, a second job runs and
factory-c contributes to it: the site rejoined without any manual step.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.deployment.cluster import (
    Processes,
    ledger,
    make_consortium,
    run_job,
    sign_job,
    start_consortium,
    start_factory,
    throwaway_database,
)

from dure.policies.entries import AggregateCommitted, LedgerEntry, RoundOpened

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SITES = ("factory-a", "factory-b", "factory-c")


def _wait_round_open(database: str, job: str, round: int, done: threading.Event) -> None:
    while not done.is_set():
        entries = ledger(database)
        if any(isinstance(e, RoundOpened) and (e.job_id, e.round) == (job, round) for e in entries):
            return
        time.sleep(0.5)
    raise AssertionError(f"the run ended before round {round} opened")


def _committed(entries: list[LedgerEntry], job: str) -> dict[int, Any]:
    return {e.round: e for e in entries if isinstance(e, AggregateCommitted) and e.job_id == job}


def _story(entries: list[LedgerEntry]) -> list[tuple[Any, ...]]:
    return [
        (e.kind, getattr(e, "round", ""), getattr(e, "site", ""), getattr(e, "reasons", ""))
        for e in entries
    ]


def test_a_factory_killed_mid_round_rejoins_later(tmp_path: Path) -> None:
    run = {"local_steps": "3", "round_timeout": "180.0", "hidden": "[8]"}
    with throwaway_database() as database:
        layout = make_consortium(tmp_path / "consortium", SITES, database, {}, run)
        processes = Processes(tmp_path / "logs")
        outcome: list[Any] = []
        done = threading.Event()
        try:
            start_consortium(processes, layout)
            first = sign_job(layout, rounds=3, job_id="bc-fault-1")

            def runner() -> None:
                try:
                    outcome.append(run_job(layout, first, processes.logs / "run-job-1.log"))
                finally:
                    done.set()

            thread = threading.Thread(target=runner)
            thread.start()
            _wait_round_open(database, "bc-fault-1", 1, done)
            processes.crash("factory-c")
            start_factory(processes, layout, "factory-c")
            thread.join()
            processes.wait_for("factory-c", r"SuperNode ID: \d+", timeout=300)
            second = sign_job(layout, rounds=1, job_id="bc-fault-2")
            outcome.append(run_job(layout, second, processes.logs / "run-job-2.log"))
        finally:
            processes.stop()
        entries = ledger(database)
    story = _story(entries)
    assert [result.returncode for result in outcome] == [0, 0], story
    urn = "urn:dure:site:{}".format
    crashed = _committed(entries, "bc-fault-1")
    assert sorted(crashed) == [1, 2, 3], story
    assert {urn("factory-a"), urn("factory-b")} <= set(crashed[1].contributors), story
    rejoined = _committed(entries, "bc-fault-2")
    assert urn("factory-c") in rejoined[1].contributors, story
