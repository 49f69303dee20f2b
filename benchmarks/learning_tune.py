"""Choosing the learning defaults on tuning splits only (never on the reported ones).

``python -m benchmarks.learning_tune`` trains on random splits drawn with seeds
disjoint from the reported ones (``DURE_TUNE_SPLITS``, default ``101,102``) and
training seeds disjoint from the reported seeds (``DURE_TUNE_SEED``, default
100), in three stages:

1. **server method and schedule** (proxy only): every configuration of
   :data:`GRID` trains the consortium model; the score is the action MSE on
   held-out demonstrations (``DURE_TUNE_HELD`` per task, layouts no training
   demonstration used) of every site, against the pooled model's;
2. **personalisation** (proxy only): the best configuration's consortium model is
   fine-tuned per site with each of :data:`FINETUNE_GRID`; the score is the
   held-out action MSE on the site's own tasks, against the local-only model's;
3. **a few success rollouts** (``DURE_TUNE_EVAL`` episodes per task): pooled, the
   old default and the chosen configuration, to check that the proxy's order
   holds in success.

Results go to ``bench-results/learning-tune.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from benchmarks.learning_bench import SplitSetup, setup_split, split_factories
from benchmarks.learning_sites import build_sites
from dure.client.training.baselines import FederatedConfig, federated_average
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.evaluate import evaluate_in_metaworld
from dure.client.training.normalisation import policy_dataset
from dure.client.training.personalise import FineTuneConfig, action_mse, fine_tune
from dure.client.training.server_opt import ServerOptConfig

__all__ = ["FINETUNE_GRID", "GRID", "main"]

BASE = FederatedConfig(rounds=20, local_steps=50, batch_size=256, lr=3e-3, cosine_lr=True)
"""The old default schedule (the demo's): FedAvg, 20 x 50 steps, lr 3e-3 cosine, batch 256."""

GRID: dict[str, FederatedConfig] = {
    "fedavg cosine lr3e-3 (old default)": BASE,
    "fedavg constant lr3e-3": replace(BASE, cosine_lr=False),
    "fedavg cosine lr3e-3 100 local steps": replace(BASE, local_steps=100),
    "fedavgm slr1 momentum0.5": replace(
        BASE, server=ServerOptConfig("fedavgm", server_learning_rate=1.0, server_momentum=0.5)
    ),
    "fedavgm slr0.3 momentum0.9": replace(
        BASE, server=ServerOptConfig("fedavgm", server_learning_rate=0.3, server_momentum=0.9)
    ),
    "fedadam eta3e-3": replace(BASE, server=ServerOptConfig("fedadam", eta=3e-3)),
    "fedyogi eta1e-2": replace(BASE, server=ServerOptConfig("fedyogi", eta=1e-2)),
}
"""Configurations of stage 1 (20 rounds each; cut to seven to fit two shared cores)."""

FINETUNE_GRID = tuple(
    FineTuneConfig(steps=steps, lr=lr)
    for steps in (0, 100, 300)
    for lr in (3e-4, 1e-3)
    if steps or lr == 3e-4
)
"""Fine-tuning settings of stage 2 (0 steps: the consortium model itself)."""


def _env(name: str, default: str) -> str:
    return os.environ.get(f"DURE_TUNE_{name}", default)


def _held_out(setup: SplitSetup, seed: int, per_task: int) -> tuple[EpisodesDataset, ...]:
    """Each site's held-out demonstrations (other layouts), with the training statistics."""
    held = build_sites(setup.factories, per_task, seed + 500)
    return tuple(policy_dataset(s.episodes, setup.stats, setup.vocab) for s in held)


def _mse(model: torch.nn.Module, held: tuple[EpisodesDataset, ...]) -> float:
    return statistics.fmean(action_mse(model, d) for d in held)


def main() -> dict[str, object]:
    """Run the three stages on the tuning splits; print and write the results."""
    torch.set_num_threads(1)
    splits = [s.strip() for s in _env("SPLITS", "101,102").split(",")]
    seed = int(_env("SEED", "100"))
    per_task = int(_env("HELD", "5"))
    episodes = int(_env("EVAL", "5"))
    names = [n for n in GRID if n in _env("ONLY", "|".join(GRID)).split("|")]
    report: dict[str, object] = {"splits": splits, "seed": seed, "held_per_task": per_task}
    stage1: dict[str, dict[str, float]] = {}
    setups = {}
    for split in splits:
        setup = setup_split(split_factories(split), seed, 20, (256, 256))
        held = _held_out(setup, seed, per_task)
        setups[split] = (setup, held)
        started = time.perf_counter()
        pooled = federated_average(setup.init, [setup.pooled], replace(BASE, seed=seed)).model
        stage1.setdefault("pooled", {})[split] = _mse(pooled, held)
        print(
            f"split {split} pooled mse {stage1['pooled'][split]:.4f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        for name in names:
            started = time.perf_counter()
            run = federated_average(setup.init, setup.datasets, replace(GRID[name], seed=seed))
            stage1.setdefault(name, {})[split] = _mse(run.model, held)
            print(
                f"split {split} {name:40s} mse {stage1[name][split]:.4f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    report["stage1_heldout_mse"] = stage1
    chosen = min(names, key=lambda n: statistics.fmean(stage1[n].values()))
    report["chosen"] = chosen
    print(f"chosen: {chosen}", flush=True)
    stage2: dict[str, dict[str, float]] = {}
    rollouts: dict[str, dict[str, float]] = {}
    for split, (setup, held) in setups.items():
        config = replace(GRID[chosen], seed=seed)
        consortium = federated_average(setup.init, setup.datasets, config).model
        for site, data, own_held in zip(setup.factories, setup.datasets, held, strict=True):
            local = federated_average(setup.init, [data], config).model
            stage2.setdefault("local-only", {})[f"{split}/{site.site}"] = action_mse(
                local, own_held
            )
            for ft in FINETUNE_GRID:
                tuned = fine_tune(consortium, data, replace(ft, seed=seed))
                key = f"steps {ft.steps} lr {ft.lr:g}"
                stage2.setdefault(key, {})[f"{split}/{site.site}"] = action_mse(tuned, own_held)
        print(f"split {split} stage 2 done", flush=True)
        if episodes:
            models = {"pooled": [setup.pooled], "old default": setup.datasets}
            models[chosen] = setup.datasets
            for label, parts in models.items():
                cfg = BASE if label in ("pooled", "old default") else GRID[chosen]
                model = federated_average(setup.init, parts, replace(cfg, seed=seed)).model
                rates = evaluate_in_metaworld(
                    model, setup.stats, setup.vocab, setup.vocab, episodes, seed
                )
                rollouts.setdefault(label, {})[split] = statistics.fmean(rates.values())
                print(f"split {split} {label} success {rollouts[label][split]:.2f}", flush=True)
    report["stage2_own_heldout_mse"] = stage2
    report["stage2_mean"] = {k: statistics.fmean(v.values()) for k, v in stage2.items()}
    report["stage3_success"] = rollouts
    report["grid"] = {n: asdict(GRID[n]) for n in names}
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "learning-tune.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("chosen", "stage2_mean", "stage3_success")}, indent=1))
    return report


if __name__ == "__main__":
    main()
