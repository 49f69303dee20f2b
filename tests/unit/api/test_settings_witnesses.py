"""The coordinator's witness settings: keys from the environment or files, a possible quorum."""

from __future__ import annotations

from pathlib import Path

import pytest

from dure.policies.checkpoint import Cosigner
from dure.policies.errors import DocumentError
from dure.server.settings import ServiceSettings


def _keys(count: int) -> list[str]:
    return [Cosigner.generate(f"w{i}.test/witness").verifier().to_vkey() for i in range(count)]


def test_no_witnesses_and_quorum_zero_by_default() -> None:
    settings = ServiceSettings.from_env({})
    assert (settings.witness_keys, settings.witness_quorum) == ((), 0)
    assert settings.witness_verifiers() == ()


def test_witness_keys_come_from_the_environment_or_files(tmp_path: Path) -> None:
    keys = _keys(3)
    held = tmp_path / "w2.vkey"
    held.write_text(keys[2] + "\n")
    env = {"DURE_WITNESS_KEYS": f"{keys[0]}, {keys[1]},{held}", "DURE_WITNESS_QUORUM": "2"}
    settings = ServiceSettings.from_env(env)
    assert settings.witness_keys == tuple(keys) and settings.witness_quorum == 2
    assert [w.to_vkey() for w in settings.witness_verifiers()] == keys
    overridden = ServiceSettings.from_env(env, witness_keys=(keys[0],), witness_quorum=1)
    assert overridden.witness_keys == (keys[0],)


def test_an_impossible_quorum_or_a_bad_key_is_refused() -> None:
    with pytest.raises(DocumentError, match="quorum of 2 cannot be met by 1"):
        ServiceSettings.from_env({"DURE_WITNESS_KEYS": _keys(1)[0], "DURE_WITNESS_QUORUM": "2"})
    with pytest.raises(DocumentError, match="witness_keys"):
        ServiceSettings.from_env({"DURE_WITNESS_KEYS": "factory-a+00000000+AAAA"})
    with pytest.raises(DocumentError, match="witness_quorum"):
        ServiceSettings.from_env({"DURE_WITNESS_QUORUM": "-1"})
    twice = _keys(1) * 2  # one witness listed twice counts once
    with pytest.raises(DocumentError, match="quorum of 2 cannot be met by 1"):
        ServiceSettings.from_env({"DURE_WITNESS_KEYS": ",".join(twice), "DURE_WITNESS_QUORUM": "2"})
