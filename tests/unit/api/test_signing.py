"""Signed requests: the claim binds method, target, body, time and nonce, canonically."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dure.policies.dsse import PAYLOAD_TYPES, Envelope, verify_envelope
from dure.policies.errors import DocumentError, EncodingError
from dure.policies.keys import SigningKey
from dure.server.api.signing import RequestClaim, body_digest, decode_request_header, sign_request

KEY = SigningKey.from_seed(bytes(range(32)))
NOW = datetime(2026, 11, 15, 9, 0, 0, tzinfo=UTC)


def _claim(header: str) -> RequestClaim:
    envelope = decode_request_header(header)
    payload, signer = verify_envelope(envelope, {KEY.key_id: KEY.public}, PAYLOAD_TYPES["request"])
    assert signer == KEY.public
    return RequestClaim.from_canonical_bytes(payload)


def test_the_header_round_trips_to_the_claim() -> None:
    header = sign_request(KEY, "post", "/v1/policies?x=1", b'{"a":1}', now=NOW, nonce="0" * 32)
    claim = _claim(header)
    assert claim.method == "POST" and claim.path == "/v1/policies?x=1"
    assert claim.body_sha256 == body_digest(b'{"a":1}')
    assert claim.timestamp == NOW and claim.nonce == "0" * 32
    assert claim.type == "dure/request/v1"


def test_known_answer_payload() -> None:
    header = sign_request(KEY, "GET", "/v1/me", now=NOW, nonce="ab" * 16)
    payload = decode_request_header(header).payload
    assert payload == (
        b'{"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",'
        b'"method":"GET","nonce":"abababababababababababababababab","path":"/v1/me",'
        b'"timestamp":"2026-11-15T09:00:00Z","type":"dure/request/v1"}'
    )


def test_nonces_are_random_by_default() -> None:
    first, second = (_claim(sign_request(KEY, "GET", "/v1/me")) for _ in range(2))
    assert first.nonce != second.nonce


@pytest.mark.parametrize(
    "value",
    ["not base64!", base64.b64encode(b"{}").decode(), "A" * 9000, base64.b64encode(b"[").decode()],
)
def test_malformed_headers_are_encoding_errors(value: str) -> None:
    with pytest.raises(EncodingError):
        decode_request_header(value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "get"),
        ("path", "v1/me"),
        ("path", "/v1/with space"),
        ("nonce", "short"),
        ("nonce", "G" * 32),
        ("body_sha256", "00"),
        ("type", "dure/node-binding/v1"),
    ],
)
def test_the_claim_refuses_malformed_fields(field: str, value: str) -> None:
    claim = _claim(sign_request(KEY, "GET", "/v1/me", now=NOW)).to_json_value()
    with pytest.raises(DocumentError):
        RequestClaim.from_value({**claim, field: value})


def test_unsignable_requests_are_document_errors() -> None:
    with pytest.raises(DocumentError):
        sign_request(KEY, "GET", "/" + "a" * 2048, now=NOW)
    with pytest.raises(DocumentError):
        sign_request(KEY, "G E T", "/", now=NOW)


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    target=st.from_regex(r"/[\x21-\x7e]{0,60}", fullmatch=True),
    body=st.binary(max_size=200),
)
def test_any_request_signs_and_verifies(method: str, target: str, body: bytes) -> None:
    claim = _claim(sign_request(KEY, method, target, body, now=NOW))
    assert (claim.method, claim.path, claim.body_sha256) == (method, target, body_digest(body))


def test_the_envelope_is_a_request_envelope() -> None:
    envelope = Envelope.from_json(base64.b64decode(sign_request(KEY, "GET", "/", now=NOW)))
    assert envelope.payload_type == PAYLOAD_TYPES["request"]
    assert [s.keyid for s in envelope.signatures] == [KEY.key_id]
