"""Hostile documents through the real ``dure`` command: catalog exit code, one reason, no traceback.

A 5,000-digit integer is past Python's integer-string limit (a bare
``ValueError`` before the kernel fix) and 100,000-deep nesting is past the
recursion limit; ``dure policy sign`` and ``dure policy verify`` must refuse
both as the kernel's encoding error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.dsse import PAYLOAD_TYPES, sign_envelope
from dure.policies.errors import CATALOG
from dure.policies.examples import example_policy_value
from dure.policies.keys import SigningKey

runner = CliRunner()
HUGE = "1" * 5000
ENCODING_EXIT = CATALOG["kernel.encoding"].exit_code


def dure(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def key(tmp_path: Path) -> Path:
    code, out = dure("keys", "new", tmp_path / "site.key")
    assert code == 0, out
    return tmp_path / "site.key"


def policy_with(field: str, literal: str) -> bytes:
    value = dict(example_policy_value(), **{field: "@@x@@"})
    return json.dumps(value, indent=2).replace('"@@x@@"', literal).encode()


def assert_one_line_refusal(code: int, out: str, fragment: str) -> None:
    assert code == ENCODING_EXIT, out
    assert "Traceback" not in out and "ValueError" not in out and "RecursionError" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], out
    assert len(errors[0]) < 300, errors[0]
    assert any(line.startswith("hint:") for line in out.splitlines()), out


HOSTILE = {
    "huge-int": (HUGE, "safe range"),
    "huge-negative-int": ("-" + HUGE, "safe range"),
    "deep-nesting": ("[" * 100_000 + "]" * 100_000, "deeper than"),
}


@pytest.mark.parametrize(("literal", "fragment"), HOSTILE.values(), ids=list(HOSTILE))
def test_policy_sign_refuses_a_hostile_document(
    tmp_path: Path, key: Path, literal: str, fragment: str
) -> None:
    (tmp_path / "policy.json").write_bytes(policy_with("uid", literal))
    out_file = tmp_path / "policy.dsse"
    code, out = dure("policy", "sign", tmp_path / "policy.json", "--key", key, "--out", out_file)
    assert_one_line_refusal(code, out, fragment)
    assert not out_file.exists()


@pytest.mark.parametrize(("literal", "fragment"), HOSTILE.values(), ids=list(HOSTILE))
def test_policy_verify_refuses_a_hostile_envelope(
    tmp_path: Path, key: Path, literal: str, fragment: str
) -> None:
    envelope = '{"payload":"e30=","payloadType":@@,"signatures":[]}'.replace("@@", literal)
    (tmp_path / "policy.dsse").write_text(envelope)
    code, out = dure("policy", "verify", tmp_path / "policy.dsse", "--signer", f"{key}.pub")
    assert_one_line_refusal(code, out, fragment)


@pytest.mark.parametrize(("literal", "fragment"), HOSTILE.values(), ids=list(HOSTILE))
def test_policy_verify_refuses_a_validly_signed_hostile_payload(
    tmp_path: Path, literal: str, fragment: str
) -> None:
    # The signature verifies: the refusal comes from parsing the verified bytes.
    signer = SigningKey.generate()
    signer.save(tmp_path / "site.key")
    signer.public.save(tmp_path / "site.key.pub")
    envelope = sign_envelope(PAYLOAD_TYPES["policy"], policy_with("uid", literal), signer)
    (tmp_path / "policy.dsse").write_bytes(envelope.to_json())
    code, out = dure(
        "policy", "verify", tmp_path / "policy.dsse", "--signer", tmp_path / "site.key.pub"
    )
    assert_one_line_refusal(code, out, fragment)


def test_job_sign_refuses_a_huge_integer(tmp_path: Path, key: Path) -> None:
    code, job_json = dure("job", "template")
    assert code == 0
    value = dict(json.loads(job_json), rounds="@@x@@")
    (tmp_path / "job.json").write_text(json.dumps(value).replace('"@@x@@"', HUGE))
    out_file = tmp_path / "job.dsse"
    code, out = dure("job", "sign", tmp_path / "job.json", "--key", key, "--out", out_file)
    assert_one_line_refusal(code, out, "safe range")
    assert not out_file.exists()
