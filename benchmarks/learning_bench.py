"""Learning benchmark: federated, pooled, local-only and personalised success, per split.

Splits (``DURE_BENCH_SPLITS``, default ``demo,1,2``):

* ``demo``: the demo's five factories (:data:`learning_sites.DEMO_FACTORIES`),
  reported like the others;
* an integer ``s``: four factories of two tasks each, eight distinct tasks drawn
  with seed ``s`` (:func:`learning_tasks.random_split`) from the tasks the
  simulation-only rule of :mod:`benchmarks.learning_tasks` admits (computed once,
  cached in ``bench-results/``), logging styles given in turn.

For every split and seed (the seed picks the demonstration layouts, the initial
weights, the shuffles and the evaluation layouts) the benchmark trains, from one
initial model and one schedule (``rounds`` x ``local_steps`` Adam steps per site,
the round's learning rate constant or cosine-decayed):

* ``pooled``: all sites' demonstrations in one place (the upper reference);
* ``federated``: the consortium model, the plain-torch reference loop of
  :mod:`dure.client.training.baselines` with the configured server optimiser
  (FedAvg, FedAvgM, FedAdam or FedYogi with Flower's math);
* ``local``: each factory alone on its own demonstrations;
* ``personalised``: per site, the consortium model fine-tuned on the site's own
  demonstrations (:mod:`dure.client.training.personalise`), task-routed: the
  fine-tuned weights for its own tasks, the consortium weights for the others.
  The fine-tuned weights are also run on the others' tasks (``forget_eval``
  episodes) to measure what fine-tuning alone would forget.

Every model is evaluated on fresh layouts (success: ``info["success"]`` at any
step within :data:`~dure.client.sim.metaworld_env.EPISODE_STEPS`, the episode
length of the demonstrations too); the same layouts for every model of a seed.
Figures are the mean and the sample standard deviation over seeds.

Environment (defaults in brackets): ``DURE_BENCH_SPLITS`` [demo,1,2],
``DURE_BENCH_SEEDS`` [3], ``DURE_BENCH_SEED_BASE`` [0], ``DURE_BENCH_DEMOS`` demos
per task [20], ``DURE_BENCH_ROUNDS`` [20], ``DURE_BENCH_LOCAL_STEPS`` [50],
``DURE_BENCH_LR`` clients' rate (Flower's ``eta_l``) [0.003],
``DURE_BENCH_SCHEDULE`` [cosine|constant], ``DURE_BENCH_BATCH`` [256],
``DURE_BENCH_HIDDEN`` [256,256], ``DURE_BENCH_SERVER`` [fedavgm; or fedavg, fedadam, fedyogi],
``DURE_BENCH_SERVER_LR`` / ``DURE_BENCH_SERVER_MOMENTUM`` (FedAvgM) [1, 0.5],
``DURE_BENCH_ETA`` / ``DURE_BENCH_TAU`` (FedAdam, FedYogi) [0.01, 0.001],
``DURE_BENCH_FT_STEPS`` / ``DURE_BENCH_FT_LR`` fine-tuning [300, 0.001],
``DURE_BENCH_EVAL`` episodes per task [10], ``DURE_BENCH_FORGET_EVAL`` [3],
``DURE_BENCH_DP_NOISE`` noise multipliers of extra DP runs [none],
``DURE_BENCH_DP_CLIP`` [3], ``DURE_BENCH_CACHE`` (see :mod:`benchmarks.learning_sites`).
The defaults of the method are the ones chosen on the tuning splits
(:mod:`benchmarks.learning_tune`), never on the reported ones.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, cast

import torch
from rich.console import Console

from benchmarks.learning_sites import DEMO_FACTORIES, FactorySpec, Site, build_sites
from benchmarks.learning_tasks import eligible_tasks, random_split
from dure.client.episodes.stats import FeatureStats
from dure.client.training.baselines import FederatedConfig, ServerClipping, federated_average
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.evaluate import evaluate_in_metaworld
from dure.client.training.model import build_policy_model
from dure.client.training.normalisation import merge_site_stats, policy_dataset
from dure.client.training.personalise import FineTuneConfig, TaskRoutedPolicy, fine_tune
from dure.client.training.server_opt import ServerOptConfig, ServerOptName

__all__ = ["Settings", "SplitSetup", "main", "run_seed", "setup_split", "split_factories"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"DURE_BENCH_{name}", default)


def _server_from_env() -> ServerOptConfig:
    return ServerOptConfig(
        name=cast(ServerOptName, _env("SERVER", "fedavgm")),
        server_learning_rate=float(_env("SERVER_LR", "1.0")),
        server_momentum=float(_env("SERVER_MOMENTUM", "0.5")),
        eta=float(_env("ETA", "0.01")),
        tau=float(_env("TAU", "0.001")),
    )


def _fed_from_env() -> FederatedConfig:
    schedule = _env("SCHEDULE", "cosine")
    return FederatedConfig(
        rounds=int(_env("ROUNDS", "20")),
        local_steps=int(_env("LOCAL_STEPS", "50")),
        batch_size=int(_env("BATCH", "256")),
        lr=float(_env("LR", "0.003")),
        cosine_lr=schedule == "cosine",
        server=_server_from_env(),
    )


@dataclass(frozen=True)
class Settings:
    """The benchmark's knobs (see the module docstring)."""

    splits: tuple[str, ...] = tuple(s.strip() for s in _env("SPLITS", "demo,1,2").split(","))
    seeds: int = int(_env("SEEDS", "3"))
    seed_base: int = int(_env("SEED_BASE", "0"))
    demos: int = int(_env("DEMOS", "20"))
    hidden: tuple[int, ...] = tuple(int(h) for h in _env("HIDDEN", "256,256").split(","))
    eval_episodes: int = int(_env("EVAL", "10"))
    forget_eval: int = int(_env("FORGET_EVAL", "3"))
    clip: float = float(_env("DP_CLIP", "3.0"))
    noises: tuple[float, ...] = tuple(
        float(n) for n in _env("DP_NOISE", "").split(",") if n.strip()
    )
    fed: FederatedConfig = field(default_factory=_fed_from_env)
    finetune: FineTuneConfig = field(
        default_factory=lambda: FineTuneConfig(
            steps=int(_env("FT_STEPS", "300")), lr=float(_env("FT_LR", "0.001"))
        )
    )


def split_factories(split: str) -> tuple[FactorySpec, ...]:
    """The factories of ``split`` (``demo`` or a random split's seed)."""
    if split == "demo":
        return DEMO_FACTORIES
    return random_split(int(split), eligible_tasks())


@dataclass(frozen=True)
class SplitSetup:
    """What every model of one split and seed shares: data, statistics, vocabulary, weights."""

    factories: tuple[FactorySpec, ...]
    sites: tuple[Site, ...]
    datasets: tuple[EpisodesDataset, ...]
    pooled: EpisodesDataset
    stats: dict[str, FeatureStats]
    vocab: tuple[str, ...]
    init: torch.nn.Module


def setup_split(
    factories: Sequence[FactorySpec], seed: int, demos: int, hidden: tuple[int, ...]
) -> SplitSetup:
    """Build (or load from the cache) the sites' stores, datasets and initial weights."""
    sites = tuple(build_sites(factories, demos, seed))
    stats = merge_site_stats([s.stats for s in sites])
    vocab = tuple(sorted(task for s in sites for task in s.spec.tasks))
    datasets = tuple(policy_dataset(s.episodes, stats, vocab) for s in sites)
    pooled = policy_dataset([e for s in sites for e in s.episodes], stats, vocab)
    init = build_policy_model(
        pooled.observation_dim, len(vocab), pooled.action_dim, hidden, seed=seed
    )
    return SplitSetup(tuple(factories), sites, datasets, pooled, dict(stats), vocab, init)


Model = Literal["pooled", "federated"]


@dataclass
class SeedResult:
    """One seed's success rates and stage times.

    ``success[model][task]`` for ``pooled``, ``federated`` and ``federated_dp@z``;
    ``local``/``personal``: site -> own task -> rate; ``forget``: site -> others'
    task -> rate of the fine-tuned weights alone.
    """

    success: dict[str, dict[str, float]] = field(default_factory=dict)
    local: dict[str, dict[str, float]] = field(default_factory=dict)
    personal: dict[str, dict[str, float]] = field(default_factory=dict)
    forget: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _eval(
    setup: SplitSetup, model: torch.nn.Module, tasks: Sequence[str], episodes: int, seed: int
) -> dict[str, float]:
    return evaluate_in_metaworld(model, setup.stats, tasks, setup.vocab, episodes, seed)


def run_seed(split: str, seed: int, cfg: Settings) -> SeedResult:
    """Train and evaluate every model of ``split`` for ``seed``."""
    result = SeedResult()
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = result.seconds.get(name, 0.0) + now - clock
        clock = now

    setup = setup_split(split_factories(split), seed, cfg.demos, cfg.hidden)
    lap("setup_s")
    fed = replace(cfg.fed, seed=seed)
    runs: list[tuple[str, Sequence[EpisodesDataset], ServerClipping | None]] = [
        ("pooled", [setup.pooled], None),
        ("federated", setup.datasets, None),
    ]
    runs += [
        (f"federated_dp@{z:g}", setup.datasets, ServerClipping(cfg.clip, z)) for z in cfg.noises
    ]
    consortium = setup.init
    for name, parts, dp in runs:
        model = federated_average(setup.init, parts, fed, dp=dp).model
        lap("train_s")
        result.success[name] = _eval(setup, model, setup.vocab, cfg.eval_episodes, seed)
        lap("eval_s")
        if name == "federated":
            consortium = model
        print(
            f"  split {split} seed {seed} {name:10s} {_mean(result.success[name]):.3f}", flush=True
        )
    for spec, dataset in zip(setup.factories, setup.datasets, strict=True):
        own = list(spec.tasks)
        others = [t for t in setup.vocab if t not in spec.tasks]
        local = federated_average(setup.init, [dataset], fed).model
        tuned = fine_tune(consortium, dataset, replace(cfg.finetune, seed=seed))
        routed = TaskRoutedPolicy(
            tuned, consortium, dataset.observation_dim, [setup.vocab.index(t) for t in own]
        )
        lap("train_s")
        result.local[spec.site] = _eval(setup, local, own, cfg.eval_episodes, seed)
        result.personal[spec.site] = _eval(setup, routed, own, cfg.eval_episodes, seed)
        if cfg.forget_eval > 0:
            result.forget[spec.site] = _eval(setup, tuned, others, cfg.forget_eval, seed)
        lap("eval_s")
        print(
            f"  split {split} seed {seed} {spec.site}: local {_mean(result.local[spec.site]):.2f} "
            f"personalised {_mean(result.personal[spec.site]):.2f} "
            f"federated {_mean({t: result.success['federated'][t] for t in own}):.2f}",
            flush=True,
        )
    return result


def _mean(rates: dict[str, float]) -> float:
    return sum(rates.values()) / len(rates) if rates else float("nan")


def _spread(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def split_figures(
    factories: Sequence[FactorySpec], results: Sequence[SeedResult]
) -> dict[str, float]:
    """Mean and spread over seeds of every reported figure of one split."""
    figures: dict[str, float] = {}

    def put(key: str, values: Sequence[float]) -> None:
        figures[f"{key}.mean"], figures[f"{key}.std"] = _spread(values)

    models = list(results[0].success)
    for model in models:
        put(f"{model}.mean_success", [_mean(r.success[model]) for r in results])
        for task in results[0].success[model]:
            put(f"{model}.{task}", [r.success[model][task] for r in results])
        if model != "pooled":
            put(
                f"{model}_over_pooled",
                [_mean(r.success[model]) / max(_mean(r.success["pooled"]), 1e-9) for r in results],
            )
    for spec in factories:
        own = spec.tasks

        def on(model: str, tasks: Sequence[str], r: SeedResult) -> float:
            return statistics.fmean(r.success[model][t] for t in tasks)

        others = [t for t in results[0].success["pooled"] if t not in own]
        site = spec.site
        put(f"{site}.local_own", [_mean(r.local[site]) for r in results])
        put(f"{site}.personalised_own", [_mean(r.personal[site]) for r in results])
        put(f"{site}.federated_own", [on("federated", own, r) for r in results])
        put(f"{site}.pooled_own", [on("pooled", own, r) for r in results])
        put(f"{site}.personalised_others", [on("federated", others, r) for r in results])
        put(f"{site}.pooled_others", [on("pooled", others, r) for r in results])
        put(
            f"{site}.personalised_others_over_pooled",
            [on("federated", others, r) / max(on("pooled", others, r), 1e-9) for r in results],
        )
        if results[0].forget:
            put(f"{site}.finetuned_only_others", [_mean(r.forget[site]) for r in results])
    for stage in results[0].seconds:
        figures[f"time.{stage}"] = statistics.fmean(r.seconds[stage] for r in results)
    return figures


COLUMNS = (
    "local_own",
    "personalised_own",
    "federated_own",
    "personalised_others",
    "pooled_others",
)


def _cell(figures: dict[str, float], key: str) -> str:
    return f"{figures[f'{key}.mean']:.2f} ± {figures[f'{key}.std']:.2f}"


def split_table(split: str, factories: Sequence[FactorySpec], figures: dict[str, float]) -> str:
    """The split's results as Markdown (the tables docs/federation.md shows)."""
    lines = [
        f"**Split {split}**: "
        + "; ".join(f"{f.site} ({f.style}): {', '.join(f.tasks)}" for f in factories),
        "",
        "| federated / pooled | federated mean success | pooled mean success |",
        "|---|---|---|",
        f"| {_cell(figures, 'federated_over_pooled')} | {_cell(figures, 'federated.mean_success')} "
        f"| {_cell(figures, 'pooled.mean_success')} |",
        "",
        "| site | local-only, own tasks | personalised, own tasks | consortium, own tasks "
        "| personalised, others' tasks | pooled, others' tasks | fine-tuned weights alone, "
        "others' tasks |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in factories:
        s = f.site
        forget = (
            _cell(figures, f"{s}.finetuned_only_others")
            if f"{s}.finetuned_only_others.mean" in figures
            else "n/a"
        )
        cells = [_cell(figures, f"{s}.{k}") for k in COLUMNS]
        lines.append(f"| {s} | {' | '.join(cells)} | {forget} |")
    return "\n".join(lines) + "\n"


def main() -> dict[str, float]:
    """Run every split and seed, print and write the tables, return the figures."""
    cfg = Settings()
    torch.set_num_threads(1)
    console = Console(width=160)
    console.print(f"learning benchmark: {cfg}")
    figures: dict[str, float] = {}
    tables = [f"Settings: {cfg}\n"]
    for split in cfg.splits:
        factories = split_factories(split)
        console.print(f"split {split}: {factories}")
        seeds = range(cfg.seed_base, cfg.seed_base + cfg.seeds)
        results = [run_seed(split, seed, cfg) for seed in seeds]
        found = split_figures(factories, results)
        figures |= {f"split_{split}.{k}": v for k, v in found.items()}
        table = split_table(split, factories, found)
        tables.append(table)
        console.print(table)
        out = Path("bench-results")
        out.mkdir(exist_ok=True)
        (out / f"learning-table-{split}.md").write_text(f"{tables[0]}\n{table}", encoding="utf-8")
        raw = [r.__dict__ for r in results]
        (out / f"learning-split-{split}.json").write_text(
            json.dumps({"settings": str(cfg), "seeds": list(seeds), "results": raw}, indent=1),
            encoding="utf-8",
        )
    return figures
