"""A hostile coordinator or export cannot crash the auditor: it fails closed, in one line.

JSON nested 100,000 deep used to raise ``RecursionError`` out of ``dure audit run``
(``--url`` and ``--export``) and ``dure coordinator ledger verify``; each now exits
with the catalog's code and a one-line reason.  ``--url`` is tested against a real
HTTP server on 127.0.0.1 that serves a valid signed checkpoint and hostile JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.builders.ledger import sample_entries
from tests.integration.audit.loopback import Answer, serve
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.errors import CATALOG
from dure.policies.keys import SigningKey
from dure.server.ledger.export import ENTRIES_FILE, export_ledger
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger

KEY = SigningKey.from_seed(b"\x33" * 32)
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"entries":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
HUGE_INT = b'{"entries":[{"index":' + b"9" * 5000 + b',"entry":"AA=="}]}'
SOURCE_ERROR = CATALOG["client.audit_source"].exit_code


def dure(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture
def ledger() -> Ledger:
    made = Ledger(MemoryLedgerStore(), KEY, "dure.test/hostile")
    made.append_all(sample_entries())
    made.checkpoint()
    return made


def _one_line_refusal(out: str) -> str:
    """The error line of a refusal that is exactly ``error: …`` then ``hint: …``."""
    assert "Traceback" not in out and "RecursionError" not in out, out
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), out
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


def _hostile(ledger: Ledger, status: int, body: bytes) -> Answer:
    stored = ledger.store.latest_checkpoint()
    assert stored is not None

    def answer(path: str) -> tuple[int, bytes, str]:
        if path.startswith("/v1/ledger/checkpoint"):
            return 200, stored.note.encode(), "text/plain"
        return status, body, "application/json"

    return answer


@pytest.mark.parametrize(
    "status,body,reason",
    [
        (200, DEEP, "deeper than"),
        (200, DEEP_OBJECT, "deeper than"),
        (200, HUGE_INT, "integer of 5000 digits"),
        (500, DEEP, "HTTP 500"),
    ],
    ids=["deep-array", "deep-object", "huge-int", "deep-problem"],
)
def test_audit_run_against_a_hostile_coordinator_fails_in_one_line(
    ledger: Ledger, tmp_path: Path, status: int, body: bytes, reason: str
) -> None:
    with serve(_hostile(ledger, status, body)) as url:
        code, out = dure(
            "audit",
            "run",
            "--url",
            url,
            "--public-key",
            ledger.public_key(),
            "--home",
            tmp_path / "auditor",
        )
    assert code == SOURCE_ERROR, out
    line = _one_line_refusal(out)
    assert reason in line and "/v1/ledger/entries" in line
    assert "not a network problem" in out


def _deep_export(ledger: Ledger, folder: Path) -> Path:
    export_ledger(ledger.store, folder)
    lines = (folder / ENTRIES_FILE).read_bytes().splitlines()
    lines[1] = DEEP
    (folder / ENTRIES_FILE).write_bytes(b"\n".join(lines) + b"\n")
    return folder


def test_audit_run_on_an_export_with_a_deep_line_fails_in_one_line(
    ledger: Ledger, tmp_path: Path
) -> None:
    export = _deep_export(ledger, tmp_path / "export")
    code, out = dure(
        "audit",
        "run",
        "--export",
        export,
        "--public-key",
        ledger.public_key(),
        "--home",
        tmp_path / "auditor",
    )
    assert code == SOURCE_ERROR, out
    line = _one_line_refusal(out)
    assert f"{ENTRIES_FILE}:2" in line and "deeper than" in line


def test_ledger_verify_on_an_export_with_a_deep_line_fails_in_one_line(
    ledger: Ledger, tmp_path: Path
) -> None:
    export = _deep_export(ledger, tmp_path / "export")
    code, out = dure("coordinator", "ledger", "verify", export, "--public-key", ledger.public_key())
    assert code == CATALOG["server.ledger_export"].exit_code, out
    line = _one_line_refusal(out)
    assert f"{ENTRIES_FILE}:2" in line and "deeper than" in line
    (export / ENTRIES_FILE).write_bytes(
        (export / ENTRIES_FILE).read_bytes().replace(DEEP, b'{"index":' + b"1" * 5000 + b"}")
    )
    code, out = dure("coordinator", "ledger", "verify", export, "--public-key", ledger.public_key())
    assert code == CATALOG["server.ledger_export"].exit_code, out
    assert "integer of 5000 digits" in _one_line_refusal(out)
