"""C2SP signed notes: known answers, exact round trips, refusals and parser fuzzing."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from dure.policies.errors import NoteError
from dure.policies.note import (
    MAX_SIGNATURES,
    SIGNATURE_TYPE_ED25519,
    Ed25519Signer,
    Ed25519Verifier,
    KeyString,
    NoteSignature,
    SignedNote,
    check_key_name,
    key_id,
    open_note,
    sign_note,
    verified_signatures,
)

# golang.org/x/mod/sumdb/note, example_test.go: a signer key, its verifier key and the note.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# c2sp.org/signed-note, "Example".
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2"
    "ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

ALICE = Ed25519Signer.from_seed("log.example/alice", bytes(range(32)))
BOB = Ed25519Signer.from_seed("log.example/bob", bytes(range(1, 33)))


def test_known_answers_from_go_and_the_spec() -> None:
    signer = Ed25519Signer.from_skey(GO_SKEY)
    assert signer.to_skey() == GO_SKEY
    assert signer.verifier().to_vkey() == GO_VKEY
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert key_id("PeterNeumann", SIGNATURE_TYPE_ED25519, signer.public_key).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, [signer]).to_text() == GO_NOTE
    assert open_note(GO_NOTE, Ed25519Verifier.from_vkey(GO_VKEY)).text == GO_TEXT
    opened = open_note(C2SP_NOTE.encode(), [Ed25519Verifier.from_vkey(C2SP_VKEY)])
    assert opened.text == "This is an example message.\n"
    assert Ed25519Verifier.from_vkey(C2SP_VKEY).to_vkey() == C2SP_VKEY


def test_round_trip_is_exact() -> None:
    for text in (GO_NOTE, C2SP_NOTE):
        assert SignedNote.from_text(text).to_text() == text
    multi = sign_note("a\n\nb\n\n", [ALICE, BOB])  # text may hold and end with blank lines
    again = SignedNote.from_text(multi.to_text())
    assert again == multi
    assert again.text == "a\n\nb\n\n"
    assert verified_signatures(again, [ALICE.verifier(), BOB.verifier()]) == multi.signatures


def test_key_strings_round_trip() -> None:
    skey = ALICE.to_skey()
    assert skey.startswith("PRIVATE+KEY+log.example/alice+")
    assert Ed25519Signer.from_skey(skey).public_key == ALICE.public_key
    vkey = ALICE.verifier().to_vkey()
    assert Ed25519Verifier.from_vkey(vkey) == ALICE.verifier()
    assert KeyString.from_text(vkey).to_text() == vkey
    assert KeyString.from_text(skey, private=True).to_text() == skey
    assert "seed" not in repr(ALICE) and skey.split("+")[-1] not in repr(ALICE)
    assert repr(KeyString.from_text(skey, private=True)).count("material") == 0


def test_unknown_signatures_are_ignored_but_one_known_is_needed() -> None:
    note = sign_note("hello\n", [ALICE, BOB])
    assert open_note(note.to_text(), [ALICE.verifier()]) == note
    assert verified_signatures(note, [BOB.verifier()]) == (note.signatures[1],)
    assert verified_signatures(note, []) == ()
    with pytest.raises(NoteError, match="not signed by any trusted key"):
        open_note(note.to_text(), [Ed25519Signer.generate("log.example/carol").verifier()])
    with pytest.raises(NoteError):
        open_note(note.to_text(), [])


def _with_signature(note: SignedNote, index: int, **changes: object) -> str:
    sig = note.signatures[index]
    fields = {"name": sig.name, "key_id": sig.key_id, "signature": sig.signature, **changes}
    replaced = NoteSignature(**fields)  # type: ignore[arg-type]
    sigs = list(note.signatures)
    sigs[index] = replaced
    return SignedNote(note.text, tuple(sigs)).to_text()


def test_forgeries_are_refused() -> None:
    note = sign_note("size 10\n", [ALICE])
    good = note.signatures[0]
    forged = bytearray(good.signature)
    forged[5] ^= 1
    alice = ALICE.verifier()
    cases = {
        "forged signature": _with_signature(note, 0, signature=bytes(forged)),
        "truncated signature": _with_signature(note, 0, signature=good.signature[:-1]),
        "bad key id": _with_signature(note, 0, key_id=b"\x00\x00\x00\x00"),
        "other name": _with_signature(note, 0, name="log.example/mallory"),
        "modified body": note.to_text().replace("size 10", "size 11"),
        "wrong key": sign_note("size 10\n", [Ed25519Signer.generate(ALICE.name)]).to_text(),
    }
    for what, text in cases.items():
        with pytest.raises(NoteError):
            open_note(text, alice)
            pytest.fail(what)


def test_a_known_key_with_a_bad_signature_rejects_the_whole_note() -> None:
    note = sign_note("x\n", [ALICE])
    forged = bytearray(note.signatures[0].signature)
    forged[0] ^= 0x80
    bad = NoteSignature(BOB.name, BOB.key_id, bytes(forged))
    mixed = note.with_signature(bad)
    with pytest.raises(NoteError, match="invalid"):
        open_note(mixed, [ALICE.verifier(), BOB.verifier()])
    assert open_note(mixed, [ALICE.verifier()]) == mixed  # Bob unknown: ignored


def test_a_key_matching_name_and_id_must_verify() -> None:
    # A verifier that claims Alice's name and key ID with another key must fail closed.
    impostor = BOB.verifier()

    class Claiming:
        name = ALICE.name
        key_id = ALICE.key_id

        def verify(self, text: bytes, signature: bytes) -> bool:
            return impostor.verify(text, signature)

    with pytest.raises(NoteError, match="invalid"):
        open_note(sign_note("x\n", [ALICE]), Claiming())


@pytest.mark.parametrize(
    "text",
    [
        "no blank line\n— a AAAAAAA=\n",
        "text\n\n",
        "text\n\n— log.example/a AAAAAAA=",
        "text\n\n- log.example/a AAAAAAA=\n",
        "text\n\n—log.example/a AAAAAAA=\n",
        "text\n\n— log.example/a\n",
        "text\n\n— log.example/a AAAAAA==\n",
        "text\n\n— log.example/a AAAAAAA\n",
        "text\n\n— log.example/a AAAAAAB=\n",
        "text\n\n— log+example AAAAAAA=\n",
        "text\n\n—  AAAAAAA=\n",
        "text\n\n— log.example/a  AAAAAAA=\n",
        "text\n\n— log.example/a AAAAAAA=\n\n",
        "te\tt\n\n— log.example/a AAAAAAA=\n",
        "text\r\n\n— log.example/a AAAAAAA=\n",
        "text\n\n— log\u00a0example AAAAAAA=\n",
        "\n— log.example/a AAAAAAA=\n",
        "te\ud800t\n\n— log.example/a AAAAAAA=\n",
        "text\n\n" + "— log.example/a AAAAAAA=\n" * (MAX_SIGNATURES + 1),
    ],
)
def test_malformed_notes_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        SignedNote.from_text(text)


def test_non_utf8_and_non_text_are_refused() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        SignedNote.from_text(b"text\xff\n\n\xe2\x80\x94 a AAAAAAA=\n")
    with pytest.raises(NoteError):
        SignedNote.from_text(12)  # type: ignore[arg-type]
    assert SignedNote.from_text("x\n\n— a AAAAAAA=\n".encode()).signatures[0].name == "a"


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        "PeterNeumann+c74f20a3+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+!!!",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        GO_SKEY,
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        Ed25519Verifier.from_vkey(vkey)


def test_malformed_signer_keys_are_refused() -> None:
    for skey in (GO_VKEY, GO_SKEY.replace("c74f20a3", "c74f20a4"), "PRIVATE+KEY+x+00000000+AQ=="):
        with pytest.raises(NoteError):
            Ed25519Signer.from_skey(skey)
    with pytest.raises(NoteError, match="private key"):
        KeyString.from_text("PRIVATE+KEY+broken", private=True)


def test_key_names() -> None:
    for good in ("a", "example.com/log42", "oid/1.3.6.1", "ünïcode"):
        assert check_key_name(good) == good
    for bad in ("", "a b", "a+b", "a\u2003b", "a\nb", "a\x00b"):
        with pytest.raises(NoteError):
            check_key_name(bad)
    with pytest.raises(NoteError):
        Ed25519Signer.generate("has space")


def test_signing_needs_valid_text() -> None:
    for bad in ("", "no newline", "tab\t\n", "\ud800\n"):
        with pytest.raises(NoteError):
            ALICE.sign(bad)
    with pytest.raises(NoteError):
        sign_note("x\n", [])


_NAME = st.text(st.characters(blacklist_categories=["Zs", "Zl", "Zp", "Cc", "Cs"]), min_size=1)
_TEXT_CHARS = st.characters(blacklist_categories=["Cc", "Cs"]) | st.just("\n")


@st.composite
def notes(draw: st.DrawFn) -> SignedNote:
    text = draw(st.text(_TEXT_CHARS, max_size=60)) + "\n"
    sigs = draw(
        st.lists(
            st.builds(
                NoteSignature,
                _NAME.filter(lambda n: "+" not in n and not any(c.isspace() for c in n)),
                st.binary(min_size=4, max_size=4),
                st.binary(min_size=1, max_size=80),
            ),
            min_size=1,
            max_size=5,
        )
    )
    return SignedNote(text, tuple(sigs))


@settings(max_examples=200, deadline=None)
@given(notes())
def test_any_note_round_trips(note: SignedNote) -> None:
    text = note.to_text()
    assert SignedNote.from_text(text) == note
    assert SignedNote.from_text(text.encode()).to_text() == text


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(_TEXT_CHARS).map(lambda t: t + "\n\n— a ")))
def test_parser_gives_a_note_or_a_note_error(data: str | bytes) -> None:
    try:
        note = SignedNote.from_text(data)
    except NoteError:
        return
    assert note.to_text() == (data if isinstance(data, str) else data.decode())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_key_parsers_give_a_key_or_a_note_error(text: str) -> None:
    for parse in (Ed25519Verifier.from_vkey, Ed25519Signer.from_skey):
        with contextlib.suppress(NoteError):
            parse(text)


_SIGNED = sign_note("origin\n42\n", [ALICE]).to_text()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_SIGNED) - 1), st.characters(blacklist_categories=["Cs"]))
def test_any_one_character_change_is_refused(position: int, char: str) -> None:
    mutated = _SIGNED[:position] + char + _SIGNED[position + 1 :]
    if mutated == _SIGNED:
        return
    with pytest.raises(NoteError):
        open_note(mutated, ALICE.verifier())
