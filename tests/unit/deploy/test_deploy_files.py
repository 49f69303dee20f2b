"""The deployment kit in deploy/ agrees with the real ``dure`` command and ``consortium init``.

The compose file and the systemd units are parsed (no Docker daemon or systemd
needed), every ``dure`` command they run is looked up in the real Typer app with
its options, and the folders they mount are checked against what
``dure consortium init`` really writes.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml

from dure.cli.consortium import init_consortium
from dure.cli.main import app

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _dure_command(argv: list[str]) -> click.Command:
    """The click command ``dure argv...`` runs; fails if a subcommand or an option is unknown."""
    command: click.Command = typer.main.get_command(app)
    words = list(argv)
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        name = words.pop(0)
        assert name in command.commands, f"dure has no command {name!r} in {argv}"
        command = command.commands[name]
    options = {opt for param in command.params for opt in param.opts}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{argv}: {word} is not an option"
    return command


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_compose_has_a_coordinator_with_postgresql_and_factories() -> None:
    services = _compose()["services"]
    assert {"postgres", "coordinator"} <= set(services)
    factories = [name for name in services if name.startswith("factory-")]
    assert len(factories) >= 2
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    coordinator = services["coordinator"]
    assert coordinator["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in factories:
        assert services[name]["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert "postgres-data" in _compose()["volumes"]


def test_every_dure_command_in_compose_exists_with_its_options() -> None:
    services = _compose()["services"]
    ran = [services[name]["command"] for name in services if name != "postgres"]
    assert ran
    for argv in ran:
        _dure_command(argv)
    for name, service in services.items():
        if name == "postgres":
            continue
        test = service["healthcheck"]["test"]
        assert test[:2] == ["CMD", "dure-healthcheck"], name
        assert test[2] in {"coordinator", "factory"}


def test_compose_mounts_the_folders_consortium_init_writes(tmp_path: Path) -> None:
    root = tmp_path / "consortium"
    init_consortium(root, ["a", "b", "c"], "robotics-coop", "coordinator:9093", "coordinator:8700")
    for name, service in _compose()["services"].items():
        if name == "postgres":
            continue
        config = Path(service["command"][service["command"].index("--config") + 1])
        (mount,) = [v for v in service["volumes"] if v.split(":")[1] == str(config.parent)]
        host = mount.split(":")[0]
        assert host.startswith("./consortium/"), mount
        written = root / host.removeprefix("./consortium/") / config.name
        assert written.is_file(), f"{name}: consortium init writes no {written}"


def test_systemd_units_run_real_commands_and_are_hardened() -> None:
    assert {p.name for p in UNITS} == {"dure-coordinator.service", "dure-factory.service"}
    for path in UNITS:
        unit = _unit(path)
        service = unit["Service"]
        argv = shlex.split(service["ExecStart"])
        assert Path(argv[0]).name == "dure"
        _dure_command(argv[1:])
        config = Path(argv[argv.index("--config") + 1])
        assert config.parent == Path(service["WorkingDirectory"])
        assert str(config.parent) in service["ReadWritePaths"].split()
        assert service["User"] == "dure"
        assert service["ProtectSystem"] == "strict"
        assert service["NoNewPrivileges"] == "yes"
        assert service["Restart"] in {"on-failure", "always"}


@pytest.mark.ci_required("systemd-analyze (apt-get install systemd)")
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    for path in UNITS:  # the install path of dure does not exist here: point at a binary that does
        text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", path.read_text(), flags=re.M)
        (tmp_path / path.name).write_text(text)
    files = [str(tmp_path / p.name) for p in UNITS]
    done = subprocess.run(
        ["systemd-analyze", "verify", *files], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_image_installs_cpu_torch_and_runs_dure() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "https://download.pytorch.org/whl/cpu" in text
    assert 'ENTRYPOINT ["dure"]' in text
    assert re.search(r"^USER dure$", text, re.M)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for source in re.findall(r"^COPY (?:--chmod=\S+ )?(?!--from)(\S+)", text, re.M):
        assert (DEPLOY.parent / source).exists(), source
        assert f"!{source}" in ignored or f"!{source}/" in ignored, f"{source} is not in context"
