"""The warm worker as its SuperNode's executor: real Flower processes, no process per task.

A real ``flower-superlink --insecure`` and two real ``flower-supernode --insecure
--isolation process`` on loopback (random free ports, ``FLWR_HOME`` in the test's
folder, telemetry off), each SuperNode's tasks taken by its factory's worker
(``python -m dure.client.federation.worker --runtime-api HOST:PORT``).  The
consortium's files come from ``dure consortium init``
(:func:`~tests.integration.deployment.cluster.make_consortium`) and jobs run with
``flwr run`` on the app ``dure coordinator run-job`` writes
(:class:`~tests.integration.leak.plaintext.PlainCluster`).

A two-round job commits both rounds with both factories, ledgers the same
entry kinds per round as the in-process ClientApp, while no ``flwr-clientapp``
(nor ``flower-superexec``) process exists under any SuperNode or worker; the
same scan finds the SuperLink's ``flwr-serverapp``, so it can fail.  Then one
worker is killed while it trains: the round is ledgered as aborted with that
factory's missing reply, and the run ends instead of hanging.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.builders.federation import build_consortium, plain_policy, with_min_contributors
from tests.integration.deployment.cluster import (
    Processes,
    free_ports,
    make_consortium,
    sign_job,
)
from tests.integration.leak.plaintext import (
    BIN,
    PlainCluster,
    _superlink_argv,
    _wait_port,
    _write_connection,
    descendants,
)

from dure.cli.deployment_config import load_coordinator_config, load_factory_config
from dure.cli.deployment_coordinator import sync_coordinator_registry
from dure.cli.deployment_factory import node_config_argument
from dure.cli.deployment_processes import flower_environment
from dure.client.federation.trainer import LocalResult, LocalTask, train_policy
from dure.policies.canonical import JsonValue
from dure.policies.entries import LedgerEntry, RoundOpened
from dure.server.ledger.export import export_ledger, verify_export
from dure.server.ledger.sql import SqlLedgerStore

pytestmark = [pytest.mark.slow]

SITES = ("factory-a", "factory-b")
ROOT = Path(__file__).resolve().parents[3]
TRAINER = "tests.integration.federation.test_worker_executor:marking_trainer"
MARK = "DURE_TEST_TRAINING_MARK"
FORBIDDEN = ("flwr-clientapp", "flower-superexec")


def marking_trainer(task: LocalTask) -> LocalResult:
    """Dure's trainer; appends a line to ``$DURE_TEST_TRAINING_MARK`` first, then waits 2 s.

    The wait keeps the worker inside the task long enough for the test to kill it there.
    """
    if path := os.environ.get(MARK):
        with open(path, "a") as handle:
            handle.write(f"{time.time()}\n")
        time.sleep(2.0)
    return train_policy(task)


@dataclass
class ExecutorCluster:
    """The running consortium and where each factory's worker marks its training."""

    cluster: PlainCluster
    marks: dict[str, Path]
    workers: dict[str, tuple[list[str], dict[str, str]]]

    def start_worker(self, site: str) -> None:
        """Start ``site``'s worker (again) and wait until it is ready."""
        argv, env = self.workers[site]
        self.cluster.processes.start(f"worker-{site}", argv, env)
        self.cluster.processes.wait_for(f"worker-{site}", r"dure\.worker ready", timeout=300)

    def start_job(self, job: Path) -> subprocess.Popen[str]:
        """``flwr run`` of ``job`` (the app ``run-job`` writes), in the background."""
        cluster = self.cluster
        return subprocess.Popen(
            cluster.flwr_run(cluster.app(job)),
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def start_job_until_training(self, job_id: str, site: str) -> subprocess.Popen[str]:
        """Start a one-round job; return once ``site``'s worker is inside its 2 s training."""
        before = self.trained(site)
        running = self.start_job(sign_job(self.cluster.layout, rounds=1, job_id=job_id))
        while self.trained(site) == before:
            assert running.poll() is None, running.communicate()[0][-4000:]
            time.sleep(0.05)
        return running

    def trained(self, site: str) -> int:
        """How many training tasks ``site``'s worker has started."""
        path = self.marks[site]
        return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def executors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExecutorCluster]:
    root = tmp_path_factory.mktemp("executor")
    run = {"round_timeout": "20.0", "hidden": "[8]", "connect_wait": "10.0"}
    run["query_timeout"] = "15.0"  # a dead worker's site answers no receipts query
    layout = make_consortium(root / "consortium", SITES, "sqlite:///state/coordinator.db", {}, run)
    config = load_coordinator_config(layout.coordinator_toml)
    sync_coordinator_registry(config)
    env = flower_environment(config.run.flwr_home)
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("", "policies", "client", "server"))
    _write_connection(config.run.flwr_home, layout.superlink_port)
    processes = Processes(root / "logs")
    marks = {site: root / f"{site}.trained" for site in SITES}
    workers: dict[str, tuple[list[str], dict[str, str]]] = {}
    try:
        processes.start("superlink", _superlink_argv(layout, config), env)
        _wait_port(processes, "superlink", layout.superlink_port)
        for site, port in zip(SITES, free_ports(len(SITES)), strict=True):
            node = node_config_argument(
                load_factory_config(layout.factory_toml(site)).node_config()
            )
            worker = [sys.executable, "-m", "dure.client.federation.worker", "--node-config", node]
            worker += ["--address", str(root / "run" / f"{site}.sock"), "--trainer", TRAINER]
            worker += ["--runtime-api", f"127.0.0.1:{port}"]
            workers[site] = (worker, {**env, MARK: str(marks[site])})
            processes.start(f"worker-{site}", *workers[site])
            supernode = [str(BIN / "flower-supernode"), "--insecure", "--isolation", "process"]
            supernode += ["--superlink", f"127.0.0.1:{layout.superlink_port}"]
            supernode += ["--host", "127.0.0.1", "--port", str(port), "--node-config", node]
            processes.start(site, supernode, env)
        for site in SITES:
            processes.wait_for(f"worker-{site}", r"dure\.worker ready", timeout=300)
            processes.wait_for(site, r"SuperNode ID: \d+", timeout=300)
        yield ExecutorCluster(PlainCluster(layout, config, processes, env, {}), marks, workers)
    finally:
        processes.stop()


def _by_round(entries: list[LedgerEntry], job: str) -> list[tuple[int, list[str]]]:
    """Each round of ``job`` (0: before the first) with its entries' kinds, sorted."""
    rounds: dict[int, list[str]] = {}
    for entry in entries:
        if getattr(entry, "job_id", None) == job:
            rounds.setdefault(getattr(entry, "round", 0), []).append(entry.kind)
    return [(number, sorted(kinds)) for number, kinds in sorted(rounds.items())]


def _in_process_kinds(root: Path) -> list[tuple[int, list[str]]]:
    """The same two-site, two-round job run in-process (Flower Messages, no processes)."""

    def policy(site: str) -> dict[str, JsonValue]:
        return with_min_contributors(plain_policy(site), 2)  # as make_consortium's

    consortium = build_consortium(root, SITES, policy=policy, episodes=3, frames=20)
    job = consortium.job(rounds=2, min_contributors=2)
    consortium.coordinator().run(consortium.grid(), job)
    job_id = {getattr(e, "job_id", "") for e in consortium.entries()} - {""}
    return _by_round(consortium.entries(), job_id.pop())


def _scan(processes: Processes, job: subprocess.Popen[str]) -> dict[str, set[str]]:
    """Until ``job`` ends: the commands seen under the SuperLink, the SuperNodes and workers."""
    seen: dict[str, set[str]] = {name: set() for name in processes.children}
    while job.poll() is None:
        for name, child in processes.children.items():
            for command in descendants(child.pid).values():
                seen[name].add(command)
        time.sleep(0.1)
    return seen


def test_a_job_runs_on_the_workers_without_a_process_per_task(
    executors: ExecutorCluster, tmp_path: Path
) -> None:
    cluster = executors.cluster
    job = sign_job(cluster.layout, rounds=2, job_id="bc-executor-1")
    running = executors.start_job(job)
    seen = _scan(cluster.processes, running)
    output = running.communicate(timeout=60)[0]
    assert running.returncode == 0, output[-4000:]
    for name, commands in seen.items():
        if name != "superlink":
            assert not [c for c in commands if any(f in c for f in FORBIDDEN)], (name, commands)
    assert any("flwr-serverapp" in c for c in seen["superlink"]), seen["superlink"]  # control
    assert {site: executors.trained(site) for site in SITES} == dict.fromkeys(SITES, 2)
    entries = cluster.entries()
    committed = [e for e in entries if e.kind == "aggregate_committed"]
    assert [(e.round, sorted(e.contributors)) for e in committed] == [  # type: ignore[attr-defined]
        (r, [f"urn:dure:site:{s}" for s in SITES]) for r in (1, 2)
    ]
    assert _by_round(entries, "bc-executor-1") == _in_process_kinds(tmp_path / "in-process")
    store = SqlLedgerStore.from_url(cluster.config.service.database, create=False)
    try:
        export_ledger(store, tmp_path / "export")
    finally:
        store.close()
    vkey = (cluster.layout.root / "coordinator" / "keys" / "ledger.vkey").read_text().strip()
    assert verify_export(tmp_path / "export", vkey).kinds["aggregate_committed"] == 2


def test_a_worker_stopped_while_training_answers_its_task_before_it_exits(
    executors: ExecutorCluster,
) -> None:
    cluster = executors.cluster
    running = executors.start_job_until_training("bc-executor-stop", "factory-a")
    worker = cluster.processes.children["worker-factory-a"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, cluster.processes.log("worker-factory-a")[-3000:]
    output = running.communicate(timeout=120)[0]
    assert running.returncode == 0, output[-4000:]
    entries = [e for e in cluster.entries() if getattr(e, "job_id", "") == "bc-executor-stop"]
    committed = [e for e in entries if e.kind == "aggregate_committed"]
    assert [sorted(e.contributors) for e in committed] == [  # type: ignore[attr-defined]
        [f"urn:dure:site:{s}" for s in SITES]
    ], output[-4000:]
    executors.start_worker("factory-a")  # for the tests after this one


def test_a_worker_killed_while_training_is_ledgered_and_the_run_ends(
    executors: ExecutorCluster,
) -> None:
    cluster = executors.cluster
    running = executors.start_job_until_training("bc-executor-2", "factory-b")
    os.kill(cluster.processes.children["worker-factory-b"].pid, signal.SIGKILL)
    output = running.communicate(timeout=300)[0]  # the round's timeout is 20 s
    entries = [e for e in cluster.entries() if getattr(e, "job_id", "") == "bc-executor-2"]
    story = [(e.kind, getattr(e, "round", ""), getattr(e, "site", "")) for e in entries]
    assert any(isinstance(e, RoundOpened) and e.round == 1 for e in entries), (story, output)
    rejected = {e.site: e.reasons for e in entries if e.kind == "contribution_rejected"}  # type: ignore[attr-defined]
    assert "no reply within 20 s" in " ".join(rejected["urn:dure:site:factory-b"]), story
    assert not [e for e in entries if e.kind == "aggregate_committed"], story
    assert cluster.processes.children["worker-factory-a"].poll() is None  # still serving
