"""SecAgg+ rounds through Flower's own workflow and mod, with real Messages (in-process Grid).

Four factories whose policies require secure aggregation; the coordinator runs
``SecAggPlusWorkflow`` stage by stage and each factory ``secaggplus_mod`` around
Dure's gate and training.  The nodes keep their Flower context between messages,
as a SuperNode does (the SecAgg+ mod keeps its keys there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from tests.builders.federation import (
    Consortium,
    build_consortium,
    linear_trainer,
    plain_policy,
)
from tests.builders.flower import LocalGrid, LocalNode
from tests.integration.ledger.independent_verifier import verify_export_folder

from dure.client.federation.clientapp import create_client_app
from dure.client.federation.secagg import masked_digest as client_masked_digest
from dure.client.federation.settings import FactorySettings
from dure.client.federation.trainer import LocalResult, LocalTask
from dure.policies.audit.documents import DocumentSource
from dure.policies.audit.replay import replay
from dure.policies.canonical import JsonValue
from dure.policies.contribution import state_digest
from dure.server.federation.errors import FederationError
from dure.server.federation.secagg import threshold
from dure.server.federation.secagg_grid import masked_digest as server_masked_digest
from dure.server.ledger.export import export_ledger

SITES = ("factory-a", "factory-b", "factory-c", "factory-d")
QUICK: dict[str, Any] = {
    "query_timeout": 1.0,
    "round_timeout": 1.0,
    "poll": 0.01,
}  # for nodes that never answer
Updates = dict[int, dict[str, LocalResult]]  # round -> site -> local result


def _secure_policy(name: str) -> dict[str, JsonValue]:
    return plain_policy(name, secure_aggregation=True)


def _secure_aggregation(**changes: Any) -> dict[str, Any]:
    return {"strategy": "fedavg", "secure": True, "norm_bound": "10.0", "params": {}, **changes}


@dataclass
class StatefulNode(LocalNode):
    """A virtual SuperNode that keeps its Flower context across messages of a run."""

    contexts: dict[int, Context] = field(default_factory=dict)

    def context(self, run_id: int) -> Context:
        """The node's persistent context for ``run_id``."""
        if run_id not in self.contexts:
            self.contexts[run_id] = super().context(run_id)
        return self.contexts[run_id]


def _grid(
    consortium: Consortium, updates: Updates, fail: tuple[str, int] | None = None
) -> LocalGrid:
    """One stateful node per site; each records the local result it trained, by round.

    ``fail`` = (site, round): that site's training raises in that round (its
    ClientApp fails after the key exchange, at the masked-vector stage).
    """
    nodes = []
    for index, site in enumerate(consortium.sites.values()):

        def trainer(task: LocalTask, name: str = site.name) -> LocalResult:
            if (name, task.seed) == fail:
                raise RuntimeError(f"{name} crashed while training")
            result = linear_trainer(task)
            updates.setdefault(task.seed, {})[name] = result
            return result

        app = create_client_app(_fixed(site.settings), trainer, consortium.now)
        nodes.append(StatefulNode(101 + index, app, {"partition-id": index}))
    return LocalGrid(nodes)


def _fixed(settings: FactorySettings) -> Callable[[Context], FactorySettings]:
    return lambda _context: settings


def _fedavg(results: dict[str, LocalResult]) -> dict[str, np.ndarray[Any, Any]]:
    total = sum(r.examples for r in results.values())
    names = next(iter(results.values())).arrays
    return {
        name: np.sum([r.arrays[name].astype(np.float64) * r.examples for r in results.values()], 0)
        / total
        for name in names
    }


def _documents(consortium: Consortium) -> DocumentSource:
    envelopes = [consortium.job(aggregation=_secure_aggregation()).to_json()]
    envelopes += [s.policy.to_json() for s in consortium.sites.values()]
    envelopes += [s.identity.to_json() for s in consortium.sites.values()]
    return DocumentSource.from_envelopes(envelopes, operator_keys=[consortium.operator.public])


def _audit(consortium: Consortium) -> None:
    report = replay(list(enumerate(consortium.entries())), _documents(consortium))
    assert report.violations == ()


def test_four_sites_aggregate_securely_to_the_plain_fedavg(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_secure_policy)
    updates: Updates = {}
    report = consortium.coordinator().run(
        _grid(consortium, updates), consortium.job(aggregation=_secure_aggregation())
    )
    assert [r.status for r in report.rounds] == ["committed"] * 3
    commits = consortium.of_kind("aggregate_committed")
    for commit, seed in zip(commits, sorted(updates), strict=True):
        expected = _fedavg(updates[seed])
        got = consortium.models.get(commit.model_digest)
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, atol=1e-4)
        assert commit.contributors == tuple(f"urn:dure:site:{s}" for s in SITES)
    accepted = consortium.of_kind("contribution_accepted")
    assert len(accepted) == 12 and all(a.secure for a in accepted)
    plain = {state_digest(r.arrays) for round in updates.values() for r in round.values()}
    assert not plain & {a.update_digest for a in accepted}  # no per-site update digest leaks
    shared = consortium.of_kind("statistics_shared")
    assert [s.site for s in shared] == [f"urn:dure:site:{s}" for s in SITES]
    export_ledger(consortium.ledger.store, tmp_path / "export")
    assert verify_export_folder(tmp_path / "export", consortium.ledger.public_key()).size > 0
    _audit(consortium)
    entries = consortium.entries()  # a plain digest recorded for a secure job is a violation
    index = next(i for i, e in enumerate(entries) if e.kind == "contribution_accepted")
    entries[index] = entries[index].model_copy(update={"secure": False})
    codes = {
        (v.index, v.code)
        for v in replay(list(enumerate(entries)), _documents(consortium)).violations
    }
    assert (index, "contribution.secure_mismatch") in codes
    for site in consortium.sites.values():  # receipts of the secure contributions came back
        kept = list(site.settings.receipts_dir.glob("*contribution_accepted*.json"))
        assert len(kept) == 3


def test_dropouts_above_the_threshold_complete(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_secure_policy)
    updates: Updates = {}
    grid = _grid(consortium, updates, fail=("factory-d", 2))
    coordinator = consortium.coordinator(**QUICK)
    state = coordinator.start(grid, consortium.job(aggregation=_secure_aggregation()))
    coordinator.play(grid, state, 1)
    coordinator.play(grid, state, 2)  # factory-d fails after the key exchange
    grid.nodes[103].crashed = True  # factory-c is gone before round 3 starts
    coordinator.play(grid, state, 3)
    report = coordinator.finish(grid, state)
    assert [r.status for r in report.rounds] == ["committed"] * 3
    commits = consortium.of_kind("aggregate_committed")
    assert [len(c.contributors) for c in commits] == [4, 3, 3]
    for commit, seed in zip(commits, sorted(updates), strict=True):
        got = consortium.models.get(commit.model_digest)
        for name, value in _fedavg(updates[seed]).items():
            np.testing.assert_allclose(got[name], value, atol=1e-4)
    rejected = {(r.round, r.site): r.reasons for r in consortium.of_kind("contribution_rejected")}
    assert set(rejected) == {(2, "urn:dure:site:factory-d"), (3, "urn:dure:site:factory-c")}
    assert "collect_masked_vectors stage" in rejected[(2, "urn:dure:site:factory-d")][0]
    assert "no reply at the SecAgg+ setup stage" in rejected[(3, "urn:dure:site:factory-c")][0]
    _audit(consortium)


def test_dropouts_below_the_threshold_abort_the_round_and_are_ledgered(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_secure_policy)
    grid = _grid(consortium, {})
    coordinator = consortium.coordinator(**QUICK)
    state = coordinator.start(grid, consortium.job(aggregation=_secure_aggregation()))
    grid.nodes[103].crashed = grid.nodes[104].crashed = True
    report = coordinator.play(grid, state, 1)
    assert report.status == "aborted" and report.contributors == ()
    assert not consortium.of_kind("aggregate_committed")
    rejected = consortium.of_kind("contribution_rejected")
    assert {r.site for r in rejected} == {f"urn:dure:site:{s}" for s in SITES}
    assert all(any("round 1 aborted" in line for line in r.reasons) for r in rejected)
    assert state.model_digest == state.initial_model  # the global model stays
    _audit(consortium)


def test_a_tampered_masked_vector_is_withheld_from_the_sum(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_secure_policy)
    updates: Updates = {}
    grid = _grid(consortium, updates)

    def tamper(reply: Any) -> Any:
        record = reply.content.get(RECORD_KEY_CONFIGS)
        if record is not None and Key.MASKED_PARAMETERS in record:
            chunks = list(record[Key.MASKED_PARAMETERS])
            chunks[-1] = chunks[0]  # no longer what the claim names
            record[Key.MASKED_PARAMETERS] = chunks
        return reply

    grid.nodes[101].tamper = tamper
    report = consortium.coordinator().run(grid, consortium.job(aggregation=_secure_aggregation()))
    assert [r.status for r in report.rounds] == ["committed"] * 3
    rejected = consortium.of_kind("contribution_rejected")
    assert {r.site for r in rejected} == {"urn:dure:site:factory-a"}
    assert any("update_digest" in line for line in rejected[0].reasons)
    for commit, seed in zip(
        consortium.of_kind("aggregate_committed"), sorted(updates), strict=True
    ):
        kept = {k: v for k, v in updates[seed].items() if k != "factory-a"}
        got = consortium.models.get(commit.model_digest)
        for name, value in _fedavg(kept).items():
            np.testing.assert_allclose(got[name], value, atol=1e-4)


def test_a_site_requiring_secure_aggregation_is_refused_a_plain_job(tmp_path: Path) -> None:
    def policy(name: str) -> dict[str, JsonValue]:
        return _secure_policy(name) if name == "factory-d" else plain_policy(name)

    consortium = build_consortium(tmp_path, SITES, policy=policy)
    grid = _grid(consortium, {})
    report = consortium.coordinator().run(grid, consortium.job())
    assert [r.status for r in report.rounds] == ["committed"] * 3
    (refused,) = consortium.of_kind("site_refused")
    assert refused.site == "urn:dure:site:factory-d"
    assert any("secure aggregation" in reason for reason in refused.reasons)
    assert {"train", "query.stats"}.isdisjoint(grid.nodes[104].received)  # never sampled


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"dp": {}}, "differential privacy"), ({"strategy": "krum"}, "fedavg or fedprox")],
)
def test_unsupported_secure_jobs_are_refused_before_admission(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    consortium = build_consortium(tmp_path, SITES[:3], policy=_secure_policy)
    dp = changes.pop("dp", None)
    aggregation = _secure_aggregation(**changes)
    if aggregation["strategy"] == "krum":
        aggregation["params"] = {"num_malicious_nodes": 0}
    job = consortium.job(aggregation=aggregation, dp=dp)
    with pytest.raises(FederationError, match=message):
        consortium.coordinator().run(_grid(consortium, {}), job)
    assert not consortium.of_kind("site_admitted")


def test_both_sides_compute_the_same_masked_digest() -> None:
    from flwr.common import ndarray_to_bytes

    chunks = [ndarray_to_bytes(np.arange(6, dtype=np.int64).reshape(2, 3)), b""][:1]
    assert client_masked_digest(chunks) == server_masked_digest(chunks)


def test_the_threshold_is_a_majority_and_at_least_the_minimum() -> None:
    assert threshold(3, 4) == 3 and threshold(2, 4) == 3 and threshold(4, 4) == 4
    assert threshold(2, 2) == 2 and threshold(3, 7) == 4
