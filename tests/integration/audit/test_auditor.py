"""The auditor against a real ledger on SQLite and PostgreSQL: honest passes, tampering fails."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.builders.audit import History
from tests.integration.audit.conftest import NewCoordinator
from tests.integration.audit.coordinator import A, B, C, Coordinator

from dure.client.audit.auditor import AuditResult, AuditSettings, run_audit
from dure.client.audit.errors import AuditFailedError, WitnessRefusedError
from dure.client.audit.source import ExportLedgerSource, HttpLedgerSource, LedgerSource
from dure.client.audit.state import CheckpointStore
from dure.client.audit.witness import FactoryWitness
from dure.policies.audit.lineage import LineageGraph
from dure.policies.checkpoint import Cosigner
from dure.policies.entries import ContributionAccepted
from dure.policies.merkle import leaf_hash, verify_inclusion

NOW = 1_790_000_000


def _http(coordinator: Coordinator) -> HttpLedgerSource:
    return HttpLedgerSource("http://coordinator.test", transport=coordinator.transport())


def _settings(coordinator: Coordinator, tmp_path: Path, **changes: Any) -> AuditSettings:
    base = AuditSettings(
        log_key=coordinator.ledger.verifier(),
        documents=coordinator.history.world.documents(),
        receipts=coordinator.held_receipts(tmp_path / "receipts"),
        strict=True,
    )
    return replace(base, **changes)


def _audit(
    source: LedgerSource, coordinator: Coordinator, tmp_path: Path, **changes: Any
) -> AuditResult:
    store = CheckpointStore(tmp_path / "auditor")
    return run_audit(source, _settings(coordinator, tmp_path, **changes), store)


def test_the_honest_ledger_passes_over_http_and_export(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    result = _audit(_http(coordinator), coordinator, tmp_path)
    assert result.ok, result.failures()
    assert result.stored and result.receipts_checked == len(coordinator.receipts) > 5
    assert result.replay is not None and result.replay.checked > 20
    exported = ExportLedgerSource(coordinator.export(tmp_path / "export"))
    again = _audit(exported, coordinator, tmp_path)
    assert again.ok and again.previous == result.checkpoint
    usage = LineageGraph.from_entries(again.entries).usage(C)
    assert usage.jobs == ("bc-pick-place-1", "bc-push-1")
    assert result.checkpoint is not None
    size, root = result.checkpoint.size, result.checkpoint.root_hash
    proof = _http(coordinator).inclusion_proof(3, size)
    verify_inclusion(leaf_hash(coordinator.leaf(3)), 3, size, proof, root)


def test_a_later_audit_checks_the_log_only_grew(coordinator: Coordinator, tmp_path: Path) -> None:
    assert _audit(_http(coordinator), coordinator, tmp_path).ok
    policies = coordinator.policies()
    coordinator.history.run_job(
        {s: policies[s] for s in (A, B)} | {C: policies[A]}, rounds=1, task="reach"
    )
    coordinator.sync()
    later = _audit(_http(coordinator), coordinator, tmp_path)
    assert later.previous is not None and later.checkpoint is not None and later.replay
    assert later.previous.size < later.checkpoint.size
    assert not later.findings  # the log grew consistently ...
    assert "policy.wrong_site" in later.replay.codes()
    assert not later.stored  # ... but the new entries break an invariant


def test_an_edited_entry_is_located(coordinator: Coordinator, tmp_path: Path) -> None:
    index = coordinator.index_of("contribution_accepted", B, nth=1)
    entry = coordinator.history.entries[index]
    assert isinstance(entry, ContributionAccepted)
    edited = entry.model_copy(update={"examples": 100_000}).to_bytes()
    coordinator.sql(
        "UPDATE dure_ledger_entry SET leaf = :leaf WHERE idx = :idx", leaf=edited, idx=index
    )
    result = _audit(_http(coordinator), coordinator, tmp_path)
    assert not result.ok and not result.stored
    assert [(f.check, f.index) for f in result.findings] == [("entries.root", index)]
    with pytest.raises(AuditFailedError, match=f"entry {index}: "):
        result.raise_for_failure()
    exported = _audit(ExportLedgerSource(coordinator.export(tmp_path / "x")), coordinator, tmp_path)
    assert ("entries.root", None) in [(f.check, f.index) for f in exported.findings]


def test_an_edit_of_a_receipted_entry_is_pinned_by_the_receipt(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    index = coordinator.index_of("contribution_accepted", A)
    assert index in coordinator.receipts
    edited = coordinator.history.entries[index].model_copy(update={"examples": 1}).to_bytes()
    coordinator.sql(
        "UPDATE dure_ledger_entry SET leaf = :leaf WHERE idx = :idx", leaf=edited, idx=index
    )
    coordinator.sql(
        "UPDATE dure_ledger_entry SET leaf_hash = :h WHERE idx = :idx",
        h=leaf_hash(edited),
        idx=index,
    )
    exported = ExportLedgerSource(coordinator.export(tmp_path / "export"))
    result = _audit(exported, coordinator, tmp_path)
    assert ("receipt.mismatch", index) in [(f.check, f.index) for f in result.findings]


def test_a_deleted_entry_is_located(coordinator: Coordinator, tmp_path: Path) -> None:
    index = coordinator.index_of("site_refused")
    coordinator.sql("DELETE FROM dure_ledger_entry WHERE idx = :idx", idx=index)
    result = _audit(_http(coordinator), coordinator, tmp_path)
    checks = [(f.check, f.index) for f in result.findings]
    assert ("entries.root", index) in checks
    assert any(check == "entries.count" for check, _ in checks)
    exported = _audit(ExportLedgerSource(coordinator.export(tmp_path / "x")), coordinator, tmp_path)
    assert not exported.ok


def test_a_reordered_history_is_located(coordinator: Coordinator, tmp_path: Path) -> None:
    first = coordinator.index_of("round_opened", nth=1)
    second = first + 1
    a, b = coordinator.leaf(first), coordinator.leaf(second)
    coordinator.sql("UPDATE dure_ledger_entry SET leaf = :leaf WHERE idx = :idx", leaf=b, idx=first)
    coordinator.sql(
        "UPDATE dure_ledger_entry SET leaf = :leaf WHERE idx = :idx", leaf=a, idx=second
    )
    result = _audit(_http(coordinator), coordinator, tmp_path)
    found = [(f.check, f.index) for f in result.findings]
    assert found[0] == ("entries.root", first)
    assert ("receipt.mismatch", first) in found  # factory-a was sampled in that round


def test_a_fork_shown_to_one_factory_is_refused_and_caught(
    new_coordinator: NewCoordinator, tmp_path: Path
) -> None:
    honest, forked = new_coordinator(), new_coordinator()
    honest.play_honest_history()
    forked.history = _fork_of(honest)
    forked.sync()
    assert forked.ledger.public_key() == honest.ledger.public_key()  # same key, two histories
    witness = FactoryWitness(
        tmp_path / "factory-b", Cosigner.from_skey(_witness_key()), honest.ledger.verifier()
    )
    cosigned = witness.cosign_from(_http(honest), NOW)
    honest.store.put_checkpoint(cosigned, honest.ledger.public_key())
    with_witness = {"witnesses": (witness.cosigner.verifier(),)}
    assert _audit(_http(honest), honest, tmp_path, **with_witness).ok
    with pytest.raises(WitnessRefusedError, match="fork detected"):
        witness.cosign_from(_http(forked), NOW + 60)
    result = _audit(_http(forked), honest, tmp_path, receipts=())
    assert "checkpoint.fork" in [f.check for f in result.findings]
    assert not result.stored
    kept = CheckpointStore(tmp_path / "auditor").load(honest.ledger.verifier())
    assert kept is not None and kept.checkpoint == result.previous


def _fork_of(honest: Coordinator) -> History:
    """Honest history up to the first round, then a different (longer) past."""
    fork = History(world=honest.history.world)
    cut = honest.index_of("aggregate_committed")
    fork.entries = list(honest.history.entries[:cut])
    fork.jobs = dict(honest.history.jobs)
    policies = honest.policies()
    fork.aggregate("bc-pick-place-1", 1, [A, B, C], None, "2.00")
    fork.run_job(policies, rounds=3, task="reach")
    fork.run_job(policies, rounds=3, task="drawer-open")
    return fork


def _witness_key() -> str:
    return Cosigner.generate("factory-b.test/witness").to_skey()


def test_a_contribution_without_a_valid_policy_is_caught(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    h = coordinator.history
    revoked = h.entries[coordinator.index_of("policy_revoked")].model_dump()["policy_id"]
    job = h.sign_job(rounds=1, task="reach")
    policies = coordinator.policies()
    for site in (A, B, C):
        h.admit(job, site, policies[site])
    h.open_round(job, 1, [A, B, C], None)
    h.contribute(job, 1, A, policies[A])
    h.contribute(job, 1, B, policies[B])
    bad = h.contribute(job, 1, C, revoked)
    coordinator.sync()
    result = _audit(_http(coordinator), coordinator, tmp_path)
    assert not result.findings  # the ledger is intact: the coordinator wrote this itself
    assert result.replay is not None
    assert (bad, "policy.revoked") in {(v.index, v.code) for v in result.replay.violations}
    with pytest.raises(
        AuditFailedError, match=f"entry {coordinator.index_of('site_admitted', C, nth=2)} "
    ):
        result.raise_for_failure()


def test_without_documents_a_strict_audit_fails(coordinator: Coordinator, tmp_path: Path) -> None:
    lenient = _audit(_http(coordinator), coordinator, tmp_path, documents=None, strict=False)
    assert lenient.ok
    strict = _audit(_http(coordinator), coordinator, tmp_path, documents=None)
    assert not strict.ok and strict.replay is not None and strict.replay.unverified
    assert strict.failures()[0].startswith("unverified: entry ")


def test_a_checkpoint_signed_by_another_key_is_refused(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    from dure.policies.note import Ed25519Signer

    other = Ed25519Signer.from_seed("dure.test/consortium-ledger", b"\x01" * 32).verifier()
    result = _audit(_http(coordinator), coordinator, tmp_path, log_key=other)
    assert [f.check for f in result.findings] == ["checkpoint.signature"] and not result.ok
