"""The deployment's configuration files: ``coordinator.toml`` and ``factory.toml``.

``dure consortium init`` writes both; ``dure coordinator up``, ``dure coordinator
run-job`` and ``dure factory up`` read them with :func:`load_coordinator_config`
and :func:`load_factory_config`.  Relative paths (and a relative
``sqlite:///PATH``) are resolved against the folder holding the file.  Unknown
keys are refused; every error names the key and how to fix it.  The keys are
described in ``docs/deployment-commands.md``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dure.policies.errors import DureError
from dure.policies.identity import SITE_ID_PATTERN
from dure.policies.job import DEFAULT_HIDDEN
from dure.policies.literals import check_party

__all__ = [
    "CoordinatorConfig",
    "DeploymentConfigError",
    "FactoryConfig",
    "RunOptions",
    "ServiceConfig",
    "SuperLinkConfig",
    "SuperNodeConfig",
    "load_coordinator_config",
    "load_factory_config",
    "split_address",
]

M = TypeVar("M", bound=BaseModel)
_DOCS = "docs/deployment-commands.md"


class DeploymentConfigError(DureError):
    """A deployment configuration file that is missing, not TOML, or not valid."""

    code = "cli.config"
    default_hint = f"Fix the file (the keys are described in {_DOCS})."


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base")
    path = value.expanduser()
    return path if path.is_absolute() or base is None else (Path(base) / path).resolve()


RelPath = Annotated[Path, AfterValidator(_resolve)]


def split_address(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` allowed), or raise ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _address(value: str) -> str:
    split_address(value)
    return value


Address = Annotated[str, AfterValidator(_address)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class SuperLinkConfig(_Model):
    """``[superlink]``: the Flower SuperLink the coordinator runs."""

    address: Address
    listen: str | None = None
    ca_cert: RelPath
    cert: RelPath
    key: RelPath
    database: RelPath = Path("state/superlink.db")

    @property
    def listen_host(self) -> str:
        """The interface to listen on (``listen``, else the host of ``address``)."""
        return self.listen or split_address(self.address)[0]


class ServiceConfig(_Model):
    """``[service]``: the coordinator service (API, ledger, registry database)."""

    address: Address = "127.0.0.1:8700"
    database: str = "sqlite:///state/coordinator.db"
    ledger_key: RelPath
    ledger_name: str = Field(pattern=r"^[\x21-\x2a\x2c-\x7e]{1,200}$")
    operator_keys: list[RelPath] = Field(min_length=1)

    @field_validator("database")
    @classmethod
    def _database(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            relative = value.removeprefix("sqlite:///")
            return f"sqlite:///{_resolve(Path(relative), info)}"
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be sqlite:///PATH or postgresql://USER@HOST/DB")
        return value


_MOVED_TO_JOB = ("local_steps", "lr", "batch_size", "lr_schedule", "schedule", "personalise")


class RunOptions(_Model):
    """``[run]``: how ``run-job`` runs a job (the coordinator's knobs, not signed).

    Local training (steps, batch size, learning rate, schedule, personalisation)
    is in the signed job's ``training`` section, so each site's policy judges
    it; ``[run]`` keeps the plumbing, the model's hidden widths and the seed.
    """

    round_timeout: float = Field(600.0, gt=0)
    connect_wait: float = Field(60.0, ge=0)
    query_timeout: float = Field(120.0, gt=0)
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: list(DEFAULT_HIDDEN), min_length=1
    )
    seed: int = 0
    clientapp: str = Field("dure.client.federation.light:app", pattern=r"^[\w.]+:\w+$")
    models: RelPath = Path("models")
    work: RelPath = Path("work")
    flwr_home: RelPath = Path("flwr-home")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = sorted(key for key in _MOVED_TO_JOB if isinstance(data, dict) and key in data)
        if moved:
            raise ValueError(
                f"{', '.join(moved)}: local training is set in the signed job now; fix: "
                "remove them from [run] and set them in the job's training section "
                "('dure job template' shows it), then sign the job again"
            )
        return data


class CoordinatorConfig(_Model):
    """``coordinator.toml``."""

    consortium: str
    registry: RelPath = Path("registry")
    superlink: SuperLinkConfig
    service: ServiceConfig
    run: RunOptions

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data.setdefault("run", {})
        return data

    @field_validator("consortium")
    @classmethod
    def _consortium(cls, value: str) -> str:
        return check_party(value, "consortium")


class SuperNodeConfig(_Model):
    """``[supernode]``: the factory's Flower SuperNode."""

    superlink: Address
    root_certificates: RelPath
    auth_key: RelPath
    port: int = Field(ge=1, le=65535)
    host: str = "127.0.0.1"
    runtime: Literal["worker", "flower"] = "worker"
    """``worker``: the warm worker runs the SuperNode's tasks (``--isolation process``,
    no process per task); ``flower``: Flower's SuperExec starts a ``flwr-clientapp``
    per task, whose light ClientApp forwards the task to the worker."""
    idle_poll: float = Field(default=0.5, gt=0, le=3)
    """Seconds between the SuperNode's pulls while idle (Flower's own: 3)."""
    reply_poll: float = Field(default=0.05, gt=0, le=0.5)
    """Seconds between its checks for a reply (Flower's own: 0.5)."""


class FactoryConfig(_Model):
    """``factory.toml``."""

    site: str = Field(pattern=SITE_ID_PATTERN)
    consortium: str
    home: RelPath
    key: RelPath
    policy: RelPath
    operator_keys: list[RelPath] = Field(min_length=1)
    ledger_key: RelPath
    revoked: list[str] = Field(default_factory=list)
    supernode: SuperNodeConfig

    @field_validator("consortium")
    @classmethod
    def _consortium(cls, value: str) -> str:
        return check_party(value, "consortium")

    def node_config(self) -> dict[str, str]:
        """The SuperNode's node config: the keys ``FactorySettings`` reads."""
        config = {
            "dure-home": str(self.home),
            "dure-site": self.site,
            "dure-key": str(self.key),
            "dure-policy": str(self.policy),
            "dure-operator-keys": ",".join(str(p) for p in self.operator_keys),
            "dure-ledger-key": str(self.ledger_key),
            "dure-consortium": self.consortium,
        }
        if self.revoked:
            config["dure-revoked"] = ",".join(self.revoked)
        return config


def load_coordinator_config(path: Path) -> CoordinatorConfig:
    """Read and validate ``coordinator.toml``."""
    return _load(path, CoordinatorConfig)


def load_factory_config(path: Path) -> FactoryConfig:
    """Read and validate ``factory.toml``."""
    return _load(path, FactoryConfig)


def _load(path: Path, model: type[M]) -> M:
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
    except OSError as exc:
        raise DeploymentConfigError(
            f"{path}: cannot read ({exc.strerror})",
            hint="Pass the file 'dure consortium init' wrote (coordinator.toml or factory.toml).",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise DeploymentConfigError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return model.model_validate(data, context={"base": path.parent.resolve()})
    except ValidationError as exc:
        raise _explain(path, exc) from exc


def _explain(path: Path, exc: ValidationError) -> DeploymentConfigError:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(file)"
    if error["type"] == "missing":
        return DeploymentConfigError(
            f"{path}: missing key '{key}'", hint=f"Add '{key}' to {path.name} (see {_DOCS})."
        )
    if error["type"] == "extra_forbidden":
        return DeploymentConfigError(
            f"{path}: unknown key '{key}'",
            hint=f"Remove '{key}' or correct its spelling (the keys are in {_DOCS}).",
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    return DeploymentConfigError(
        f"{path}: key '{key}': {message}", hint=f"Correct '{key}' in {path.name} (see {_DOCS})."
    )
