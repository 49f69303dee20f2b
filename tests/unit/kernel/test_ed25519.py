"""Weak Ed25519 keys and non-canonical signatures, checked from RFC 8032.

``cryptography`` accepts every key in the weak-key table and, under a
small-order key, a signature ``R ‖ 0`` made without any private key.  Dure
refuses the key where it enters and the signature before it is verified.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st
from tests.builders.weak_keys import (
    FIELD_PRIME,
    SMALL_ORDER_POINTS,
    WEAK_KEYS,
    forge_small_order_signature,
    non_canonical_s,
)

from dure.policies.checkpoint import CosignatureVerifier, Cosigner
from dure.policies.dsse import sign_envelope, verify_envelope
from dure.policies.ed25519 import GROUP_ORDER, public_key_problem, signature_problem
from dure.policies.errors import EncodingError, NoteError, SignatureError
from dure.policies.keys import SigningKey, VerifyKey
from dure.policies.note import Ed25519Signer, Ed25519Verifier, sign_note, verified_signatures

KEYS = pytest.mark.parametrize("raw", WEAK_KEYS.values(), ids=list(WEAK_KEYS))


def test_group_order_is_rfc_8032s() -> None:
    # SPEC: RFC 8032 §5.1: L = 2^252 + 27742317777372353535851937790883648493
    assert GROUP_ORDER == 2**252 + 27742317777372353535851937790883648493
    assert GROUP_ORDER.bit_length() == 253


def test_the_forgery_works_under_cryptography_and_dure_refuses_it() -> None:
    zero_key = SMALL_ORDER_POINTS["zero bytes (order 4)"]
    forged = [
        (message, signature)
        for message in (b"policy %d" % i for i in range(64))
        if (signature := forge_small_order_signature(zero_key, message)) is not None
    ]
    # About one message in four verifies under OpenSSL with no private key at all.
    assert len(forged) >= 8
    message, signature = forged[0]
    Ed25519PublicKey.from_public_bytes(zero_key).verify(signature, message)  # accepted!
    with pytest.raises(EncodingError, match="small order") as caught:
        VerifyKey(zero_key)
    assert "dure keys new" in caught.value.hint
    with pytest.raises(NoteError, match="small order"):
        Ed25519Verifier("log.example", zero_key)
    with pytest.raises(NoteError, match="small order"):
        CosignatureVerifier("witness.example", zero_key)


def test_a_small_order_r_is_refused_even_under_a_good_key() -> None:
    key = SigningKey.generate()
    for point in SMALL_ORDER_POINTS.values():
        with pytest.raises(SignatureError, match="R is a point of small order"):
            key.public.verify(point + bytes(32), b"message")


@pytest.mark.parametrize(
    "r",
    [WEAK_KEYS["y=p+1 (non-canonical identity)"], WEAK_KEYS["y=2, not on the curve"]],
    ids=["y>=p", "off-curve"],
)
def test_a_non_canonical_or_off_curve_r_is_refused(r: bytes) -> None:
    key = SigningKey.generate()
    with pytest.raises(SignatureError, match="signature's R"):
        key.public.verify(r + bytes(32), b"message")


def test_s_not_below_the_group_order_is_refused() -> None:
    key = SigningKey.generate()
    for attempt in range(50):
        message = b"message %d" % attempt
        bad = non_canonical_s(key.sign(message))
        if bad is not None:
            break
    assert bad is not None
    assert signature_problem(bad) is not None
    with pytest.raises(SignatureError, match="S half"):
        key.public.verify(bad, message)
    s_is_l = key.sign(b"x")[:32] + GROUP_ORDER.to_bytes(32, "little")
    with pytest.raises(SignatureError, match="S half"):
        key.public.verify(s_is_l, b"x")


def test_a_non_canonical_signature_in_an_envelope_is_refused() -> None:
    key = SigningKey.generate()
    envelope = sign_envelope("application/x", b"{}", key)
    good = envelope.signatures[0]
    forged = type(good)(good.keyid, SMALL_ORDER_POINTS["identity (order 1)"] + bytes(32))
    with pytest.raises(SignatureError, match="not canonical"):
        verify_envelope(
            type(envelope)("application/x", b"{}", (forged,)),
            {key.key_id: key.public},
            "application/x",
        )


def test_note_and_cosignature_verifiers_reject_non_canonical_signatures() -> None:
    signer = Ed25519Signer.generate("log.example")
    note = sign_note("hello\n", [signer])
    sig = note.signatures[0]
    bad = non_canonical_s(sig.signature) or sig.signature[:32] + GROUP_ORDER.to_bytes(32, "little")
    assert not signer.verifier().verify(b"hello\n", bad)
    assert not signer.verifier().verify(
        b"hello\n", SMALL_ORDER_POINTS["identity (order 1)"] + bytes(32)
    )
    cosigner = Cosigner.generate("witness.example")
    assert not cosigner.verifier().verify(
        b"hello\n", bytes(8) + SMALL_ORDER_POINTS["identity (order 1)"] + bytes(32)
    )
    forged_note = type(note)(note.text, (type(sig)(sig.name, sig.key_id, bad),))
    with pytest.raises(NoteError, match="invalid"):
        verified_signatures(forged_note, [signer.verifier()])


@KEYS
def test_every_weak_key_is_refused_by_the_pure_check(raw: bytes) -> None:
    assert public_key_problem(raw) is not None


@KEYS
def test_weak_keys_are_valid_to_openssl(raw: bytes) -> None:
    # Why the check is needed: cryptography loads every one of them.
    Ed25519PublicKey.from_public_bytes(raw)


def test_the_small_order_table_holds_eight_distinct_points() -> None:
    assert len(set(SMALL_ORDER_POINTS.values())) == 8
    ys = {int.from_bytes(p, "little") & ((1 << 255) - 1) for p in SMALL_ORDER_POINTS.values()}
    assert len(ys) == 5 and all(y < FIELD_PRIME for y in ys)  # y = 1 and -1 have x = 0 only


@given(st.binary(min_size=32, max_size=32))
def test_generated_keys_are_accepted(seed: bytes) -> None:
    key = SigningKey.from_seed(seed)
    assert public_key_problem(key.public.raw) is None
    assert signature_problem(key.sign(seed)) is None
    key.public.verify(key.sign(seed), seed)


@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_either_pass_or_are_refused_with_a_reason(raw: bytes) -> None:
    problem = public_key_problem(raw)
    if problem is None:
        assert VerifyKey(raw).raw == raw
    else:
        with pytest.raises(EncodingError, match="Ed25519 public key"):
            VerifyKey(raw)


@given(st.integers(min_value=0, max_value=2**255 - 1), st.booleans())
def test_decoding_matches_a_naive_reference(y: int, sign: bool) -> None:
    # SPEC: RFC 8032 §5.1.3, written the other way round: a y is a point iff
    # (y^2 - 1) / (d y^2 + 1) is a square mod p (Euler's criterion).
    raw = (y | (sign << 255)).to_bytes(32, "little")
    problem = public_key_problem(raw)
    if y >= FIELD_PRIME:
        assert problem is not None and "not canonical" in problem
        return
    d = (-121665 * pow(121666, -1, FIELD_PRIME)) % FIELD_PRIME
    x2 = (y * y - 1) * pow(d * y * y + 1, -1, FIELD_PRIME) % FIELD_PRIME
    on_curve = x2 == 0 or pow(x2, (FIELD_PRIME - 1) // 2, FIELD_PRIME) == 1
    if not on_curve:
        assert problem is not None and "not decode" in problem
    elif x2 == 0 and sign:
        assert problem is not None and "sign bit" in problem
    else:
        assert problem is None or "small order" in problem


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_sizes_keep_their_message(size: int) -> None:
    with pytest.raises(EncodingError, match=f"32 bytes, got {size}"):
        VerifyKey(bytes(size))
    with pytest.raises(NoteError, match=f"32 bytes, got {size}"):
        Ed25519Verifier("log.example", bytes(size))


@pytest.mark.parametrize("name", ["identity with x sign bit", "y=-1 with x sign bit"])
def test_x_zero_with_the_sign_bit_is_named_non_canonical(name: str) -> None:
    # SPEC: RFC 8032 §5.1.3 step 4: "If x = 0, and x_0 = 1, decoding fails."
    problem = public_key_problem(WEAK_KEYS[name])
    assert problem is not None and "sign bit" in problem
