"""The auditor's I/O edges: sources that answer nonsense, kept checkpoints, the witness."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dure.client.audit.errors import AuditStateError, LedgerSourceError, WitnessRefusedError
from dure.client.audit.evidence import read_documents, read_receipts
from dure.client.audit.integrity import check_tree, fetch_entries
from dure.client.audit.source import ExportLedgerSource, HttpLedgerSource, parse_proof
from dure.client.audit.state import CheckpointStore
from dure.client.audit.witness import FactoryWitness
from dure.policies.checkpoint import Checkpoint, Cosigner, sign_checkpoint, verify_cosignatures
from dure.policies.encoding import b64encode
from dure.policies.note import Ed25519Signer
from dure.policies.tree import MerkleTree

LOG = Ed25519Signer.from_seed("dure.test/log", bytes(range(32)))
Handler = Callable[[httpx.Request], httpx.Response]


def _tree(n: int, prefix: str = "entry") -> MerkleTree:
    tree = MerkleTree()
    for i in range(n):
        tree.append(f"{prefix} {i}".encode())
    return tree


def _log(tree: MerkleTree, leaves: list[bytes]) -> Handler:
    """A read API over ``leaves`` whose proofs come from ``tree`` (the log's stored hashes)."""

    def handler(request: httpx.Request) -> httpx.Response:
        q = {k: int(v) for k, v in request.url.params.items()}
        if request.url.path == "/v1/ledger/checkpoint":
            cp = Checkpoint(LOG.name, tree.size, tree.root())
            return httpx.Response(200, text=sign_checkpoint(cp, LOG))
        if request.url.path == "/v1/ledger/entries":
            rows = leaves[q["start"] : q["end"]]
            items = [{"index": q["start"] + i, "entry": b64encode(e)} for i, e in enumerate(rows)]
            return httpx.Response(200, json={"entries": items})
        hashes = [b64encode(h) for h in tree.consistency_proof(q["first"], q["second"])]
        return httpx.Response(200, json={**q, "hashes": hashes})

    return handler


def _source(handler: Handler) -> HttpLedgerSource:
    return HttpLedgerSource("http://log.test/", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(503, text="down"), "HTTP 503"),
        (httpx.Response(200, text="not json"), "not valid JSON"),
        (httpx.Response(200, json={"entries": "x"}), "expected"),
        (httpx.Response(200, json={"entries": [{"index": 0}]}), "index"),
        (httpx.Response(200, json={"entries": [{"index": 0, "entry": "*"}]}), "not base64"),
    ],
)
def test_bad_entry_answers_are_source_errors(response: httpx.Response, match: str) -> None:
    with _source(lambda _: response) as source, pytest.raises(LedgerSourceError, match=match):
        source.entries(0, 1)


def test_proofs_must_echo_the_request() -> None:
    good = {"first": 2, "second": 5, "hashes": [b64encode(bytes(32))]}
    assert parse_proof(good, "p", {"first": 2, "second": 5}) == [bytes(32)]
    for bad in (
        {**good, "second": 6},
        {**good, "hashes": ["AAAA"]},
        {**good, "hashes": [1]},
        {"first": 2, "second": 5},
    ):
        with pytest.raises(LedgerSourceError):
            parse_proof(bad, "p", {"first": 2, "second": 5})


def test_a_dropped_request_is_a_source_error() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with _source(fail) as source, pytest.raises(LedgerSourceError, match="request failed"):
        source.checkpoint()


def test_a_changed_entry_is_located_with_served_proofs() -> None:
    tree = _tree(37)
    leaves = [f"entry {i}".encode() for i in range(37)]
    for bad in (0, 1, 16, 31, 36):
        changed = [*leaves[:bad], b"forged", *leaves[bad + 1 :]]
        with _source(_log(tree, changed)) as source:
            fetched, problems = fetch_entries(source, 37, chunk=10)
            checked = check_tree(fetched, Checkpoint(LOG.name, 37, tree.root()), source)
        assert not problems and not checked.matches
        assert checked.findings[0].index == bad


def test_a_missing_entry_is_located() -> None:
    tree = _tree(20)
    leaves = [f"entry {i}".encode() for i in range(20)]
    with _source(_log(tree, leaves[:7] + leaves[8:])) as source:
        fetched, problems = fetch_entries(source, 20, chunk=8)
        checked = check_tree(fetched, Checkpoint(LOG.name, 20, tree.root()), source)
    assert [(p.check, p.index) for p in problems] == [("entries.count", 19)]
    assert checked.findings[0].index == 7


def test_an_export_cannot_locate_and_rejects_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "entries.jsonl").write_text('{"index": 0, "entry": "AA=="}\nnot json\n')
    bad_line = r"entries\.jsonl:2: not a valid export line: document is not valid JSON"
    with pytest.raises(LedgerSourceError, match=bad_line):
        ExportLedgerSource(tmp_path).entries(0, 2)
    assert ExportLedgerSource(tmp_path).consistency_proof(1, 2) is None
    with pytest.raises(LedgerSourceError, match="cannot read"):
        ExportLedgerSource(tmp_path / "nowhere").checkpoint()


def test_kept_checkpoints_are_checked_when_read(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    verifier = LOG.verifier()
    assert store.load(verifier) is None
    tree = _tree(3)
    note = sign_checkpoint(Checkpoint(LOG.name, 3, tree.root()), LOG)
    path = store.save(verifier, note)
    kept = store.load(verifier)
    assert kept is not None and kept.checkpoint.size == 3 and path.name.endswith(".note")
    path.write_text(note.replace("\n3\n", "\n4\n"))
    with pytest.raises(AuditStateError, match="does not verify"):
        store.load(verifier)


def test_evidence_folders(tmp_path: Path) -> None:
    with pytest.raises(LedgerSourceError, match="no receipts folder"):
        read_receipts(tmp_path / "none")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "1.json").write_text(json.dumps({"entry": "AA==", "receipt": {}}))
    with pytest.raises(LedgerSourceError, match="unreadable receipt"):
        read_receipts(tmp_path / "r")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "policy.json").write_text("{}")
    with pytest.raises(LedgerSourceError, match="not a signed document"):
        read_documents(tmp_path / "d")


def test_the_witness_keeps_what_it_cosigned_and_refuses_a_fork(tmp_path: Path) -> None:
    cosigner = Cosigner.generate("factory-a.test/witness")
    witness = FactoryWitness(tmp_path, cosigner, LOG.verifier())
    honest = _tree(8)
    first = witness.cosign_from(_source(_log(honest, [])), 1000)
    assert verify_cosignatures(first, [cosigner.verifier()])
    assert witness.last() == Checkpoint(LOG.name, 8, honest.root())
    grown = _tree(12)
    assert witness.cosign_from(_source(_log(grown, [])), 1001)
    forked = _tree(4)
    for i in range(4, 15):
        forked.append(f"forged {i}".encode())
    with pytest.raises(WitnessRefusedError, match="fork detected"):
        witness.cosign_from(_source(_log(forked, [])), 1002)
    assert witness.last() == Checkpoint(LOG.name, 12, grown.root())  # the fork was not kept
    other = FactoryWitness(tmp_path / "b", cosigner, Ed25519Signer.generate("x").verifier())
    with pytest.raises(WitnessRefusedError, match="not signed by the log"):
        other.cosign_from(_source(_log(honest, [])), 1003)
