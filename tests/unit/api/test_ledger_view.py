"""The ledger view parses only lineage entries, keeps up as the ledger grows, folds rounds."""

from __future__ import annotations

from dure.policies.entries import (
    AggregateCommitted,
    ContributionAccepted,
    ContributionRejected,
    JobSigned,
    ModelReleased,
    PolicyRevoked,
    RoundOpened,
)
from dure.server.api.ledger_view import LedgerView
from dure.server.ledger.memory import MemoryLedgerStore

T = "2026-11-15T09:00:00Z"
A, B = "urn:dure:site:factory-a", "urn:dure:site:factory-b"


def hexd(n: int) -> str:
    return f"{n:064x}"


def _round(job: str, number: int, model: int, parent: int | None) -> list[bytes]:
    entries = [
        RoundOpened(
            time=T,
            job_id=job,
            round=number,
            sites=(A, B),
            parent_model=hexd(parent) if parent else None,
        ),
        ContributionAccepted(
            time=T,
            job_id=job,
            round=number,
            site=A,
            update_digest=hexd(99),
            examples=10,
            episodes_root=hexd(98),
            policy_id=hexd(1),
            claim_id=hexd(97 + number),
            secure=False,
        ),
        ContributionRejected(time=T, job_id=job, round=number, site=B, reasons=("not finite",)),
        AggregateCommitted(
            time=T,
            job_id=job,
            round=number,
            model_digest=hexd(model),
            parent_model=hexd(parent) if parent else None,
            contributors=(A,),
            epsilon_spent="0.5",
            strategy="fedavg",
        ),
    ]
    return [entry.to_bytes() for entry in entries]


def test_rounds_models_and_releases_follow_the_ledger() -> None:
    store = MemoryLedgerStore()
    job = JobSigned(
        time=T,
        job_id="j",
        job_digest=hexd(5),
        operator_key_id=hexd(6),
        purpose="urn:dure:purpose:p:v1",
    )
    store.append([job.to_bytes(), *_round("j", 1, 10, None)])
    view = LedgerView(store)
    first = view.current()
    assert first.size == 5 and len(first.entries) == 4  # job_signed is not kept
    assert view.current() is first  # nothing new: the same snapshot
    store.append(_round("j", 2, 11, 10))
    store.append([ModelReleased(time=T, model_digest=hexd(11), recipients=(A,)).to_bytes()])
    store.append(
        [
            PolicyRevoked(
                time=T, site=A, policy_id=hexd(1), revocation_id=hexd(2), mode="exclude-future"
            ).to_bytes()
        ]
    )
    second = view.current()
    rounds = second.rounds("j")
    assert [(r.round, r.model_digest, r.accepted) for r in rounds] == [
        (1, hexd(10), [A]),
        (2, hexd(11), [A]),
    ]
    assert rounds[1].parent_model == hexd(10) and rounds[1].rejected == {B: ("not finite",)}
    assert rounds[0].opened_index == 1
    assert second.rounds("other") == []
    assert [e.model_digest for _, e in second.releases()] == [hexd(11)]
    assert second.releases(hexd(10)) == []
    assert [i for i, _ in second.revocations(A)] == [10] and second.revocations(B) == []
    assert second.graph.lineage(hexd(11)).parents == (hexd(10),)
    assert second.graph.affected_by(A) == (hexd(10), hexd(11))
