"""Child processes of ``dure coordinator up`` and ``dure factory up``.

:class:`Supervisor` starts the children (Flower's executables from this
environment, with telemetry and the update check off), waits for their ports,
forwards ``SIGTERM``/``SIGINT`` to every child, and when one child exits on its
own stops the others and raises :class:`DeploymentProcessError` naming it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from dure.policies.errors import DureError

__all__ = [
    "RETRY_S",
    "DeploymentProcessError",
    "Supervisor",
    "executable",
    "flower_environment",
]

_GRACE_S = 20.0
RETRY_S = 10.0


class DeploymentProcessError(DureError):
    """A deployment process that cannot start, or that exited on its own."""

    code = "cli.process"
    default_hint = "Read the process's output above; fix its configuration and start again."


def executable(name: str) -> str:
    """The path of ``name`` next to this Python (the environment's scripts), else on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise DeploymentProcessError(
            f"{name} is not installed", hint="Install Dure with its Flower dependency (flwr)."
        )
    return found


def flower_environment(flwr_home: Path | None = None) -> dict[str, str]:
    """The environment (this process's) with Flower's network calls off and its scripts on PATH."""
    env = dict(os.environ)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    return env


class Supervisor:
    """Starts children and keeps them running together (see the module docstring)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._retries: dict[str, int] = {}
        self._stop: int | None = None
        self._previous: dict[int, Any] = {}

    def start(self, name: str, argv: Sequence[str], retries: int = 0) -> subprocess.Popen[bytes]:
        """Start ``argv`` as child ``name`` (its output goes to ours).

        A child with ``retries`` is started again (every ``RETRY_S`` seconds, that many
        times in all) when it exits on its own, e.g. a SuperNode the SuperLink does
        not let in yet because it still counts the crashed previous one as online.
        """
        if not self._previous:  # from the first child on, a signal stops them all
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            child = subprocess.Popen(list(argv), env=self.env)
        except OSError as exc:
            self.stop()
            raise DeploymentProcessError(f"{name}: cannot start ({exc.strerror})") from exc
        self.children = [(n, c) for n, c in self.children if n != name] + [(name, child)]
        self._retries.setdefault(name, retries)
        return child

    def wait_port(self, name: str, host: str, port: int, timeout: float = 60.0) -> None:
        """Wait until ``host:port`` accepts connections; fail if child ``name`` dies first."""
        child = dict(self.children)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_signal()
            if child.poll() is not None:
                self.stop()
                raise DeploymentProcessError(f"{name} exited with code {child.returncode}")
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise DeploymentProcessError(f"{name} did not listen on {host}:{port} in {timeout:.0f} s")

    def wait_file(self, name: str, path: Path, timeout: float = 300.0) -> None:
        """Wait until child ``name`` created ``path`` (e.g. its socket); fail if it dies first."""
        child = dict(self.children)[name]
        deadline = time.monotonic() + timeout
        while not path.exists():
            self._check_signal()
            if child.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DeploymentProcessError(f"{name} did not create {path} (code {child.poll()})")
            time.sleep(0.2)

    def supervise(self) -> None:
        """Run until a signal (stop every child, return) or a child's exit (stop, raise)."""
        try:
            while self._stop is None:
                for name, child in list(self.children):
                    if child.poll() is not None and self._retries[name] > 0:
                        self._retry(name, child)
                    elif child.poll() is not None:
                        self.stop()
                        raise DeploymentProcessError(
                            f"{name} exited with code {child.returncode}; stopped the others",
                            hint="Read its output above, fix the cause and run 'up' again.",
                        )
                time.sleep(0.2)
            self.stop(self._stop)
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous = {}

    def _check_signal(self) -> None:
        """While starting: on a signal, stop the children started so far and fail."""
        if self._stop is not None:
            self.stop(self._stop)
            raise DeploymentProcessError(f"stopped by signal {self._stop} while starting")

    def _retry(self, name: str, child: subprocess.Popen[bytes]) -> None:
        self._retries[name] -= 1
        print(
            f"dure: {name} exited with code {child.returncode}; starting it again in "
            f"{RETRY_S:.0f} s ({self._retries[name]} tries left)",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + RETRY_S
        while self._stop is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._stop is None:
            self.start(name, [str(arg) for arg in child.args])  # type: ignore[union-attr]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to every running child, wait, kill those still running."""
        for _, child in self.children:
            if child.poll() is None:
                child.send_signal(sig)
        deadline = time.monotonic() + _GRACE_S
        for _, child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        self._stop = sig


_SIGNALS = (signal.SIGTERM, signal.SIGINT)
