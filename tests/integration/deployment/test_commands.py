"""``dure consortium init`` and the deployment configs, on files (no processes)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from dure.cli.consortium import init_consortium
from dure.cli.deployment_config import (
    DeploymentConfigError,
    load_coordinator_config,
    load_factory_config,
)
from dure.cli.deployment_coordinator import app_pyproject, sync_coordinator_registry
from dure.cli.deployment_factory import supernode_argv
from dure.cli.deployment_processes import DeploymentProcessError
from dure.cli.files import CliFileError
from dure.cli.main import app
from dure.client.federation.settings import FactorySettings
from dure.client.training.model import build_policy_model
from dure.policies.dsse import Envelope
from dure.server.federation.deployment import initial_policy_model
from dure.server.federation.statistics import ConsortiumStats, Moments
from dure.server.ledger.sql import SqlLedgerStore

SITES = ["factory-a", "factory-b"]


@pytest.fixture
def consortium(tmp_path: Path) -> Path:
    root = tmp_path / "consortium"
    result = CliRunner().invoke(
        app,
        ["consortium", "init", str(root), "--sites", ",".join(SITES),
         "--superlink-address", "127.0.0.1:19093"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root


def test_init_writes_private_keys_0600_and_configs_that_load(consortium: Path) -> None:
    private = [
        "operator/operator.pem",
        "coordinator/pki/ca.key",
        "coordinator/pki/superlink.key",
        "coordinator/keys/ledger.pem",
        *(f"sites/{s}/keys/{k}" for s in SITES for k in ("site.pem", "supernode.key")),
    ]
    for name in private:
        assert stat.S_IMODE((consortium / name).stat().st_mode) == 0o600, name
    coordinator = load_coordinator_config(consortium / "coordinator" / "coordinator.toml")
    assert coordinator.service.database.startswith("sqlite:////")
    for site in SITES:
        factory = load_factory_config(consortium / "sites" / site / "factory.toml")
        settings = FactorySettings.from_node_config(factory.node_config())
        assert settings.site == site and factory.supernode.superlink == "127.0.0.1:19093"
    assert len({load_factory_config(consortium / "sites" / s / "factory.toml").supernode.port
                for s in SITES}) == len(SITES)  # fmt: skip


def test_the_superlink_certificate_names_its_host_and_is_signed_by_the_ca(
    consortium: Path,
) -> None:
    pki = consortium / "coordinator" / "pki"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((pki / "superlink.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)


def test_init_refuses_an_existing_folder(consortium: Path) -> None:
    with pytest.raises(CliFileError, match="already exists"):
        init_consortium(consortium, SITES)


def test_a_config_error_names_the_key(consortium: Path) -> None:
    path = consortium / "coordinator" / "coordinator.toml"
    text = path.read_text()
    path.write_text(text.replace("ledger_key = ", "ledger_kee = "))
    with pytest.raises(DeploymentConfigError, match=re.escape("missing key 'service.ledger_key'")):
        load_coordinator_config(path)
    path.write_text(text.replace('address = "127.0.0.1:19093"', 'address = "nowhere"'))
    with pytest.raises(DeploymentConfigError, match=re.escape("superlink.address")):
        load_coordinator_config(path)
    path.write_text(text + "colour = 1\n")
    with pytest.raises(DeploymentConfigError, match=re.escape("unknown key 'run.colour'")):
        load_coordinator_config(path)


def test_registry_sync_ledgers_each_document_once(consortium: Path) -> None:
    cfg = load_coordinator_config(consortium / "coordinator" / "coordinator.toml")
    verified = sync_coordinator_registry(cfg)
    assert [site for site, _ in verified] == SITES
    assert all(key.startswith("ecdsa-sha2-nistp384 ") for _, key in verified)
    sync_coordinator_registry(cfg)
    store = SqlLedgerStore.from_url(cfg.service.database, create=False)
    try:
        assert store.size() == 2 * len(SITES)  # identities and policies, once
    finally:
        store.close()


def test_an_identity_whose_signature_fails_stops_the_coordinator(consortium: Path) -> None:
    cfg = load_coordinator_config(consortium / "coordinator" / "coordinator.toml")
    path = cfg.registry / "identities" / "factory-b.json"
    envelope = Envelope.from_json(path.read_bytes())
    forged = envelope.payload.replace(b'"factory-b"', b'"factory-x"')
    path.write_bytes(Envelope(envelope.payload_type, forged, envelope.signatures).to_json())
    with pytest.raises(
        DeploymentProcessError, match=re.escape("factory-b.json: site identity refused")
    ):
        sync_coordinator_registry(cfg)
    assert not Path(cfg.service.database.removeprefix("sqlite:///")).exists()


def test_the_app_names_dures_components_and_the_coordinators_files(consortium: Path) -> None:
    cfg = load_coordinator_config(consortium / "coordinator" / "coordinator.toml")
    text = app_pyproject(cfg, consortium / "job.json")
    assert 'serverapp = "dure.server.federation.serverapp:app"' in text
    assert f'dure-registry = "{cfg.service.database}"' in text
    assert 'clientapp = "dure.client.federation.light:app"' in text


def test_the_initial_model_has_the_policys_names_and_shapes() -> None:
    one = Moments(4, np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3))
    act = Moments(4, np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    stats = ConsortiumStats({"observation.state": one, "action": act}, ("a", "b"), 4)
    arrays = initial_policy_model(stats, (8, 6), seed=0)
    reference = build_policy_model(3, 2, 2, (8, 6)).state_dict()
    assert {k: v.shape for k, v in arrays.items()} == {
        k: tuple(v.shape) for k, v in reference.items()
    }


def test_init_refuses_a_bad_site_id_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DeploymentConfigError, match="is not a site id"):
        init_consortium(tmp_path / "c", ["factory-a", "Factory B"])
    assert not (tmp_path / "c").exists()


def test_the_supernode_runs_paced_and_its_tasks_run_in_the_worker(consortium: Path) -> None:
    path = consortium / "sites" / "factory-a" / "factory.toml"
    cfg = load_factory_config(path)
    argv = supernode_argv(cfg, cfg.node_config(), ["python", "-m", "paced"])
    assert argv[:3] == ["python", "-m", "paced"]
    assert _option(argv, "--idle-poll") == "0.5" and _option(argv, "--reply-poll") == "0.05"
    assert _option(argv, "--isolation") == "process"  # the worker runs the tasks
    text = path.read_text().replace("[supernode]\n", '[supernode]\nruntime = "flower"\n')
    path.write_text(text.replace("[supernode]\n", "[supernode]\nidle_poll = 3\n"))
    cfg = load_factory_config(path)
    argv = supernode_argv(cfg, cfg.node_config(), ["flower"])
    assert "--isolation" not in argv and _option(argv, "--idle-poll") == "3.0"


@pytest.mark.parametrize(
    ("line", "key"),
    [("idle_poll = 0", "supernode.idle_poll"), ("reply_poll = 2", "supernode.reply_poll"),
     ('runtime = "docker"', "supernode.runtime")],
)  # fmt: skip
def test_a_bad_supernode_setting_names_its_key(consortium: Path, line: str, key: str) -> None:
    path = consortium / "sites" / "factory-a" / "factory.toml"
    path.write_text(path.read_text().replace("[supernode]\n", f"[supernode]\n{line}\n"))
    with pytest.raises(DeploymentConfigError, match=re.escape(key)):
        load_factory_config(path)


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_init_the_template_and_the_docs_show_the_one_set_of_defaults(consortium: Path) -> None:
    import json

    from dure.policies.job import DEFAULT_HIDDEN, DEFAULT_TRAINING

    cfg = load_coordinator_config(consortium / "coordinator" / "coordinator.toml")
    assert tuple(cfg.run.hidden) == DEFAULT_HIDDEN
    result = CliRunner().invoke(app, ["job", "template"])
    assert result.exit_code == 0, result.output
    template = json.loads(result.output)
    assert template["training"] == DEFAULT_TRAINING.model_dump(mode="json")
    docs = (Path(__file__).parents[3] / "docs" / "deployment-commands.md").read_text()
    for value in (
        f'"local_steps": {DEFAULT_TRAINING.local_steps}',
        f'"batch_size": {DEFAULT_TRAINING.batch_size}',
        f'"lr": "{DEFAULT_TRAINING.lr}"',
        f'"kind": "{DEFAULT_TRAINING.schedule.kind}"',
        f"hidden = {list(DEFAULT_HIDDEN)}",
    ):
        assert value in docs, value


@pytest.mark.parametrize("key", ["local_steps = 10", "lr = 0.001", "batch_size = 64"])
def test_training_keys_in_run_are_refused_with_where_they_moved(consortium: Path, key: str) -> None:
    path = consortium / "coordinator" / "coordinator.toml"
    path.write_text(path.read_text() + key + "\n")
    with pytest.raises(DeploymentConfigError, match="set in the signed job now") as caught:
        load_coordinator_config(path)
    assert "training section" in caught.value.message


def _sign_job(consortium: Path, tmp: Path, **changes: object) -> tuple[Path, Path]:
    import json

    template = json.loads(CliRunner().invoke(app, ["job", "template"]).output)
    template.update(changes)
    draft = tmp / "draft.json"
    draft.write_text(json.dumps(template))
    return draft, tmp / "job.json"


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"training": {"schedule": {"kind": "cosine", "rounds": 99}}}, "longer than the job's"),
        (
            {"aggregation": {"strategy": "fedadam", "secure": True, "norm_bound": "5"}},
            "secure aggregation computes a weighted mean",
        ),
        ({"aggregation": {"strategy": "fedavgm", "secure": False, "norm_bound": "5"}}, "DP needs"),
        ({"training": {"personalise": {"method": "finetune"}}}, "finetune with 0 steps"),
    ],
)
def test_job_sign_refuses_settings_that_cannot_be_met(
    consortium: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    draft, out = _sign_job(consortium, tmp_path, **changes)
    key = consortium / "operator" / "operator.pem"
    result = CliRunner().invoke(
        app, ["job", "sign", str(draft), "--key", str(key), "--out", str(out)]
    )
    assert result.exit_code != 0 and message in result.output, result.output
    assert "hint:" in result.output and not out.exists()


def test_run_job_refuses_an_unrunnable_signed_job_before_starting_anything(
    consortium: Path, tmp_path: Path
) -> None:
    from dure.cli.deployment_coordinator import check_signed_job
    from dure.policies.examples import example_job_value
    from dure.policies.job import JobManifest
    from dure.policies.keys import SigningKey
    from dure.policies.signed import sign_document
    from dure.server.federation.errors import FederationError

    value = example_job_value(dp=False)
    value["aggregation"] = {"strategy": "bulyan", "secure": False, "norm_bound": "5", "params": {}}
    operator = SigningKey.load(consortium / "operator" / "operator.pem")
    envelope = sign_document("job", JobManifest.from_value(value), operator)
    cfg = load_coordinator_config(consortium / "coordinator" / "coordinator.toml")
    with pytest.raises(FederationError, match="'bulyan' is not supported"):
        check_signed_job(cfg, envelope.to_json())
    value["aggregation"] = {"strategy": "fedavgm", "secure": False, "norm_bound": "5"}
    check_signed_job(cfg, sign_document("job", JobManifest.from_value(value), operator).to_json())
