"""Whole runs through real Flower Messages and ClientApps (an in-process Grid).

Each test builds a small consortium (tiny stores from tests.builders.episodes, a
linear model) and checks what the ledger says and what each factory received.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Message
from tests.builders.federation import (
    build_consortium,
    linear_trainer,
    plain_policy,
    term,
    with_prohibited_purpose,
    with_use_constraint,
)
from tests.integration.ledger.independent_verifier import verify_export_folder

from dure.client.federation.trainer import LocalResult, LocalTask
from dure.policies.canonical import JsonValue
from dure.policies.receipt import verify_receipt
from dure.server.federation.models import lineage
from dure.server.federation.wire import numpy_arrays
from dure.server.ledger.export import export_ledger

SITES = ("factory-a", "factory-b", "factory-c", "factory-d")


def _forbidding(name: str) -> dict[str, JsonValue]:
    """factory-d forbids the job's purpose; the others allow it."""
    policy = plain_policy(name)
    return with_prohibited_purpose(policy) if name == "factory-d" else policy


def test_a_run_commits_every_round_and_the_factories_hold_verified_receipts(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES[:3])
    grid = consortium.grid()
    report = consortium.coordinator().run(grid, consortium.job())
    assert [r.status for r in report.rounds] == ["committed"] * 3 and report.stopped is None
    kinds = [e.kind for e in consortium.entries()][6:]
    assert kinds[:4] == ["job_signed", "site_admitted", "site_admitted", "site_admitted"]
    assert kinds[4:7] == ["statistics_shared"] * 3  # before round 1, once per site
    assert (
        kinds[7:]
        == (["round_opened"] + ["contribution_accepted"] * 3 + ["aggregate_committed"]) * 3
    )
    commits = consortium.of_kind("aggregate_committed")
    assert [c.parent_model for c in commits[1:]] == [c.model_digest for c in commits[:-1]]
    assert report.final_model == commits[-1].model_digest
    assert [r.round for r in lineage(consortium.models, str(report.final_model))] == [3, 2, 1, 0]
    accepted = consortium.of_kind("contribution_accepted")
    assert {a.policy_id for a in accepted} == {
        s.settings.policy.document_id for s in consortium.sites.values()
    }
    for site in consortium.sites.values():
        kept = sorted(site.settings.receipts_dir.glob("*.json"))
        assert sum("contribution_accepted" in p.name for p in kept) == 3
        for path in kept:
            item = json.loads(path.read_text())
            from dure.policies.encoding import b64decode
            from dure.policies.receipt import Receipt

            verify_receipt(
                Receipt.from_json(json.dumps(item["receipt"])),
                b64decode(item["entry"]),
                consortium.ledger.public_key(),
            )
    export_ledger(consortium.ledger.store, tmp_path / "export")
    verified = verify_export_folder(tmp_path / "export", consortium.ledger.public_key())
    assert verified.size == consortium.ledger.store.size()


def test_a_site_whose_policy_forbids_the_purpose_is_never_sampled(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES, policy=_forbidding)
    grid = consortium.grid(keys=True)  # nodes bound by their registered SuperNode keys
    report = consortium.coordinator().run(grid, consortium.job())
    (refused,) = consortium.of_kind("site_refused")
    assert refused.site == "urn:dure:site:factory-d"
    assert any(r.startswith("[prohibition] prohibition[0] (use) fires") for r in refused.reasons)
    assert grid.nodes[104].received == []  # not even identified: bound by key
    assert all("urn:dure:site:factory-d" not in r.sampled for r in report.rounds)
    assert all(len(c.contributors) == 3 for c in consortium.of_kind("aggregate_committed"))


def test_identification_binds_only_nodes_that_prove_their_site_key(tmp_path: Path) -> None:
    import dataclasses

    from tests.builders.federation import linear_trainer

    from dure.client.federation.clientapp import create_client_app
    from dure.policies.keys import SigningKey

    consortium = build_consortium(tmp_path, SITES)
    grid = consortium.grid()
    impostor = dataclasses.replace(
        consortium.sites["factory-d"].settings, key=SigningKey.generate()
    )
    grid.nodes[104].app = create_client_app(lambda _c: impostor, linear_trainer, consortium.now)
    report = consortium.coordinator().run(grid, consortium.job())
    assert grid.nodes[104].received == ["query.identify"]
    assert "urn:dure:site:factory-d" not in report.admitted
    assert [r.status for r in report.rounds] == ["committed"] * 3


def test_a_revocation_mid_run_takes_effect_at_the_next_round(tmp_path: Path) -> None:
    from dure.policies.revocation import Revocation
    from dure.policies.signed import sign_document

    consortium = build_consortium(tmp_path, SITES)
    grid, coordinator = consortium.grid(), consortium.coordinator()
    state = coordinator.start(grid, consortium.job())
    assert coordinator.play(grid, state, 1).status == "committed"
    site = consortium.sites["factory-b"]
    revocation = Revocation.from_value(
        {
            "type": "dure/revocation/v1",
            "site": site.urn,
            "policy_id": site.settings.policy.document_id,
            "issued": "2026-11-15T10:00:00Z",
            "mode": "exclude-future",
            "reason": "withdrawn",
        }
    )
    consortium.ledger.append(
        consortium.registry.revoke(
            sign_document("revocation", revocation, site.key), consortium.now()
        )
    )
    second = coordinator.play(grid, state, 2)
    assert second.status == "committed" and site.urn not in second.sampled
    refused = consortium.of_kind("site_refused")
    assert [r.site for r in refused] == [site.urn] and refused[0].reasons[0].startswith(
        "[revocation]"
    )
    assert grid.nodes[102].received.count("train") == 1


def test_an_expiring_policy_stops_being_sampled(tmp_path: Path) -> None:
    from datetime import timedelta

    def short(name: str) -> dict[str, JsonValue]:
        until = {"@value": "2026-11-16T00:00:00Z", "@type": "xsd:dateTime"}
        policy = plain_policy(name)
        return (
            with_use_constraint(policy, term("dateTime", "lt", until))
            if name == "factory-c"
            else policy
        )

    consortium = build_consortium(tmp_path, SITES, policy=short)
    grid, coordinator = consortium.grid(), consortium.coordinator()
    state = coordinator.start(grid, consortium.job())
    coordinator.play(grid, state, 1)
    consortium.clock[0] += timedelta(days=1)
    report = coordinator.play(grid, state, 2)
    assert "urn:dure:site:factory-c" in report.refused and report.status == "committed"
    assert any("constraint.dateTime" in r for r in report.refused["urn:dure:site:factory-c"])


def test_a_site_over_its_round_budget_is_refused_at_admission(tmp_path: Path) -> None:
    def few_rounds(name: str) -> dict[str, JsonValue]:
        policy = plain_policy(name)
        return (
            with_use_constraint(policy, term("count", "lteq", 2)) if name == "factory-d" else policy
        )

    consortium = build_consortium(tmp_path, SITES, policy=few_rounds)
    grid = consortium.grid()
    consortium.coordinator().run(grid, consortium.job())  # 3 rounds
    (refused,) = consortium.of_kind("site_refused")
    assert refused.site == "urn:dure:site:factory-d" and any(
        "[constraint.count]" in r for r in refused.reasons
    )
    assert "train" not in grid.nodes[104].received


def test_a_factory_that_crashes_mid_round_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    consortium = build_consortium(tmp_path, SITES)
    grid, coordinator = consortium.grid(), consortium.coordinator()
    state = coordinator.start(grid, consortium.job())
    grid.nodes[104].crashed = True
    above = coordinator.play(grid, state, 1)
    assert above.status == "committed" and len(above.contributors) == 3
    assert "no reply within" in above.rejected["urn:dure:site:factory-d"][0]
    model = state.model_digest
    grid.nodes[103].crashed = True
    below = coordinator.play(grid, state, 2)
    assert below.status == "aborted" and state.model_digest == model
    rejected = [e for e in consortium.of_kind("contribution_rejected") if e.round == 2]
    assert len(rejected) == 4
    assert {
        e.site
        for e in rejected
        if e.reasons[0].startswith("round 2 aborted: 2 valid contributions")
    } == {"urn:dure:site:factory-a", "urn:dure:site:factory-b"}
    assert [c.round for c in consortium.of_kind("aggregate_committed")] == [1]
    export_ledger(consortium.ledger.store, tmp_path / "export")
    assert (
        verify_export_folder(tmp_path / "export", consortium.ledger.public_key()).size
        == consortium.ledger.store.size()
    )


def test_a_trainer_that_raises_is_a_rejected_contribution(tmp_path: Path) -> None:
    from dure.client.federation.clientapp import create_client_app

    def broken(task: LocalTask) -> LocalResult:
        raise RuntimeError("GPU on fire")

    consortium = build_consortium(tmp_path, SITES)
    grid = consortium.grid()
    grid.nodes[101].app = create_client_app(
        lambda _c: consortium.sites["factory-a"].settings, broken, consortium.now
    )
    report = consortium.coordinator().run(grid, consortium.job())
    assert all(r.status == "committed" and len(r.contributors) == 3 for r in report.rounds)
    assert "Flower error 2" in report.rounds[0].rejected["urn:dure:site:factory-a"][0]


def test_a_job_with_a_bad_signature_is_refused_by_every_factory(tmp_path: Path) -> None:
    from dure.policies.keys import SigningKey

    consortium = build_consortium(tmp_path, SITES[:3])
    grid, coordinator = consortium.grid(), consortium.coordinator()
    state = coordinator.start(grid, consortium.job())
    state.job_json = consortium.job(
        key=SigningKey.generate()
    ).to_json()  # what a rogue coordinator sends
    report = coordinator.play(grid, state, 1)
    assert report.status == "aborted"
    rejected = consortium.of_kind("contribution_rejected")
    assert len(rejected) == 3
    assert all(
        e.reasons[0].startswith("the factory refused (code 1001): [gate.signature]")
        for e in rejected
    )


def test_tampered_and_non_finite_updates_are_rejected_and_ledgered(tmp_path: Path) -> None:
    from tests.builders.federation import linear_trainer

    from dure.client.federation.clientapp import create_client_app
    from dure.server.federation.wire import array_record, numpy_arrays

    def tamper(reply: Message) -> Message:
        if "arrays" not in reply.content:
            return reply
        arrays = numpy_arrays(reply.content["arrays"])  # type: ignore[arg-type]
        arrays["policy.bias"] = arrays["policy.bias"] + np.float32(0.01)
        reply.content["arrays"] = array_record(arrays)
        return reply

    def nan_trainer(task: LocalTask) -> LocalResult:
        result = linear_trainer(task)
        result.arrays["policy.bias"][0] = np.nan
        return result

    consortium = build_consortium(
        tmp_path, ("factory-a", "factory-b", "factory-c", "factory-d", "factory-e")
    )
    grid = consortium.grid()
    grid.nodes[101].tamper = tamper
    grid.nodes[102].app = create_client_app(
        lambda _c: consortium.sites["factory-b"].settings, nan_trainer, consortium.now
    )
    report = consortium.coordinator().run(grid, consortium.job())
    first = report.rounds[0]
    assert first.status == "committed" and len(first.contributors) == 3
    assert first.rejected["urn:dure:site:factory-a"][0].startswith("claim update_digest is")
    assert "non-finite" in first.rejected["urn:dure:site:factory-b"][0]
    assert len(consortium.of_kind("contribution_rejected")) == 6


def test_dp_records_epsilon_per_round_and_stops_before_a_budget_is_exceeded(tmp_path: Path) -> None:
    from dure.policies.entries import AggregateCommitted
    from dure.policies.examples import example_policy_value

    consortium = build_consortium(tmp_path, SITES, policy=example_policy_value)  # ε budget 10
    consortium.ledger.append(  # another job already spent 6.5 on factory-d's data
        AggregateCommitted(
            time="2026-11-10T00:00:00Z",
            job_id="other-job",
            round=1,
            model_digest="77" * 32,
            parent_model=None,
            contributors=("urn:dure:site:factory-d",),
            epsilon_spent="6.5",
            strategy="fedavg",
        )
    )
    grid = consortium.grid()
    report = consortium.coordinator().run(grid, consortium.job(dp={"noise_multiplier": "2.0"}))
    refused = consortium.of_kind("site_refused")
    assert refused[0].site == "urn:dure:site:factory-d"
    assert any("[constraint.dure:dpEpsilon]" in r and "6.5" in r for r in refused[0].reasons)
    assert [r.status for r in report.rounds] == ["committed", "committed", "stopped"]
    epsilons = [
        float(c.epsilon_spent)
        for c in consortium.of_kind("aggregate_committed")
        if c.job_id == "bc-pick-place-1"
    ]
    assert 2.16 < epsilons[0] < epsilons[1] <= 4.0
    stop = refused[1:]
    assert len(stop) == 3 and all(
        r.reasons[0].startswith("[dp.budget] one more round would raise") for r in stop
    )
    assert all(n.received.count("train") == 2 for n in list(grid.nodes.values())[:3])


def _recorded_run(
    tmp_path: Path, mode: str
) -> tuple[Any, list[dict[str, np.ndarray]], list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """One DP round (clip 0.01): ``(consortium, trained, sent, global model)``.

    ``trained`` is what each factory's trainer returned, ``sent`` what its reply
    carried on the wire (recorded passively in transit), in the sites' order.
    """
    from dure.policies.examples import example_policy_value

    consortium = build_consortium(tmp_path, SITES[:3], policy=example_policy_value)
    job = consortium.job(dp={"noise_multiplier": "5.0", "clip": "0.01", "mode": mode}, rounds=1)
    trained: list[dict[str, np.ndarray]] = []
    sent: list[dict[str, np.ndarray]] = []
    start: list[dict[str, np.ndarray]] = []

    def trainer(task: LocalTask) -> LocalResult:
        result = linear_trainer(task)
        start.append({k: np.array(v) for k, v in task.global_arrays.items()})
        trained.append({k: np.array(v) for k, v in result.arrays.items()})
        return result

    def record(reply: Message) -> Message:
        if reply.metadata.message_type == "train" and not reply.has_error():
            sent.append(
                {
                    k: np.array(v)
                    for k, v in numpy_arrays(reply.content.array_records["arrays"]).items()
                }
            )
        return reply

    grid = consortium.grid(trainer)
    for node in grid.nodes.values():
        node.tamper = record  # reads the reply, changes nothing
    report = consortium.coordinator().run(grid, job)
    assert report.rounds[0].status == "committed" and len(report.rounds[0].contributors) == 3
    assert len(trained) == len(sent) == 3 and all(_same(s, start[0]) for s in start)
    return consortium, trained, sent, start[0]


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_client_side_dp_clips_before_the_claim_is_signed(tmp_path: Path) -> None:
    from dure.policies.contribution import state_digest
    from dure.server.federation.validation import update_norm

    consortium, trained, sent, start = _recorded_run(tmp_path, "client-fixed")
    for raw, wire in zip(trained, sent, strict=True):
        assert update_norm(raw, start) > 0.1  # training moved far past the clip of 0.01
        assert update_norm(wire, start) == pytest.approx(0.01, rel=1e-4)  # clipped on site
        scale = 0.01 / update_norm(raw, start)  # same direction, only shortened
        for name, value in start.items():
            expected = value + (raw[name].astype(np.float64) - value) * scale
            np.testing.assert_allclose(wire[name], expected, rtol=1e-5, atol=1e-7)
    accepted = consortium.of_kind("contribution_accepted")
    assert sorted(a.update_digest for a in accepted) == sorted(state_digest(w) for w in sent)


def test_server_side_dp_receives_unclipped_updates(tmp_path: Path) -> None:
    from dure.server.federation.validation import update_norm

    _, trained, sent, start = _recorded_run(tmp_path, "server-fixed")
    for raw, wire in zip(trained, sent, strict=True):
        assert _same(raw, wire) and update_norm(wire, start) > 0.1  # the coordinator clips


def test_the_default_trainer_trains_the_learning_policy(tmp_path: Path) -> None:
    from dure.client.federation.trainer import hidden_sizes, train_policy
    from dure.client.training.model import build_policy_model
    from dure.server.federation.statistics import ConsortiumStats

    def initial(stats: ConsortiumStats) -> dict[str, np.ndarray]:
        model = build_policy_model(
            stats.observation_dim, len(stats.tasks), stats.action_dim, (16, 8)
        )
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}

    consortium = build_consortium(tmp_path, SITES[:3])
    coordinator = consortium.coordinator(initial_model=initial)
    training = {"local_steps": 5, "lr": "0.05", "schedule": {"kind": "cosine"}}
    report = coordinator.run(
        consortium.grid(train_policy), consortium.job(rounds=2, training=training)
    )
    assert [r.status for r in report.rounds] == ["committed", "committed"]
    assert report.final_model is not None and report.initial_model is not None
    final = consortium.models.get(report.final_model)
    assert hidden_sizes(final) == (16, 8)
    assert not all(
        np.array_equal(final[k], v) for k, v in consortium.models.get(report.initial_model).items()
    )


def test_the_cosine_schedule_is_the_learning_modules() -> None:
    from dure.client.training.local import round_learning_rate
    from dure.policies.job import TrainingSpec

    cosine = TrainingSpec.model_validate(
        {"lr": "0.01", "schedule": {"kind": "cosine", "floor": "0.1"}}
    )
    for r in range(1, 6):
        assert cosine.round_lr(r, 5) == round_learning_rate(0.01, r, 5, floor=0.1)
    constant = TrainingSpec.model_validate({"lr": "0.01", "schedule": {"kind": "constant"}})
    assert constant.round_lr(3, 5) == 0.01


def test_a_site_requiring_more_contributors_than_the_job_is_never_sampled(tmp_path: Path) -> None:
    from tests.builders.federation import with_min_contributors

    def demanding(name: str) -> dict[str, JsonValue]:
        policy = plain_policy(name)
        return with_min_contributors(policy, 5) if name == "factory-d" else policy

    consortium = build_consortium(tmp_path, SITES, policy=demanding)
    grid = consortium.grid(keys=True)
    report = consortium.coordinator().run(grid, consortium.job())  # job minimum 3
    (refused,) = consortium.of_kind("site_refused")
    assert refused.site == "urn:dure:site:factory-d"
    assert any("[constraint.dure:minContributors]" in r for r in refused.reasons)
    assert grid.nodes[104].received == []
    assert all(r.status == "committed" and len(r.contributors) == 3 for r in report.rounds)
