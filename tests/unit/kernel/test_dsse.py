import base64
import json
from collections import Counter
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dure.policies.dsse import (
    PAYLOAD_TYPES,
    Envelope,
    EnvelopeSignature,
    pae,
    sign_envelope,
    verify_envelope,
)
from dure.policies.errors import EncodingError, SignatureError
from dure.policies.keys import SigningKey, VerifyKey

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


# --- structured fuzzing ------------------------------------------------------------------------
# Random bytes never get past JSON decoding.  These cases start from a genuinely
# signed envelope and apply one mutation, so most reach signature verification;
# the oracle checks anything accepted against the spec independently of dsse.py.

FUZZ_KEY = SigningKey.from_seed(bytes(range(32)))
OTHER_KEY = SigningKey.from_seed(bytes(range(1, 33)))
TRUSTED: dict[str, VerifyKey] = {FUZZ_KEY.key_id: FUZZ_KEY.public}
HUGE = "1" * 5000
Json = Any


def reference_pae(payload_type: str, payload: bytes) -> bytes:
    # SPEC: DSSE protocol.md: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
    kind = payload_type.encode()
    return b" ".join(
        [b"DSSEv1", str(len(kind)).encode(), kind, str(len(payload)).encode(), payload]
    )


def signed_value(payload_type: str, payload: bytes) -> dict[str, Json]:
    signature = FUZZ_KEY.sign(reference_pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": FUZZ_KEY.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def _set_sig(value: dict[str, Json], field: str, item: Json) -> None:
    value["signatures"][0][field] = item


def _raw(value: dict[str, Json]) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


FIELDS = ("payloadType", "payload", "signatures")
WRONG_TYPES: list[Json] = [None, 1, True, [], {}, "x", [{}]]


MUTATIONS = (
    "none",
    "drop-field",
    "extra-field",
    "wrong-type",
    "sig-wrong-type",
    "sig-extra-field",
    "wrong-keyid",
    "untrusted-signer",
    "other-pae-type",
    "other-pae-payload",
    "retyped",
    "payload-bit",
    "sig-bit",
    "sig-length",
    "no-signatures",
    "many-signatures",
    "duplicate-key",
    "huge-int",
    "deep-nesting",
    "two-signatures-one-bad",
    "extra-good-signature",
)


@st.composite
def mutated_envelopes(draw: st.DrawFn, only: str | None = None) -> tuple[str, bytes]:
    """One genuinely signed envelope with one drawn mutation: (mutation name, bytes)."""
    payload = draw(st.binary(min_size=1, max_size=64))
    value = signed_value(KIND, payload)
    sig = value["signatures"][0]
    mutation = draw(st.sampled_from([only] if only else MUTATIONS))
    event(f"mutation: {mutation}")
    if mutation == "drop-field":
        del value[draw(st.sampled_from(FIELDS))]
    elif mutation == "extra-field":
        value[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in FIELDS))] = 1
    elif mutation == "wrong-type":
        value[draw(st.sampled_from(FIELDS))] = draw(st.sampled_from(WRONG_TYPES))
    elif mutation == "sig-wrong-type":
        _set_sig(value, draw(st.sampled_from(["keyid", "sig"])), draw(st.sampled_from(WRONG_TYPES)))
    elif mutation == "sig-extra-field":
        sig["extra"] = "x"
    elif mutation in ("bad-base64", "bad-sig-base64"):
        holder, field = (value, "payload") if mutation == "bad-base64" else (sig, "sig")
        text = holder[field]
        holder[field] = draw(
            st.sampled_from(
                [text + "%", text.rstrip("="), text.replace("+", "-").replace("/", "_") + "-",
                 " " + text, text + "\n", "é" + text[1:]]
            )
        )  # fmt: skip
    elif mutation == "wrong-keyid":
        sig["keyid"] = draw(st.sampled_from([OTHER_KEY.key_id, "", FUZZ_KEY.key_id.upper()]))
    elif mutation == "untrusted-signer":
        other = OTHER_KEY.sign(reference_pae(KIND, payload))
        value["signatures"] = [{"keyid": OTHER_KEY.key_id, "sig": base64.b64encode(other).decode()}]
    elif mutation == "other-pae-type":  # a valid signature, over another payload type
        sig["sig"] = signed_value(draw(st.sampled_from(["application/x", KIND + " "])), payload)[
            "signatures"
        ][0]["sig"]
    elif mutation == "other-pae-payload":  # a valid signature, over other payload bytes
        sig["sig"] = signed_value(KIND, payload + b"x")["signatures"][0]["sig"]
    elif mutation == "retyped":  # signed consistently, but as another kind of document
        others = [t for t in PAYLOAD_TYPES.values() if t != KIND]
        value = signed_value(draw(st.sampled_from(others)), payload)
    elif mutation == "payload-bit":
        flipped = bytearray(payload)
        flipped[draw(st.integers(0, len(flipped) - 1))] ^= 1 << draw(st.integers(0, 7))
        value["payload"] = base64.b64encode(bytes(flipped)).decode()
    elif mutation == "sig-bit":
        sig_bytes = bytearray(base64.b64decode(sig["sig"]))
        sig_bytes[draw(st.integers(0, 63))] ^= 1 << draw(st.integers(0, 7))
        sig["sig"] = base64.b64encode(bytes(sig_bytes)).decode()
    elif mutation == "sig-length":
        raw = base64.b64decode(sig["sig"])
        sig["sig"] = base64.b64encode(raw[: draw(st.integers(0, 63))]).decode()
    elif mutation == "no-signatures":
        value["signatures"] = []
    elif mutation == "many-signatures":
        value["signatures"] = [sig] * draw(st.integers(17, 40))
    elif mutation == "two-signatures-one-bad":
        value["signatures"] = [
            sig,
            {"keyid": sig["keyid"], "sig": base64.b64encode(bytes(64)).decode()},
        ]
    elif mutation == "extra-good-signature":
        other = OTHER_KEY.sign(reference_pae(KIND, payload))
        value["signatures"].append(
            {"keyid": OTHER_KEY.key_id, "sig": base64.b64encode(other).decode()}
        )
    raw = _raw(value)
    if mutation == "duplicate-key":
        field = draw(st.sampled_from(FIELDS))
        raw = raw[:-1] + b', "' + field.encode() + b'": ' + json.dumps(value[field]).encode() + b"}"
    elif mutation == "huge-int":
        raw = raw[:-1] + b', "n": ' + HUGE.encode() + b"}"
    elif mutation == "deep-nesting":
        raw = raw[:-1] + b', "n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return mutation, raw


def outcome(data: bytes) -> str:
    """Run one case through the kernel: the stage that refused it, or "accepted"."""
    try:
        envelope = Envelope.from_json(data)
    except EncodingError:
        return "refused decoding"
    try:
        payload, signer = verify_envelope(envelope, TRUSTED, KIND)
    except SignatureError:
        return "refused at signature verification"
    # The oracle, independent of dsse.py: accepted means truly signed by the trusted key.
    assert envelope.payload_type == KIND and payload == envelope.payload
    assert signer == FUZZ_KEY.public
    assert all(s.keyid != FUZZ_KEY.key_id or len(s.sig) == 64 for s in envelope.signatures)
    for entry in envelope.signatures:
        if entry.keyid == FUZZ_KEY.key_id:
            Ed25519PublicKey.from_public_bytes(FUZZ_KEY.public.raw).verify(
                entry.sig, reference_pae(KIND, payload)
            )
    return "accepted"


def test_structured_envelope_fuzz_reaches_verification_and_accepts_only_valid() -> None:
    stages: Counter[str] = Counter()
    accepted: Counter[str] = Counter()

    @settings(max_examples=400, deadline=None, database=None)
    @given(mutated_envelopes())
    def run(case: tuple[str, bytes]) -> None:
        mutation, data = case
        stage = outcome(data)  # any exception but the kernel's two fails the test
        event(stage)
        stages[stage] += 1
        if stage == "accepted":
            accepted[mutation] += 1
            assert mutation in ("none", "extra-good-signature", "wrong-keyid"), mutation

    run()
    total = sum(stages.values())
    # Most cases get past JSON decoding; valid ones are accepted, the rest refused.
    assert stages["refused at signature verification"] >= total // 5, stages
    assert stages["refused decoding"] >= total // 10, stages
    assert accepted["none"] > 0, (stages, accepted)


@pytest.mark.parametrize(
    "mutation",
    [
        "retyped",
        "other-pae-type",
        "other-pae-payload",
        "untrusted-signer",
        "two-signatures-one-bad",
    ],
)
def test_each_trust_mutation_is_refused_at_verification(mutation: str) -> None:
    @settings(max_examples=20, deadline=None, database=None)
    @given(mutated_envelopes(only=mutation))
    def run(case: tuple[str, bytes]) -> None:
        assert outcome(case[1]) == "refused at signature verification", case[0]

    run()
