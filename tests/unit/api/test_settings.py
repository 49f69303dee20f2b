"""Service settings: read from the environment by a named constructor, validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from dure.policies.encoding import b64encode
from dure.policies.errors import DocumentError, KeyFileError
from dure.policies.keys import SigningKey
from dure.server.settings import ServiceSettings


def test_defaults_need_no_environment() -> None:
    settings = ServiceSettings.from_env({})
    assert settings.db_url.startswith("sqlite:///")
    assert settings.request_window_s == 120 and settings.operator_keys == ()
    assert settings.open_registration is False


def test_environment_then_overrides(tmp_path: Path) -> None:
    key = SigningKey.generate()
    pem = tmp_path / "operator.pub"
    key.public.save(pem)
    other_key = SigningKey.generate()
    other = b64encode(other_key.public.raw)
    settings = ServiceSettings.from_env(
        {
            "DURE_DB": "postgresql://postgres@127.0.0.1/test",
            "DURE_OPERATOR_KEYS": f"{pem}, {other}",
            "DURE_REQUEST_WINDOW": "30",
            "DURE_OPEN_REGISTRATION": "true",
            "DURE_CONSORTIUM": "urn:dure:consortium:coop",
        },
        request_window_s=60,
        db_url=None,  # unset options fall back to the environment
    )
    assert settings.db_url == "postgresql://postgres@127.0.0.1/test"
    assert settings.request_window_s == 60 and settings.open_registration is True
    assert set(settings.operator_verify_keys()) == {key.key_id, other_key.key_id}


@pytest.mark.parametrize(
    "environ",
    [
        {"DURE_REQUEST_WINDOW": "0"},
        {"DURE_CONSORTIUM": "urn:dure:site:a"},
        {"DURE_OPERATOR_KEYS": "not-a-key"},
        {"DURE_TOKEN_SECRET": "abc"},
        {"DURE_LEDGER_NAME": "has space"},
    ],
)
def test_invalid_values_are_document_errors(environ: dict[str, str]) -> None:
    with pytest.raises(DocumentError):
        ServiceSettings.from_env(environ)


def test_an_unreadable_operator_key_file_is_a_key_file_error(tmp_path: Path) -> None:
    bad = tmp_path / "operator.pub"
    bad.write_text("not pem")
    with pytest.raises(KeyFileError):
        ServiceSettings.from_env({"DURE_OPERATOR_KEYS": str(bad)})


def test_settings_are_frozen() -> None:
    settings = ServiceSettings()
    with pytest.raises(ValueError):
        settings.db_url = "x"  # type: ignore[misc]
