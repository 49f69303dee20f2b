"""Settings of the coordinator service, read once by a named constructor.

:class:`ServiceSettings` is plain, frozen data: nothing is read or built when
this module is imported.  :meth:`ServiceSettings.from_env` reads ``DURE_*``
environment variables (and the operator key files they name); ``dure
coordinator serve`` builds the settings from its options on top of that; tests
build them directly.

==========================  ====================================================
variable                    setting
==========================  ====================================================
``DURE_DB``                 ``db_url``: ``sqlite:///PATH`` or ``postgresql://…``
``DURE_LEDGER_KEY``         ``ledger_key``: PEM Ed25519 key signing checkpoints
``DURE_LEDGER_NAME``        ``ledger_name``: note key name and checkpoint origin
``DURE_OPERATOR_KEYS``      ``operator_keys``: comma-separated PEM files or base64 keys
``DURE_CONSORTIUM``         ``consortium``: ``urn:dure:consortium:<name>``
``DURE_REQUEST_WINDOW``     ``request_window_s``: accepted clock skew, seconds
``DURE_MAX_BODY``           ``max_body_bytes``
``DURE_TOKEN_TTL``          ``token_ttl_s``: lifetime of read tokens, seconds
``DURE_TOKEN_SECRET``       ``token_secret``: hex HMAC key (default: random per process)
``DURE_OPEN_REGISTRATION``  ``open_registration``: sites may register themselves
``DURE_LOG_LEVEL``          ``log_level``
``DURE_WITNESS_KEYS``       ``witness_keys``: comma-separated witness verifier keys
                            (C2SP ``cosignature/v1``, ``name+keyid+base64``) or
                            files holding one
``DURE_WITNESS_QUORUM``     ``witness_quorum``: cosignatures a checkpoint needs
                            before it is published (0: published at once)
``DURE_DOCS_ASSETS``        ``docs_assets``: a folder holding ``swagger-ui-bundle.js``
                            and ``swagger-ui.css`` (npm ``swagger-ui-dist``); when
                            set, ``/docs`` serves Swagger UI from it, and only from
                            it.  Unset (the default): no ``/docs``, no ``/redoc``;
                            ``/openapi.json`` is always served
==========================  ====================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dure.policies.checkpoint import CosignatureVerifier
from dure.policies.encoding import b64decode, b64encode
from dure.policies.errors import DocumentError, DureError
from dure.policies.keys import VerifyKey
from dure.policies.literals import check_party

__all__ = ["ServiceSettings"]

_ENV: dict[str, str] = {
    "DURE_DB": "db_url",
    "DURE_LEDGER_KEY": "ledger_key",
    "DURE_LEDGER_NAME": "ledger_name",
    "DURE_OPERATOR_KEYS": "operator_keys",
    "DURE_CONSORTIUM": "consortium",
    "DURE_REQUEST_WINDOW": "request_window_s",
    "DURE_MAX_BODY": "max_body_bytes",
    "DURE_TOKEN_TTL": "token_ttl_s",
    "DURE_TOKEN_SECRET": "token_secret",
    "DURE_OPEN_REGISTRATION": "open_registration",
    "DURE_LOG_LEVEL": "log_level",
    "DURE_WITNESS_KEYS": "witness_keys",
    "DURE_WITNESS_QUORUM": "witness_quorum",
    "DURE_DOCS_ASSETS": "docs_assets",
}


class ServiceSettings(BaseModel):
    """How the coordinator service runs (see the module docstring for the variables)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: str = "sqlite:///dure-coordinator.db"
    ledger_key: Path | None = None
    ledger_name: str = Field("dure.local/ledger", pattern=r"^[\x21-\x2a\x2c-\x7e]{1,200}$")
    operator_keys: tuple[str, ...] = ()
    consortium: str = "urn:dure:consortium:default"
    request_window_s: int = Field(120, ge=1, le=3600)
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024)
    token_ttl_s: int = Field(600, ge=10, le=86_400)
    token_secret: str | None = Field(None, pattern=r"^([0-9a-f]{2}){16,}$")
    open_registration: bool = False
    max_page: int = Field(1000, ge=1, le=100_000)
    pool_size: int = Field(10, ge=1, le=200)
    log_level: str = "INFO"
    witness_keys: tuple[str, ...] = ()
    witness_quorum: int = Field(0, ge=0, le=100)
    docs_assets: Path | None = None

    @field_validator("operator_keys")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            try:
                VerifyKey(b64decode(key))
            except DureError as exc:
                raise ValueError(f"operator key {key[:60]!r}: {exc.message}") from exc
        return value

    @field_validator("witness_keys")
    @classmethod
    def _witnesses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            try:
                CosignatureVerifier.from_vkey(key)
            except DureError as exc:
                raise ValueError(f"witness key {key[:60]!r}: {exc.message}") from exc
        return value

    @model_validator(mode="after")
    def _quorum(self) -> ServiceSettings:
        distinct = len({(w.name, w.key_id) for w in self.witness_verifiers()})
        if self.witness_quorum > distinct:
            raise ValueError(
                f"a witness quorum of {self.witness_quorum} cannot be met by {distinct} "
                "witness keys; configure more witness keys or a smaller quorum"
            )
        return self

    def witness_verifiers(self) -> tuple[CosignatureVerifier, ...]:
        """The configured witnesses' cosignature verifier keys."""
        return tuple(CosignatureVerifier.from_vkey(key) for key in self.witness_keys)

    @field_validator("consortium")
    @classmethod
    def _consortium(cls, value: str) -> str:
        return check_party(value, "consortium")

    def operator_verify_keys(self) -> dict[str, VerifyKey]:
        """The pinned operator keys, by key id."""
        keys = [VerifyKey(b64decode(key)) for key in self.operator_keys]
        return {key.key_id: key for key in keys}

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ServiceSettings:
        """Read ``DURE_*`` variables (``environ`` defaults to ``os.environ``), then ``overrides``.

        ``overrides`` whose value is ``None`` are ignored, so command-line options
        left unset fall back to the environment.

        Raises
        ------
        DocumentError
            If a value is invalid (the message names the variable's setting).
        KeyFileError
            If an operator key file cannot be read.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            field: env[name] for name, field in _ENV.items() if env.get(name, "") != ""
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        keys = values.get("operator_keys", ())
        if isinstance(keys, str):
            keys = [part.strip() for part in keys.split(",") if part.strip()]
        values["operator_keys"] = tuple(_operator_key(key) for key in keys)
        witnesses = values.get("witness_keys", ())
        if isinstance(witnesses, str):
            witnesses = [part.strip() for part in witnesses.split(",") if part.strip()]
        values["witness_keys"] = tuple(_witness_key(key) for key in witnesses)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DocumentError(f"coordinator settings: {where}: {first['msg']}") from exc


def _operator_key(value: str) -> str:
    """Return base64 raw key bytes from a PEM file path or a base64 key."""
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if is_file:
        return b64encode(VerifyKey.load(path).raw)
    try:
        return b64encode(VerifyKey(b64decode(value)).raw)
    except DureError as exc:
        raise DocumentError(
            f"operator key {value[:60]!r} is neither a PEM file nor a usable base64 Ed25519"
            f" key: {exc.message}",
            hint="Pass the operator's public key file (dure keys new writes NAME.pub).",
        ) from exc


def _witness_key(value: str) -> str:
    """Return a witness verifier key string given as is or in a file holding one."""
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if not is_file:
        return value.strip()
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"witness key file {value}: cannot read it ({exc})") from exc
