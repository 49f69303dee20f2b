"""The ledger read API answers exactly as docs/ledger-format.md says, and its proofs verify."""

from __future__ import annotations

import base64

import pytest
from tests.builders.api import World
from tests.builders.ledger import sample_entries

from dure.policies.checkpoint import open_checkpoint
from dure.policies.entries import LedgerEntry
from dure.policies.merkle import leaf_hash, root_hash, verify_consistency, verify_inclusion
from dure.policies.note import Ed25519Verifier


@pytest.fixture
def filled(any_world: World) -> World:
    any_world.services.ledger.append_all(sample_entries() * 3)
    return any_world


def test_checkpoint_and_public_key_are_public_plain_text(filled: World) -> None:
    key = filled.client.get("/v1/ledger/public-key")
    assert key.status_code == 200 and key.headers["content-type"].startswith("text/plain")
    assert key.text == filled.services.ledger.public_key()
    note = filled.client.get("/v1/ledger/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(note.text, Ed25519Verifier.from_vkey(key.text))
    assert checkpoint.size == 33 and checkpoint.origin == "dure.test/ledger"
    leaves = filled.services.ledger.store.entries(0, 33)
    assert checkpoint.root_hash == root_hash(leaves)


def test_entries_are_the_exact_leaves_start_inclusive_end_exclusive(filled: World) -> None:
    response = filled.client.get("/v1/ledger/entries?start=3&end=7")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["entries"]
    assert [e["index"] for e in body["entries"]] == [3, 4, 5, 6]
    leaves = [base64.b64decode(e["entry"]) for e in body["entries"]]
    assert leaves == filled.services.ledger.store.entries(3, 7)
    assert LedgerEntry.from_bytes(leaves[0]).kind == "site_admitted"
    assert filled.client.get("/v1/ledger/entries?start=5&end=5").json() == {"entries": []}


def test_inclusion_and_consistency_proofs_verify_against_the_checkpoint(filled: World) -> None:
    leaves = filled.services.ledger.store.entries(0, 33)
    for index, size in ((0, 1), (5, 33), (32, 33), (7, 20)):
        body = filled.client.get(f"/v1/ledger/proof/inclusion?index={index}&size={size}").json()
        assert set(body) == {"index", "size", "hashes"} and (body["index"], body["size"]) == (
            index,
            size,
        )
        proof = [base64.b64decode(h) for h in body["hashes"]]
        verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root_hash(leaves[:size]))
    for first, second in ((1, 33), (10, 20), (33, 33)):
        body = filled.client.get(
            f"/v1/ledger/proof/consistency?first={first}&second={second}"
        ).json()
        assert set(body) == {"first", "second", "hashes"}
        proof = [base64.b64decode(h) for h in body["hashes"]]
        verify_consistency(
            first, second, proof, root_hash(leaves[:first]), root_hash(leaves[:second])
        )


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [
        ("/v1/ledger/entries?start=5&end=99", 400, "server.ledger_range"),
        ("/v1/ledger/entries?start=6&end=5", 400, "server.ledger_range"),
        ("/v1/ledger/entries?start=0&end=5000", 422, "server.request"),
        ("/v1/ledger/entries?start=-1&end=5", 422, "server.request"),
        ("/v1/ledger/entries?start=0", 422, "server.request"),
        ("/v1/ledger/proof/inclusion?index=33&size=33", 400, "kernel.proof_request"),
        ("/v1/ledger/proof/inclusion?index=0&size=34", 400, "kernel.proof_request"),
        ("/v1/ledger/proof/inclusion?index=0&size=99999999999999999999", 422, "server.request"),
        ("/v1/ledger/proof/consistency?first=0&second=5", 400, "kernel.proof_request"),
        ("/v1/ledger/proof/consistency?first=6&second=5", 400, "kernel.proof_request"),
        ("/v1/ledger/proof/consistency?first=x&second=5", 422, "server.request"),
    ],
)
def test_impossible_requests_are_4xx_problems(
    filled: World, target: str, status: int, code: str
) -> None:
    response = filled.client.get(target)
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.parametrize(
    ("fast", "slow"),
    [
        (
            "/v1/ledger/proof/inclusion?size=20&index=7",
            "/v1/ledger/proof/inclusion?index=7&size=20&",
        ),
        (
            "/v1/ledger/proof/inclusion?index=40&size=40",
            "/v1/ledger/proof/inclusion?index=40&size=40&",
        ),
        (
            "/v1/ledger/proof/consistency?first=3&second=33",
            "/v1/ledger/proof/consistency?first=03&second=33",
        ),
        (
            "/v1/ledger/proof/consistency?first=0&second=3",
            "/v1/ledger/proof/consistency?second=3&first=0&",
        ),
    ],
)
def test_the_fast_path_answers_like_the_routes(filled: World, fast: str, slow: str) -> None:
    quick, full = filled.client.get(fast), filled.client.get(slow)
    assert quick.status_code == full.status_code
    assert quick.headers["content-type"] == full.headers["content-type"]
    assert quick.json() == full.json()
