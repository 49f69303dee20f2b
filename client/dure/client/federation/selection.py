"""Choosing exactly the episodes a job may use, and committing to them.

The only input is the gate's decision: its ``selector`` is the site policy's
``target.refinement`` intersected with the job's ``episode_selector``
(:meth:`~dure.policies.selector.EpisodeSelector.intersect`), matched against
the catalog's summaries (closed world: a term the factory does not understand
matches nothing).  The selection's commitment is the store's selection root
(:meth:`EpisodeStore.selection_root`: the RFC 9162 Merkle root of the selected
episodes' commitments in ascending ``episode_id`` order), which goes into the
signed claim as ``episodes_root``.  It is computed here from the commitments the
summaries already carry, with the kernel's
:func:`~dure.policies.merkle.root_hash`, instead of a second catalog query; a
test checks it equals the store's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from dure.client.episodes.query import EpisodeSummary
from dure.client.store.store import EpisodeStore
from dure.policies.encoding import HexDigest, digest_from_hex, to_hex
from dure.policies.merkle import root_hash
from dure.policies.selector import EpisodeSelector

__all__ = ["Selection", "select_episodes", "selection_root"]


@dataclass(frozen=True, slots=True)
class Selection:
    """The episodes selected, their tasks, and the Merkle root of their commitments."""

    episode_ids: tuple[str, ...]
    tasks: tuple[str, ...]
    root: HexDigest | None

    @property
    def empty(self) -> bool:
        """Whether nothing was selected."""
        return not self.episode_ids


def select_episodes(store: EpisodeStore, selector: EpisodeSelector) -> Selection:
    """Return the store's episodes that ``selector`` keeps (in ingest order)."""
    chosen = _matching(selector, tuple(store.select()))
    ids = tuple(summary.episode_id for summary in chosen)
    tasks = tuple(sorted({summary.task for summary in chosen}))
    return Selection(ids, tasks, selection_root(chosen) if chosen else None)


@functools.lru_cache(maxsize=16)
def _matching(
    selector: EpisodeSelector, summaries: tuple[EpisodeSummary, ...]
) -> tuple[EpisodeSummary, ...]:
    """The summaries ``selector`` keeps; memoised, as a job selects again every round."""
    return tuple(summary for summary in summaries if selector.matches(summary))


def selection_root(summaries: Sequence[EpisodeSummary]) -> HexDigest:
    """The store's selection root of ``summaries`` (see the module docstring)."""
    by_id = {summary.episode_id: summary.commitment for summary in summaries}
    return to_hex(root_hash([digest_from_hex(by_id[i]) for i in sorted(by_id)]))
