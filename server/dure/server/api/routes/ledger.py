"""The ledger read API, exactly as docs/ledger-format.md specifies; public, for auditors.

The routes hold digests and identifiers only (the ledger never holds raw data),
so they need no membership: an auditor verifies them against the ledger key it
pinned.  The checkpoint is the newest *published* one: with a witness quorum
configured, the newest that quorum cosigned, its cosignature lines appended
(:class:`~dure.server.ledger.publication.Publication`).  JSON bodies are
serialised with orjson straight from the store's answer (these routes are the
hot path of receipts and audits).  A corrupt ledger database answers ``500
server.ledger`` with a problem naming the corrupt entry (see :func:`entries`).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from starlette.responses import PlainTextResponse, Response

from dure.policies.encoding import b64encode
from dure.server.api.deps import ServicesDep
from dure.server.api.errors import RequestError
from dure.server.api.outputs import (
    ConsistencyProofPublic,
    EntriesPublic,
    InclusionProofPublic,
    Problem,
)
from dure.server.api.routes.common import PUBLIC_ERRORS

__all__ = ["checkpoint", "consistency", "entries", "inclusion", "public_key", "router"]

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], responses=PUBLIC_ERRORS)
_MAX = 2**53 - 1
Count = Annotated[int, Query(ge=0, le=_MAX)]
_UNPUBLISHED: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No checkpoint has reached the witness quorum yet"}
}


def _json(value: object) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get("/checkpoint", response_class=PlainTextResponse, responses=_UNPUBLISHED)
def checkpoint(services: ServicesDep) -> PlainTextResponse:
    """The latest published checkpoint note (C2SP tlog-checkpoint) and its cosignatures.

    With a witness quorum configured, the newest checkpoint that quorum cosigned
    (``404 server.unpublished`` until one did); otherwise the latest signed one.
    """
    return PlainTextResponse(services.publication.checkpoint())


@router.get("/public-key", response_class=PlainTextResponse)
def public_key(services: ServicesDep) -> PlainTextResponse:
    """The note verifier key ``name+keyid+base64``, ``text/plain``."""
    return PlainTextResponse(services.ledger.public_key())


@router.get("/entries", response_model=EntriesPublic)
def entries(services: ServicesDep, start: Count, end: Count) -> Response:
    """Entries ``start`` (inclusive) to ``end`` (exclusive): index and base64 leaf bytes.

    A database altered under the ledger (a row missing below the head, a leaf not
    stored as bytes) is a fault on the coordinator's side, not the caller's: the
    route answers ``500 server.ledger`` with a problem document whose detail starts
    ``ledger corrupt:`` and names the entry, and serves no part of the range.
    """
    page = services.settings.max_page
    if end - start > page:
        raise RequestError(f"entries [{start}, {end}) is more than {page} entries; page through")
    rows = services.ledger.store.entries(start, end)
    return _json(
        {"entries": [{"index": start + i, "entry": b64encode(e)} for i, e in enumerate(rows)]}
    )


@router.get("/proof/inclusion", response_model=InclusionProofPublic)
async def inclusion(services: ServicesDep, index: Count, size: Count) -> Response:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
    proof = await services.proofs.inclusion(index, size)
    return _json({"index": index, "size": size, "hashes": [b64encode(h) for h in proof]})


@router.get("/proof/consistency", response_model=ConsistencyProofPublic)
async def consistency(services: ServicesDep, first: Count, second: Count) -> Response:
    """RFC 9162 consistency proof from tree size ``first`` to ``second``."""
    proof = await services.proofs.consistency(first, second)
    return _json({"first": first, "second": second, "hashes": [b64encode(h) for h in proof]})
