import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dure.policies.dsse import Envelope, EnvelopeSignature, pae, sign_envelope, verify_envelope
from dure.policies.errors import EncodingError, SignatureError
from dure.policies.keys import SigningKey

KIND = "application/vnd.dure.policy+json"


def test_pae_matches_spec_example() -> None:
    # SPEC: DSSE protocol.md, PAE("http://example.com/HelloWorld", "hello world")
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_sign_verify_round_trip() -> None:
    key = SigningKey.generate()
    envelope = sign_envelope(KIND, b'{"a":1}', key)
    parsed = Envelope.from_json(envelope.to_json())
    assert parsed == envelope
    payload, signer = verify_envelope(parsed, {key.key_id: key.public}, KIND)
    assert payload == b'{"a":1}'
    assert signer == key.public


def test_refuses_untrusted_tampered_and_wrong_type() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    envelope = sign_envelope(KIND, b'{"a":1}', key)
    with pytest.raises(SignatureError, match="no signature from a trusted key"):
        verify_envelope(envelope, {other.key_id: other.public}, KIND)
    tampered = Envelope(KIND, b'{"a":2}', envelope.signatures)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(tampered, {key.key_id: key.public}, KIND)
    with pytest.raises(SignatureError, match="expected"):
        verify_envelope(envelope, {key.key_id: key.public}, "application/other")
    retyped = Envelope("application/vnd.dure.job+json", envelope.payload, envelope.signatures)
    with pytest.raises(SignatureError):
        verify_envelope(retyped, {key.key_id: key.public}, "application/vnd.dure.job+json")


def test_bad_signature_from_trusted_key_refused_even_with_a_good_one() -> None:
    key = SigningKey.generate()
    good = sign_envelope(KIND, b"{}", key)
    forged = EnvelopeSignature(key.key_id, bytes(64))
    envelope = Envelope(KIND, b"{}", (forged, *good.signatures))
    with pytest.raises(SignatureError):
        verify_envelope(envelope, {key.key_id: key.public}, KIND)


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"payloadType":"x","payload":"e30=","signatures":[]}',
        b'{"payloadType":"x","payload":"e30=","signatures":[{"keyid":"k"}]}',
        b'{"payloadType":"x","payload":"%%%","signatures":[{"keyid":"k","sig":"AA=="}]}',
        b'{"payloadType":1,"payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}]}',
        b'{"payloadType":"x","payload":"e30=","signatures":[{"keyid":"k","sig":"AA=="}],"x":1}',
    ],
)
def test_malformed_envelopes(data: bytes) -> None:
    with pytest.raises(EncodingError):
        Envelope.from_json(data)


@given(st.binary(max_size=300))
def test_envelope_parser_fuzz(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        Envelope.from_json(data)
