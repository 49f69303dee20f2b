"""Schema validation: every rule fails with an error that names the field and the fix."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError
from tests.builders.episodes import make_episode, replace_frames

from dure.client.episodes.schema import (
    EpisodeContext,
    EpisodeOutcome,
    FeatureSpec,
    Provenance,
    SensorConfig,
    SuccessDefinition,
    frame_timestamps,
    pseudonymise_operator,
)
from dure.client.errors import EpisodeError


def test_valid_episodes_validate() -> None:
    make_episode(0).validate()
    make_episode(1, success=False, force=True, phases=True).validate()
    make_episode(2, n_frames=1, success=False).validate()


def _error(episode: object) -> EpisodeError:
    with pytest.raises(EpisodeError) as info:
        episode.validate()  # type: ignore[attr-defined]
    return info.value


def _n(episode: object) -> int:
    return episode.n_frames  # type: ignore[attr-defined, no-any-return]


BASE = make_episode(3, phases=True)
N = BASE.n_frames
STATE = BASE.frames.observation["observation.state"]


@pytest.mark.parametrize(
    ("episode", "field", "hint_word"),
    [
        (
            replace_frames(BASE, action=BASE.frames.action.astype(np.float64)),
            "frames.action",
            "astype",
        ),
        (replace_frames(BASE, action=BASE.frames.action[:-1]), "frames.action", "row per frame"),
        (
            replace_frames(
                BASE,
                observation={
                    "observation.state": np.where(
                        np.arange(N)[:, None] == 7, np.float32(np.nan), STATE
                    ).astype(np.float32)
                },
            ),
            "frames.observation['observation.state'][7, 0]",
            "dropouts",
        ),
        (
            replace_frames(BASE, observation={"observation.force": STATE}),
            "observation.state",
            "Map",
        ),
        (
            replace_frames(BASE, timestamp=frame_timestamps(N, 80) * 1.01),
            "frames.timestamp[",
            "frame_timestamps",
        ),
        (
            replace_frames(BASE, timestamp=frame_timestamps(N, 80)[::-1].copy()),
            "strictly increasing",
            "Sort",
        ),
        (replace_frames(BASE, next_done=np.ones(N, dtype=np.bool_)), "frames.next_done", "Segment"),
        (
            replace_frames(BASE, intervention=np.zeros(N, dtype=np.int8)),
            "frames.intervention",
            "bool",
        ),
        (replace_frames(BASE, phase=np.full(N, 3, dtype=np.int16)), "frames.phase", "phase_names"),
        (dataclasses.replace(BASE, phase_names=()), "frames.phase", "phase_names"),
        (replace_frames(BASE, phase=None), "phase_names", "frames.phase"),
        (dataclasses.replace(BASE, fps=0), "fps", "fps"),
        (
            dataclasses.replace(BASE, outcome=BASE.outcome.model_copy(update={"success": False})),
            "outcome.success",
            "human-label",
        ),
        (
            dataclasses.replace(
                BASE, outcome=BASE.outcome.model_copy(update={"first_success_step": 0})
            ),
            "outcome.first_success_step",
            "Derive",
        ),
        (
            dataclasses.replace(
                BASE, outcome=BASE.outcome.model_copy(update={"failure_mode": "slip"})
            ),
            "outcome.failure_mode",
            "None",
        ),
    ],
)
def test_each_rule_names_field_and_fix(episode: object, field: str, hint_word: str) -> None:
    error = _error(episode)
    assert field in error.message
    assert "site=factory-a" in error.message and "task=pick-place" in error.message
    assert hint_word.lower() in error.hint.lower()
    assert error.code == "client.episode"


def test_feature_specs_must_match_arrays() -> None:
    sensors = BASE.context.sensors
    narrow = dict(sensors.features)
    narrow["action"] = FeatureSpec(names=("x",), units=("m",))
    bad = dataclasses.replace(
        BASE,
        context=BASE.context.model_copy(
            update={"sensors": sensors.model_copy(update={"features": narrow})}
        ),
    )
    error = _error(bad)
    assert "context.sensors.features['action']" in error.message
    extra = {**sensors.features, "observation.force": FeatureSpec(names=("f",), units=("N",))}
    bad = dataclasses.replace(
        BASE,
        context=BASE.context.model_copy(
            update={"sensors": sensors.model_copy(update={"features": extra})}
        ),
    )
    assert "observation.force" in _error(bad).message


def test_human_label_is_not_tied_to_frames() -> None:
    outcome = BASE.outcome.model_copy(
        update={"success": False, "success_definition": SuccessDefinition.HUMAN_LABEL}
    )
    dataclasses.replace(BASE, outcome=outcome).validate()


def test_at_end_uses_the_last_frame() -> None:
    flags = np.zeros(N, dtype=np.bool_)
    flags[5:10] = True  # succeeded, then lost it
    episode = replace_frames(BASE, next_success=flags)
    at_end = EpisodeOutcome(
        success=False, success_definition=SuccessDefinition.AT_END, first_success_step=5
    )
    dataclasses.replace(episode, outcome=at_end).validate()
    wrong = at_end.model_copy(update={"success": True})
    assert "outcome.success" in _error(dataclasses.replace(episode, outcome=wrong)).message


@pytest.mark.parametrize(
    ("update", "word"),
    [
        ({"site": "has space"}, "site"),
        ({"operator": "Alice Smith"}, "pseudonym"),
        ({"start_time": datetime(2025, 1, 1)}, "timezone-aware"),
        ({"tags": ("a", "a")}, "unique"),
        ({"tags": (" a",)}, "spaces"),
    ],
)
def test_context_rules(update: dict[str, object], word: str) -> None:
    data = BASE.context.model_dump()
    data.update(update)
    with pytest.raises(ValidationError, match=word):
        EpisodeContext.model_validate(data)


def test_start_time_is_normalised_to_utc() -> None:
    data = BASE.context.model_dump()
    data["start_time"] = datetime(2025, 1, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    context = EpisodeContext.model_validate(data)
    assert context.start_time.utcoffset() == timedelta(0)
    assert context.start_time.hour == 8


def test_feature_spec_rules() -> None:
    with pytest.raises(ValidationError, match="SI units"):
        FeatureSpec(names=("x",), units=("mm",))
    with pytest.raises(ValidationError, match="1 names but 2 units"):
        FeatureSpec(names=("x",), units=("m", "m"))
    with pytest.raises(ValidationError, match="unique"):
        FeatureSpec(names=("x", "x"), units=("m", "m"))
    with pytest.raises(ValidationError, match="dotted lowercase"):
        SensorConfig(
            features={"Observation State": FeatureSpec(names=("x",), units=("m",))},
            mapping_version="1",
        )


def test_provenance_rules() -> None:
    data = BASE.provenance.model_dump()
    with pytest.raises(ValidationError, match="64 lowercase hex"):
        Provenance.model_validate({**data, "source_sha256": "AB" * 32})
    with pytest.raises(ValidationError, match="positive"):
        Provenance.model_validate({**data, "source_rates_hz": {"joints": 0.0}})


def test_models_are_frozen_and_closed() -> None:
    with pytest.raises(ValidationError):
        BASE.context.site = "other"
    with pytest.raises(ValidationError, match="Extra inputs"):
        EpisodeOutcome.model_validate({**BASE.outcome.model_dump(), "note": "x"})


def test_sensor_digest_is_stable_and_sensitive() -> None:
    sensors = BASE.context.sensors
    assert sensors.digest() == make_episode(99, phases=True).context.sensors.digest()
    changed = sensors.model_copy(update={"mapping_version": "2"})
    assert changed.digest() != sensors.digest()
    assert len(sensors.digest()) == 64


def test_pseudonym_is_keyed_and_accepted() -> None:
    alias = pseudonymise_operator("Alice Smith", b"site-key")
    assert alias != pseudonymise_operator("Alice Smith", b"other-key")
    assert "alice" not in alias.lower()
    EpisodeContext.model_validate({**BASE.context.model_dump(), "operator": alias})


def test_episode_id_uses_site_and_commitment() -> None:
    assert BASE.episode_id == f"factory-a-{BASE.commitment().hex()[:16]}"
    assert _n(BASE) == N
