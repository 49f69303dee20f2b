"""The model registry: content-addressed models with their lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dure.policies.contribution import state_digest
from dure.server.federation.errors import FederationError
from dure.server.federation.models import DirectoryModelStore, MemoryModelStore, ModelStore, lineage


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    return (
        MemoryModelStore()
        if request.param == "memory"
        else DirectoryModelStore(tmp_path / "models")
    )


def _model(value: float) -> dict[str, np.ndarray]:
    return {"w": np.full((2, 2), value, np.float32), "step": np.array(3, np.int64)}


def test_models_are_stored_by_digest_with_their_parent(store: ModelStore) -> None:
    first = store.put(_model(0), parent=None, job_id="j", round=0)
    second = store.put(
        _model(1), parent=first.digest, job_id="j", round=1, contributors=("urn:dure:site:a",)
    )
    assert second.digest == state_digest(_model(1))
    got = store.get(second.digest)
    assert got.keys() == _model(1).keys()
    assert all(
        np.array_equal(got[k], _model(1)[k]) and got[k].dtype == _model(1)[k].dtype for k in got
    )
    assert [r.round for r in lineage(store, second.digest)] == [1, 0]
    assert store.record(second.digest).contributors == ("urn:dure:site:a",)


def test_storing_twice_keeps_the_first_record(store: ModelStore) -> None:
    first = store.put(_model(0), parent=None, job_id="j", round=0)
    again = store.put(_model(0), parent=None, job_id="other", round=5)
    assert again == first


def test_unknown_models_are_an_error(store: ModelStore) -> None:
    with pytest.raises(FederationError):
        store.get("ab" * 32)


def test_a_model_file_that_no_longer_hashes_to_its_name_is_refused(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path)
    record = store.put(_model(0), parent=None, job_id="j", round=0)
    np.savez(tmp_path / f"{record.digest}.npz", **_model(9))  # type: ignore[arg-type]
    with pytest.raises(FederationError, match="does not hash"):
        store.get(record.digest)
