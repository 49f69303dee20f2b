"""``dure demo``: the main job on embedded defaults (see the package docstring)."""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from dure.cli.output import make_console

__all__ = ["register"]

console = make_console()


def register(app: typer.Typer) -> None:
    """Add ``dure demo`` to the top-level command."""
    app.command("demo")(_demo)


def _progress() -> Progress:
    """Rich's default columns, the description printed literally (never as markup)."""
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _demo(
    out: Annotated[Path, typer.Option(help="Where to write summary.json and the ledger.")] = Path(
        "demo-out"
    ),
    dp: Annotated[bool, typer.Option("--dp", help="Train with differential privacy.")] = False,
    rounds: Annotated[int, typer.Option(help="Federated rounds.")] = 20,
    demos: Annotated[int, typer.Option(help="Demonstrations per task per factory.")] = 20,
    eval_episodes: Annotated[int, typer.Option(help="Fresh layouts per task.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of layouts and initial weights.")] = 0,
    noise: Annotated[str, typer.Option(help="DP noise multiplier (with --dp).")] = "1.0",
) -> None:
    """Five simulated factories train one robot policy under their signed policies."""
    from dure.cli.demo.run import DemoOptions, run_demo

    started = time.perf_counter()
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out / "ledger-export", ignore_errors=True)
    work.mkdir(parents=True)
    options = DemoOptions(rounds, demos, eval_episodes, seed, dp, noise)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        report = run_demo(out, work, options, console, _progress())
    report.wall_s = time.perf_counter() - started
    path = report.write(out)
    console.print(f"\nsummary: {path}  ledger export: {report.export_dir}")
    console.print(f"wall time {report.wall_s:.0f} s")
