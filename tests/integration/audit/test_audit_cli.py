"""``dure audit`` and ``dure factory witness`` on an exported ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from click.testing import Result
from tests.integration.audit.coordinator import A, Coordinator
from typer.testing import CliRunner

from dure.cli import audit, factory_witness
from dure.client.audit.errors import AuditFailedError, WitnessRefusedError
from dure.policies.encoding import b64encode
from dure.policies.errors import DureError, outcome_for


def _app() -> typer.Typer:
    app = typer.Typer()
    audit.register(app)
    factory = typer.Typer()
    factory_witness.register(factory)
    app.add_typer(factory, name="factory")
    return app


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(_app(), [str(a) for a in args], env={"COLUMNS": "250"})


def _common(coordinator: Coordinator, tmp_path: Path) -> list[str | Path]:
    key = tmp_path / "ledger.pub"
    key.write_text(coordinator.ledger.public_key() + "\n")
    coordinator.held_receipts(tmp_path / "receipts")
    return [
        "--export",
        coordinator.export(tmp_path / "export"),
        "--public-key",
        key,
        "--home",
        tmp_path / "auditor",
        "--documents",
        coordinator.documents(tmp_path / "documents"),
        "--operator-key",
        coordinator.operator_key(tmp_path / "operator.pem"),
    ]


def _exit_code(result: Result) -> int:
    if isinstance(result.exception, DureError):
        return outcome_for(result.exception).exit_code
    return result.exit_code


def test_audit_run_passes_and_shows_who_learned(coordinator: Coordinator, tmp_path: Path) -> None:
    args = _common(coordinator, tmp_path)
    result = _invoke(
        "audit",
        "run",
        *args,
        "--receipts",
        tmp_path / "receipts",
        "--strict",
        "--site",
        "factory-a",
    )
    assert result.exit_code == 0, result.output
    assert "passed" in result.output and "who learned from urn:dure:site:factory-a" in result.output
    assert "bc-push-1" in result.output and "ε spent in total: 8.00" in result.output


def test_audit_run_fails_on_an_edited_entry_naming_it(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    index = coordinator.index_of("contribution_accepted", A)
    edited = coordinator.history.entries[index].model_copy(update={"examples": 7}).to_bytes()
    coordinator.sql("UPDATE dure_ledger_entry SET leaf = :l WHERE idx = :i", l=edited, i=index)
    args = _common(coordinator, tmp_path)
    result = _invoke("audit", "run", *args, "--receipts", tmp_path / "receipts")
    assert isinstance(result.exception, AuditFailedError)
    assert _exit_code(result) == 4
    assert "FAILED" in result.output and f"receipt {index:012d}" in result.output


def test_audit_run_strict_without_documents_fails(coordinator: Coordinator, tmp_path: Path) -> None:
    args = _common(coordinator, tmp_path)[:6]  # no documents, no operator key
    assert _invoke("audit", "run", *args).exit_code == 0
    strict = _invoke("audit", "run", *args, "--strict")
    assert isinstance(strict.exception, AuditFailedError) and "unverified" in strict.output


def test_audit_usage_and_lineage_as_json(coordinator: Coordinator, tmp_path: Path) -> None:
    args = _common(coordinator, tmp_path)
    usage = _invoke("audit", "usage", "--site", "urn:dure:site:factory-c", *args, "--json")
    assert usage.exit_code == 0, usage.output
    value = json.loads(usage.output)
    assert value["jobs"] == ["bc-pick-place-1", "bc-push-1"] and value["epsilon_total"] == "8.00"
    model = value["models"][-1]
    lineage = _invoke("audit", "lineage", "--model", model, *args, "--json")
    assert json.loads(lineage.output)["sites"] == [
        "urn:dure:site:factory-a",
        "urn:dure:site:factory-b",
        "urn:dure:site:factory-c",
    ]
    table = _invoke("audit", "lineage", "--model", model, *args)
    assert "lineage of model" in table.output and "bc-pick-place-1" in table.output


def test_audit_needs_exactly_one_source(coordinator: Coordinator, tmp_path: Path) -> None:
    args = _common(coordinator, tmp_path)
    result = _invoke("audit", "run", *args, "--url", "http://coordinator.test")
    assert result.exit_code == 2 and "exactly one of --url and --export" in result.output


def test_factory_witness_cosigns_then_refuses_a_fork(
    coordinator: Coordinator, tmp_path: Path
) -> None:
    key, log_key = tmp_path / "witness.key", tmp_path / "ledger.pub"
    log_key.write_text(coordinator.ledger.public_key())
    made = _invoke("factory", "witness", "key", "--name", "factory-a.test/witness", "--out", key)
    assert made.exit_code == 0 and made.stdout.startswith("factory-a.test/witness+")
    assert key.stat().st_mode & 0o077 == 0
    first = tmp_path / "first.note"
    size = coordinator.store.size()
    first.write_text(coordinator.ledger.checkpoint())
    home: list[str | Path] = [
        "--home",
        tmp_path / "factory-a",
        "--key",
        key,
        "--public-key",
        log_key,
    ]
    ok = _invoke(
        "factory", "witness", "cosign", "--checkpoint", first, *home, "--out", tmp_path / "c"
    )
    assert ok.exit_code == 0, ok.output
    assert "— factory-a.test/witness " in (tmp_path / "c").read_text()
    coordinator.history.release(coordinator.history.entries[-2].model_dump()["model_digest"], [A])
    coordinator.sync()
    grown = tmp_path / "grown.note"
    grown.write_text(coordinator.ledger.checkpoint())
    missing = _invoke("factory", "witness", "cosign", "--checkpoint", grown, *home)
    assert isinstance(missing.exception, WitnessRefusedError)
    proof = tmp_path / "proof.json"
    hashes = coordinator.store.consistency_proof(size, coordinator.store.size())
    wrong = [b64encode(bytes(32))] * len(hashes)
    proof.write_text(json.dumps({"first": size, "second": size + 1, "hashes": wrong}))
    forked = _invoke("factory", "witness", "cosign", "--checkpoint", grown, "--proof", proof, *home)
    assert isinstance(forked.exception, WitnessRefusedError)
    assert "fork detected" in forked.exception.message and _exit_code(forked) == 4
    good = {"first": size, "second": size + 1, "hashes": [b64encode(h) for h in hashes]}
    proof.write_text(json.dumps(good))
    cosigned = _invoke(
        "factory", "witness", "cosign", "--checkpoint", grown, "--proof", proof, *home
    )
    assert cosigned.exit_code == 0, cosigned.output
