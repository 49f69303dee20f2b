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
                           ``policies/*.json``, ``revocations/*.json`` (DSSE JSON);
                           or the coordinator database URL (``sqlite:///…`` or
                           ``postgresql://…``): the service's SQL registry
``dure-ledger``            the ledger database URL (``sqlite:///…`` or ``postgresql://…``)
``dure-ledger-key``        the coordinator's Ed25519 ledger key (PEM, mode 0600)
``dure-ledger-name``       the ledger's note key name and checkpoint origin
``dure-models``            the model registry folder
``dure-initial-model``     the initial model, an ``.npz`` of named tensors; or
``dure-hidden``            the hidden widths (``64,64``) of the behaviour-cloning
                           policy, initialised once the consortium's shapes are
                           known (seeded by ``dure-seed``, default 0)
``dure-consortium``        the consortium URN
``dure-round-timeout``,    optional: seconds to wait for a round's replies, for the
``dure-connect-wait``,     admitted sites' nodes to connect, for the answers to a
``dure-query-timeout``     query (identity, statistics, receipts)
=========================  ===========================================================

Local training (steps, batch size, learning rate and schedule, personalisation)
is signed in the job's ``training`` section; the former ``dure-local-steps`` and
``dure-lr`` keys are refused with that fix.

A folder registry is rebuilt in memory at each run; registrations the ledger
does not hold yet are ledgered then (``site_registered``, ``policy_registered``,
``policy_revoked``).  A SQL registry is read as the coordinator service keeps
it; :func:`sync_registry` copies a folder's documents into it (``dure
coordinator up`` and ``run-job`` do), ledgering each new one once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.policies.dsse import Envelope
from dure.policies.entries import LedgerEntry, PolicyRegistered, PolicyRevoked, SiteRegistered
from dure.policies.identity import open_site_identity
from dure.policies.keys import SigningKey, VerifyKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import document_id
from dure.server.federation.coordinator import Coordinator, InitialModel, ledger_entries
from dure.server.federation.errors import FederationError
from dure.server.federation.models import DirectoryModelStore
from dure.server.federation.registry import MemoryRegistry, SiteRegistry, identity_issued
from dure.server.federation.run import RunSettings, Services, utc_now
from dure.server.federation.statistics import ConsortiumStats
from dure.server.ledger.service import Ledger
from dure.server.ledger.sql import SqlLedgerStore

__all__ = [
    "coordinator_from_run_config",
    "initial_policy_model",
    "load_registry",
    "read_envelope",
    "sync_registry",
]

_REQUIRED = (
    "dure-job",
    "dure-operator-keys",
    "dure-registry",
    "dure-ledger",
    "dure-ledger-key",
    "dure-ledger-name",
    "dure-models",
    "dure-consortium",
)
_MOVED = ("dure-local-steps", "dure-lr", "dure-batch-size")
Arrays = dict[str, npt.NDArray[Any]]


def coordinator_from_run_config(config: Mapping[str, Any]) -> tuple[Coordinator, Envelope]:
    """Build the coordinator and read the job a run config names (module docstring)."""
    text = {key: str(value) for key, value in config.items()}
    missing = [key for key in _REQUIRED if key not in text]
    if "dure-initial-model" not in text and "dure-hidden" not in text:
        missing.append("dure-initial-model or dure-hidden")
    if missing:
        raise FederationError(f"run config lacks {missing}")
    moved = sorted(key for key in _MOVED if key in text)
    if moved:
        raise FederationError(
            f"run config keys {moved} are no longer read: local training is signed in the job",
            hint="Set local_steps, batch_size, lr and schedule in the job's training section "
            "('dure job template'), sign it again, and drop these keys.",
        )
    store = SqlLedgerStore.from_url(text["dure-ledger"])
    ledger = Ledger(store, SigningKey.load(Path(text["dure-ledger-key"])), text["dure-ledger-name"])
    services = Services(
        registry=_registry(text["dure-registry"], ledger),
        ledger=ledger,
        models=DirectoryModelStore(Path(text["dure-models"])),
    )
    settings = RunSettings(
        consortium=text["dure-consortium"],
        round_timeout=float(text.get("dure-round-timeout", "600")),
        connect_wait=float(text.get("dure-connect-wait", "30")),
        query_timeout=float(text.get("dure-query-timeout", "120")),
        seed=int(text.get("dure-seed", "0")),
    )
    keys = [VerifyKey.load(Path(p.strip())) for p in text["dure-operator-keys"].split(",")]
    coordinator = Coordinator(
        services, settings, {key.key_id: key for key in keys}, _initial_model(text)
    )
    return coordinator, read_envelope(Path(text["dure-job"]))


def _registry(value: str, ledger: Ledger) -> SiteRegistry:
    if "://" not in value:
        return load_registry(Path(value), ledger)
    from dure.server.storage.database import Database
    from dure.server.storage.registry import SqlRegistry

    return SqlRegistry(Database.from_url(value))


def _initial_model(text: Mapping[str, str]) -> InitialModel:
    if "dure-initial-model" in text:
        initial = _npz(Path(text["dure-initial-model"]))
        return lambda _stats: initial
    try:
        hidden = tuple(int(part) for part in text["dure-hidden"].split(",") if part.strip())
    except ValueError as exc:
        raise FederationError(f"dure-hidden {text['dure-hidden']!r} is not widths") from exc
    if not hidden or min(hidden) < 1:
        raise FederationError(f"dure-hidden {text['dure-hidden']!r}: give positive widths")
    seed = int(text.get("dure-seed", "0"))
    return lambda stats: initial_policy_model(stats, hidden, seed)


def initial_policy_model(stats: ConsortiumStats, hidden: tuple[int, ...], seed: int) -> Arrays:
    """The behaviour-cloning policy's initial tensors, by name, for the consortium's shapes.

    The names and shapes of ``dure.client.training.model.BehaviourCloningPolicy``
    (``trunk.0.weight`` … ``heads.bias``), drawn uniformly in ``±1/sqrt(fan_in)``
    as ``torch.nn.Linear`` draws them, from ``seed``.
    """
    rng = np.random.default_rng(seed)
    n_tasks = len(stats.tasks)
    widths = [stats.observation_dim + n_tasks, *hidden]
    layers = [(f"trunk.{2 * i}", widths[i], widths[i + 1]) for i in range(len(hidden))]
    layers.append(("heads", widths[-1], n_tasks * stats.action_dim))
    arrays: Arrays = {}
    for name, fan_in, fan_out in layers:
        bound = 1.0 / math.sqrt(fan_in)
        arrays[f"{name}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        arrays[f"{name}.bias"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return arrays


def load_registry(folder: Path, ledger: Ledger) -> MemoryRegistry:
    """Register every signed document of ``folder``; ledger those the ledger lacks."""
    registry = MemoryRegistry()
    sync_registry(folder, registry, ledger, fresh=True)
    return registry


def sync_registry(
    folder: Path, registry: SiteRegistry, ledger: Ledger, *, fresh: bool = False
) -> list[LedgerEntry]:
    """Register the documents of ``folder`` the ledger lacks (all of them if ``fresh``).

    A persistent registry (``fresh=False``, e.g. the SQL one) skips every document
    the ledger already records; each new registration is ledgered once.  Returns
    the entries appended.
    """
    known = {_key(entry) for entry in ledger_entries(ledger)}
    steps: tuple[tuple[str, Callable[[Envelope, Any], LedgerEntry]], ...] = (
        ("identities", registry.register_site),
        ("policies", registry.register_policy),
        ("revocations", registry.revoke),
    )
    appended: list[LedgerEntry] = []
    for sub, register in steps:
        for envelope in _in_issue_order(sub, (folder / sub).glob("*.json")):
            if not fresh and _envelope_key(sub, envelope) in known:
                continue
            entry = register(envelope, utc_now())
            if _key(entry) not in known:
                ledger.append(entry)
                known.add(_key(entry))
                appended.append(entry)
    return appended


def _in_issue_order(sub: str, paths: Iterable[Path]) -> list[Envelope]:
    """The envelopes of ``paths`` by name, identities and policies by signed issue time.

    A registry accepts a site's identity or policy only if it is newer than the
    current one, so a folder holding a site's history registers it oldest first.
    """
    envelopes = [read_envelope(path) for path in sorted(paths)]
    if sub == "identities":
        return sorted(envelopes, key=lambda e: identity_issued(open_site_identity(e)))
    if sub == "policies":
        return sorted(envelopes, key=lambda e: UsagePolicy.from_canonical_bytes(e.payload).issued)
    return envelopes


def read_envelope(path: Path) -> Envelope:
    """Read a DSSE envelope file."""
    try:
        return Envelope.from_json(path.read_bytes())
    except OSError as exc:
        raise FederationError(f"{path}: cannot read ({exc.strerror})") from exc


def _envelope_key(sub: str, envelope: Envelope) -> tuple[str, ...]:
    if sub == "identities":
        identity = open_site_identity(envelope)
        return ("site", f"urn:dure:site:{identity.site}", identity.document_id())
    return ("policy" if sub == "policies" else "revoked", document_id(envelope.payload))


def _key(entry: LedgerEntry) -> tuple[str, ...]:
    if isinstance(entry, SiteRegistered):
        return ("site", entry.site, entry.identity_id)
    if isinstance(entry, PolicyRegistered):
        return ("policy", entry.policy_id)
    if isinstance(entry, PolicyRevoked):
        return ("revoked", entry.revocation_id)
    return (entry.kind,)


def _npz(path: Path) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise FederationError(f"{path}: cannot read the initial model ({exc})") from exc
