"""Building a coordinator from a Flower run config (the deployment path).

``flwr run`` gives the ServerApp only its run config (``[tool.flwr.app.config]``,
overridable with ``flwr run -c 'k=v'``).  :func:`coordinator_from_run_config`
reads these keys (paths are on the coordinator's machine):

=========================  ===========================================================
key                        value
=========================  ===========================================================
``dure-job``               the signed job (DSSE JSON) to run
``dure-operator-keys``     pinned consortium operator public keys (PEM files, ``,``)
``dure-registry``          a folder of signed documents: ``identities/*.json``,
                           ``policies/*.json``, ``revocations/*.json`` (DSSE JSON)
``dure-ledger``            the ledger database URL (``sqlite:///…`` or ``postgresql://…``)
``dure-ledger-key``        the coordinator's Ed25519 ledger key (PEM, mode 0600)
``dure-ledger-name``       the ledger's note key name and checkpoint origin
``dure-models``            the model registry folder
``dure-initial-model``     the initial model, an ``.npz`` of named tensors
``dure-consortium``        the consortium URN
``dure-local-steps``,      optional: local steps, learning rate, seconds to wait for
``dure-lr``,               a round's replies
``dure-round-timeout``
=========================  ===========================================================

Until the registry has its own SQL storage (issue 5) it is rebuilt from the
folder at each run; registrations the ledger does not hold yet are ledgered
then (``site_registered``, ``policy_registered``, ``policy_revoked``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.policies.dsse import Envelope
from dure.policies.entries import LedgerEntry, PolicyRegistered, PolicyRevoked, SiteRegistered
from dure.policies.keys import SigningKey, VerifyKey
from dure.server.federation.coordinator import Coordinator, ledger_entries
from dure.server.federation.errors import FederationError
from dure.server.federation.models import DirectoryModelStore
from dure.server.federation.registry import MemoryRegistry
from dure.server.federation.run import RunSettings, Services, utc_now
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore

__all__ = ["coordinator_from_run_config", "load_registry", "read_envelope"]

_REQUIRED = (
    "dure-job",
    "dure-operator-keys",
    "dure-registry",
    "dure-ledger",
    "dure-ledger-key",
    "dure-ledger-name",
    "dure-models",
    "dure-initial-model",
    "dure-consortium",
)


def coordinator_from_run_config(config: Mapping[str, Any]) -> tuple[Coordinator, Envelope]:
    """Build the coordinator and read the job a run config names (module docstring)."""
    text = {key: str(value) for key, value in config.items()}
    missing = [key for key in _REQUIRED if key not in text]
    if missing:
        raise FederationError(f"run config lacks {missing}")
    store = SqlLedgerStore.from_url(text["dure-ledger"])
    ledger = Ledger(store, SigningKey.load(Path(text["dure-ledger-key"])), text["dure-ledger-name"])
    services = Services(
        registry=load_registry(Path(text["dure-registry"]), ledger),
        ledger=ledger,
        models=DirectoryModelStore(Path(text["dure-models"])),
    )
    settings = RunSettings(
        consortium=text["dure-consortium"],
        local_steps=int(text.get("dure-local-steps", "50")),
        lr=float(text.get("dure-lr", "0.001")),
        round_timeout=float(text.get("dure-round-timeout", "600")),
    )
    keys = [VerifyKey.load(Path(p.strip())) for p in text["dure-operator-keys"].split(",")]
    initial = _npz(Path(text["dure-initial-model"]))
    coordinator = Coordinator(
        services, settings, {key.key_id: key for key in keys}, lambda _stats: initial
    )
    return coordinator, read_envelope(Path(text["dure-job"]))


def load_registry(folder: Path, ledger: Ledger) -> MemoryRegistry:
    """Register every signed document of ``folder``; ledger those the ledger lacks."""
    registry = MemoryRegistry()
    known = {_key(entry) for entry in ledger_entries(ledger)}
    steps = (
        ("identities", registry.register_site),
        ("policies", registry.register_policy),
        ("revocations", registry.revoke),
    )
    for sub, register in steps:
        for path in sorted((folder / sub).glob("*.json")):
            entry = register(read_envelope(path), utc_now())
            if _key(entry) not in known:
                ledger.append(entry)
    return registry


def read_envelope(path: Path) -> Envelope:
    """Read a DSSE envelope file."""
    try:
        return Envelope.from_json(path.read_bytes())
    except OSError as exc:
        raise FederationError(f"{path}: cannot read ({exc.strerror})") from exc


def _key(entry: LedgerEntry) -> tuple[str, ...]:
    if isinstance(entry, SiteRegistered):
        return ("site", entry.site, entry.identity_id)
    if isinstance(entry, PolicyRegistered):
        return ("policy", entry.policy_id)
    if isinstance(entry, PolicyRevoked):
        return ("revoked", entry.revocation_id)
    return (entry.kind,)


def _npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise FederationError(f"{path}: cannot read the initial model ({exc})") from exc
