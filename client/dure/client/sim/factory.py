"""A simulated factory: Meta-World expert demonstrations logged in a native style.

:func:`simulate_factory` rolls out the scripted experts of the chosen tasks on seeded
layouts, writes the episodes the way the chosen :class:`LoggingStyle` logs them, and
writes the matching site profile (``site-profile.yaml``) next to the data.  It
returns the ground truth, so a test can ingest the logs and compare.

Output folder::

    OUT/
      site-profile.yaml
      <data>          bag/ (rosbag, mcap), dataset/ (LeRobot), robomimic/, csv/
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.schema import pseudonymise_operator
from dure.client.importers.profile_io import dump_profile
from dure.client.sim.metaworld_env import EPISODE_STEPS, demonstration_seed, rollout_expert
from dure.client.sim.styles import STYLES, LoggingStyle
from dure.client.sim.truth import CONTROL_FPS, SimulatedEpisode

__all__ = ["DATA_DIRS", "SimulatedFactory", "simulate_episodes", "simulate_factory", "site_profile"]

EPOCH_NS = 1_740_981_600 * 1_000_000_000
"""2025-03-03T06:00:00Z: the first simulated shift starts here."""

GAP_NS = 2_000_000_000
"""Silence between two simulated episodes (2 s)."""

DATA_DIRS = {
    "rosbag": "bag",
    "mcap": "bag",
    "lerobot-v21": "dataset",
    "lerobot-v3": "dataset",
    "robomimic": "robomimic",
    "csv": "csv",
}
"""Where each style's data goes inside the output folder (the SOURCE to ingest)."""


@dataclass(frozen=True)
class SimulatedFactory:
    """What :func:`simulate_factory` wrote: the ground truth, the data and the profile."""

    style: LoggingStyle
    episodes: tuple[SimulatedEpisode, ...]
    data_path: Path
    profile_path: Path
    profile: SiteProfile


def simulate_episodes(
    tasks: Sequence[str],
    episodes: int,
    seed: int,
    *,
    max_steps: int = EPISODE_STEPS,
    progress: Callable[[SimulatedEpisode], None] | None = None,
) -> list[SimulatedEpisode]:
    """Roll out ``episodes`` expert demonstrations, cycling through ``tasks``.

    Episode ``k`` uses task ``tasks[k % len(tasks)]`` and layout seed
    ``demonstration_seed(seed, k)``; episodes follow each other with a 2 s silence.
    """
    out: list[SimulatedEpisode] = []
    start = EPOCH_NS + (seed % 1000) * 86_400 * 1_000_000_000
    for k in range(episodes):
        task = tasks[k % len(tasks)]
        ep = rollout_expert(
            task, demonstration_seed(seed, k), index=k, start_ns=start, max_steps=max_steps
        )
        out.append(ep)
        start = ep.end_ns + GAP_NS
        if progress is not None:
            progress(ep)
    return out


def site_profile(style: LoggingStyle, site: str = "sim-factory") -> SiteProfile:
    """Return the site profile that maps ``style``'s logs back to canonical episodes."""
    from dure.client.sim.writers import profile_sections

    document: dict[str, Any] = {
        "version": "dure/site-profile/v1",
        "format": style.format.value,
        "fps": CONTROL_FPS,
        "resampling": style.resampling.value,
        **profile_sections(style),
        "context": {
            "site": site,
            "cell": f"cell-{style.name}",
            "robot": "sawyer-1",
            "embodiment": "rethink-sawyer",
            "operator": pseudonymise_operator("scripted-expert", site.encode("utf-8")),
            "source": "scripted",
            "tags": ["simulated", "metaworld"],
            "mapping_version": "1",
        },
        "action_space": {
            "kind": "end-effector",
            "mode": "delta",
            "frame": "world",
            "gripper": "closed-positive",
        },
    }
    return SiteProfile.model_validate(document)


def simulate_factory(
    style: str,
    tasks: Sequence[str],
    episodes: int,
    seed: int,
    out: Path,
    *,
    site: str = "sim-factory",
    max_steps: int = EPISODE_STEPS,
    progress: Callable[[SimulatedEpisode], None] | None = None,
) -> SimulatedFactory:
    """Simulate a factory and write its logs and site profile under ``out``.

    Raises
    ------
    KeyError
        If ``style`` or a task is unknown (the CLI checks both first).
    """
    from dure.client.sim.writers import write_native

    chosen = STYLES[style]
    truth = simulate_episodes(tasks, episodes, seed, max_steps=max_steps, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / DATA_DIRS[style]
    write_native(data_path, truth, chosen)
    profile = site_profile(chosen, site)
    profile_path = out / "site-profile.yaml"
    profile_path.write_text(dump_profile(profile), encoding="utf-8")
    return SimulatedFactory(chosen, tuple(truth), data_path, profile_path, profile)
