"""``dure factory episodes``: list, show, summarise and export the stored episodes.

Every command works on a factory home (``--home``, else ``$DURE_FACTORY_HOME``,
else ``./dure-factory``) and imports the client lazily, inside the command.
Filters (``list``, ``stats``, ``export``): ``--task``, ``--cell``, ``--robot``,
``--source`` and ``--tag`` may repeat (an episode matches one of the listed
tasks, cells... and carries every listed tag); ``--since``/``--until`` take ISO
8601 times (a time without an offset is UTC); ``--success``/``--failure``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dure.cli.output import make_console

if TYPE_CHECKING:
    from dure.client.episodes.query import EpisodeQuery
    from dure.client.store.store import EpisodeStore

__all__ = ["register"]

console = make_console()

Home = Annotated[
    Path,
    typer.Option(envvar="DURE_FACTORY_HOME", help="Factory home holding the store."),
]
Tasks = Annotated[list[str] | None, typer.Option("--task", help="Keep this task (repeatable).")]
Cells = Annotated[list[str] | None, typer.Option("--cell", help="Keep this cell (repeatable).")]
Robots = Annotated[list[str] | None, typer.Option("--robot", help="Keep this robot (repeatable).")]
Sources = Annotated[
    list[str] | None,
    typer.Option("--source", help="teleoperation, scripted, policy or human-in-the-loop."),
]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="Require this tag (repeatable).")]
Since = Annotated[str | None, typer.Option(help="Started at or after (ISO 8601).")]
Until = Annotated[str | None, typer.Option(help="Started before (ISO 8601).")]
Success = Annotated[
    bool | None, typer.Option("--success/--failure", help="Only successes / only failures.")
]
DEFAULT_HOME = Path("dure-factory")


def register(factory: typer.Typer) -> None:
    """Add the ``episodes`` sub-group to the ``dure factory`` group."""
    episodes = typer.Typer(
        help="List, inspect, summarise and export stored episodes.", no_args_is_help=True
    )
    episodes.command("list")(_list)
    episodes.command("show")(_show)
    episodes.command("stats")(_stats)
    episodes.command("export")(_export)
    factory.add_typer(episodes, name="episodes")


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _query(
    *,
    task: list[str] | None,
    cell: list[str] | None,
    robot: list[str] | None,
    source: list[str] | None,
    tag: list[str] | None,
    since: str | None,
    until: str | None,
    success: bool | None,
) -> EpisodeQuery:
    from dure.client.episodes.query import EpisodeQuery
    from dure.client.episodes.schema import Source

    try:
        sources = tuple(Source(item) for item in source or ())
    except ValueError as exc:
        choices = ", ".join(s.value for s in Source)
        raise typer.BadParameter(f"{exc}; choose from {choices}", param_hint="--source") from exc
    return EpisodeQuery(
        tasks=tuple(task or ()),
        cells=tuple(cell or ()),
        robots=tuple(robot or ()),
        sources=sources,
        tags=tuple(tag or ()),
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        success=success,
    )


def _open(home: Path) -> EpisodeStore:
    from dure.client.store.store import EpisodeStore

    return EpisodeStore.open(home, create=False)


def _list(
    *,
    home: Home = DEFAULT_HOME,
    task: Tasks = None,
    cell: Cells = None,
    robot: Robots = None,
    source: Sources = None,
    tag: Tags = None,
    since: Since = None,
    until: Until = None,
    success: Success = None,
) -> None:
    """List the stored episodes that match the filters."""
    query = _query(
        task=task,
        cell=cell,
        robot=robot,
        source=source,
        tag=tag,
        since=since,
        until=until,
        success=success,
    )
    with _open(home) as store:
        selected = store.select(query)
    table = Table(title=f"{len(selected)} episodes in {home}")
    for column in ("id", "task", "cell", "robot", "source", "start (UTC)", "frames", "ok", "tags"):
        table.add_column(column, justify="right" if column == "frames" else "left")
    for item in selected:
        table.add_row(
            item.episode_id,
            item.task,
            item.cell,
            item.robot,
            item.source.value,
            item.start_time.strftime("%Y-%m-%d %H:%M:%S"),
            str(item.n_frames),
            "yes" if item.success else "no",
            ", ".join(item.tags),
        )
    console.print(table)


def _show(
    episode_id: Annotated[str, typer.Argument(help="Episode id, as 'list' prints it.")],
    home: Home = DEFAULT_HOME,
) -> None:
    """Show one episode: context, outcome, provenance, features and commitment."""
    with _open(home) as store:
        episode = store.read(episode_id)
    ctx, outcome, prov = episode.context, episode.outcome, episode.provenance
    table = Table(title=episode_id, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = {
        "commitment": episode.commitment().hex(),
        "site / cell / robot": f"{ctx.site} / {ctx.cell} / {ctx.robot} ({ctx.embodiment})",
        "task": f"{ctx.task}: {ctx.instruction}",
        "source / operator": f"{ctx.source.value} / {ctx.operator} ({ctx.skill_tier or '-'})",
        "start": ctx.start_time.isoformat(),
        "frames": f"{episode.n_frames} at {episode.fps} Hz",
        "interventions": str(int(episode.frames.intervention.sum())),
        "outcome": f"success={outcome.success} ({outcome.success_definition.value}), "
        f"first success step {outcome.first_success_step}, failure {outcome.failure_mode}",
        "action space": ", ".join(f"{k}={v}" for k, v in episode.action_space.model_dump().items()),
        "provenance": f"{prov.source_uri} sha256 {prov.source_sha256[:16]}… "
        f"({prov.converter_version}, {prov.resampling.value})",
        "sensors": f"mapping {ctx.sensors.mapping_version}, digest {ctx.sensors.digest()[:16]}…",
        "tags": ", ".join(ctx.tags),
        "phases": ", ".join(episode.phase_names) or "-",
    }
    for name, spec in sorted(ctx.sensors.features.items()):
        units = sorted(set(spec.units))
        rows[f"feature {name}"] = f"{len(spec.names)} columns, units {', '.join(units)}"
    for name, value in rows.items():
        table.add_row(name, value)
    console.print(table)


def _stats(
    *,
    home: Home = DEFAULT_HOME,
    feature: Annotated[
        str | None, typer.Option(help="Only this feature, e.g. observation.state.")
    ] = None,
    task: Tasks = None,
    cell: Cells = None,
    robot: Robots = None,
    source: Sources = None,
    tag: Tags = None,
    since: Since = None,
    until: Until = None,
    success: Success = None,
) -> None:
    """Statistics per feature column over the selected episodes, and their Merkle root."""
    query = _query(
        task=task,
        cell=cell,
        robot=robot,
        source=source,
        tag=tag,
        since=since,
        until=until,
        success=success,
    )
    with _open(home) as store:
        ids = [item.episode_id for item in store.select(query)]
        if not ids:
            console.print("no episodes match the filters")
            return
        per_feature = store.stats(ids)
        root = store.selection_root(ids)
    console.print(f"{len(ids)} episodes, selection root {root.hex()}")
    for name, item in per_feature.items():
        if feature is not None and name != feature:
            continue
        table = Table(title=f"{name} ({item.count} frames)")
        for column in ("col", "mean", "std", "min", "q01", "q50", "q99", "max"):
            table.add_column(column, justify="right")
        columns = [
            item.mean,
            item.std,
            item.minimum,
            *(item.quantile(q) for q in (0.01, 0.5, 0.99)),
            item.maximum,
        ]
        for j in range(item.dim):
            table.add_row(str(j), *(f"{float(values[j]):.4g}" for values in columns))
        console.print(table)


def _export(
    *,
    out: Annotated[Path, typer.Option(help="New folder for the LeRobot v3 dataset.")],
    home: Home = DEFAULT_HOME,
    task: Tasks = None,
    cell: Cells = None,
    robot: Robots = None,
    source: Sources = None,
    tag: Tags = None,
    since: Since = None,
    until: Until = None,
    success: Success = None,
) -> None:
    """Export the selected episodes as a new LeRobot v3 folder, reindexed from 0."""
    from rich.progress import track

    from dure.client.store.export import export_episodes

    query = _query(
        task=task,
        cell=cell,
        robot=robot,
        source=source,
        tag=tag,
        since=since,
        until=until,
        success=success,
    )
    with _open(home) as store:
        ids = [item.episode_id for item in store.select(query)]
        episodes = track(store.iter_episodes(ids), total=len(ids), description="exporting")
        export_episodes(episodes, out)
        root = store.selection_root(ids)
    console.print(f"exported {len(ids)} episodes to {out} (selection root {root.hex()})")
