"""``dure coordinator up`` and ``dure coordinator run-job``: the coordinator's processes.

``up --config coordinator.toml``:

1. migrates the coordinator database (``[service] database``), verifies every
   site identity in ``registry/identities`` (refusing the start if one does
   not verify) and copies the registry folder's documents into the SQL
   registry, ledgering each new one once;
2. starts ``flower-superlink`` with TLS, ``--enable-supernode-auth`` and
   ``--disable-runtime-dependency-installation`` (telemetry and update check off);
3. registers each verified identity's SuperNode key (``flwr supernode register``,
   the key written from the signed document, never from a loose file);
4. starts the coordinator service (``dure coordinator serve``) on the same database;
5. supervises both: ``SIGTERM`` is forwarded; if one exits, the other is stopped
   and ``up`` fails naming it.

``run-job --config coordinator.toml --job job.json`` syncs the registry folder
again, writes a Flower app folder (``pyproject.toml`` naming Dure's ServerApp and
ClientApp, the run config pointing at this coordinator's files) under
``[run] work``, starts it with ``flwr run`` on the running SuperLink, streams its
log (``flwr log``) and fails unless the run finished ``completed``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dure.cli.deployment_config import CoordinatorConfig, load_coordinator_config, split_address
from dure.cli.output import make_console

__all__ = [
    "app_pyproject",
    "check_signed_job",
    "register",
    "sync_coordinator_registry",
    "write_connection",
]

console = make_console(stderr=True)
CONNECTION = "dure"

Config = Annotated[Path, typer.Option("--config", help="coordinator.toml (dure consortium init).")]


def register(coordinator: typer.Typer) -> None:
    """Add ``up`` and ``run-job`` to the ``dure coordinator`` group."""
    coordinator.command("up")(_up)
    coordinator.command("run-job")(_run_job)


def _up(config: Config) -> None:
    """Start the SuperLink (TLS, SuperNode auth), register the sites, serve the coordinator."""
    from dure.cli.deployment_processes import Supervisor, executable, flower_environment

    cfg = load_coordinator_config(config)
    identities = sync_coordinator_registry(cfg)
    env = flower_environment(cfg.run.flwr_home)
    write_connection(cfg)
    cfg.superlink.database.parent.mkdir(parents=True, exist_ok=True)
    host, port = split_address(cfg.superlink.address)
    supervisor = Supervisor(env)
    supervisor.start("flower-superlink", _superlink_argv(cfg, executable("flower-superlink")))
    supervisor.wait_port("flower-superlink", host, port)
    keys = cfg.superlink.database.parent / "supernode-keys"
    for site, supernode_key in identities:
        node = _register_supernode(env, keys, site, supernode_key, supervisor)
        console.print(f"site {site}: SuperNode key registered (node {node})")
    s_host, s_port = split_address(cfg.service.address)
    supervisor.start("coordinator-service", _service_argv(cfg, s_host, s_port))
    console.print(f"SuperLink on {cfg.superlink.address} (TLS, SuperNode authentication)")
    console.print(f"coordinator service on http://{cfg.service.address}")
    supervisor.supervise()


def sync_coordinator_registry(cfg: CoordinatorConfig) -> list[tuple[str, str]]:
    """Migrate the database, verify the identities, sync the registry folder.

    Returns each verified site's name and SuperNode public key (OpenSSH).
    """
    from dure.cli.deployment_processes import DeploymentProcessError
    from dure.policies.dsse import Envelope
    from dure.policies.errors import DureError
    from dure.policies.identity import open_site_identity
    from dure.server.federation.deployment import sync_registry
    from dure.server.storage.migrate import upgrade

    verified: list[tuple[str, str]] = []
    for path in sorted((cfg.registry / "identities").glob("*.json")):
        try:
            identity = open_site_identity(Envelope.from_json(path.read_bytes()))
        except (DureError, OSError) as exc:
            raise DeploymentProcessError(
                f"{path}: site identity refused ({getattr(exc, 'message', exc)})",
                hint="Remove it or ask the site for its identity signed with its own key.",
            ) from exc
        verified.append((identity.site, identity.supernode_key))
    _sqlite_parent(cfg.service.database)
    upgrade(cfg.service.database)
    store, ledger, registry = _open_services(cfg)
    try:
        for entry in sync_registry(cfg.registry, registry, ledger):
            console.print(f"ledgered {entry.kind}")
        ledger.checkpoint()
    finally:
        store.close()
    return verified


def _open_services(cfg: CoordinatorConfig) -> tuple[Any, Any, Any]:
    from dure.cli.files import load_signing_key
    from dure.server.ledger.service import Ledger
    from dure.server.ledger.sql import SqlLedgerStore
    from dure.server.storage.database import Database
    from dure.server.storage.registry import SqlRegistry

    store = SqlLedgerStore.from_url(cfg.service.database, create=False)
    ledger = Ledger(store, load_signing_key(cfg.service.ledger_key), cfg.service.ledger_name)
    return store, ledger, SqlRegistry(Database(store.engine))


def _sqlite_parent(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def write_connection(cfg: CoordinatorConfig) -> Path:
    """Write ``$FLWR_HOME/config.toml`` with the ``dure`` connection (TLS, the CA)."""
    home = cfg.run.flwr_home
    home.mkdir(parents=True, exist_ok=True)
    text = (
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f"address = {json.dumps(cfg.superlink.address)}\n"
        f"root-certificates = {json.dumps(str(cfg.superlink.ca_cert))}\n"
    )
    path = home / "config.toml"
    path.write_text(text)
    return path


def _superlink_argv(cfg: CoordinatorConfig, program: str) -> list[str]:
    _, port = split_address(cfg.superlink.address)
    link = cfg.superlink
    return [
        program,
        "--ssl-ca-certfile", str(link.ca_cert),
        "--ssl-certfile", str(link.cert),
        "--ssl-keyfile", str(link.key),
        "--enable-supernode-auth",
        "--disable-runtime-dependency-installation",
        "--host", link.listen_host,
        "--port", str(port),
        "--database", str(link.database),
    ]  # fmt: skip


def _service_argv(cfg: CoordinatorConfig, host: str, port: int) -> list[str]:
    from dure.cli.deployment_processes import executable

    service = cfg.service
    argv = [executable("dure"), "coordinator", "serve"]
    argv += ["--db", service.database, "--host", host, "--port", str(port)]
    argv += ["--ledger-key", str(service.ledger_key), "--ledger-name", service.ledger_name]
    for key in service.operator_keys:
        argv += ["--operator-key", str(key)]
    return [*argv, "--consortium", cfg.consortium]


def _register_supernode(
    env: dict[str, str], folder: Path, site: str, public_key: str, supervisor: Any
) -> str:
    from dure.cli.deployment_processes import DeploymentProcessError, executable

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{site}.pub"
    path.write_text(public_key.strip() + "\n")
    argv = [executable("flwr"), "supernode", "register", str(path), CONNECTION, "--format", "json"]
    for _ in range(20):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        answer = _json(done.stdout)
        if answer.get("success") is True:
            return str(answer.get("node-id", answer.get("node_id", "?")))
        if "already" in done.stdout.lower():
            return "already registered"
        time.sleep(0.5)  # the SuperLink may still be starting its Control API
    supervisor.stop()
    raise DeploymentProcessError(
        f"cannot register site {site}'s SuperNode key: {done.stdout.strip() or done.stderr.strip()}"
    )


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def app_pyproject(cfg: CoordinatorConfig, job: Path) -> str:
    """The Flower app's ``pyproject.toml`` for ``job`` run by this coordinator."""
    service, run = cfg.service, cfg.run
    config = {
        "dure-job": str(job.resolve()),
        "dure-operator-keys": ",".join(str(p) for p in service.operator_keys),
        "dure-registry": service.database,
        "dure-ledger": service.database,
        "dure-ledger-key": str(service.ledger_key),
        "dure-ledger-name": service.ledger_name,
        "dure-models": str(run.models),
        "dure-hidden": ",".join(str(width) for width in run.hidden),
        "dure-seed": str(run.seed),
        "dure-consortium": cfg.consortium,
        "dure-round-timeout": str(run.round_timeout),
        "dure-connect-wait": str(run.connect_wait),
        "dure-query-timeout": str(run.query_timeout),
    }
    lines = [
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
        '[project]\nname = "dure-federation"\nversion = "1.0.0"',
        'description = "Dure federated job"\nlicense = "Apache-2.0"\ndependencies = []\n',
        '[tool.flwr.app]\npublisher = "dure"\n',
        "[tool.flwr.app.components]",
        'serverapp = "dure.server.federation.serverapp:app"',
        f"clientapp = {json.dumps(run.clientapp)}\n",
        "[tool.flwr.app.config]",
        *(f"{key} = {json.dumps(value)}" for key, value in config.items()),
    ]
    return "\n".join(lines) + "\n"


def _run_job(
    config: Config,
    job: Annotated[Path, typer.Option(help="The signed job (DSSE JSON, 'dure job sign').")],
) -> None:
    """Run a signed job on the running SuperLink through flwr run (Dure's Flower app)."""
    from dure.cli.deployment_processes import DeploymentProcessError, executable
    from dure.cli.deployment_processes import flower_environment as environment
    from dure.cli.files import read_bytes

    cfg = load_coordinator_config(config)
    check_signed_job(cfg, read_bytes(job))
    sync_coordinator_registry(cfg)
    write_connection(cfg)
    folder = cfg.run.work / f"app-{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns() % 10**6}"
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(app_pyproject(cfg, job))
    env = environment(cfg.run.flwr_home)
    flwr = executable("flwr")
    started = _flwr_json(env, [flwr, "run", str(folder), CONNECTION, "--format", "json"])
    run_id = str(started["run-id"])
    console.print(f"run {run_id} started; its logs follow")
    subprocess.run([flwr, "log", run_id, CONNECTION, "--stream"], env=env, check=False)
    status = _final_status(env, flwr, run_id)
    if status.get("status") != "finished:completed":
        raise DeploymentProcessError(
            f"run {run_id} {status.get('status')}: {status.get('status-details', '')}",
            hint="Read the run's log above; the ledger records what was done before it stopped.",
        )
    console.print(f"run {run_id} completed; the ledger is in {_redacted(cfg.service.database)}")


def check_signed_job(cfg: CoordinatorConfig, data: bytes) -> None:
    """Refuse, before anything starts, a job the coordinator would refuse to run.

    Verifies it with the pinned operator keys, parses it (the manifest refuses
    settings that cannot be met) and checks this coordinator runs it as signed.
    """
    from dure.policies.dsse import Envelope
    from dure.policies.keys import VerifyKey
    from dure.server.federation.aggregation import check_job_supported
    from dure.server.federation.registry import open_job

    keys = [VerifyKey.load(key) for key in cfg.service.operator_keys]
    opened = open_job(Envelope.from_json(data), {key.key_id: key for key in keys})
    check_job_supported(opened.document)


def _flwr_json(env: dict[str, str], argv: list[str]) -> dict[str, Any]:
    from dure.cli.deployment_processes import DeploymentProcessError

    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    answer = _json(done.stdout)
    if answer.get("success") is not True:
        reason = answer.get("error-message") or done.stderr.strip() or done.stdout.strip()
        raise DeploymentProcessError(f"{' '.join(argv[1:3])} failed: {reason}")
    return answer


def _final_status(env: dict[str, str], flwr: str, run_id: str) -> dict[str, Any]:
    """The run's final status (``flwr log`` returned: it should be finished, or nearly)."""
    run: dict[str, Any] = {}
    for _ in range(150):
        answer = _flwr_json(env, [flwr, "ls", CONNECTION, "--run-id", run_id, "--format", "json"])
        runs = answer.get("runs") or [{}]
        run = runs[0] if isinstance(runs[0], dict) else {}
        if str(run.get("status", "")).startswith("finished"):
            break
        time.sleep(2.0)
    return run


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
