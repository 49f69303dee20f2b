"""Dure's pacing of Flower 1.41's fixed waits: the SuperNode loop and the ServerApp's Grid.

The SuperNode's loop (``flwr.supernode.start_client_internal``) and the Grid
(``flwr.superlink.grid.http_grid``) are the installed Flower's own modules; each
test puts back what it changed.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from flwr.supercore.inflatable import inflatable_utils

from dure.client.federation.errors import FederationSetupError
from dure.client.federation.supernode import (
    FLOWER_IDLE_S,
    FLOWER_REPLY_S,
    PULL_BACKOFF_CAP_S,
    Pacing,
    pace,
)
from dure.server.federation.exchange import quicken_reply_pulls

LOOP = "flwr.supernode.start_client_internal"
GRID = "flwr.superlink.grid.http_grid"


@pytest.fixture
def restored() -> Iterator[None]:
    """Put the loop's ``time`` and both modules' ``pull_objects`` back afterwards."""
    loop, grid = importlib.import_module(LOOP), importlib.import_module(GRID)
    saved = (loop.time, loop.pull_objects, grid.pull_objects)
    yield
    loop.time = saved[0]  # type: ignore[attr-defined]
    loop.pull_objects = saved[1]  # type: ignore[attr-defined]
    grid.pull_objects = saved[2]  # type: ignore[attr-defined]


def test_flowers_two_waits_become_dures_and_others_stay() -> None:
    waits: list[float] = []
    pacing = Pacing(0.25, 0.05, sleep=waits.append)
    for seconds in (FLOWER_IDLE_S, FLOWER_REPLY_S, 0.2, 7.0):
        pacing.sleep(seconds)
    assert waits == [0.25, 0.05, 0.2, 7.0]
    assert pacing.monotonic is time.monotonic  # the rest is the time module's own


@pytest.mark.parametrize(("idle", "reply"), [(0, 0.05), (3.5, 0.05), (0.5, 0), (0.5, 0.6)])
def test_waits_out_of_range_are_refused(idle: float, reply: float) -> None:
    with pytest.raises(FederationSetupError, match="out of range"):
        Pacing(idle, reply)


@pytest.mark.usefixtures("restored")
def test_the_installed_loop_is_paced() -> None:
    loop = pace(0.25, 0.05)
    assert isinstance(loop.time, Pacing)
    assert (loop.time.idle, loop.time.reply) == (0.25, 0.05)
    pulls = loop.pull_objects
    assert isinstance(pulls, partial) and pulls.func is inflatable_utils.pull_objects
    assert pulls.keywords == {"initial_backoff": 0.05, "backoff_cap": PULL_BACKOFF_CAP_S}


def test_a_loop_with_other_waits_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "other_loop.py").write_text(
        "import time\nfrom flwr.supercore.inflatable.inflatable_utils import pull_objects\n\n"
        "def run():\n    time.sleep(2)\n    time.sleep(0.5)\n    time.sleep(0.5)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FederationSetupError, match="not the one whose waits") as caught:
        pace(0.25, 0.05, loop_module="other_loop")
    assert "idle_poll = 3 and reply_poll = 0.5" in caught.value.hint
    assert sys.modules["other_loop"].time is time  # left as it was
    assert pace(FLOWER_IDLE_S, FLOWER_REPLY_S, loop_module="other_loop").time is time


@pytest.mark.usefixtures("restored")
def test_the_grid_asks_again_for_reply_contents_sooner_once() -> None:
    assert quicken_reply_pulls() and quicken_reply_pulls()  # idempotent
    pulls = sys.modules[GRID].pull_objects
    assert isinstance(pulls, partial) and pulls.func is inflatable_utils.pull_objects
    assert pulls.keywords == {"initial_backoff": 0.02, "backoff_cap": 0.5}


@pytest.mark.usefixtures("restored")
def test_a_grid_pulling_otherwise_keeps_flowers_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[GRID], "pull_objects", lambda *a, **k: {})
    assert not quicken_reply_pulls()


def test_the_entry_point_names_a_bad_wait() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "dure.client.federation.supernode", "--idle-poll", "9"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "idle poll 9.0 s" in run.stderr and "hint:" in run.stderr
