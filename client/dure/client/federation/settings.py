"""What a factory's node needs to federate: its keys, its own policy, the pinned keys.

Read from the SuperNode's node config (``flower-supernode --node-config``) by
:meth:`FactorySettings.from_node_config`, every value a string:

=======================  ==========================================================
key                      value
=======================  ==========================================================
``dure-home``            the factory home (episode store; receipts are kept in
                         ``<home>/receipts``)
``dure-site``            the site's name, e.g. ``factory-a``
``dure-key``             the site's Ed25519 private key (PEM, mode 0600)
``dure-policy``          the site's signed usage policy (DSSE JSON); it must be
                         signed by ``dure-key`` and is authoritative for this data
``dure-operator-keys``   the pinned consortium operator public keys (PEM files,
                         separated by ``,``): only jobs they signed are evaluated
``dure-ledger-key``      the ledger's note verifier key (``name+id+base64``), or a
                         file holding it: receipts must verify with it
``dure-consortium``      the consortium the factory joined, ``urn:dure:consortium:<n>``
``dure-revoked``         optional: ids of this site's policies it revoked (``,``)
=======================  ==========================================================

The Simulation Engine gives virtual nodes only ``partition-id``; a simulation
passes its own ``Context -> FactorySettings`` function to
:func:`dure.client.federation.clientapp.create_client_app` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dure.client.federation.errors import FederationSetupError
from dure.policies.dsse import Envelope
from dure.policies.errors import DureError
from dure.policies.keys import SigningKey, VerifyKey
from dure.policies.literals import check_party
from dure.policies.policy import UsagePolicy
from dure.policies.signed import Opened, open_document

__all__ = ["FactorySettings", "load_policy"]

_REQUIRED = (
    "dure-home",
    "dure-site",
    "dure-key",
    "dure-policy",
    "dure-operator-keys",
    "dure-ledger-key",
    "dure-consortium",
)


def load_policy(envelope_json: bytes, key: SigningKey, source: str) -> Opened[UsagePolicy]:
    """Open the site's own signed policy with its own key, or raise FederationSetupError."""
    try:
        opened = open_document(
            Envelope.from_json(envelope_json), "policy", UsagePolicy, {key.key_id: key.public}
        )
    except DureError as exc:
        raise FederationSetupError(f"{source}: {exc.message}", hint=exc.hint) from exc
    return opened


@dataclass(frozen=True)
class FactorySettings:
    """A factory node's federation settings (see the module docstring)."""

    site: str
    home: Path
    key: SigningKey
    policy: Opened[UsagePolicy]
    operator_keys: Mapping[str, VerifyKey]
    ledger_key: str
    consortium: str
    revoked: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.policy.document.site != self.urn:
            raise FederationSetupError(
                f"the policy governs {self.policy.document.site}, not this site {self.urn}"
            )
        try:
            check_party(self.consortium, "consortium")
        except ValueError as exc:
            raise FederationSetupError(f"dure-consortium: {exc}") from exc
        if not self.operator_keys:
            raise FederationSetupError("no consortium operator key is pinned")

    @property
    def urn(self) -> str:
        """The site's URN, ``urn:dure:site:<site>``."""
        return f"urn:dure:site:{self.site}"

    @property
    def receipts_dir(self) -> Path:
        """Where the site keeps its ledger receipts."""
        return self.home / "receipts"

    @classmethod
    def from_node_config(cls, config: Mapping[str, object]) -> FactorySettings:
        """Load the settings named by a SuperNode's node config (see the module docstring)."""
        missing = [key for key in _REQUIRED if not isinstance(config.get(key), str)]
        if missing:
            raise FederationSetupError(f"node config lacks {missing} (has {sorted(config)})")
        text = {key: str(config[key]) for key in (*_REQUIRED, "dure-revoked") if key in config}
        key = SigningKey.load(Path(text["dure-key"]))
        policy_path = Path(text["dure-policy"])
        return cls(
            site=text["dure-site"],
            home=Path(text["dure-home"]),
            key=key,
            policy=load_policy(_read(policy_path), key, str(policy_path)),
            operator_keys=_operator_keys(text["dure-operator-keys"]),
            ledger_key=_ledger_key(text["dure-ledger-key"]),
            consortium=text["dure-consortium"],
            revoked=frozenset(filter(None, text.get("dure-revoked", "").split(","))),
        )


def _operator_keys(paths: str) -> dict[str, VerifyKey]:
    keys = [VerifyKey.load(Path(path.strip())) for path in paths.split(",") if path.strip()]
    return {key.key_id: key for key in keys}


def _ledger_key(value: str) -> str:
    path = Path(value)
    return _read(path).decode("ascii", "replace").strip() if path.is_file() else value.strip()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FederationSetupError(f"{path}: cannot read ({exc.strerror})") from exc
