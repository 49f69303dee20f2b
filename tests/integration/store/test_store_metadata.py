"""Re-ingesting stored episodes with changed metadata: refused, or applied on request.

Episodes are identified by their frames, so before this a new
``customer-confidential`` tag on a re-ingest was skipped as "already stored" and a
policy selector excluding that tag kept selecting the episodes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.builders.episodes import make_episode
from tests.builders.store import tree_digest

from dure.client.episodes.schema import Episode
from dure.client.errors import StoreError
from dure.client.federation.selection import select_episodes
from dure.client.store import EpisodeStore
from dure.policies.policy import Constraint
from dure.policies.selector import EpisodeSelector

CONFIDENTIAL = "customer-confidential"


def tagged(episode: Episode, *tags: str) -> Episode:
    context = episode.context.model_copy(update={"tags": (*episode.context.tags, *tags)})
    return dataclasses.replace(episode, context=context)


def not_confidential() -> EpisodeSelector:
    term = Constraint.model_validate(
        {"leftOperand": "dure:tag", "operator": "isNoneOf", "rightOperand": [CONFIDENTIAL]}
    )
    return EpisodeSelector.intersect([term])


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, list[Episode]]:
    episodes = [make_episode(1), make_episode(2), make_episode(3)]
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(episodes)
    return tmp_path / "home", episodes


def test_a_new_restrictive_tag_is_refused_by_default_and_nothing_changes(
    stored: tuple[Path, list[Episode]],
) -> None:
    home, episodes = stored
    before = tree_digest(home)
    with EpisodeStore.open(home) as store:
        with pytest.raises(StoreError) as info:
            store.add([tagged(ep, CONFIDENTIAL) for ep in episodes[:2]])
        assert "different metadata" in info.value.message and "tags" in info.value.message
        assert "--update-metadata" in info.value.hint
    assert tree_digest(home) == before


def test_update_applies_the_tag_so_the_policy_selector_no_longer_selects_them(
    stored: tuple[Path, list[Episode]],
) -> None:
    home, episodes = stored
    with EpisodeStore.open(home) as store:
        assert len(select_episodes(store, not_confidential()).episode_ids) == 3
        root_before = store.selection_root([ep.episode_id for ep in episodes])
        receipt = store.add(
            [tagged(ep, CONFIDENTIAL) for ep in episodes[:2]] + [make_episode(4)],
            on_metadata="update",
        )
        assert [s.episode_id for s in receipt.updated] == [ep.episode_id for ep in episodes[:2]]
        assert len(receipt.added) == 1 and not receipt.skipped
        selection = select_episodes(store, not_confidential())
        kept = {episodes[2].episode_id, receipt.added[0].episode_id}
        assert set(selection.episode_ids) == kept
        # the catalog, the stored episode and the commitments agree
        assert CONFIDENTIAL in store.get(episodes[0].episode_id).tags
        assert CONFIDENTIAL in store.read(episodes[0].episode_id).context.tags
        assert store.read(episodes[0].episode_id).frames.action.tobytes() == (
            episodes[0].frames.action.tobytes()
        )
        assert store.selection_root([ep.episode_id for ep in episodes]) == root_before
        assert [s.episode_id for s in store.select()] == [
            *(ep.episode_id for ep in episodes),
            receipt.added[0].episode_id,
        ]
    # the update survives reopening, and the same metadata again is a plain skip
    with EpisodeStore.open(home) as store:
        again = store.add([tagged(ep, CONFIDENTIAL) for ep in episodes[:2]])
        assert len(again.skipped) == 2 and not again.updated and again.commit_id is None
        assert set(select_episodes(store, not_confidential()).episode_ids) == kept
        assert not any(home.joinpath("staging").iterdir())


def test_removing_a_tag_is_also_never_silent(stored: tuple[Path, list[Episode]]) -> None:
    home, episodes = stored
    with EpisodeStore.open(home) as store:
        store.add([tagged(episodes[0], CONFIDENTIAL)], on_metadata="update")
        with pytest.raises(StoreError, match="different metadata"):
            store.add([episodes[0]])
        assert CONFIDENTIAL in store.get(episodes[0].episode_id).tags


def test_the_task_of_a_stored_episode_cannot_change(stored: tuple[Path, list[Episode]]) -> None:
    home, episodes = stored
    before = tree_digest(home)
    moved = dataclasses.replace(
        episodes[0], context=episodes[0].context.model_copy(update={"task": "push"})
    )
    with EpisodeStore.open(home) as store, pytest.raises(StoreError, match="task"):
        store.add([moved], on_metadata="update")
    assert tree_digest(home) == before
