"""The coordinator's run of one signed job through a Flower ``Grid``.

:meth:`Coordinator.run` is :meth:`~Coordinator.start`, then
:meth:`~Coordinator.play` for each round until the job's rounds are done or a
round stops, then :meth:`~Coordinator.finish`.  The three steps are public so
tests (and operators) can act between rounds, e.g. register a revocation.

Start:

1. verify the job with the pinned operator keys, check this coordinator can run
   it as signed (and that no deprecated run setting contradicts its ``training``),
   ledger ``job_signed`` (once per job digest);
2. **admission before sampling**: evaluate every registered site, ledger each
   ``site_admitted`` / ``site_refused`` with its reasons, sign a checkpoint; stop
   with :class:`FederationError` if the admitted sites cannot meet the minimum;
3. bind the admitted sites to Flower nodes (:mod:`~dure.server.federation.binding`);
4. ask them for feature statistics, merge them (consortium normalisation and
   task vocabulary), build and register the initial model;
5. under DP, set up per-site accounting within each site's ε limit; with a server
   optimiser, build its Flower strategy once (it keeps its state across rounds).

Finish: deliver the receipts still owed (``query.receipts``), sign a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy.typing as npt
from flwr.app import ConfigRecord, Message
from flwr.serverapp import Grid

from dure.policies.contribution import epsilon_spent_by
from dure.policies.dsse import Envelope
from dure.policies.entries import JobSigned, LedgerEntry, StatisticsShared, statistics_digest
from dure.policies.job import JobManifest
from dure.policies.keys import VerifyKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import Opened
from dure.server.federation.admission import admission_entries, admit
from dure.server.federation.aggregation import build_strategy, check_job_supported, stateful
from dure.server.federation.binding import NodeDirectory, bind_nodes
from dure.server.federation.errors import FederationError
from dure.server.federation.exchange import exchange, quicken_reply_pulls
from dure.server.federation.outbox import ReceiptOutbox
from dure.server.federation.privacy import PrivacyAccounting, site_limits
from dure.server.federation.registry import RegisteredSite, job_signed_entry, open_job
from dure.server.federation.resume import (
    close_interrupted,
    resume_state,
    resumption,
    unrecorded,
)
from dure.server.federation.rounds import play_round
from dure.server.federation.run import (
    RoundReport,
    RunReport,
    RunSettings,
    RunState,
    Services,
    check_settings,
)
from dure.server.federation.statistics import ConsortiumStats, merge_moments, parse_moments
from dure.server.federation.validation import settle_contributors
from dure.server.federation.wire import RECEIPTS, STATS, config_message
from dure.server.ledger.service import Ledger

__all__ = ["Coordinator", "InitialModel", "ledger_entries"]

InitialModel = Callable[[ConsortiumStats], Mapping[str, npt.NDArray[Any]]]
"""Builds the initial global model once the consortium's shapes are known."""


def ledger_entries(ledger: Ledger) -> list[LedgerEntry]:
    """Read and parse every entry of ``ledger`` (for ε spent and duplicate checks)."""
    store = ledger.store
    return [LedgerEntry.from_bytes(raw) for raw in store.entries(0, store.size())]


@dataclass(frozen=True)
class Coordinator:
    """Runs signed jobs (see the module docstring).

    Parameters
    ----------
    services
        Registry, ledger, model store and clock.
    settings
        The coordinator's consortium and run knobs.
    operator_keys
        The pinned consortium operator keys, by key id.
    initial_model
        Builds the initial model from the consortium statistics.
    """

    services: Services
    settings: RunSettings
    operator_keys: Mapping[str, VerifyKey]
    initial_model: InitialModel

    def run(self, grid: Grid, job: Envelope) -> RunReport:
        """Run every round of ``job`` and return what happened."""
        state = self.start(grid, job)
        for round in range(state.first_round, state.job.document.rounds + 1):
            if self.play(grid, state, round).status == "stopped":
                break
        return self.finish(grid, state)

    def start(self, grid: Grid, envelope: Envelope) -> RunState:
        """Verify, admit, bind, gather statistics and build the initial model."""
        quicken_reply_pulls()
        job = open_job(envelope, self.operator_keys)
        check_job_supported(job.document)
        check_settings(self.settings, job.document)
        spent = self._record_job(job)
        outbox = ReceiptOutbox(self.services.ledger)
        before = ledger_entries(self.services.ledger)  # a restart: see federation.resume
        closed = close_interrupted(self.services, job.document.job_id, before, outbox)
        admitted = self._admit(job, spent, outbox)
        nodes = bind_nodes(
            grid,
            list(admitted.values()),
            wait=self.settings.connect_wait,
            reply_timeout=self.settings.query_timeout,
            poll=self.settings.poll,
        )
        if not nodes.by_site:
            raise FederationError(
                f"none of the {len(admitted)} admitted sites has a Flower node online that "
                f"proves its identity (waited {self.settings.connect_wait:g} s)",
                hint="Start `dure factory up` at the sites and wait until each logs its "
                "SuperNode ID (or raise [run] connect_wait), then run the job again.",
            )
        stats = self._statistics(grid, envelope.to_json(), admitted, nodes, job.document.job_id)
        model = {k: v for k, v in self.initial_model(stats).items()}
        record = self.services.models.put(model, parent=None, job_id=job.document.job_id, round=0)
        state = RunState(
            job, envelope.to_json(), admitted, nodes, stats, model, record.digest, outbox, spent
        )
        state.initial_model = record.digest
        if stateful(job.document):
            state.optimiser = build_strategy(job.document)
        resume_state(self.services, state, resumption(before, job.document.job_id, closed))
        if job.document.dp is not None:
            policies = {urn: _policy_of(site) for urn, site in admitted.items()}
            limits = site_limits(job.document.dp, policies, spent)
            state.privacy = PrivacyAccounting(job.document.dp, limits)
        return state

    def play(self, grid: Grid, state: RunState, round: int) -> RoundReport:
        """Play one round and keep its report in ``state``."""
        report = play_round(self.services, self.settings, grid, state, round)
        state.rounds.append(report)
        if report.status == "stopped":
            state.stopped = report.reason
        return report

    def finish(self, grid: Grid, state: RunState) -> RunReport:
        """Deliver owed receipts, sign a checkpoint, report."""
        checkpoint = self.services.ledger.checkpoint()
        messages = [
            config_message(node, RECEIPTS, {"receipts": state.outbox.drain(site)})
            for site in state.outbox.owed()
            if (node := state.nodes.node(site)) is not None
        ]
        exchange(grid, messages, timeout=self.settings.query_timeout, poll=self.settings.poll)
        committed = [r.model_digest for r in state.rounds if r.model_digest is not None]
        return RunReport(
            job_id=state.job.document.job_id,
            admitted=tuple(sorted(state.nodes.by_site)),
            refused={s: w for r in state.rounds for s, w in r.refused.items()},
            rounds=tuple(state.rounds),
            initial_model=state.initial_model,
            final_model=committed[-1] if committed else None,
            stopped=state.stopped,
            ledger_size=self.services.ledger.store.size(),
            checkpoint=checkpoint,
        )

    def _record_job(self, job: Opened[JobManifest]) -> dict[str, Decimal]:
        entries = ledger_entries(self.services.ledger)
        known = any(isinstance(e, JobSigned) and e.job_digest == job.document_id for e in entries)
        if not known:
            self.services.ledger.append(job_signed_entry(job, self.services.clock()))
        return {
            site.urn: epsilon_spent_by(entries, site.urn, exclude_job=job.document.job_id)
            for site in self.services.registry.sites()
        }

    def _admit(
        self, job: Opened[JobManifest], spent: dict[str, Decimal], outbox: ReceiptOutbox
    ) -> dict[str, RegisteredSite]:
        now = self.services.clock()
        decisions = admit(
            job.document,
            self.services.registry.sites(),
            consortium=self.settings.consortium,
            now=now,
            spent=spent,
        )
        entries = admission_entries(job.document.job_id, decisions, now)
        entries = unrecorded(ledger_entries(self.services.ledger), entries)
        outbox.record(self.services.ledger.append_all(entries), entries)
        self.services.ledger.checkpoint()
        admitted = {d.site.urn: d.site for d in decisions if d.admitted}
        policies = {urn: _policy_of(site) for urn, site in admitted.items()}
        settlement = settle_contributors(job.document, 1, policies)
        if settlement.aborted is not None:
            raise FederationError(
                f"job {job.document.job_id} cannot run: {len(admitted)} sites admitted, "
                f"at least {settlement.required} contributors required",
                hint="The ledger lists every refusal with its reasons.",
            )
        return admitted

    def _statistics(
        self,
        grid: Grid,
        job_json: bytes,
        sites: Mapping[str, RegisteredSite],
        nodes: NodeDirectory,
        job_id: str,
    ) -> ConsortiumStats:
        messages = [
            config_message(node, STATS, {"job": job_json, "round": 0, "site": site.name})
            for urn, site in sites.items()
            if (node := nodes.node(urn)) is not None
        ]
        replies = exchange(
            grid, messages, timeout=self.settings.query_timeout, poll=self.settings.poll
        )
        answers = {node: _stats_answer(reply) for node, reply in replies.items()}
        parts = [answer for answer in answers.values() if answer is not None]
        shared = {node: _shared_record(replies[node]) for node, a in answers.items() if a}
        self._record_statistics(job_id, sites, nodes, shared)
        merged = merge_moments([features for features, _, _ in parts])
        tasks = tuple(sorted({task for _, names, _ in parts for task in names}))
        return ConsortiumStats(merged, tasks, sum(count for _, _, count in parts))

    def _record_statistics(
        self,
        job_id: str,
        sites: Mapping[str, RegisteredSite],
        nodes: NodeDirectory,
        shared: Mapping[int, tuple[str, int]],
    ) -> None:
        """Ledger ``statistics_shared`` for each statistics answer accepted, by site."""
        now, entries = self.services.clock(), list[LedgerEntry]()
        for urn, site in sorted(sites.items()):
            node = nodes.node(urn)
            if node is None or node not in shared or site.policy is None:
                continue
            digest, episodes = shared[node]
            entries.append(
                StatisticsShared(
                    time=now,
                    job_id=job_id,
                    site=urn,
                    stats_digest=digest,
                    episodes=episodes,
                    policy_id=site.policy.policy_id,
                )
            )
        entries = unrecorded(ledger_entries(self.services.ledger), entries)
        if entries:
            self.services.ledger.append_all(entries)


def _policy_of(site: RegisteredSite) -> UsagePolicy:
    if site.policy is None:
        raise FederationError(f"{site.urn} was admitted without a policy")
    return site.policy.policy


def _shared_record(reply: Message) -> tuple[str, int]:
    """The digest and episode count of an accepted statistics answer (for the ledger)."""
    record = reply.content["stats"]
    assert isinstance(record, ConfigRecord)  # _stats_answer accepted it
    features, tasks, episodes = record["features"], record["tasks"], record["episodes"]
    assert isinstance(features, str) and isinstance(tasks, str) and isinstance(episodes, int)
    return statistics_digest(features, tasks, episodes), episodes


def _stats_answer(reply: Message) -> tuple[dict[str, Any], list[str], int] | None:
    record = None if reply.has_error() else reply.content.get("stats")
    if not isinstance(record, ConfigRecord):
        return None
    features, tasks, episodes = record.get("features"), record.get("tasks"), record.get("episodes")
    if not isinstance(features, str) or not isinstance(tasks, str) or not isinstance(episodes, int):
        return None
    try:
        names = json.loads(tasks)
        moments = parse_moments(features, f"node {reply.metadata.src_node_id}")
    except (ValueError, FederationError):
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return moments, names, episodes
