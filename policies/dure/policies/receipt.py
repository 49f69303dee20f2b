"""Ledger receipts: proof that an entry is in the log a signed checkpoint commits to.

When the coordinator ledgers a factory's contribution it returns a
:class:`Receipt`: the entry's index, the RFC 9162 inclusion proof of its leaf in
the tree of ``size`` entries, and the log's signed C2SP checkpoint for that size.
The factory keeps it with the entry's exact bytes and checks both with
:func:`verify_receipt` against the ledger key it pinned; later, consistency proofs
between checkpoints show the coordinator never rewrote what the receipt covers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from dure.policies.checkpoint import open_checkpoint
from dure.policies.encoding import b64encode, digest_from_b64
from dure.policies.errors import DocumentError, EncodingError, ProofError
from dure.policies.merkle import leaf_hash, verify_inclusion
from dure.policies.note import Ed25519Verifier

__all__ = ["Receipt", "verify_receipt"]

_MAX_SIZE = 2**64 - 1  # SPEC: c2sp.org/tlog-checkpoint, tree sizes are uint64


def _check_b64_digest(text: str) -> str:
    try:
        digest_from_b64(text)
    except EncodingError as exc:
        raise ValueError(exc.message) from exc
    return text


class Receipt(BaseModel):
    """Proof that entry ``index`` is in the log a signed checkpoint commits to.

    ``hashes`` is the RFC 9162 inclusion proof (base64 SHA-256 digests) of the leaf
    at ``index`` in the tree of ``size`` entries; ``checkpoint`` is the log's signed
    C2SP checkpoint note for that size.  A factory keeps the receipt with the
    entry's bytes and checks both with :func:`verify_receipt`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: Annotated[StrictInt, Field(ge=0, le=_MAX_SIZE)]
    size: Annotated[StrictInt, Field(ge=1, le=_MAX_SIZE)]
    hashes: tuple[Annotated[StrictStr, AfterValidator(_check_b64_digest)], ...]
    checkpoint: StrictStr

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "receipt") -> Receipt:
        """Parse a receipt from JSON (any key order and whitespace).

        Raises
        ------
        DocumentError
            If the JSON is malformed or does not describe a receipt.
        """
        try:
            return cls.model_validate_json(data, strict=True)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "(document)"
            raise DocumentError(f"{source}: invalid receipt: {where}: {first['msg']}") from exc

    def to_json(self) -> str:
        """Return the receipt as compact JSON; ``from_json(r.to_json()) == r``."""
        return self.model_dump_json()

    @classmethod
    def create(cls, index: int, size: int, hashes: list[bytes], checkpoint: str) -> Receipt:
        """Build a receipt from raw proof hashes (encoded as base64 here)."""
        return cls(
            index=index,
            size=size,
            hashes=tuple(b64encode(h) for h in hashes),
            checkpoint=checkpoint,
        )

    def proof(self) -> list[bytes]:
        """Return the inclusion proof hashes as raw digests."""
        return [bytes(digest_from_b64(h)) for h in self.hashes]


def verify_receipt(
    receipt: Receipt,
    entry_bytes: bytes,
    verifier_key: Ed25519Verifier | str,
    *,
    origin: str | None = None,
) -> None:
    """Check that ``entry_bytes`` is leaf ``receipt.index`` of the signed checkpoint.

    Parameters
    ----------
    receipt
        The receipt the coordinator returned.
    entry_bytes
        The exact leaf bytes of the entry (as :meth:`LedgerEntry.to_bytes` gives).
    verifier_key
        The ledger's note verifier key, or its ``name+keyid+base64`` string.
    origin
        The log origin the checkpoint must name, when the caller pins it.

    Raises
    ------
    NoteError
        If the checkpoint is malformed or not signed by ``verifier_key``.
    ProofError
        If the checkpoint's origin or size differs from what is expected, or the
        inclusion proof does not lead from the entry's leaf hash to its root.
    """
    verifier = (
        Ed25519Verifier.from_vkey(verifier_key) if isinstance(verifier_key, str) else verifier_key
    )
    checkpoint = open_checkpoint(receipt.checkpoint, verifier)
    if origin is not None and checkpoint.origin != origin:
        raise ProofError(f"receipt checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    if checkpoint.size != receipt.size:
        raise ProofError(
            f"receipt claims tree size {receipt.size} but its checkpoint has size {checkpoint.size}"
        )
    verify_inclusion(
        leaf_hash(bytes(entry_bytes)),
        receipt.index,
        receipt.size,
        receipt.proof(),
        checkpoint.root_hash,
    )
