"""One federated round, from re-admission to the signed checkpoint.

Order (each step ledgered before the next acts on it):

1. **Re-admission** at this round: every site still in the run is evaluated
   again (a revocation, an expiry or a round limit takes effect now); under
   DP, a site whose ε would pass its limit after this round is refused too.
   Refusals are ledgered (``site_refused``) and those sites leave the run.
2. If the sampled sites (admitted and bound to a node) cannot reach the
   contributor minimum even if all answer, the run **stops** (nothing opened).
3. ``round_opened`` is ledgered, then the ``train`` instructions are pushed to
   the sampled sites' nodes only, with the receipts owed to each.
4. Each reply is **judged** (:mod:`~dure.server.federation.validation`): no
   reply, a refusal, a malformed, non-finite, oversized or tampered update, or
   a claim that does not verify is rejected with its reasons.
5. The **contributors** are settled; below the minimum the round is
   **aborted**: every reply is ledgered as rejected with the reason, no
   aggregate is committed, the global model stays.
6. Otherwise the accepted updates are **aggregated** (Flower's strategy, DP if
   the job says so), the model is registered, and every rejection, acceptance
   and the ``aggregate_committed`` entry are appended in one batch.
7. A checkpoint is signed after every round (committed or aborted).

A factory that crashes mid-round leaves the ledger consistent: the round is
opened, its missing reply is a rejection, and the round commits above the
minimum or is recorded as aborted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.app.typing import ConfigRecordValues as ConfigValue
from flwr.serverapp import Grid

from dure.policies.contribution import ContributionClaim
from dure.policies.entries import (
    AggregateCommitted,
    ContributionRejected,
    LedgerEntry,
    RoundOpened,
    SiteRefused,
)
from dure.policies.policy import UsagePolicy
from dure.policies.signed import Opened
from dure.server.federation.admission import MAX_REASONS, admit, reason_lines
from dure.server.federation.aggregation import aggregate, proximal_mu
from dure.server.federation.commit import commit_round
from dure.server.federation.errors import FederationError
from dure.server.federation.exchange import exchange
from dure.server.federation.run import RoundReport, RunSettings, RunState, Services
from dure.server.federation.secagg import play_secure
from dure.server.federation.validation import (
    ClaimContext,
    check_claim,
    check_update,
    settle_contributors,
    update_norm,
)
from dure.server.federation.wire import (
    ReplyError,
    TrainReply,
    array_record,
    error_reasons,
    parse_train_reply,
    train_message,
)

__all__ = ["append", "play_round"]


@dataclass(frozen=True, slots=True)
class _Accepted:
    site: str
    reply: TrainReply
    claim: Opened[ContributionClaim]
    message: Message


def play_round(
    services: Services, settings: RunSettings, grid: Grid, state: RunState, round: int
) -> RoundReport:
    """Run round ``round`` of ``state``'s job (see the module docstring) and report it."""
    refused = _readmit(services, settings, state, round)
    sampled = tuple(sorted(s for s in state.sites if state.nodes.node(s) is not None))
    policies = {site: _policy(state, site) for site in sampled}
    feasible = settle_contributors(state.job.document, round, policies)
    if feasible.aborted is not None or feasible.dropped:
        reason = feasible.aborted or "; ".join(feasible.dropped.values())
        stop = f"{len(sampled)} sites can be sampled: {reason}"
        return RoundReport(round, "stopped", sampled, refused=refused, reason=stop)
    opened = RoundOpened(
        time=services.clock(),
        job_id=state.job.document.job_id,
        round=round,
        sites=sampled,
        parent_model=state.model_digest,
    )
    append(services, state, [opened])
    arrays = array_record(state.model)  # encoded once, shared by every instruction
    messages = [_instruction(settings, state, round, site, arrays) for site in sampled]
    if state.job.document.aggregation.secure:  # SecAgg+: see dure.server.federation.secagg
        report, entries = play_secure(services, settings, grid, state, round, messages)
        append(services, state, entries)
        services.ledger.checkpoint()
        return replace(report, refused=refused)
    replies = exchange(grid, messages, timeout=settings.round_timeout, poll=settings.poll)
    by_site = {site: replies.get(state.nodes.node(site) or -1) for site in sampled}
    return _conclude(services, settings, state, round, by_site, refused)


def append(services: Services, state: RunState, entries: Sequence[LedgerEntry]) -> int:
    """Append ``entries`` in one batch, note the receipts owed, return the first index.

    Each entry is serialised once (RFC 8785 is not free): the same leaf bytes go
    to the ledger's store (what ``Ledger.append_all`` does) and to the outbox.
    """
    leaves = [entry.to_bytes() for entry in entries]
    first = services.ledger.store.append(leaves)
    state.outbox.record(first, entries, leaves)
    return first


def _policy(state: RunState, site: str) -> UsagePolicy:
    registered = state.sites[site].policy
    if registered is None:  # admission refuses sites without a policy
        raise FederationError(f"{site} is in the run without a policy")
    return registered.policy


def _readmit(
    services: Services, settings: RunSettings, state: RunState, round: int
) -> dict[str, tuple[str, ...]]:
    job, now = state.job.document, services.clock()
    current = [services.registry.site(state.sites[s].name) for s in sorted(state.sites)]
    decisions = admit(
        job, current, consortium=settings.consortium, now=now, round=round, spent=state.spent
    )
    refused = {d.site.urn: reason_lines(d.denials) for d in decisions if not d.admitted}
    policy_ids = {d.site.urn: d.policy_id for d in decisions}
    state.sites = {d.site.urn: d.site for d in decisions if d.admitted}
    if state.privacy is not None:
        over = state.privacy.over_budget(sorted(state.sites), len(state.sites))
        refused.update({site: (f"[dp.budget] {why}",) for site, why in over.items()})
    state.sites = {urn: site for urn, site in state.sites.items() if urn not in refused}
    entries = [
        SiteRefused(
            time=now, job_id=job.job_id, site=urn, policy_id=policy_ids[urn], reasons=reasons
        )
        for urn, reasons in sorted(refused.items())
    ]
    if entries:
        append(services, state, entries)
    return refused


def _instruction(
    settings: RunSettings, state: RunState, round: int, site: str, arrays: ArrayRecord
) -> Message:
    job = state.job.document
    config: dict[str, ConfigValue] = {
        "job": state.job_json,
        "round": round,
        "site": state.sites[site].name,
        "parent-model": state.model_digest,
        "task-vocab": state.stats.tasks_json(),
        "stats": state.stats.features_json(),
        "local-steps": job.training.local_steps,
        "lr": job.training.round_lr(round, job.rounds),
        "batch-size": job.training.batch_size,
        "proximal-mu": proximal_mu(job),
        "seed": settings.seed + round,
        "receipts": state.outbox.drain(site),
    }
    if job.dp is not None and job.dp.mode == "client-fixed":
        config["dp-clip"] = float(job.dp.clip_value)
    node = state.nodes.node(site)
    assert node is not None  # only bound sites are sampled
    return train_message(node, arrays, ConfigRecord(config), round)


def _judge(
    state: RunState, settings: RunSettings, round: int, site: str, reply: Message | None
) -> tuple[_Accepted | None, list[str]]:
    if reply is None:
        return None, [
            f"no reply within {settings.round_timeout:g} s "
            "(the factory crashed, disconnected or was too slow)"
        ]
    if reply.has_error():
        return None, error_reasons(reply)
    try:
        decoded = parse_train_reply(reply)
    except ReplyError as exc:
        return None, [f"malformed reply: {exc}"]
    job = state.job.document
    problems = check_update(decoded.arrays, state.model, job.aggregation.norm_bound_value)
    if not problems and job.dp is not None and job.dp.mode == "client-fixed":
        norm = update_norm(decoded.arrays, state.model)
        if norm > float(job.dp.clip_value) * (1 + 1e-5):
            problems.append(f"update norm {norm:.6g} exceeds the DP clip {job.dp.clip}")
    if problems:
        return None, problems
    context = ClaimContext(job, state.job.document_id, round, state.sites[site])
    opened, problems = check_claim(decoded.claim, context, decoded.arrays, decoded.examples)
    if problems or opened is None:
        return None, problems
    return _Accepted(site, decoded, opened, reply), []


def _conclude(
    services: Services,
    settings: RunSettings,
    state: RunState,
    round: int,
    replies: dict[str, Message | None],
    refused: dict[str, tuple[str, ...]],
) -> RoundReport:
    job, now = state.job.document, services.clock()
    judged = {site: _judge(state, settings, round, site, reply) for site, reply in replies.items()}
    accepted = {site: verdict for site, (verdict, _) in judged.items() if verdict is not None}
    rejected = {site: why for site, (verdict, why) in judged.items() if verdict is None}
    settlement = settle_contributors(job, round, {s: _policy(state, s) for s in accepted})
    if settlement.aborted is not None:
        for site in accepted:
            extra = [settlement.dropped[site]] if site in settlement.dropped else []
            rejected[site] = [settlement.aborted, *extra]
        accepted = {}
    rejected |= {site: [why] for site, why in settlement.dropped.items() if site not in rejected}
    kept = [accepted[site] for site in sorted(settlement.kept) if site in accepted]
    entries: list[LedgerEntry] = [
        ContributionRejected(
            time=now, job_id=job.job_id, round=round, site=site, reasons=_lines(why)
        )
        for site, why in sorted(rejected.items())
    ]
    report = RoundReport(
        round,
        "aborted" if not kept else "committed",
        tuple(sorted(replies)),
        rejected={site: _lines(why) for site, why in rejected.items()},
        refused=refused,
        reason=settlement.aborted,
    )
    if kept:
        entries += _commit(services, state, round, kept)
        report = replace(
            report,
            contributors=tuple(a.site for a in kept),
            model_digest=state.model_digest,
            epsilon=_last_epsilon(entries),
        )
    append(services, state, entries)
    services.ledger.checkpoint()
    return report


def _commit(
    services: Services, state: RunState, round: int, kept: list[_Accepted]
) -> list[LedgerEntry]:
    job, now = state.job.document, services.clock()
    messages, decoded = [a.message for a in kept], [a.reply.arrays for a in kept]
    model = aggregate(job, round, state.model, messages, decoded, state.optimiser)
    sites = tuple(a.site for a in kept)
    epsilon = state.privacy.compose(sites, len(sites)) if state.privacy is not None else None
    contributions = [(a.site, a.claim, a.claim.document.update_digest) for a in kept]
    return commit_round(
        services, state, round, contributions, model, now=now, secure=False, epsilon=epsilon
    )


def _last_epsilon(entries: Sequence[LedgerEntry]) -> str | None:
    last = entries[-1]
    return last.epsilon_spent if isinstance(last, AggregateCommitted) else None


def _lines(reasons: Sequence[str]) -> tuple[str, ...]:
    lines = [reason[:2000] for reason in reasons if reason] or ["no reason given"]
    if len(lines) > MAX_REASONS:
        lines = [*lines[: MAX_REASONS - 1], f"and {len(lines) - MAX_REASONS + 1} more reasons"]
    return tuple(lines)
