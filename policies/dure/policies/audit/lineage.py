"""Who learned from whose data: lineage of models and usage of sites, from verified entries.

A model's ``aggregate_committed`` entry names its contributors and its parent
model; each contributor's ``contribution_accepted`` names the policy it was
accepted under.  :class:`LineageGraph` joins them once, and answers:

- :meth:`~LineageGraph.lineage`: every site, policy, round and parent model
  behind a model, through its chain of parents;
- :meth:`~LineageGraph.usage`: every job, round and model a site's data
  reached (with the models derived from those), the ε spent, under which policy;
- :meth:`~LineageGraph.affected_by`: the models a revocation touches (every
  model whose lineage holds the site's contributions under that policy), and
  :meth:`~LineageGraph.last_model_without`: the latest model of a chain that
  does not hold them, from which a retrain-without job starts.

A parent counts only if it was committed *before* its child (a later commit of
the same digest is ignored), so chains always end, even on a forged ledger.  A
parent that no aggregate committed (an initial model) ends the chain as its
``base_model``.  ε follows :func:`dure.policies.contribution.epsilon_spent_by`:
each aggregate records its job's cumulative ε, so a site's ε per job is the
largest value among the aggregates it contributed to, and totals sum over jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from dure.policies.audit.errors import UnknownInLedgerError
from dure.policies.canonical import JsonValue
from dure.policies.entries import AggregateCommitted, ContributionAccepted, LedgerEntry
from dure.policies.literals import format_timestamp

__all__ = [
    "Contribution",
    "LineageGraph",
    "ModelLineage",
    "ModelNode",
    "RevocationImpact",
    "SiteUsage",
    "UsageRecord",
]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One site's data in one aggregate (``index``/``policy_id`` None if never accepted)."""

    site: str
    policy_id: str | None
    index: int | None
    examples: int | None

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the contribution as a JSON object."""
        return {
            "site": self.site,
            "policy_id": self.policy_id,
            "index": self.index,
            "examples": self.examples,
        }


@dataclass(frozen=True, slots=True)
class ModelNode:
    """A model committed by an aggregate at ledger ``index``."""

    model_digest: str
    index: int
    time: datetime
    job_id: str
    round: int
    parent_model: str | None
    contributions: tuple[Contribution, ...]
    epsilon_spent: str | None

    def holds(self, site: str, policy_id: str | None = None) -> bool:
        """Whether ``site`` contributed to this aggregate (under ``policy_id`` if given)."""
        return any(c.site == site and policy_id in (None, c.policy_id) for c in self.contributions)

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the node as a JSON object."""
        return {
            "model_digest": self.model_digest,
            "index": self.index,
            "time": format_timestamp(self.time),
            "job_id": self.job_id,
            "round": self.round,
            "parent_model": self.parent_model,
            "contributions": [c.to_json_value() for c in self.contributions],
            "epsilon_spent": self.epsilon_spent,
        }


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """Everything behind ``model``: its chain (newest first) and the unledgered base model."""

    model: str
    chain: tuple[ModelNode, ...]
    base_model: str | None

    @property
    def sites(self) -> tuple[str, ...]:
        """Every site whose data is in the model, sorted."""
        return tuple(sorted({c.site for n in self.chain for c in n.contributions}))

    @property
    def policies(self) -> tuple[tuple[str, str | None], ...]:
        """Every ``(site, policy_id)`` the data was used under, sorted."""
        pairs = {(c.site, c.policy_id) for n in self.chain for c in n.contributions}
        return tuple(sorted(pairs, key=lambda p: (p[0], p[1] or "")))

    @property
    def parents(self) -> tuple[str, ...]:
        """Every ancestor model, newest first, ending with the base model if any."""
        ancestors = tuple(n.model_digest for n in self.chain[1:])
        return (*ancestors, self.base_model) if self.base_model else ancestors

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the lineage as a JSON object (the API's ``/v1/models/{digest}/lineage``)."""
        return {
            "model": self.model,
            "sites": list(self.sites),
            "policies": [{"site": s, "policy_id": p} for s, p in self.policies],
            "rounds": [n.to_json_value() for n in self.chain],
            "parents": list(self.parents),
            "base_model": self.base_model,
        }


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One aggregate a site's data entered: job, round, policy, model and ε."""

    index: int
    time: datetime
    job_id: str
    round: int
    policy_id: str | None
    model_digest: str
    epsilon_spent: str | None
    examples: int | None

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the record as a JSON object."""
        return {
            "index": self.index,
            "time": format_timestamp(self.time),
            "job_id": self.job_id,
            "round": self.round,
            "policy_id": self.policy_id,
            "model_digest": self.model_digest,
            "epsilon_spent": self.epsilon_spent,
            "examples": self.examples,
        }


def _per_job(records: Iterable[UsageRecord]) -> dict[str, Decimal]:
    spent: dict[str, Decimal] = {}
    for r in records:
        if r.epsilon_spent is not None:
            value = Decimal(r.epsilon_spent)
            spent[r.job_id] = max(value, spent.get(r.job_id, value))
    return spent


@dataclass(frozen=True, slots=True)
class SiteUsage:
    """Where ``site``'s data went: the aggregates it entered and every model it reached."""

    site: str
    records: tuple[UsageRecord, ...]
    models: tuple[str, ...]
    """Every model holding the data: the aggregates' models and those derived from them."""

    @property
    def jobs(self) -> tuple[str, ...]:
        """The jobs the data was used by, sorted."""
        return tuple(sorted({r.job_id for r in self.records}))

    @property
    def epsilon_by_job(self) -> dict[str, Decimal]:
        """ε spent on the data by each job (its largest cumulative value)."""
        return _per_job(self.records)

    @property
    def epsilon_by_policy(self) -> dict[str, Decimal]:
        """ε spent on the data under each policy (per job, summed over jobs)."""
        policies = sorted({r.policy_id or "" for r in self.records})
        return {
            policy: sum(
                _per_job(r for r in self.records if (r.policy_id or "") == policy).values(),
                Decimal(0),
            )
            for policy in policies
        }

    @property
    def epsilon_total(self) -> Decimal:
        """ε spent on the data over all jobs."""
        return sum(self.epsilon_by_job.values(), Decimal(0))

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the usage as a JSON object (the API's ``/v1/sites/{site}/usage``)."""
        return {
            "site": self.site,
            "jobs": list(self.jobs),
            "records": [r.to_json_value() for r in self.records],
            "models": list(self.models),
            "epsilon_by_job": {k: str(v) for k, v in self.epsilon_by_job.items()},
            "epsilon_by_policy": {k: str(v) for k, v in self.epsilon_by_policy.items()},
            "epsilon_total": str(self.epsilon_total),
        }


@dataclass(frozen=True, slots=True)
class RevocationImpact:
    """The models holding ``site``'s data under ``policy_id``, and where to retrain each from."""

    site: str
    policy_id: str | None
    affected: tuple[str, ...]
    retrain_from: dict[str, str | None] = field(default_factory=dict)
    """For each affected model, the last model of its chain without the data (None: scratch)."""

    def to_json_value(self) -> dict[str, JsonValue]:
        """Return the impact as a JSON object."""
        return {
            "site": self.site,
            "policy_id": self.policy_id,
            "affected": list(self.affected),
            "retrain_from": dict(self.retrain_from),
        }


class LineageGraph:
    """Models, their parents and contributors, built from verified entries."""

    def __init__(self, nodes: Iterable[ModelNode]) -> None:
        self._nodes: dict[str, ModelNode] = {}
        self._children: dict[str, list[str]] = {}
        for node in sorted(nodes, key=lambda n: n.index):
            if node.model_digest in self._nodes:
                continue
            self._nodes[node.model_digest] = node
            if node.parent_model in self._nodes:
                self._children.setdefault(node.parent_model, []).append(node.model_digest)

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[int, LedgerEntry]]) -> LineageGraph:
        """Build the graph from ``(index, entry)`` pairs (other kinds are ignored)."""
        accepted: dict[tuple[str, int, str], ContributionAccepted] = {}
        accepted_at: dict[tuple[str, int, str], int] = {}
        nodes: list[ModelNode] = []
        for index, entry in entries:
            if isinstance(entry, ContributionAccepted):
                key = (entry.job_id, entry.round, entry.site)
                if key not in accepted:
                    accepted[key], accepted_at[key] = entry, index
            elif isinstance(entry, AggregateCommitted):
                nodes.append(_node(index, entry, accepted, accepted_at))
        return cls(nodes)

    def models(self) -> tuple[ModelNode, ...]:
        """Every committed model, in ledger order."""
        return tuple(self._nodes.values())

    def node(self, digest: str) -> ModelNode:
        """Return the node of model ``digest``.

        Raises
        ------
        UnknownInLedgerError
            If no aggregate committed that model.
        """
        node = self._nodes.get(digest)
        if node is None:
            raise UnknownInLedgerError(f"model {digest[:80]!r} was never committed to the ledger")
        return node

    def chain(self, digest: str) -> tuple[ModelNode, ...]:
        """Return the model's node and its ledgered ancestors, newest first."""
        nodes, node = [self.node(digest)], self.node(digest)
        while (parent := self._parent(node)) is not None:
            nodes.append(parent)
            node = parent
        return tuple(nodes)

    def lineage(self, digest: str) -> ModelLineage:
        """Return every site, policy, round and parent model behind model ``digest``."""
        chain = self.chain(digest)
        return ModelLineage(digest, chain, chain[-1].parent_model)

    def descendants(self, digest: str) -> tuple[str, ...]:
        """Return every model derived from ``digest`` (not itself), in ledger order."""
        found: set[str] = set()
        stack = list(self._children.get(digest, ()))
        while stack:
            child = stack.pop()
            if child not in found:
                found.add(child)
                stack.extend(self._children.get(child, ()))
        return tuple(d for d in self._nodes if d in found)

    def usage(self, site: str) -> SiteUsage:
        """Return every job, round and model ``site``'s data reached, with ε and policies."""
        records = tuple(_record(n, c) for n in self._nodes.values() for c in _of(n, site))
        return SiteUsage(site, records, self.affected_by(site))

    def affected_by(self, site: str, policy_id: str | None = None) -> tuple[str, ...]:
        """Return every model holding ``site``'s data (under ``policy_id`` if given)."""
        direct = [d for d, n in self._nodes.items() if n.holds(site, policy_id)]
        found = set(direct).union(*(self.descendants(d) for d in direct))
        return tuple(d for d in self._nodes if d in found)

    def last_model_without(
        self, digest: str, site: str, policy_id: str | None = None
    ) -> str | None:
        """Return the latest model of ``digest``'s chain without ``site``'s data.

        That is ``digest`` itself if it holds none, else the model the oldest
        aggregate holding the data started from (the base model if that
        aggregate was the first of the chain; ``None`` to start from scratch).
        """
        chain = self.chain(digest)
        holding = [n for n in chain if n.holds(site, policy_id)]
        return holding[-1].parent_model if holding else digest

    def revocation_impact(self, site: str, policy_id: str | None = None) -> RevocationImpact:
        """Return the models a revocation of ``site``'s ``policy_id`` touches."""
        affected = self.affected_by(site, policy_id)
        retrain = {m: self.last_model_without(m, site, policy_id) for m in affected}
        return RevocationImpact(site, policy_id, affected, retrain)

    def _parent(self, node: ModelNode) -> ModelNode | None:
        parent = self._nodes.get(node.parent_model or "")
        return parent if parent is not None and parent.index < node.index else None


def _node(
    index: int,
    entry: AggregateCommitted,
    accepted: dict[tuple[str, int, str], ContributionAccepted],
    accepted_at: dict[tuple[str, int, str], int],
) -> ModelNode:
    contributions = []
    for site in entry.contributors:
        key = (entry.job_id, entry.round, site)
        found = accepted.get(key)
        contributions.append(
            Contribution(
                site,
                found.policy_id if found else None,
                accepted_at.get(key),
                found.examples if found else None,
            )
        )
    return ModelNode(
        entry.model_digest,
        index,
        entry.time,
        entry.job_id,
        entry.round,
        entry.parent_model,
        tuple(contributions),
        entry.epsilon_spent,
    )


def _of(node: ModelNode, site: str) -> Iterator[Contribution]:
    return (c for c in node.contributions if c.site == site)


def _record(node: ModelNode, contribution: Contribution) -> UsageRecord:
    return UsageRecord(
        node.index,
        node.time,
        node.job_id,
        node.round,
        contribution.policy_id,
        node.model_digest,
        node.epsilon_spent,
        contribution.examples,
    )
