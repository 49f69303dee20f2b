"""Building the coordinator from a Flower run config (the deployment path), on files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.builders.federation import build_consortium

from dure.policies.keys import SigningKey
from dure.server.federation.coordinator import ledger_entries
from dure.server.federation.deployment import coordinator_from_run_config, load_registry
from dure.server.federation.errors import FederationError


def _run_config(tmp_path: Path) -> dict[str, str]:
    consortium = build_consortium(tmp_path / "sites", ("factory-a", "factory-b"), episodes=1)
    registry = tmp_path / "registry"
    for sub in ("identities", "policies"):
        (registry / sub).mkdir(parents=True)
    for site in consortium.sites.values():
        (registry / "identities" / f"{site.name}.json").write_bytes(site.identity.to_json())
        (registry / "policies" / f"{site.name}.json").write_bytes(site.policy.to_json())
    consortium.operator.public.save(tmp_path / "operator.pub")
    SigningKey.generate().save(tmp_path / "ledger.pem")
    (tmp_path / "job.json").write_bytes(consortium.job().to_json())
    np.savez(tmp_path / "initial.npz", w=np.zeros((2, 2), np.float32))
    return {
        "dure-job": str(tmp_path / "job.json"),
        "dure-operator-keys": str(tmp_path / "operator.pub"),
        "dure-registry": str(registry),
        "dure-ledger": f"sqlite:///{tmp_path / 'ledger.db'}",
        "dure-ledger-key": str(tmp_path / "ledger.pem"),
        "dure-ledger-name": "dure.test/ledger",
        "dure-models": str(tmp_path / "models"),
        "dure-initial-model": str(tmp_path / "initial.npz"),
        "dure-consortium": "urn:dure:consortium:robotics-coop",
    }


def test_the_run_config_builds_a_coordinator_and_ledgers_registrations_once(tmp_path: Path) -> None:
    config = _run_config(tmp_path)
    coordinator, job = coordinator_from_run_config(config)
    assert coordinator.settings.local_steps is None  # the signed job's training decides
    assert [s.name for s in coordinator.services.registry.sites()] == ["factory-a", "factory-b"]
    kinds = [e.kind for e in ledger_entries(coordinator.services.ledger)]
    assert kinds == ["site_registered", "site_registered", "policy_registered", "policy_registered"]
    load_registry(Path(config["dure-registry"]), coordinator.services.ledger)  # a second run
    assert coordinator.services.ledger.store.size() == 4
    assert job.payload_type == "application/vnd.dure.job+json"
    assert list(coordinator.initial_model(None)) == ["w"]  # type: ignore[arg-type]


def test_training_keys_in_the_run_config_are_refused(tmp_path: Path) -> None:
    config = {**_run_config(tmp_path), "dure-lr": "0.5"}
    with pytest.raises(FederationError, match="no longer read") as caught:
        coordinator_from_run_config(config)
    assert "training section" in caught.value.hint


def test_a_run_config_missing_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FederationError, match="lacks"):
        coordinator_from_run_config({"dure-job": "x"})
