"""C2SP tlog-checkpoint: codec round trips, signing, opening and the consistency guard."""

from __future__ import annotations

import base64

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from dure.policies.checkpoint import Checkpoint, check_consistent, open_checkpoint, sign_checkpoint
from dure.policies.encoding import Digest
from dure.policies.errors import NoteError, ProofError
from dure.policies.merkle import EMPTY_ROOT
from dure.policies.note import Ed25519Signer, SignedNote
from dure.policies.tree import MerkleTree

ORIGIN = "dure.example/ledger"
LOG = Ed25519Signer.from_seed(ORIGIN, bytes(range(32)))

# c2sp.org/tlog-checkpoint and tlog-cosignature: the example checkpoint, cosigned.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = (
    SPEC_BODY + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4"
    "URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def _tree(n: int) -> MerkleTree:
    tree = MerkleTree()
    for i in range(n):
        tree.append(f"entry {i}".encode())
    return tree


def _checkpoint(tree: MerkleTree, size: int, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, size, tree.root_at(size))


def test_spec_example_parses_and_round_trips() -> None:
    checkpoint = Checkpoint.from_text(SPEC_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.to_text() == SPEC_BODY
    note = SignedNote.from_text(SPEC_NOTE)
    assert note.text == SPEC_BODY and note.to_text() == SPEC_NOTE
    assert [s.name for s in note.signatures] == [
        "example.com/behind-the-sofa",
        "witness.example.com/w1",
    ]


def test_extension_lines_and_the_empty_tree_round_trip() -> None:
    with_ext = Checkpoint(ORIGIN, 7, _tree(7).root(), ("ext one", "ext+two"))
    assert Checkpoint.from_text(with_ext.to_text()) == with_ext
    empty = Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    assert empty.to_text() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    assert Checkpoint.from_text(empty.to_text()) == empty


@pytest.mark.parametrize(
    "body",
    [
        "",
        "origin\n5\n",
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n05\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n+5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n 5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n1_0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n\u0665\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        f"origin\n{2**64}\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==\n",
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
        "origin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nok\n\nafter blank\n",
        "ori\tgin\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.from_text(body)


def test_invalid_fields_are_refused_at_construction() -> None:
    root = EMPTY_ROOT
    for args in [
        ("", 0, root),
        ("a\nb", 0, root),
        (ORIGIN, -1, root),
        (ORIGIN, 2**64, root),
        (ORIGIN, True, root),
        (ORIGIN, 0, Digest(root[:31])),
    ]:
        with pytest.raises(NoteError):
            Checkpoint(*args)
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, 0, root, ("",))


_LINE = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_LINE, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(_LINE))
def test_any_checkpoint_round_trips(origin: str, size: int, root: bytes, ext: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, Digest(root), tuple(ext))
    text = checkpoint.to_text()
    assert Checkpoint.from_text(text) == checkpoint
    assert Checkpoint.from_text(text).to_text() == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_checkpoint_parser_gives_a_checkpoint_or_a_note_error(text: str) -> None:
    try:
        checkpoint = Checkpoint.from_text(text)
    except NoteError:
        return
    assert checkpoint.to_text() == text


def test_sign_and_open() -> None:
    checkpoint = _checkpoint(_tree(11), 11)
    signed = sign_checkpoint(checkpoint, LOG)
    assert signed.startswith(checkpoint.to_text() + "\n— " + ORIGIN + " ")
    assert open_checkpoint(signed, LOG.verifier()) == checkpoint
    assert open_checkpoint(signed.encode(), [LOG.verifier()]) == checkpoint


def test_opening_refuses_wrong_keys_and_edits() -> None:
    signed = sign_checkpoint(_checkpoint(_tree(11), 11), LOG)
    impostor = Ed25519Signer.generate(ORIGIN)
    for text, key in [
        (signed, impostor.verifier()),
        (signed.replace("\n11\n", "\n12\n"), LOG.verifier()),
        (sign_checkpoint(_checkpoint(_tree(11), 11), impostor), LOG.verifier()),
    ]:
        with pytest.raises(NoteError):
            open_checkpoint(text, key)
    not_a_checkpoint = SignedNote("just text\n", (LOG.sign("just text\n"),)).to_text()
    with pytest.raises(NoteError, match="lines"):
        open_checkpoint(not_a_checkpoint, LOG.verifier())


def test_consistency_guard_accepts_an_extension() -> None:
    tree = _tree(40)
    for old, new in [(1, 40), (13, 27), (16, 32), (40, 40)]:
        proof = tree.consistency_proof(old, new)
        check_consistent(_checkpoint(tree, old), _checkpoint(tree, new), proof)
    check_consistent(Checkpoint(ORIGIN, 0, EMPTY_ROOT), _checkpoint(tree, 40), [])


def test_consistency_guard_refuses_forks_and_rewinds() -> None:
    tree, fork = _tree(40), _tree(20)
    for i in range(20):
        fork.append(f"forked {i}".encode())
    old, new = _checkpoint(tree, 23), _checkpoint(tree, 27)
    proof = tree.consistency_proof(23, 27)
    check_consistent(_checkpoint(tree, 13), _checkpoint(fork, 27), fork.consistency_proof(13, 27))
    cases = [
        (old, _checkpoint(fork, 27), fork.consistency_proof(23, 27)),  # forked at 20
        (old, _checkpoint(fork, 27), proof),
        (new, old, proof),  # rewind
        (old, _checkpoint(tree, 27, "other.example/log"), proof),
        (old, new, proof[:-1]),
        (_checkpoint(tree, 27), _checkpoint(fork, 27), []),  # same size, other root
        (Checkpoint(ORIGIN, 0, tree.root_at(1)), new, []),
        (Checkpoint(ORIGIN, 0, EMPTY_ROOT), new, proof),
    ]
    for first, second, evidence in cases:
        with pytest.raises(ProofError):
            check_consistent(first, second, evidence)
