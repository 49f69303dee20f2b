"""FastAPI dependencies: the services, and the authenticated member of a request.

Routes take ``services: ServicesDep`` and ``member: ReaderDep`` (any member,
signed request or read token) or ``member: WriterDep`` (a signed request, as
every write must be).  The signature check reads the exact body bytes, so the
route and the check see the same bytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from dure.policies.dsse import PAYLOAD_TYPES, Envelope
from dure.policies.errors import DureError
from dure.policies.identity import SiteIdentity
from dure.policies.keys import VerifyKey
from dure.server.api.auth import Member
from dure.server.api.errors import AuthError
from dure.server.api.services import Services

__all__ = [
    "RawBodyDep",
    "ReaderDep",
    "RegistrantDep",
    "ServicesDep",
    "WriterDep",
    "get_services",
    "raw_body",
    "reader",
    "registrant",
    "writer",
]


async def get_services(request: Request) -> Services:
    """The services of the app answering ``request``."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _target(request: Request) -> str:
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return (path + (b"?" + query if query else b"")).decode("latin-1")


async def _signed(
    request: Request, services: Services, header: str, claimed: VerifyKey | None = None
) -> Member:
    body = await request.body()
    return await run_in_threadpool(
        services.auth.signed, header, request.method, _target(request), body, claimed=claimed
    )


async def reader(request: Request, services: ServicesDep) -> Member:
    """Any member: a signed request, or a bearer token from ``POST /v1/auth/token``."""
    header = request.headers.get("dure-request")
    if header is not None:
        return await _signed(request, services, header)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return await run_in_threadpool(services.auth.token, token.strip())
    raise AuthError("this route is for members: no Dure-Request header and no bearer token")


async def writer(request: Request, services: ServicesDep) -> Member:
    """A member whose request is signed (every write)."""
    header = request.headers.get("dure-request")
    if header is None:
        raise AuthError("writes must be signed: no Dure-Request header")
    return await _signed(request, services, header)


async def registrant(request: Request, services: ServicesDep) -> Member:
    """Like :func:`writer`, also accepting the key a site identity in the body declares."""
    header = request.headers.get("dure-request")
    if header is None:
        raise AuthError("writes must be signed: no Dure-Request header")
    return await _signed(request, services, header, _declared_key(await request.body()))


def _declared_key(body: bytes) -> VerifyKey | None:
    """The key a site identity in ``body`` declares; its refusal if the key is refused.

    A body that is not an identity envelope declares no key (the request must then
    be signed by a member).  An identity whose key the kernel refuses (small-order,
    non-canonical) is refused with the kernel's reason rather than as "no member".
    """
    try:
        envelope = Envelope.from_json(body)
    except DureError:
        return None
    if envelope.payload_type != PAYLOAD_TYPES["site-identity"]:
        return None
    return SiteIdentity.from_canonical_bytes(envelope.payload).verify_key


async def raw_body(request: Request) -> bytes:
    """The exact body bytes (already read and cached by the signature check)."""
    return await request.body()


RawBodyDep = Annotated[bytes, Depends(raw_body)]
ReaderDep = Annotated[Member, Depends(reader)]
WriterDep = Annotated[Member, Depends(writer)]
RegistrantDep = Annotated[Member, Depends(registrant)]
