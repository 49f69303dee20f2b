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

It first starts the factory's warm worker (``dure.client.federation.worker``:
settings, torch, store loaded once) on a Unix socket under ``<home>/../run/``.
With ``[supernode] runtime = "worker"`` (the default) the SuperNode runs with
``--isolation process`` and the worker takes its tasks from the SuperNode's
local Runtime API (``host:port``): no process per task.  With ``runtime =
"flower"`` Flower's SuperExec starts a ``flwr-clientapp`` per task, and the
light ClientApp there forwards it to the worker (node config ``dure-worker``).

The SuperNode runs through :mod:`dure.client.federation.supernode` (Flower's
own ``flower-supernode`` with its idle and reply polls set from ``idle_poll``
and ``reply_poll``).  The children are supervised as by ``dure coordinator up``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dure.cli.deployment_config import FactoryConfig, load_factory_config
from dure.cli.output import make_console

__all__ = ["node_config_argument", "register", "supernode_argv"]

console = make_console(stderr=True)
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
    supernode = cfg.supernode
    socket = cfg.home.parent / "run" / "worker.sock"
    socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [executable("python"), "-m", "dure.client.federation.worker"]
    argv += ["--node-config", node_config_argument(node), "--address", str(socket)]
    if supernode.runtime == "worker":
        argv += ["--runtime-api", f"{supernode.host}:{supernode.port}"]
    _clear_stale(socket)
    supervisor.start("dure-worker", argv)
    supervisor.wait_file("dure-worker", socket)
    node["dure-worker"] = str(socket)
    program = [executable("python"), "-m", "dure.client.federation.supernode"]
    argv = supernode_argv(cfg, node, program)
    supervisor.start("flower-supernode", argv, retries=_SUPERNODE_RETRIES)
    console.print(
        f"site {settings.site}: SuperNode on {supernode.host}:{supernode.port}, "
        f"SuperLink {supernode.superlink} (TLS, key {supernode.auth_key.name}), "
        f"tasks run by the {'worker' if supernode.runtime == 'worker' else 'SuperExec'}"
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


def node_config_argument(config: dict[str, str]) -> str:
    """The ``--node-config`` string: ``key="value"`` pairs, TOML-quoted."""
    import json

    return " ".join(f"{key}={json.dumps(value)}" for key, value in config.items())


def supernode_argv(cfg: FactoryConfig, node: dict[str, str], program: list[str]) -> list[str]:
    """The SuperNode's command line for this factory (``program`` and its options)."""
    supernode = cfg.supernode
    isolation = ["--isolation", "process"] if supernode.runtime == "worker" else []
    return [
        *program,
        "--idle-poll", str(supernode.idle_poll),
        "--reply-poll", str(supernode.reply_poll),
        *isolation,
        "--superlink", supernode.superlink,
        "--root-certificates", str(supernode.root_certificates),
        "--auth-supernode-private-key", str(supernode.auth_key),
        "--host", supernode.host,
        "--port", str(supernode.port),
        "--node-config", node_config_argument(node),
    ]  # fmt: skip
