"""Ingest orchestration: a source plus a site profile -> validated canonical episodes -> store.

:func:`iter_episodes` dispatches on the profile's format to the importer, streams the
source episode by episode and standardises each one
(:func:`dure.client.episodes.standardise.standardise`).  :func:`ingest` streams the
validated episodes into ``commit`` (the store's atomic
:meth:`~dure.client.store.store.EpisodeStore.add`): if any episode fails, the error is
raised from inside the iterable, nothing is committed and the store stays exactly as it
was.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from dure.client.episodes.profile import SiteProfile, SourceFormat
from dure.client.episodes.schema import Episode
from dure.client.episodes.standardise import RawEpisode, standardise
from dure.client.errors import IngestError
from dure.client.importers.source_digest import source_digest

__all__ = ["CONVERTER_VERSION", "ingest", "iter_episodes", "read_raw"]

CONVERTER_VERSION = "dure-ingest/1"
"""Recorded in every episode's provenance; bump it when the conversion changes."""

T = TypeVar("T")


def read_raw(source: Path, profile: SiteProfile) -> Iterator[RawEpisode]:
    """Yield the decoded, segmented episodes of ``source`` (before standardisation).

    Raises
    ------
    IngestError
        If the source does not exist, cannot be read or does not match the profile.
    """
    _check_source(source)
    digest = source_digest(source)
    fmt = profile.format
    if fmt in (SourceFormat.ROSBAG, SourceFormat.MCAP):
        from dure.client.importers.rosbag import read_ros

        return read_ros(source, profile, digest)
    if fmt is SourceFormat.LEROBOT_V21:
        from dure.client.importers.lerobot_v21 import read_lerobot_v21

        return read_lerobot_v21(source, profile, digest)
    if fmt is SourceFormat.LEROBOT_V3:
        from dure.client.importers.lerobot_v3 import read_lerobot_v3

        return read_lerobot_v3(source, profile, digest)
    if fmt is SourceFormat.ROBOMIMIC:
        from dure.client.importers.robomimic import read_robomimic

        return read_robomimic(source, profile, digest)
    from dure.client.importers.csv_export import read_csv

    return read_csv(source, profile, digest)


def _check_source(source: Path) -> None:
    """Refuse a SOURCE that is neither a regular file nor a folder (never opening it)."""
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise IngestError(
            f"{source}: cannot read ({exc.strerror or exc})",
            hint="Pass an existing, readable file or folder as SOURCE.",
        ) from exc
    if mode is None:
        raise IngestError(
            f"{source}: no such file or folder",
            hint="Pass the path of a bag, dataset folder, HDF5 or CSV file as SOURCE.",
        )
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise IngestError(
            f"{source}: is not a regular file or a folder (a FIFO, socket or device)",
            hint="Pass the path of a bag, dataset folder, HDF5 or CSV file as SOURCE; "
            "a pipe or device is never read.",
        )


def iter_episodes(source: Path, profile: SiteProfile) -> Iterator[Episode]:
    """Yield the validated canonical episodes of ``source``, one at a time."""
    for raw in read_raw(source, profile):
        yield standardise(raw, profile, CONVERTER_VERSION)


def ingest(
    source: Path,
    profile: SiteProfile,
    commit: Callable[[Iterable[Episode]], T],
    *,
    progress: Callable[[Episode], None] | None = None,
) -> T:
    """Stream every standardised episode of ``source`` into ``commit``, all or nothing.

    Parameters
    ----------
    source
        The bag, dataset folder, HDF5 or CSV file/folder.
    profile
        The site profile describing it.
    commit
        The store's atomic commit (e.g. :meth:`EpisodeStore.add`): it consumes the
        iterable and must store nothing if the iterable raises.  Episodes are produced
        lazily, so only the current one is in memory before it is staged.
    progress
        Called after each episode is standardised (for progress bars).

    Raises
    ------
    IngestError
        On the first bad episode (raised from inside the iterable, so the store
        commits nothing) or when the source holds no episode.
    """
    return commit(_checked(source, profile, progress))


def _checked(
    source: Path, profile: SiteProfile, progress: Callable[[Episode], None] | None
) -> Iterator[Episode]:
    count = 0
    for episode in iter_episodes(source, profile):
        count += 1
        if progress is not None:
            progress(episode)
        yield episode
    if count == 0:
        raise IngestError(
            f"{source}: no episode found",
            hint="Check the segmentation section of the site profile (markers, gaps).",
        )
