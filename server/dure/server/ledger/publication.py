"""Checkpoint publication: a checkpoint is published once the witness quorum cosigned it.

SPEC: C2SP ``tlog-cosignature``.  The consortium configures its witnesses
(factories' ``cosignature/v1`` verifier keys) and a quorum.  The coordinator's
**pending** checkpoint is the newest one its ledger signed
(:meth:`~dure.server.ledger.service.Ledger.checkpoint`, served to witnesses at
``GET /v1/witness/checkpoint``).  A witness checks it extends the checkpoint
it cosigned before, appends its cosignature line and posts the note back
(``POST /v1/witness/cosignatures``); :meth:`Publication.submit` then

1. parses the note (else :class:`CosignatureError`);
2. keeps the signature lines of *configured* witnesses (none:
   :class:`WitnessUnknownError`) and verifies each over the posted checkpoint
   body (one that fails: :class:`WitnessSignatureError`, nothing stored);
3. requires the posted body to be exactly the pending checkpoint
   (else :class:`WitnessStaleError`);
4. stores the cosignatures and, once ``quorum`` distinct witnesses cosigned,
   publishes the checkpoint, in one transaction.

:meth:`Publication.checkpoint` is what ``GET /v1/ledger/checkpoint`` serves:
the newest published checkpoint with every stored cosignature line appended
(C2SP format, re-verified on the way out), or :class:`UnpublishedError` while
none reached the quorum.  With a quorum of 0 (the default) every signed
checkpoint is published at once, as before witnesses existed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, func, insert, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from dure.policies.checkpoint import Checkpoint, CosignatureVerifier
from dure.policies.errors import NoteError
from dure.policies.literals import format_timestamp
from dure.policies.note import NoteSignature, SignedNote, verified_signatures
from dure.server.ledger.engine import SQLITE_BEGIN
from dure.server.ledger.errors import (
    CosignatureError,
    LedgerError,
    UnpublishedError,
    WitnessSignatureError,
    WitnessStaleError,
    WitnessUnknownError,
)
from dure.server.ledger.service import Ledger
from dure.server.ledger.tables import LEDGER_TABLES
from dure.server.ledger.witness_tables import WITNESS_TABLES

__all__ = ["CosignatureOutcome", "Publication", "with_stored_cosignatures"]

T = TypeVar("T")
_COSIGNATURE, _PUBLISHED = WITNESS_TABLES
_CHECKPOINT = LEDGER_TABLES[3]
_RETRIES = 5


@dataclass(frozen=True, slots=True)
class CosignatureOutcome:
    """What a posted cosignature achieved."""

    size: int
    """The tree size of the cosigned (pending) checkpoint."""
    accepted: tuple[str, ...]
    """The configured witnesses whose cosignature the note carried."""
    cosigned: tuple[str, ...]
    """Every configured witness that has cosigned this checkpoint so far."""
    quorum: int
    published: bool
    """Whether this checkpoint is published (reached the quorum)."""


class Publication:
    """The witness quorum gate between the ledger's signed checkpoints and the public one.

    Parameters
    ----------
    engine
        The ledger's database engine (publication tables live beside the ledger's).
    ledger
        The coordinator's ledger (signs the pending checkpoint).
    witnesses
        The configured witnesses' cosignature verifier keys.
    quorum
        Distinct witness cosignatures a checkpoint needs to be published; 0
        publishes every signed checkpoint at once.
    """

    def __init__(
        self,
        engine: Engine,
        ledger: Ledger,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int = 0,
    ) -> None:
        self._engine = engine
        self._ledger = ledger
        self._witnesses = {(w.name, w.key_id): w for w in witnesses}
        if not 0 <= quorum <= len(self._witnesses):
            raise LedgerError(
                f"a witness quorum of {quorum} cannot be met by {len(self._witnesses)} witnesses",
                hint="Configure at least as many witness keys as the quorum.",
            )
        self.quorum = quorum

    @property
    def witnesses(self) -> tuple[CosignatureVerifier, ...]:
        """The configured witnesses."""
        return tuple(self._witnesses.values())

    def pending(self) -> str:
        """Return the pending checkpoint: the newest the ledger signed, for the current tree."""
        return self._ledger.checkpoint()

    def checkpoint(self) -> str:
        """Return the checkpoint to publish, with its cosignature lines appended.

        Raises
        ------
        UnpublishedError
            If a quorum is configured and no checkpoint has reached it yet.
        """
        if self.quorum == 0:
            note = self._ledger.checkpoint()
            if not self._witnesses:
                return note
            size = Checkpoint.from_text(SignedNote.from_text(note).text).size
            return self._with_cosignatures(note, self._run(lambda c: _lines(c, size)))
        found = self._run(_latest_published)
        if found is None:
            raise UnpublishedError(
                f"no checkpoint has reached the quorum of {self.quorum} witness cosignatures yet"
            )
        note, lines = found
        return self._with_cosignatures(note, lines)

    def submit(self, body: str | bytes, now: datetime) -> CosignatureOutcome:
        """Check and store the witness cosignatures ``body`` carries (see the module doc).

        Raises
        ------
        CosignatureError
            If ``body`` is not a signed checkpoint note.
        WitnessUnknownError
            If it carries no cosignature by a configured witness.
        WitnessSignatureError
            If a configured witness's cosignature does not verify over it.
        WitnessStaleError
            If it is not the coordinator's pending checkpoint.
        """
        note, checkpoint = _parse(body)
        signatures = self._verified(note, checkpoint)
        stored = self._ledger.store.latest_checkpoint()
        if stored is None or stored.checkpoint != checkpoint:
            pending = "none" if stored is None else f"size {stored.checkpoint.size}"
            raise WitnessStaleError(
                f"the cosigned checkpoint (size {checkpoint.size}) is not the pending checkpoint "
                f"({pending}): it is stale or was never signed by this coordinator"
            )
        received = format_timestamp(now.replace(microsecond=0))
        cosigned, published = self._run(
            lambda conn: self._store(conn, checkpoint.size, stored.note, signatures, received),
            write=True,
        )
        return CosignatureOutcome(
            size=checkpoint.size,
            accepted=tuple(sig.name for sig in signatures),
            cosigned=cosigned,
            quorum=self.quorum,
            published=published,
        )

    def _verified(self, note: SignedNote, checkpoint: Checkpoint) -> list[NoteSignature]:
        ours = [s for s in note.signatures if (s.name, s.key_id) in self._witnesses]
        if not ours:
            configured = ", ".join(sorted(w.name for w in self._witnesses.values())) or "none"
            signers = ", ".join(sorted({s.name for s in note.signatures}))
            raise WitnessUnknownError(
                f"the note carries no cosignature by a configured witness (signed by: {signers}; "
                f"configured witnesses: {configured})"
            )
        text = note.text.encode("utf-8")
        for sig in ours:
            if not self._witnesses[(sig.name, sig.key_id)].verify(text, sig.signature):
                raise WitnessSignatureError(
                    f"the cosignature by witness {sig.name!r} (key {sig.key_id.hex()}) does not "
                    f"verify over the checkpoint of size {checkpoint.size}"
                )
        unique = {(s.name, s.key_id): s for s in reversed(ours)}  # first line per witness wins
        return list(reversed(unique.values()))

    def _store(
        self,
        conn: Connection,
        size: int,
        note: str,
        signatures: Sequence[NoteSignature],
        received: str,
    ) -> tuple[tuple[str, ...], bool]:
        # Serialise the cosignatures of one checkpoint: on PostgreSQL lock its signed rows (on
        # SQLite, BEGIN IMMEDIATE already did), so two witnesses posting at once cannot each
        # count only their own cosignature and both miss the quorum.
        lock = select(_CHECKPOINT.c.id).where(_CHECKPOINT.c.size == size).with_for_update()
        conn.execute(lock).all()
        query = select(_COSIGNATURE.c.witness, _COSIGNATURE.c.key_id)
        rows = conn.execute(query.where(_COSIGNATURE.c.size == size))
        have = {(str(row[0]), str(row[1])) for row in rows}
        for sig in signatures:
            if (sig.name, sig.key_id.hex()) in have:
                continue  # a witness counts once; its first cosignature is kept
            conn.execute(
                insert(_COSIGNATURE).values(
                    size=size,
                    witness=sig.name,
                    key_id=sig.key_id.hex(),
                    line=sig.to_line(),
                    timestamp=int.from_bytes(sig.signature[:8], "big"),
                    received=received,
                )
            )
            have.add((sig.name, sig.key_id.hex()))
        cosigned = tuple(
            w.name for (name, key), w in self._witnesses.items() if (name, key.hex()) in have
        )
        if len(cosigned) < self.quorum or self.quorum == 0:
            return cosigned, self.quorum == 0
        exists = conn.execute(select(_PUBLISHED.c.size).where(_PUBLISHED.c.size == size)).first()
        if exists is None:
            conn.execute(insert(_PUBLISHED).values(size=size, note=note, published=received))
        return cosigned, True

    def _with_cosignatures(self, note: str, lines: Sequence[str]) -> str:
        parsed = SignedNote.from_text(note)
        try:
            for line in lines:
                sig = NoteSignature.from_line(line)
                if (sig.name, sig.key_id) in self._witnesses:  # a witness no longer configured
                    parsed = parsed.with_signature(sig)  # is left out
            verified_signatures(parsed, self._witnesses.values())
        except NoteError as exc:
            raise LedgerError(
                f"a stored witness cosignature does not verify: {exc.message}",
                hint="The publication tables were edited; stop and compare with the witnesses.",
            ) from exc
        return parsed.to_text()

    def _run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        sqlite = self._engine.dialect.name == "sqlite"
        options = {SQLITE_BEGIN: "IMMEDIATE"} if write and sqlite else {}
        for attempt in range(_RETRIES + 1):
            try:
                with self._engine.connect() as raw:
                    conn = raw.execution_options(**options)
                    with conn.begin():
                        return work(conn)
            except IntegrityError as exc:  # two witnesses raced to store or publish: go again
                if attempt < _RETRIES:
                    continue
                raise LedgerError(f"cosignature storage conflict: {exc.orig}") from exc
            except DBAPIError as exc:
                message = str(exc.orig).lower()
                if attempt < _RETRIES and sqlite and ("locked" in message or "busy" in message):
                    time.sleep(0.01 * 2**attempt)
                    continue
                raise LedgerError(f"publication database error: {str(exc.orig)[:300]}") from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _parse(body: str | bytes) -> tuple[SignedNote, Checkpoint]:
    try:
        note = SignedNote.from_text(body)
        return note, Checkpoint.from_text(note.text)
    except NoteError as exc:
        raise CosignatureError(f"the body is not a signed checkpoint note: {exc.message}") from exc


def _lines(conn: Connection, size: int) -> list[str]:
    query = select(_COSIGNATURE.c.line).where(_COSIGNATURE.c.size == size)
    return [str(row[0]) for row in conn.execute(query.order_by(_COSIGNATURE.c.id))]


def _latest_published(conn: Connection) -> tuple[str, list[str]] | None:
    newest = select(func.max(_PUBLISHED.c.size)).scalar_subquery()
    row = conn.execute(
        select(_PUBLISHED.c.size, _PUBLISHED.c.note).where(_PUBLISHED.c.size == newest)
    ).first()
    if row is None:
        return None
    return str(row[1]), _lines(conn, int(row[0]))


def with_stored_cosignatures(engine: Engine, note: str) -> str:
    """Return ``note`` with every cosignature stored for its checkpoint appended.

    For exports: the lines are appended as stored, unverified (the auditor
    verifies them against the witness keys it pinned).  A database without the
    publication tables (never migrated to revision 0002) adds nothing.
    """
    parsed = SignedNote.from_text(note)
    size = Checkpoint.from_text(parsed.text).size
    with engine.connect() as conn:
        if not inspect(conn).has_table(_COSIGNATURE.name):
            return note
        lines = _lines(conn, size)
    for line in lines:
        parsed = parsed.with_signature(NoteSignature.from_line(line))
    return parsed.to_text()
