import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dure.policies.canonical import canonical_bytes, parse_canonical, parse_json
from dure.policies.errors import EncodingError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text().filter(lambda s: s == __import__("unicodedata").normalize("NFC", s)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8).filter(
                lambda s: s == __import__("unicodedata").normalize("NFC", s)
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
).filter(lambda v: "\ud800" not in json.dumps(v))


def test_canonical_sorts_keys_and_strips_whitespace() -> None:
    assert (
        canonical_bytes({"b": [1, True, None], "a": "é"}) == '{"a":"é","b":[1,true,null]}'.encode()
    )


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"epsilon": 0.5}', "floating-point"),
        (b'{"x": 1e3}', "floating-point"),
        (b'{"x": NaN}', "NaN"),
        (b'{"x": Infinity}', "Infinity"),
        ('{"x": "e\u0301"}'.encode(), "NFC"),
        (b'{"x": "\\ud800"}', "surrogate"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"x": 9007199254740993}', "safe range"),
        (b"{", "not valid JSON"),
    ],
)
def test_parse_json_refuses(document: bytes, fragment: str) -> None:
    with pytest.raises(EncodingError, match=fragment):
        parse_json(document)


def test_canonical_bytes_refuses_floats_and_unnormalised_text() -> None:
    with pytest.raises(EncodingError, match="floating-point"):
        canonical_bytes({"a": 0.1})  # type: ignore[dict-item]
    with pytest.raises(EncodingError, match="NFC"):
        canonical_bytes({"a": "e\u0301"})
    with pytest.raises(EncodingError, match="cannot be represented"):
        canonical_bytes({"a": b"raw"})


def test_parse_canonical_refuses_reformatted_document() -> None:
    assert parse_canonical(b'{"a":1}') == {"a": 1}
    with pytest.raises(EncodingError, match="not RFC 8785"):
        parse_canonical(b'{"a": 1}')


@given(json_values)
def test_round_trip(value: object) -> None:
    data = canonical_bytes(value)  # type: ignore[arg-type]
    assert parse_canonical(data) == value
    assert canonical_bytes(parse_json(data)) == data


@given(st.binary(max_size=200))
def test_parse_json_fuzz_only_raises_encoding_error(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        parse_json(data)
