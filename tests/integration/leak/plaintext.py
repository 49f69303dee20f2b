"""A plaintext Dure deployment on loopback, each factory behind a recording proxy.

The consortium's files come from ``dure consortium init`` through the
deployment tests' :func:`~tests.integration.deployment.cluster.make_consortium`
(SQLite ledger and registry here); the processes are started directly, as
``dure coordinator up`` and ``dure factory up`` would start them but with
``--insecure`` transport: a real ``flower-superlink``, and per site the warm
worker running its SuperNode's tasks and the paced SuperNode
(``python -m dure.client.federation.supernode --isolation process``, Flower's
``flower-supernode``), as ``factory up`` starts them by default, each SuperNode
dialling the SuperLink through its own
:class:`~tests.integration.leak.proxy.RecordingProxy`.  Jobs run with
``flwr run`` on a Flower app written by
:func:`~dure.cli.deployment_coordinator.app_pyproject` (Dure's ServerApp and
ClientApp, the coordinator's ledger, keys and model registry), exactly what
``dure coordinator run-job`` writes.

Plaintext is the point: under TLS a capture sees ciphertext, so a search for a
marker in it could not fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.deployment.cluster import (
    DURE,
    Layout,
    Processes,
    free_ports,
    make_consortium,
)
from tests.integration.leak.proxy import RecordingProxy, recording_proxy

from dure.cli.deployment_config import (
    CoordinatorConfig,
    load_coordinator_config,
    load_factory_config,
)
from dure.cli.deployment_coordinator import app_pyproject, sync_coordinator_registry
from dure.cli.deployment_factory import node_config_argument
from dure.cli.deployment_processes import flower_environment
from dure.policies.entries import LedgerEntry
from dure.server.ledger.sql import SqlLedgerStore

__all__ = ["PlainCluster", "descendants", "kill", "plain_cluster"]

BIN = Path(DURE).parent
CLIENTAPP = "dure.client.federation.clientapp:app"


@dataclass
class PlainCluster:
    """The running consortium: files, processes, proxies."""

    layout: Layout
    config: CoordinatorConfig
    processes: Processes
    env: dict[str, str]
    proxies: dict[str, RecordingProxy]

    def app(self, job: Path) -> Path:
        """Write the Flower app folder for ``job`` (as ``run-job`` does); return it."""
        sync_coordinator_registry(self.config)
        folder = self.config.run.work / f"app-{job.stem}-{time.monotonic_ns()}"
        folder.mkdir(parents=True)
        (folder / "pyproject.toml").write_text(app_pyproject(self.config, job))
        return folder

    def flwr_run(self, app: Path) -> list[str]:
        """``flwr run APP dure --stream``'s argv."""
        return [str(BIN / "flwr"), "run", str(app), "dure", "--stream"]

    def run_job(self, job: Path, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        """Run ``job`` to its end with ``flwr run``; keep its output in the logs."""
        done = subprocess.run(
            self.flwr_run(self.app(job)),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        log = self.processes.logs / f"flwr-run-{job.stem}-{time.monotonic_ns()}.log"
        log.write_text(done.stdout + done.stderr)
        return done

    def entries(self) -> list[LedgerEntry]:
        """Every ledger entry, parsed."""
        store = SqlLedgerStore.from_url(self.config.service.database, create=False)
        try:
            return [LedgerEntry.from_bytes(raw) for raw in store.entries(0, store.size())]
        finally:
            store.close()

    def superlink_pid(self) -> int:
        """The SuperLink's process id."""
        return self.processes.children["superlink"].pid


def descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``: process id to command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        commands[int(entry.name)] = command
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found[child] = commands[child]
                frontier.append(child)
    return found


@contextmanager
def plain_cluster(root: Path, sites: Sequence[str], run: dict[str, str]) -> Iterator[PlainCluster]:
    """Init a consortium under ``root`` and start it in plaintext (module docstring).

    The factories' stores hold the deployment tests' episodes; add more before
    the first job runs (the ClientApp reads the store on every task).
    """
    layout = make_consortium(root / "consortium", sites, "sqlite:///state/coordinator.db", {}, run)
    toml = layout.coordinator_toml
    toml.write_text(toml.read_text() + f"clientapp = {json.dumps(CLIENTAPP)}\n")
    config = load_coordinator_config(toml)
    sync_coordinator_registry(config)
    env = flower_environment(config.run.flwr_home)
    _write_connection(config.run.flwr_home, layout.superlink_port)
    processes = Processes(root / "logs")
    with ExitStack() as stack:
        stack.callback(processes.stop)
        processes.start("superlink", _superlink_argv(layout, config), env)
        _wait_port(processes, "superlink", layout.superlink_port)
        proxies: dict[str, RecordingProxy] = {}
        for site in sites:
            proxy = stack.enter_context(recording_proxy(("127.0.0.1", layout.superlink_port)))
            proxies[site] = proxy
            node = node_config_argument(
                load_factory_config(layout.factory_toml(site)).node_config()
            )
            (port,) = free_ports(1)
            worker = [sys.executable, "-m", "dure.client.federation.worker", "--node-config", node]
            worker += ["--address", str(root / "run" / f"{site}.sock")]
            processes.start(f"worker-{site}", [*worker, "--runtime-api", f"127.0.0.1:{port}"], env)
            processes.start(site, _supernode_argv(node, port, proxy.port), env)
        for site in sites:
            processes.wait_for(f"worker-{site}", r"dure\.worker ready", timeout=300)
        # stop the processes before the proxies: ExitStack unwinds in reverse
        stack.callback(processes.stop)
        yield PlainCluster(layout, config, processes, env, proxies)


def _wait_port(processes: Processes, name: str, port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            child = processes.children[name]
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{name} never listened:\n{processes.log(name)[-3000:]}"
                ) from None
            time.sleep(0.3)


def _write_connection(home: Path, port: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    text = (
        '[superlink]\ndefault = "dure"\n\n[superlink.dure]\n'
        f'address = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    (home / "config.toml").write_text(text)


def _superlink_argv(layout: Layout, config: CoordinatorConfig) -> list[str]:
    database = config.superlink.database
    database.parent.mkdir(parents=True, exist_ok=True)
    return [
        str(BIN / "flower-superlink"),
        "--insecure",
        "--disable-runtime-dependency-installation",
        "--host", "127.0.0.1",
        "--port", str(layout.superlink_port),
        "--database", str(database),
    ]  # fmt: skip


def _supernode_argv(node: str, port: int, superlink_port: int) -> list[str]:
    """The paced SuperNode with factory.toml's default polls, its tasks left to the worker."""
    return [
        sys.executable, "-m", "dure.client.federation.supernode",
        "--idle-poll", "0.5", "--reply-poll", "0.05",
        "--insecure", "--isolation", "process",
        "--superlink", f"127.0.0.1:{superlink_port}",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--node-config", node,
    ]  # fmt: skip


def kill(pid: int) -> None:
    """``SIGKILL`` one process this test started (directly or through the SuperLink)."""
    os.kill(pid, signal.SIGKILL)
