import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dure.policies.encoding import (
    b64decode,
    b64encode,
    digest,
    digest_from_b64,
    digest_from_hex,
    sha256,
    to_hex,
)
from dure.policies.errors import EncodingError


def test_sha256_known_answer() -> None:
    assert to_hex(sha256(b"")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@given(st.binary(min_size=32, max_size=32))
def test_hex_and_base64_round_trip(raw: bytes) -> None:
    value = digest(raw)
    assert digest_from_hex(to_hex(value)) == value
    assert digest_from_b64(b64encode(value)) == value


@given(st.binary(max_size=100))
def test_base64_round_trip(raw: bytes) -> None:
    assert b64decode(b64encode(raw)) == raw


@pytest.mark.parametrize("text", ["ab", "A" * 64, "zz" * 32, "0" * 63])
def test_bad_hex(text: str) -> None:
    with pytest.raises(EncodingError):
        digest_from_hex(text)


@pytest.mark.parametrize("text", ["a", "ab$=", "YQ", "YR==", "é", "YQ==\n"])
def test_bad_base64(text: str) -> None:
    with pytest.raises(EncodingError):
        b64decode(text)


def test_digest_length_checked() -> None:
    with pytest.raises(EncodingError, match="32 bytes"):
        digest(b"short")
    with pytest.raises(EncodingError):
        digest_from_b64(b64encode(b"x" * 31))


@given(st.text(max_size=80))
def test_decoders_fuzz(text: str) -> None:
    for decode in (b64decode, digest_from_hex, digest_from_b64):
        with contextlib.suppress(EncodingError):
            decode(text)
