"""The job manifest's training section: defaults, the schedule, and settings that cannot be met."""

from __future__ import annotations

from typing import Any

import pytest

from dure.policies.canonical import canonical_bytes
from dure.policies.errors import DocumentError
from dure.policies.examples import example_job_value
from dure.policies.job import DEFAULT_TRAINING, LEGACY_TRAINING, JobManifest


def _job(training: dict[str, Any], rounds: int = 20) -> JobManifest:
    value = example_job_value(dp=False, rounds=rounds)
    value["training"] = training
    return JobManifest.from_value(value)


def test_a_manifest_signed_before_training_existed_keeps_its_bytes_and_trains_as_then() -> None:
    # A manifest without ``training`` (every job signed before the field existed)
    # must keep its canonical bytes, so its signature and id still hold, and must
    # train with the settings fixed for it, whatever the recommended defaults become.
    value = example_job_value(dp=False)
    assert "training" not in value
    job = JobManifest.from_value(value)
    assert job.training == LEGACY_TRAINING
    assert "training" not in job.to_json_value()
    old_bytes = canonical_bytes(value)
    assert job.to_canonical_bytes() == old_bytes
    assert JobManifest.from_canonical_bytes(old_bytes) == job
    assert LEGACY_TRAINING.model_dump(mode="json") == {
        "local_steps": 50,
        "batch_size": 256,
        "lr": "0.003",
        "schedule": {"kind": "cosine", "rounds": None, "floor": "0"},
        "personalise": {"method": "none", "steps": 0, "lr": "0.0003"},
    }


def test_a_manifest_that_sets_training_signs_it() -> None:
    value = example_job_value(dp=False)
    value["training"] = DEFAULT_TRAINING.model_dump(mode="json")
    job = JobManifest.from_value(value)
    assert job.training == DEFAULT_TRAINING
    assert job.to_json_value()["training"] == DEFAULT_TRAINING.model_dump(mode="json")
    assert JobManifest.from_canonical_bytes(job.to_canonical_bytes()) == job
    value["training"] = {"local_steps": 7}
    short = JobManifest.from_value(value)
    assert short.training.local_steps == 7
    assert short.to_canonical_bytes() != job.to_canonical_bytes()


@pytest.mark.parametrize(
    "training,rounds,message",
    [
        ({"schedule": {"rounds": 21}}, 20, "schedule.rounds 21 is longer than the job's 20"),
        ({"schedule": {"floor": "1.5"}}, 20, "floor 1.5 is above 1"),
        ({"schedule": {"kind": "step"}}, 20, "training.schedule.kind"),
        ({"lr": "0"}, 20, "training.lr 0 is out of range"),
        ({"lr": "2"}, 20, "training.lr 2 is out of range"),
        ({"local_steps": 0}, 20, "training.local_steps"),
        ({"batch_size": 0}, 20, "training.batch_size"),
        ({"batch_size": 1 << 20}, 20, "training.batch_size"),
        ({"personalise": {"method": "finetune"}}, 20, "finetune with 0 steps"),
        ({"personalise": {"method": "none", "steps": 5}}, 20, "method is none but steps is 5"),
        ({"personalise": {"method": "finetune", "steps": 5, "lr": "0"}}, 20, "personalise.lr"),
        ({"personalise": {"method": "ditto", "steps": 5}}, 20, "personalise.method"),
        ({"momentum": "0.9"}, 20, "unknown field 'training.momentum'"),
    ],
)
def test_training_that_cannot_be_met_is_refused_with_the_fix(
    training: dict[str, Any], rounds: int, message: str
) -> None:
    with pytest.raises(DocumentError, match=message) as caught:
        _job(training, rounds)
    assert "fix:" in caught.value.message or caught.value.hint


def test_a_schedule_as_long_as_the_job_and_a_finetune_are_accepted() -> None:
    job = _job(
        {
            "schedule": {"kind": "cosine", "rounds": 20, "floor": "0.1"},
            "personalise": {"method": "finetune", "steps": 200, "lr": "0.0003"},
        }
    )
    assert job.training.round_lr(1, 20) == pytest.approx(0.003)
    assert job.training.round_lr(25, 20) == pytest.approx(0.0003)  # past the span: the floor
    assert job.training.personalise.steps == 200
