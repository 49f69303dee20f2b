"""Properties: random honest histories replay clean; one random fault is always caught."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.builders.audit import AuditWorld, History, digest_of, site_urn

from dure.policies.audit.lineage import LineageGraph
from dure.policies.audit.replay import replay
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    LedgerEntry,
    ModelReleased,
    PolicyRevoked,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
)

WORLD = AuditWorld()  # signing is deterministic: every history shares one world
NAMES = ("factory-a", "factory-b", "factory-c", "factory-d")
TASKS = ("pick-place", "push")
Entries = list[LedgerEntry]
Fault = tuple[Entries, int, str]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Plan:
    """What a random honest history does (a short repr for failing examples)."""

    names: tuple[str, ...]
    rounds: tuple[int, ...]
    chained: tuple[bool, ...]
    refuse: bool
    recipients: tuple[str, ...]
    revoke: bool

    def build(self) -> History:
        h = History(world=WORLD)
        policies = h.join(*self.names)
        model: str | None = None
        for task, rounds, chained in zip(TASKS, self.rounds, self.chained, strict=False):
            parent = model if chained else None
            model = h.run_job(policies, rounds=rounds, parent=parent, task=task)
        if self.refuse:
            h.refuse("bc-pick-place-1", site_urn(self.names[0]), None)  # after its rounds
        assert model is not None
        h.release(model, [site_urn(n) for n in self.recipients])
        if self.revoke:
            last = self.names[-1]
            h.revoke(last, policies[site_urn(last)], "retrain-without")
        return h


plans = st.builds(
    Plan,
    names=st.sampled_from([NAMES[:3], NAMES]),
    rounds=st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple),
    chained=st.tuples(st.booleans(), st.booleans()),
    refuse=st.booleans(),
    recipients=st.sets(st.sampled_from(NAMES[:3]), min_size=1).map(lambda s: tuple(sorted(s))),
    revoke=st.booleans(),
)
"""1-2 jobs of 1-3 rounds over 3-4 sites, chained or not, with a release and maybe more."""


def _targets(entries: Entries, kind: type[LedgerEntry]) -> list[int]:
    return [i for i, e in enumerate(entries) if isinstance(e, kind)]


def _of_round(entries: Entries, kind: type[LedgerEntry], job_id: str, number: int) -> list[int]:
    """Indices of entries of ``kind`` about round ``number`` of ``job_id``."""
    return [
        i
        for i in _targets(entries, kind)
        if (getattr(entries[i], "job_id", None), getattr(entries[i], "round", None))
        == (job_id, number)
    ]


def unknown_policy(entries: Entries, i: int) -> Fault:
    entries[i] = entries[i].model_copy(update={"policy_id": digest_of("unknown policy")})
    return entries, i, "policy.unregistered"


def refused_before(entries: Entries, i: int) -> Fault:
    e = entries[i]
    assert isinstance(e, ContributionAccepted)
    refusal = SiteRefused(time=e.time, job_id=e.job_id, site=e.site, policy_id=None, reasons=("x",))
    entries.insert(i, refusal)
    return entries, i + 1, "admission.refused"


def revoked_before_round(entries: Entries, i: int) -> Fault:
    e = entries[i]
    assert isinstance(e, ContributionAccepted)
    opened = _of_round(entries, RoundOpened, e.job_id, e.round)[0]
    revocation = PolicyRevoked(
        time=e.time,
        site=e.site,
        policy_id=e.policy_id,
        revocation_id=digest_of("revocation"),
        mode="exclude-future",
    )
    entries.insert(opened, revocation)
    return entries, i + 1, "policy.revoked"


def duplicated(entries: Entries, i: int) -> Fault:
    entries.insert(i + 1, entries[i])
    return entries, i + 1, "contribution.duplicate"


def unsampled(entries: Entries, i: int) -> Fault:
    e = entries[i]
    assert isinstance(e, ContributionAccepted)
    j = _of_round(entries, RoundOpened, e.job_id, e.round)[0]
    opened = entries[j]
    assert isinstance(opened, RoundOpened)
    entries[j] = opened.model_copy(update={"sites": tuple(s for s in opened.sites if s != e.site)})
    return entries, i, "round.site_not_sampled"


def round_dropped(entries: Entries, i: int) -> Fault:
    e = entries[i]
    assert isinstance(e, ContributionAccepted)
    del entries[_of_round(entries, RoundOpened, e.job_id, e.round)[0]]
    first = _of_round(entries, ContributionAccepted, e.job_id, e.round)[0]
    return entries, first, "round.not_opened"


def wrong_parent(entries: Entries, i: int) -> Fault:
    entries[i] = entries[i].model_copy(update={"parent_model": digest_of("elsewhere")})
    return entries, i, "aggregate.parent_mismatch"


def too_few(entries: Entries, i: int) -> Fault:
    e = entries[i]
    assert isinstance(e, AggregateCommitted)
    entries[i] = e.model_copy(update={"contributors": e.contributors[:2]})
    return entries, i, "aggregate.too_few_contributors"


def over_declared_epsilon(entries: Entries, i: int) -> Fault:
    entries[i] = entries[i].model_copy(update={"epsilon_spent": "9.99"})
    return entries, i, "dp.job_exceeded"


def admission_dropped(entries: Entries, i: int) -> Fault:
    e = entries[i]
    assert isinstance(e, SiteAdmitted)
    del entries[i]
    first = _of_round(entries, RoundOpened, e.job_id, 1)[0]
    return entries, first, "round.site_not_admitted"


def released_to_outsider(entries: Entries, i: int) -> Fault:
    outsider = (site_urn("factory-z"),)
    entries[i] = entries[i].model_copy(update={"recipients": outsider})
    return entries, i, "release.recipient_not_allowed"


FAULTS: list[tuple[type[LedgerEntry], Callable[[Entries, int], Fault]]] = [
    (ContributionAccepted, unknown_policy),
    (ContributionAccepted, refused_before),
    (ContributionAccepted, revoked_before_round),
    (ContributionAccepted, duplicated),
    (ContributionAccepted, unsampled),
    (ContributionAccepted, round_dropped),
    (AggregateCommitted, wrong_parent),
    (AggregateCommitted, too_few),
    (AggregateCommitted, over_declared_epsilon),
    (SiteAdmitted, admission_dropped),
    (ModelReleased, released_to_outsider),
]


@SETTINGS
@given(plans)
def test_honest_histories_have_no_violations(plan: Plan) -> None:
    history = plan.build()
    report = replay(history.pairs(), WORLD.documents())
    assert report.violations == (), [v.describe() for v in report.violations]
    assert report.ok(strict=True)


@SETTINGS
@given(plans)
def test_lineage_and_usage_agree(plan: Plan) -> None:
    graph = LineageGraph.from_entries(plan.build().pairs())
    for name in plan.names:
        site = site_urn(name)
        reached = set(graph.affected_by(site))
        assert reached == set(graph.usage(site).models)
        for node in graph.models():
            in_lineage = site in graph.lineage(node.model_digest).sites
            assert in_lineage == (node.model_digest in reached)


@SETTINGS
@given(plans, st.sampled_from(FAULTS), st.data())
def test_one_fault_is_caught_at_its_entry(
    plan: Plan,
    fault: tuple[type[LedgerEntry], Callable[[Entries, int], Fault]],
    data: st.DataObject,
) -> None:
    history = plan.build()
    kind, mutate = fault
    targets = _targets(history.entries, kind)
    assume(targets)
    entries, index, code = mutate(list(history.entries), data.draw(st.sampled_from(targets)))
    report = replay(list(enumerate(entries)), WORLD.documents())
    found = {(v.index, v.code) for v in report.violations}
    assert (index, code) in found, [v.describe() for v in report.violations]
