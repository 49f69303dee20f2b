"""The demo's coordinator and its federated run through Flower's Simulation Engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.cli.demo.sites import CONSORTIUM, DEMO_FACTORIES, DemoSite
from dure.client.episodes.stats import FeatureStats
from dure.client.federation.clientapp import create_client_app, settings_by_partition
from dure.client.federation.statistics import consortium_stats
from dure.client.federation.trainer import train_policy
from dure.client.training.model import build_policy_model
from dure.policies.dsse import Envelope
from dure.policies.examples import example_job_value
from dure.policies.job import DEFAULT_TRAINING, JobManifest
from dure.policies.keys import SigningKey
from dure.policies.signed import sign_document
from dure.server.federation.coordinator import Coordinator
from dure.server.federation.models import DirectoryModelStore
from dure.server.federation.registry import MemoryRegistry
from dure.server.federation.run import RunReport, RunSettings, Services
from dure.server.federation.statistics import ConsortiumStats
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore

__all__ = ["Federation", "FederationSettings", "run_federation"]

ORIGIN = "dure.demo/robotics-coop"
CONSORTIUM_URN = f"urn:dure:consortium:{CONSORTIUM}"


@dataclass(frozen=True)
class FederationSettings:
    """The job's and the coordinator's knobs."""

    rounds: int
    local_steps: int
    lr: float
    hidden: tuple[int, ...]
    seed: int
    dp: bool
    noise_multiplier: str


@dataclass(frozen=True)
class Federation:
    """What the run produced, for evaluation and the report."""

    report: RunReport
    ledger: Ledger
    final_model: dict[str, npt.NDArray[Any]]
    stats: dict[str, FeatureStats]
    tasks: tuple[str, ...]


def _clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def run_federation(
    sites: Sequence[DemoSite], work: Path, now: datetime, settings: FederationSettings
) -> Federation:
    """Register every site, sign the job, run it through Flower, return the outcome."""
    from flwr.app import Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    operator = SigningKey.generate()
    store = SqlLedgerStore.from_url(f"sqlite:///{work / 'ledger.db'}")
    ledger = Ledger(store, SigningKey.generate(), ORIGIN)
    registry = MemoryRegistry()
    for site in sites:
        ledger.append(registry.register_site(site.identity, now))
        ledger.append(registry.register_policy(site.policy, now))
    job = _job(operator, now, settings)
    models = DirectoryModelStore(work / "models")
    run = RunSettings(
        consortium=CONSORTIUM_URN,
        seed=settings.seed,
        connect_wait=120.0,
        round_timeout=300.0,
    )
    coordinator = Coordinator(
        Services(registry, ledger, models, _clock),
        run,
        {operator.key_id: operator.public},
        _initial_model(settings),
    )
    outcome: list[tuple[RunReport, ConsortiumStats]] = []
    server = ServerApp()

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        state = coordinator.start(grid, job)
        for number in range(1, state.job.document.rounds + 1):
            if coordinator.play(grid, state, number).status == "stopped":
                break
        outcome.append((coordinator.finish(grid, state), state.stats))

    configs = [_node_config(site, operator, ledger) for site in sites]
    client = create_client_app(settings_by_partition(configs), train_policy, _clock)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=len(sites),
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    (report, stats), *_ = outcome
    final = models.get(report.final_model) if report.final_model else {}
    features = consortium_stats(stats.features_json())
    return Federation(report, ledger, final, features, stats.tasks)


def _job(operator: SigningKey, now: datetime, settings: FederationSettings) -> Envelope:
    value: Any = example_job_value(
        consortium=CONSORTIUM,
        coordinator=CONSORTIUM,
        members=[f.site for f in DEMO_FACTORIES],
        rounds=settings.rounds,
        issued=now,
        dp=settings.dp,
    )
    value["job_id"] = "bc-metaworld-demo-1"
    value["episode_selector"] = [
        {"leftOperand": "dure:success", "operator": "eq", "rightOperand": True}
    ]
    value["aggregation"]["norm_bound"] = "1000.0"
    value["training"] = {
        **DEFAULT_TRAINING.model_dump(mode="json"),
        "local_steps": settings.local_steps,
        "lr": f"{settings.lr:g}",
        "schedule": {"kind": "cosine", "rounds": None, "floor": "0"},
    }
    if settings.dp:
        value["dp"] = {
            "epsilon": "40.0",
            "delta": "0.00001",
            "clip": "3.0",
            "noise_multiplier": settings.noise_multiplier,
            "mode": "server-fixed",
        }
    return sign_document("job", JobManifest.from_value(value), operator)


def _initial_model(settings: FederationSettings) -> Any:
    def build(stats: ConsortiumStats) -> dict[str, npt.NDArray[Any]]:
        model = build_policy_model(
            stats.observation_dim,
            len(stats.tasks),
            stats.action_dim,
            settings.hidden,
            seed=settings.seed,
        )
        return {k: np.array(v.detach().numpy(), copy=True) for k, v in model.state_dict().items()}

    return build


def _node_config(site: DemoSite, operator: SigningKey, ledger: Ledger) -> dict[str, str]:
    folder = site.home.parent / "keys"
    folder.mkdir(exist_ok=True)
    key, policy, pinned = folder / "site.pem", folder / "policy.json", folder / "operator.pub"
    site.key.save(key)
    operator.public.save(pinned)
    policy.write_bytes(site.policy.to_json())
    return {
        "dure-home": str(site.home),
        "dure-site": site.name,
        "dure-key": str(key),
        "dure-policy": str(policy),
        "dure-operator-keys": str(pinned),
        "dure-ledger-key": ledger.public_key(),
        "dure-consortium": CONSORTIUM_URN,
    }
