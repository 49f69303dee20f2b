"""A real consortium on loopback for the deployment tests: files, databases, processes.

:func:`make_consortium` runs ``dure consortium init`` (random free ports), points
the coordinator at a throwaway PostgreSQL database, fills each factory's store
with a few tiny episodes and re-signs each site's policy (the sites' own
choice).  :class:`Processes` starts ``dure coordinator up`` and ``dure factory
up`` as an operator would, each with its output in a log file, and stops them
all with ``SIGTERM``.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from tests.builders.episodes import make_episode
from tests.builders.federation import with_min_contributors

from dure.client.store.store import EpisodeStore
from dure.policies.canonical import JsonValue
from dure.policies.entries import LedgerEntry
from dure.policies.examples import example_job_value, example_policy_value
from dure.policies.job import DEFAULT_TRAINING, JobManifest
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document
from dure.server.ledger.sql import SqlLedgerStore

__all__ = [
    "Layout",
    "Processes",
    "free_ports",
    "ledger",
    "make_consortium",
    "run_job",
    "sign_job",
    "start_consortium",
    "start_factory",
    "throwaway_database",
]

ADMIN_URL = os.environ.get("DURE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DURE = str(Path(sys.executable).parent / "dure")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Create a fresh PostgreSQL database for one test module; drop it afterwards."""
    name = f"dure_deploy_{secrets.token_hex(6)}"
    admin = create_engine(
        ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Layout:
    """Where ``dure consortium init`` put things."""

    root: Path
    sites: tuple[str, ...]
    superlink_port: int
    service_port: int

    @property
    def coordinator_toml(self) -> Path:
        """The coordinator's config."""
        return self.root / "coordinator" / "coordinator.toml"

    def site(self, name: str) -> Path:
        """A site's folder."""
        return self.root / "sites" / name

    def factory_toml(self, name: str) -> Path:
        """A site's config."""
        return self.site(name) / "factory.toml"


def make_consortium(
    root: Path,
    sites: Sequence[str],
    database: str,
    policies: dict[str, Callable[[dict[str, JsonValue]], dict[str, JsonValue]]],
    run: dict[str, str],
) -> Layout:
    """Init the consortium, use ``database``, fill the stores, re-sign the policies."""
    ports = free_ports(2 + len(sites))
    argv = [DURE, "consortium", "init", str(root), "--sites", ",".join(sites)]
    argv += ["--superlink-address", f"127.0.0.1:{ports[0]}"]
    argv += ["--service-address", f"127.0.0.1:{ports[1]}"]
    subprocess.run([*argv, "--supernode-port", "1"], check=True, capture_output=True)
    layout = Layout(root, tuple(sites), ports[0], ports[1])
    coordinator = layout.coordinator_toml.read_text()
    coordinator = coordinator.replace(
        'database = "sqlite:///state/coordinator.db"', f'database = "{database}"'
    )
    for key, value in {"connect_wait": "60.0", **run}.items():  # [run] is the last table
        coordinator, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", coordinator)
        coordinator += "" if count else f"{key} = {value}\n"
    layout.coordinator_toml.write_text(coordinator)
    now = datetime.now(UTC).replace(microsecond=0)
    for index, name in enumerate(sites):
        toml = layout.factory_toml(name)
        toml.write_text(re.sub(r"(?m)^port = .*$", f"port = {ports[2 + index]}", toml.read_text()))
        _episodes(layout.site(name) / "home", name, index)
        policy = example_policy_value(name, members=list(sites), issued=now, dp_epsilon=None)
        policy = with_min_contributors(policy, 2)
        _resign(layout, name, policies.get(name, _same)(policy))
    return layout


def _same(policy: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return policy


def _episodes(home: Path, site: str, index: int) -> None:
    with EpisodeStore.open(home) as store:
        store.add(make_episode(1000 * index + seed, site=site, n_frames=20) for seed in range(3))


def _resign(layout: Layout, site: str, value: dict[str, JsonValue]) -> None:
    key = SigningKey.load(layout.site(site) / "keys" / "site.pem")
    signed = sign_document("policy", UsagePolicy.from_value(value), key).to_json()
    (layout.site(site) / "policy.json").write_bytes(signed)
    (layout.root / "coordinator" / "registry" / "policies" / f"{site}.json").write_bytes(signed)


def sign_job(layout: Layout, rounds: int, job_id: str, local_steps: int = 3) -> Path:
    """Sign a job for every site (no DP, two contributors) with the operator's key.

    Its ``training`` is the recommended one with ``local_steps`` steps a round (few,
    so rounds are quick: these tests are about processes, not learning).
    """
    value: Any = example_job_value(
        members=list(layout.sites),
        rounds=rounds,
        issued=datetime.now(UTC).replace(microsecond=0),
        dp=False,
    )
    value.update(job_id=job_id, min_contributors=2)
    value["training"] = {**DEFAULT_TRAINING.model_dump(mode="json"), "local_steps": local_steps}
    value["aggregation"]["norm_bound"] = "1000.0"
    operator = SigningKey.load(layout.root / "operator" / "operator.pem")
    path = layout.root / f"{job_id}.json"
    path.write_bytes(sign_document("job", JobManifest.from_value(value), operator).to_json())
    return path


def start_consortium(processes: Processes, layout: Layout) -> None:
    """``dure coordinator up``, then ``dure factory up`` for every site; wait until online."""
    processes.start(
        "coordinator", [DURE, "coordinator", "up", "--config", str(layout.coordinator_toml)]
    )
    processes.wait_for("coordinator", r"Uvicorn running on http://")
    for site in layout.sites:
        start_factory(processes, layout, site)
    for site in layout.sites:  # an operator runs jobs once the sites are online
        processes.wait_for(site, r"SuperNode ID: \d+", timeout=300)


def start_factory(processes: Processes, layout: Layout, site: str) -> None:
    """``dure factory up`` for ``site``."""
    processes.start(site, [DURE, "factory", "up", "--config", str(layout.factory_toml(site))])


def run_job(layout: Layout, job: Path, log: Path) -> subprocess.CompletedProcess[str]:
    """``dure coordinator run-job``; its output also goes to ``log``."""
    argv = [DURE, "coordinator", "run-job", "--config", str(layout.coordinator_toml)]
    done = subprocess.run(
        [*argv, "--job", str(job)], capture_output=True, text=True, timeout=900, check=False
    )
    log.write_text(done.stdout + done.stderr)
    return done


def ledger(database: str) -> list[LedgerEntry]:
    """Every entry of the ledger in ``database``."""
    store = SqlLedgerStore.from_url(database, create=False)
    try:
        return [LedgerEntry.from_bytes(raw) for raw in store.entries(0, store.size())]
    finally:
        store.close()


@dataclass
class Processes:
    """Long-running children of a test, each with a log file."""

    logs: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start ``argv`` as ``name``, output to ``logs/name.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as out:
            self.children[name] = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def crash(self, name: str) -> None:
        """SIGKILL ``name`` and every process it started (a machine losing power)."""
        child = self.children[name]
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        (self.logs / f"{name}.log").rename(self.logs / f"{name}.crashed.log")

    def log(self, name: str) -> str:
        """What ``name`` printed so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_for(self, name: str, pattern: str, timeout: float = 120.0) -> None:
        """Wait until ``name``'s log matches ``pattern`` (fail if it exits first)."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.log(name)):
            child = self.children[name]
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{name} (rc {child.poll()}) never logged {pattern!r}:\n"
                    + self.log(name)[-3000:]
                )
            time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM every child, then wait (kill after 30 s)."""
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
