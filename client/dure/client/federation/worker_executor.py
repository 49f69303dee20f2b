"""The warm worker as its SuperNode's task executor (no process per task).

With ``flower-supernode --isolation process`` a SuperNode starts no SuperExec:
an executor next to it acquires each task from the SuperNode's Runtime API
(its ``--host``/``--port``, on loopback) and runs it.  Flower's own executor
(``flower-superexec``) starts a ``flwr-clientapp`` process per task, which
imports about a second of Flower's modules before any app code;
:class:`TaskExecutor` does what that process does (``pull_task_input``, call
the ClientApp, ``push_message``, ``push_task_output``, with Flower's own
functions, and a task heartbeat) inside the warm worker, calling the worker's
ClientApp.

What it guarantees:

- **Only the factory's installed code runs.**  The run's FAB is never installed
  or imported; its ``pyproject.toml`` is only read (Flower's ``get_fab_config``)
  to check that the run is a Dure run (its ClientApp component is one of
  :data:`DURE_CLIENTAPPS`).  A task of any other app is answered
  ``Error(code=1004)`` (:data:`FOREIGN_APP`) without calling anything.
- **Every task it takes is answered once**: the ClientApp's reply, or, if the
  ClientApp raised, ``Error(code=2)`` as ``flwr-clientapp`` answers.  If no reply
  could be handed to the SuperNode (it restarted, the connection broke), the
  task is left unfinished and its heartbeat stops, so the SuperNode answers
  "ClientApp stopped responding" itself once the claim lapses (60 s); finishing
  it without a reply would leave the SuperNode waiting for one forever.
- **The worker outlives its SuperNode.**  Flower's own Runtime clients stop
  their process on an expired task token or a refused heartbeat (they send
  themselves ``SIGINT``); this executor uses its own retry policy and heartbeat,
  which never signal: an unreachable SuperNode is retried with exponential
  backoff (0.5 s to 10 s), a lost task is logged and dropped.
- **Clean stop**: :meth:`TaskExecutor.stop` lets a running task finish, takes
  no new one, and returns.

Consequences: it speaks Flower's Runtime API (an interface between Flower's own
components: ``flwr.supercore`` and ``flwr.supernode.runtime``, checked for the
pinned ``flwr>=1.41,<1.43``, not promised beyond), and the consortium cannot
ship ClientApp code to a factory.  ``dure factory up`` runs it by default
(``[supernode] runtime = "worker"``); ``runtime = "flower"`` falls back to
Flower's SuperExec.  Each task runs in a thread of its own (pulling its input,
pushing its reply), as Flower runs a process per task, so a task whose contents
never arrive cannot hold up the next; the ClientApp answers one task at a time,
under the worker's lock shared with the socket server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
from flwr.app import Context, Error, Message
from flwr.common.config import get_fab_config
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.serde import context_from_proto, fab_from_proto
from flwr.proto.node_pb2 import Node
from flwr.proto.runtime_pb2 import (
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
    SendTaskHeartbeatRequest,
)
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
)
from flwr.supercore.retry import RetryInvoker, exponential
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

from dure.client.federation.wire import refusal

__all__ = ["DURE_CLIENTAPPS", "FOREIGN_APP", "TaskExecutor"]

_log = logging.getLogger("dure.worker")

DURE_CLIENTAPPS = frozenset(
    {"dure.client.federation.light:app", "dure.client.federation.clientapp:app"}
)
"""The ClientApp components of a Dure run; tasks of any other app are refused."""
FOREIGN_APP = 1004
"""Error code of the reply to a task whose app is not a Dure app."""

_TRANSIENT = (httpx.codes.BAD_GATEWAY, httpx.codes.SERVICE_UNAVAILABLE, 504)
_TASK_PATIENCE = 45.0  # seconds a task's call is retried (the claim lapses at 60 s)
_HEARTBEAT = 10.0  # seconds between task heartbeats (Flower: about 20 s)
_BACKOFF = (0.5, 10.0)  # first and longest wait after a failed AcquireTask
_CONTENT_BACKOFF = (0.02, 0.5)  # first and longest wait for a message's contents
_CONTENT_PATIENCE = 900.0  # seconds to wait for them (Flower: 7200)


class TaskExecutor:
    """Acquire and answer a process-isolated SuperNode's ClientApp tasks, in a thread.

    Parameters
    ----------
    call
        Answers one task's Message (the worker's ClientApp, behind its site check).
    runtime_api
        The SuperNode's Runtime API, ``host:port`` (insecure, loopback).
    lock
        Held while the ClientApp answers a task (shared with the socket server).
    poll
        Seconds between two requests for a task when none is waiting.
    clientapps
        The app components whose tasks are answered.
    """

    def __init__(
        self,
        call: Callable[[Message, Context], Message],
        runtime_api: str,
        *,
        lock: threading.Lock | None = None,
        poll: float = 0.1,
        clientapps: frozenset[str] = DURE_CLIENTAPPS,
    ) -> None:
        self._call, self._address, self._poll = call, runtime_api, poll
        self._lock = lock or threading.Lock()
        self._clientapps = clientapps
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, name="dure-executor", daemon=True)
        self._tasks: set[threading.Thread] = set()

    def start(self) -> None:
        """Start acquiring tasks in a background thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Take no new task; wait up to ``timeout`` seconds for the running ones."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():  # first: it is the only one that adds tasks
            self._thread.join(timeout)
        for thread in list(self._tasks):
            thread.join(max(deadline - time.monotonic(), 0))

    def run(self) -> None:
        """Acquire and answer tasks until :meth:`stop` (the thread's body)."""
        version = RuntimeVersionHttpInterceptor(component_name="SuperExec")
        client = _client(self._address, None, version)
        request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP.value])
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    acquired = client.AcquireTask(request)
                except Exception as exc:  # the SuperNode is down or restarting: back off
                    failures += 1
                    if failures == 1:
                        _log.warning("the SuperNode at %s is unreachable: %s", self._address, exc)
                    self._stopping.wait(min(_BACKOFF[0] * 2 ** (failures - 1), _BACKOFF[1]))
                    continue
                if failures:
                    _log.info("the SuperNode at %s is reachable again", self._address)
                    failures = 0
                if acquired.HasField("task") and acquired.token:
                    self._start_task(acquired.token)
                else:
                    self._stopping.wait(self._poll)
        finally:
            client.close()

    def _start_task(self, token: str) -> None:
        """Run one task in a thread of its own, as Flower runs a process per task.

        A task whose contents never arrive (its run ended while the SuperNode was
        receiving it: Flower 1.41 leaves such a task pending) must not keep the
        next tasks waiting; only the ClientApp's call takes the lock.
        """
        self._tasks = {thread for thread in self._tasks if thread.is_alive()}
        thread = threading.Thread(target=self._run_task, args=(token,), name="dure-task")
        thread.daemon = True
        self._tasks.add(thread)
        thread.start()

    def _run_task(self, token: str) -> None:
        """What ``flwr-clientapp`` does for one task, without installing or loading the FAB."""
        client = _client(
            self._address,
            _task_retry(),
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            RuntimeTokenHttpInterceptor(token),
        )
        heartbeat = _Heartbeat(client)
        try:
            try:
                context, status, details = self._answer(client)
            finally:
                heartbeat.stop()
            push_task_output(client, context, status, details)  # logs its own failure
        except Exception:  # no reply reached the SuperNode: let the claim lapse
            _log.exception("a task could not be answered; the SuperNode will answer it")
        finally:
            client.close()

    def _answer(self, client: RuntimeHttpClient) -> tuple[Context, str, str]:
        """Pull the task's Message, answer it, push the reply; return the task's outcome."""
        message, context, fab = _pull_task_input(client)
        component = _clientapp_of(fab.content)
        if component not in self._clientapps:
            details = f"this factory answers Dure runs only, not the app {component!r}"
            _log.warning("refused a task of run %s: %s", context.run_id, details)
            site = f"urn:dure:site:{context.node_config.get('dure-site', 'unknown')}"
            reply = refusal(message, FOREIGN_APP, site, None, [f"[worker.foreign-app] {details}"])
            push_message(client, reply, context)
            return context, SubStatus.FAILED, details
        try:
            with self._lock:
                reply = self._call(message, context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as exc:  # as flwr-clientapp answers a ClientApp exception
            _log.exception("the ClientApp raised")
            status, details = SubStatus.FAILED, f"{type(exc)}:<'{exc}'>"
            code = ErrorCode.CLIENT_APP_RAISED_EXCEPTION
            reply = Message(Error(code=code, reason=details), reply_to=message)
        push_message(client, reply, context)
        return context, status, details


def _pull_task_input(client: RuntimeHttpClient) -> tuple[Message, Context, Fab]:
    """The task's Message, Context and FAB, as ``flwr-clientapp`` pulls them.

    Flower's own ``pull_task_input`` waits 1 s (then 2, 4 … up to 10 s) when it
    asks for contents the SuperNode has not stored yet, and the SuperNode offers
    the task before its contents are stored: that first early ask cost a second
    on every round.  This asks again after 20 ms, doubling up to 0.5 s, and
    gives up after 15 minutes (a task whose run ended while the SuperNode was
    receiving it never gets its contents).
    """
    task = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id, TaskIdentity.run_id = task.task_id, task.run.run_id
    TaskIdentity.node_id = task.context.node_id
    context, fab = context_from_proto(task.context), fab_from_proto(task.fab)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise RuntimeError("the SuperNode offered a task without a message")
    node, tree = Node(node_id=context.node_id), pulled.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(
            client.ConfirmMessageReceived, node, context.run_id
        ),
        return_type=Message,
        max_time=_CONTENT_PATIENCE,
        initial_backoff=_CONTENT_BACKOFF[0],
        backoff_cap=_CONTENT_BACKOFF[1],
    )
    message.metadata.__dict__["_message_id"] = tree.object_id  # as Flower sets it
    return message, context, fab


def _clientapp_of(fab: bytes) -> str | None:
    """The FAB's ``clientapp`` component, read from its ``pyproject.toml`` (data only)."""
    try:
        component = get_fab_config(fab)["tool"]["flwr"]["app"]["components"]["clientapp"]
    except Exception:  # not a FAB Flower accepts, or no ClientApp: not a Dure run
        return None
    return component if isinstance(component, str) else None


class _Heartbeat:
    """Keep a task's claim alive while it runs; never signals the process."""

    def __init__(self, client: RuntimeHttpClient) -> None:
        self._client, self._stopping = client, threading.Event()
        self._thread = threading.Thread(target=self._run, name="dure-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(_HEARTBEAT):
            try:
                alive = self._client.SendTaskHeartbeat(SendTaskHeartbeatRequest()).success
            except Exception as exc:  # retried at the next beat
                _log.warning("a task heartbeat failed: %s", exc)
                continue
            if not alive:
                _log.warning("the SuperNode no longer holds the running task")
                return


def _permanent(exc: Exception) -> bool:
    """Whether a failed Runtime call is not worth retrying (refused, not unreachable)."""
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code not in _TRANSIENT


def _task_retry() -> RetryInvoker:
    """Retry a task's calls through short outages, for as long as its claim can last."""
    return RetryInvoker(
        lambda: exponential(base_delay=0.2, max_delay=5),
        (httpx.TransportError, httpx.HTTPStatusError),
        max_tries=None,
        max_time=_TASK_PATIENCE,
        should_giveup=_permanent,
    )


def _client(address: str, retry: RetryInvoker | None, *interceptors: object) -> RuntimeHttpClient:
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=list(interceptors),  # type: ignore[arg-type]
        retry_invoker=retry,
    )
