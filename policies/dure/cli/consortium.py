"""``dure consortium init DIR --sites a,b,c``: everything a consortium needs to start.

Writes (private keys 0600; refuses an existing ``DIR``)::

    DIR/operator/operator.pem, operator.pub      the consortium operator (signs jobs; keep offline)
    DIR/coordinator/coordinator.toml             read by 'dure coordinator up' and 'run-job'
    DIR/coordinator/pki/ca.crt, ca.key           the consortium CA
    DIR/coordinator/pki/superlink.crt, .key      the SuperLink's TLS certificate (SAN: its host)
    DIR/coordinator/keys/ledger.pem, ledger.vkey the ledger key and its note verifier key
    DIR/coordinator/keys/operator.pub            the pinned operator key
    DIR/coordinator/registry/identities/S.json   each site's signed identity
    DIR/coordinator/registry/policies/S.json     each site's starter policy (signed by the site)
    DIR/sites/S/factory.toml                     read by 'dure factory up'
    DIR/sites/S/keys/site.pem, site.pub          the site's Ed25519 identity key
    DIR/sites/S/keys/supernode.key, .key.pub     the SuperNode's ECDSA P-384 key (OpenSSH)
    DIR/sites/S/keys/ca.crt, operator.pub, ledger.vkey   what the site pins
    DIR/sites/S/identity.json, policy.json, home/

The starter policy is the example policy for this consortium (every site a
member, at most ``min(3, sites)`` contributors required, no DP, the server
optimisers FedAvgM, FedAdam, FedYogi and FedAdagrad accepted beside the example's
strategies: they see the same mean update FedAvg does); a site edits and
re-signs it (``dure policy sign``) and gives the coordinator the new one.
``[run]`` holds the plumbing and the model's hidden widths
(:data:`dure.policies.job.DEFAULT_HIDDEN`); local training is signed in each
job (``dure job template`` shows :data:`dure.policies.job.DEFAULT_TRAINING`).
Config keys: ``docs/deployment-commands.md``.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dure.cli.output import make_console

__all__ = ["init_consortium", "register"]

console = make_console()
_SERVER_OPTIMISERS = ("fedavgm", "fedadam", "fedyogi", "fedadagrad")


def register(app: typer.Typer) -> None:
    """Add the ``dure consortium`` group to the top-level command."""
    group = typer.Typer(help="Set up a consortium: keys, certificates, configs.")
    group.command("init")(_init)
    app.add_typer(group, name="consortium")


def _init(
    folder: Annotated[Path, typer.Argument(help="Folder to create (must not exist).")],
    sites: Annotated[str, typer.Option(help="Site ids, separated by ',' (e.g. a,b,c).")],
    consortium: Annotated[str, typer.Option(help="The consortium's name.")] = "robotics-coop",
    superlink_address: Annotated[
        str, typer.Option(help="HOST:PORT of the SuperLink, as sites reach it.")
    ] = "127.0.0.1:9093",
    service_address: Annotated[
        str, typer.Option(help="HOST:PORT of the coordinator service (API).")
    ] = "127.0.0.1:8700",
    supernode_port: Annotated[
        int, typer.Option(help="First SuperNode port; site i gets PORT+i.")
    ] = 9100,
) -> None:
    """Create the CA, TLS certificate, site keys and identities, and per-role configs."""
    names = [name.strip() for name in sites.split(",") if name.strip()]
    init_consortium(folder, names, consortium, superlink_address, service_address, supernode_port)
    console.print(f"consortium {consortium}: {len(names)} sites written to {folder}")
    console.print(
        f"coordinator: dure coordinator up --config {folder}/coordinator/coordinator.toml"
    )
    console.print(f"each site:   dure factory up --config {folder}/sites/SITE/factory.toml")


def init_consortium(
    folder: Path,
    sites: list[str],
    consortium: str = "robotics-coop",
    superlink_address: str = "127.0.0.1:9093",
    service_address: str = "127.0.0.1:8700",
    supernode_port: int = 9100,
) -> None:
    """Write a consortium's keys, certificates and configs into ``folder`` (module docstring)."""
    from dure.cli.deployment_config import DeploymentConfigError, split_address
    from dure.cli.deployment_pki import CertificateAuthority, server_certificate
    from dure.cli.files import CliFileError
    from dure.policies.identity import SITE_ID_PATTERN
    from dure.policies.keys import SigningKey
    from dure.policies.literals import check_party

    try:
        check_party(f"urn:dure:consortium:{consortium}", "consortium")
        host, _ = split_address(superlink_address)
        split_address(service_address)
    except ValueError as exc:
        raise DeploymentConfigError(str(exc), hint="Give HOST:PORT and a lowercase name.") from exc
    bad = [site for site in sites if not re.fullmatch(SITE_ID_PATTERN, site)]
    if bad:
        raise DeploymentConfigError(
            f"--sites: {', '.join(bad)} is not a site id",
            hint="Use lowercase letters, digits and '-', starting with a letter or digit.",
        )
    if not sites or len(set(sites)) != len(sites):
        raise DeploymentConfigError(
            f"--sites {','.join(sites)!r}: give distinct site ids", hint="e.g. --sites a,b,c"
        )
    if folder.exists():
        raise CliFileError(f"{folder}: already exists", hint="Choose a new folder.")
    coordinator = folder / "coordinator"
    operator = SigningKey.generate()
    _key_pair(operator, folder / "operator" / "operator.pem")
    ca = CertificateAuthority(consortium)
    ca.save(coordinator / "pki" / "ca.crt", coordinator / "pki" / "ca.key")
    server_certificate(
        ca, host, coordinator / "pki" / "superlink.crt", coordinator / "pki" / "superlink.key"
    )
    ledger_name = f"dure.{consortium}/ledger"
    vkey = _ledger_keys(coordinator / "keys", ledger_name)
    _public(operator, coordinator / "keys" / "operator.pub")
    urn = f"urn:dure:consortium:{consortium}"
    for index, site in enumerate(sites):
        _site(folder, site, sites, consortium, vkey, operator)
        env = folder / "sites" / site
        _copy(env / "identity.json", coordinator / "registry" / "identities" / f"{site}.json")
        _copy(env / "policy.json", coordinator / "registry" / "policies" / f"{site}.json")
        _write_toml(
            env / "factory.toml",
            _factory_toml(site, urn, superlink_address, supernode_port + index),
        )
    (coordinator / "registry" / "revocations").mkdir(parents=True, exist_ok=True)
    _write_toml(
        coordinator / "coordinator.toml",
        _coordinator_toml(urn, superlink_address, service_address, ledger_name),
    )


def _site(
    folder: Path,
    site: str,
    members: list[str],
    consortium: str,
    vkey: str,
    operator: Any,
) -> None:
    from dure.cli.deployment_pki import create_file
    from dure.policies.identity import SiteIdentity, sign_site_identity
    from dure.policies.keys import SigningKey
    from dure.policies.policy import UsagePolicy
    from dure.policies.signed import sign_document
    from dure.policies.supernode_key import generate_supernode_key

    env = folder / "sites" / site
    keys = env / "keys"
    key = SigningKey.generate()
    _key_pair(key, keys / "site.pem")
    supernode = generate_supernode_key(keys / "supernode.key", comment=f"dure-{site}")
    identity = SiteIdentity.create(site, key, supernode)
    create_file(env / "identity.json", sign_site_identity(identity, key).to_json())
    policy = UsagePolicy.from_value(_starter_policy(site, members, consortium))
    create_file(env / "policy.json", sign_document("policy", policy, key).to_json())
    _copy(folder / "coordinator" / "pki" / "ca.crt", keys / "ca.crt")
    _public(operator, keys / "operator.pub")
    create_file(keys / "ledger.vkey", (vkey + "\n").encode("ascii"))
    (env / "home").mkdir()


def _starter_policy(site: str, members: list[str], consortium: str) -> dict[str, Any]:
    from dure.policies.examples import example_policy_value

    value: Any = copy.deepcopy(
        example_policy_value(
            site,
            consortium=consortium,
            coordinator=consortium,
            members=members,
            issued=datetime.now(UTC).replace(microsecond=0),
            dp_epsilon=None,
        )
    )
    for constraint in value["permission"][0]["constraint"]:
        if constraint["leftOperand"] == "dure:minContributors":
            constraint["rightOperand"] = min(3, len(members))
        if constraint["leftOperand"] == "dure:aggregation":  # server optimisers see no more
            constraint["rightOperand"] = [*constraint["rightOperand"], *_SERVER_OPTIMISERS]
    return value  # type: ignore[no-any-return]


def _ledger_keys(folder: Path, name: str) -> str:
    from dure.policies.keys import SigningKey
    from dure.policies.note import Ed25519Signer

    key = SigningKey.generate()
    _key_pair(key, folder / "ledger.pem")
    vkey = Ed25519Signer.from_seed(name, key.seed()).verifier().to_vkey()
    from dure.cli.deployment_pki import create_file

    create_file(folder / "ledger.vkey", (vkey + "\n").encode("ascii"))
    return vkey


def _key_pair(key: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key.save(path)
    path.chmod(0o600)
    _public(key, path.with_suffix(".pub"))


def _public(key: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key.public.save(path)


def _copy(source: Path, target: Path) -> None:
    from dure.cli.deployment_pki import create_file

    create_file(target, source.read_bytes())


def _factory_toml(site: str, urn: str, superlink: str, port: int) -> dict[str, Any]:
    return {
        "site": site,
        "consortium": urn,
        "home": "home",
        "key": "keys/site.pem",
        "policy": "policy.json",
        "operator_keys": ["keys/operator.pub"],
        "ledger_key": "keys/ledger.vkey",
        "revoked": [],
        "supernode": {
            "superlink": superlink,
            "root_certificates": "keys/ca.crt",
            "auth_key": "keys/supernode.key",
            "host": "127.0.0.1",
            "port": port,
        },
    }


def _coordinator_toml(urn: str, superlink: str, service: str, ledger: str) -> dict[str, Any]:
    from dure.policies.job import DEFAULT_HIDDEN

    return {
        "consortium": urn,
        "registry": "registry",
        "superlink": {
            "address": superlink,
            "ca_cert": "pki/ca.crt",
            "cert": "pki/superlink.crt",
            "key": "pki/superlink.key",
            "database": "state/superlink.db",
        },
        "service": {
            "address": service,
            "database": "sqlite:///state/coordinator.db",
            "ledger_key": "keys/ledger.pem",
            "ledger_name": ledger,
            "operator_keys": ["keys/operator.pub"],
        },
        "run": {"round_timeout": 600.0, "hidden": list(DEFAULT_HIDDEN)},
    }


def _write_toml(path: Path, tables: dict[str, Any]) -> None:
    from dure.cli.deployment_pki import create_file

    lines: list[str] = []
    nested = {k: v for k, v in tables.items() if isinstance(v, dict)}
    for key, value in tables.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {json.dumps(value)}")
    for table, values in nested.items():
        lines += ["", f"[{table}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    create_file(path, ("\n".join(lines) + "\n").encode("utf-8"))
