"""Hostile input to every kernel parser: huge integers, deep nesting, huge base64.

Python refuses to convert integer strings longer than 4,300 digits with a bare
``ValueError``, and deep nesting raises ``RecursionError``; neither may escape a
parser.  Each must surface as the kernel's own error (the catalog maps it to
exit code 3 and HTTP 400), with a message that says what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from dure.policies.canonical import MAX_DEPTH, canonical_bytes, parse_canonical, parse_json
from dure.policies.checkpoint import Checkpoint, open_checkpoint
from dure.policies.dsse import PAYLOAD_TYPES, Envelope, sign_envelope
from dure.policies.encoding import b64encode, digest
from dure.policies.entries import LedgerEntry
from dure.policies.errors import DocumentError, EncodingError, NoteError
from dure.policies.examples import example_job_value, example_policy_value
from dure.policies.identity import SiteIdentity
from dure.policies.job import JobManifest
from dure.policies.keys import SigningKey
from dure.policies.note import Ed25519Signer, SignedNote
from dure.policies.policy import UsagePolicy
from dure.policies.receipt import Receipt
from dure.policies.revocation import Revocation
from dure.policies.signed import open_document

HUGE = "1" * 5000  # past Python's 4,300-digit int-string limit
DEEP = 100_000
_MARK = '"@@huge@@"'

Parser = Callable[[bytes], object]

PARSERS: dict[str, Parser] = {
    "parse_json": parse_json,
    "parse_canonical": parse_canonical,
    "envelope": Envelope.from_json,
    "policy-json": UsagePolicy.from_json_bytes,
    "policy-canonical": UsagePolicy.from_canonical_bytes,
    "job-json": JobManifest.from_json_bytes,
    "job-canonical": JobManifest.from_canonical_bytes,
    "revocation": Revocation.from_canonical_bytes,
    "site-identity": SiteIdentity.from_canonical_bytes,
    "ledger-entry": LedgerEntry.from_bytes,
}


def with_huge_int(value: Any, field: str, digits: str = HUGE) -> bytes:
    """``value`` as JSON with ``field`` holding a ``digits``-long integer literal."""
    value = dict(value, **{field: "@@huge@@"})
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace(_MARK, digits).encode()


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


HOSTILE: dict[str, bytes] = {
    "huge-int": HUGE.encode(),
    "huge-negative-int": b"-" + HUGE.encode(),
    "huge-int-in-object": with_huge_int({"a": 1}, "b"),
    "huge-int-in-policy": with_huge_int(example_policy_value(), "uid"),
    "huge-int-in-job": with_huge_int(example_job_value(), "rounds"),
    "huge-int-in-envelope": with_huge_int({"payload": "e30=", "signatures": []}, "payloadType"),
    "deep-array": deep_array(DEEP),
    "deep-object": deep_object(DEEP),
    "deep-inside-envelope": (
        b'{"payloadType":"x","payload":"e30=","signatures":' + deep_array(DEEP) + b"}"
    ),
    "just-too-deep": deep_array(MAX_DEPTH + 1),
}


@pytest.mark.parametrize("parser", PARSERS.values(), ids=list(PARSERS))
@pytest.mark.parametrize("data", HOSTILE.values(), ids=list(HOSTILE))
def test_every_parser_refuses_hostile_json_with_the_kernel_error(
    parser: Parser, data: bytes
) -> None:
    with pytest.raises(EncodingError) as caught:
        parser(data)
    message = caught.value.message
    assert "safe range" in message or "deeper than" in message, message
    assert len(message) < 300  # one readable line, never the 5,000 digits


def test_huge_integer_message_names_the_problem_and_hints() -> None:
    with pytest.raises(EncodingError) as caught:
        parse_json(with_huge_int(example_policy_value(), "uid"))
    assert "integer of 5000 digits" in caught.value.message
    assert "2^53" in caught.value.hint


def test_the_largest_safe_integers_still_parse() -> None:
    assert parse_json(b"[9007199254740991,-9007199254740991]") == [2**53 - 1, -(2**53 - 1)]
    with pytest.raises(EncodingError, match="safe range"):
        parse_json(b"[90071992547409910]")  # 17 digits: refused before conversion


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert parse_canonical(deep_array(MAX_DEPTH)) is not None
    assert canonical_bytes(json.loads(deep_array(MAX_DEPTH))) == deep_array(MAX_DEPTH)


def test_canonical_bytes_refuses_huge_and_deep_values_from_code() -> None:
    with pytest.raises(EncodingError, match="of 16610 bits"):
        canonical_bytes({"a": 10**5000})
    deep: list[Any] = []
    for _ in range(DEEP):
        deep = [deep]
    with pytest.raises(EncodingError, match="deeper than"):
        canonical_bytes(deep)


def test_signed_payload_with_a_huge_integer_is_refused_after_verification() -> None:
    key = SigningKey.generate()
    payload = with_huge_int(example_policy_value(), "uid")
    envelope = sign_envelope(PAYLOAD_TYPES["policy"], payload, key)
    parsed = Envelope.from_json(envelope.to_json())
    with pytest.raises(EncodingError, match="safe range"):
        open_document(parsed, "policy", UsagePolicy, {key.key_id: key.public})


def test_documents_built_in_code_with_a_huge_integer_give_a_document_error() -> None:
    value = dict(example_policy_value(), uid=10**5000)
    with pytest.raises(DocumentError, match="too large to show"):
        UsagePolicy.from_value(value)


@pytest.mark.parametrize(
    "payload",
    [
        "A" * 10_000_000 + "%",  # huge, one stray character
        "A" * 10_000_001,  # huge, wrong length
        "é" * 1_000_000,  # huge, not ASCII
        "AB==" * 2_500_000 + "A",  # huge, padding inside
    ],
    ids=["stray", "length", "non-ascii", "inner-padding"],
)
def test_huge_bad_base64_in_an_envelope_is_an_encoding_error(payload: str) -> None:
    data = json.dumps(
        {"payloadType": "x", "payload": payload, "signatures": [{"keyid": "k", "sig": "AA=="}]}
    ).encode()
    with pytest.raises(EncodingError, match="base64") as caught:
        Envelope.from_json(data)
    assert len(caught.value.message) < 200


def test_receipt_refuses_huge_integers_and_deep_nesting() -> None:
    base = {"index": 0, "size": 1, "hashes": [], "checkpoint": "x"}
    for data in (
        with_huge_int(base, "index"),
        with_huge_int(base, "size", "1" * 21),  # fits Python, not uint64
        deep_array(DEEP),
    ):
        with pytest.raises(DocumentError, match="invalid receipt"):
            Receipt.from_json(data)


def _root() -> str:
    return b64encode(bytes(32))


@pytest.mark.parametrize("digits", [HUGE, "1" * 21, "18446744073709551616"])
def test_checkpoint_refuses_sizes_past_uint64(digits: str) -> None:
    text = f"example.com/log\n{digits}\n{_root()}\n"
    with pytest.raises(NoteError, match="checkpoint size"):
        Checkpoint.from_text(text)
    signer = Ed25519Signer.generate("example.com/log")
    note = SignedNote(text, (signer.sign(text),)).to_text()
    with pytest.raises(NoteError, match="checkpoint size"):
        open_checkpoint(note, signer.verifier())


def test_checkpoint_built_in_code_with_a_huge_size_names_it_briefly() -> None:
    with pytest.raises(NoteError, match="integer of 16610 bits"):
        Checkpoint("example.com/log", 10**5000, digest(bytes(32)))


def test_note_with_a_hundred_thousand_signature_lines_is_refused() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    line = signer.sign("hello\n").to_line()
    with pytest.raises(NoteError, match="more than"):
        SignedNote.from_text("hello\n\n" + (line + "\n") * DEEP)
