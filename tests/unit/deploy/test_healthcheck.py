"""deploy/healthcheck.py against real listening sockets and a real HTTP server."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "healthcheck.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dure_deploy_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_coordinator_with_both_ports_up_is_healthy(
    tmp_path: Path, service: int, listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write(
        tmp_path / "coordinator.toml",
        f'[superlink]\naddress = "127.0.0.1:{listener}"\n'
        f'[service]\naddress = "127.0.0.1:{service}"\n',
    )
    assert healthcheck.main(["coordinator", config]) == 0
    assert "healthy" in capsys.readouterr().out


def test_a_coordinator_whose_service_is_down_is_unhealthy(
    tmp_path: Path, listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    config = _write(
        tmp_path / "coordinator.toml",
        f'[superlink]\naddress = "127.0.0.1:{listener}"\n[service]\naddress = "127.0.0.1:{port}"\n',
    )
    assert healthcheck.main(["coordinator", config]) == 1
    assert f"service 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_factory_is_healthy_only_while_its_supernode_and_worker_listen(
    tmp_path: Path, listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    node = '[supernode]\nhost = "127.0.0.1"\nport = {}\n'
    up = _write(tmp_path / "up.toml", 'home = "site/home"\n' + node.format(listener))
    down = _write(tmp_path / "down.toml", 'home = "site/home"\n' + node.format(_closed_port()))
    (tmp_path / "site" / "run").mkdir(parents=True)
    assert healthcheck.main(["factory", up]) == 1  # no worker yet
    assert "worker" in capsys.readouterr().err
    with socket.socket(socket.AF_UNIX) as worker:
        worker.bind(str(tmp_path / "site" / "run" / "worker.sock"))
        worker.listen()
        assert healthcheck.main(["factory", up]) == 0
        assert healthcheck.main(["factory", down]) == 1
        assert "SuperNode" in capsys.readouterr().err


def test_a_missing_config_or_unknown_role_is_unhealthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert healthcheck.main(["factory", str(tmp_path / "nope.toml")]) == 1
    assert "cannot read the config" in capsys.readouterr().err
    config = _write(tmp_path / "x.toml", "[supernode]\nport = 1\n")
    assert healthcheck.main(["witness", config]) == 1
    assert healthcheck.main([]) == 2
