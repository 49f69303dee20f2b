"""Re-ingesting a stored episode with changed metadata (tags, context, outcome).

An episode is identified by its frames (the commitment), so a source ingested
again with new metadata (a ``customer-confidential`` tag added to the site
profile, a corrected cell) yields episodes the store already holds.  Skipping
them would silently drop the new metadata, and a policy selector such as
``dure:tag isNoneOf [customer-confidential]`` would keep selecting them.

Contract
--------
* :func:`metadata_change` compares an incoming episode's context and outcome
  with the stored ones and returns ``None`` when they are equal (a true
  duplicate), else a :class:`MetadataUpdate` naming the fields that differ.
* The task and the site cannot change this way (the task indexes the dataset's
  frames, the site is part of the episode id): :class:`~dure.client.errors.StoreError`.
* :func:`stage_metadata_updates` writes each affected ``meta/episodes`` file anew
  under the ingest's staging directory, with the new ``dure/context`` and
  ``dure/outcome`` of the updated rows; the store commits it with the catalog's
  new rows in the same ingest (all or nothing).  The frames, their commitment and
  every selection root are unchanged; the provenance of the stored frames is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dure.client.episodes.query import EpisodeSummary
from dure.client.episodes.schema import Episode, EpisodeContext, EpisodeOutcome
from dure.client.errors import StoreError
from dure.client.store.codec import EpisodeLocation
from dure.client.store.layout import FileIndex
from dure.client.store.transaction import Staging

__all__ = ["METADATA_COLUMNS", "MetadataUpdate", "metadata_change", "stage_metadata_updates"]

METADATA_COLUMNS = ("dure/context", "dure/outcome")
"""The ``meta/episodes`` columns a metadata update rewrites."""

_FIXED = ("task", "site")


@dataclass(frozen=True)
class MetadataUpdate:
    """New metadata for one stored episode: its new catalog summary and stored row."""

    summary: EpisodeSummary
    where: EpisodeLocation
    context_json: str
    outcome_json: str
    changed: tuple[str, ...]

    def describe(self) -> str:
        """``"<episode id> (<changed fields>)"`` for messages."""
        return f"{self.summary.episode_id} ({', '.join(self.changed)})"


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    return [
        f"{prefix}{key}" for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)
    ]


def metadata_change(
    episode: Episode,
    summary: EpisodeSummary,
    stored: EpisodeSummary,
    where: EpisodeLocation,
    row: dict[str, Any],
) -> MetadataUpdate | None:
    """Return the update that would give the stored episode ``episode``'s metadata.

    ``summary`` is ``episode``'s catalog summary, ``stored`` / ``where`` / ``row``
    the stored episode's summary, location and ``meta/episodes`` row.

    Raises
    ------
    StoreError
        If the task or the site differs (they cannot be changed by re-ingest).
    """
    try:
        old_context = EpisodeContext.model_validate_json(row["dure/context"])
        old_outcome = EpisodeOutcome.model_validate_json(row["dure/outcome"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"the stored metadata of {stored.episode_id} is unreadable: {exc}",
            hint="Restore the factory home from a backup.",
        ) from exc
    if old_context == episode.context and old_outcome == episode.outcome:
        return None
    new_ctx = episode.context.model_dump(mode="json")
    old_ctx = old_context.model_dump(mode="json")
    fixed = [name for name in _FIXED if new_ctx[name] != old_ctx[name]]
    if fixed:
        raise StoreError(
            f"{stored.episode_id} is already stored with {fixed[0]} {old_ctx[fixed[0]]!r}; "
            f"this ingest says {new_ctx[fixed[0]]!r}. Nothing was stored",
            hint=f"The {fixed[0]} of a stored episode cannot be changed by ingesting it again; "
            "fix the site profile, or ingest into a new factory home.",
        )
    changed = _changed(old_ctx, new_ctx) + _changed(
        old_outcome.model_dump(mode="json"), episode.outcome.model_dump(mode="json"), "outcome."
    )
    return MetadataUpdate(
        summary=summary.model_copy(update={"episode_index": stored.episode_index}),
        where=where,
        context_json=episode.context.model_dump_json(),
        outcome_json=episode.outcome.model_dump_json(),
        changed=tuple(changed),
    )


def stage_metadata_updates(
    dataset: Path, staging: Staging, updates: Sequence[MetadataUpdate]
) -> None:
    """Write every ``meta/episodes`` file holding an updated row anew into ``staging``."""
    by_file: dict[FileIndex, dict[int, MetadataUpdate]] = {}
    for update in updates:
        index = FileIndex(update.where.meta_chunk, update.where.meta_file)
        by_file.setdefault(index, {})[update.where.episode_index] = update
    for index, rows in sorted(by_file.items()):
        relative = index.episodes_path()
        try:
            table = pq.read_table(dataset / relative)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(
                f"{dataset / relative} is unreadable: {exc}",
                hint="Restore the factory home from a backup.",
            ) from exc
        episode_indices = table.column("episode_index").to_pylist()
        for column, attribute in zip(
            METADATA_COLUMNS, ("context_json", "outcome_json"), strict=True
        ):
            values = table.column(column).to_pylist()
            for position, episode_index in enumerate(episode_indices):
                if episode_index in rows:
                    values[position] = getattr(rows[episode_index], attribute)
            at = table.schema.get_field_index(column)
            table = table.set_column(
                at, table.schema.field(at), pa.array(values, table.schema.field(at).type)
            )
        pq.write_table(table, staging.path(relative))
