"""Audit ledger entries: what the coordinator records, as RFC 8785 canonical bytes.

Each entry is a small JSON object whose canonical bytes (:meth:`LedgerEntry.to_bytes`)
are, unchanged, one leaf of the RFC 9162 Merkle tree: the leaf hash is
``SHA-256(0x00 ‖ entry bytes)``.  Entries hold digests and identifiers only, never
raw data or model weights.  Every entry has three common fields::

    {"kind": "<kind>", "v": 1, "time": "YYYY-MM-DDTHH:MM:SSZ", ...}

and the fields of its kind (``kind`` is the discriminator):

=========================  =====================================================
kind                       fields
=========================  =====================================================
``site_registered``        site, identity_id, signing_key_id, supernode_key_sha256
``policy_registered``      site, policy_id, expires
``policy_revoked``         site, policy_id, revocation_id, mode
``job_signed``             job_id, job_digest, operator_key_id, purpose
``site_admitted``          job_id, site, policy_id
``site_refused``           job_id, site, policy_id (or null), reasons
``statistics_shared``      job_id, site, stats_digest, episodes, policy_id
``round_opened``           job_id, round, sites, parent_model (or null)
``contribution_accepted``  job_id, round, site, update_digest, examples,
                           episodes_root, policy_id, claim_id, secure
``contribution_rejected``  job_id, round, site, reasons
``aggregate_committed``    job_id, round, model_digest, parent_model (or null),
                           contributors, epsilon_spent (decimal string or null),
                           strategy
``model_released``         model_digest, recipients
=========================  =====================================================

``statistics_shared`` records that a site's feature statistics (its answer to
the statistics query before round 1) left the factory: ``stats_digest`` is
:func:`statistics_digest` of the answer as received.  Digests and ids are 64
lowercase hex characters, sites ``urn:dure:site:<name>``,
job ids names, decimals strings.  :meth:`LedgerEntry.from_bytes` accepts only
bytes that are exactly the canonical form of a valid entry, so one entry has one
leaf.  Receipts (:mod:`dure.policies.receipt`) let a factory prove that an
entry is in the log a signed checkpoint commits to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from dure.policies.canonical import JsonValue, canonical_bytes, parse_canonical
from dure.policies.document import CanonicalDocument
from dure.policies.encoding import HexDigest
from dure.policies.errors import DocumentError, EncodingError
from dure.policies.job import AggregationStrategy
from dure.policies.literals import (
    DecimalText,
    HexDigestText,
    Name,
    PartyUrn,
    PurposeId,
    SiteUrn,
    Timestamp,
)
from dure.policies.policy import RevocationMode

__all__ = [
    "ENTRY_KINDS",
    "AggregateCommitted",
    "AnyLedgerEntry",
    "ContributionAccepted",
    "ContributionRejected",
    "JobSigned",
    "LedgerEntry",
    "ModelReleased",
    "PolicyRegistered",
    "PolicyRevoked",
    "RoundOpened",
    "SiteAdmitted",
    "SiteRefused",
    "SiteRegistered",
    "StatisticsShared",
    "statistics_digest",
]

_MAX_REASONS = 64
_MAX_PARTIES = 10_000


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"lists a value twice: {list(values)[:10]}")
    return values


Reasons = Annotated[
    tuple[Annotated[StrictStr, Field(min_length=1, max_length=2000)], ...],
    Field(min_length=1, max_length=_MAX_REASONS),
]
Sites = Annotated[tuple[SiteUrn, ...], Field(max_length=_MAX_PARTIES), AfterValidator(_unique)]
Parties = Annotated[tuple[PartyUrn, ...], Field(max_length=_MAX_PARTIES), AfterValidator(_unique)]
Round = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class LedgerEntry(CanonicalDocument):
    """Base of every ledger entry: ``kind``, version ``v`` (always 1) and ``time`` (UTC).

    Build an entry with its kind's class (``kind`` and ``v`` have defaults), read
    one with :meth:`from_bytes`.
    """

    document_kind: ClassVar[str] = "ledger entry"

    kind: str
    v: Literal[1] = 1
    time: Timestamp

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "ledger entry") -> Self:
        """Parse a leaf: strict RFC 8785 canonical JSON of one valid entry.

        On a subclass, the entry must also be of that kind.

        Raises
        ------
        EncodingError
            If ``data`` is not strict canonical JSON (not UTF-8, duplicate keys,
            floats, whitespace, unsorted keys…).
        DocumentError
            If it is not an object, its ``kind`` is unknown, a field is missing,
            unknown or invalid, or its kind is not ``cls``'s.
        """
        if not isinstance(data, bytes | bytearray):
            raise EncodingError(f"{source}: a ledger entry is bytes, got {type(data).__name__}")
        value = parse_canonical(bytes(data))
        model = _model_for(value, source)
        entry = model.from_value(value, source=source)
        if entry.to_bytes() != data:
            raise DocumentError(
                f"{source}: canonical JSON but not the canonical form of a {entry.kind} entry",
                hint="Produce entries with Dure (LedgerEntry subclasses, then to_bytes()).",
            )
        if not isinstance(entry, cls):
            raise DocumentError(f"{source}: expected a {cls.__name__} entry, got {entry.kind!r}")
        return entry

    def to_bytes(self) -> bytes:
        """Return the entry's RFC 8785 canonical bytes: exactly the Merkle leaf."""
        return self.to_canonical_bytes()


class SiteRegistered(LedgerEntry):
    """A site joined the registry with its signed identity."""

    kind: Literal["site_registered"] = "site_registered"
    site: SiteUrn
    identity_id: HexDigestText
    signing_key_id: HexDigestText
    supernode_key_sha256: HexDigestText


class PolicyRegistered(LedgerEntry):
    """A site's signed usage policy was registered."""

    kind: Literal["policy_registered"] = "policy_registered"
    site: SiteUrn
    policy_id: HexDigestText
    expires: Timestamp


class PolicyRevoked(LedgerEntry):
    """A site revoked one of its policies (``mode`` is the effective revocation mode)."""

    kind: Literal["policy_revoked"] = "policy_revoked"
    site: SiteUrn
    policy_id: HexDigestText
    revocation_id: HexDigestText
    mode: RevocationMode


class JobSigned(LedgerEntry):
    """The consortium operator signed a job manifest (``job_digest``: its document id)."""

    kind: Literal["job_signed"] = "job_signed"
    job_id: Name
    job_digest: HexDigestText
    operator_key_id: HexDigestText
    purpose: PurposeId


class SiteAdmitted(LedgerEntry):
    """A site's policy allows the job: the site may be sampled."""

    kind: Literal["site_admitted"] = "site_admitted"
    job_id: Name
    site: SiteUrn
    policy_id: HexDigestText


class SiteRefused(LedgerEntry):
    """A site was refused before sampling, with every reason (no policy: ``policy_id`` null)."""

    kind: Literal["site_refused"] = "site_refused"
    job_id: Name
    site: SiteUrn
    policy_id: HexDigestText | None
    reasons: Reasons


class StatisticsShared(LedgerEntry):
    """A site's feature statistics left the factory (the statistics query before round 1).

    ``stats_digest`` is :func:`statistics_digest` of the answer the coordinator
    accepted, ``episodes`` the number of episodes it summarises and ``policy_id``
    the policy the site was admitted under.
    """

    kind: Literal["statistics_shared"] = "statistics_shared"
    job_id: Name
    site: SiteUrn
    stats_digest: HexDigestText
    episodes: Annotated[StrictInt, Field(ge=0, le=2**53 - 1)]
    policy_id: HexDigestText


def statistics_digest(features: str, tasks: str, episodes: int) -> HexDigest:
    """Return the hex SHA-256 of a statistics answer, as recorded by ``statistics_shared``.

    The hashed bytes are the RFC 8785 canonical JSON of
    ``{"episodes": episodes, "features": features, "tasks": tasks}``, where
    ``features`` and ``tasks`` are the answer's JSON texts exactly as sent.
    """
    value: JsonValue = {"episodes": episodes, "features": features, "tasks": tasks}
    return HexDigest(hashlib.sha256(canonical_bytes(value)).hexdigest())


class RoundOpened(LedgerEntry):
    """A round started with the sampled ``sites`` from model ``parent_model``."""

    kind: Literal["round_opened"] = "round_opened"
    job_id: Name
    round: Round
    sites: Sites
    parent_model: HexDigestText | None


class ContributionAccepted(LedgerEntry):
    """A site's update passed validation and entered the aggregate.

    ``update_digest`` is the digest of the update the coordinator saw (the masked
    contribution when ``secure`` is true); ``episodes_root`` the Merkle root of the
    episode commitments used; ``claim_id`` the id of the signed contribution claim.
    """

    kind: Literal["contribution_accepted"] = "contribution_accepted"
    job_id: Name
    round: Round
    site: SiteUrn
    update_digest: HexDigestText
    examples: Annotated[StrictInt, Field(ge=0, le=2**53 - 1)]
    episodes_root: HexDigestText
    policy_id: HexDigestText
    claim_id: HexDigestText
    secure: StrictBool


class ContributionRejected(LedgerEntry):
    """A site's reply was rejected (bad shape, non-finite, over the norm bound…)."""

    kind: Literal["contribution_rejected"] = "contribution_rejected"
    job_id: Name
    round: Round
    site: SiteUrn
    reasons: Reasons


class AggregateCommitted(LedgerEntry):
    """A round's aggregate: the new model, its parent, who contributed and ε spent."""

    kind: Literal["aggregate_committed"] = "aggregate_committed"
    job_id: Name
    round: Round
    model_digest: HexDigestText
    parent_model: HexDigestText | None
    contributors: Annotated[Sites, Field(min_length=1)]
    epsilon_spent: DecimalText | None
    strategy: AggregationStrategy


class ModelReleased(LedgerEntry):
    """A model was released to ``recipients``."""

    kind: Literal["model_released"] = "model_released"
    model_digest: HexDigestText
    recipients: Annotated[Parties, Field(min_length=1)]


AnyLedgerEntry = Annotated[
    SiteRegistered
    | PolicyRegistered
    | PolicyRevoked
    | JobSigned
    | SiteAdmitted
    | SiteRefused
    | StatisticsShared
    | RoundOpened
    | ContributionAccepted
    | ContributionRejected
    | AggregateCommitted
    | ModelReleased,
    Field(discriminator="kind"),
]
"""Any entry, discriminated on ``kind`` (for pydantic models that embed entries)."""

_MODELS: dict[str, type[LedgerEntry]] = {
    model.model_fields["kind"].default: model
    for model in (
        SiteRegistered,
        PolicyRegistered,
        PolicyRevoked,
        JobSigned,
        SiteAdmitted,
        SiteRefused,
        StatisticsShared,
        RoundOpened,
        ContributionAccepted,
        ContributionRejected,
        AggregateCommitted,
        ModelReleased,
    )
}
ENTRY_KINDS: tuple[str, ...] = tuple(_MODELS)
"""Every entry kind, in the order of DESIGN.md."""


def _model_for(value: object, source: str) -> type[LedgerEntry]:
    if not isinstance(value, Mapping):
        raise DocumentError(
            f"{source}: a ledger entry is a JSON object, got {type(value).__name__}"
        )
    kind = value.get("kind")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise DocumentError(
            f"{source}: kind {kind!r:.80} is not a ledger entry kind",
            hint=f"Use one of: {', '.join(ENTRY_KINDS)}.",
        )
    return model
