"""Validating replies before aggregation: the update, the signed claim, the contributors.

Pure (numpy).  An update is accepted only if

1. it has exactly the global model's tensor names, and each tensor its shape
   and dtype;
2. every value is finite;
3. the L2 norm of ``update - global`` over all tensors (float64) is at most the
   job's ``aggregation.norm_bound``;
4. its contribution claim verifies with the site's registered key and names
   this job (id and digest), this round, this site, the site's registered
   policy, the digest of exactly the arrays received, and the number of
   examples the reply reports (at least 1).

Then the contributors: a round aggregates only if the replies that survive
are at least ``max(job.min_contributors, min_contributors_required(policies of
the contributors))``.  A contributor whose own policy asks for more than can be
met is dropped first (:func:`settle_contributors`); if the rest are still too
few, the round is aborted and nothing is aggregated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from dure.policies.contribution import ContributionClaim, state_digest
from dure.policies.dsse import Envelope
from dure.policies.errors import DureError
from dure.policies.evaluation import min_contributors_required
from dure.policies.job import JobManifest
from dure.policies.policy import UsagePolicy
from dure.policies.signed import Opened, open_document
from dure.server.federation.admission import largest_feasible
from dure.server.federation.registry import RegisteredSite

__all__ = [
    "ClaimContext",
    "Settlement",
    "check_claim",
    "check_update",
    "settle_contributors",
    "update_norm",
]

Arrays = Mapping[str, npt.NDArray[Any]]


def check_update(update: Arrays, reference: Arrays, norm_bound: Decimal) -> list[str]:
    """Return why ``update`` may not be aggregated with global model ``reference`` (or [])."""
    missing, extra = sorted(set(reference) - set(update)), sorted(set(update) - set(reference))
    if missing or extra:
        return [f"tensor names differ from the global model: missing {missing}, unexpected {extra}"]
    problems = [
        f"tensor {name!r}: {update[name].dtype}{list(update[name].shape)} where the global "
        f"model has {reference[name].dtype}{list(reference[name].shape)}"
        for name in sorted(reference)
        if update[name].shape != reference[name].shape
        or update[name].dtype != reference[name].dtype
    ]
    if problems:
        return problems
    bad = [name for name in sorted(update) if not np.isfinite(update[name]).all()]
    if bad:
        return [f"non-finite values (NaN or infinity) in tensors {bad[:10]}"]
    norm = update_norm(update, reference)
    if not norm <= float(norm_bound):
        return [f"update L2 norm {norm:.6g} exceeds the job's norm bound {norm_bound}"]
    return []


def update_norm(update: Arrays, reference: Arrays) -> float:
    """Return the L2 norm of ``update - reference`` over every tensor, in float64."""
    total = 0.0
    for name, value in reference.items():  # plain reductions: no BLAS threads to contend for
        delta = np.asarray(update[name], dtype=np.float64) - np.asarray(value, dtype=np.float64)
        total += float(np.square(delta).sum())
    return float(np.sqrt(total))


@dataclass(frozen=True, slots=True)
class ClaimContext:
    """What a claim must agree with: the job, the round and the replying site."""

    job: JobManifest
    job_digest: str
    round: int
    site: RegisteredSite


def check_claim(
    envelope_json: bytes, context: ClaimContext, update: Arrays, examples: int
) -> tuple[Opened[ContributionClaim] | None, list[str]]:
    """Verify a reply's signed claim against the site's key and what was received.

    Returns
    -------
    tuple
        The opened claim (``None`` if it does not verify) and every reason to
        reject it (empty when it is accepted).
    """
    site = context.site
    try:
        opened = open_document(
            Envelope.from_json(envelope_json),
            "contribution",
            ContributionClaim,
            {site.verify_key.key_id: site.verify_key},
        )
    except DureError as exc:
        return None, [f"contribution claim does not verify with {site.name}'s key: {exc.message}"]
    claim = opened.document
    policy_id = site.policy.policy_id if site.policy is not None else None
    expected = {
        "job_id": context.job.job_id,
        "job_digest": context.job_digest,
        "round": context.round,
        "site": site.urn,
        "policy_id": policy_id,
        "update_digest": state_digest(update),
        "examples": examples,
    }
    problems = [
        f"claim {field} is {getattr(claim, field)!s:.80} but should be {value!s:.80}"
        for field, value in expected.items()
        if getattr(claim, field) != value
    ]
    if examples < 1:
        problems.append(f"the reply reports {examples} training examples")
    return opened, problems


@dataclass(frozen=True, slots=True)
class Settlement:
    """Which accepted replies a round aggregates, or why it is aborted.

    ``kept`` are the contributors aggregated; ``dropped`` maps a site whose own
    policy asks for more contributors than remain to the reason; ``aborted`` is
    the reason the whole round is aborted (``None`` when it aggregates).
    """

    kept: frozenset[str]
    dropped: dict[str, str]
    required: int
    aborted: str | None


def settle_contributors(
    job: JobManifest, round: int, policies: Mapping[str, UsagePolicy]
) -> Settlement:
    """Decide which accepted replies (site URN -> its policy) a round may aggregate."""
    requirements = {site: min_contributors_required([p]) for site, p in policies.items()}
    kept = largest_feasible(requirements)
    dropped = {
        site: f"round {round}: the site's policy requires at least {requirements[site]} "
        f"contributors per aggregate, only {len(kept)} valid replies can be aggregated with it"
        for site in sorted(set(policies) - kept)
    }
    required = max(job.min_contributors, min_contributors_required(policies[s] for s in kept))
    if len(kept) >= required and kept:
        return Settlement(kept, dropped, required, None)
    aborted = (
        f"round {round} aborted: {len(policies)} valid contributions, {len(kept)} of them "
        f"aggregable together, at least {required} required (job minimum "
        f"{job.min_contributors}, strictest policy of the contributors "
        f"{min_contributors_required(policies.values())})"
    )
    return Settlement(frozenset(), dropped, required, aborted)
