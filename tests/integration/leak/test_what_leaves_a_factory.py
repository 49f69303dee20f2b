"""What leaves a factory: every byte its SuperNode sends, captured on loopback.

A real ``flower-superlink`` and two factories as ``dure factory up`` runs them
by default (the warm worker running the tasks of its paced ``flower-supernode``)
run a signed two-round job through ``flwr run`` (Dure's ServerApp and ClientApp,
the ledger on SQLite).  Each SuperNode dials the SuperLink through its own
recording TCP proxy, so every byte a factory's processes send to the
coordinator's side is captured (the worker talks only to its own SuperNode, on
loopback).  factory-a's store holds an extra episode carrying random markers in
what stays on site: the operator pseudonym, the cell, a tag, the language
instruction, the source URI (text marker) and six ``observation.state`` values
whose float32 bytes spell a numeric marker.  The task name is not marked: the
task vocabulary is shared on purpose (statistics query), as are feature
moments, never a frame.

The transport is plaintext (``--insecure``) on purpose: under TLS the capture
would hold ciphertext and a search for the markers could not fail, so the
check would prove nothing.  Controls make sure it can fail: the same search
finds each marker once it is deliberately leaked in any of the searched forms
into the captured bytes, the capture holds the model's own float32 bytes (the
coordinator's initial model, sent to the factory in plaintext), and the
factory's upload per round is at least one model.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tests.integration.deployment.cluster import sign_job
from tests.integration.leak.markers import (
    Markers,
    encodings,
    find_marker,
    marked_episode,
    new_markers,
)
from tests.integration.leak.plaintext import PlainCluster, plain_cluster

from dure.client.store.store import EpisodeStore
from dure.policies.entries import AggregateCommitted, LedgerEntry, StatisticsShared
from dure.server.federation.models import DirectoryModelStore

pytestmark = [pytest.mark.slow]

SITES = ("factory-a", "factory-b")
MARKED = "factory-a"
ROUNDS = 2
MAX_FACTOR = 3.0


@dataclass(frozen=True)
class Capture:
    """The job's outcome and what each factory's proxy saw."""

    cluster: PlainCluster
    markers: Markers
    entries: list[LedgerEntry]
    up: dict[str, bytes]
    down: dict[str, bytes]
    model_bytes: int
    initial_model: dict[str, np.ndarray]
    seconds: float


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    root = tmp_path_factory.mktemp("leak")
    markers = new_markers()
    run = {"local_steps": "2", "round_timeout": "300.0", "hidden": "[256, 256]"}
    with plain_cluster(root, SITES, run) as cluster:
        home = cluster.layout.site(MARKED) / "home"
        with EpisodeStore.open(home) as store:
            store.add([marked_episode(markers, 77, f"{MARKED}")])
        job = sign_job(cluster.layout, rounds=ROUNDS, job_id="bc-leak-1")
        started = time.monotonic()
        done = cluster.run_job(job)
        seconds = time.monotonic() - started
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        entries = cluster.entries()
        models = DirectoryModelStore(cluster.config.run.models)
        committed = [e for e in entries if isinstance(e, AggregateCommitted)]
        assert [e.round for e in committed] == [1, 2], [e.kind for e in entries]
        final = models.get(committed[-1].model_digest)
        initial = models.get(committed[0].parent_model or "")
    # the processes have stopped: every byte they sent is in the proxies
    yield Capture(
        cluster,
        markers,
        entries,
        {site: proxy.sent("up") for site, proxy in cluster.proxies.items()},
        {site: proxy.sent("down") for site, proxy in cluster.proxies.items()},
        sum(array.nbytes for array in final.values()),
        initial,
        seconds,
    )


def test_the_marked_episode_is_in_the_run(capture: Capture) -> None:
    shared = {e.site: e.episodes for e in capture.entries if isinstance(e, StatisticsShared)}
    assert shared == {"urn:dure:site:factory-a": 4, "urn:dure:site:factory-b": 3}
    for entry in capture.entries:
        if isinstance(entry, AggregateCommitted):
            assert "urn:dure:site:factory-a" in entry.contributors


def test_no_marker_leaves_the_marked_factory_in_any_form(capture: Capture) -> None:
    for site in SITES:
        for name, marker in capture.markers.all().items():
            assert find_marker(capture.up[site], marker) == [], f"{name} marker sent by {site}"
            assert find_marker(capture.down[site], marker) == [], f"{name} marker sent to {site}"


def test_the_search_finds_a_deliberately_leaked_marker(capture: Capture) -> None:
    sent = capture.up[MARKED]
    half = len(sent) // 2
    for name, marker in capture.markers.all().items():
        for form, encoded in encodings(marker).items():
            leaked = sent[:half] + encoded + sent[half:]
            assert form in find_marker(leaked, marker), (name, form)
        field = b'{"operator": "' + marker + b'"}'
        for prefix in (b"", b"x", b"xy"):
            leaked = sent[:half] + base64.b64encode(prefix + field) + sent[half:]
            assert find_marker(leaked, marker), (name, prefix)


def test_the_capture_holds_the_model_in_plaintext(capture: Capture) -> None:
    received = capture.down[MARKED]
    for name, array in capture.initial_model.items():
        assert array.astype("<f4").tobytes()[:256] in received, name


def test_bytes_sent_per_round_are_within_a_small_factor_of_the_model(capture: Capture) -> None:
    model = capture.model_bytes
    lines = [f"model: {model} bytes (float32 tensors), {ROUNDS} rounds, {capture.seconds:.0f} s"]
    for site in SITES:
        per_round = len(capture.up[site]) / ROUNDS
        down = len(capture.down[site]) / ROUNDS
        lines.append(
            f"{site}: sent {len(capture.up[site])} bytes, {per_round:.0f} per round "
            f"= {per_round / model:.2f} x model; received {down:.0f} per round"
        )
        assert model <= per_round <= MAX_FACTOR * model, lines
    print("\n".join(lines))
    Path(capture.cluster.processes.logs / "figures.txt").write_text("\n".join(lines) + "\n")
