"""Models: list, lineage, release to recipients, retrain without a revoked site."""

from __future__ import annotations

from fastapi import APIRouter

from dure.server.api import provenance
from dure.server.api.deps import ReaderDep, ServicesDep, WriterDep
from dure.server.api.inputs import ReleaseCreate, RetrainCreate
from dure.server.api.outputs import LineagePublic, ModelPublic, ReleasePublic, RetrainPublic
from dure.server.api.routes.common import MEMBER_ERRORS, WRITE_ERRORS, DigestPath

__all__ = ["lineage", "models", "release", "retrain_without", "router"]

router = APIRouter(prefix="/v1/models", tags=["models"], responses=MEMBER_ERRORS)


@router.get("", response_model=list[ModelPublic])
def models(services: ServicesDep, member: ReaderDep) -> list[ModelPublic]:
    """Every model an aggregate committed, with where it was released."""
    return provenance.models(services)


@router.get("/{digest}/lineage", response_model=LineagePublic)
def lineage(services: ServicesDep, member: ReaderDep, digest: DigestPath) -> LineagePublic:
    """Every site, policy, round and parent model behind the model, transitively."""
    return provenance.lineage(services, digest)


@router.post(
    "/{digest}/release", status_code=201, response_model=ReleasePublic, responses=WRITE_ERRORS
)
def release(
    services: ServicesDep, member: WriterDep, digest: DigestPath, body: ReleaseCreate
) -> ReleasePublic:
    """Release the model to recipients every contributor's policy allows (``model_released``).

    Refused with 403 ``server.release_denied`` and every failed check otherwise.
    """
    return provenance.release(services, digest, body.recipients, member)


@router.post(
    "/{digest}/retrain-without",
    status_code=201,
    response_model=RetrainPublic,
    responses=WRITE_ERRORS,
)
def retrain_without(
    services: ServicesDep, member: WriterDep, digest: DigestPath, body: RetrainCreate
) -> RetrainPublic:
    """Record a job rebuilding the model without a revoked site; returns its starting parent."""
    return provenance.retrain_without(services, digest, body.site, member)
