"""The on-site episode store: a LeRobot v3 dataset plus its catalog, in a factory home.

Contract
--------
* :meth:`EpisodeStore.add` is all-or-nothing: every episode of the call is
  validated, staged and committed together (protocol in
  :mod:`dure.client.store.transaction`).  If anything fails before the catalog
  commit (a bad episode, a full disk, an exception raised by the iterable of
  episodes itself, Ctrl-C) the dataset folder and the catalog are left exactly
  as they were, byte for byte.  A full disk is reported as
  :class:`~dure.client.errors.StoreFullError` (what is full, how to fix it).
* Appending never rewrites an existing data file: each ingest adds new
  ``file-FFF`` files; the small metadata files are replaced atomically, and so is a
  ``meta/episodes`` file whose episodes get new metadata.
* Episodes already stored (same commitment) with the same metadata are skipped,
  or refused with ``on_duplicate="error"``.  Already stored with *different*
  metadata (a new tag, a corrected cell or outcome): refused by default
  (``on_metadata="error"``, nothing is stored, the message names the episode and
  the fields), or applied with ``on_metadata="update"`` (catalog and dataset
  together, in the same commit; see :mod:`dure.client.store.metadata`).  A changed
  tag is never silently dropped.
* Reads take the shared lock, writes the exclusive one; one writer at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from dure.client.episodes.query import EpisodeQuery, EpisodeSummary
from dure.client.episodes.schema import Episode
from dure.client.episodes.stats import FeatureStats, stats_by_feature
from dure.client.errors import StoreError, StoreFullError
from dure.client.store.catalog import Catalog
from dure.client.store.export import export_episodes
from dure.client.store.layout import DATA_FILES_SIZE_IN_MB, FileIndex, HomeLayout
from dure.client.store.meta import load_state
from dure.client.store.metadata import (
    METADATA_COLUMNS,
    MetadataUpdate,
    metadata_change,
    stage_metadata_updates,
)
from dure.client.store.reader import DatasetReader
from dure.client.store.transaction import Staging, disk_full, locked, recover
from dure.client.store.writer import BatchWriter, summarise
from dure.policies.encoding import Digest

__all__ = ["EpisodeStore", "IngestReceipt"]


@dataclass(frozen=True)
class IngestReceipt:
    """What one :meth:`EpisodeStore.add` stored."""

    commit_id: str | None
    added: tuple[EpisodeSummary, ...]
    skipped: tuple[str, ...]
    updated: tuple[EpisodeSummary, ...] = ()

    @property
    def n_frames(self) -> int:
        """Frames added."""
        return sum(item.n_frames for item in self.added)


@dataclass(frozen=True)
class _Policy:
    on_duplicate: Literal["skip", "error"]
    on_metadata: Literal["error", "update"]


def _changed_metadata_error(change: MetadataUpdate) -> StoreError:
    return StoreError(
        f"{change.describe()} is already stored with different metadata; "
        "nothing was stored (the new metadata would otherwise be dropped)",
        hint="To apply the new metadata to the stored episodes, ingest again with "
        "--update-metadata (EpisodeStore.add(on_metadata='update')); otherwise restore "
        "the site profile the episodes were stored with.",
    )


class EpisodeStore:
    """Episodes of one factory home (see the module docstring).

    Build it with :meth:`open`; the catalog is passed in, so tests and a
    consortium deployment choose its engine.
    """

    def __init__(
        self, layout: HomeLayout, catalog: Catalog, *, data_file_mb: float = DATA_FILES_SIZE_IN_MB
    ) -> None:
        self.layout = layout
        self.catalog = catalog
        self.data_file_mb = data_file_mb

    @classmethod
    def open(
        cls,
        home: Path | str,
        *,
        catalog_url: str | None = None,
        create: bool = True,
        data_file_mb: float = DATA_FILES_SIZE_IN_MB,
    ) -> EpisodeStore:
        """Open the store in ``home`` and finish any interrupted ingest.

        ``catalog_url`` defaults to SQLite in the home.  With ``create=False`` a
        home that does not exist yet is an error (:class:`StoreError`) instead of
        being created.  ``data_file_mb`` is the size at which an ingest starts a
        new data file.
        """
        layout = HomeLayout(Path(home))
        if not create and not layout.dataset.is_dir():
            raise StoreError(
                f"no episode store in {layout.home}",
                hint="Ingest episodes first (dure factory ingest / simulate), "
                "or point --home / DURE_FACTORY_HOME at an existing factory home.",
            )
        try:
            for directory in (layout.home, layout.dataset, layout.staging):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the factory home {layout.home}: {exc}") from exc
        catalog = Catalog.from_url(catalog_url or layout.catalog_url)
        store = cls(layout, catalog, data_file_mb=data_file_mb)
        store.recover()
        return store

    def close(self) -> None:
        """Release the catalog's connections."""
        self.catalog.close()

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def recover(self) -> int:
        """Roll interrupted ingests forward or back; return how many were found."""
        with locked(self.layout.lock, exclusive=True):
            return recover(self.layout.staging, self.layout.dataset, self.catalog.has_commit)

    def add(
        self,
        episodes: Iterable[Episode],
        *,
        on_duplicate: Literal["skip", "error"] = "skip",
        on_metadata: Literal["error", "update"] = "error",
        progress: Callable[[EpisodeSummary], None] | None = None,
    ) -> IngestReceipt:
        """Validate and store ``episodes`` atomically (see the module docstring).

        Raises
        ------
        StoreError
            If an episode is already stored with different metadata and
            ``on_metadata`` is ``"error"`` (nothing is stored), among others.
        """
        with locked(self.layout.lock, exclusive=True):
            staging = Staging(self.layout.staging)
            writer: BatchWriter | None = None
            try:  # everything from creating the staging directory on is rolled back
                staging.create()
                writer = BatchWriter(
                    load_state(self.layout.dataset), staging, file_size_mb=self.data_file_mb
                )
                skipped, updates = self._stage(
                    writer, episodes, _Policy(on_duplicate, on_metadata), progress
                )
                writer.finish()
                if not writer.entries and not updates:
                    staging.discard()
                    return IngestReceipt(None, (), tuple(skipped))
                stage_metadata_updates(self.layout.dataset, staging, updates)
                staging.seal()
                self.catalog.record_commit(
                    staging.commit_id, writer.entries, [u.summary for u in updates]
                )
            except BaseException as exc:  # Ctrl-C and SIGTERM (as the CLI raises it) too
                if writer is not None:
                    writer.abort()
                staging.discard()
                if isinstance(exc, OSError) or disk_full(exc):
                    raise self._write_error(exc) from exc
                raise
            self._apply(staging)
        added = tuple(summary for summary, _ in writer.entries)
        updated = tuple(u.summary for u in updates)
        return IngestReceipt(staging.commit_id, added, tuple(skipped), updated)

    def _write_error(self, exc: BaseException) -> StoreError:
        """The error to raise for ``exc``, raised while staging (nothing was stored)."""
        if disk_full(exc):
            return StoreFullError(
                f"the disk holding the factory home {self.layout.home} is full "
                "(no space left on device); the ingest was rolled back, nothing was stored"
            )
        return StoreError(f"ingest failed, nothing was stored: {exc}")

    def _apply(self, staging: Staging) -> None:
        """Move a committed ingest's files in; an interrupt here finishes it first."""
        try:
            staging.apply(self.layout.dataset)
        except KeyboardInterrupt:
            staging.apply(self.layout.dataset)  # idempotent; recover() would do the same
            raise
        except OSError as exc:
            raise StoreError(
                f"ingest {staging.commit_id} is committed but its files could not be moved "
                f"into {self.layout.dataset}: {exc}",
                hint="Fix the disk problem, then open the store again: it finishes the ingest.",
            ) from exc

    def _stage(
        self,
        writer: BatchWriter,
        episodes: Iterable[Episode],
        policy: _Policy,
        progress: Callable[[EpisodeSummary], None] | None,
    ) -> tuple[list[str], list[MetadataUpdate]]:
        skipped: list[str] = []
        updates: list[MetadataUpdate] = []
        seen: set[Digest] = set()
        with self.catalog.commitment_probe() as is_stored:
            for episode in episodes:
                episode.validate()
                commitment = episode.commitment()
                stored = commitment not in seen and is_stored(commitment.hex())
                if commitment in seen or stored:
                    if policy.on_duplicate == "error":
                        raise StoreError(
                            f"{episode.label()} is already stored as {episode.episode_id}",
                            hint="Drop it from the ingest, or pass on_duplicate='skip'.",
                        )
                    change = self._metadata_change(writer, episode, commitment) if stored else None
                    if change is None:
                        skipped.append(episode.episode_id)
                    elif policy.on_metadata == "error":
                        raise _changed_metadata_error(change)
                    else:
                        updates.append(change)
                    seen.add(commitment)
                    continue
                seen.add(commitment)
                summary = writer.add(episode, commitment)
                if progress is not None:
                    progress(summary)
        return skipped, updates

    def _metadata_change(
        self, writer: BatchWriter, episode: Episode, commitment: Digest
    ) -> MetadataUpdate | None:
        found = self.catalog.by_commitment(commitment.hex())
        if found is None:  # pragma: no cover - the probe just found it
            return None
        stored, where = found
        rows = self._reader().episode_rows(
            [where.episode_index],
            METADATA_COLUMNS,
            meta_files=[FileIndex(where.meta_chunk, where.meta_file)],
        )
        summary = summarise(
            episode, where.episode_index, commitment, writer.sensors_digest(episode)
        )
        return metadata_change(episode, summary, stored, where, rows[where.episode_index])

    def select(self, query: EpisodeQuery | None = None) -> list[EpisodeSummary]:
        """Summaries of the episodes ``query`` selects (all when ``None``), in ingest order."""
        return self.catalog.select(query)

    def get(self, episode_id: str) -> EpisodeSummary:
        """Summary of one episode."""
        return self.catalog.get(episode_id)[0]

    def read(self, episode_id: str) -> Episode:
        """Read one episode back, exactly as it was added."""
        _, where = self.catalog.get(episode_id)
        with locked(self.layout.lock, exclusive=False):
            return self._reader().read_episode(
                where.episode_index, meta_file=FileIndex(where.meta_chunk, where.meta_file)
            )

    def iter_episodes(self, episode_ids: Sequence[str]) -> Iterator[Episode]:
        """Yield the episodes ``episode_ids`` (in ingest order, each file read once)."""
        located = self.catalog.locations(episode_ids)
        indices = [where.episode_index for _, where in located]
        files = {FileIndex(where.meta_chunk, where.meta_file) for _, where in located}
        with locked(self.layout.lock, exclusive=False):
            yield from self._reader().iter_episodes(indices, meta_files=files)

    def selection_root(self, episode_ids: Iterable[str]) -> Digest:
        """Merkle root over the selection's commitments, sorted by episode id."""
        return self.catalog.selection_root(episode_ids)

    def stats(self, episode_ids: Sequence[str] | None = None) -> dict[str, FeatureStats]:
        """Statistics per feature over ``episode_ids`` (the whole dataset when ``None``)."""
        with locked(self.layout.lock, exclusive=False):
            if episode_ids is None:
                if not (self.layout.dataset / "meta" / "info.json").exists():
                    raise StoreError("the store is empty", hint="Ingest episodes first.")
                return dict(self._reader().dataset_stats)
            located = self.catalog.locations(episode_ids)
            files = {FileIndex(where.meta_chunk, where.meta_file) for _, where in located}
            indices = [where.episode_index for _, where in located]
            per_episode = self._reader().episode_stats(indices, meta_files=files)
        return stats_by_feature(per_episode)

    def export(self, episode_ids: Sequence[str], out: Path) -> Path:
        """Write the episodes to a new LeRobot v3 folder ``out``, reindexed from 0."""
        return export_episodes(self.iter_episodes(episode_ids), out)

    def _reader(self) -> DatasetReader:
        return DatasetReader(self.layout.dataset)
