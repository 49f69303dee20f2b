"""The factory's warm worker: Dure's ClientApp loaded once, answering every task.

Flower 1.41's SuperNode starts a fresh ``flwr-clientapp`` process for every
message (its SuperExec launches one per task, in both isolation modes), so all
that process imports and loads is paid on every round.  A factory therefore
runs one long-lived worker next to its SuperNode: :func:`serve` loads, once,
the factory's settings (keys, policy, pinned keys), torch (one thread, its
optimiser already imported), the episode store and the receipts, then answers
the per-task ClientApp (:mod:`~dure.client.federation.light`) over a local
socket (:mod:`~dure.client.federation.worker_protocol`).

The worker runs exactly the deployment ClientApp's code: the app built by
:func:`~dure.client.federation.clientapp.create_client_app` (receipts mod,
policy gate, selection, training, signed claim), called as Flower calls it,
with the Message and Context the per-task process received.  The settings are
the worker's own (its node config is authoritative for its data); a task whose
node config names another site is refused.

Run it with ``python -m dure.client.federation.worker --node-config '…'
--address /run/dure/worker.sock`` (the same node config string as
``flower-supernode --node-config``), then start the SuperNode with
``--node-config 'dure-worker="/run/dure/worker.sock"'``.  Tasks are answered one
at a time, as the SuperNode sends them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import cast

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from dure.client.federation.clientapp import create_client_app
from dure.client.federation.errors import FederationSetupError
from dure.client.federation.receipts import ReceiptBox
from dure.client.federation.settings import FactorySettings
from dure.client.federation.trainer import Trainer, train_policy
from dure.client.federation.worker_protocol import (
    WorkerProtocolError,
    ensure_authkey,
    receive,
    send,
    send_error,
)
from dure.client.store.store import EpisodeStore
from dure.policies.errors import DureError

__all__ = ["main", "serve", "serve_node_config", "warm_up"]

_log = logging.getLogger("dure.worker")


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def serve(
    settings: FactorySettings,
    address: Path,
    *,
    trainer: Trainer = train_policy,
    clock: Callable[[], datetime] = _utc_now,
    ready: Callable[[], None] | None = None,
    runtime_api: str | None = None,
) -> None:
    """Load everything once, then answer tasks on ``address`` until killed.

    Parameters
    ----------
    settings
        The factory's settings (authoritative for its data).
    address
        The Unix socket to listen on; its key is ``<address>.key`` (created 0600).
    trainer, clock
        As for :func:`~dure.client.federation.clientapp.create_client_app`.
    ready
        Called once the socket accepts connections.
    runtime_api
        Also run the tasks of the SuperNode (``--isolation process``; ``dure factory
        up``'s default)
        whose Runtime API is at this ``host:port``
        (:mod:`~dure.client.federation.worker_executor`).

    Raises
    ------
    FederationSetupError
        If the store, the receipts or the socket cannot be used.
    """
    app = create_client_app(lambda _context: settings, trainer, clock)
    warm_up(settings)
    lock = threading.Lock()  # one task at a time, whichever way it came
    with _listening(Path(address)) as listener, _executing(app, settings, runtime_api, lock):
        if ready is not None:
            ready()
        while True:
            connection = _accept(listener)
            if connection is not None:
                with connection:
                    _answer(connection, app, settings, lock)


@contextmanager
def _executing(
    app: ClientApp, settings: FactorySettings, runtime_api: str | None, lock: threading.Lock
) -> Iterator[None]:
    """Run the SuperNode's tasks (``runtime_api``) meanwhile; stop taking them on exit."""
    if runtime_api is None:
        yield
        return
    from dure.client.federation.worker_executor import TaskExecutor

    executor = TaskExecutor(lambda m, c: _call(app, m, c, settings), runtime_api, lock=lock)
    executor.start()
    try:
        yield
    finally:
        executor.stop()


def serve_node_config(
    node_config: Mapping[str, str],
    address: Path,
    *,
    trainer: Trainer = train_policy,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Load the settings ``node_config`` names (as a SuperNode's), then :func:`serve`.

    Every argument pickles, so this is a ``multiprocessing`` target.
    """
    serve(FactorySettings.from_node_config(node_config), address, trainer=trainer, clock=clock)


def warm_up(settings: FactorySettings) -> None:
    """Import torch (one thread) and its optimiser, open the store, read the receipts."""
    import torch

    from dure.client.training import local, model, normalisation  # noqa: F401

    torch.set_num_threads(1)
    weight = torch.zeros(1, requires_grad=True)
    torch.optim.Adam([weight]).step()  # the first use imports torch._dynamo (seconds)
    try:
        with EpisodeStore.open(settings.home, create=False) as store:
            store.select()
    except DureError as exc:
        raise FederationSetupError(f"{settings.home}: {exc.message}", hint=exc.hint) from exc
    ReceiptBox(settings.receipts_dir, settings.ledger_key, settings.urn).epsilon_spent()


@contextmanager
def _listening(address: Path) -> Iterator[Listener]:
    key = ensure_authkey(address)
    _clear_stale(address)
    previous = os.umask(0o177)  # the socket is created 0600
    try:
        listener = Listener(str(address), family="AF_UNIX", authkey=key)
    except OSError as exc:
        raise FederationSetupError(f"{address}: cannot listen ({exc})") from exc
    finally:
        os.umask(previous)
    try:
        os.chmod(address, 0o600)
        yield listener
    finally:
        listener.close()  # removes the socket file


def _clear_stale(address: Path) -> None:
    """Remove a socket left by a dead worker; refuse to steal a live one's address."""
    if not address.exists():
        return
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(str(address))
    except (ConnectionRefusedError, FileNotFoundError):
        address.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise FederationSetupError(
        f"{address}: a worker already listens there",
        hint="Stop the other worker, or give this one another --address.",
    )


def _accept(listener: Listener) -> Connection | None:
    try:
        return listener.accept()
    except (AuthenticationError, EOFError, OSError) as exc:
        _log.warning("refused a connection: %s", exc)
        return None


def _answer(
    connection: Connection, app: ClientApp, settings: FactorySettings, lock: threading.Lock
) -> None:
    try:
        message, context, _ = receive(connection)
        started = time.perf_counter()
        with lock:
            reply = _call(app, message, context, settings)
        send(connection, reply, context, seconds=time.perf_counter() - started)
    except (WorkerProtocolError, _TaskFailedError) as exc:
        _log.warning("a task failed: %s", exc)
        with suppress(EOFError, OSError):
            send_error(connection, str(exc))
    except (EOFError, OSError) as exc:
        _log.warning("lost a task's connection: %s", exc)


class _TaskFailedError(Exception):
    """The ClientApp raised; the per-task process raises it again for Flower."""


def _call(app: ClientApp, message: Message, context: Context, settings: FactorySettings) -> Message:
    site = context.node_config.get("dure-site")
    if isinstance(site, str) and site != settings.site:
        raise _TaskFailedError(
            f"this worker serves site {settings.site!r}, the task is for {site!r}"
        )
    try:
        return app(message, context)
    except Exception as exc:  # Flower turns a ClientApp exception into error code 2
        _log.exception("the ClientApp raised")
        raise _TaskFailedError(f"{type(exc)}:<'{exc}'>") from exc


def main(argv: list[str] | None = None) -> int:
    """``python -m dure.client.federation.worker --node-config '…' --address PATH``."""
    from flwr.common.config import parse_config_args

    parser = argparse.ArgumentParser(prog="python -m dure.client.federation.worker")
    parser.add_argument("--node-config", required=True, help="as for flower-supernode")
    parser.add_argument("--address", required=True, type=Path, help="the Unix socket")
    parser.add_argument("--trainer", help="module:function of a Trainer (tests, benchmarks)")
    parser.add_argument(
        "--runtime-api", help="run the tasks of the process-isolated SuperNode at HOST:PORT"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dure.worker %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the clean-up on stop
    try:
        settings = FactorySettings.from_node_config(parse_config_args([args.node_config]))
        trainer = _load(args.trainer) if args.trainer else train_policy
        serve(
            settings,
            args.address,
            trainer=trainer,
            ready=lambda: _log.info("ready"),
            runtime_api=args.runtime_api,
        )
    except DureError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    return 0


def _load(reference: str) -> Trainer:
    module, _, name = reference.partition(":")
    try:
        return cast(Trainer, getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError) as exc:
        raise FederationSetupError(f"--trainer {reference}: cannot load ({exc})") from exc


if __name__ == "__main__":
    sys.exit(main())
