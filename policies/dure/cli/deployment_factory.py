"""``dure factory up --config factory.toml``: the factory's SuperNode (and warm worker).

Checks the configuration first (the site's key, its own signed policy and the
pinned keys load, as the ClientApp will load them), then starts
``flower-supernode`` with TLS (``--root-certificates``), the registered
SuperNode key (``--auth-supernode-private-key``), its own ``--port`` and a
``--node-config`` carrying the ``dure-*`` keys of
:class:`~dure.client.federation.settings.FactorySettings`.  A SuperNode that exits
on its own is started again (every 10 s, 18 times): after a crash the SuperLink
refuses the key until the previous session's heartbeat lapses (up to 60 s), and
``flower-supernode`` exits on that refusal instead of retrying.

When the warm worker and its light per-task ClientApp are installed
(``dure.client.federation.worker`` and ``dure.client.federation.light``), it
also starts the worker on a Unix socket under ``<home>/../run/`` and names it to
the ClientApp (node config ``dure-worker``).  The children are supervised as by
``dure coordinator up``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dure.cli.deployment_config import FactoryConfig, load_factory_config

__all__ = ["node_config_argument", "register", "supernode_argv"]

console = Console(highlight=False, stderr=True)
_SUPERNODE_RETRIES = 18
"""After a crash Flower refuses the node's key until the old session's heartbeat lapses
(up to 60 s); ``flower-supernode`` exits then, and is started again every 10 s."""


def register(factory: typer.Typer) -> None:
    """Add ``up`` to the ``dure factory`` group."""
    factory.command("up")(_up)


def _up(
    config: Annotated[Path, typer.Option("--config", help="factory.toml (dure consortium init).")],
) -> None:
    """Start the factory's Flower SuperNode (TLS, registered key) with Dure's settings."""
    from dure.cli.deployment_processes import Supervisor, executable, flower_environment
    from dure.client.federation.settings import FactorySettings

    cfg = load_factory_config(config)
    node = cfg.node_config()
    settings = FactorySettings.from_node_config(node)  # fail here, not at the first message
    supervisor = Supervisor(flower_environment(cfg.home.parent / "flwr-home"))
    if _warm_worker_installed():
        socket = cfg.home.parent / "run" / "worker.sock"
        socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [executable("python"), "-m", "dure.client.federation.worker"]
        argv += ["--node-config", node_config_argument(node), "--address", str(socket)]
        _clear_stale(socket)
        supervisor.start("dure-worker", argv)
        supervisor.wait_file("dure-worker", socket)
        node["dure-worker"] = str(socket)
    argv = supernode_argv(cfg, node, executable("flower-supernode"))
    supervisor.start("flower-supernode", argv, retries=_SUPERNODE_RETRIES)
    console.print(
        f"site {settings.site}: SuperNode on {cfg.supernode.host}:{cfg.supernode.port}, "
        f"SuperLink {cfg.supernode.superlink} (TLS, key {cfg.supernode.auth_key.name})"
    )
    supervisor.supervise()


def _clear_stale(path: Path) -> None:
    """Remove a socket a dead worker left (so its reappearance means ours is ready)."""
    import socket

    from dure.cli.deployment_processes import DeploymentProcessError

    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise DeploymentProcessError(
        f"{path}: a worker already listens there", hint="Stop the factory's other 'up' first."
    )


def _warm_worker_installed() -> bool:
    return all(
        importlib.util.find_spec(f"dure.client.federation.{name}") is not None
        for name in ("worker", "light")
    )


def node_config_argument(config: dict[str, str]) -> str:
    """The ``--node-config`` string: ``key="value"`` pairs, TOML-quoted."""
    import json

    return " ".join(f"{key}={json.dumps(value)}" for key, value in config.items())


def supernode_argv(cfg: FactoryConfig, node: dict[str, str], program: str) -> list[str]:
    """``flower-supernode``'s arguments for this factory."""
    supernode = cfg.supernode
    return [
        program,
        "--superlink", supernode.superlink,
        "--root-certificates", str(supernode.root_certificates),
        "--auth-supernode-private-key", str(supernode.auth_key),
        "--host", supernode.host,
        "--port", str(supernode.port),
        "--node-config", node_config_argument(node),
    ]  # fmt: skip
