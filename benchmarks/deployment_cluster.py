"""Real Flower processes on loopback for the deployment benchmark.

A SuperLink and N SuperNodes on free ports (each process in its own session,
``FLWR_HOME`` in the run's folder, telemetry and update check off), a Flower App
folder whose components live in this repository, and ``flwr run`` of it.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.deployment.cluster import free_ports

__all__ = [
    "BIN",
    "ROOT",
    "Processes",
    "cluster",
    "flwr_run",
    "port_open",
    "wait_for",
    "write_app",
]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_for(check: Any, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Processes:
    """Processes this benchmark started (each in its own session), stopped together."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.started: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: Sequence[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            list(argv), env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=ROOT,
        )  # fmt: skip
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@contextmanager
def cluster(
    root: Path,
    nodes: int,
    node_config: Any,
    *options: str,
    supernode: Sequence[str] = (str(BIN / "flower-supernode"),),
    **env: str,
) -> Iterator[Processes]:
    """A SuperLink and ``nodes`` SuperNodes on free loopback ports; yields the processes.

    ``supernode`` is the SuperNode's command (Flower's ``flower-supernode``, or
    Dure's paced entry point); ``options`` are added to its arguments.
    """
    home = root / "flwr-home"
    home.mkdir(parents=True)
    link, *ports = free_ports(1 + nodes)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
        f'address = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    base = {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    }
    processes = Processes(root / "logs", base)
    processes.ports = ports
    try:
        processes.start(
            "superlink",
            [str(BIN / "flower-superlink"), "--insecure",
             "--disable-runtime-dependency-installation", "--host", "127.0.0.1",
             "--port", str(link)],
        )  # fmt: skip
        wait_for(lambda: port_open(link), "the SuperLink")
        for index, port in enumerate(ports):
            config = " ".join(f"{k}={json.dumps(v)}" for k, v in node_config(index).items())
            processes.start(
                f"supernode-{index}",
                [*supernode, "--insecure", "--superlink",
                 f"127.0.0.1:{link}", "--port", str(port), "--node-config", config, *options],
                **env,
            )  # fmt: skip
        yield processes
    finally:
        processes.stop()


def write_app(root: Path, components: tuple[str, str], config: dict[str, Any]) -> Path:
    """Write a Flower App folder whose components live in this repository."""
    folder = root / "app"
    folder.mkdir()
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "dure-deployment-bench"\nversion = "1.0.0"\n'
        'dependencies = ["flwr>=1.41,<1.43"]\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["."]\n\n'
        '[tool.flwr.app]\npublisher = "dure"\n\n'
        f'[tool.flwr.app.components]\nserverapp = "{components[0]}"\n'
        f'clientapp = "{components[1]}"\n\n'
        "[tool.flwr.app.config]\n" + "\n".join(lines) + "\n"
    )
    return folder


def flwr_run(processes: Processes, app: Path, out: Path, timeout: float) -> dict[str, Any]:
    processes.start("flwr-run", [str(BIN / "flwr"), "run", str(app), "local", "--stream"])
    log = processes.logs / "flwr-run.log"
    # the log stream may end early under load (the run goes on at the SuperLink): wait
    # for the figures, or for the ServerApp's failure in the log
    wait_for(lambda: out.exists() or "Exit Code" in log.read_text(), "the run", timeout)
    if not out.exists():
        raise RuntimeError(f"the run wrote no figures; its log ends:\n{log.read_text()[-3000:]}")
    time.sleep(0.5)  # the writer closes the file
    result: dict[str, Any] = json.loads(out.read_text())
    return result
