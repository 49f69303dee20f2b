"""The learning benchmark's exclusion rule: simulation only, stated, cached with its parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.learning_tasks import (
    STYLES_IN_TURN,
    EligibilityRule,
    eligible_tasks,
    random_split,
    screen_task,
)


@pytest.mark.parametrize(
    ("expert", "constant", "admitted"),
    [(1.0, 0.0, True), (0.9, 0.0, True), (0.8, 0.0, False), (1.0, 0.5, False), (1.0, 1.0, False)],
)
def test_the_rule_reads_simulated_rates_only(
    expert: float, constant: float, admitted: bool
) -> None:
    assert EligibilityRule().admits(expert, constant) is admitted


def test_a_task_a_constant_action_solves_is_excluded(tmp_path: Path) -> None:
    """coffee-button-v3: pushing the hand forward presses the button on every layout."""
    rule = EligibilityRule(layouts=2, constant_layouts=1)
    screen = screen_task("coffee-button-v3", rule)
    assert screen.expert_success == 1.0
    assert screen.constant_success > 0
    assert not screen.eligible
    cache = tmp_path / "eligible.json"
    assert eligible_tasks(rule, cache=cache, tasks=["coffee-button-v3"]) == ()
    document = json.loads(cache.read_text(encoding="utf-8"))
    assert document["rule"]["constant_layouts"] == 1
    assert document["tasks"][0]["task"] == "coffee-button-v3"


def test_a_cache_written_under_other_parameters_is_not_reused(tmp_path: Path) -> None:
    cache = tmp_path / "eligible.json"
    rule = EligibilityRule(layouts=1, constant_layouts=1, max_steps=5)
    fake = {
        "rule": {**rule.__dict__, "layouts": 99},
        "tasks": [
            {"task": "reach-v3", "expert_success": 1.0, "constant_success": 0.0, "eligible": True}
        ],
    }
    cache.write_text(json.dumps(fake), encoding="utf-8")
    # five steps are too few for the expert: recomputed, reach-v3 is not eligible at this length
    assert eligible_tasks(rule, cache=cache, tasks=["reach-v3"]) == ()


def test_random_splits_are_seeded_disjoint_and_styled_in_turn() -> None:
    pool = [f"task-{i}-v3" for i in range(20)]
    split = random_split(1, pool)
    assert split == random_split(1, pool)
    assert split != random_split(2, pool)
    tasks = [t for f in split for t in f.tasks]
    assert len(tasks) == len(set(tasks)) == 8 and set(tasks) <= set(pool)
    assert [f.style for f in split] == list(STYLES_IN_TURN[:4])
    assert [len(f.tasks) for f in split] == [2, 2, 2, 2]
