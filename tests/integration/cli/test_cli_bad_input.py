"""Bad URLs given to the coordinator's and auditor's commands: one clear line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.errors import CATALOG
from dure.policies.keys import SigningKey
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger


def dure(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    unexpected = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not unexpected, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: "), result.output
    return result.exit_code, lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ("coordinator", "ledger", "export", "--out", "x", "--db"),
        ("coordinator", "db", "current", "--db"),
        ("coordinator", "db", "upgrade", "--db"),
    ],
)
@pytest.mark.parametrize("url", ["notaurl", "postgresql://dba:s3cret@host:port/db"])
def test_a_malformed_database_url_is_named_without_its_password(
    tmp_path: Path, command: tuple[str, ...], url: str
) -> None:
    code, line = dure(*command, url)
    assert code == CATALOG["server.ledger"].exit_code
    assert "is not a database URL" in line and "s3cret" not in line


def test_a_malformed_coordinator_url_is_named(tmp_path: Path) -> None:
    key = Ledger(MemoryLedgerStore(), SigningKey.from_seed(b"\x01" * 32), "x/y").public_key()
    code, line = dure(
        "audit", "run", "--url", "http://[::1", "--public-key", key, "--home", tmp_path
    )
    assert code == CATALOG["client.audit_source"].exit_code
    assert line == "error: 'http://[::1' is not a URL (Invalid port: ':1')"
