"""The demo's stages, in order: factories, federation, references, ledger, report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from dure.cli.demo.federation import Federation, FederationSettings, run_federation
from dure.cli.demo.references import Evaluation, federated_model, train_reference
from dure.cli.demo.report import (
    DemoReport,
    print_admission,
    print_success,
    print_usage,
    usage_by_site,
)
from dure.cli.demo.sites import DEMO_FACTORIES, DemoSite, build_site
from dure.cli.output import styled
from dure.client.sim.metaworld_env import EPISODE_STEPS
from dure.client.training.baselines import FederatedConfig
from dure.policies.entries import SiteRefused
from dure.server.federation.coordinator import ledger_entries
from dure.server.ledger.export import export_ledger, verify_export

__all__ = ["DemoOptions", "run_demo"]

HIDDEN = (256, 256)
LOCAL_STEPS = 50
LR = 3e-3
MAX_STEPS = EPISODE_STEPS  # evaluation allows what simulation gave the experts
LOCAL_EVAL_EPISODES = 2


@dataclass(frozen=True)
class DemoOptions:
    """What the command line chose."""

    rounds: int
    demos: int
    eval_episodes: int
    seed: int
    dp: bool
    noise: str


def run_demo(
    out: Path, work: Path, options: DemoOptions, console: Console, progress: Progress
) -> DemoReport:
    """Run every stage and return the report (``summary.json``'s content)."""
    now = datetime.now(UTC).replace(microsecond=0)
    sites = _factories(work, options, now, progress)
    settings = FederationSettings(
        options.rounds, LOCAL_STEPS, LR, HIDDEN, options.seed, options.dp, options.noise
    )
    console.print(
        styled(
            "\n",
            ("Federated run", "bold"),
            f": {options.rounds} rounds through Flower's Simulation Engine",
        )
    )
    federation = run_federation(sites, work, now, settings)
    report = _report(sites, federation, options)
    print_admission(console, report)
    evaluation = Evaluation(options.eval_episodes, LOCAL_EVAL_EPISODES, MAX_STEPS, options.seed)
    _references(sites, federation, report, evaluation, options, console)
    print_success(console, report, list(federation.tasks))
    _ledger(out, federation, report, [s.name for s in sites], console)
    return report


def _factories(
    work: Path, options: DemoOptions, now: datetime, progress: Progress
) -> list[DemoSite]:
    sites = []
    total = options.demos * 2
    with progress:
        for index, spec in enumerate(DEMO_FACTORIES):
            task = progress.add_task(f"{spec.site}: simulate {spec.style}, ingest", total=total)
            sites.append(
                build_site(
                    spec,
                    work,
                    demos=options.demos,
                    seed=options.seed * 100 + index,
                    now=now,
                    dp=options.dp,
                    progress=partial(progress.advance, task),
                )
            )
    return sites


def _report(sites: list[DemoSite], federation: Federation, options: DemoOptions) -> DemoReport:
    run = federation.report
    report = DemoReport(rounds=sum(r.status == "committed" for r in run.rounds))
    refusals: dict[str, list[str]] = {}
    for entry in ledger_entries(federation.ledger):
        if isinstance(entry, SiteRefused):
            refusals.setdefault(entry.site, []).extend(entry.reasons)
    for site in sites:
        urn = f"urn:dure:site:{site.name}"
        report.sites[site.name] = {
            "admitted": urn in run.admitted,
            "reasons": refusals.get(urn, []) + list(run.refused.get(urn, ())),
            "tasks": list(site.spec.tasks),
            "episodes": site.episodes,
            "local_only_success": {},
        }
    if options.dp:
        spent = [float(r.epsilon) for r in run.rounds if r.epsilon is not None]
        report.dp = {"epsilon": max(spent, default=0.0), "delta": 1e-5}
    return report


def _references(
    sites: list[DemoSite],
    federation: Federation,
    report: DemoReport,
    evaluation: Evaluation,
    options: DemoOptions,
    console: Console,
) -> None:
    config = FederatedConfig(
        rounds=options.rounds, local_steps=LOCAL_STEPS, lr=LR, seed=options.seed
    )
    vocab = list(federation.tasks)
    every_task = sorted({t for s in sites for t in s.spec.tasks})
    admitted = [s for s in sites if report.sites[s.name]["admitted"]]
    with console.status(styled("evaluating the federated model in Meta-World")):
        model = federated_model(federation.final_model, federation.stats, vocab, HIDDEN)
        report.federated = evaluation.success(model, federation.stats, vocab, vocab)
    with console.status(styled("training and evaluating the pooled model (all admitted data)")):
        pooled, _ = train_reference(admitted, vocab, config, HIDDEN, federation.stats)
        report.pooled = evaluation.success(pooled, federation.stats, vocab, vocab)
    for site in sites:
        with console.status(styled(f"training and evaluating {site.name}'s local-only model")):
            local, stats = train_reference([site], every_task, config, HIDDEN)
            rates = evaluation.success(local, stats, every_task, every_task, local=True)
        report.sites[site.name]["local_only_success"] = rates


def _ledger(
    out: Path, federation: Federation, report: DemoReport, names: list[str], console: Console
) -> None:
    folder = out / "ledger-export"
    export_ledger(federation.ledger.store, folder)
    verified = verify_export(folder, federation.ledger.public_key())
    report.ledger_size = verified.checkpoint.size
    report.export_dir = str(folder)
    console.print(
        f"\nledger: {verified.checkpoint.size} entries, verified independently of the "
        f"coordinator against {federation.ledger.public_key()}"
    )
    console.print(federation.report.checkpoint, soft_wrap=True)
    print_usage(console, usage_by_site(ledger_entries(federation.ledger), names))
