"""Export the ledger through the CLI, then verify it independently; tampering is caught."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from tests.builders.ledger import postgres_schema, sample_entries
from tests.integration.ledger.independent_verifier import (
    ExportInvalidError,
    mth,
    root_from_path,
    verify_export_folder,
)
from typer.testing import CliRunner

from dure.cli.coordinator_ledger import register
from dure.policies.errors import DureError, NoteError
from dure.policies.keys import SigningKey
from dure.server.ledger.errors import LedgerError, LedgerExportError
from dure.server.ledger.export import verify_export
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore

NAME = "dure.test/coordinator-ledger"
KEY = SigningKey.from_seed(b"\x11" * 32)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'coordinator.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    store = SqlLedgerStore.from_url(db_url)
    ledger = Ledger(store, KEY, NAME)
    for _round in range(3):
        ledger.append_all(sample_entries())
        ledger.checkpoint()  # one signed checkpoint per round, as the coordinator does
    yield ledger
    store.close()


def cli() -> typer.Typer:
    app = typer.Typer()
    coordinator = typer.Typer()
    register(coordinator)
    app.add_typer(coordinator, name="coordinator")
    return app


def run(*args: str) -> object:
    return CliRunner().invoke(cli(), ["coordinator", "ledger", *args])


def export(db_url: str, out: Path) -> None:
    result = run("export", "--db", db_url, "--out", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]


def test_export_verifies_independently(ledger: Ledger, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(db_url, out)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "entries.jsonl", "public-key"]
    assert (out / "public-key").read_text() == ledger.public_key() + "\n"
    log = verify_export_folder(out, ledger.public_key())
    assert log.origin == NAME and log.size == 33
    assert log.entries == ledger.store.entries(0, 33)
    first = json.loads((out / "entries.jsonl").read_text().splitlines()[0])
    assert list(first) == ["index", "entry"] and first["index"] == 0
    result = verify_export(out, ledger.public_key())
    assert result.checkpoint.size == 33 and sum(result.kinds.values()) == 33
    assert result.public_key_matches


def test_receipts_verify_independently(ledger: Ledger) -> None:
    entries = ledger.store.entries(0, ledger.store.size())
    root = mth(entries)
    for index in (0, 1, 7, 20, 32):
        receipt = ledger.receipt(index)
        leaf = hashlib.sha256(b"\x00" + entries[index]).digest()
        path = [base64.b64decode(h) for h in receipt.hashes]
        assert root_from_path(leaf, index, receipt.size, path) == root
        with pytest.raises(ExportInvalidError):
            root_from_path(leaf, index, receipt.size, path[:-1])


def test_unsigned_entries_are_left_out(ledger: Ledger, db_url: str, tmp_path: Path) -> None:
    ledger.append_all(sample_entries()[:2])
    out = tmp_path / "export"
    result = run("export", "--db", db_url, "--out", str(out))
    assert result.exit_code == 0 and "2 newer entries" in result.output  # type: ignore[attr-defined]
    assert verify_export_folder(out, ledger.public_key()).size == 33


def tamper_entry(out: Path) -> None:
    lines = (out / "entries.jsonl").read_text().splitlines()
    record = json.loads(lines[5])
    leaf = base64.b64decode(record["entry"]).replace(b"factory-a", b"factory-z")
    lines[5] = json.dumps({"index": 5, "entry": base64.b64encode(leaf).decode()})
    (out / "entries.jsonl").write_text("\n".join(lines) + "\n")


def swap_lines(out: Path) -> None:
    lines = (out / "entries.jsonl").read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]
    (out / "entries.jsonl").write_text("\n".join(lines) + "\n")


def drop_last(out: Path) -> None:
    lines = (out / "entries.jsonl").read_text().splitlines()
    (out / "entries.jsonl").write_text("\n".join(lines[:-1]) + "\n")


def edit_checkpoint(out: Path) -> None:
    origin, _size, rest = (out / "checkpoint").read_text().split("\n", 2)
    (out / "checkpoint").write_text(f"{origin}\n32\n{rest}")


@pytest.mark.parametrize(
    "tamper,error",
    [
        (tamper_entry, LedgerExportError),
        (swap_lines, LedgerExportError),
        (drop_last, LedgerExportError),
        (edit_checkpoint, NoteError),
    ],
)
def test_tampering_is_detected(
    ledger: Ledger, db_url: str, tmp_path: Path, tamper: object, error: type[DureError]
) -> None:
    good = tmp_path / "good"
    export(db_url, good)
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    tamper(bad)  # type: ignore[operator]
    verify_export_folder(good, ledger.public_key())
    with pytest.raises(ExportInvalidError):
        verify_export_folder(bad, ledger.public_key())
    with pytest.raises(error):
        verify_export(bad, ledger.public_key())
    key_file = tmp_path / "ledger.vkey"
    key_file.write_text(ledger.public_key() + "\n")
    ok = run("verify", str(good), "--public-key", str(key_file))
    assert ok.exit_code == 0 and "verified" in ok.output  # type: ignore[attr-defined]
    refused = run("verify", str(bad), "--public-key", ledger.public_key())
    assert refused.exit_code != 0  # type: ignore[attr-defined]
    assert isinstance(refused.exception, error)  # type: ignore[attr-defined]


def test_an_export_checked_against_another_key_fails(
    ledger: Ledger, db_url: str, tmp_path: Path
) -> None:
    export(db_url, tmp_path / "export")
    impostor = Ledger(ledger.store, SigningKey.from_seed(b"\x12" * 32), NAME).public_key()
    with pytest.raises(ExportInvalidError):
        verify_export_folder(tmp_path / "export", impostor)
    with pytest.raises(NoteError):
        verify_export(tmp_path / "export", impostor)


def test_exporting_a_missing_database_fails_clearly(tmp_path: Path) -> None:
    result = run("export", "--db", f"sqlite:///{tmp_path / 'nope.db'}", "--out", str(tmp_path))
    assert isinstance(result.exception, LedgerError)  # type: ignore[attr-defined]
    assert "no ledger database" in result.exception.message  # type: ignore[attr-defined]
    assert not (tmp_path / "nope.db").exists()
