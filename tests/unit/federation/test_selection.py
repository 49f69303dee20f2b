"""Selecting the episodes a decision allows, and committing to them as the store does."""

from __future__ import annotations

from pathlib import Path

from tests.builders.episodes import make_episode

from dure.client.federation.selection import select_episodes, selection_root
from dure.client.store.store import EpisodeStore
from dure.policies.encoding import to_hex
from dure.policies.policy import Constraint
from dure.policies.selector import EpisodeSelector


def _term(operand: str, operator: str, value: object) -> Constraint:
    return Constraint.model_validate(
        {"leftOperand": operand, "operator": operator, "rightOperand": value}
    )


def test_exactly_the_allowed_episodes_are_selected_and_committed_as_the_store_does(
    tmp_path: Path,
) -> None:
    with EpisodeStore.open(tmp_path / "home") as store:
        store.add(
            [
                make_episode(1, task="pick-place"),
                make_episode(2, task="push"),
                make_episode(3, task="pick-place", success=False),
                make_episode(4, task="pick-place", tags=("customer-confidential",)),
                make_episode(5, task="reach"),
            ]
        )
        selector = EpisodeSelector.intersect(
            [_term("dure:task", "isAnyOf", ["pick-place", "push"])],
            [
                _term("dure:success", "eq", True),
                _term("dure:tag", "isNoneOf", ["customer-confidential"]),
            ],
        )
        selection = select_episodes(store, selector)
        chosen = [s for s in store.select() if s.episode_id in selection.episode_ids]
        assert sorted((s.task, s.success) for s in chosen) == [("pick-place", True), ("push", True)]
        assert selection.tasks == ("pick-place", "push")
        assert selection.root == to_hex(store.selection_root(selection.episode_ids))
        assert selection_root(list(reversed(chosen))) == selection.root
        nothing = select_episodes(
            store, EpisodeSelector.intersect([_term("dure:task", "isAnyOf", ["x"])])
        )
        assert nothing.empty and nothing.root is None
