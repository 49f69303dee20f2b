"""The statistics query is ledgered (``statistics_shared``), and the auditor checks it."""

from __future__ import annotations

from pathlib import Path

from flwr.app import ConfigRecord, Message
from tests.builders.federation import (
    Consortium,
    build_consortium,
    plain_policy,
    with_prohibited_purpose,
)

from dure.policies.audit.documents import DocumentSource
from dure.policies.audit.replay import replay
from dure.policies.canonical import JsonValue
from dure.policies.entries import LedgerEntry, StatisticsShared, statistics_digest
from dure.policies.examples import EXAMPLE_NOW

SITES = ("factory-a", "factory-b", "factory-c", "factory-d")


def _policy(name: str) -> dict[str, JsonValue]:
    policy = plain_policy(name)
    return with_prohibited_purpose(policy) if name == "factory-d" else policy


def test_each_admitted_sites_statistics_are_ledgered_before_round_one(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_policy)
    grid = consortium.grid()
    answers: dict[int, Message] = {}
    original = grid._deliver

    def keep(message: Message) -> Message | None:
        reply = original(message)
        if reply is not None and message.metadata.message_type == "query.stats":
            answers[message.metadata.dst_node_id] = reply
        return reply

    grid._deliver = keep  # type: ignore[method-assign]
    coordinator = consortium.coordinator()
    state = coordinator.start(grid, consortium.job())
    shared = consortium.of_kind("statistics_shared")
    assert [s.site for s in shared] == [f"urn:dure:site:{s}" for s in SITES[:3]]
    for entry, node in zip(shared, (101, 102, 103), strict=True):
        record = answers[node].content["stats"]
        assert isinstance(record, ConfigRecord)
        features, tasks, episodes = record["features"], record["tasks"], record["episodes"]
        assert isinstance(features, str) and isinstance(tasks, str) and isinstance(episodes, int)
        assert entry.stats_digest == statistics_digest(features, tasks, episodes)
        assert entry.episodes == episodes == 4
        assert entry.policy_id == state.sites[entry.site].policy.policy_id  # type: ignore[union-attr]
    assert 104 not in answers  # the refused site was never asked
    documents = _documents(consortium)
    assert replay(list(enumerate(consortium.entries())), documents).violations == ()


def test_statistics_from_a_site_not_admitted_are_a_violation(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_policy)
    consortium.coordinator().start(consortium.grid(), consortium.job())
    entries: list[LedgerEntry] = consortium.entries()
    admitted = consortium.of_kind("statistics_shared")[0]
    refused_site = consortium.sites["factory-d"]
    forged = [
        StatisticsShared(
            time=EXAMPLE_NOW,
            job_id=admitted.job_id,
            site=refused_site.urn,
            stats_digest=admitted.stats_digest,
            episodes=4,
            policy_id=refused_site.settings.policy.document_id,
        ),
        admitted.model_copy(
            update={"policy_id": consortium.sites["factory-b"].settings.policy.document_id}
        ),
    ]
    report = replay(list(enumerate([*entries, *forged])), _documents(consortium))
    codes = {(v.index, v.code) for v in report.violations}
    assert (len(entries), "statistics.not_admitted") in codes
    assert (len(entries) + 1, "policy.wrong_site") in codes
    assert (len(entries) + 1, "statistics.policy_mismatch") in codes


def _documents(consortium: Consortium) -> DocumentSource:
    envelopes = [consortium.job().to_json()]
    envelopes += [s.policy.to_json() for s in consortium.sites.values()]
    envelopes += [s.identity.to_json() for s in consortium.sites.values()]
    return DocumentSource.from_envelopes(envelopes, operator_keys=[consortium.operator.public])
