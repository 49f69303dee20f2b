"""LedgerStore contract: which signed checkpoints a store keeps and which it refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from tests.contract.ledger.backends import Backend

from dure.policies.checkpoint import Checkpoint, Cosigner, add_cosignature, sign_checkpoint
from dure.policies.encoding import Digest
from dure.policies.errors import NoteError
from dure.policies.note import Ed25519Signer
from dure.server.ledger.errors import LedgerConflictError
from dure.server.ledger.sql import SqlLedgerStore
from dure.server.ledger.store import LedgerStore
from dure.server.ledger.tables import LedgerNodeRow


def signed(store: LedgerStore, size: int, signer: Ed25519Signer, origin: str | None = None) -> str:
    checkpoint = Checkpoint(origin or signer.name, size, store.root(size))
    return sign_checkpoint(checkpoint, signer)


def put(store: LedgerStore, size: int, signer: Ed25519Signer) -> None:
    store.put_checkpoint(signed(store, size, signer), signer.verifier().to_vkey())


def test_checkpoints_are_kept_and_grow(store: LedgerStore, signer: Ed25519Signer) -> None:
    vkey = signer.verifier().to_vkey()
    put(store, 0, signer)  # the empty log
    store.append([b"a", b"b", b"c"])
    note = signed(store, 3, signer)
    stored = store.put_checkpoint(note, vkey)
    assert stored.checkpoint.size == 3 and stored.note == note and stored.verifier_key == vkey
    latest = store.latest_checkpoint()
    assert latest is not None and latest.note == note
    assert latest.checkpoint == Checkpoint(signer.name, 3, store.root(3))
    store.append([b"d"] * 10)
    put(store, 13, signer)
    latest = store.latest_checkpoint()
    assert latest is not None and latest.checkpoint.size == 13


def test_a_smaller_checkpoint_is_refused(store: LedgerStore, signer: Ed25519Signer) -> None:
    store.append([b"x"] * 8)
    small = signed(store, 5, signer)
    put(store, 8, signer)
    with pytest.raises(LedgerConflictError, match="shrank"):
        store.put_checkpoint(small, signer.verifier().to_vkey())
    latest = store.latest_checkpoint()
    assert latest is not None and latest.checkpoint.size == 8


def test_a_checkpoint_with_a_foreign_root_is_refused(
    store: LedgerStore, signer: Ed25519Signer
) -> None:
    store.append([b"x"] * 4)
    forged = sign_checkpoint(Checkpoint(signer.name, 4, Digest(b"\x07" * 32)), signer)
    with pytest.raises(LedgerConflictError, match="not this log's root"):
        store.put_checkpoint(forged, signer.verifier().to_vkey())
    assert store.latest_checkpoint() is None


def test_a_checkpoint_past_the_log_is_refused(store: LedgerStore, signer: Ed25519Signer) -> None:
    store.append([b"x"] * 4)
    future = sign_checkpoint(Checkpoint(signer.name, 5, Digest(b"\x07" * 32)), signer)
    with pytest.raises(LedgerConflictError, match="past the log"):
        store.put_checkpoint(future, signer.verifier().to_vkey())


def test_another_origin_is_refused(store: LedgerStore, signer: Ed25519Signer) -> None:
    store.append([b"x"] * 4)
    put(store, 2, signer)
    other = signed(store, 4, signer, origin="dure.test/other-log")
    with pytest.raises(LedgerConflictError, match="different logs"):
        store.put_checkpoint(other, signer.verifier().to_vkey())


def test_a_note_not_signed_by_the_given_key_is_refused(
    store: LedgerStore, signer: Ed25519Signer
) -> None:
    store.append([b"x"])
    intruder = Ed25519Signer.from_seed(signer.name, b"\x09" * 32)
    with pytest.raises(NoteError):
        store.put_checkpoint(signed(store, 1, intruder), signer.verifier().to_vkey())
    note = signed(store, 1, signer)
    origin, _size, rest = note.split("\n", 2)
    tampered = f"{origin}\n2\n{rest}"  # the size line changed under the signature
    with pytest.raises(NoteError):
        store.put_checkpoint(tampered, signer.verifier().to_vkey())
    assert store.latest_checkpoint() is None


def test_same_size_with_cosignatures_replaces_and_keys_may_rotate(
    store: LedgerStore, signer: Ed25519Signer
) -> None:
    store.append([b"x"] * 3)
    put(store, 3, signer)
    witness = Cosigner.generate("witness.factory-a")
    body = Checkpoint(signer.name, 3, store.root(3))
    cosigned = add_cosignature(signed(store, 3, signer), witness.cosign(body, 1_700_000_000))
    store.put_checkpoint(cosigned, signer.verifier().to_vkey())
    latest = store.latest_checkpoint()
    assert latest is not None and latest.note == cosigned
    rotated = Ed25519Signer.from_seed(signer.name, b"\x05" * 32)
    store.append([b"y"])
    put(store, 4, rotated)
    latest = store.latest_checkpoint()
    assert latest is not None and latest.verifier_key == rotated.verifier().to_vkey()


def test_rewritten_history_is_refused(sql_backend: Backend, signer: Ed25519Signer) -> None:
    store = sql_backend.open()
    assert isinstance(store, SqlLedgerStore)
    store.append([f"e{i}".encode() for i in range(4)])
    put(store, 4, signer)
    with store.engine.begin() as conn:  # an operator rewrites the first four entries' subtree
        table = LedgerNodeRow.__table__  # type: ignore[attr-defined]
        conn.execute(update(table).where(table.c.level == 2).values(hash=b"\x01" * 32))
    store.append([b"e4", b"e5"])
    rewritten = signed(store, 6, signer)  # a valid signature over the rewritten tree
    with pytest.raises(LedgerConflictError, match="does not extend"):
        store.put_checkpoint(rewritten, signer.verifier().to_vkey())
