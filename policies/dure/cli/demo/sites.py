"""The demo's factories: simulated logs, ingested stores, keys and signed policies."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dure.client.episodes.query import EpisodeQuery
from dure.client.importers.ingest import ingest
from dure.client.sim.factory import simulate_factory
from dure.client.store import EpisodeStore
from dure.policies.canonical import JsonValue
from dure.policies.dsse import Envelope
from dure.policies.examples import EXAMPLE_PURPOSE, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document
from dure.policies.supernode_key import generate_supernode_key

__all__ = ["CONSORTIUM", "DEMO_FACTORIES", "DemoSite", "FactorySpec", "build_site"]

CONSORTIUM = "robotics-coop"


@dataclass(frozen=True)
class FactorySpec:
    """A simulated factory: name, native logging style, tasks and what its policy says."""

    site: str
    style: str
    tasks: tuple[str, ...]
    min_contributors: int = 2
    forbids_purpose: bool = False


DEMO_FACTORIES: tuple[FactorySpec, ...] = (
    FactorySpec("factory-a", "rosbag", ("push-v3", "lever-pull-v3")),
    FactorySpec("factory-b", "mcap", ("pick-place-v3", "drawer-open-v3"), min_contributors=3),
    FactorySpec("factory-c", "lerobot-v3", ("button-press-topdown-v3", "door-open-v3")),
    FactorySpec("factory-d", "robomimic", ("window-open-v3", "handle-pull-v3")),
    FactorySpec("factory-e", "csv", ("plate-slide-v3", "dial-turn-v3"), forbids_purpose=True),
)
"""Two tasks each, none shared (the non-IID case), five logging styles.  factory-e's
policy forbids the job's purpose; factory-b's requires at least three contributors."""


@dataclass(frozen=True)
class DemoSite:
    """One factory after set-up: its store, keys and signed documents."""

    spec: FactorySpec
    home: Path
    key: SigningKey
    identity: Envelope
    policy: Envelope
    episodes: int

    @property
    def name(self) -> str:
        """The site id."""
        return self.spec.site


def build_site(
    spec: FactorySpec,
    work: Path,
    *,
    demos: int,
    seed: int,
    now: datetime,
    dp: bool,
    progress: Callable[[], None],
) -> DemoSite:
    """Simulate ``spec``'s cell logs, ingest them into its store, create keys and sign."""
    folder = work / spec.site
    simulated = simulate_factory(
        spec.style,
        list(spec.tasks),
        demos * len(spec.tasks),
        seed,
        folder / "cell-logs",
        site=spec.site,
        progress=lambda _episode: progress(),
    )
    home = folder / "home"
    with EpisodeStore.open(home) as store:
        ingest(simulated.data_path, simulated.profile, store.add)
        episodes = len(store.select(EpisodeQuery()))
    key = SigningKey.generate()
    supernode = generate_supernode_key(folder / "supernode.key")
    identity = sign_site_identity(SiteIdentity.create(spec.site, key, supernode), key)
    policy = UsagePolicy.from_value(_policy_value(spec, now, dp))
    return DemoSite(spec, home, key, identity, sign_document("policy", policy, key), episodes)


def _policy_value(spec: FactorySpec, now: datetime, dp: bool) -> dict[str, JsonValue]:
    members = [f.site for f in DEMO_FACTORIES]
    value: Any = copy.deepcopy(
        example_policy_value(
            spec.site,
            consortium=CONSORTIUM,
            coordinator=CONSORTIUM,
            members=members,
            tasks=spec.tasks,
            issued=now,
            dp_epsilon="50.0" if dp else None,
        )
    )
    for constraint in value["permission"][0]["constraint"]:
        if constraint["leftOperand"] == "dure:minContributors":
            constraint["rightOperand"] = spec.min_contributors
    if spec.forbids_purpose:
        value["prohibition"] = [
            {
                "action": "use",
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isAnyOf",
                        "rightOperand": [EXAMPLE_PURPOSE],
                    }
                ],
            }
        ]
    return value  # type: ignore[no-any-return]
