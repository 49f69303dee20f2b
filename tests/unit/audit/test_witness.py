"""The witness's decision (cosign or refuse, with the reason) and the quorum check."""

from __future__ import annotations

import pytest

from dure.policies.audit.errors import AuditError
from dure.policies.audit.witness import check_quorum, cosign_note, decide
from dure.policies.checkpoint import (
    Checkpoint,
    Cosigner,
    add_cosignature,
    sign_checkpoint,
    verify_cosignatures,
)
from dure.policies.note import Ed25519Signer, NoteSignature
from dure.policies.tree import MerkleTree

LOG = Ed25519Signer.from_seed("dure.test/log", bytes(range(32)))
OTHER = Ed25519Signer.from_seed("dure.test/log", bytes(range(1, 33)))
NOW = 1_790_000_000


def _tree(entries: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for entry in entries:
        tree.append(entry)
    return tree


def _note(tree: MerkleTree, size: int, signer: Ed25519Signer = LOG) -> str:
    return sign_checkpoint(Checkpoint(signer.name, size, tree.root_at(size)), signer)


HONEST = _tree([f"entry {i}".encode() for i in range(9)])
FORK = _tree([f"entry {i}".encode() for i in range(4)] + [f"forged {i}".encode() for i in range(5)])


def test_first_checkpoint_is_cosigned() -> None:
    decision = decide(None, _note(HONEST, 5), LOG.verifier(), [])
    assert decision.cosign and "first" in decision.reason and decision.checkpoint is not None


def test_an_extension_is_cosigned() -> None:
    old = Checkpoint(LOG.name, 5, HONEST.root_at(5))
    decision = decide(old, _note(HONEST, 9), LOG.verifier(), HONEST.consistency_proof(5, 9))
    assert decision.cosign and not decision.fork
    same = decide(old, _note(HONEST, 5), LOG.verifier(), [])
    assert same.cosign


def test_a_fork_is_refused_with_the_reason() -> None:
    old = Checkpoint(LOG.name, 5, HONEST.root_at(5))
    decision = decide(old, _note(FORK, 9), LOG.verifier(), FORK.consistency_proof(5, 9))
    assert not decision.cosign and decision.fork
    assert "inconsistent" in decision.reason and "different history" in decision.reason
    same_size = decide(old, _note(FORK, 5), LOG.verifier(), [])
    assert not same_size.cosign and same_size.fork


@pytest.mark.parametrize(
    ("note", "proof", "reason"),
    [
        (_note(HONEST, 3), [], "shrank"),
        (_note(HONEST, 9, OTHER), [], "not signed by the log"),
        (_note(HONEST, 9), [], "inconsistent"),  # no proof at all
        (
            sign_checkpoint(Checkpoint("other.log/x", 9, HONEST.root_at(9)), LOG),
            [],
            "not 'dure.test/log'",
        ),
    ],
)
def test_refusals(note: str, proof: list[bytes], reason: str) -> None:
    old = Checkpoint(LOG.name, 5, HONEST.root_at(5))
    decision = decide(old, note, LOG.verifier(), proof)
    assert not decision.cosign and reason in decision.reason


def test_cosign_note_adds_a_valid_cosignature_and_never_cosigns_a_refusal() -> None:
    witness = Cosigner.generate("factory-a.witness")
    note = _note(HONEST, 9)
    decision = decide(None, note, LOG.verifier(), [])
    cosigned = cosign_note(note, decision, witness, NOW)
    assert [c.timestamp for c in verify_cosignatures(cosigned, [witness.verifier()])] == [NOW]
    refused = decide(Checkpoint(LOG.name, 5, HONEST.root_at(5)), _note(FORK, 9), LOG.verifier(), [])
    with pytest.raises(AuditError, match="refusing to cosign"):
        cosign_note(note, refused, witness, NOW)


def test_quorum_counts_valid_cosignatures() -> None:
    witnesses = [Cosigner.generate(f"factory-{n}.witness") for n in "abc"]
    keys = [w.verifier() for w in witnesses]
    note = _note(HONEST, 9)
    checkpoint = Checkpoint(LOG.name, 9, HONEST.root_at(9))
    for witness in witnesses[:2]:
        note = add_cosignature(note, witness.cosign(checkpoint, NOW))
    result = check_quorum(note, keys, 2)
    assert result.met and result.cosigned == ("factory-a.witness", "factory-b.witness")
    assert result.missing == ("factory-c.witness",)
    assert not check_quorum(note, keys, 3).met
    assert "2 of 3" in check_quorum(note, keys, 3).describe()


def test_an_invalid_cosignature_fails_the_quorum() -> None:
    witnesses = [Cosigner.generate(f"factory-{n}.witness") for n in "ab"]
    note = _note(HONEST, 9)
    other = Checkpoint(LOG.name, 5, HONEST.root_at(5))  # cosigned over another body
    note = add_cosignature(note, witnesses[0].cosign(Checkpoint.from_text(_body(note)), NOW))
    bad = witnesses[1].cosign(other, NOW)
    note = add_cosignature(note, NoteSignature(bad.name, bad.key_id, bad.signature))
    result = check_quorum(note, [w.verifier() for w in witnesses], 1)
    assert result.invalid == ("factory-b.witness",) and not result.met
    assert "INVALID" in result.describe()


@pytest.mark.parametrize("quorum", [0, 3])
def test_an_impossible_quorum_is_an_error(quorum: int) -> None:
    keys = [Cosigner.generate(f"w{n}").verifier() for n in range(2)]
    with pytest.raises(AuditError, match="quorum"):
        check_quorum(_note(HONEST, 9), keys, quorum)


def _body(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]
