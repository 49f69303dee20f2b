"""Sites: registration of signed identities, the registry, usage reports, auditors."""

from __future__ import annotations

from fastapi import APIRouter

from dure.server.api import provenance, registrations
from dure.server.api.deps import RawBodyDep, ReaderDep, RegistrantDep, ServicesDep, WriterDep
from dure.server.api.errors import ForbiddenError
from dure.server.api.inputs import AuditorCreate, EnvelopeCreate
from dure.server.api.outputs import AuditorPublic, SitePublic, SiteRegistration, UsagePublic
from dure.server.api.routes.common import MEMBER_ERRORS, WRITE_ERRORS, SitePath

__all__ = ["add_auditor", "auditors", "register", "router", "site", "sites", "usage"]

router = APIRouter(prefix="/v1/sites", tags=["sites"], responses=MEMBER_ERRORS)


@router.post("", status_code=201, response_model=SiteRegistration, responses=WRITE_ERRORS)
def register(
    services: ServicesDep, member: RegistrantDep, body: RawBodyDep, _envelope: EnvelopeCreate
) -> SiteRegistration:
    """Register a site's self-signed identity (ledger: ``site_registered``)."""
    return registrations.register_site(services, body, member)


@router.get("", response_model=list[SitePublic])
def sites(services: ServicesDep, member: ReaderDep) -> list[SitePublic]:
    """Every registered site with its current policy, in registration order."""
    return [registrations.site_public(site) for site in services.registry.sites()]


@router.get("/{site}", response_model=SitePublic)
def site(services: ServicesDep, member: ReaderDep, site: SitePath) -> SitePublic:
    """One registered site."""
    return registrations.site_public(services.registry.site(site))


@router.get("/{site}/usage", response_model=UsagePublic)
def usage(services: ServicesDep, member: ReaderDep, site: SitePath) -> UsagePublic:
    """Every job, round and model the site's data reached, with ε (the site and its auditors)."""
    return provenance.usage(services, site, member)


@router.post(
    "/{site}/auditors", status_code=201, response_model=AuditorPublic, responses=WRITE_ERRORS
)
def add_auditor(
    services: ServicesDep, member: WriterDep, site: SitePath, body: AuditorCreate
) -> AuditorPublic:
    """Name an auditor key that may read this site's usage report (the site itself only)."""
    return registrations.add_auditor(services, site, body, member)


@router.get("/{site}/auditors", response_model=list[AuditorPublic])
def auditors(services: ServicesDep, member: ReaderDep, site: SitePath) -> list[AuditorPublic]:
    """The auditors this site named (the site itself and the operator)."""
    services.registry.site(site)
    if not (member.operator or member.site == site):
        raise ForbiddenError(f"only site {site!r} and the operator list its auditors")
    return [
        AuditorPublic(site=a.site, name=a.name, key_id=a.key.key_id, registered=a.registered)
        for a in services.auditors.auditors(site)
    ]
