"""Membership: who am I, and read tokens for members that cannot sign every read."""

from __future__ import annotations

from fastapi import APIRouter

from dure.policies.literals import format_timestamp
from dure.server.api.auth import Member
from dure.server.api.deps import ReaderDep, ServicesDep, WriterDep
from dure.server.api.outputs import MemberPublic, TokenPublic
from dure.server.api.routes.common import MEMBER_ERRORS

__all__ = ["me", "member_public", "router", "token"]

router = APIRouter(prefix="/v1", tags=["members"], responses=MEMBER_ERRORS)


def member_public(member: Member) -> MemberPublic:
    """The API view of an authenticated member."""
    return MemberPublic(
        key_id=member.key_id, role=member.role, site=member.site, audits=sorted(member.audits)
    )


@router.post("/auth/token", response_model=TokenPublic)
def token(services: ServicesDep, member: WriterDep) -> TokenPublic:
    """Exchange a signed request (empty body) for a short-lived read token."""
    value, expires = services.auth.issue_token(member)
    return TokenPublic(token=value, expires=format_timestamp(expires), member=member_public(member))


@router.get("/me", response_model=MemberPublic)
def me(member: ReaderDep) -> MemberPublic:
    """The authenticated member: key id, role, own site, sites it audits."""
    return member_public(member)
