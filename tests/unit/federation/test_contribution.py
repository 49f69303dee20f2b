"""The kernel's contribution claim, node binding, state digest and ε bookkeeping."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dure.policies.canonical import JsonValue
from dure.policies.contribution import (
    STATE_DICT_DOMAIN,
    ContributionClaim,
    NodeBinding,
    epsilon_spent_by,
    state_digest,
)
from dure.policies.dsse import Envelope
from dure.policies.entries import AggregateCommitted, SiteAdmitted
from dure.policies.errors import DocumentError, EncodingError, SignatureError
from dure.policies.keys import SigningKey
from dure.policies.signed import open_document, sign_document

T = "2026-11-15T09:00:00Z"
A, B = "urn:dure:site:factory-a", "urn:dure:site:factory-b"


def _reference_digest(tensors: dict[str, np.ndarray]) -> str:
    """Written from the module docstring, independently of the implementation."""
    h = hashlib.sha256(b"dure/state-dict/v1\n")
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"))
        shape = "x".join(str(d) for d in a.shape)
        h.update(f"{name} {a.dtype.str} {shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)
names = st.text(alphabet="abcdefgh.0123456789_", min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(names, arrays, min_size=1, max_size=4))
def test_state_digest_matches_the_reference_encoding(tensors: dict[str, np.ndarray]) -> None:
    assert state_digest(tensors) == _reference_digest(tensors)
    assert state_digest(dict(reversed(list(tensors.items())))) == state_digest(tensors)


def test_state_digest_binds_values_dtypes_shapes_and_names() -> None:
    base = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(2, np.float32)}
    digest = state_digest(base)
    changed: list[dict[str, np.ndarray]] = [
        {**base, "w": base["w"] + np.float32(1e-6)},
        {**base, "w": base["w"].astype(np.float64)},
        {**base, "w": base["w"].reshape(3, 2)},
        {"w2": base["w"], "b": base["b"]},
        {"w": base["w"]},
    ]
    assert all(state_digest(other) != digest for other in changed)
    assert state_digest({**base, "w": base["w"].astype(">f4")}) == digest  # byte order is not bound
    assert state_digest({**base, "w": np.asfortranarray(base["w"])}) == digest  # nor memory layout
    assert STATE_DICT_DOMAIN == b"dure/state-dict/v1\n"


@pytest.mark.parametrize("bad", ["", "a b", "a\nb", "x" * 257])
def test_state_digest_refuses_ambiguous_names(bad: str) -> None:
    with pytest.raises(EncodingError):
        state_digest({bad: np.zeros(1)})


def test_state_digest_refuses_non_numeric_tensors() -> None:
    with pytest.raises(EncodingError, match="dtype"):
        state_digest({"w": np.array(["a"])})


def _claim(**changes: object) -> ContributionClaim:
    value: dict[str, object] = {
        "type": "dure/contribution/v1",
        "job_id": "bc-pick-place-1",
        "job_digest": "11" * 32,
        "round": 2,
        "site": A,
        "update_digest": "22" * 32,
        "examples": 120,
        "episodes_root": "33" * 32,
        "policy_id": "44" * 32,
        "issued": T,
    }
    value.update(changes)
    return ContributionClaim.from_value(value)  # type: ignore[arg-type]


def test_a_signed_claim_round_trips_through_its_envelope() -> None:
    key = SigningKey.generate()
    claim = _claim()
    envelope = Envelope.from_json(sign_document("contribution", claim, key).to_json())
    opened = open_document(envelope, "contribution", ContributionClaim, {key.key_id: key.public})
    assert opened.document == claim
    assert opened.document_id == claim.document_id()


def test_a_claim_opens_only_with_the_signers_key_and_its_kind() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    envelope = sign_document("contribution", _claim(), key)
    with pytest.raises(SignatureError):
        open_document(envelope, "contribution", ContributionClaim, {other.key_id: other.public})
    with pytest.raises(SignatureError):
        open_document(envelope, "job", ContributionClaim, {key.key_id: key.public})


@pytest.mark.parametrize(
    "change",
    [{"round": 0}, {"examples": -1}, {"site": "urn:dure:org:x"}, {"update_digest": "zz"}, {"x": 1}],
)
def test_invalid_claims_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(DocumentError):
        _claim(**change)


def test_node_binding_ids_are_decimal_strings() -> None:
    value: dict[str, JsonValue] = {
        "site": A,
        "node_id": str(2**64 - 1),
        "run_id": "7",
        "nonce": "ab" * 32,
        "issued": T,
    }
    binding = NodeBinding.from_value(value)
    assert NodeBinding.from_canonical_bytes(binding.to_canonical_bytes()) == binding
    for bad in ("-1", "01", "1.0", "x"):
        with pytest.raises(DocumentError):
            NodeBinding.from_value({**value, "node_id": bad})


def _aggregate(job: str, round: int, eps: str | None, *sites: str) -> AggregateCommitted:
    return AggregateCommitted(
        time=T,
        job_id=job,
        round=round,
        model_digest="55" * 32,
        parent_model=None,
        contributors=sites,
        epsilon_spent=eps,
        strategy="fedavg",
    )


def test_epsilon_spent_takes_each_jobs_largest_and_adds_jobs() -> None:
    entries = [
        SiteAdmitted(time=T, job_id="j1", site=A, policy_id="44" * 32),
        _aggregate("j1", 1, "0.5", A, B),
        _aggregate("j1", 2, "0.9", A, B),
        _aggregate("j1", 3, "1.2", B),  # A did not contribute: its loss stays 0.9
        _aggregate("j2", 1, "2.0", A),
        _aggregate("j3", 1, None, A),  # no DP
    ]
    assert epsilon_spent_by(entries, A) == Decimal("2.9")
    assert epsilon_spent_by(entries, A, exclude_job="j2") == Decimal("0.9")
    assert epsilon_spent_by(entries, B) == Decimal("1.2")
    assert epsilon_spent_by(entries, "urn:dure:site:nobody") == 0
