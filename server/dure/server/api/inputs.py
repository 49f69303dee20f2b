"""Request bodies the API accepts (``XCreate`` models), strictly validated.

Every body is a small JSON object with exactly the fields listed; unknown
fields, wrong types, oversized strings and lists are refused with 422 before a
route runs.  Signed documents arrive as DSSE envelopes (:class:`EnvelopeCreate`);
the route then re-reads the exact body bytes with the kernel's strict parser,
verifies the signature over the received payload and parses the document.  No
body carries raw data, episodes or weights: the largest accepted field is a
signed document's payload.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from dure.policies.literals import PartyUrn, SiteUrn

__all__ = [
    "PARTY_PATTERN",
    "SITE_PATTERN",
    "AuditorCreate",
    "EnvelopeCreate",
    "ReleaseCreate",
    "RetrainCreate",
    "SignatureCreate",
]

_BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"
_NAME = r"[a-z0-9][a-z0-9._-]{0,62}"
PARTY_PATTERN = rf"^urn:dure:(site|consortium|coordinator|org):{_NAME}$"
SITE_PATTERN = rf"^urn:dure:site:{_NAME}$"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SignatureCreate(_Body):
    """One DSSE signature: the signer's key id and the base64 signature."""

    keyid: StrictStr = Field(min_length=1, max_length=128)
    sig: StrictStr = Field(min_length=4, max_length=256, pattern=_BASE64)


class EnvelopeCreate(_Body):
    """A signed document: a DSSE envelope (``payload`` and ``sig`` in base64)."""

    payloadType: StrictStr = Field(min_length=1, max_length=128)  # noqa: N815 (DSSE field name)
    payload: StrictStr = Field(min_length=4, max_length=131_072, pattern=_BASE64)
    signatures: list[SignatureCreate] = Field(min_length=1, max_length=16)


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists a recipient twice")
    return values


class ReleaseCreate(_Body):
    """Release a model to ``recipients`` (party URNs, e.g. ``urn:dure:org:acme``)."""

    recipients: Annotated[
        list[Annotated[PartyUrn, Field(pattern=PARTY_PATTERN)]],
        Field(min_length=1, max_length=100),
        AfterValidator(_unique),
    ]


class RetrainCreate(_Body):
    """Rebuild a model without the data of ``site`` (which revoked its policy)."""

    site: Annotated[SiteUrn, Field(pattern=SITE_PATTERN)]


class AuditorCreate(_Body):
    """Name an auditor: its Ed25519 public key (base64 of the 32 raw bytes) and a label."""

    name: StrictStr = Field(min_length=1, max_length=100, pattern=r"^[\x20-\x7e]+$")
    key: StrictStr = Field(min_length=44, max_length=44, pattern=_BASE64)
