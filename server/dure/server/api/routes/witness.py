"""Witness routes: fetch the pending checkpoint, post a cosignature (C2SP tlog-cosignature).

The coordinator publishes a checkpoint (``GET /v1/ledger/checkpoint``) only
once the consortium's quorum of witnesses cosigned it
(:class:`~dure.server.ledger.publication.Publication`).  A witness (a factory,
``dure factory witness cosign --url``) fetches the pending checkpoint, checks it
extends the one it cosigned before, appends its ``cosignature/v1`` line and
posts the note back as ``text/plain``.

Both routes are public: a cosignature authenticates itself, being an Ed25519
signature by a witness key the consortium configured over that exact
checkpoint; anything else is refused (``403 server.witness_unknown``,
``401 server.witness_signature``, ``409 server.witness_stale``,
``422 server.cosignature``) and nothing is stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse

from dure.server.api.deps import RawBodyDep, ServicesDep
from dure.server.api.outputs import Problem

__all__ = ["CosignaturePublic", "cosign", "pending", "router"]

_DESCRIPTIONS: dict[int | str, str] = {
    401: "A configured witness's cosignature does not verify",
    403: "No cosignature by a configured witness",
    409: "Not the pending checkpoint (stale)",
    413: "Body too large",
    422: "Not a signed checkpoint note",
    503: "Storage unavailable",
    "default": "Any other error, as a problem",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text} for status, text in _DESCRIPTIONS.items()
}
router = APIRouter(prefix="/v1/witness", tags=["witness"])
_NOTE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"schema": {"type": "string", "maxLength": 65536}}},
        "description": "The pending checkpoint note with the witness's cosignature line appended",
    }
}


class CosignaturePublic(BaseModel):
    """What a posted cosignature achieved."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(description="Tree size of the cosigned checkpoint")
    accepted: list[str] = Field(description="Configured witnesses whose cosignature was posted")
    cosigned: list[str] = Field(description="Every configured witness that cosigned it so far")
    quorum: int = Field(description="Cosignatures needed to publish")
    published: bool = Field(description="Whether the checkpoint is now published")


@router.get("/checkpoint", response_class=PlainTextResponse, responses={503: _ERRORS[503]})
def pending(services: ServicesDep) -> PlainTextResponse:
    """The pending checkpoint: the newest the coordinator signed, for witnesses to cosign."""
    return PlainTextResponse(services.publication.pending())


@router.post(
    "/cosignatures", response_model=CosignaturePublic, responses=_ERRORS, openapi_extra=_NOTE_BODY
)
async def cosign(services: ServicesDep, body: RawBodyDep) -> CosignaturePublic:
    """Post the pending checkpoint with witness cosignatures; published at the quorum."""
    outcome = await run_in_threadpool(services.publication.submit, body, services.clock())
    return CosignaturePublic(
        size=outcome.size,
        accepted=list(outcome.accepted),
        cosigned=list(outcome.cosigned),
        quorum=outcome.quorum,
        published=outcome.published,
    )
