"""Usage policies: register and read signed policies; revoke them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dure.server.api import provenance, registrations
from dure.server.api.deps import RawBodyDep, ReaderDep, ServicesDep, WriterDep
from dure.server.api.inputs import EnvelopeCreate
from dure.server.api.outputs import PolicyPublic, RevocationPublic
from dure.server.api.routes.common import MEMBER_ERRORS, WRITE_ERRORS, SiteQuery

__all__ = ["policies", "policy", "register", "revocations", "revoke", "router"]

router = APIRouter(prefix="/v1", tags=["policies"], responses=MEMBER_ERRORS)
PolicyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="Policy id")]


@router.post("/policies", status_code=201, response_model=PolicyPublic, responses=WRITE_ERRORS)
def register(
    services: ServicesDep, member: WriterDep, body: RawBodyDep, _envelope: EnvelopeCreate
) -> PolicyPublic:
    """Register a site's signed usage policy as its current one (``policy_registered``)."""
    return registrations.register_policy(services, body, member)


@router.get("/policies", response_model=list[PolicyPublic])
def policies(
    services: ServicesDep, member: ReaderDep, site: SiteQuery = None
) -> list[PolicyPublic]:
    """Every registered policy (of ``site`` when given), oldest first."""
    if site is not None:
        services.registry.site(site)
    return [registrations.policy_public(record) for record in services.registry.policies(site)]


@router.get("/policies/{policy_id}", response_model=PolicyPublic)
def policy(services: ServicesDep, member: ReaderDep, policy_id: PolicyIdPath) -> PolicyPublic:
    """One policy, current or not, with its signed document and revocation status."""
    return registrations.policy_public(services.registry.policy(policy_id))


@router.post(
    "/revocations", status_code=201, response_model=RevocationPublic, responses=WRITE_ERRORS
)
def revoke(
    services: ServicesDep, member: WriterDep, body: RawBodyDep, _envelope: EnvelopeCreate
) -> RevocationPublic:
    """Revoke a site's current policy (``policy_revoked``); lists the models holding its data.

    The site is excluded from every later round at once: the next admission or
    re-admission reads the revoked policy from the registry and refuses it.
    """
    return registrations.revoke_policy(services, body, member)


@router.get("/revocations", response_model=list[RevocationPublic])
def revocations(
    services: ServicesDep, member: ReaderDep, site: SiteQuery = None
) -> list[RevocationPublic]:
    """Every ledgered revocation (of ``site`` when given) and the models it touches."""
    return provenance.revocations(services, site)
