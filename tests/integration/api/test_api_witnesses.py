"""Checkpoint publication with a witness quorum, on a real server over real HTTP.

Three factories are the consortium's witnesses, two cosignatures publish a
checkpoint.  Witnesses run the client (``FactoryWitness.cosign_pending``, and
``dure factory witness cosign --url`` once) against a coordinator served by
uvicorn on a free loopback port, on SQLite and PostgreSQL; every signature is
real.  Refusals are sent through the app's test client.
"""

from __future__ import annotations

import socket
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
import uvicorn
from sqlalchemy import func, select
from tests.builders.api import CONSORTIUM, Party, World, build_world, digest_of, make_party
from tests.builders.ledger import postgres_schema
from typer.testing import CliRunner

from dure.cli import factory_witness
from dure.client.audit.auditor import AuditSettings, run_audit
from dure.client.audit.errors import WitnessRefusedError
from dure.client.audit.source import HttpLedgerSource
from dure.client.audit.witness import FactoryWitness, WitnessEndpoint
from dure.policies.audit.witness import check_quorum
from dure.policies.checkpoint import Checkpoint, Cosigner, open_checkpoint
from dure.policies.encoding import b64encode
from dure.policies.examples import EXAMPLE_NOW
from dure.policies.keys import SigningKey
from dure.policies.note import NoteSignature, SignedNote
from dure.server.api.app import create_app
from dure.server.api.services import Services
from dure.server.ledger.export import export_ledger
from dure.server.ledger.witness_tables import WITNESS_TABLES
from dure.server.settings import ServiceSettings

with warnings.catch_warnings():
    # starlette.testclient reads anyio.abc.BlockingPortal, an alias anyio deprecates.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

NOW = 1_795_000_000
NAMES = ("factory-a", "factory-b", "factory-c")


@pytest.fixture(scope="module")
def cosigners() -> dict[str, Cosigner]:
    return {name: Cosigner.generate(f"{name}.test/witness") for name in NAMES}


def _settings(cosigners: dict[str, Cosigner], quorum: int = 2) -> dict[str, Any]:
    keys = tuple(c.verifier().to_vkey() for c in cosigners.values())
    return {"witness_keys": keys, "witness_quorum": quorum}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def quorum_world(
    request: pytest.FixtureRequest, tmp_path: Path, cosigners: dict[str, Cosigner]
) -> Iterator[World]:
    if request.param == "sqlite":
        with build_world(f"sqlite:///{tmp_path / 'c.db'}", **_settings(cosigners)) as world:
            yield world
        return
    with postgres_schema() as url, build_world(url, **_settings(cosigners)) as world:
        yield world


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unanimous_world(
    request: pytest.FixtureRequest, tmp_path: Path, cosigners: dict[str, Cosigner]
) -> Iterator[World]:
    settings = _settings(cosigners, quorum=3)
    if request.param == "sqlite":
        with build_world(f"sqlite:///{tmp_path / 'c.db'}", **settings) as world:
            yield world
        return
    with postgres_schema() as url, build_world(url, **settings) as world:
        yield world


@contextmanager
def serving(world: World) -> Iterator[str]:
    """Serve ``world``'s app with uvicorn on a free loopback port; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        world.client.app, lifespan="off", ws="none", http="h11", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    try:
        thread.start()
        started = threading.Event()
        while thread.is_alive() and not server.started:
            started.wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextmanager
def coordinator(
    db_url: str, key: SigningKey, operator: SigningKey, sites: dict[str, Party], **settings: Any
) -> Iterator[World]:
    """A coordinator like ``build_world``'s, with a given ledger key, operator and sites."""
    config = ServiceSettings(
        db_url=db_url,
        ledger_name="dure.test/ledger",
        operator_keys=(b64encode(operator.public.raw),),
        consortium=CONSORTIUM,
        **settings,
    )
    clock = [EXAMPLE_NOW]
    services = Services.from_settings(
        config, ledger_key=key, clock=lambda: clock[0], create_schema=True
    )
    try:
        with TestClient(create_app(config, services=services)) as client:
            yield World(client, services, operator, sites, clock)
    finally:
        services.close()


def _post(world: World, note: str) -> Any:
    headers = {"content-type": "text/plain; charset=utf-8"}
    return world.client.post("/v1/witness/cosignatures", content=note.encode(), headers=headers)


def _witness(world: World, tmp_path: Path, cosigner: Cosigner) -> FactoryWitness:
    return FactoryWitness(
        tmp_path / cosigner.name.split(".")[0], cosigner, world.services.ledger.verifier()
    )


def _published(world: World) -> str:
    answer = world.client.get("/v1/ledger/checkpoint")
    assert answer.status_code == 200, answer.text
    return answer.text


def _unpublished(world: World) -> None:
    answer = world.client.get("/v1/ledger/checkpoint")
    assert answer.status_code == 404 and answer.json()["code"] == "server.unpublished"


def _stored(world: World) -> tuple[int, int]:
    cosignatures, published = WITNESS_TABLES
    with world.services.db.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(cosignatures)).scalar_one()
        pub = conn.execute(select(func.count()).select_from(published)).scalar_one()
    return int(count), int(pub)


def test_a_checkpoint_is_published_at_two_of_three_cosignatures(
    quorum_world: World, cosigners: dict[str, Cosigner], tmp_path: Path
) -> None:
    world = quorum_world
    world.register_all()
    _unpublished(world)
    a, b, c = (_witness(world, tmp_path, cosigners[n]) for n in NAMES)
    with serving(world) as url, WitnessEndpoint(url) as endpoint:
        first = a.cosign_pending(endpoint, NOW)
        assert (first.cosigned, first.quorum, first.published) == (
            ("factory-a.test/witness",),
            2,
            False,
        )
        _unpublished(world)  # one cosignature is not the quorum
        second = b.cosign_pending(endpoint, NOW + 1)
        assert second.published and second.size == first.size
        note = _published(world)
        assert open_checkpoint(note, world.services.ledger.verifier()).size == first.size
        witnesses = [w.verifier() for w in cosigners.values()]
        result = check_quorum(note, witnesses, 2)
        assert result.met and set(result.cosigned) == {a.cosigner.name, b.cosigner.name}
        # The tree grows: the published checkpoint stays until the quorum cosigns the new one.
        world.play_round(1, ["factory-a", "factory-b"], digest_of("m1"), None)
        assert c.cosign_pending(endpoint, NOW + 2).published is False  # c's first checkpoint
        assert _published(world) == note
        grown = a.cosign_pending(endpoint, NOW + 3)  # a checks consistency with its last one
        assert grown.published and grown.size > first.size
        newer = _published(world)
        assert open_checkpoint(newer, world.services.ledger.verifier()).size == grown.size
        assert set(check_quorum(newer, witnesses, 2).cosigned) == {a.cosigner.name, c.cosigner.name}
        with HttpLedgerSource(url) as source:  # the auditor checks the pinned witness keys
            audited = run_audit(
                source, AuditSettings(world.services.ledger.verifier(), tuple(witnesses), 2)
            )
            assert audited.quorum is not None and audited.quorum.met
            assert "checkpoint.witnesses" not in [f.check for f in audited.findings]
            strangers = tuple(Cosigner.generate(f"x{i}.test/w").verifier() for i in range(2))
            refused = run_audit(
                source, AuditSettings(world.services.ledger.verifier(), strangers, 2)
            )
            assert "checkpoint.witnesses" in [f.check for f in refused.findings]
    exported = export_ledger(world.services.ledger.store, tmp_path / "export")
    assert exported.checkpoint.size == grown.size  # the export carries the cosignatures too
    assert check_quorum((tmp_path / "export" / "checkpoint").read_text(), witnesses, 2).met


def test_forged_unknown_stale_and_malformed_cosignatures_are_refused(
    quorum_world: World, cosigners: dict[str, Cosigner]
) -> None:
    world = quorum_world
    world.register_all()
    pending = world.client.get("/v1/witness/checkpoint").text
    checkpoint = Checkpoint.from_text(SignedNote.from_text(pending).text)
    line = cosigners["factory-a"].cosign(checkpoint, NOW)
    forged = NoteSignature(
        line.name, line.key_id, line.signature[:-1] + bytes([line.signature[-1] ^ 1])
    )
    answer = _post(world, SignedNote.from_text(pending).with_signature(forged).to_text())
    assert (answer.status_code, answer.json()["code"]) == (401, "server.witness_signature")
    stranger = Cosigner.generate("factory-a.test/witness")  # the right name, another key
    unknown = SignedNote.from_text(pending).with_signature(stranger.cosign(checkpoint, NOW))
    answer = _post(world, unknown.to_text())
    assert (answer.status_code, answer.json()["code"]) == (403, "server.witness_unknown")
    assert "configured witnesses" in answer.json()["detail"]
    assert _post(world, "not a note\n").json()["code"] == "server.cosignature"
    assert _post(world, "not a note\n").status_code == 422
    # A cosignature of the pending checkpoint, posted after the coordinator signed a newer one.
    stale = SignedNote.from_text(pending).with_signature(line).to_text()
    world.play_round(1, ["factory-a"], digest_of("m1"), None)
    assert world.client.get("/v1/witness/checkpoint").text != pending  # signs the grown tree
    answer = _post(world, stale)
    assert (answer.status_code, answer.json()["code"]) == (409, "server.witness_stale")
    assert _stored(world) == (0, 0)
    _unpublished(world)


def test_a_witness_refuses_a_forked_checkpoint_and_posts_nothing(
    tmp_path: Path, cosigners: dict[str, Cosigner]
) -> None:
    key, operator, settings = SigningKey.generate(), SigningKey.generate(), _settings(cosigners)
    sites = {name: make_party(name) for name in NAMES}
    with (
        coordinator(f"sqlite:///{tmp_path / 'h.db'}", key, operator, sites, **settings) as honest,
        coordinator(f"sqlite:///{tmp_path / 'f.db'}", key, operator, sites, **settings) as forked,
    ):
        honest.register_all()
        for name in reversed(NAMES):  # the same documents in another order: another history
            party = forked.sites[name]
            assert (
                forked.call(forked.operator, "POST", "/v1/sites", party.identity).status_code == 201
            )
            assert forked.call(party.key, "POST", "/v1/policies", party.policy).status_code == 201
        forked.play_round(1, ["factory-a"], digest_of("m1"), None)
        assert forked.services.ledger.store.size() > honest.services.ledger.store.size()
        a = _witness(honest, tmp_path, cosigners["factory-a"])
        with serving(honest) as url, WitnessEndpoint(url) as endpoint:
            a.cosign_pending(endpoint, NOW)
        kept = a.last()
        with (
            serving(forked) as url,
            WitnessEndpoint(url) as endpoint,
            pytest.raises(WitnessRefusedError, match="fork detected"),
        ):
            a.cosign_pending(endpoint, NOW + 1)
        assert a.last() == kept and _stored(forked) == (0, 0)


def test_the_cli_fetches_cosigns_and_posts(
    quorum_world: World, cosigners: dict[str, Cosigner], tmp_path: Path
) -> None:
    world = quorum_world
    world.register_all()
    keys = {}
    for name in ("factory-a", "factory-b"):
        keys[name] = tmp_path / f"{name}.key"
        keys[name].write_text(cosigners[name].to_skey() + "\n")
    log_key = tmp_path / "ledger.pub"
    log_key.write_text(world.services.ledger.public_key() + "\n")
    app = typer.Typer()
    factory = typer.Typer()
    factory_witness.register(factory)
    app.add_typer(factory, name="factory")
    with serving(world) as url:
        for name, expected in (("factory-a", "not yet published"), ("factory-b", "published")):
            args = ["factory", "witness", "cosign", "--url", url, "--key", str(keys[name])]
            args += ["--public-key", str(log_key), "--home", str(tmp_path / name)]
            result = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
            assert result.exit_code == 0, result.output
            assert expected in result.output and "— factory-" in result.output
    assert check_quorum(_published(world), [c.verifier() for c in cosigners.values()], 2).met


def test_witnesses_posting_at_once_still_reach_the_quorum(
    unanimous_world: World, cosigners: dict[str, Cosigner], tmp_path: Path
) -> None:
    world = unanimous_world
    world.register_all()
    witnesses = [_witness(world, tmp_path, cosigners[name]) for name in NAMES]
    start = threading.Barrier(len(witnesses))
    with serving(world) as url:
        for step in range(3):
            if step:
                world.play_round(step, ["factory-a"], digest_of(f"m{step}"), None)
            pending = world.client.get("/v1/witness/checkpoint").text

            def cosign(witness: FactoryWitness, now: int = NOW + step) -> bool:
                with WitnessEndpoint(url) as endpoint:
                    start.wait(30)
                    return witness.cosign_pending(endpoint, now).published

            with ThreadPoolExecutor(len(witnesses)) as pool:
                outcomes = list(pool.map(cosign, witnesses))
            assert outcomes.count(True) >= 1  # the last of the three saw all three
            note = _published(world)
            assert SignedNote.from_text(note).text == SignedNote.from_text(pending).text
            assert check_quorum(note, [c.verifier() for c in cosigners.values()], 3).met
