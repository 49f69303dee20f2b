"""The coordinator killed mid-round and restarted: the ledger stays one log, the run resumes.

A real ``flower-superlink`` and two real ``flower-supernode`` processes
(plaintext, :mod:`tests.integration.leak.plaintext`; transport does not matter
here) run a signed three-round job through ``flwr run`` with the ledger on
SQLite.  Once round 2 is ledgered as opened and before it is aggregated, the
test ``SIGKILL``\\ s the run's ``flwr-serverapp`` process (a descendant of the
SuperLink the test started), then runs the same signed job again.

Expected (``dure.server.federation.resume``): the entries written before the
kill are all still there, at the same indexes, and the checkpoint signed before
the kill is consistent with the new one (RFC 9162 proof); ``job_signed``,
each ``site_admitted`` and each ``statistics_shared`` appear once (the restart
took the same decisions, so nothing new is ledgered); round 2 is closed as
aborted (a ``contribution_rejected`` per sampled site, reason "the coordinator
restarted…", no aggregate); each round is opened once; round 3 is played from
round 1's committed model and committed; no entry appears twice.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from tests.integration.deployment.cluster import sign_job
from tests.integration.leak.plaintext import PlainCluster, descendants, kill, plain_cluster

from dure.policies.checkpoint import Checkpoint, check_consistent, open_checkpoint
from dure.policies.entries import (
    AggregateCommitted,
    ContributionRejected,
    JobSigned,
    LedgerEntry,
    RoundOpened,
    SiteAdmitted,
    StatisticsShared,
)
from dure.policies.note import Ed25519Verifier
from dure.server.federation.resume import RESTARTED, interrupted
from dure.server.ledger.export import export_ledger, verify_export
from dure.server.ledger.sql import SqlLedgerStore

pytestmark = [pytest.mark.slow]

SITES = ("factory-a", "factory-b")
SITE_URNS = tuple(f"urn:dure:site:{site}" for site in SITES)
JOB = "bc-restart-1"
KILLED_ROUND = 2
Entry = TypeVar("Entry", bound=LedgerEntry)


@dataclass(frozen=True)
class Restart:
    """The ledger before the kill and after the second run."""

    cluster: PlainCluster
    before: list[bytes]
    before_checkpoint: str
    killed: str
    rerun: subprocess.CompletedProcess[str]
    after: list[bytes]
    after_checkpoint: str
    entries: list[LedgerEntry]

    def of(self, kind: type[Entry]) -> list[Entry]:
        """This job's entries of ``kind``."""
        return [e for e in self.entries if isinstance(e, kind)]


def _ledger(cluster: PlainCluster) -> tuple[list[bytes], str]:
    store = SqlLedgerStore.from_url(cluster.config.service.database, create=False)
    try:
        latest = store.latest_checkpoint()
        return store.entries(0, store.size()), latest.note if latest is not None else ""
    finally:
        store.close()


def _round_open(cluster: PlainCluster, run: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until round ``KILLED_ROUND`` is opened and not yet concluded."""
    deadline = time.monotonic() + timeout
    while KILLED_ROUND not in interrupted(cluster.entries(), JOB):
        if run.poll() is not None or time.monotonic() > deadline:
            log = cluster.processes.log("flwr-run-1")[-3000:]
            kinds = [e.kind for e in cluster.entries()]
            raise AssertionError(f"round {KILLED_ROUND} never seen open: {kinds}\n{log}")
        time.sleep(0.2)


def _kill_serverapp(cluster: PlainCluster) -> str:
    running = {
        pid: command
        for pid, command in descendants(cluster.superlink_pid()).items()
        if "flwr-serverapp" in command
    }
    assert len(running) == 1, running
    ((pid, command),) = running.items()
    kill(pid)
    return command


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    root = tmp_path_factory.mktemp("restart")
    run = {"round_timeout": "300.0", "hidden": "[8]"}
    with plain_cluster(root, SITES, run) as cluster:
        job = sign_job(cluster.layout, rounds=3, job_id=JOB, local_steps=2)
        cluster.processes.start("flwr-run-1", cluster.flwr_run(cluster.app(job)), cluster.env)
        first = cluster.processes.children["flwr-run-1"]
        _round_open(cluster, first, timeout=480)
        killed = _kill_serverapp(cluster)
        before, before_checkpoint = _ledger(cluster)
        assert KILLED_ROUND in interrupted(cluster.entries(), JOB), (
            "the round ended before the kill"
        )
        time.sleep(5)  # let flwr run notice, then stop it: the run it streams is dead
        if first.poll() is None:
            first.terminate()
            first.wait(60)
        rerun = cluster.run_job(job)
        after, after_checkpoint = _ledger(cluster)
        store = SqlLedgerStore.from_url(cluster.config.service.database, create=False)
        try:
            export_ledger(store, root / "export")
        finally:
            store.close()
        entries = [LedgerEntry.from_bytes(raw) for raw in after]
        yield Restart(
            cluster,
            before,
            before_checkpoint,
            killed,
            rerun,
            after,
            after_checkpoint,
            [e for e in entries if getattr(e, "job_id", JOB) == JOB],
        )


def _vkey(restart: Restart) -> str:
    return (restart.cluster.layout.root / "coordinator" / "keys" / "ledger.vkey").read_text()


def test_the_second_run_ends_cleanly(restart: Restart) -> None:
    assert restart.rerun.returncode == 0, (
        restart.rerun.stdout[-4000:] + restart.rerun.stderr[-4000:]
    )
    assert "flwr-serverapp" in restart.killed


def test_nothing_written_before_the_kill_is_lost_or_forked(restart: Restart) -> None:
    assert restart.after[: len(restart.before)] == restart.before
    verifier = Ed25519Verifier.from_vkey(_vkey(restart).strip())
    old = open_checkpoint(restart.before_checkpoint, verifier)
    new = open_checkpoint(restart.after_checkpoint, verifier)
    assert isinstance(old, Checkpoint) and new.size == len(restart.after) > old.size
    store = SqlLedgerStore.from_url(restart.cluster.config.service.database, create=False)
    try:
        check_consistent(old, new, store.consistency_proof(old.size, new.size))
    finally:
        store.close()
    verified = verify_export(restart.cluster.layout.root.parent / "export", _vkey(restart).strip())
    assert verified.kinds["aggregate_committed"] == 2


def test_no_entry_is_duplicated(restart: Restart) -> None:
    assert len(set(restart.after)) == len(restart.after)
    assert len(restart.of(JobSigned)) == 1
    assert sorted(e.site for e in restart.of(SiteAdmitted)) == sorted(SITE_URNS)
    assert sorted(e.site for e in restart.of(StatisticsShared)) == sorted(SITE_URNS)
    opened = [e.round for e in restart.of(RoundOpened)]
    assert opened == [1, 2, 3]


def test_the_interrupted_round_is_recorded_as_aborted(restart: Restart) -> None:
    closing = [e for e in restart.of(ContributionRejected) if e.round == KILLED_ROUND]
    assert sorted(e.site for e in closing) == sorted(SITE_URNS)
    assert all(e.reasons == (RESTARTED,) for e in closing)
    assert interrupted(restart.entries, JOB) == {}
    assert all(e.round != KILLED_ROUND for e in restart.of(AggregateCommitted))


def test_the_run_resumes_from_the_last_committed_model(restart: Restart) -> None:
    committed = restart.of(AggregateCommitted)
    assert [e.round for e in committed] == [1, 3]
    assert committed[1].parent_model == committed[0].model_digest
    resumed = [e for e in restart.of(RoundOpened) if e.round == 3]
    assert resumed[0].parent_model == committed[0].model_digest
    assert sorted(committed[1].contributors) == sorted(SITE_URNS)
    Path(restart.cluster.processes.logs / "kinds.txt").write_text(
        "\n".join(e.kind for e in restart.entries)
    )
