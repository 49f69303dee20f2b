#!/usr/bin/env python3
"""Container and service health check for a Dure coordinator or factory (stdlib only).

Usage::

    dure-healthcheck coordinator /srv/dure/coordinator.toml
    dure-healthcheck factory /srv/dure/factory.toml

``coordinator``: the SuperLink accepts TCP connections on its port and the
coordinator service answers ``GET /healthz`` with 200.  ``factory``: the
SuperNode accepts TCP connections on its ``[supernode] host:port`` (its local
API), and the warm worker, which runs the factory's tasks, accepts connections
on its socket (``<home>/../run/worker.sock``, ``home`` relative to the config
file): both processes are up, which does not prove the SuperNode reached the
SuperLink (it keeps retrying on its own; the coordinator's node list shows who
is connected).  Exit status
0 when healthy, 1 otherwise, with one line saying what failed.  It reads the
same TOML files as ``dure coordinator up`` and ``dure factory up`` and imports
nothing of Dure, so it stays fast enough for a 10 s probe.
"""

from __future__ import annotations

import socket
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["check", "main"]

TIMEOUT_S = 3.0


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _tcp(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=TIMEOUT_S):
        pass


def _http_ok(url: str) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
        if answer.status != 200:
            raise OSError(f"{url} answered {answer.status}")


def _unix(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect(str(path))


def check(role: str, config: dict[str, Any], base: Path = Path(".")) -> list[str]:
    """Return what is unhealthy for ``role`` with ``config`` (empty: healthy).

    ``base`` is the folder of the config file (relative paths start there).
    """
    probes: list[tuple[str, Any]] = []
    if role == "coordinator":
        link, service = config["superlink"], config.get("service", {})
        host, port = _split(link["address"])
        probes.append((f"SuperLink {host}:{port}", lambda: _tcp(link.get("listen") or host, port)))
        address = service.get("address", "127.0.0.1:8700")
        probes.append((f"service {address}", lambda: _http_ok(f"http://{address}/healthz")))
    elif role == "factory":
        node = config["supernode"]
        host, port = node.get("host", "127.0.0.1"), int(node["port"])
        probes.append((f"SuperNode {host}:{port}", lambda: _tcp(host, port)))
        worker = (base / config["home"]).parent / "run" / "worker.sock"
        probes.append((f"worker {worker}", lambda: _unix(worker)))
    else:
        return [f"unknown role {role!r}: use coordinator or factory"]
    problems = []
    for name, probe in probes:
        try:
            probe()
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
    return problems


def main(argv: list[str]) -> int:
    """Check the role named in ``argv`` against its config file; print and return the status."""
    if len(argv) != 2:
        print("usage: dure-healthcheck coordinator|factory CONFIG.toml", file=sys.stderr)
        return 2
    role, path = argv
    try:
        config = tomllib.loads(Path(path).read_text())
        problems = check(role, config, Path(path).resolve().parent)
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        problems = [f"{path}: cannot read the config ({exc!r})"]
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    if not problems:
        print("healthy")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
