"""Who learned from whose data: models, lineage, usage, rounds, releases and retrains.

The answers come from the ledger (through :class:`~dure.server.api.ledger_view.LedgerView`
and the audit kernel's :class:`~dure.policies.audit.lineage.LineageGraph`), so
they are what any auditor recomputes from the verified entries.  Two writes:

- **release** (operator only): a model goes to ``recipients`` only if, for every
  round in its lineage, the job named every recipient and the kernel's
  :func:`~dure.policies.evaluation.evaluate` of each contributor's policy against
  that job, narrowed to these recipients, allows it now (``distribute`` with its
  recipient constraints, not revoked, not expired).  Otherwise nothing is
  ledgered and the refusal lists every failed check;
- **retrain-without** (operator, or the site itself): for a model holding the
  data of a site that revoked its policy, record a request to rebuild it from the
  last model of its chain without that data; the federation trains it.
"""

from __future__ import annotations

from dure.policies.audit.lineage import ModelNode
from dure.policies.decision import RoundContext
from dure.policies.entries import ModelReleased
from dure.policies.evaluation import evaluate
from dure.policies.literals import format_timestamp, party_name
from dure.server.api.auth import Member
from dure.server.api.errors import ForbiddenError, ReleaseDeniedError
from dure.server.api.ledger_view import RoundFacts
from dure.server.api.outputs import (
    ContributionPublic,
    LineagePublic,
    ModelNodePublic,
    ModelPublic,
    PolicyRefPublic,
    ReleasePublic,
    RetrainPublic,
    RevocationPublic,
    RoundPublic,
    UsagePublic,
)
from dure.server.api.registrations import ledger_record
from dure.server.api.services import Services
from dure.server.storage.errors import ConflictError, NotFoundError
from dure.server.storage.retrains import RetrainRecord
from dure.server.storage.rounds import RoundRecord

__all__ = ["lineage", "models", "release", "retrain_without", "revocations", "rounds", "usage"]


def models(services: Services) -> list[ModelPublic]:
    """Every model an aggregate committed, in ledger order, with its releases."""
    view = services.view.current()
    released = _released(view.releases())
    return [
        ModelPublic(model=_node(n), released_to=released.get(n.model_digest, []))
        for n in view.graph.models()
    ]


def lineage(services: Services, digest: str) -> LineagePublic:
    """Every site, policy, round and parent model behind model ``digest``."""
    view = services.view.current()
    found = view.graph.lineage(digest)
    return LineagePublic(
        model=digest,
        sites=list(found.sites),
        policies=[PolicyRefPublic(site=s, policy_id=p) for s, p in found.policies],
        rounds=[_node(n) for n in found.chain],
        parents=list(found.parents),
        base_model=found.base_model,
        released_to=_released(view.releases(digest)).get(digest, []),
        retrains=[_retrain(r) for r in services.retrains.requests(model_digest=digest)],
    )


def revocations(services: Services, site: str | None = None) -> list[RevocationPublic]:
    """Every ledgered revocation (of ``site`` when given) and the models it touches."""
    view = services.view.current()
    urn = None if site is None else f"urn:dure:site:{site}"
    result = []
    for index, entry in view.revocations(urn):
        impact = view.graph.revocation_impact(entry.site, entry.policy_id)
        result.append(
            RevocationPublic(
                index=index,
                site=entry.site,
                policy_id=entry.policy_id,
                revocation_id=entry.revocation_id,
                mode=entry.mode,
                affected_models=list(impact.affected),
                retrain_from=dict(impact.retrain_from),
                ledger=None,
            )
        )
    return result


def usage(services: Services, site: str, member: Member) -> UsagePublic:
    """Every job, round and model ``site``'s data reached, with ε (site and its auditors)."""
    services.registry.site(site)
    if not member.may_read_usage(site):
        raise ForbiddenError(
            f"the usage report of {site!r} is visible to that site and its auditors only",
            hint="Ask the site to name your key as an auditor (POST /v1/sites/{site}/auditors).",
        )
    found = services.view.current().graph.usage(f"urn:dure:site:{site}")
    return UsagePublic.model_validate(found.to_json_value())


def rounds(services: Services, job_id: str | None = None) -> list[RoundPublic]:
    """Every round of ``job_id`` (or of every job): ledger facts and the federation's status."""
    if job_id is not None:
        services.jobs.job(job_id)
    reported = {(r.job_id, r.round): r for r in services.rounds.rounds(job_id)}
    facts = {(f.job_id, f.round): f for f in services.view.current().rounds(job_id)}
    return [
        _round(key, facts.get(key), reported.get(key)) for key in sorted(set(reported) | set(facts))
    ]


def _round(
    key: tuple[str, int], fact: RoundFacts | None, report: RoundRecord | None
) -> RoundPublic:
    """Join what the ledger shows (authoritative) with what the federation reported."""
    ledgered = fact or RoundFacts(*key)
    status = report.status if report else ("committed" if ledgered.model_digest else "open")
    return RoundPublic(
        job_id=key[0],
        round=key[1],
        status=status,
        sites=list(ledgered.sites or (report.sampled if report else ())),
        parent_model=ledgered.parent_model,
        accepted=list(ledgered.accepted or (report.contributors if report else ())),
        rejected={site: list(reasons) for site, reasons in ledgered.rejected.items()},
        model_digest=ledgered.model_digest or (report.model_digest if report else None),
        epsilon_spent=ledgered.epsilon_spent or (report.epsilon if report else None),
        reason=report.reason if report else None,
        opened_index=ledgered.opened_index,
    )


def release(
    services: Services, digest: str, recipients: list[str], member: Member
) -> ReleasePublic:
    """Release model ``digest`` to ``recipients`` if every contributor's policy allows it."""
    if not member.operator:
        raise ForbiddenError("only the consortium operator releases models")
    chain = services.view.current().graph.lineage(digest).chain
    checked: dict[tuple[str, str | None], None] = {}
    denials: list[str] = []
    for node in chain:
        denials += _release_denials(services, node, tuple(recipients), checked)
    if denials:
        raise ReleaseDeniedError(
            f"model {digest[:16]}… may not be released to {', '.join(recipients)}: "
            f"{len(denials)} failed checks",
            tuple(denials[:64]),
        )
    entry = ModelReleased(
        time=services.clock().replace(microsecond=0),
        model_digest=digest,
        recipients=tuple(recipients),
    )
    return ReleasePublic(
        model_digest=digest,
        recipients=list(recipients),
        checked=[PolicyRefPublic(site=s, policy_id=p) for s, p in checked],
        ledger=ledger_record(services, entry),
    )


def _release_denials(
    services: Services,
    node: ModelNode,
    recipients: tuple[str, ...],
    checked: dict[tuple[str, str | None], None],
) -> list[str]:
    job = services.jobs.job(node.job_id).job
    where = f"round {node.round} of job {node.job_id}"
    denials = [
        f"{where}: the job does not name recipient {r}"
        for r in recipients
        if r not in job.recipients
    ]
    narrowed = job.model_copy(update={"recipients": recipients})
    for contribution in node.contributions:
        checked[(contribution.site, contribution.policy_id)] = None
        if contribution.policy_id is None:
            denials.append(f"{where}: {contribution.site} has no accepted contribution")
            continue
        try:
            record = services.registry.policy(contribution.policy_id)
        except NotFoundError:
            denials.append(f"{where}: policy {contribution.policy_id[:16]}… is not registered")
            continue
        context = RoundContext(
            consortium=services.settings.consortium,
            now=services.clock(),
            revoked=record.registered.revoked,
        )
        decision = evaluate(record.registered.policy, narrowed, context)
        denials += [
            f"{contribution.site} policy {contribution.policy_id[:16]}…: [{r.code}] {r.message}"
            for r in decision.denials
        ]
    return denials


def retrain_without(services: Services, digest: str, site: str, member: Member) -> RetrainPublic:
    """Record a request to rebuild ``digest`` without ``site``'s data; return where to start."""
    name = party_name(site)
    if not (member.operator or member.site == name):
        raise ForbiddenError("only the operator or the revoking site asks for a retrain")
    view = services.view.current()
    graph = view.graph
    revoked = [e.policy_id for _, e in view.revocations(site)]
    holding = [p for p in revoked if digest in graph.affected_by(site, p)]
    if not holding:
        raise ConflictError(
            f"model {digest[:16]}… holds no data of {site} under a revoked policy",
            hint="Revoke the policy first (POST /v1/revocations); only revoked data is retrained.",
        )
    chain = graph.chain(digest)
    oldest = max(i for i, n in enumerate(chain) if any(n.holds(site, p) for p in holding))
    record = services.retrains.add(
        model_digest=digest,
        site=site,
        parent_model=chain[oldest].parent_model,
        replaces=tuple(n.model_digest for n in chain[: oldest + 1]),
        requested_by=member.key_id,
        now=services.clock(),
    )
    return _retrain(record)


def _node(node: ModelNode) -> ModelNodePublic:
    return ModelNodePublic(
        model_digest=node.model_digest,
        index=node.index,
        time=format_timestamp(node.time),
        job_id=node.job_id,
        round=node.round,
        parent_model=node.parent_model,
        contributions=[
            ContributionPublic(
                site=c.site, policy_id=c.policy_id, index=c.index, examples=c.examples
            )
            for c in node.contributions
        ],
        epsilon_spent=node.epsilon_spent,
    )


def _released(entries: list[tuple[int, ModelReleased]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for _, entry in entries:
        known = found.setdefault(entry.model_digest, [])
        known += [r for r in entry.recipients if r not in known]
    return found


def _retrain(record: RetrainRecord) -> RetrainPublic:
    return RetrainPublic(
        id=record.id,
        model_digest=record.model_digest,
        site=record.site,
        parent_model=record.parent_model,
        replaces=list(record.replaces),
        requested_by=record.requested_by,
        requested=record.requested,
    )
