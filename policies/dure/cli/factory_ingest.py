"""``dure factory simulate`` and ``dure factory ingest``.

``simulate`` rolls out Meta-World's scripted experts and logs the demonstrations in a
factory's native style (ROS 2 bag, MCAP, LeRobot v2.1 / v3.0, robomimic, CSV), with the
matching site profile next to the data.  ``ingest`` turns a source into canonical
episodes with a site profile and commits them to the factory home's store, all or
nothing.  Both import the client lazily, inside the command.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dure.cli.output import make_console

__all__ = ["ingest", "register", "simulate"]

console = make_console()  # markup off: file paths and names are printed literally
err_console = make_console(stderr=True)

STYLE_NAMES = ("rosbag", "mcap", "lerobot-v21", "lerobot-v3", "robomimic", "csv")
DEFAULT_HOME = Path("dure-factory")


def register(factory: typer.Typer) -> None:
    """Add ``simulate`` and ``ingest`` to the ``dure factory`` group."""
    factory.command("simulate")(simulate)
    factory.command("ingest")(ingest)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),  # descriptions hold file names
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _tasks(value: str) -> list[str]:
    from dure.client.sim.metaworld_env import known_tasks

    tasks = [t.strip() for t in value.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(known_tasks()))
    if not tasks or unknown:
        raise typer.BadParameter(
            f"unknown Meta-World tasks {unknown or '(none given)'}; "
            f"choose from {', '.join(known_tasks())}",
            param_hint="--tasks",
        )
    return tasks


def simulate(
    style: Annotated[str, typer.Option(help=f"Logging style: {', '.join(STYLE_NAMES)}.")],
    out: Annotated[Path, typer.Option(help="Folder for the logs and site-profile.yaml.")],
    *,
    tasks: Annotated[str, typer.Option(help="Comma-separated Meta-World tasks.")] = "reach-v3",
    episodes: Annotated[int, typer.Option(min=1, help="Number of demonstrations.")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Factory seed (layouts).")] = 0,
    max_steps: Annotated[
        int, typer.Option(min=2, max=500, help="Steps per episode (evaluation allows the same).")
    ] = 500,
    site: Annotated[str, typer.Option(help="Site name in the profile.")] = "sim-factory",
) -> None:
    """Simulate a factory's demonstrations in its native logging style."""
    if style not in STYLE_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(STYLE_NAMES)}", param_hint="--style")
    chosen = _tasks(tasks)
    from dure.client.sim.factory import simulate_factory

    with _progress() as bar:
        job = bar.add_task(f"simulating {style}", total=episodes)
        result = simulate_factory(
            style,
            chosen,
            episodes,
            seed,
            out,
            site=site,
            max_steps=max_steps,
            progress=lambda _: bar.advance(job),
        )
    succeeded = sum(ep.succeeded for ep in result.episodes)
    data_path, profile_path = result.data_path, result.profile_path
    console.print(f"wrote {len(result.episodes)} episodes ({succeeded} successful) to {data_path}")
    console.print(f"site profile: {profile_path}")
    console.print(f"ingest with: dure factory ingest {data_path} --profile {profile_path}")


def ingest(
    source: Annotated[Path, typer.Argument(help="Bag, dataset folder, HDF5 or CSV file/folder.")],
    profile: Annotated[Path, typer.Option(help="Site profile (YAML).")],
    home: Annotated[
        Path, typer.Option(envvar="DURE_FACTORY_HOME", help="Factory home holding the store.")
    ] = DEFAULT_HOME,
    *,
    update_metadata: Annotated[
        bool,
        typer.Option(
            "--update-metadata",
            help="Apply changed metadata (tags, context, outcome) to episodes already "
            "stored; without it such a re-ingest is refused.",
        ),
    ] = False,
) -> None:
    """Standardise SOURCE with a site profile and store its episodes, all or nothing.

    SIGTERM (like Ctrl-C) rolls the ingest back: nothing is stored and no staging
    directory is left.
    """
    from dure.client.importers.ingest import ingest as run_ingest
    from dure.client.importers.profile_io import load_profile
    from dure.client.store.store import EpisodeStore

    site_profile = load_profile(profile)
    on_metadata: Literal["error", "update"] = "update" if update_metadata else "error"
    with (
        _terminate_rolls_back(),
        EpisodeStore.open(home) as store,
        _progress() as bar,
    ):
        job = bar.add_task(f"ingesting {source.name}", total=None)
        receipt = run_ingest(
            source,
            site_profile,
            functools.partial(store.add, on_metadata=on_metadata),
            progress=lambda _: bar.advance(job),
        )
    console.print(
        f"stored {len(receipt.added)} episodes ({receipt.n_frames} frames) in {home}"
        + (f", skipped {len(receipt.skipped)} already stored" if receipt.skipped else "")
        + (f", updated {len(receipt.updated)} episodes' metadata" if receipt.updated else "")
    )


class _Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so every ``finally`` and rollback runs."""


@contextlib.contextmanager
def _terminate_rolls_back() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` while the ingest runs (exit status 143).

    The store rolls back on any exception (its staging directory is deleted), so a
    terminated ingest leaves the factory home exactly as it was, like Ctrl-C does.
    """

    def _raise(signum: int, _frame: FrameType | None) -> None:
        raise _Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    except _Terminated:
        err_console.print(
            "ingest terminated: rolled back, nothing was stored "
            "(unless it had already committed, in which case it was completed)"
        )
        raise typer.Exit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
