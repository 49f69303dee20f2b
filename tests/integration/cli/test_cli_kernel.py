"""The kernel's commands, run as a user runs them, exit codes from the catalog."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.errors import CATALOG

runner = CliRunner()


def dure(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def exit_code(code: str) -> int:
    return CATALOG[code].exit_code


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in ("site", "operator"):
        code, out = dure("keys", "new", tmp_path / f"{name}.key")
        assert code == 0, out
    return tmp_path


def signed(keys: Path, *, forbid: bool = False) -> tuple[Path, Path]:
    code, policy_json = dure("policy", "template", "--site", "factory-a")
    assert code == 0
    value = json.loads(policy_json)
    if forbid:
        value["prohibition"] = [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isAnyOf",
                        "rightOperand": ["urn:dure:purpose:bc-manipulation"],
                    }
                ],
            }
        ]
    (keys / "policy.json").write_text(json.dumps(value, indent=2))
    code, job_json = dure("job", "template")
    (keys / "job.json").write_text(job_json)
    assert (
        dure(
            "policy",
            "sign",
            keys / "policy.json",
            "--key",
            keys / "site.key",
            "--out",
            keys / "p.dsse",
        )[0]
        == 0
    )
    assert (
        dure(
            "job",
            "sign",
            keys / "job.json",
            "--key",
            keys / "operator.key",
            "--out",
            keys / "j.dsse",
        )[0]
        == 0
    )
    return keys / "p.dsse", keys / "j.dsse"


def test_sign_verify_and_check_allowed(keys: Path) -> None:
    policy, job = signed(keys)
    code, out = dure("policy", "verify", policy, "--signer", keys / "site.key.pub")
    assert code == 0 and "valid" in out and "factory-a" in out
    code, out = dure("job", "verify", job, "--signer", keys / "operator.key.pub")
    assert code == 0, out
    code, out = dure(
        "policy",
        "check",
        policy,
        "--signer",
        keys / "site.key.pub",
        "--job",
        job,
        "--operator",
        keys / "operator.key.pub",
        "--contributors",
        "3",
    )
    assert code == 0, out
    assert "allowed" in out


def test_check_denied_lists_reasons_and_exits_denied(keys: Path) -> None:
    policy, job = signed(keys, forbid=True)
    code, out = dure(
        "policy",
        "check",
        policy,
        "--signer",
        keys / "site.key.pub",
        "--job",
        job,
        "--operator",
        keys / "operator.key.pub",
    )
    assert code == exit_code("cli.denied")
    assert "denied" in out and "prohibition" in out


def test_untrusted_or_tampered_signature_refused(keys: Path) -> None:
    policy, _ = signed(keys)
    code, out = dure("policy", "verify", policy, "--signer", keys / "operator.key.pub")
    assert code == exit_code("kernel.signature")
    assert "no signature from a trusted key" in out and "hint:" in out
    envelope = json.loads(policy.read_text())
    envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
    policy.write_text(json.dumps(envelope, separators=(",", ":"), sort_keys=True))
    code, out = dure("policy", "verify", policy, "--signer", keys / "site.key.pub")
    assert code in (exit_code("kernel.signature"), exit_code("kernel.encoding"))


def test_expired_job_refused(keys: Path) -> None:
    _, job_json = dure("job", "template")
    value = json.loads(job_json)
    value["issued"], value["expires"] = "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"
    (keys / "old.json").write_text(json.dumps(value))
    assert (
        dure(
            "job",
            "sign",
            keys / "old.json",
            "--key",
            keys / "operator.key",
            "--out",
            keys / "old.dsse",
        )[0]
        == 0
    )
    code, out = dure("job", "verify", keys / "old.dsse", "--signer", keys / "operator.key.pub")
    assert code == exit_code("kernel.expired"), out
    assert "expired" in out


def test_bad_inputs_give_one_clear_line(keys: Path) -> None:
    (keys / "bad.json").write_text('{"uid": 1, "uid": 2}')
    code, out = dure(
        "policy", "sign", keys / "bad.json", "--key", keys / "site.key", "--out", keys / "x"
    )
    assert code == exit_code("kernel.encoding") and "duplicate key" in out
    assert not (keys / "x").exists()
    (keys / "float.json").write_text('{"epsilon": 0.5}')
    code, out = dure(
        "policy", "sign", keys / "float.json", "--key", keys / "site.key", "--out", keys / "x"
    )
    assert code == exit_code("kernel.encoding") and "floating-point" in out
    code, out = dure(
        "policy", "sign", keys / "missing.json", "--key", keys / "site.key", "--out", keys / "x"
    )
    assert code == exit_code("cli.file") and "cannot read" in out
    assert "Traceback" not in out


def test_world_readable_key_refused(keys: Path) -> None:
    (keys / "site.key").chmod(0o644)
    code, _ = dure("job", "template")
    (keys / "job.json").write_text(dure("job", "template")[1])
    code, out = dure(
        "job", "sign", keys / "job.json", "--key", keys / "site.key", "--out", keys / "j"
    )
    assert code == exit_code("kernel.key_file")
    assert "chmod 600" in out


def test_keys_never_overwritten_and_identity(keys: Path) -> None:
    code, out = dure("keys", "new", keys / "site.key")
    assert code == exit_code("kernel.key_file") and "already exists" in out
    assert dure("keys", "supernode", keys / "node.key")[0] == 0
    code, out = dure(
        "keys",
        "identity",
        "--site",
        "factory-a",
        "--key",
        keys / "site.key",
        "--supernode-pub",
        keys / "node.key.pub",
        "--out",
        keys / "id.json",
    )
    assert code == 0, out
    from dure.policies.dsse import Envelope
    from dure.policies.identity import open_site_identity

    identity = open_site_identity(Envelope.from_json((keys / "id.json").read_bytes()))
    assert identity.site == "factory-a"


def test_a_site_revokes_its_own_policy_and_no_one_elses(keys: Path) -> None:
    from dure.policies.dsse import Envelope
    from dure.policies.keys import SigningKey
    from dure.policies.revocation import Revocation
    from dure.policies.signed import document_id, open_document

    policy, _ = signed(keys)
    out = keys / "revocation.dsse"
    code, text = dure(
        "policy", "revoke", policy, "--key", keys / "site.key", "--out", out, "--reason", "audit"
    )
    assert code == 0, text
    site = SigningKey.load(keys / "site.key")
    opened = open_document(
        Envelope.from_json(out.read_bytes()), "revocation", Revocation, {site.key_id: site.public}
    )
    assert opened.document.policy_id == document_id(Envelope.from_json(policy.read_bytes()).payload)
    assert opened.document.mode == "exclude-future"
    # The operator's key did not sign this policy: it cannot revoke it.
    code, text = dure(
        "policy",
        "revoke",
        policy,
        "--key",
        keys / "operator.key",
        "--out",
        keys / "x",
        "--reason",
        "x",
    )
    assert code != 0 and not (keys / "x").exists(), text
    code, text = dure(
        "policy",
        "revoke",
        policy,
        "--key",
        keys / "site.key",
        "--out",
        keys / "y",
        "--reason",
        "x",
        "--mode",
        "forget-everything",
    )
    assert code == exit_code("kernel.document") and "exclude-future" in text, text
