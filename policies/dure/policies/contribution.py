r"""What a factory signs when it contributes to a round, and the digest of a model.

Two documents and one digest, shared byte for byte by the factory and the
coordinator:

:class:`ContributionClaim` (``dure/contribution/v1``, DSSE kind ``contribution``)
    Signed by the site's Ed25519 key and sent with every update: the job
    (``job_id`` and ``job_digest``, the id of the signed manifest), the round, the
    site, the digest of the update (:func:`state_digest`), the number of training
    examples, the Merkle root of the commitments of the episodes used
    (``episodes_root``), the id of the usage policy the factory evaluated, and
    when it was issued.

:class:`NodeBinding` (``dure/node-binding/v1``, DSSE kind ``request``)
    Signed by the site's key to answer the coordinator's identification
    challenge: "Flower node ``node_id`` of run ``run_id`` acts for ``site``"; the
    coordinator's fresh ``nonce`` makes it unusable in another run.

:func:`state_digest`
    The hex SHA-256 of a state dict (model or update) over this encoding,
    version 1, the exact bytes hashed::

        b"dure/state-dict/v1\n"
        for each tensor, in ascending code-point order of its name:
            header  = f"{name} {typestr} {shape}\n" in UTF-8
            payload = the tensor's bytes, C-contiguous, little-endian

    ``typestr`` is numpy's little-endian type string (``<f4``, ``<f8``, ``<i8``,
    ``|b1``…) and ``shape`` the decimal dimensions joined by ``x`` (empty for a
    scalar).  Names may not contain whitespace, so the header is unambiguous and
    the payload length follows from it.  Flower's ``ArrayRecord.object_id`` is
    not used: it hashes Flower's own serialisation, which may change between
    Flower versions; this digest depends only on names, dtypes, shapes and
    values.

:func:`epsilon_spent_by`
    The ε a site's data has already spent, read from verified
    ``aggregate_committed`` entries: for each job, the largest ``epsilon_spent``
    of the aggregates the site contributed to (a job's entries record its
    cumulative ε, an upper bound for every contributor), summed over jobs
    (basic composition across jobs).  The coordinator reads it from its ledger
    before admission; a factory reads it from the receipts it keeps, so it
    checks its ε budget without trusting the coordinator's arithmetic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, StrictInt, StrictStr

from dure.policies.document import CanonicalDocument
from dure.policies.encoding import HexDigest
from dure.policies.entries import AggregateCommitted, LedgerEntry
from dure.policies.errors import EncodingError
from dure.policies.literals import HexDigestText, Name, SiteUrn, Timestamp

__all__ = [
    "STATE_DICT_DOMAIN",
    "ContributionClaim",
    "NodeBinding",
    "epsilon_spent_by",
    "state_digest",
]

STATE_DICT_DOMAIN = b"dure/state-dict/v1\n"
"""Domain separator that starts the encoding hashed by :func:`state_digest`."""

_TENSOR_NAME = re.compile(r"\S{1,256}\Z")
_DECIMAL_ID = Annotated[StrictStr, Field(pattern=r"^(0|[1-9][0-9]{0,19})$")]


def state_digest(tensors: Mapping[str, npt.NDArray[Any]]) -> HexDigest:
    """Return the hex SHA-256 of ``tensors`` over the encoding of the module docstring.

    Raises
    ------
    EncodingError
        If a name is empty, longer than 256 characters or holds whitespace, or
        a tensor is not a numeric or boolean numpy array.
    """
    hasher = hashlib.sha256(STATE_DICT_DOMAIN)
    for name in sorted(tensors):
        if not _TENSOR_NAME.match(name):
            raise EncodingError(
                f"tensor name {name[:80]!r} must be 1-256 characters without whitespace"
            )
        array = _little_endian(tensors[name], name)
        shape = "x".join(str(dim) for dim in array.shape)
        hasher.update(f"{name} {array.dtype.str} {shape}\n".encode())
        hasher.update(array.tobytes(order="C"))
    return HexDigest(hasher.hexdigest())


def _little_endian(value: npt.NDArray[Any], name: str) -> npt.NDArray[Any]:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise EncodingError(f"tensor {name!r} has dtype {array.dtype}, not a number or boolean")
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


class ContributionClaim(CanonicalDocument):
    """A site's signed statement about one update it sent (see the module docstring).

    Shape::

        {"type": "dure/contribution/v1", "job_id": "<name>", "job_digest": "<64 hex>",
         "round": <int >= 1>, "site": "urn:dure:site:<name>", "update_digest": "<64 hex>",
         "examples": <int >= 0>, "episodes_root": "<64 hex>", "policy_id": "<64 hex>",
         "issued": "<timestamp>"}
    """

    document_kind = "contribution claim"

    type: Literal["dure/contribution/v1"] = "dure/contribution/v1"
    job_id: Name
    job_digest: HexDigestText
    round: StrictInt = Field(ge=1, le=1_000_000)
    site: SiteUrn
    update_digest: HexDigestText
    examples: StrictInt = Field(ge=0, le=2**53 - 1)
    episodes_root: HexDigestText
    policy_id: HexDigestText
    issued: Timestamp


class NodeBinding(CanonicalDocument):
    """A site's signed answer to an identification challenge (see the module docstring).

    ``node_id`` and ``run_id`` are decimal strings (Flower ids are unsigned 64-bit,
    beyond the integers canonical JSON carries exactly); ``nonce`` is the
    coordinator's challenge as 64 hex characters.
    """

    document_kind = "node binding"

    type: Literal["dure/node-binding/v1"] = "dure/node-binding/v1"
    site: SiteUrn
    node_id: _DECIMAL_ID
    run_id: _DECIMAL_ID
    nonce: HexDigestText
    issued: Timestamp


def epsilon_spent_by(
    entries: Iterable[LedgerEntry], site: str, *, exclude_job: str | None = None
) -> Decimal:
    """Return the ε already spent on ``site``'s data (see the module docstring).

    Parameters
    ----------
    entries
        Verified ledger entries (any kinds; only ``aggregate_committed`` count).
    site
        The site's URN, ``urn:dure:site:<name>``.
    exclude_job
        A job id to leave out (the job being evaluated counts its own ε in full).
    """
    per_job: dict[str, Decimal] = {}
    for entry in entries:
        if (
            isinstance(entry, AggregateCommitted)
            and entry.epsilon_spent is not None
            and site in entry.contributors
            and entry.job_id != exclude_job
        ):
            spent = Decimal(entry.epsilon_spent)
            per_job[entry.job_id] = max(spent, per_job.get(entry.job_id, spent))
    return sum(per_job.values(), Decimal(0))
