"""The light per-task ClientApp and a real warm worker process, through real Flower Messages.

A run through light ClientApps forwarding to worker processes (one per site,
started with ``multiprocessing`` spawn, or with the worker's command line)
must ledger byte for byte what the in-process ClientApp ledgers: same gate,
same selection, same training, same signed claims, same receipts.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Client
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from tests.builders.federation import (
    Consortium,
    build_consortium,
    fixed_now,
    linear_trainer,
    node_config,
)
from tests.builders.flower import LocalGrid, LocalNode

from dure.client.federation.light import WORKER_UNAVAILABLE, app
from dure.client.federation.worker import serve_node_config
from dure.client.federation.worker_protocol import authkey_path
from dure.policies.keys import SigningKey
from dure.server.federation.errors import FederationError
from dure.server.federation.models import MemoryModelStore
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger

SITES = ("factory-a", "factory-b", "factory-c")
ROOT = Path(__file__).resolve().parents[3]


def _with_ledger(consortium: Consortium, key: SigningKey, registrations: list[bytes]) -> None:
    """Give ``consortium`` a fresh ledger (same key, same registrations) and model store."""
    consortium.ledger = Ledger(MemoryLedgerStore(), key, "dure.test/ledger")
    consortium.ledger.store.append(registrations)
    consortium.models = MemoryModelStore()
    for site in consortium.sites.values():
        site.settings = dataclasses.replace(
            site.settings, ledger_key=consortium.ledger.public_key()
        )


def _wait_for(path: Path, process: multiprocessing.process.BaseProcess | None = None) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if process is not None and not process.is_alive():
            raise AssertionError(f"the worker for {path} exited ({process.exitcode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"no worker at {path}")
        time.sleep(0.05)


@pytest.fixture
def consortium(tmp_path: Path) -> Consortium:
    return build_consortium(tmp_path / "sites", SITES, episodes=2, frames=12)


@pytest.fixture
def workers(consortium: Consortium, tmp_path: Path) -> Iterator[dict[str, Path]]:
    """One real worker process per site (spawned), keyed by site name, at its socket."""
    spawn = multiprocessing.get_context("spawn")
    sockets = {name: tmp_path / "run" / f"{name}.sock" for name in consortium.sites}
    processes = [
        spawn.Process(
            target=serve_node_config,
            args=(node_config(consortium, site), sockets[name]),
            kwargs={"trainer": linear_trainer, "clock": fixed_now},
            daemon=True,
        )
        for name, site in consortium.sites.items()
    ]
    for process in processes:
        process.start()
    try:
        for process, path in zip(processes, sockets.values(), strict=True):
            _wait_for(path, process)
        yield sockets
    finally:
        for process in processes:
            process.terminate()
            process.join(10)


def _identify(grid: LocalGrid, node: int, nonce: str | None = None) -> Message:
    """Send one ``query.identify`` through ``grid`` and return the reply."""
    config = ConfigRecord({"nonce": nonce or os.urandom(32).hex(), "run-id": "7"})
    instruction = Message(RecordDict({"config": config}), node, "query.identify")
    (message_id,) = grid.push_messages([instruction])
    (reply,) = grid.pull_messages([message_id])
    return reply


def _light_grid(consortium: Consortium, sockets: dict[str, Path]) -> LocalGrid:
    return LocalGrid(
        LocalNode(101 + i, app, {"dure-worker": str(sockets[name]), "dure-site": name})
        for i, name in enumerate(consortium.sites)
    )


@pytest.mark.slow
def test_light_app_and_worker_ledger_exactly_what_the_in_process_app_ledgers(
    consortium: Consortium, workers: dict[str, Path]
) -> None:
    key, store = SigningKey.generate(), consortium.ledger.store
    registrations = list(store.entries(0, store.size()))
    results = []
    grids: list[Callable[[], LocalGrid]] = [
        consortium.grid,
        lambda: _light_grid(consortium, workers),
    ]
    for grid in grids:
        _with_ledger(consortium, key, registrations)
        report = consortium.coordinator().run(grid(), consortium.job())
        ledger = consortium.ledger.store
        kept = {
            s.name: len(list(s.settings.receipts_dir.glob("*.json")))
            for s in consortium.sites.values()
        }
        results.append((report, list(ledger.entries(0, ledger.size())), kept))
    (report_a, entries_a, kept_a), (report_b, entries_b, kept_b) = results
    assert [r.status for r in report_b.rounds] == ["committed"] * 3
    assert entries_b == entries_a  # same gate, claims (signed, deterministic), updates
    assert report_b.final_model == report_a.final_model
    assert report_b.checkpoint == report_a.checkpoint
    assert len(consortium.of_kind("contribution_accepted")) == 9
    assert kept_b == kept_a and min(kept_b.values()) > 0


def test_an_unreachable_worker_answers_a_flower_error_naming_the_fix(
    consortium: Consortium, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "worker.sock"
    grid = LocalGrid(
        [
            LocalNode(101, app, {"dure-worker": str(missing), "dure-site": "factory-a"}),
            LocalNode(102, app, {"dure-site": "factory-b"}),
        ]
    )
    with pytest.raises(FederationError, match="none of the 3 admitted sites has a Flower node"):
        consortium.coordinator().run(grid, consortium.job())
    for node in grid.nodes.values():
        assert node.received == ["query.identify"] and node.errors == []
    assert "no dure-worker" in str(_identify(grid, 102).error.reason)
    reply = _identify(grid, 101)
    assert reply.has_error() and reply.error.code == WORKER_UNAVAILABLE
    assert "[worker.unavailable]" in str(reply.error.reason)
    assert "dure factory up" in str(reply.error.reason) and str(missing) in str(reply.error.reason)


@pytest.mark.slow
def test_socket_and_key_are_private_and_a_wrong_key_is_refused(
    consortium: Consortium, tmp_path: Path
) -> None:
    site = consortium.sites["factory-a"]
    config = " ".join(f'{k}="{v}"' for k, v in node_config(consortium, site).items())
    address = tmp_path / "run" / "worker.sock"
    command = [sys.executable, "-m", "dure.client.federation.worker", "--node-config", config]
    command += ["--address", str(address), "--trainer", "tests.builders.federation:linear_trainer"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("", "policies", "client", "server")),
    }
    worker = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(address)
        assert stat.S_IMODE(address.stat().st_mode) == 0o600
        assert stat.S_IMODE(authkey_path(address).stat().st_mode) == 0o600
        assert stat.S_IMODE(address.parent.stat().st_mode) == 0o700
        with pytest.raises(multiprocessing.AuthenticationError):
            Client(str(address), family="AF_UNIX", authkey=b"not the key" * 3)
        grid = LocalGrid([LocalNode(101, app, {"dure-worker": str(address)})])
        reply = _identify(grid, 101)  # still serving after the refused connection
        assert not reply.has_error() and "binding" in reply.content
        reply = _identify(grid, 101, nonce="00")  # the worker's ClientApp raises on this nonce
        assert reply.error.code == 2 and "WorkerFailedError" in str(reply.error.reason)
        authkey_path(address).chmod(0o640)
        reply = _identify(grid, 101)
        assert reply.error.code == WORKER_UNAVAILABLE and "must be mode 0600" in str(
            reply.error.reason
        )
    finally:
        worker.terminate()
        _, errors = worker.communicate(timeout=30)
    assert "refused a connection" in errors
    assert not address.exists()  # the worker removed its socket on SIGTERM
