"""A small consortium for the federation tests: keys, signed documents, stores, apps.

Every site gets an Ed25519 key, a self-signed identity (with a fresh ECDSA
SuperNode key), a signed usage policy, a factory home holding a few tiny
episodes (``tests.builders.episodes``), and the settings its ClientApp reads.
The coordinator side gets a registry, an in-memory ledger and model store, and
an operator key that signs jobs.  The clock is fixed at the kernel example's
``EXAMPLE_NOW``, when the example job is valid.

The tiny model is a linear policy (``policy.weight``, ``policy.bias``) trained
with a few full-batch gradient steps in numpy on the real
:class:`~dure.client.training.dataset.EpisodesDataset` of the allowed episodes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.builders.episodes import make_episode
from tests.builders.flower import LocalGrid, LocalNode

from dure.client.federation.clientapp import create_client_app
from dure.client.federation.settings import FactorySettings, load_policy
from dure.client.federation.trainer import LocalResult, LocalTask, Trainer
from dure.client.store.store import EpisodeStore
from dure.client.training.dataset import EpisodesDataset
from dure.policies.canonical import JsonValue
from dure.policies.dsse import Envelope
from dure.policies.entries import LedgerEntry
from dure.policies.examples import (
    EXAMPLE_NOW,
    EXAMPLE_PURPOSE,
    example_job_value,
    example_policy_value,
)
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document
from dure.server.federation.coordinator import Coordinator, InitialModel, ledger_entries
from dure.server.federation.models import MemoryModelStore
from dure.server.federation.registry import MemoryRegistry
from dure.server.federation.run import RunSettings, Services
from dure.server.federation.statistics import ConsortiumStats
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger

__all__ = [
    "CONSORTIUM",
    "NOW",
    "QUICK_TRAINING",
    "Consortium",
    "Site",
    "build_consortium",
    "fixed_now",
    "linear_model",
    "linear_trainer",
    "node_config",
    "plain_policy",
    "supernode_key",
    "term",
    "with_min_contributors",
    "with_prohibited_purpose",
    "with_use_constraint",
]

NOW = EXAMPLE_NOW
CONSORTIUM = "urn:dure:consortium:robotics-coop"
QUICK_TRAINING: dict[str, JsonValue] = {
    "local_steps": 5,
    "lr": "0.05",
    "schedule": {"kind": "constant", "rounds": None, "floor": "0"},
}
"""The builder's jobs train briefly at a constant rate (signed in the job's ``training``)."""
Arrays = dict[str, npt.NDArray[Any]]


def supernode_key() -> tuple[str, bytes]:
    """Return a fresh ECDSA P-384 public key as an OpenSSH line and as PEM."""
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return line.decode("ascii"), pem


def fixed_now() -> datetime:
    """The tests' clock, as a module-level function (picklable for Ray workers)."""
    return NOW


def plain_policy(site: str, **options: Any) -> dict[str, JsonValue]:
    """The example policy without a DP requirement (for jobs without DP)."""
    return example_policy_value(site, dp_epsilon=None, **options)


def term(operand: str, operator: str, value: JsonValue) -> dict[str, JsonValue]:
    """One ODRL constraint."""
    return {"leftOperand": operand, "operator": operator, "rightOperand": value}


def with_use_constraint(
    policy: dict[str, JsonValue], constraint: dict[str, JsonValue]
) -> dict[str, JsonValue]:
    """A copy of ``policy`` whose ``use`` permission also requires ``constraint``."""
    value: Any = copy.deepcopy(policy)
    value["permission"][0]["constraint"].append(constraint)
    return value  # type: ignore[no-any-return]


def with_prohibited_purpose(
    policy: dict[str, JsonValue], purpose: str = EXAMPLE_PURPOSE
) -> dict[str, JsonValue]:
    """A copy of ``policy`` that prohibits any use for ``purpose``."""
    value: Any = copy.deepcopy(policy)
    value["prohibition"] = [
        {"action": "use", "constraint": [term("purpose", "isAnyOf", [purpose])]}
    ]
    return value  # type: ignore[no-any-return]


def with_min_contributors(policy: dict[str, JsonValue], minimum: int) -> dict[str, JsonValue]:
    """A copy of ``policy`` whose ``use`` permission asks for ``minimum`` contributors."""
    value: Any = copy.deepcopy(policy)
    for constraint in value["permission"][0]["constraint"]:
        if constraint["leftOperand"] == "dure:minContributors":
            constraint["rightOperand"] = minimum
    return value  # type: ignore[no-any-return]


def linear_model(stats: ConsortiumStats) -> Arrays:
    """A zero linear policy for the consortium's shapes."""
    inputs = stats.observation_dim + len(stats.tasks)
    return {
        "policy.weight": np.zeros((stats.action_dim, inputs), dtype=np.float32),
        "policy.bias": np.zeros(stats.action_dim, dtype=np.float32),
    }


def linear_trainer(task: LocalTask) -> LocalResult:
    """A few full-batch gradient steps of the linear policy on the allowed episodes."""
    data = EpisodesDataset.from_store(
        task.store, list(task.episode_ids), stats=task.stats, tasks=task.tasks
    )
    items = [data[i] for i in range(len(data))]
    x = torch.stack([torch.cat([it["observation"], it["task"]]) for it in items]).numpy()
    y = torch.stack([it["action"] for it in items]).numpy()
    w = task.global_arrays["policy.weight"].astype(np.float64)
    b = task.global_arrays["policy.bias"].astype(np.float64)
    loss = 0.0
    for _ in range(task.local_steps):
        err = x @ w.T + b - y
        loss = float((err**2).mean())
        w -= task.lr * (err.T @ x) / len(x)
        b -= task.lr * err.mean(axis=0)
    arrays = {"policy.weight": w.astype(np.float32), "policy.bias": b.astype(np.float32)}
    return LocalResult(arrays, len(x), loss)


@dataclass
class Site:
    """One factory: its key, signed identity and policy, home and settings."""

    name: str
    key: SigningKey
    identity: Envelope
    policy: Envelope
    home: Path
    settings: FactorySettings
    supernode_pem: bytes

    @property
    def urn(self) -> str:
        """The site's URN."""
        return f"urn:dure:site:{self.name}"


@dataclass
class Consortium:
    """The coordinator's side and every site (see the module docstring)."""

    operator: SigningKey
    ledger: Ledger
    registry: MemoryRegistry
    models: MemoryModelStore
    sites: dict[str, Site]
    clock: list[datetime] = field(default_factory=lambda: [NOW])

    def now(self) -> datetime:
        """The consortium's (settable) clock."""
        return self.clock[0]

    def job(self, key: SigningKey | None = None, **changes: Any) -> Envelope:
        """The example job (3 rounds, no DP, :data:`QUICK_TRAINING`), with ``changes``, signed.

        ``dp`` may be a dict of changes to the example's DP parameters.
        """
        dp = changes.pop("dp", None)
        value = example_job_value(dp=dp is not None, rounds=3)
        value["training"] = dict(QUICK_TRAINING)
        if isinstance(dp, dict):
            value["dp"] = {**value["dp"], **dp}  # type: ignore[dict-item]
        value.update(changes)
        return sign_document("job", JobManifest.from_value(value), key or self.operator)

    def coordinator(
        self, initial_model: InitialModel = linear_model, **settings: Any
    ) -> Coordinator:
        """A coordinator over this consortium's services (short timeouts)."""
        options: dict[str, Any] = {"connect_wait": 0.0, "round_timeout": 5.0, "poll": 0.0}
        options.update(settings)
        run = RunSettings(consortium=CONSORTIUM, **options)
        services = Services(self.registry, self.ledger, self.models, self.now)
        return Coordinator(
            services, run, {self.operator.key_id: self.operator.public}, initial_model
        )

    def grid(self, trainer: Trainer = linear_trainer, *, keys: bool = False) -> LocalGrid:
        """A grid with one node per site (node ids 101, 102...), each its own ClientApp."""
        nodes = [
            LocalNode(
                node_id=101 + index,
                app=create_client_app(_fixed(site.settings), trainer, self.now),
                node_config={"partition-id": index},
                public_key=site.supernode_pem if keys else b"",
            )
            for index, site in enumerate(self.sites.values())
        ]
        return LocalGrid(nodes)

    def entries(self) -> list[LedgerEntry]:
        """Every ledger entry, parsed."""
        return ledger_entries(self.ledger)

    def of_kind(self, kind: str) -> list[Any]:
        """The ledger entries of one kind."""
        return [entry for entry in self.entries() if entry.kind == kind]


def build_consortium(
    root: Path,
    names: Sequence[str] = ("factory-a", "factory-b", "factory-c"),
    *,
    policy: Callable[[str], dict[str, JsonValue]] = plain_policy,
    episodes: int = 4,
    frames: int = 20,
    register: Sequence[str] | None = None,
) -> Consortium:
    """Build a consortium; register the sites in ``register`` (default: all) and their policies."""
    operator = SigningKey.generate()
    ledger = Ledger(MemoryLedgerStore(), SigningKey.generate(), "dure.test/ledger")
    consortium = Consortium(operator, ledger, MemoryRegistry(), MemoryModelStore(), {})
    for index, name in enumerate(names):
        site = _site(
            root, name, index, policy(name), (episodes, frames), operator, ledger.public_key()
        )
        consortium.sites[name] = site
        if register is None or name in register:
            ledger.append(consortium.registry.register_site(site.identity, NOW))
            ledger.append(consortium.registry.register_policy(site.policy, NOW))
    return consortium


def _site(
    root: Path,
    name: str,
    index: int,
    policy_value: dict[str, JsonValue],
    size: tuple[int, int],
    operator: SigningKey,
    ledger_key: str,
) -> Site:
    key = SigningKey.generate()
    line, pem = supernode_key()
    identity = sign_site_identity(SiteIdentity.create(name, key, line), key)
    policy = sign_document("policy", UsagePolicy.from_value(policy_value), key)
    home = root / name
    with EpisodeStore.open(home) as store:
        episodes, frames = size
        store.add(
            make_episode(1000 * index + seed, site=name, n_frames=frames)
            for seed in range(episodes)
        )
    settings = FactorySettings(
        site=name,
        home=home,
        key=key,
        policy=load_policy(policy.to_json(), key, "policy"),
        operator_keys={operator.key_id: operator.public},
        ledger_key=ledger_key,
        consortium=CONSORTIUM,
    )
    return Site(name, key, identity, policy, home, settings, pem)


def _fixed(settings: FactorySettings) -> Callable[[Any], FactorySettings]:
    return lambda _context: settings


def node_config(consortium: Consortium, site: Site) -> dict[str, str]:
    """Write the site's key, policy and pinned keys to files; return its node config."""
    folder = site.home / "keys"
    folder.mkdir(exist_ok=True)
    key, policy, operator = folder / "site.pem", folder / "policy.json", folder / "operator.pub"
    if not key.exists():
        site.key.save(key)
        consortium.operator.public.save(operator)
    policy.write_bytes(site.policy.to_json())
    return {
        "dure-home": str(site.home),
        "dure-site": site.name,
        "dure-key": str(key),
        "dure-policy": str(policy),
        "dure-operator-keys": str(operator),
        "dure-ledger-key": consortium.ledger.public_key(),
        "dure-consortium": CONSORTIUM,
    }
