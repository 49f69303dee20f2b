"""A consortium behind the coordinator API, for the API's integration tests.

:func:`build_world` makes an operator key, a ledger key, three sites (key, signed
identity with a fresh ECDSA SuperNode key, signed example policy) and an app
on a temporary database (SQLite file or a throwaway PostgreSQL schema), with
the clock fixed at the kernel example's ``EXAMPLE_NOW``.  :meth:`World.call`
signs a request with any key; :meth:`World.play_round` ledgers what the
federation would for one committed round, so lineage has something to show.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dure.policies.dsse import Envelope
from dure.policies.encoding import b64encode, sha256, to_hex
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    RoundOpened,
    SiteAdmitted,
)
from dure.policies.examples import EXAMPLE_NOW, example_job_value, example_policy_value
from dure.policies.identity import SiteIdentity, sign_site_identity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.revocation import Revocation
from dure.policies.signed import sign_document
from dure.server.api.app import create_app
from dure.server.api.services import Services
from dure.server.api.signing import REQUEST_HEADER, sign_request
from dure.server.settings import ServiceSettings

with warnings.catch_warnings():
    # starlette.testclient reads anyio.abc.BlockingPortal, an alias anyio deprecates.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

__all__ = [
    "CONSORTIUM",
    "Party",
    "World",
    "build_world",
    "digest_of",
    "make_party",
    "supernode_line",
]

CONSORTIUM = "urn:dure:consortium:robotics-coop"
NAMES = ("factory-a", "factory-b", "factory-c")


def supernode_line() -> str:
    """A fresh ECDSA P-384 public key as an OpenSSH line."""
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    raw = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode("ascii")


def digest_of(label: str) -> str:
    """A distinct hex digest for a label (a model or an update)."""
    return to_hex(sha256(label.encode()))


@dataclass
class Party:
    """A site: its key, signed identity and signed policy."""

    name: str
    key: SigningKey
    identity: Envelope
    policy: Envelope

    @property
    def urn(self) -> str:
        """The site's URN."""
        return f"urn:dure:site:{self.name}"

    def revocation(self, mode: str = "retrain-without", policy: Envelope | None = None) -> Envelope:
        """A revocation of the site's (or the given) policy, signed by the site."""
        envelope = policy or self.policy
        value = {
            "type": "dure/revocation/v1",
            "site": self.urn,
            "policy_id": to_hex(sha256(envelope.payload)),
            "issued": "2026-11-15T09:00:00Z",
            "mode": mode,
            "reason": "consent withdrawn",
        }
        return sign_document("revocation", Revocation.from_value(value), self.key)


@dataclass
class World:
    """The app under test, its services, the operator and the sites."""

    client: TestClient
    services: Services
    operator: SigningKey
    sites: dict[str, Party]
    clock: list[datetime] = field(default_factory=lambda: [EXAMPLE_NOW])

    def call(
        self,
        key: SigningKey | None,
        method: str,
        target: str,
        body: bytes | Envelope | dict[str, Any] | None = None,
        *,
        now: datetime | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx2.Response:
        """Send a request signed by ``key`` (unsigned when ``None``)."""
        raw = _bytes(body)
        sent = dict(headers or {})
        if raw:
            sent["content-type"] = "application/json"
        if key is not None:
            sent[REQUEST_HEADER] = sign_request(key, method, target, raw, now=now or self.clock[0])
        return self.client.request(method, target, content=raw, headers=sent)

    def job(self, **changes: Any) -> Envelope:
        """The example job (no DP), with top-level ``changes``, signed by the operator."""
        value = example_job_value(dp=False, rounds=5)
        value.update(changes)
        return sign_document("job", JobManifest.from_value(value), self.operator)

    def register_all(self) -> None:
        """Register every site's identity (operator) and policy (the site), and the job."""
        for party in self.sites.values():
            assert self.call(self.operator, "POST", "/v1/sites", party.identity).status_code == 201
            assert self.call(party.key, "POST", "/v1/policies", party.policy).status_code == 201
        assert self.call(self.operator, "POST", "/v1/jobs", self.job()).status_code == 201

    def play_round(
        self,
        round: int,
        contributors: Sequence[str],
        model: str,
        parent: str | None,
        *,
        job_id: str = "bc-pick-place-1",
        epsilon: str | None = None,
    ) -> None:
        """Ledger one committed round as the federation would (admission on round 1)."""
        now = self.clock[0].replace(microsecond=0)
        entries: list[Any] = []
        urns = [self.sites[name].urn for name in contributors]
        ids = {name: to_hex(sha256(self.sites[name].policy.payload)) for name in contributors}
        if round == 1:
            entries += [
                SiteAdmitted(time=now, job_id=job_id, site=urn, policy_id=ids[name])
                for name, urn in zip(contributors, urns, strict=True)
            ]
        entries.append(
            RoundOpened(
                time=now, job_id=job_id, round=round, sites=tuple(urns), parent_model=parent
            )
        )
        entries += [
            ContributionAccepted(
                time=now,
                job_id=job_id,
                round=round,
                site=urn,
                update_digest=digest_of(f"{model}/{name}"),
                examples=100,
                episodes_root=digest_of(f"episodes/{name}"),
                policy_id=ids[name],
                claim_id=digest_of(f"claim/{model}/{name}"),
                secure=False,
            )
            for name, urn in zip(contributors, urns, strict=True)
        ]
        entries.append(
            AggregateCommitted(
                time=now,
                job_id=job_id,
                round=round,
                model_digest=model,
                parent_model=parent,
                contributors=tuple(urns),
                epsilon_spent=epsilon,
                strategy="fedavg",
            )
        )
        self.services.ledger.append_all(entries)


def _bytes(body: bytes | Envelope | dict[str, Any] | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, Envelope):
        return body.to_json()
    if isinstance(body, dict):
        return json.dumps(body).encode()
    return body


def make_party(name: str) -> Party:
    key = SigningKey.generate()
    identity = sign_site_identity(SiteIdentity.create(name, key, supernode_line()), key)
    value = example_policy_value(name, dp_epsilon=None, on_revocation="retrain-without")
    policy = sign_document("policy", UsagePolicy.from_value(value), key)
    return Party(name, key, identity, policy)


@contextmanager
def build_world(db_url: str, **settings: Any) -> Iterator[World]:
    """Yield a world whose app runs on ``db_url`` (tables created); close it afterwards."""
    operator = SigningKey.generate()
    config = ServiceSettings(
        db_url=db_url,
        ledger_name="dure.test/ledger",
        operator_keys=(b64encode(operator.public.raw),),
        consortium=CONSORTIUM,
        **settings,
    )
    clock = [EXAMPLE_NOW]
    services = Services.from_settings(
        config, ledger_key=SigningKey.generate(), clock=lambda: clock[0], create_schema=True
    )
    app = create_app(config, services=services)
    try:
        with TestClient(app) as client:
            yield World(client, services, operator, {n: make_party(n) for n in NAMES}, clock)
    finally:
        services.close()
