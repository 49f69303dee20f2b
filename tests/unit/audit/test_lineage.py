"""Lineage, usage and revocation impact on constructed histories with parent chains."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.builders.audit import History, digest_of, site_urn

from dure.policies.audit.errors import UnknownInLedgerError
from dure.policies.audit.lineage import LineageGraph
from dure.policies.canonical import canonical_bytes
from dure.policies.entries import AggregateCommitted
from dure.policies.examples import EXAMPLE_NOW

A, B, C, D = (site_urn(n) for n in ("factory-a", "factory-b", "factory-c", "factory-d"))
INITIAL = digest_of("initial model")


class World:
    """Three jobs: m1 (a, b, c from INITIAL), m2 (b, c, d from m1's last), m3 (b, c, d)."""

    def __init__(self) -> None:
        h = History()
        self.policies = h.join("factory-a", "factory-b", "factory-c", "factory-d")
        abc = {s: self.policies[s] for s in (A, B, C)}
        bcd = {s: self.policies[s] for s in (B, C, D)}
        h.run_job(abc, rounds=2, parent=INITIAL)
        self.m1 = _models(h)
        h.run_job(bcd, rounds=2, parent=self.m1[-1], task="push")
        self.m2 = _models(h)[2:]
        self.m3 = h.run_job(bcd, rounds=1, task="reach")
        self.history = h
        self.graph = LineageGraph.from_entries(h.pairs())


def _models(h: History) -> list[str]:
    return [e.model_digest for e in h.entries if isinstance(e, AggregateCommitted)]


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_lineage_follows_parent_chains(world: World) -> None:
    lineage = world.graph.lineage(world.m2[-1])
    assert [n.model_digest for n in lineage.chain] == [*reversed(world.m2), *reversed(world.m1)]
    assert lineage.sites == (A, B, C, D)
    assert lineage.parents == (world.m2[0], world.m1[1], world.m1[0], INITIAL)
    assert lineage.base_model == INITIAL
    assert set(lineage.policies) == {(s, world.policies[s]) for s in (A, B, C, D)}
    assert [(n.job_id, n.round) for n in lineage.chain] == [
        ("bc-push-1", 2),
        ("bc-push-1", 1),
        ("bc-pick-place-1", 2),
        ("bc-pick-place-1", 1),
    ]


def test_lineage_of_an_independent_model(world: World) -> None:
    lineage = world.graph.lineage(world.m3)
    assert lineage.sites == (B, C, D)
    assert lineage.parents == () and lineage.base_model is None


def test_usage_reaches_derived_models(world: World) -> None:
    usage = world.graph.usage(A)
    assert usage.jobs == ("bc-pick-place-1",)
    assert [(r.round, r.policy_id) for r in usage.records] == [
        (1, world.policies[A]),
        (2, world.policies[A]),
    ]
    assert usage.models == (*world.m1, *world.m2)  # the push models derive from a's data
    assert usage.epsilon_by_job == {"bc-pick-place-1": Decimal("4.00")}
    assert usage.epsilon_total == Decimal("4.00")
    assert usage.epsilon_by_policy == {world.policies[A]: Decimal("4.00")}


def test_usage_sums_epsilon_over_jobs(world: World) -> None:
    usage = world.graph.usage(B)
    assert usage.jobs == ("bc-pick-place-1", "bc-push-1", "bc-reach-1")
    assert usage.epsilon_total == Decimal("12.00")
    assert usage.epsilon_by_policy == {world.policies[B]: Decimal("12.00")}
    assert world.graph.usage(site_urn("nobody")).records == ()


def test_revocation_impact_and_retrain_points(world: World) -> None:
    impact = world.graph.revocation_impact(A, world.policies[A])
    assert impact.affected == (*world.m1, *world.m2)
    assert set(impact.retrain_from.values()) == {INITIAL}
    assert world.graph.affected_by(A, digest_of("another policy")) == ()
    assert world.graph.last_model_without(world.m2[-1], D) == world.m1[-1]
    assert world.graph.last_model_without(world.m3, A) == world.m3
    assert world.graph.last_model_without(world.m3, B) is None  # from scratch
    assert world.graph.affected_by(D) == (*world.m2, world.m3)


def test_results_are_json(world: World) -> None:
    for value in (
        world.graph.lineage(world.m2[-1]).to_json_value(),
        world.graph.usage(B).to_json_value(),
        world.graph.revocation_impact(A).to_json_value(),
    ):
        assert canonical_bytes(value)
    usage = world.graph.usage(A).to_json_value()
    assert usage["epsilon_total"] == "4.00" and usage["models"] == [*world.m1, *world.m2]


def test_unknown_model() -> None:
    with pytest.raises(UnknownInLedgerError, match="never committed"):
        LineageGraph.from_entries([]).lineage(digest_of("x"))


def _aggregate(model: str, parent: str | None, contributors: tuple[str, ...]) -> AggregateCommitted:
    return AggregateCommitted(
        time=EXAMPLE_NOW,
        job_id="j",
        round=1,
        model_digest=model,
        parent_model=parent,
        contributors=contributors,
        epsilon_spent=None,
        strategy="fedavg",
    )


def test_forged_cycles_end_and_missing_contributions_show() -> None:
    x, y = digest_of("x"), digest_of("y")
    graph = LineageGraph.from_entries(
        [(0, _aggregate(x, y, (A,))), (1, _aggregate(y, x, (B,))), (2, _aggregate(x, None, (C,)))]
    )
    assert [n.model_digest for n in graph.chain(y)] == [y, x]
    assert [n.model_digest for n in graph.chain(x)] == [x]  # its parent came later
    assert graph.lineage(x).base_model == y
    contribution = graph.node(x).contributions[0]
    assert contribution.policy_id is None and contribution.index is None
    assert graph.models()[0].model_digest == x and len(graph.models()) == 2
