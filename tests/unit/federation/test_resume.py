"""A restarted coordinator closes interrupted rounds, resumes after them, ledgers nothing twice."""

from __future__ import annotations

from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    LedgerEntry,
    RoundOpened,
    SiteAdmitted,
    SiteRefused,
    StatisticsShared,
)
from dure.policies.keys import SigningKey
from dure.server.federation.models import MemoryModelStore
from dure.server.federation.outbox import ReceiptOutbox
from dure.server.federation.registry import MemoryRegistry
from dure.server.federation.resume import (
    RESTARTED,
    close_interrupted,
    interrupted,
    resumption,
    unrecorded,
)
from dure.server.federation.run import Services
from dure.server.ledger.memory import MemoryLedgerStore
from dure.server.ledger.service import Ledger

T, LATER = "2026-11-15T09:00:00Z", "2026-11-15T10:00:00Z"
A, B = "urn:dure:site:factory-a", "urn:dure:site:factory-b"
M0, M1 = "11" * 32, "22" * 32


def _opened(round: int, parent: str | None) -> RoundOpened:
    return RoundOpened(time=T, job_id="j1", round=round, sites=(A, B), parent_model=parent)


def _committed(round: int, parent: str | None, model: str) -> AggregateCommitted:
    return AggregateCommitted(
        time=T,
        job_id="j1",
        round=round,
        model_digest=model,
        parent_model=parent,
        contributors=(A, B),
        epsilon_spent=None,
        strategy="fedavg",
    )


def _accepted(round: int, site: str) -> ContributionAccepted:
    digest = "33" * 32
    return ContributionAccepted(
        time=T,
        job_id="j1",
        round=round,
        site=site,
        update_digest=digest,
        examples=10,
        episodes_root=digest,
        policy_id=digest,
        claim_id=digest,
        secure=False,
    )


def _history() -> list[LedgerEntry]:
    """Round 1 committed, round 2 opened, A's rejection of round 2 already in."""
    rejected = ContributionRejected(time=T, job_id="j1", round=2, site=A, reasons=("late",))
    return [
        _opened(1, M0),
        _accepted(1, A),
        _accepted(1, B),
        _committed(1, M0, M1),
        _opened(2, M1),
        rejected,
    ]


def test_a_round_opened_without_a_conclusion_is_interrupted() -> None:
    assert interrupted(_history(), "j1") == {2: (B,)}
    assert interrupted(_history(), "other-job") == {}
    assert interrupted(_history()[:4], "j1") == {}


def test_closing_records_each_missing_verdict_as_a_restart_rejection() -> None:
    ledger = Ledger(MemoryLedgerStore(), SigningKey.generate(), "dure.test/ledger")
    ledger.append_all(_history())
    services = Services(MemoryRegistry(), ledger, MemoryModelStore())
    outbox = ReceiptOutbox(ledger)
    assert close_interrupted(services, "j1", _history(), outbox) == (2,)
    (last,) = ledger.store.entries(6, 7)
    closing = LedgerEntry.from_bytes(last)
    assert isinstance(closing, ContributionRejected)
    assert (closing.round, closing.site, closing.reasons) == (2, B, (RESTARTED,))
    assert outbox.owed() == [B]
    assert ledger.store.latest_checkpoint() is not None
    entries = [LedgerEntry.from_bytes(raw) for raw in ledger.store.entries(0, 7)]
    assert interrupted(entries, "j1") == {}
    assert close_interrupted(services, "j1", entries, outbox) == ()
    assert ledger.store.size() == 7


def test_a_restart_resumes_after_the_last_opened_round_from_the_last_commit() -> None:
    point = resumption(_history(), "j1", (2,))
    assert (point.first_round, point.model_digest, point.closed) == (3, M1, (2,))
    assert resumption([], "j1").first_round == 1
    assert resumption([], "j1").model_digest is None


def test_the_same_decision_is_not_ledgered_twice_a_changed_one_is() -> None:
    admitted = SiteAdmitted(time=T, job_id="j1", site=A, policy_id="44" * 32)
    stats = StatisticsShared(
        time=T, job_id="j1", site=A, stats_digest="55" * 32, episodes=3, policy_id="44" * 32
    )
    history: list[LedgerEntry] = [admitted, stats]
    again = SiteAdmitted(time=LATER, job_id="j1", site=A, policy_id="44" * 32)
    renewed = SiteAdmitted(time=LATER, job_id="j1", site=A, policy_id="66" * 32)
    refused = SiteRefused(time=LATER, job_id="j1", site=A, policy_id=None, reasons=("revoked",))
    other_job = SiteAdmitted(time=LATER, job_id="j2", site=A, policy_id="44" * 32)
    same_stats = StatisticsShared(
        time=LATER, job_id="j1", site=A, stats_digest="55" * 32, episodes=3, policy_id="44" * 32
    )
    assert unrecorded(history, [again, same_stats]) == []
    assert unrecorded(history, [renewed, refused, other_job]) == [renewed, refused, other_job]
    readmitted = [*history, refused]
    assert unrecorded(readmitted, [again]) == [again]
