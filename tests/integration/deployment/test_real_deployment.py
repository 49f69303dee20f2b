"""A real deployment on loopback: ``dure consortium init``, ``coordinator up``, ``factory up``.

One consortium for the module: a real ``flower-superlink`` with TLS and SuperNode
authentication started by ``dure coordinator up`` (ledger and registry on a
throwaway PostgreSQL database), four real SuperNodes started by ``dure factory
up``, and a signed two-round job run through ``flwr run`` by ``dure coordinator
run-job``.  factory-c's policy forbids the job's purpose; factory-d's SuperNode
runs with d's registered SuperNode key but is operated by an impostor holding
another Ed25519 key (so it cannot sign for d).  A fifth SuperNode with a key
nobody registered tries to join.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.builders.federation import with_prohibited_purpose
from tests.integration.deployment.cluster import (
    DURE,
    Layout,
    Processes,
    free_ports,
    ledger,
    make_consortium,
    run_job,
    sign_job,
    start_consortium,
    throwaway_database,
)

from dure.cli.deployment_processes import flower_environment
from dure.policies.entries import LedgerEntry
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document
from dure.policies.supernode_key import generate_supernode_key
from dure.server.ledger.export import export_ledger, verify_export
from dure.server.ledger.sql import SqlLedgerStore

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SITES = ("factory-a", "factory-b", "factory-c", "factory-d")
JOB = "bc-deploy-1"


@dataclass(frozen=True)
class Deployment:
    """The consortium after the job ran."""

    layout: Layout
    processes: Processes
    database: str
    run: subprocess.CompletedProcess[str]
    entries: list[LedgerEntry]

    def of_kind(self, kind: str) -> list[Any]:
        """The ledger entries of one kind."""
        return [entry for entry in self.entries if entry.kind == kind]


def _impostor(layout: Layout, site: str) -> None:
    """Keep ``site``'s SuperNode key but sign with another Ed25519 key."""
    folder = layout.site(site)
    impostor = SigningKey.generate()
    impostor.save(folder / "keys" / "impostor.pem")
    value = UsagePolicy.from_canonical_bytes(_payload(folder / "policy.json"), source="policy")
    signed = sign_document("policy", value, impostor).to_json()
    (folder / "impostor-policy.json").write_bytes(signed)
    toml = (folder / "factory.toml").read_text()
    toml = toml.replace('key = "keys/site.pem"', 'key = "keys/impostor.pem"')
    toml = toml.replace('policy = "policy.json"', 'policy = "impostor-policy.json"')
    (folder / "factory.toml").write_text(toml)


def _payload(path: Path) -> bytes:
    from dure.policies.dsse import Envelope

    return Envelope.from_json(path.read_bytes()).payload


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    with throwaway_database() as database:
        layout = make_consortium(
            root / "consortium",
            SITES,
            database,
            {"factory-c": with_prohibited_purpose},
            {"round_timeout": "180.0", "hidden": "[8]"},
        )
        _impostor(layout, "factory-d")
        processes = Processes(root / "logs")
        try:
            start_consortium(processes, layout)
            job = sign_job(layout, rounds=2, job_id=JOB)
            run = run_job(layout, job, processes.logs / "run-job.log")
            entries = ledger(database)
            store = SqlLedgerStore.from_url(database, create=False)
            try:
                export_ledger(store, root / "export")
            finally:
                store.close()
            yield Deployment(layout, processes, database, run, entries)
        finally:
            processes.stop()


def test_the_job_runs_through_flwr_run_and_commits_every_round(deployment: Deployment) -> None:
    assert deployment.run.returncode == 0, (
        deployment.run.stdout[-4000:] + deployment.run.stderr[-4000:]
    )
    committed = deployment.of_kind("aggregate_committed")
    kinds = [entry.kind for entry in deployment.entries]
    log = (deployment.processes.logs / "run-job.log").read_text()[-6000:]
    assert [entry.round for entry in committed] == [1, 2], f"{kinds}\n{log}"
    for entry in committed:
        assert sorted(entry.contributors) == ["urn:dure:site:factory-a", "urn:dure:site:factory-b"]


def test_a_site_whose_policy_forbids_the_purpose_is_never_sampled(deployment: Deployment) -> None:
    refused = deployment.of_kind("site_refused")
    assert [entry.site for entry in refused] == ["urn:dure:site:factory-c"]
    assert any("prohibit" in reason for reason in refused[0].reasons)
    for opened in deployment.of_kind("round_opened"):
        assert "urn:dure:site:factory-c" not in opened.sites
    assert not (deployment.layout.site("factory-c") / "home" / "receipts").exists()


def test_a_supernode_with_another_sites_key_cannot_act_for_it(deployment: Deployment) -> None:
    rejected = deployment.of_kind("contribution_rejected")
    assert {entry.site for entry in rejected} == {"urn:dure:site:factory-d"}
    assert {entry.round for entry in rejected} == {1, 2}
    accepted = {entry.site for entry in deployment.of_kind("contribution_accepted")}
    assert "urn:dure:site:factory-d" not in accepted


def test_receipts_reach_the_contributors_and_the_export_verifies(deployment: Deployment) -> None:
    for site in ("factory-a", "factory-b"):
        assert list((deployment.layout.site(site) / "home" / "receipts").glob("*"))
    vkey = (deployment.layout.root / "coordinator" / "keys" / "ledger.vkey").read_text().strip()
    verified = verify_export(deployment.layout.root.parent / "export", vkey)
    assert verified.kinds["aggregate_committed"] == 2
    assert verified.kinds["site_registered"] == len(SITES)


def test_an_unregistered_supernode_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    key = tmp_path / "stranger.key"
    generate_supernode_key(key)
    layout = deployment.layout
    (port,) = free_ports(1)
    argv = [
        str(Path(DURE).parent / "flower-supernode"),
        "--superlink", f"127.0.0.1:{layout.superlink_port}",
        "--root-certificates", str(layout.root / "coordinator" / "pki" / "ca.crt"),
        "--auth-supernode-private-key", str(key),
        "--port", str(port),
        "--max-retries", "1",
    ]  # fmt: skip
    env = flower_environment(tmp_path / "flwr-home")
    log = tmp_path / "stranger.log"
    with log.open("wb") as out:  # a file, not a pipe: Flower's SuperExec child inherits it
        stranger = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            code = stranger.wait(300)
        finally:
            stranger.kill()
    assert code != 0
    assert "Failed to activate SuperNode" in log.read_text()
    superlink = deployment.processes.log("coordinator")
    assert "No SuperNode found with the given public key" in superlink
