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
check would prove nothing.  Every search runs twice: over the raw bytes, and
over what each connection carried once its HTTP framing is undone (HTTP/1.1,
which Flower's REST transport speaks here, or HTTP/2 with gRPC messages): every
body reassembled and, if compressed, decoded (:mod:`tests.integration.leak.framing`;
bytes it cannot read, or a coding it cannot undo, fail the test).
Controls make sure it can fail, in both directions: the same search finds each
marker once it is deliberately leaked in any of the searched forms; the
coordinator -> factory capture holds the initial model's every tensor, whole,
in the reassembled messages;
the factory -> coordinator capture holds what factory-a legitimately signs and
uploads each round (its claim's update digest and episodes root, as the ledger
recorded them, inside the base64 of the signed claim); and the factory's upload
per round is at least one model.
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
from tests.integration.leak.framing import Deframed, deframe
from tests.integration.leak.markers import (
    Markers,
    encodings,
    find_marker,
    marked_episode,
    new_markers,
)
from tests.integration.leak.plaintext import PlainCluster, plain_cluster

from dure.client.store.store import EpisodeStore
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    LedgerEntry,
    StatisticsShared,
)
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
    up_messages: dict[str, Deframed]
    down_messages: dict[str, Deframed]
    model_bytes: int
    initial_model: dict[str, np.ndarray]
    seconds: float


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    root = tmp_path_factory.mktemp("leak")
    markers = new_markers()
    run = {"round_timeout": "300.0", "hidden": "[256, 256]"}
    with plain_cluster(root, SITES, run) as cluster:
        home = cluster.layout.site(MARKED) / "home"
        with EpisodeStore.open(home) as store:
            store.add([marked_episode(markers, 77, f"{MARKED}")])
        job = sign_job(cluster.layout, rounds=ROUNDS, job_id="bc-leak-1", local_steps=2)
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
    proxies = cluster.proxies
    yield Capture(
        cluster,
        markers,
        entries,
        {site: proxy.sent("up") for site, proxy in proxies.items()},
        {site: proxy.sent("down") for site, proxy in proxies.items()},
        {site: _deframed(proxy.streams("up"), client=True) for site, proxy in proxies.items()},
        {site: _deframed(proxy.streams("down"), client=False) for site, proxy in proxies.items()},
        sum(array.nbytes for array in final.values()),
        initial,
        seconds,
    )


def _deframed(streams: list[bytes], *, client: bool) -> Deframed:
    """Every connection of one direction deframed (:func:`deframe`), joined."""
    joined = Deframed()
    for stream in streams:
        one = deframe(stream, client=client)
        joined.messages += one.messages
        joined.headers += one.headers
        joined.tail += one.tail
        joined.compressed += one.compressed
    return joined


def _searched(capture: Capture, direction: str, site: str) -> dict[str, bytes]:
    """The raw capture and the reassembled messages of one direction, by name."""
    if direction == "up":
        return {"raw": capture.up[site], "messages": capture.up_messages[site].searchable()}
    return {"raw": capture.down[site], "messages": capture.down_messages[site].searchable()}


def test_the_marked_episode_is_in_the_run(capture: Capture) -> None:
    shared = {e.site: e.episodes for e in capture.entries if isinstance(e, StatisticsShared)}
    assert shared == {"urn:dure:site:factory-a": 4, "urn:dure:site:factory-b": 3}
    for entry in capture.entries:
        if isinstance(entry, AggregateCommitted):
            assert "urn:dure:site:factory-a" in entry.contributors


def test_no_marker_leaves_the_marked_factory_in_any_form(capture: Capture) -> None:
    for site in SITES:
        for name, marker in capture.markers.all().items():
            for direction in ("up", "down"):
                for view, haystack in _searched(capture, direction, site).items():
                    found = find_marker(haystack, marker)
                    assert found == [], f"{name} marker in {site}'s {direction} {view}: {found}"


def test_every_captured_message_was_read(capture: Capture) -> None:
    """The deframing understood both directions of every connection (else it raised)."""
    for site in SITES:
        up, down = capture.up_messages[site], capture.down_messages[site]
        assert up.messages and down.messages, site
        print(
            f"{site}: {len(up.messages)} messages up ({up.compressed} compressed), "
            f"{len(down.messages)} down ({down.compressed} compressed)"
        )


def test_the_upload_is_searchable_what_factory_a_signs_is_found_in_it(capture: Capture) -> None:
    """Factory -> coordinator control: the claim factory-a signed each round, in its upload.

    The update digest and episodes root travel inside the base64 payload of the
    signed claim; the ledger recorded the values the coordinator read from it.
    A compressed or otherwise unreadable upload would fail here.
    """
    accepted = [
        e
        for e in capture.entries
        if isinstance(e, ContributionAccepted) and e.site == f"urn:dure:site:{MARKED}"
    ]
    assert [e.round for e in accepted] == list(range(1, ROUNDS + 1))
    messages = capture.up_messages[MARKED].searchable()
    for entry in accepted:
        for value in (entry.update_digest, entry.episodes_root):
            assert find_marker(messages, value.encode()), (entry.round, value)


def test_the_download_is_searchable_the_initial_model_is_found_whole(capture: Capture) -> None:
    """Coordinator -> factory control: every initial tensor, whole, in the reassembled messages.

    Framing (HTTP/2 frames, chunked bodies) may cut a tensor in the raw capture;
    the reassembled messages must hold each one whole.
    """
    messages = capture.down_messages[MARKED].searchable()
    for name, array in capture.initial_model.items():
        data = array.astype("<f4").tobytes()
        assert data in messages, name


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
