"""The per-task ClientApp of a factory with a warm worker: a light forwarder.

Flower 1.41 starts a ``flwr-clientapp`` process for every message a SuperNode
receives, and that process imports the ClientApp module each time.  This
module imports nothing heavy (no torch, no pandas or pyarrow, no episode
store, not even the policy kernel): :data:`app` hands each Message and its
Context, in Flower's own encoding, to the factory's long-lived worker
(:mod:`~dure.client.federation.worker`) and returns the worker's reply.

The worker is named by the SuperNode's node config key ``dure-worker`` (its
Unix socket; the key beside it, ``<socket>.key``, authenticates both sides).
Deployment: ``clientapp = "dure.client.federation.light:app"``.

If the worker cannot be reached the reply is ``Error(code=1003)``
(:data:`WORKER_UNAVAILABLE`) whose reason says what to start; the coordinator
ledgers it like any refusal.  If the worker's ClientApp raised, this process
raises again, so Flower answers exactly as for an in-process ClientApp
(error code 2).
"""

from __future__ import annotations

from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from dure.client.federation.wire import refusal
from dure.client.federation.worker_protocol import (
    WorkerProtocolError,
    read_authkey,
    receive,
    send,
)

__all__ = ["WORKER_UNAVAILABLE", "WorkerClientApp", "WorkerFailedError", "app"]

WORKER_UNAVAILABLE = 1003
"""Error code of a reply from a factory whose worker is not running."""
_HINT = (
    "start the factory's worker (`dure factory up`, or `python -m "
    "dure.client.federation.worker --node-config '…' --address {address}`) before its SuperNode"
)


class WorkerFailedError(RuntimeError):
    """The worker's ClientApp raised, or the worker broke the protocol."""


class WorkerClientApp(ClientApp):
    """A ClientApp that forwards every message to the factory's worker."""

    def __call__(self, message: Message, context: Context) -> Message:
        """Forward ``message`` to the worker named by ``dure-worker``; return its reply."""
        address = context.node_config.get("dure-worker")
        site = str(context.node_config.get("dure-site", "unknown"))
        if not isinstance(address, str) or not address:
            reason = "the node config has no dure-worker (the worker's socket)"
            return _unavailable(message, site, reason, "<socket>")
        try:
            connection = _connect(Path(address))
        except WorkerProtocolError as exc:
            return _unavailable(message, site, str(exc), address)
        with connection:
            try:
                send(connection, message, context)
                reply, returned, _ = receive(connection)
            except WorkerProtocolError as exc:
                raise WorkerFailedError(f"the worker at {address} failed: {exc}") from exc
            except (EOFError, OSError) as exc:
                return _unavailable(message, site, f"the worker hung up ({exc!r})", address)
        context.state = returned.state
        return reply


def _connect(address: Path) -> Connection:
    key = read_authkey(address)
    try:
        return Client(str(address), family="AF_UNIX", authkey=key)
    except (OSError, EOFError) as exc:
        raise WorkerProtocolError(f"no worker listens at {address} ({exc})") from exc
    except AuthenticationError as exc:
        raise WorkerProtocolError(f"the worker at {address} refused our key ({exc})") from exc


def _unavailable(message: Message, site: str, problem: str, address: str) -> Message:
    reason = f"[worker.unavailable] {problem}; {_HINT.format(address=address)}"
    return refusal(message, WORKER_UNAVAILABLE, f"urn:dure:site:{site}", None, [reason])


app = WorkerClientApp()
"""The deployment entry point: ``dure.client.federation.light:app``."""
