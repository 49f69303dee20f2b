"""The factory as a witness: cosign the log's checkpoints only if they extend the last one.

SPEC: C2SP ``tlog-cosignature``.  :class:`FactoryWitness` keeps the last
checkpoint it cosigned in its home folder (``<home>/witness/checkpoints/``).
Shown a new checkpoint and a consistency proof from that size, it runs the pure
decision of :func:`dure.policies.audit.witness.decide`: it cosigns (Ed25519
``cosignature/v1`` with its :class:`~dure.policies.checkpoint.Cosigner`) only
a checkpoint the log's pinned key signed and that extends the one it cosigned,
keeps the new one, and otherwise refuses with the reason
(:class:`~dure.client.audit.errors.WitnessRefusedError`): a coordinator showing
this factory a different history than it showed before is caught here.

With a witness quorum configured, the coordinator publishes a checkpoint only
once enough witnesses cosigned it.  :class:`WitnessEndpoint` is the
coordinator's witness API (``GET /v1/witness/checkpoint`` for the pending
checkpoint, ``POST /v1/witness/cosignatures`` to hand the cosigned note back,
consistency proofs from the ledger read API), and
:meth:`FactoryWitness.cosign_pending` runs the whole round trip: fetch, check
consistency with the last cosigned checkpoint (refusing a fork, nothing
posted), cosign, keep, post.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dure.client.audit.errors import LedgerSourceError, WitnessRefusedError
from dure.client.audit.source import (
    MALFORMED_HINT,
    HttpLedgerSource,
    LedgerSource,
    open_client,
    problem_summary,
)
from dure.client.audit.state import CheckpointStore
from dure.policies.audit.witness import WitnessDecision, cosign_note, decide
from dure.policies.canonical import parse_json
from dure.policies.checkpoint import Checkpoint, Cosigner, open_checkpoint
from dure.policies.errors import EncodingError, NoteError
from dure.policies.note import Ed25519Verifier

__all__ = ["FactoryWitness", "Submitted", "WitnessEndpoint"]

_PENDING, _COSIGNATURES = "/v1/witness/checkpoint", "/v1/witness/cosignatures"


@dataclass(frozen=True, slots=True)
class Submitted:
    """The coordinator's answer to a posted cosignature."""

    note: str
    """The note this witness cosigned (as kept in its home)."""
    size: int
    cosigned: tuple[str, ...]
    quorum: int
    published: bool

    def describe(self) -> str:
        """One line: how far the checkpoint is from publication."""
        state = "published" if self.published else "not yet published"
        return (
            f"checkpoint of size {self.size}: {len(self.cosigned)} of {self.quorum} required "
            f"cosignatures ({', '.join(self.cosigned) or 'none'}); {state}"
        )


class WitnessEndpoint:
    """The coordinator's witness API at ``base_url`` (a :class:`LedgerSource` of its pending one).

    ``checkpoint`` returns the *pending* checkpoint (not the published one);
    entries and proofs come from the ledger read API; :meth:`submit` posts a
    cosigned note.  ``transport`` is for tests.
    """

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 30.0
    ) -> None:
        self._base = base_url.rstrip("/")
        self._ledger = HttpLedgerSource(self._base, transport=transport, timeout=timeout)
        self._client = open_client(self._base, transport, timeout)

    @property
    def description(self) -> str:
        """The base URL."""
        return self._base

    def close(self) -> None:
        """Close the HTTP connections."""
        self._ledger.close()
        self._client.close()

    def __enter__(self) -> WitnessEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def checkpoint(self) -> str:
        """``GET /v1/witness/checkpoint``: the pending checkpoint."""
        response = self._send("GET", _PENDING)
        return response.text

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries from the ledger read API."""
        return self._ledger.entries(start, end)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """``GET /v1/ledger/proof/consistency``."""
        return self._ledger.consistency_proof(first, second)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """``GET /v1/ledger/proof/inclusion``."""
        return self._ledger.inclusion_proof(index, size)

    def submit(self, note: str) -> dict[str, Any]:
        """``POST /v1/witness/cosignatures`` with the cosigned note; return the JSON answer.

        Raises
        ------
        LedgerSourceError
            If the coordinator refuses the cosignature (its problem code and
            detail are in the message) or answers nonsense.
        """
        response = self._send("POST", _COSIGNATURES, content=note.encode("utf-8"), headers=_TEXT)
        try:
            value = parse_json(response.content)
        except EncodingError as exc:
            raise LedgerSourceError(
                f"{response.url}: the answer is not valid JSON: {exc.message}", hint=MALFORMED_HINT
            ) from exc
        if not isinstance(value, dict):
            raise LedgerSourceError(f"{response.url}: expected a JSON object", hint=MALFORMED_HINT)
        return value

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **options)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise LedgerSourceError(f"{self._base}{path}: request failed ({exc})") from exc
        if response.status_code != 200:
            raise LedgerSourceError(
                f"{response.url}: the coordinator answered {response.status_code} "
                f"{problem_summary(response)}",
                hint="Read the coordinator's reason above; fetch the pending checkpoint again "
                "if it moved on (server.witness_stale).",
            )
        return response


_TEXT = {"content-type": "text/plain; charset=utf-8"}


class FactoryWitness:
    """A factory's witness for one log.

    Parameters
    ----------
    home
        The factory home; the witness keeps its state under ``home/witness``.
    cosigner
        The factory's witness key.
    log_key
        The log's pinned note verifier key.
    """

    def __init__(self, home: Path, cosigner: Cosigner, log_key: Ed25519Verifier) -> None:
        self.store = CheckpointStore(Path(home) / "witness")
        self.cosigner = cosigner
        self.log_key = log_key

    def last(self) -> Checkpoint | None:
        """The last checkpoint this witness cosigned, if any."""
        kept = self.store.load(self.log_key)
        return kept.checkpoint if kept else None

    def proof_needed(self, note: str) -> tuple[int, int] | None:
        """Return the ``(first, second)`` sizes of the consistency proof to fetch, if any.

        ``None`` when no proof is needed (first checkpoint, same size, shrunk) or
        the note does not verify (the decision then refuses it).
        """
        last = self.last()
        try:
            new = open_checkpoint(note, self.log_key)
        except NoteError:
            return None
        if last is None or last.size == 0 or new.size <= last.size:
            return None
        return last.size, new.size

    def review(self, note: str, proof: Sequence[bytes]) -> WitnessDecision:
        """Return the decision on ``note`` without cosigning or keeping anything."""
        return decide(self.last(), note, self.log_key, proof)

    def cosign(self, note: str, proof: Sequence[bytes], now: int) -> str:
        """Cosign ``note`` at POSIX time ``now`` if it extends the last one; keep it.

        Returns the note with this witness's cosignature added.

        Raises
        ------
        WitnessRefusedError
            If the note is not signed by the log or is inconsistent with the
            checkpoint this witness cosigned before (nothing is kept then).
        """
        decision = self.review(note, proof)
        if not decision.cosign:
            prefix = "fork detected: " if decision.fork else ""
            raise WitnessRefusedError(
                f"witness {self.cosigner.name} refuses: {prefix}{decision.reason}"
            )
        cosigned = cosign_note(note, decision, self.cosigner, now)
        self.store.save(self.log_key, cosigned)
        return cosigned

    def cosign_from(self, source: LedgerSource, now: int) -> str:
        """Fetch the latest checkpoint and, if needed, its consistency proof; cosign it."""
        note = source.checkpoint()
        sizes = self.proof_needed(note)
        proof = source.consistency_proof(*sizes) if sizes else []
        if proof is None:
            raise WitnessRefusedError(
                f"witness {self.cosigner.name} refuses: {source.description} serves no "
                f"consistency proof from size {sizes[0] if sizes else 0}",
                hint="Cosign from the coordinator's URL, or pass the proof it serves.",
            )
        return self.cosign(note, proof, now)

    def cosign_pending(self, endpoint: WitnessEndpoint, now: int) -> Submitted:
        """Fetch the pending checkpoint, check it, cosign it at ``now``, keep it and post it.

        Raises
        ------
        WitnessRefusedError
            If the checkpoint is not the log's or does not extend the one this
            witness cosigned (a fork): nothing is kept or posted.
        LedgerSourceError
            If the coordinator cannot be read or refuses the cosignature.
        """
        cosigned = self.cosign_from(endpoint, now)
        answer = endpoint.submit(cosigned)
        try:
            return Submitted(
                note=cosigned,
                size=int(answer["size"]),
                cosigned=tuple(str(name) for name in answer["cosigned"]),
                quorum=int(answer["quorum"]),
                published=bool(answer["published"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerSourceError(
                f"{endpoint.description}: unexpected answer to a cosignature: {answer!r:.200}"
            ) from exc
