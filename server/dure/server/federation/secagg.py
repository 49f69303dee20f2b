"""Secure aggregation: one round through Flower's SecAgg+ workflow (legacy path).

A job signed with ``aggregation.secure = true`` runs its rounds here instead of
the plain exchange (``rounds.play_round`` hands over once the round is opened
and ledgered).  What this coordinator runs under SecAgg+, checked before
admission by :func:`check_secure_supported`:

- strategy ``fedavg`` or ``fedprox`` (SecAgg+ computes an example-weighted mean;
  robust strategies need the individual updates it hides);
- no differential privacy: Flower's DP wrappers clip and noise individual
  updates on the legacy path or need the new strategies, which SecAgg+ cannot
  wrap, so ``dp`` together with ``secure`` is refused.

The round:

1. Flower's :class:`~flwr.server.workflow.SecAggPlusWorkflow` stages run one by
   one with a :class:`~flwr.server.LegacyContext` whose legacy ``FedAvg``
   (:class:`SampledFedAvg`) configures only the sampled nodes, through a
   :class:`~dure.server.federation.secagg_grid.SecureGrid` that carries the
   signed job to each factory's policy gate at every stage.  Each share set is
   spread over all sampled nodes; the **reconstruction threshold** is
   ``max(required, n // 2 + 1)`` where ``required`` is the strictest minimum of
   the job and the sampled sites' policies: the masks cannot be removed unless
   at least that many sites are still there, and a majority keeps the server
   from reconstructing a site's two secrets.
2. Factories send their update ``local - global`` (bounded by the job's norm
   bound, which is also the quantisation range), weighted by their examples
   over ``secagg-max-weight`` (the consortium's frame count), masked; each signs
   a contribution claim whose ``update_digest`` is the digest of the masked
   vector it sent (:func:`~dure.server.federation.secagg_grid.masked_digest`).
3. Masked replies are judged before Flower sums them; the contributor minimum
   is settled on the replies actually summed; early drop-outs (before the
   masked vectors) are removed from the protocol's neighbour sets so that the
   unmasking only asks for shares that exist.
4. The unmasked mean update is added to the global model, which must pass the
   same checks as a plain update (names, shapes, finite, norm bound).

Ledger: ``contribution_accepted`` with ``secure: true`` and the masked
vector's digest for every site whose vector is in the sum, then
``aggregate_committed``; or, if the protocol halts or too few remain, every
sampled site's ``contribution_rejected`` with the reason (the round is aborted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.common import FitIns, FitRes, Parameters, Scalar, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState
from flwr.serverapp import Grid

from dure.policies.entries import ContributionRejected, LedgerEntry
from dure.policies.job import JobManifest
from dure.policies.policy import UsagePolicy
from dure.server.federation.admission import MAX_REASONS
from dure.server.federation.commit import commit_round
from dure.server.federation.errors import FederationError
from dure.server.federation.run import RoundReport, RunSettings, RunState, Services
from dure.server.federation.secagg_grid import Evidence, SecureGrid, judge_masked
from dure.server.federation.validation import ClaimContext, check_update, settle_contributors

__all__ = ["SampledFedAvg", "check_secure_supported", "play_secure", "threshold"]

_STAGES = ("setup", "share_keys", "collect_masked_vectors", "unmask")


def check_secure_supported(job: JobManifest) -> None:
    """Raise :class:`FederationError` unless this coordinator can run ``job`` under SecAgg+."""
    if job.aggregation.strategy not in ("fedavg", "fedprox"):
        raise FederationError(
            f"job {job.job_id}: secure aggregation computes a weighted mean, so it needs "
            f"fedavg or fedprox, not {job.aggregation.strategy} (SecAgg+ only runs Flower's "
            "legacy FedAvg path: no server optimiser or robust aggregator can follow it)",
            hint="Sign the job with strategy fedavg or fedprox, or without aggregation.secure.",
        )
    if job.dp is not None:
        raise FederationError(
            f"job {job.job_id}: differential privacy together with secure aggregation is "
            "not supported (Flower's DP wrappers cannot wrap the SecAgg+ workflow)",
            hint="Sign the job either with aggregation.secure true or with dp, not both.",
        )


def threshold(required: int, sampled: int) -> int:
    """The SecAgg+ reconstruction threshold for ``sampled`` nodes (module docstring)."""
    return max(required, sampled // 2 + 1, 2)


class SampledFedAvg(LegacyFedAvg):
    """Flower's legacy ``FedAvg`` configuring exactly the sampled nodes; keeps its aggregate."""

    def __init__(self, grid: Grid, nodes: Sequence[int]) -> None:
        super().__init__(
            fraction_evaluate=0.0,
            min_fit_clients=1,
            min_evaluate_clients=1,
            min_available_clients=1,
            accept_failures=True,
            fit_metrics_aggregation_fn=lambda _metrics: {},
        )
        self._proxies = [GridClientProxy(node, grid, grid.run.run_id) for node in nodes]
        self.aggregated: Parameters | None = None

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Every sampled node, with an empty ``FitIns`` (Dure's records travel beside it)."""
        return [(proxy, FitIns(parameters, {})) for proxy in self._proxies]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Legacy FedAvg over the unmasked aggregate (every result carries it); keep it."""
        self.aggregated, metrics = super().aggregate_fit(server_round, results, failures)
        return self.aggregated, metrics


def play_secure(
    services: Services,
    settings: RunSettings,
    grid: Grid,
    state: RunState,
    round: int,
    instructions: Sequence[Message],
) -> tuple[RoundReport, list[LedgerEntry]]:
    """Run an opened round under SecAgg+ (``instructions``: the plain train messages, unsent).

    Returns the round's report and the entries to append (rejections, then the
    accepted contributions and the aggregate, or only rejections if aborted).
    """
    job = state.job.document
    sites = {state.nodes.node(site): site for site in state.sites}
    by_site = {sites[m.metadata.dst_node_id]: m for m in instructions}
    sampled = tuple(sorted(by_site))
    policies = {site: state.sites[site].policy for site in sampled}
    required = settle_contributors(
        job, round, {s: p.policy for s, p in policies.items() if p is not None}
    ).required
    accepted: dict[str, Evidence] = {}
    aborted: list[str] = []
    secure_grid = _secure_grid(settings, state, grid, by_site, accepted, aborted, round)
    strategy = SampledFedAvg(grid, [m.metadata.dst_node_id for m in instructions])
    context = _legacy_context(grid, strategy, job.rounds, round)
    workflow = SecAggPlusWorkflow(
        num_shares=1.0,
        reconstruction_threshold=threshold(required, len(sampled)),
        max_weight=_max_weight(state),
        clipping_range=float(job.aggregation.norm_bound_value),
        timeout=settings.round_timeout,
    )
    halted = _run_stages(workflow, secure_grid, context)
    rejected = {site: list(why) for site, why in secure_grid.failures.items()}
    if aborted or halted is not None or not accepted:
        reason = aborted[0] if aborted else _halt_reason(round, halted, required, len(sampled))
        return _abort(services, state, round, sampled, rejected, reason)
    model = _new_model(state, strategy.aggregated)
    problems = (
        ["the unmasked aggregate has the wrong number of tensors"]
        if model is None
        else check_update(model, state.model, job.aggregation.norm_bound_value)
    )
    if problems or model is None:
        reason = f"round {round} aborted: the unmasked aggregate fails validation"
        return _abort(services, state, round, sampled, rejected, reason, problems)
    rejected = {site: why for site, why in rejected.items() if site not in accepted}
    return _commit(services, state, round, sampled, rejected, accepted, model)


def _secure_grid(
    settings: RunSettings,
    state: RunState,
    grid: Grid,
    by_site: Mapping[str, Message],
    accepted: dict[str, Evidence],
    aborted: list[str],
    round: int,
) -> SecureGrid:
    job = state.job.document
    weight = _max_weight(state)

    def train_config(message: Message) -> ConfigRecord:
        config = message.content["config"]
        assert isinstance(config, ConfigRecord)  # rounds._instruction built it
        return ConfigRecord({**dict(config), "secagg-max-weight": weight})

    def judge(replies: dict[str, Message]) -> dict[str, Message]:
        for site, reply in sorted(replies.items()):
            context = ClaimContext(job, state.job.document_id, round, state.sites[site])
            verdict = judge_masked(reply, context)
            if isinstance(verdict, Evidence):
                accepted[site] = verdict
            else:
                secure_grid.failures.setdefault(site, verdict)
        policies = {s: _policy(state, s) for s in accepted}
        settlement = settle_contributors(job, round, policies)
        for site, why in settlement.dropped.items():
            secure_grid.failures.setdefault(site, [why])
            accepted.pop(site, None)
        if settlement.aborted is not None:
            aborted.append(settlement.aborted)
            accepted.clear()
        return {site: replies[site] for site in sorted(accepted)}

    first = next(iter(by_site.values()))
    arrays = first.content["arrays"]
    assert isinstance(arrays, ArrayRecord)
    secure_grid = SecureGrid(
        grid=grid,
        sites={m.metadata.dst_node_id: site for site, m in by_site.items()},
        minimal={
            site: ConfigRecord(
                {"job": state.job_json, "round": round, "site": state.sites[site].name}
            )
            for site in by_site
        },
        train={site: train_config(m) for site, m in by_site.items()},
        arrays=arrays,
        judge=judge,
        timeout=settings.round_timeout,
        poll=settings.poll,
    )
    return secure_grid


def _legacy_context(grid: Grid, strategy: SampledFedAvg, rounds: int, round: int) -> LegacyContext:
    base = Context(
        run_id=grid.run.run_id, node_id=0, node_config={}, state=RecordDict(), run_config={}
    )
    context = LegacyContext(base, ServerConfig(num_rounds=rounds), strategy)
    context.state["config"] = ConfigRecord({"current_round": round})
    context.state["parameters"] = ArrayRecord()
    return context


def _run_stages(
    workflow: SecAggPlusWorkflow, grid: SecureGrid, context: LegacyContext
) -> str | None:
    """Run the four stages; return the stage that halted (``None`` if all completed)."""
    state = WorkflowState()
    steps = (
        workflow.setup_stage,
        workflow.share_keys_stage,
        workflow.collect_masked_vectors_stage,
        workflow.unmask_stage,
    )
    for name, step in zip(_STAGES, steps, strict=True):
        try:
            if not step(grid, context, state):
                return name
        except (KeyError, ValueError, TypeError) as exc:
            return f"{name} ({type(exc).__name__}: {exc})"
        if name == "share_keys":
            _forget_early_dropouts(state)
    return None


def _forget_early_dropouts(state: WorkflowState) -> None:
    """Remove nodes that left before sending their key shares from the protocol.

    Nobody holds shares of their keys and nobody masked with them, so the
    unmasking must neither ask for their shares nor remove masks with them.
    """
    alive = set(state.active_node_ids)
    state.sampled_node_ids = alive
    state.nid_to_neighbours = {
        node: neighbours & alive
        for node, neighbours in state.nid_to_neighbours.items()
        if node in alive
    }


def _max_weight(state: RunState) -> float:
    action = state.stats.features.get("action")
    return float(max(action.count if action is not None else 1, 1))


def _policy(state: RunState, site: str) -> UsagePolicy:
    registered = state.sites[site].policy
    if registered is None:
        raise FederationError(f"{site} is in the run without a policy")
    return registered.policy


def _new_model(
    state: RunState, aggregated: Parameters | None
) -> dict[str, npt.NDArray[Any]] | None:
    if aggregated is None:
        return None
    deltas = parameters_to_ndarrays(aggregated)
    if len(deltas) != len(state.model):
        return None
    return {
        name: (np.asarray(value, np.float64) + np.asarray(delta, np.float64)).astype(value.dtype)
        if np.shape(delta) == value.shape
        else np.asarray(delta)
        for (name, value), delta in zip(state.model.items(), deltas, strict=True)
    }


def _halt_reason(round: int, halted: str | None, required: int, sampled: int) -> str:
    return (
        f"round {round} aborted: secure aggregation halted at the {halted or 'unmask'} "
        f"stage (fewer than the reconstruction threshold {threshold(required, sampled)} "
        f"of {sampled} sampled sites remained; at least {required} contributors required)"
    )


def _abort(
    services: Services,
    state: RunState,
    round: int,
    sampled: tuple[str, ...],
    rejected: dict[str, list[str]],
    reason: str,
    extra: Sequence[str] = (),
) -> tuple[RoundReport, list[LedgerEntry]]:
    job, now = state.job.document, services.clock()
    why = {site: _lines([*rejected.get(site, []), reason, *extra]) for site in sampled}
    entries: list[LedgerEntry] = [
        ContributionRejected(time=now, job_id=job.job_id, round=round, site=s, reasons=r)
        for s, r in sorted(why.items())
    ]
    report = RoundReport(round, "aborted", sampled, rejected=why, reason=reason)
    return report, entries


def _commit(
    services: Services,
    state: RunState,
    round: int,
    sampled: tuple[str, ...],
    rejected: dict[str, list[str]],
    accepted: Mapping[str, Evidence],
    model: dict[str, npt.NDArray[Any]],
) -> tuple[RoundReport, list[LedgerEntry]]:
    job, now = state.job.document, services.clock()
    sites = tuple(sorted(accepted))
    why = {site: _lines(reasons) for site, reasons in rejected.items()}
    entries: list[LedgerEntry] = [
        ContributionRejected(time=now, job_id=job.job_id, round=round, site=s, reasons=r)
        for s, r in sorted(why.items())
    ]
    contributions = [(site, accepted[site].claim, accepted[site].digest) for site in sites]
    entries += commit_round(
        services, state, round, contributions, model, now=now, secure=True, epsilon=None
    )
    report = RoundReport(
        round, "committed", sampled, contributors=sites, rejected=why,
        model_digest=state.model_digest,
    )  # fmt: skip
    return report, entries


def _lines(reasons: Sequence[str]) -> tuple[str, ...]:
    lines = [reason[:2000] for reason in reasons if reason] or ["no reason given"]
    if len(lines) > MAX_REASONS:
        lines = [*lines[: MAX_REASONS - 1], f"and {len(lines) - MAX_REASONS + 1} more reasons"]
    return tuple(lines)
