"""A public key given where the private key belongs is named as such, not as a leaked key.

``--key site.key.pub`` used to be refused as "private key is accessible by others
(mode 0644)" with the hint to chmod it: the file is world-readable because it is a
public key.  Every command that signs now says so and names the private key file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.errors import CATALOG

runner = CliRunner()
KEY_FILE = CATALOG["kernel.key_file"].exit_code


def dure(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    code, out = dure("keys", "new", tmp_path / "site.key")
    assert code == 0, out
    assert dure("keys", "supernode", tmp_path / "node.key")[0] == 0
    (tmp_path / "policy.json").write_text(dure("policy", "template")[1])
    (tmp_path / "job.json").write_text(dure("job", "template")[1])
    return tmp_path


def _refused_as_public(code: int, out: str, key: Path) -> None:
    assert code == KEY_FILE, out
    assert f"error: {key}: this is a public key; pass the private key file" in out
    assert "accessible by others" not in out and "chmod" not in out
    assert str(key.with_suffix("")) in out  # the hint names the private key next to it


@pytest.mark.parametrize("public", ["site.key.pub", "node.key.pub"])
def test_signing_with_a_public_key_names_it(keys: Path, public: str) -> None:
    key = keys / public
    for command, document in (("policy", "policy.json"), ("job", "job.json")):
        code, out = dure(command, "sign", keys / document, "--key", key, "--out", keys / "x")
        _refused_as_public(code, out, key)
        assert not (keys / "x").exists()
    code, out = dure(
        "keys",
        "identity",
        "--site",
        "factory-a",
        "--key",
        key,
        "--supernode-pub",
        keys / "node.key.pub",
        "--out",
        keys / "id.json",
    )
    _refused_as_public(code, out, key)


def test_the_private_key_still_signs_and_an_open_one_is_still_refused(keys: Path) -> None:
    code, out = dure(
        "policy", "sign", keys / "policy.json", "--key", keys / "site.key", "--out", keys / "p"
    )
    assert code == 0, out
    (keys / "site.key").chmod(0o644)
    code, out = dure(
        "policy", "sign", keys / "policy.json", "--key", keys / "site.key", "--out", keys / "q"
    )
    assert code == KEY_FILE and "accessible by others" in out
