"""The ledger as the API reads it: parsed entries of the kinds lineage needs, kept current.

Lineage, usage, revocation impact, rounds and releases are all queries over
ledger entries (the audit kernel's
:class:`~dure.policies.audit.lineage.LineageGraph` answers the first three).
:class:`LedgerView` reads new entries from the store as the ledger grows, in
chunks, parses only the kinds those queries use (a byte test on the canonical
``"kind"`` field skips the others unparsed) and rebuilds the graph only when
something new arrived.  Entries are read from the store, so entries that the
federation appends are seen as well as the API's own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from dure.policies.audit.lineage import LineageGraph
from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    LedgerEntry,
    ModelReleased,
    PolicyRevoked,
    RoundOpened,
)
from dure.policies.errors import DureError
from dure.server.ledger.errors import LedgerError
from dure.server.ledger.store import LedgerStore

__all__ = ["LedgerView", "RoundFacts", "ViewedEntries"]

_KINDS = (
    "aggregate_committed",
    "contribution_accepted",
    "contribution_rejected",
    "model_released",
    "policy_revoked",
    "round_opened",
)
_MARKERS = tuple(f'"kind":"{kind}"'.encode() for kind in _KINDS)
_CHUNK = 5000
_ROUND_KINDS = (RoundOpened, ContributionAccepted, ContributionRejected, AggregateCommitted)


@dataclass
class RoundFacts:
    """What the ledger says about one round of one job."""

    job_id: str
    round: int
    sites: tuple[str, ...] = ()
    parent_model: str | None = None
    opened_index: int | None = None
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    model_digest: str | None = None
    epsilon_spent: str | None = None


@dataclass(frozen=True, slots=True)
class ViewedEntries:
    """A consistent snapshot: the parsed entries up to ``size`` and their lineage graph."""

    size: int
    entries: tuple[tuple[int, LedgerEntry], ...]
    graph: LineageGraph

    def revocations(self, site: str | None = None) -> list[tuple[int, PolicyRevoked]]:
        """``policy_revoked`` entries (of ``site`` when given), in ledger order."""
        return [
            (i, e)
            for i, e in self.entries
            if isinstance(e, PolicyRevoked) and site in (None, e.site)
        ]

    def releases(self, model: str | None = None) -> list[tuple[int, ModelReleased]]:
        """``model_released`` entries (of ``model`` when given), in ledger order."""
        return [
            (i, e)
            for i, e in self.entries
            if isinstance(e, ModelReleased) and model in (None, e.model_digest)
        ]

    def rounds(self, job_id: str | None = None) -> list[RoundFacts]:
        """Every round the ledger opened (of ``job_id`` when given), by job then round."""
        rounds: dict[tuple[str, int], RoundFacts] = {}
        for index, entry in self.entries:
            if not isinstance(entry, _ROUND_KINDS) or job_id not in (None, entry.job_id):
                continue
            facts = rounds.setdefault(
                (entry.job_id, entry.round), RoundFacts(entry.job_id, entry.round)
            )
            _fold(facts, index, entry)
        return [rounds[key] for key in sorted(rounds)]


def _fold(
    facts: RoundFacts,
    index: int,
    entry: RoundOpened | ContributionAccepted | ContributionRejected | AggregateCommitted,
) -> None:
    if isinstance(entry, RoundOpened):
        facts.sites, facts.parent_model, facts.opened_index = (
            entry.sites,
            entry.parent_model,
            index,
        )
    elif isinstance(entry, ContributionAccepted):
        facts.accepted.append(entry.site)
    elif isinstance(entry, ContributionRejected):
        facts.rejected[entry.site] = entry.reasons
    else:
        facts.model_digest, facts.epsilon_spent = entry.model_digest, entry.epsilon_spent


class LedgerView:
    """Keeps the lineage-relevant entries of a ledger store parsed and current."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._entries: list[tuple[int, LedgerEntry]] = []
        self._size = 0
        self._snapshot = ViewedEntries(0, (), LineageGraph(()))

    def current(self) -> ViewedEntries:
        """Read any new entries and return the snapshot of the whole ledger."""
        size = self._store.size()
        with self._lock:
            if size <= self._snapshot.size:
                return self._snapshot
            for start in range(self._size, size, _CHUNK):
                end = min(start + _CHUNK, size)
                for offset, raw in enumerate(self._store.entries(start, end)):
                    if any(marker in raw for marker in _MARKERS):
                        self._entries.append((start + offset, _parse(start + offset, raw)))
            self._size = size
            entries = tuple(self._entries)
            self._snapshot = ViewedEntries(size, entries, LineageGraph.from_entries(entries))
            return self._snapshot


def _parse(index: int, raw: bytes) -> LedgerEntry:
    try:
        return LedgerEntry.from_bytes(raw, source=f"ledger entry {index}")
    except DureError as exc:
        raise LedgerError(f"stored ledger entry {index} is not valid: {exc.message}") from exc
