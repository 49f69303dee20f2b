"""Revocation: a data owner withdrawing a usage policy it signed.

A :class:`Revocation` names the policy by its id (the SHA-256 of its canonical
bytes) and is signed by the same site.  From the moment it is known, every
evaluation of that policy denies (``RoundContext.revoked``).  What happens to
models already trained is what the *policy* promised in ``dure:onRevocation``:

- ``exclude-future``: the site's data is left out of every later round and job;
  models already trained stay as they are;
- ``retrain-without``: in addition, every model whose lineage contains the
  site's contributions is retrained without them, from the last model that did
  not contain them.

A revocation may ask for less than its policy promised, never for more:
:func:`effective_mode` returns the weaker of the two.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictStr

from dure.policies.document import CanonicalDocument
from dure.policies.errors import DocumentError
from dure.policies.literals import HexDigestText, SiteUrn, Timestamp
from dure.policies.policy import RevocationMode, UsagePolicy
from dure.policies.terms import REVOCATION_MODES

__all__ = ["Revocation", "effective_mode"]


class Revocation(CanonicalDocument):
    """A site's signed withdrawal of one of its usage policies.

    Shape::

        {"type": "dure/revocation/v1", "site": "urn:dure:site:<name>",
         "policy_id": "<64 hex>", "issued": "<timestamp>",
         "mode": "exclude-future" | "retrain-without", "reason": "<text>"}
    """

    document_kind = "revocation"

    type: Literal["dure/revocation/v1"]
    site: SiteUrn
    policy_id: HexDigestText
    issued: Timestamp
    mode: RevocationMode
    reason: StrictStr = Field(max_length=2000)


def effective_mode(policy: UsagePolicy, revocation: Revocation) -> RevocationMode:
    """Return what ``revocation`` of ``policy`` means: the weaker of the two modes.

    Raises
    ------
    DocumentError
        If the revocation names another policy or comes from another site.
    """
    if revocation.policy_id != policy.document_id():
        raise DocumentError(
            f"revocation names policy {revocation.policy_id}, "
            f"not {policy.uid} ({policy.document_id()})",
            hint="Apply a revocation only to the policy whose id it names.",
        )
    if revocation.site != policy.site:
        raise DocumentError(
            f"revocation comes from {revocation.site}, but {policy.uid} belongs to {policy.site}",
            hint="Only the site that signed a policy can revoke it.",
        )
    return min(policy.on_revocation, revocation.mode, key=REVOCATION_MODES.index)
