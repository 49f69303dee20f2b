"""Learning benchmark: federated vs pooled vs local-only success in Meta-World, several seeds.

The demo's setting: five simulated factories (:data:`learning_sites.DEMO_FACTORIES`),
two Meta-World tasks each and no task shared (non-IID), each logging in its own
native style and ingested through the data plane.  For every seed (which picks
the demonstration layouts, the initial weights, the shuffles and the evaluation
layouts) the benchmark trains, from the same initial model and with the same
schedule (``rounds`` x ``local_steps`` Adam steps, cosine-decayed learning rate):

* ``pooled``: all sites' demonstrations in one place (the upper reference);
* ``federated``: FedAvg over the five sites (the plain-torch reference loop of
  :mod:`dure.client.training.baselines`; the demo runs the same through Flower);
* ``federated_dp@<z>``: the same with server-side fixed clipping and Gaussian noise
  multiplier z (Flower's ``DifferentialPrivacyServerSideFixedClipping``), its ε
  at δ = 1e-5 from an RDP accountant (``dp-accounting``; every site takes part in
  every round, so no sampling amplification);
* ``local``: each factory alone on its own demonstrations.

All use the consortium statistics (every site's statistics merged) and the
consortium task vocabulary.  Each model is evaluated on fresh layouts of every
task (success: ``info["success"]`` at any step within ``max_steps``), and the
figures report the mean and the spread (sample standard deviation) over seeds.

Environment (defaults in brackets): ``DURE_BENCH_SEEDS`` [3], ``DURE_BENCH_DEMOS``
demos per task [20], ``DURE_BENCH_ROUNDS`` [20], ``DURE_BENCH_LOCAL_STEPS`` [50],
``DURE_BENCH_LR`` [0.003], ``DURE_BENCH_HIDDEN`` [256,256], ``DURE_BENCH_EVAL``
episodes per task [10], ``DURE_BENCH_LOCAL_EVAL`` episodes per task for the
local-only models [4], ``DURE_BENCH_MAX_STEPS`` [500], ``DURE_BENCH_DP_CLIP``
[3], ``DURE_BENCH_DP_NOISE`` noise multipliers [0.01,0.05; empty for no DP run],
``DURE_BENCH_CACHE`` (see :mod:`benchmarks.learning_sites`).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from rich.console import Console
from rich.table import Table

from benchmarks.learning_sites import DEMO_FACTORIES, build_sites
from dure.client.episodes.stats import FeatureStats
from dure.client.training.baselines import FederatedConfig, ServerClipping, federated_average
from dure.client.training.dataset import EpisodesDataset
from dure.client.training.evaluate import evaluate_in_metaworld
from dure.client.training.model import build_policy_model
from dure.client.training.normalisation import merge_site_stats, policy_dataset

__all__ = ["main"]

DEFAULT_CLIP = 3.0
"""About the median norm of a site's update per round with the default schedule."""
DEFAULT_NOISE = "0.01,0.05"
"""Noise multipliers of the DP runs (comma-separated; empty: no DP run)."""
DELTA = 1e-5


def _env(name: str, default: str) -> str:
    return os.environ.get(f"DURE_BENCH_{name}", default)


@dataclass(frozen=True)
class Settings:
    """The benchmark's knobs (see the module docstring)."""

    seeds: int = int(_env("SEEDS", "3"))
    demos: int = int(_env("DEMOS", "20"))
    hidden: tuple[int, ...] = tuple(int(h) for h in _env("HIDDEN", "256,256").split(","))
    eval_episodes: int = int(_env("EVAL", "10"))
    local_eval_episodes: int = int(_env("LOCAL_EVAL", "4"))
    max_steps: int = int(_env("MAX_STEPS", "500"))
    clip: float = float(_env("DP_CLIP", str(DEFAULT_CLIP)))
    noises: tuple[float, ...] = tuple(
        float(n) for n in _env("DP_NOISE", DEFAULT_NOISE).split(",") if n.strip()
    )
    fed: FederatedConfig = field(
        default_factory=lambda: FederatedConfig(
            rounds=int(_env("ROUNDS", "20")),
            local_steps=int(_env("LOCAL_STEPS", "50")),
            lr=float(_env("LR", "0.003")),
        )
    )


@dataclass
class SeedResult:
    """One seed's success rates (model -> task -> rate), local-only summaries and stage times."""

    success: dict[str, dict[str, float]] = field(default_factory=dict)
    own: dict[str, float] = field(default_factory=dict)
    foreign: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    update_norms: list[float] = field(default_factory=list)
    hits: list[tuple[str, str, float]] = field(default_factory=list)


@contextmanager
def _stage(result: SeedResult, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.seconds[name] = result.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class _Setup:
    """What every model of a seed shares: data, statistics, vocabulary, initial weights."""

    sites: tuple[tuple[str, tuple[str, ...]], ...]
    datasets: tuple[EpisodesDataset, ...]
    pooled: EpisodesDataset
    stats: dict[str, FeatureStats]
    vocab: tuple[str, ...]
    init: torch.nn.Module


def _setup(seed: int, cfg: Settings, result: SeedResult) -> _Setup:
    with _stage(result, "load_s"):
        sites = build_sites(DEMO_FACTORIES, cfg.demos, seed)
    result.seconds["simulate_s"] = sum(s.simulate_s for s in sites)
    result.seconds["ingest_s"] = sum(s.ingest_s for s in sites)
    result.seconds["frames"] = float(sum(s.frames for s in sites))
    stats = merge_site_stats([s.stats for s in sites])
    vocab = tuple(sorted(task for s in sites for task in s.spec.tasks))
    with _stage(result, "datasets_s"):
        datasets = tuple(policy_dataset(s.episodes, stats, vocab) for s in sites)
        pooled = policy_dataset([e for s in sites for e in s.episodes], stats, vocab)
    init = build_policy_model(
        pooled.observation_dim, len(vocab), pooled.action_dim, cfg.hidden, seed=seed
    )
    named = tuple((s.spec.site, s.spec.tasks) for s in sites)
    return _Setup(named, datasets, pooled, dict(stats), vocab, init)


def _evaluate(
    setup: _Setup, model: torch.nn.Module, episodes: int, seed: int, cfg: Settings
) -> dict[str, float]:
    return evaluate_in_metaworld(
        model, setup.stats, setup.vocab, setup.vocab, episodes, seed, max_steps=cfg.max_steps
    )


def _run_seed(seed: int, cfg: Settings) -> SeedResult:
    result = SeedResult()
    setup = _setup(seed, cfg, result)
    fed = replace(cfg.fed, seed=seed)
    runs: list[tuple[str, Sequence[EpisodesDataset], ServerClipping | None]] = [
        ("pooled", [setup.pooled], None),
        ("federated", setup.datasets, None),
    ]
    for noise in cfg.noises:
        runs.append((f"federated_dp@{noise:g}", setup.datasets, ServerClipping(cfg.clip, noise)))
    for name, parts, dp in runs:
        with _stage(result, f"train_{name}_s"):
            run = federated_average(setup.init, parts, fed, dp=dp)
        if name == "federated":
            result.update_norms = run.update_norms
        with _stage(result, f"eval_{name}_s"):
            result.success[name] = _evaluate(setup, run.model, cfg.eval_episodes, seed, cfg)
        print(f"  seed {seed} {name:13s} mean {_mean(result.success[name]):.3f}", flush=True)
    for (site, tasks), dataset in zip(setup.sites, setup.datasets, strict=True):
        with _stage(result, "train_local_s"):
            run = federated_average(setup.init, [dataset], fed)
        with _stage(result, "eval_local_s"):
            rates = _evaluate(setup, run.model, cfg.local_eval_episodes, seed, cfg)
        result.success[f"local:{site}"] = rates
        result.own[site] = _mean({t: rates[t] for t in tasks})
        result.foreign[site] = _mean({t: v for t, v in rates.items() if t not in tasks})
        result.hits += [(site, t, v) for t, v in rates.items() if t not in tasks and v > 0]
        print(
            f"  seed {seed} local {site} own {result.own[site]:.2f} "
            f"foreign {result.foreign[site]:.2f}",
            flush=True,
        )
    return result


def _mean(rates: dict[str, float]) -> float:
    return sum(rates.values()) / len(rates)


def _spread(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def _epsilon(noise: float, rounds: int) -> float:
    """ε at :data:`DELTA` of ``rounds`` Gaussian releases (every site in every round)."""
    import dp_accounting  # type: ignore[import-untyped]

    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(noise), rounds)
    return float(accountant.get_epsilon(DELTA))


def _figures(results: list[SeedResult], cfg: Settings) -> dict[str, float]:
    figures: dict[str, float] = {}
    models = _models(results)
    tasks = sorted(results[0].success["pooled"])
    for model in models:
        for task in tasks:
            mean, std = _spread([r.success[model][task] for r in results])
            figures[f"{model}.{task}.mean"], figures[f"{model}.{task}.std"] = mean, std
        mean, std = _spread([_mean(r.success[model]) for r in results])
        figures[f"{model}.mean_success.mean"], figures[f"{model}.mean_success.std"] = mean, std
    for model in models[1:]:
        ratios = [_mean(r.success[model]) / max(_mean(r.success["pooled"]), 1e-9) for r in results]
        mean, std = _spread(ratios)
        figures[f"{model}_over_pooled.mean"], figures[f"{model}_over_pooled.std"] = mean, std
    for kind in ("own", "foreign"):
        mean, std = _spread([statistics.fmean(getattr(r, kind).values()) for r in results])
        figures[f"local.{kind}_tasks.mean"], figures[f"local.{kind}_tasks.std"] = mean, std
    n_tasks = sum(len(tasks) for _, tasks in _site_tasks())
    pairs = len(results) * sum(n_tasks - len(tasks) for _, tasks in _site_tasks())
    figures["local.foreign_pairs_solved_at_all"] = sum(len(r.hits) for r in results) / pairs
    figures["local.foreign_tasks.max"] = max(
        rate
        for r in results
        for site, tasks in ((s, t) for s, t in _site_tasks())
        for task, rate in r.success[f"local:{site}"].items()
        if task not in tasks
    )
    for site, _ in _site_tasks():
        figures[f"local.{site}.own.mean"] = statistics.fmean(r.own[site] for r in results)
        figures[f"local.{site}.foreign.mean"] = statistics.fmean(r.foreign[site] for r in results)
    for noise in cfg.noises:
        figures[f"dp@{noise:g}.noise_multiplier"] = noise
        figures[f"dp@{noise:g}.clipping_norm"] = cfg.clip
        figures[f"dp@{noise:g}.epsilon"] = _epsilon(noise, cfg.fed.rounds)
        figures[f"dp@{noise:g}.delta"] = DELTA
    figures["federated.update_norm.median"] = statistics.median(
        n for r in results for n in r.update_norms
    )
    for stage in results[0].seconds:
        figures[f"time.{stage}"] = statistics.fmean(r.seconds[stage] for r in results)
    return figures


def _models(results: list[SeedResult]) -> list[str]:
    return [m for m in results[0].success if not m.startswith("local:")]


def _site_tasks() -> list[tuple[str, tuple[str, ...]]]:
    return [(f.site, f.tasks) for f in DEMO_FACTORIES]


def _table(results: list[SeedResult], figures: dict[str, float]) -> Table:
    models = _models(results)
    table = Table(title=f"Meta-World success over {len(results)} seeds (mean ± sd)")
    table.add_column("task")
    for column in [*models, "local (owner)", "local (others)"]:
        table.add_column(column, justify="right")
    owner = {task: site for site, tasks in _site_tasks() for task in tasks}
    for task in sorted(owner):
        cells = [_cell(figures[f"{m}.{task}.mean"], figures[f"{m}.{task}.std"]) for m in models]
        mine = [r.success[f"local:{owner[task]}"][task] for r in results]
        others = [
            statistics.fmean(
                r.success[f"local:{s}"][task] for s, _ in _site_tasks() if s != owner[task]
            )
            for r in results
        ]
        table.add_row(task, *cells, _cell(*_spread(mine)), _cell(*_spread(others)))
    means = [
        _cell(figures[f"{m}.mean_success.mean"], figures[f"{m}.mean_success.std"]) for m in models
    ]
    own = _cell(figures["local.own_tasks.mean"], figures["local.own_tasks.std"])
    foreign = _cell(figures["local.foreign_tasks.mean"], figures["local.foreign_tasks.std"])
    table.add_row("mean", *means, own, foreign, style="bold")
    return table


def _cell(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def main() -> dict[str, float]:
    """Run every seed, print the table and the stage times, return the figures."""
    cfg = Settings()
    torch.set_num_threads(1)
    console = Console(width=150)
    console.print(f"learning benchmark: {cfg}")
    results = [_run_seed(seed, cfg) for seed in range(cfg.seeds)]
    figures = _figures(results, cfg)
    console.print(_table(results, figures))
    for seed, r in enumerate(results):
        for site, task, rate in r.hits:
            console.print(
                f"seed {seed}: {site}'s local-only model succeeds on {task} at {rate:.2f}"
            )
    for key in sorted(figures):
        if not key.endswith(".std") and "-v3" not in key:
            console.print(f"{key:45s} {figures[key]:10.4g}")
    return figures
