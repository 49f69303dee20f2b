"""A ledger database altered behind the coordinator's back is refused everywhere, clearly.

Two corruptions an operator's careless hand (or an attacker with the database) can
make: a row deleted under the head, and a leaf stored as TEXT instead of a BLOB.
``ledger export`` used to report "exported 140 entries" while writing 139, or
print a traceback; ``GET /v1/ledger/entries`` answered an unhandled 500; and
``dure audit run --url`` told the auditor to check the network.  Now the export
writes nothing and exits with ``server.ledger``'s code naming the entry, the API
answers ``500 server.ledger`` with a problem document naming the corruption (a
fault on the coordinator's side: docs in :mod:`dure.server.api.routes.ledger`),
and the auditor says the coordinator served a corrupt ledger.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.builders.api import World, build_world
from tests.builders.ledger import sample_entries
from tests.integration.audit.loopback import serve
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.errors import CATALOG
from dure.policies.keys import SigningKey
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.store import CORRUPT_HINT

Corrupt = Callable[[Path], str]


def dure(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    unexpected = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not unexpected, (result.output, result.exception)
    return result.exit_code, result.output


def drop_row(db: Path) -> str:
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM dure_ledger_entry WHERE idx = 5")
    return "entry 5 is missing from the database"


def leaf_as_text(db: Path) -> str:
    with sqlite3.connect(db) as con:
        con.execute("UPDATE dure_ledger_entry SET leaf = CAST(leaf AS TEXT) WHERE idx = 3")
        assert con.execute("SELECT typeof(leaf) FROM dure_ledger_entry WHERE idx = 3").fetchone()
    return "the leaf of entry 3 is stored as str, not bytes"


CORRUPTIONS = pytest.mark.parametrize("corrupt", [drop_row, leaf_as_text])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "coordinator.db"
    store = SqlLedgerStore.from_url(f"sqlite:///{path}")
    ledger = Ledger(store, SigningKey.from_seed(b"\x44" * 32), "dure.test/corrupt")
    for _ in range(2):
        ledger.append_all(sample_entries())
    ledger.checkpoint()
    store.close()
    return path


def test_an_intact_ledger_exports_every_entry(db: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{db}"
    code, out = dure("coordinator", "ledger", "export", "--db", url, "--out", tmp_path)
    assert code == 0, out
    written = len((tmp_path / "entries.jsonl").read_text().splitlines())
    assert f"exported {written} entries" in out and written == 2 * len(sample_entries())


@CORRUPTIONS
def test_export_of_a_corrupt_ledger_writes_nothing_and_names_the_entry(
    db: Path, tmp_path: Path, corrupt: Corrupt
) -> None:
    reason = corrupt(db)
    out_dir = tmp_path / "export"
    code, out = dure("coordinator", "ledger", "export", "--db", f"sqlite:///{db}", "--out", out_dir)
    assert code == CATALOG["server.ledger"].exit_code, out
    assert f"error: ledger corrupt: {reason}" in out
    assert "restore the database" in out and "exported" not in out
    assert not out_dir.exists()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with build_world(f"sqlite:///{tmp_path / 'coordinator.db'}") as built:
        built.register_all()
        built.play_round(1, ["factory-a", "factory-b", "factory-c"], "aa" * 32, None)
        built.services.ledger.checkpoint()
        yield built


@CORRUPTIONS
def test_the_entries_route_answers_a_problem_naming_the_corruption(
    world: World, tmp_path: Path, corrupt: Corrupt
) -> None:
    size = world.services.ledger.store.size()
    assert world.client.get(f"/v1/ledger/entries?start=0&end={size}").status_code == 200
    reason = corrupt(tmp_path / "coordinator.db")
    response = world.client.get(f"/v1/ledger/entries?start=0&end={size}")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "server.ledger"
    assert problem["detail"].startswith(f"ledger corrupt: {reason}")
    assert problem["hint"] == CORRUPT_HINT
    assert world.client.get("/v1/ledger/entries?start=0&end=2").status_code == 200


@CORRUPTIONS
def test_the_auditor_says_the_coordinator_served_a_corrupt_ledger(
    world: World, tmp_path: Path, corrupt: Corrupt
) -> None:
    reason = corrupt(tmp_path / "coordinator.db")

    def proxy(path: str) -> tuple[int, bytes, str]:
        response = world.client.get(path)
        return response.status_code, response.content, response.headers["content-type"]

    with serve(proxy) as url:
        code, out = dure(
            "audit",
            "run",
            "--url",
            url,
            "--public-key",
            world.services.ledger.public_key(),
            "--home",
            tmp_path / "auditor",
        )
    assert code == CATALOG["client.audit_source"].exit_code, out
    assert "HTTP 500: server.ledger: ledger corrupt: " + reason in out
    assert "not a network problem" in out and "(and network)" not in out
