"""The capture's deframing finds what HTTP framing or compression would hide.

Frames are built here by hand from RFC 9113 §4.1 (not by the module under test),
and each case first shows that a raw byte search misses the marker.
"""

from __future__ import annotations

import gzip
import secrets
import struct

import pytest
from tests.integration.leak.framing import PREFACE, FramingError, deframe
from tests.integration.leak.markers import find_marker

SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return (
        len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload
    )


def grpc(message: bytes, compressed: bool = False) -> bytes:
    """One gRPC Length-Prefixed-Message."""
    return struct.pack(">BI", int(compressed), len(message)) + message


def padded(data: bytes, pad: int) -> bytes:
    return bytes([pad]) + data + b"\0" * pad


@pytest.fixture
def marker() -> bytes:
    return secrets.token_hex(16).encode()


def test_a_marker_split_across_padded_data_frames_is_found(marker: bytes) -> None:
    message = grpc(b"protobuf:" + marker + b":end")
    cut = 5 + 9 + len(marker) // 2  # inside the marker
    headers = frame(0x1, 0x4, 1, b"\x83\x86")  # END_HEADERS, two indexed fields
    first = frame(0x0, 0x8, 1, padded(message[:cut], 7))  # PADDED
    second = frame(0x0, 0x1, 1, message[cut:])  # END_STREAM
    other = frame(0x0, 0x0, 3, grpc(b"another stream"))
    wire = PREFACE + SETTINGS + headers + first + other + second
    assert find_marker(wire, marker) == []  # the raw search is blind here
    found = deframe(wire, client=True)
    assert "raw" in find_marker(found.searchable(), marker)
    assert found.compressed == 0 and found.headers == [b"\x83\x86"]


def test_a_compressed_message_is_inflated_before_the_search(marker: bytes) -> None:
    body = grpc(gzip.compress(b"x" * 100 + marker), compressed=True)
    wire = SETTINGS + frame(0x0, 0x1, 1, body)
    assert find_marker(wire, marker) == []
    found = deframe(wire, client=False)
    assert found.compressed == 1 and "raw" in find_marker(found.searchable(), marker)


def test_a_compressed_message_that_does_not_inflate_fails_loudly() -> None:
    wire = SETTINGS + frame(0x0, 0x1, 1, grpc(secrets.token_bytes(64), compressed=True))
    with pytest.raises(FramingError, match="cannot be searched"):
        deframe(wire, client=False)


@pytest.mark.parametrize(
    "wire,client,message",
    [
        (b"\x16\x03\x01\x02\x00 a TLS ClientHello", True, "preface"),
        (frame(0x0, 0x0, 1, grpc(b"x")), False, "SETTINGS"),
        (SETTINGS + frame(0x0, 0x0, 1, b"\x07" + b"\0" * 8), False, "flag"),
        (SETTINGS + frame(0x0, 0x8, 1, b"\x09abc"), False, "padding"),
        (SETTINGS + frame(0x42, 0x0, 1, b"hidden"), False, "unknown HTTP/2 frame type"),
    ],
)
def test_bytes_that_are_not_http2_grpc_are_refused(wire: bytes, client: bool, message: str) -> None:
    with pytest.raises(FramingError, match=message):
        deframe(wire, client=client)


def test_a_connection_cut_mid_frame_keeps_what_arrived(marker: bytes) -> None:
    whole = frame(0x0, 0x0, 1, grpc(b"start " + marker + b" " * 100))
    found = deframe(SETTINGS + whole[:-50], client=False)
    assert "raw" in find_marker(found.searchable(), marker)


def test_http1_bodies_are_read_by_length_chunks_and_content_coding(marker: bytes) -> None:
    body = b"\x0a\x20" + marker + b"\x10\x01"
    request = (
        b"POST /v1/fleet/push-messages HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/protobuf\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    zipped = gzip.compress(b"y" * 50 + marker)
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        10,
        zipped[:10],
        len(zipped) - 10,
        zipped[10:],
    )
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    )
    up = deframe(request + request, client=True)
    assert len(up.messages) == 2 and all(marker in m for m in up.messages)
    assert find_marker(response, marker) == []  # hidden by gzip and the chunk boundary
    down = deframe(response, client=False)
    assert down.compressed == 1 and "raw" in find_marker(down.searchable(), marker)


def test_an_http1_body_in_an_unknown_coding_fails_loudly() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc"
    with pytest.raises(FramingError, match="cannot be searched"):
        deframe(response, client=False)
