"""The policy gate, on real Flower Messages: refuse before any data is read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from tests.builders.federation import NOW, Consortium, build_consortium, plain_policy
from tests.builders.flower import set_task_identity, wire_copy

from dure.client.federation.errors import FederationSetupError
from dure.client.federation.gate import authorisation, policy_gate
from dure.client.federation.settings import FactorySettings, load_policy
from dure.policies.examples import EXAMPLE_PURPOSE
from dure.policies.keys import SigningKey
from dure.policies.policy import UsagePolicy
from dure.policies.signed import sign_document


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return build_consortium(tmp_path_factory.mktemp("gate"), ("factory-a",), episodes=1)


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    set_task_identity()


def _app(settings: FactorySettings, seen: list[str]) -> ClientApp:
    app = ClientApp()

    @app.train(mods=[policy_gate(lambda _ctx: settings, lambda: NOW)])
    def train(message: Message, context: Context) -> Message:
        auth = authorisation()
        seen.append(auth.job.document.job_id)
        return Message(
            RecordDict({"config": ConfigRecord({"selector": auth.decision.selector.describe()})}),
            reply_to=message,
        )

    return app


def _train(job: bytes, site: str = "factory-a", round: int = 1) -> Message:
    message = Message(
        RecordDict({"config": ConfigRecord({"job": job, "round": round, "site": site})}),
        dst_node_id=101,
        message_type="train",
    )
    message.metadata.__dict__["_message_id"] = "m1"
    return wire_copy(message)


def _context() -> Context:
    return Context(run_id=7, node_id=101, node_config={}, state=RecordDict(), run_config={})


def _reasons(reply: Message) -> list[str]:
    assert reply.has_error() and reply.error.code == 1001
    return json.loads(reply.error.reason or "")["reasons"]  # type: ignore[no-any-return]


def test_an_allowed_job_reaches_the_handler_with_the_decision(consortium: Consortium) -> None:
    seen: list[str] = []
    site = consortium.sites["factory-a"]
    reply = _app(site.settings, seen)(_train(consortium.job().to_json()), _context())
    assert not reply.has_error() and seen == ["bc-pick-place-1"]
    assert "dure:task isAnyOf" in str(reply.content["config"]["selector"])


def test_a_job_with_a_bad_signature_is_refused_and_no_data_is_touched(
    consortium: Consortium, tmp_path: Path
) -> None:
    seen: list[str] = []
    home = tmp_path / "absent-home"
    settings = dataclasses.replace(consortium.sites["factory-a"].settings, home=home)
    forged = consortium.job(key=SigningKey.generate()).to_json()
    reasons = _reasons(_app(settings, seen)(_train(forged), _context()))
    assert seen == [] and not home.exists()
    assert reasons[0].startswith("[gate.signature] the job does not verify with a pinned key")


def test_a_tampered_job_is_refused(consortium: Consortium) -> None:
    envelope = json.loads(consortium.job().to_json())
    envelope["payload"] = envelope["payload"].replace("A", "B", 1)
    reasons = _reasons(
        _app(consortium.sites["factory-a"].settings, [])(
            _train(json.dumps(envelope).encode()), _context()
        )
    )
    assert reasons[0].startswith("[gate.signature]")


def test_the_factorys_own_policy_decides(consortium: Consortium) -> None:
    site = consortium.sites["factory-a"]
    local = plain_policy("factory-a")
    local["prohibition"] = [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": [EXAMPLE_PURPOSE]}
            ],
        }
    ]
    envelope = sign_document("policy", UsagePolicy.from_value(local), site.key)
    settings = dataclasses.replace(
        site.settings, policy=load_policy(envelope.to_json(), site.key, "local")
    )
    reasons = _reasons(_app(settings, [])(_train(consortium.job().to_json()), _context()))
    assert any(r.startswith("[prohibition] prohibition[0] (use) fires") for r in reasons)


def test_a_policy_the_factory_revoked_refuses(consortium: Consortium) -> None:
    site = consortium.sites["factory-a"]
    settings = dataclasses.replace(
        site.settings, revoked=frozenset({site.settings.policy.document_id})
    )
    reasons = _reasons(_app(settings, [])(_train(consortium.job().to_json()), _context()))
    assert reasons[0] == "[revocation] the policy has been revoked by its site"


def test_rounds_beyond_the_job_and_other_sites_are_refused(consortium: Consortium) -> None:
    app = _app(consortium.sites["factory-a"].settings, [])
    job = consortium.job().to_json()
    assert any(r.startswith("[job.round]") for r in _reasons(app(_train(job, round=4), _context())))
    assert _reasons(app(_train(job, site="factory-b"), _context()))[0].startswith("[gate.site]")


def test_a_malformed_instruction_is_refused(consortium: Consortium) -> None:
    app = _app(consortium.sites["factory-a"].settings, [])
    message = Message(
        RecordDict({"config": ConfigRecord({"round": 1})}), dst_node_id=101, message_type="train"
    )
    message.metadata.__dict__["_message_id"] = "m2"
    assert _reasons(app(wire_copy(message), _context()))[0].startswith("[gate.message]")


def test_a_handler_without_the_gate_cannot_get_an_authorisation() -> None:
    with pytest.raises(FederationSetupError, match="without the policy gate"):
        authorisation()
