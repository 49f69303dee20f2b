"""``python -m dure.client.federation.supernode``: Flower's SuperNode, paced for short rounds.

Flower 1.41's SuperNode loop (``flwr.supernode.start_client_internal``) sleeps a
hard-coded 3 s after every pull that finds no message, and 0.5 s between its
checks for the ClientApp's reply; neither is a setting.  Between two rounds every
SuperNode is idle (its pull right after sending its reply finds nothing, since
the next round needs every reply and the aggregate), so a round can start no
sooner than 3 s after the last reply of the round before: a floor under every
round however fast the training is.

This entry point runs Flower's own ``flower-supernode`` (same options, same
gRPC transport, TLS and SuperNode authentication, same state and object store)
with those two waits set:

- ``--idle-poll S``: seconds between pulls while no message waits (Flower: 3).
  Each pull is one authenticated request to the SuperLink; 0.25 s at 100
  factories is about 400 small requests a second there.
- ``--reply-poll S``: seconds between checks for the ClientApp's reply, a local
  lookup (Flower: 0.5), and the first wait before asking the SuperLink again
  for a message's contents that are not there yet (Flower: 1 s, doubling up to
  10 s).  The SuperLink shows a message as soon as it is pushed, before its
  contents have arrived, so the first ask often comes too early; a 1 s wait
  there costs a second on a round that trains in a tenth of one.

All other options are ``flower-supernode``'s.  The waits are set by giving the
loop's module a ``time`` whose ``sleep`` maps Flower's two intervals to these,
and a ``pull_objects`` with a shorter backoff (:data:`PULL_BACKOFF_CAP_S`);
before starting, :func:`pace` checks that the installed loop still has exactly
those waits and refuses to start otherwise (a Flower upgrade that changed the
loop needs this module looked at, not silently ignored).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

from dure.client.federation.errors import FederationSetupError

__all__ = ["FLOWER_IDLE_S", "FLOWER_REPLY_S", "PULL_BACKOFF_CAP_S", "Pacing", "main", "pace"]

_LOOP = "flwr.supernode.start_client_internal"
FLOWER_IDLE_S = 3.0
"""Flower 1.41's wait after a pull that found no message."""
FLOWER_REPLY_S = 0.5
"""Flower 1.41's wait between checks for the ClientApp's reply (and its contents)."""
PULL_BACKOFF_CAP_S = 1.0
"""The longest wait between two asks for a message's contents (Flower: 10 s)."""
_EXPECTED = {f"time.sleep({FLOWER_IDLE_S:g})": 1, f"time.sleep({FLOWER_REPLY_S:g})": 2}


class Pacing:
    """A stand-in for the loop's ``time`` module: Flower's waits mapped to Dure's.

    ``sleep(3)`` waits ``idle`` seconds and ``sleep(0.5)`` waits ``reply``
    seconds; any other duration, and every other attribute, is the ``time``
    module's own.
    """

    def __init__(
        self, idle: float, reply: float, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if not (0 < idle <= FLOWER_IDLE_S and 0 < reply <= FLOWER_REPLY_S):
            raise FederationSetupError(
                f"idle poll {idle} s, reply poll {reply} s: out of range",
                hint=f"Use 0 < idle poll <= {FLOWER_IDLE_S:g} and 0 < reply poll "
                f"<= {FLOWER_REPLY_S:g} (Flower's own waits are the longest).",
            )
        self.idle, self.reply, self._sleep = idle, reply, sleep

    def sleep(self, seconds: float) -> None:
        """Wait as Flower asked, with its two polling intervals replaced."""
        if seconds == FLOWER_IDLE_S:
            seconds = self.idle
        elif seconds == FLOWER_REPLY_S:
            seconds = self.reply
        self._sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def pace(idle: float, reply: float, loop_module: str = _LOOP) -> ModuleType:
    """Set the installed SuperNode loop's waits; return the loop's module.

    ``loop_module`` is Flower's SuperNode loop (a parameter for tests).  With
    Flower's own waits (3 s and 0.5 s) the loop is left as it is.

    Raises
    ------
    FederationSetupError
        The installed Flower's loop is not the one this was written for (its
        waits are not ``time.sleep(3)`` once and ``time.sleep(0.5)`` twice).
    """
    from flwr.supercore.inflatable import inflatable_utils

    pacing = Pacing(idle, reply)
    loop = importlib.import_module(loop_module)
    if (idle, reply) == (FLOWER_IDLE_S, FLOWER_REPLY_S):
        return loop  # Flower's own waits: nothing to set, nothing to check
    source = inspect.getsource(loop)
    found = {call: source.count(call) for call in _EXPECTED}
    pulls = getattr(loop, "pull_objects", None)
    if (
        getattr(loop, "time", None) is not time
        or found != _EXPECTED
        or pulls is not inflatable_utils.pull_objects
    ):
        from flwr.supercore.version import package_version

        raise FederationSetupError(
            f"Flower {package_version}'s SuperNode loop ({loop_module}) is not the one whose "
            f"waits Dure sets (found {found}, expected {_EXPECTED})",
            hint="Keep Flower's own waits (factory.toml: [supernode] idle_poll = 3 and "
            "reply_poll = 0.5), or install the Flower version Dure pins.",
        )
    loop.time = pacing  # type: ignore[attr-defined]
    loop.pull_objects = partial(  # type: ignore[attr-defined]
        pulls, initial_backoff=reply, backoff_cap=PULL_BACKOFF_CAP_S
    )
    return loop


def main(argv: list[str] | None = None) -> int:
    """``python -m dure.client.federation.supernode [--idle-poll S] [--reply-poll S] …``."""
    parser = argparse.ArgumentParser(
        prog="python -m dure.client.federation.supernode",
        description="flower-supernode with its polling intervals set; "
        "every other option is flower-supernode's",
    )
    parser.add_argument("--idle-poll", type=float, default=FLOWER_IDLE_S)
    parser.add_argument("--reply-poll", type=float, default=FLOWER_REPLY_S)
    args, rest = parser.parse_known_args(argv)
    try:
        pace(args.idle_poll, args.reply_poll)
    except FederationSetupError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *rest]
    flower_supernode()
    return 0


if __name__ == "__main__":
    sys.exit(main())
