"""``dure coordinator db upgrade`` and ``serve``: a real uvicorn server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from dure.cli.coordinator_serve import register
from dure.policies.checkpoint import open_checkpoint
from dure.policies.encoding import b64encode
from dure.policies.keys import SigningKey
from dure.policies.note import Ed25519Verifier
from dure.server.api.signing import REQUEST_HEADER, sign_request

REPO = Path(__file__).resolve().parents[3]
_LAUNCH = (
    "import typer; from dure.cli.coordinator_serve import register; "
    "app = typer.Typer(); register(app); app()"
)


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    upgraded = runner.invoke(_cli(), ["db", "upgrade", "--db", url])
    assert upgraded.exit_code == 0, upgraded.output
    current = runner.invoke(_cli(), ["db", "current", "--db", url])
    assert "database 0002, code 0002" in current.output


@pytest.mark.slow
def test_serve_answers_on_loopback_and_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    ledger_key, operator = SigningKey.generate(), SigningKey.generate()
    ledger_key.save(tmp_path / "ledger.key")
    url, port = f"sqlite:///{tmp_path / 'c.db'}", _port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("policies", "client", "server")),
    }
    base = [sys.executable, "-c", _LAUNCH, "serve", "--db", url, "--port", str(port)]
    options = [
        "--ledger-key",
        str(tmp_path / "ledger.key"),
        "--operator-key",
        b64encode(operator.public.raw),
    ]
    refused = subprocess.run(
        [*base, *options], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0 and "db upgrade" in refused.stderr + refused.stdout
    server = subprocess.Popen(
        [*base, *options, "--upgrade"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            _serve_checks(client, operator)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert '"route": "/v1/me"' in stderr  # one JSON access line per request


def _serve_checks(client: httpx.Client, operator: SigningKey) -> None:
    _wait(client)
    key = client.get("/v1/ledger/public-key").text
    note = client.get("/v1/ledger/checkpoint").text
    assert open_checkpoint(note, Ed25519Verifier.from_vkey(key)).size == 0
    header = sign_request(operator, "GET", "/v1/me")
    assert client.get("/v1/me", headers={REQUEST_HEADER: header}).json()["role"] == "operator"
    assert "dure_http_requests_total" in client.get("/metrics").text


def _wait(client: httpx.Client) -> None:
    for _ in range(100):
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")
