"""Jobs the operator signed, and their rounds."""

from __future__ import annotations

from fastapi import APIRouter

from dure.server.api import provenance, registrations
from dure.server.api.deps import RawBodyDep, ReaderDep, ServicesDep, WriterDep
from dure.server.api.inputs import EnvelopeCreate
from dure.server.api.outputs import JobPublic, RoundPublic
from dure.server.api.routes.common import MEMBER_ERRORS, WRITE_ERRORS, JobIdPath

__all__ = ["job", "job_rounds", "jobs", "register", "rounds", "router"]

router = APIRouter(prefix="/v1", tags=["jobs"], responses=MEMBER_ERRORS)


@router.post("/jobs", status_code=201, response_model=JobPublic, responses=WRITE_ERRORS)
def register(
    services: ServicesDep, member: WriterDep, body: RawBodyDep, _envelope: EnvelopeCreate
) -> JobPublic:
    """Sign off a job: register a manifest signed by a pinned operator key (``job_signed``)."""
    return registrations.register_job(services, body, member)


@router.get("/jobs", response_model=list[JobPublic])
def jobs(services: ServicesDep, member: ReaderDep) -> list[JobPublic]:
    """Every registered job, oldest first."""
    return [registrations.job_public(record) for record in services.jobs.jobs()]


@router.get("/jobs/{job_id}", response_model=JobPublic)
def job(services: ServicesDep, member: ReaderDep, job_id: JobIdPath) -> JobPublic:
    """One job and its signed manifest."""
    return registrations.job_public(services.jobs.job(job_id))


@router.get("/jobs/{job_id}/rounds", response_model=list[RoundPublic])
def job_rounds(services: ServicesDep, member: ReaderDep, job_id: JobIdPath) -> list[RoundPublic]:
    """The rounds of one job: what the ledger shows and the status the federation reported."""
    return provenance.rounds(services, job_id)


@router.get("/rounds", response_model=list[RoundPublic])
def rounds(services: ServicesDep, member: ReaderDep) -> list[RoundPublic]:
    """Every round of every job."""
    return provenance.rounds(services)
