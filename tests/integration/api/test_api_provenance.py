"""Lineage, usage, revocation, retrain-without, release and rounds through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.builders.api import World, digest_of

from dure.policies.encoding import b64encode
from dure.policies.entries import LedgerEntry
from dure.policies.keys import SigningKey
from dure.server.federation.admission import admit
from dure.server.storage.rounds import RoundRecord

M1, M2, M3 = digest_of("m1"), digest_of("m2"), digest_of("m3")


@pytest.fixture
def trained(any_world: World) -> World:
    """Three sites registered; m1 from all three, m2 from a and b on m1, m3 from b and c on m2."""
    world = any_world
    world.register_all()
    world.play_round(1, ["factory-a", "factory-b", "factory-c"], M1, None, epsilon="1.0")
    world.play_round(2, ["factory-a", "factory-b"], M2, M1, epsilon="2.0")
    world.play_round(3, ["factory-b", "factory-c"], M3, M2, epsilon="3.0")
    return world


def test_lineage_names_every_site_policy_round_and_parent(trained: World) -> None:
    a = trained.sites["factory-a"]
    lineage = trained.call(a.key, "GET", f"/v1/models/{M3}/lineage").json()
    assert lineage["model"] == M3
    assert lineage["sites"] == [p.urn for p in trained.sites.values()]
    assert [r["round"] for r in lineage["rounds"]] == [3, 2, 1]
    assert lineage["parents"] == [M2, M1] and lineage["base_model"] is None
    assert {p["site"] for p in lineage["policies"]} == set(lineage["sites"])
    assert trained.call(a.key, "GET", f"/v1/models/{'0' * 64}/lineage").status_code == 404
    assert trained.call(a.key, "GET", "/v1/models/xyz/lineage").status_code == 422
    models = trained.call(a.key, "GET", "/v1/models").json()
    assert [m["model"]["model_digest"] for m in models] == [M1, M2, M3]


def test_usage_is_visible_to_the_site_and_its_auditors_only(trained: World) -> None:
    a, b = trained.sites["factory-a"], trained.sites["factory-b"]
    own = trained.call(a.key, "GET", "/v1/sites/factory-a/usage")
    assert own.status_code == 200
    usage = own.json()
    assert usage["jobs"] == ["bc-pick-place-1"]
    assert [r["round"] for r in usage["records"]] == [1, 2]
    assert usage["models"] == [M1, M2, M3]  # m3 derives from m2
    assert usage["epsilon_total"] == "2.0"
    for stranger in (b.key, trained.operator):
        refused = trained.call(stranger, "GET", "/v1/sites/factory-a/usage")
        assert (refused.status_code, refused.json()["code"]) == (403, "server.forbidden")
    auditor = SigningKey.generate()
    assert trained.call(auditor, "GET", "/v1/sites/factory-a/usage").status_code == 401
    named = trained.call(
        a.key,
        "POST",
        "/v1/sites/factory-a/auditors",
        {"name": "SME audit", "key": b64encode(auditor.public.raw)},
    )
    assert named.status_code == 201 and named.json()["key_id"] == auditor.key_id
    assert trained.call(auditor, "GET", "/v1/sites/factory-a/usage").json() == usage
    assert trained.call(auditor, "GET", "/v1/sites/factory-b/usage").status_code == 403
    assert trained.call(auditor, "GET", "/v1/me").json()["audits"] == ["factory-a"]
    assert trained.call(b.key, "GET", "/v1/sites/factory-a/auditors").status_code == 403
    listed = trained.call(a.key, "GET", "/v1/sites/factory-a/auditors").json()
    assert [x["name"] for x in listed] == ["SME audit"]
    not_yours = trained.call(
        b.key,
        "POST",
        "/v1/sites/factory-a/auditors",
        {"name": "x", "key": b64encode(b.key.public.raw)},
    )
    assert not_yours.status_code == 403


def test_revocation_excludes_the_site_at_once_and_lists_affected_models(trained: World) -> None:
    c = trained.sites["factory-c"]
    sites = trained.services.registry.sites()
    job = trained.services.jobs.job("bc-pick-place-1").job
    consortium = trained.services.settings.consortium
    assert all(d.admitted for d in admit(job, sites, consortium=consortium, now=trained.clock[0]))
    assert (
        trained.call(
            trained.sites["factory-a"].key, "POST", "/v1/revocations", c.revocation()
        ).status_code
        == 403
    )
    response = trained.call(c.key, "POST", "/v1/revocations", c.revocation())
    assert response.status_code == 201
    body = response.json()
    assert body["mode"] == "retrain-without" and body["site"] == c.urn
    assert body["affected_models"] == [M1, M2, M3]
    assert body["retrain_from"] == {M1: None, M2: None, M3: None}
    assert (
        LedgerEntry.from_bytes(
            trained.services.ledger.store.entries(body["index"], body["index"] + 1)[0]
        ).kind
        == "policy_revoked"
    )
    # the next (re-)admission reads the registry: the site is refused now
    decisions = admit(
        job, trained.services.registry.sites(), consortium=consortium, now=trained.clock[0]
    )
    refused = {d.site.name: d.admitted for d in decisions}
    assert refused["factory-c"] is False
    again = trained.call(c.key, "POST", "/v1/revocations", c.revocation())
    assert again.status_code == 409
    listed = trained.call(c.key, "GET", "/v1/revocations?site=factory-c").json()
    assert [r["policy_id"] for r in listed] == [body["policy_id"]]
    status = trained.call(c.key, "GET", "/v1/sites/factory-c").json()
    assert status["revoked"] is True


def test_retrain_without_starts_from_the_last_model_without_the_site(trained: World) -> None:
    a, b, c = (trained.sites[n] for n in ("factory-a", "factory-b", "factory-c"))
    early = trained.call(
        trained.operator, "POST", f"/v1/models/{M2}/retrain-without", {"site": a.urn}
    )
    assert early.status_code == 409  # a has not revoked
    trained.call(a.key, "POST", "/v1/revocations", a.revocation())
    refused = trained.call(b.key, "POST", f"/v1/models/{M3}/retrain-without", {"site": a.urn})
    assert refused.status_code == 403
    response = trained.call(a.key, "POST", f"/v1/models/{M3}/retrain-without", {"site": a.urn})
    assert response.status_code == 201
    body = response.json()
    assert body["parent_model"] is None and body["replaces"] == [M3, M2, M1]
    lineage = trained.call(c.key, "GET", f"/v1/models/{M3}/lineage").json()
    assert [r["id"] for r in lineage["retrains"]] == [body["id"]]


def test_retrain_starts_from_a_model_without_the_site_when_there_is_one(any_world: World) -> None:
    world = any_world
    world.register_all()
    world.play_round(1, ["factory-a", "factory-b"], M1, None)
    world.play_round(2, ["factory-a", "factory-b", "factory-c"], M2, M1)
    c = world.sites["factory-c"]
    world.call(c.key, "POST", "/v1/revocations", c.revocation())
    body = world.call(
        world.operator, "POST", f"/v1/models/{M2}/retrain-without", {"site": c.urn}
    ).json()
    assert body["parent_model"] == M1 and body["replaces"] == [M2]


def test_release_to_allowed_recipients_is_ledgered_and_others_refused(trained: World) -> None:
    a = trained.sites["factory-a"]
    recipients = {"recipients": [a.urn, trained.sites["factory-b"].urn]}
    assert trained.call(a.key, "POST", f"/v1/models/{M3}/release", recipients).status_code == 403
    released = trained.call(trained.operator, "POST", f"/v1/models/{M3}/release", recipients)
    assert released.status_code == 201
    body = released.json()
    assert body["recipients"] == recipients["recipients"] and len(body["checked"]) == 3
    entry = LedgerEntry.from_bytes(
        trained.services.ledger.store.entries(body["ledger"]["index"], body["ledger"]["index"] + 1)[
            0
        ]
    )
    assert entry.kind == "model_released"
    size = trained.services.ledger.store.size()
    denied = trained.call(
        trained.operator,
        "POST",
        f"/v1/models/{M3}/release",
        {"recipients": ["urn:dure:org:outsider"]},
    )
    assert (denied.status_code, denied.json()["code"]) == (403, "server.release_denied")
    assert any("outsider" in reason for reason in denied.json()["reasons"])
    assert trained.services.ledger.store.size() == size  # nothing ledgered
    models = trained.call(a.key, "GET", "/v1/models").json()
    assert models[2]["released_to"] == recipients["recipients"]


def test_release_is_refused_once_a_contributor_revoked_or_the_job_expired(trained: World) -> None:
    b = trained.sites["factory-b"]
    trained.call(b.key, "POST", "/v1/revocations", b.revocation())
    denied = trained.call(
        trained.operator, "POST", f"/v1/models/{M1}/release", {"recipients": [b.urn]}
    )
    assert denied.status_code == 403
    assert any("[revocation]" in r for r in denied.json()["reasons"])
    trained.clock[0] += timedelta(days=120)
    later = trained.call(
        trained.operator, "POST", f"/v1/models/{M1}/release", {"recipients": [b.urn]}
    )
    assert any("[job.validity]" in r for r in later.json()["reasons"])


def test_rounds_join_the_ledger_and_the_federation_reports(trained: World) -> None:
    trained.services.rounds.record(
        RoundRecord("bc-pick-place-1", 4, "stopped", reason="too few sites"), trained.clock[0]
    )
    a = trained.sites["factory-a"]
    rounds = trained.call(a.key, "GET", "/v1/jobs/bc-pick-place-1/rounds").json()
    assert [(r["round"], r["status"]) for r in rounds] == [
        (1, "committed"),
        (2, "committed"),
        (3, "committed"),
        (4, "stopped"),
    ]
    assert rounds[1]["parent_model"] == M1 and rounds[1]["model_digest"] == M2
    assert rounds[3]["reason"] == "too few sites"
    assert len(trained.call(a.key, "GET", "/v1/rounds").json()) == 4
    assert trained.call(a.key, "GET", "/v1/jobs/unknown/rounds").status_code == 404
