"""The weak-key table run against every place an Ed25519 public key enters Dure.

Each key in :data:`~tests.builders.weak_keys.WEAK_KEYS` (the eight small-order
points, their non-canonical spellings, ``y >= p``, points off the curve) is
accepted by ``cryptography``; under the small-order ones anyone can forge
signatures.  Every entry point must refuse every one with the kernel's error
(a 4xx over HTTP, the catalog's exit code at the command line) and a reason,
leaving the registry and the ledger exactly as they were.

Entry points (``grep -rn "VerifyKey\\|from_public_bytes\\|from_vkey" policies client server``):

- kernel: ``VerifyKey`` from raw bytes and PEM, site identity documents, C2SP
  note verifier keys (log) and cosignature verifier keys (witnesses);
- coordinator API: site registration (by the operator, and self-registration
  with forged signatures under open registration), auditor registration;
- coordinator settings: operator keys and witness keys (``coordinator serve``);
- CLI: ``--signer``/``--operator`` (policy, job), ``audit run --public-key /
  --witness / --operator-key``, ``factory witness cosign --public-key``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tests.builders.api import World, build_world, supernode_line
from tests.builders.weak_keys import SMALL_ORDER_POINTS, WEAK_KEYS, forge_envelope, pem, vkey
from typer.testing import CliRunner

from dure.cli.main import app
from dure.policies.canonical import canonical_bytes
from dure.policies.checkpoint import CosignatureVerifier
from dure.policies.dsse import PAYLOAD_TYPES
from dure.policies.encoding import b64encode, sha256, to_hex
from dure.policies.errors import CATALOG, DureError, EncodingError, NoteError
from dure.policies.identity import SiteIdentity
from dure.policies.keys import VerifyKey
from dure.policies.note import Ed25519Verifier
from dure.server.api.signing import REQUEST_HEADER, RequestClaim, body_digest
from dure.server.settings import ServiceSettings

KEYS = pytest.mark.parametrize("raw", WEAK_KEYS.values(), ids=list(WEAK_KEYS))
REASONS = ("small order", "not canonical", "not decode")
runner = CliRunner()


def names_the_problem(text: str) -> bool:
    return any(reason in text for reason in REASONS)


# --- kernel -------------------------------------------------------------------------------


@KEYS
def test_verify_key_from_raw_bytes(raw: bytes) -> None:
    with pytest.raises(EncodingError) as caught:
        VerifyKey(raw)
    assert names_the_problem(caught.value.message) and "dure keys new" in caught.value.hint


@KEYS
def test_verify_key_from_a_pem_file(raw: bytes, tmp_path: Path) -> None:
    (tmp_path / "weak.pub").write_bytes(pem(raw))
    with pytest.raises(EncodingError) as caught:
        VerifyKey.load(tmp_path / "weak.pub")
    assert str(tmp_path / "weak.pub") in caught.value.message
    assert names_the_problem(caught.value.message)


@KEYS
def test_note_verifier_key_text(raw: bytes) -> None:
    with pytest.raises(NoteError) as caught:
        Ed25519Verifier.from_vkey(vkey("log.example", raw))
    assert names_the_problem(caught.value.message)


@KEYS
def test_witness_verifier_key_text(raw: bytes) -> None:
    with pytest.raises(NoteError) as caught:
        CosignatureVerifier.from_vkey(vkey("witness.example", raw, 0x04))
    assert names_the_problem(caught.value.message)


def identity_payload(
    raw: bytes, issued: str = "2026-11-15T09:00:00Z", site: str = "mallory"
) -> bytes:
    return canonical_bytes(
        {
            "type": "dure/site-identity/v1",
            "site": site,
            "signing_key": b64encode(raw),
            "supernode_key": supernode_line(),
            "issued": issued,
        }
    )


@KEYS
def test_site_identity_document(raw: bytes) -> None:
    with pytest.raises(EncodingError) as caught:
        SiteIdentity.from_canonical_bytes(identity_payload(raw))
    assert names_the_problem(caught.value.message)


# --- coordinator settings: operator and witness keys ----------------------------------------


@KEYS
def test_operator_key_setting(raw: bytes, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="|".join(REASONS)):
        ServiceSettings(operator_keys=(b64encode(raw),))
    (tmp_path / "operator.pub").write_bytes(pem(raw))
    with pytest.raises(DureError) as caught:
        ServiceSettings.from_env({}, operator_keys=(str(tmp_path / "operator.pub"),))
    assert names_the_problem(caught.value.message)


@KEYS
def test_witness_key_setting(raw: bytes) -> None:
    with pytest.raises(DureError) as caught:
        ServiceSettings.from_env({}, witness_keys=(vkey("witness.example", raw, 0x04),))
    assert names_the_problem(caught.value.message)


# --- coordinator API --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path = tmp_path_factory.mktemp("coordinator") / "coordinator.db"
    with build_world(f"sqlite:///{path}", open_registration=True) as built:
        built.register_all()
        yield built


def snapshot(world: World) -> tuple[Any, ...]:
    services = world.services
    return (
        services.ledger.store.size(),
        [site.name for site in services.registry.sites()],
        [(a.name, a.key.raw) for a in services.auditors.auditors("factory-a")],
    )


def assert_refused(
    world: World, before: tuple[Any, ...], response: Any, *, reason: bool = True
) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["detail"], response.text
    assert not reason or names_the_problem(response.text), response.text
    assert snapshot(world) == before


@KEYS
def test_api_site_registration_by_the_operator(world: World, raw: bytes) -> None:
    before = snapshot(world)
    envelope, _ = forge_envelope(PAYLOAD_TYPES["site-identity"], identity_payload(raw), raw)
    response = world.call(world.operator, "POST", "/v1/sites", envelope)
    assert_refused(world, before, response)


def forged_request(raw: bytes, method: str, target: str, body: bytes, world: World) -> str:
    """A ``Dure-Request`` header "signed" by ``raw`` without a private key."""
    for attempt in range(64):
        claim = RequestClaim.from_value(
            {
                "type": "dure/request/v1",
                "method": method,
                "path": target,
                "body_sha256": body_digest(body),
                "timestamp": world.clock[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "nonce": f"{attempt:032x}",
            }
        )
        envelope, verifies = forge_envelope(
            PAYLOAD_TYPES["request"], claim.to_canonical_bytes(), raw
        )
        if verifies or raw not in SMALL_ORDER_POINTS.values():
            break
    return base64.b64encode(envelope.to_json()).decode("ascii")


def forged_identity(raw: bytes) -> bytes:
    for second in range(60):
        site = f"mallory-{to_hex(sha256(raw))[:8]}"  # one site per key: no conflicts
        payload = identity_payload(raw, f"2026-11-15T09:00:{second:02d}Z", site)
        envelope, verifies = forge_envelope(PAYLOAD_TYPES["site-identity"], payload, raw)
        if verifies or raw not in SMALL_ORDER_POINTS.values():
            break
    return envelope.to_json()


@KEYS
def test_api_self_registration_with_forged_signatures(world: World, raw: bytes) -> None:
    # Open registration: the request is "signed" by the key the identity declares.
    # For the small-order keys both forged signatures verify under cryptography.
    # The registrant check refuses the identity with the kernel's reason for the key.
    before = snapshot(world)
    body = forged_identity(raw)
    header = forged_request(raw, "POST", "/v1/sites", body, world)
    response = world.client.post(
        "/v1/sites",
        content=body,
        headers={REQUEST_HEADER: header, "content-type": "application/json"},
    )
    assert_refused(world, before, response)


@KEYS
def test_api_auditor_registration(world: World, raw: bytes) -> None:
    before = snapshot(world)
    party = world.sites["factory-a"]
    body = {"name": "weak auditor", "key": b64encode(raw)}
    response = world.call(party.key, "POST", "/v1/sites/factory-a/auditors", body)
    assert_refused(world, before, response)


# --- command line -----------------------------------------------------------------------------


def dure(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def assert_cli_refused(code: int, out: str, error: str = "kernel.encoding") -> None:
    assert code == CATALOG[error].exit_code, out
    assert "Traceback" not in out and names_the_problem(out), out


@pytest.fixture(scope="module")
def signed_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signed")
    for name in ("site", "operator"):
        assert dure("keys", "new", folder / f"{name}.key")[0] == 0
    for kind, key in (("policy", "site"), ("job", "operator")):
        (folder / f"{kind}.json").write_text(dure(kind, "template")[1])
        code, out = dure(
            kind,
            "sign",
            folder / f"{kind}.json",
            "--key",
            folder / f"{key}.key",
            "--out",
            folder / f"{kind}.dsse",
        )
        assert code == 0, out
    return folder


@KEYS
def test_cli_signer_and_operator_key_files(raw: bytes, signed_files: Path, tmp_path: Path) -> None:
    weak = tmp_path / "weak.pub"
    weak.write_bytes(pem(raw))
    f = signed_files
    assert_cli_refused(*dure("policy", "verify", f / "policy.dsse", "--signer", weak))
    assert_cli_refused(*dure("job", "verify", f / "job.dsse", "--signer", weak))
    assert_cli_refused(
        *dure(
            "policy",
            "check",
            f / "policy.dsse",
            "--signer",
            f / "site.key.pub",
            "--job",
            f / "job.dsse",
            "--operator",
            weak,
        )
    )


@KEYS
def test_cli_audit_keys(raw: bytes, signed_files: Path, tmp_path: Path) -> None:
    good_log = vkey("log.example", VerifyKey.load(signed_files / "site.key.pub").raw)
    weak_pem = tmp_path / "operator.pub"
    weak_pem.write_bytes(pem(raw))
    base: list[str | Path] = [
        "audit",
        "run",
        "--export",
        tmp_path / "no-export",
        "--home",
        tmp_path / "home",
    ]
    code, out = dure(*base, "--public-key", vkey("log.example", raw))
    assert_cli_refused(code, out, "kernel.note")
    code, out = dure(
        *base, "--public-key", good_log, "--witness", vkey("witness.example", raw, 0x04)
    )
    assert_cli_refused(code, out, "kernel.note")
    code, out = dure(
        *base,
        "--public-key",
        good_log,
        "--operator-key",
        weak_pem,
        "--documents",
        tmp_path,
    )
    assert_cli_refused(code, out)


@KEYS
def test_cli_witness_cosign_log_key(raw: bytes, tmp_path: Path) -> None:
    code, out = dure(
        "factory",
        "witness",
        "cosign",
        "--key",
        tmp_path / "witness.key",
        "--public-key",
        vkey("log.example", raw),
        "--checkpoint",
        tmp_path / "note",
        "--home",
        tmp_path,
    )
    assert_cli_refused(code, out, "kernel.note")


@KEYS
def test_cli_coordinator_serve_operator_and_witness_keys(raw: bytes, tmp_path: Path) -> None:
    # A fresh database without --upgrade: nothing would ever be served.
    db = f"sqlite:///{tmp_path / 'c.db'}"
    serve = ["coordinator", "serve", "--db", db]
    (tmp_path / "operator.pub").write_bytes(pem(raw))
    assert_cli_refused(*dure(*serve, "--operator-key", tmp_path / "operator.pub"))
    code, out = dure(*serve, "--witness-key", vkey("witness.example", raw, 0x04))
    assert_cli_refused(code, out, "kernel.document")
