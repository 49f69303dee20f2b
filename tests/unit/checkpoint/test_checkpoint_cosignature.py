"""C2SP tlog-cosignature (cosignature/v1, Ed25519): witnesses cosigning checkpoints."""

from __future__ import annotations

import pytest

from dure.policies.checkpoint import (
    MAX_TIMESTAMP,
    Checkpoint,
    Cosignature,
    CosignatureVerifier,
    Cosigner,
    add_cosignature,
    cosignature_message,
    open_checkpoint,
    sign_checkpoint,
    verify_cosignatures,
)
from dure.policies.errors import NoteError
from dure.policies.note import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    Ed25519Signer,
    Ed25519Verifier,
    NoteSignature,
    SignedNote,
    key_id,
    open_note,
)
from dure.policies.tree import MerkleTree

ORIGIN = "dure.example/ledger"
LOG = Ed25519Signer.from_seed(ORIGIN, bytes(range(32)))
W1 = Cosigner.generate("factory-a.example/witness")
W2 = Cosigner.generate("factory-b.example/witness")
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z

# transparency-dev/formats note_cosigv1_test.go: a native type-0x04 witness key.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
# c2sp.org/tlog-cosignature: the example cosignature line (timestamp 1679315147).
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)


def _checkpoint(size: int = 9) -> Checkpoint:
    tree = MerkleTree()
    for i in range(size):
        tree.append(f"entry {i}".encode())
    return Checkpoint(ORIGIN, size, tree.root())


def _cosigned(checkpoint: Checkpoint, *cosignatures: NoteSignature) -> str:
    text = sign_checkpoint(checkpoint, LOG)
    for cosignature in cosignatures:
        text = add_cosignature(text, cosignature)
    return text


def test_known_answers() -> None:
    witness = CosignatureVerifier.from_vkey(REMORA_VKEY)
    assert witness.to_vkey() == REMORA_VKEY
    assert witness.key_id.hex() == "da77ade7"
    line = NoteSignature.from_line(SPEC_COSIGNATURE)
    assert int.from_bytes(line.signature[:8], "big") == 1679315147
    assert len(line.signature) == 8 + 64
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosignature_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )


def test_cosign_add_and_verify() -> None:
    checkpoint = _checkpoint()
    c1, c2 = W1.cosign(checkpoint, NOW), W2.cosign(checkpoint, NOW + 5)
    assert c1.key_id == key_id(W1.name, SIGNATURE_TYPE_COSIGNATURE_V1, W1.verifier().public_key)
    text = _cosigned(checkpoint, c1, c2)
    assert add_cosignature(text, c1) == text  # added once
    assert open_checkpoint(text, LOG.verifier()) == checkpoint  # cosignatures ignored
    found = verify_cosignatures(text, [W1.verifier(), W2.verifier()])
    assert found == (
        Cosignature(W1.name, W1.verifier().key_id, NOW),
        Cosignature(W2.name, W2.verifier().key_id, NOW + 5),
    )
    assert verify_cosignatures(SignedNote.from_text(text), [W2.verifier()])[0].name == W2.name
    assert verify_cosignatures(text, [Cosigner.generate("stranger").verifier()]) == ()
    assert verify_cosignatures(_cosigned(checkpoint), [W1.verifier()]) == ()


def test_cosignature_covers_extension_lines() -> None:
    checkpoint = Checkpoint(ORIGIN, 3, _checkpoint(3).root_hash, ("note: test",))
    text = _cosigned(checkpoint, W1.cosign(checkpoint, NOW))
    assert len(verify_cosignatures(text, [W1.verifier()])) == 1
    edited = text.replace("note: test", "note: Test")
    with pytest.raises(NoteError):
        verify_cosignatures(edited, [W1.verifier()])


def _replace_signature(signature: NoteSignature, raw: bytes) -> NoteSignature:
    return NoteSignature(signature.name, signature.key_id, raw)


def test_forged_cosignatures_are_refused() -> None:
    checkpoint = _checkpoint()
    good = W1.cosign(checkpoint, NOW)
    later = (NOW + 1).to_bytes(8, "big") + good.signature[8:]
    flipped = bytearray(good.signature)
    flipped[40] ^= 4
    forgeries = {
        "timestamp changed": _replace_signature(good, later),
        "signature flipped": _replace_signature(good, bytes(flipped)),
        "truncated": _replace_signature(good, good.signature[:-1]),
        "no timestamp": _replace_signature(good, good.signature[8:]),
        "other checkpoint": W1.cosign(_checkpoint(10), NOW),
        "timestamp over 2^63-1": _replace_signature(good, b"\xff" * 8 + good.signature[8:]),
    }
    for what, forged in forgeries.items():
        with pytest.raises(NoteError, match="invalid"):
            verify_cosignatures(_cosigned(checkpoint, forged), [W1.verifier()])
            pytest.fail(what)


def test_cosignatures_and_log_signatures_are_domain_separated() -> None:
    checkpoint = _checkpoint()
    text = _cosigned(checkpoint, W1.cosign(checkpoint, NOW))
    # The witness key read as a plain note key has another key ID: the line is unknown.
    as_note_key = Ed25519Verifier(W1.name, W1.verifier().public_key)
    assert as_note_key.key_id != W1.verifier().key_id
    with pytest.raises(NoteError, match="not signed by any trusted key"):
        open_note(SignedNote(checkpoint.to_text(), (W1.cosign(checkpoint, NOW),)), as_note_key)
    # A log signature is not a cosignature, even under the same name and key.
    twin = Cosigner(ORIGIN, LOG.private_key)
    assert verify_cosignatures(text, [twin.verifier()]) == ()


def test_cosigner_keys_round_trip() -> None:
    skey = W1.to_skey()
    assert skey.startswith(f"PRIVATE+KEY+{W1.name}+{W1.verifier().key_id.hex()}+")
    restored = Cosigner.from_skey(skey)
    assert restored.verifier() == W1.verifier()
    vkey = W1.verifier().to_vkey()
    assert CosignatureVerifier.from_vkey(vkey) == W1.verifier()
    assert W1.name in repr(W1) and skey.rsplit("+", 1)[-1] not in repr(W1)
    for bad in (LOG.to_skey(), skey.replace("PRIVATE+KEY+", ""), LOG.verifier().to_vkey()):
        with pytest.raises(NoteError):
            Cosigner.from_skey(bad)
    for bad in (LOG.verifier().to_vkey(), vkey[:-4], "a+00000000+BA=="):
        with pytest.raises(NoteError):
            CosignatureVerifier.from_vkey(bad)


def test_timestamps_must_fit() -> None:
    checkpoint = _checkpoint()
    assert W1.cosign(checkpoint, MAX_TIMESTAMP).signature[:8] == MAX_TIMESTAMP.to_bytes(8, "big")
    for bad in (-1, MAX_TIMESTAMP + 1):
        with pytest.raises(NoteError):
            W1.cosign(checkpoint, bad)


def test_verifying_needs_a_checkpoint_body() -> None:
    note = SignedNote("not a checkpoint\n", (LOG.sign("not a checkpoint\n"),))
    with pytest.raises(NoteError):
        verify_cosignatures(note, [W1.verifier()])
    with pytest.raises(NoteError):
        add_cosignature("garbage", W1.cosign(_checkpoint(), NOW))
