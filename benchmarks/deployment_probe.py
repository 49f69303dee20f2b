"""Timing probes inside the per-task ``flwr-clientapp`` processes of the deployment benchmark.

Light on purpose (no torch, nothing of Dure's but the light ClientApp): it is
imported by every task process.  Each task appends one JSON line to the file
named by the node config key ``bench-log``: when the process started (from
``/proc``), when this module began and finished importing, and when the
ClientApp call began and ended (wall-clock seconds since the epoch, so the
coordinator's and the workers' clocks compare).

:data:`dure_client` is Dure's light ClientApp (:mod:`dure.client.federation.light`)
wrapped with the probe.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

MODULE_STARTED = time.time()

from flwr.app import Context, Message  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402

from dure.client.federation.light import WorkerClientApp  # noqa: E402

__all__ = ["MODULE_STARTED", "ProbedApp", "dure_client", "log_task", "process_started"]


def process_started() -> float:
    """This process's start, seconds since the epoch (``/proc``, 10 ms resolution).

    The boot time is now minus ``CLOCK_BOOTTIME`` (``/proc/stat``'s ``btime`` is
    whole seconds: up to 1 s off).
    """
    with open("/proc/self/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = int(fields[19])  # field 22 of stat(5), counted after the command name
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def log_task(context: Context, message: Message, record: dict[str, Any]) -> None:
    """Append ``record`` (with the task's identity) to the node's ``bench-log``."""
    path = context.node_config.get("bench-log")
    if not isinstance(path, str):
        return
    record |= {
        "node": context.node_id,
        "type": message.metadata.message_type,
        "group": message.metadata.group_id,
        "pid": os.getpid(),
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


class ProbedApp(ClientApp):
    """A ClientApp that times ``inner`` (and this process) for every task."""

    def __init__(
        self, inner: Callable[[Message, Context], Message], imported: float, started: float
    ) -> None:
        super().__init__()
        self._inner, self._imported, self._started = inner, imported, started

    def __call__(self, message: Message, context: Context) -> Message:
        """Call the inner app; log this process's timeline."""
        call = time.time()
        reply = self._inner(message, context)
        record = {
            "process": process_started(),
            "module": self._started,
            "imported": self._imported,
            "call": call,
            "end": time.time(),
        }
        log_task(context, message, record)
        return reply


dure_client = ProbedApp(WorkerClientApp(), time.time(), MODULE_STARTED)
"""Dure's light ClientApp, probed: ``benchmarks.deployment_probe:dure_client``."""
