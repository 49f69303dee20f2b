"""Undo HTTP framing in a captured connection, so a search sees the messages.

Flower 1.41's SuperNode here speaks protobuf over HTTP/1.1 (its REST transport:
``POST /v1/fleet/...``); gRPC transports speak HTTP/2.  :func:`deframe` reads
either, by what the connection starts with.

HTTP/1.1 (RFC 9112 §2-§7): each request and response is split into its head
(kept for a raw search) and its body, read by ``Content-Length``, by chunked
transfer coding (chunks joined), or to the connection's end; a body with a
``Content-Encoding`` is decoded (gzip, deflate, zstd); any other coding is an
error, never a body silently left unsearched.

A byte search over a raw capture misses anything the transport cut or encoded:
HTTP/2 splits a gRPC message into DATA frames (16 KiB by default), each behind a
9-byte frame header and possibly padded, and gRPC may compress a message.  This
module reassembles what each direction of each connection carried:

- HTTP/2 (RFC 9113 §3.4, §4.1, §6.1, §6.2, §6.10): the client's connection
  preface is checked and dropped; every frame header is read; DATA payloads are
  joined per stream after removing padding; HEADERS and CONTINUATION fragments
  (HPACK-coded, RFC 7541) are kept as they are, for a raw search.
- gRPC (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): each stream's DATA is a
  sequence of 1-byte compressed flag, 4-byte big-endian length, message.  A
  compressed message is inflated (gzip, or zlib's deflate: the encodings gRPC
  implementations offer); one that neither inflates is an error, never a message
  silently left unsearched.

Anything that is not HTTP/2 (no preface where one is due, an impossible frame)
raises :class:`FramingError`: a search over bytes this module does not
understand could not fail, so it must not pass.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["PREFACE", "Deframed", "FramingError", "deframe", "grpc_messages"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # SPEC: RFC 9113 §3.4
_DATA, _HEADERS, _PUSH_PROMISE, _CONTINUATION = 0x0, 0x1, 0x5, 0x9
_SETTINGS = 0x4
_PADDED, _PRIORITY = 0x8, 0x20


class FramingError(AssertionError):
    """The captured bytes are not the HTTP/2 + gRPC this module reads."""


@dataclass
class Deframed:
    """One direction of one connection, reassembled.

    ``messages``: every gRPC message, inflated when it was compressed, in order
    of completion; ``headers``: the HPACK header block fragments as sent;
    ``compressed``: how many messages arrived compressed; ``tail``: bytes of an
    incomplete last frame or message (a connection cut mid-frame), kept for the
    search.
    """

    messages: list[bytes] = field(default_factory=list)
    headers: list[bytes] = field(default_factory=list)
    compressed: int = 0
    tail: list[bytes] = field(default_factory=list)

    def searchable(self) -> bytes:
        """Messages, header blocks and tails joined with a separator no marker holds."""
        return b"\n\0\n".join([*self.messages, *self.headers, *self.tail])


def deframe(stream: bytes, *, client: bool) -> Deframed:
    """Reassemble one direction of a connection (``client``: the side that opened it)."""
    if re.match(rb"HTTP/1\.[01] \d{3} " if not client else rb"[A-Z]+ \S+ HTTP/1\.[01]\r\n", stream):
        return _http1(stream, response=not client)
    if client:
        if not stream.startswith(PREFACE):
            raise FramingError(f"no HTTP/2 connection preface: starts {stream[:24]!r}")
        stream = stream[len(PREFACE) :]
    if stream and (len(stream) < 9 or stream[3] != _SETTINGS):  # SPEC: RFC 9113 §3.4
        raise FramingError(f"the first HTTP/2 frame is not SETTINGS: {stream[:9]!r}")
    out = Deframed()
    data: dict[int, bytearray] = {}
    position = 0
    while position < len(stream):
        if len(stream) - position < 9:
            out.tail.append(stream[position:])
            break
        length = int.from_bytes(stream[position : position + 3], "big")
        kind, flags = stream[position + 3], stream[position + 4]
        stream_id = int.from_bytes(stream[position + 5 : position + 9], "big") & 0x7FFFFFFF
        payload = stream[position + 9 : position + 9 + length]
        position += 9 + length
        if len(payload) < length:  # cut mid-frame: keep what arrived
            out.tail.append(payload)
            break
        if kind == _DATA:
            data.setdefault(stream_id, bytearray()).extend(_unpad(payload, flags))
        elif kind in (_HEADERS, _CONTINUATION, _PUSH_PROMISE):
            out.headers.append(_header_fragment(kind, flags, payload))
        elif kind > 0x9 and kind not in (0xA, 0xC, 0x10):
            raise FramingError(f"unknown HTTP/2 frame type {kind:#x} at byte {position}")
    for stream_id in sorted(data):
        messages, rest, compressed = grpc_messages(bytes(data[stream_id]))
        out.messages.extend(messages)
        out.compressed += compressed
        if rest:
            out.tail.append(rest)
    return out


def _http1(stream: bytes, *, response: bool) -> Deframed:
    out = Deframed()
    position = 0
    while position < len(stream):
        end = stream.find(b"\r\n\r\n", position)
        if end < 0:
            out.tail.append(stream[position:])
            break
        head = stream[position:end]
        out.headers.append(head)
        start, *lines = head.decode("latin-1").split("\r\n")
        if not re.match(r"HTTP/1\.[01] \d{3} " if response else r"[A-Z]+ \S+ HTTP/1\.[01]$", start):
            raise FramingError(f"not an HTTP/1.1 message head at byte {position}: {start[:60]!r}")
        fields: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        position = end + 4
        body, position, complete = _http1_body(stream, position, fields, start, response)
        if not complete:
            out.tail.append(body)
            break
        out.messages.append(_decoded(body, fields.get("content-encoding", "identity")))
        out.compressed += fields.get("content-encoding", "identity").lower() != "identity"
    return out


def _http1_body(
    stream: bytes, position: int, fields: dict[str, str], start: str, response: bool
) -> tuple[bytes, int, bool]:
    """``(body, next position, whether the body arrived whole)`` (RFC 9112 §6.3)."""
    if response and re.match(r"HTTP/1\.[01] (1\d\d|204|304) ", start):
        return b"", position, True
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            line_end = stream.find(b"\r\n", position)
            if line_end < 0:
                return bytes(body) + stream[position:], len(stream), False
            size = int(stream[position:line_end].split(b";")[0], 16)
            position = line_end + 2
            if size == 0:
                trailer_end = stream.find(b"\r\n\r\n", position - 2)
                if trailer_end < 0:
                    return bytes(body), len(stream), False
                return bytes(body), trailer_end + 4, True
            body += stream[position : position + size]
            position += size + 2
            if position > len(stream):
                return bytes(body), len(stream), False
    if "content-length" in fields:
        length = int(fields["content-length"])
        data = stream[position : position + length]
        return data, position + length, len(data) == length
    if response:  # read to the connection's end
        return stream[position:], len(stream), True
    return b"", position, True


def _decoded(body: bytes, coding: str) -> bytes:
    """``body`` with its content codings undone (applied in order, so undone in reverse)."""
    for name in reversed([c.strip().lower() for c in coding.split(",") if c.strip()]):
        if name == "identity":
            continue
        if name in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif name == "deflate":
            body = _inflate(body)
        elif name == "zstd":
            import zstandard

            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        else:
            raise FramingError(
                f"content coding {name!r} cannot be undone: the body cannot be searched"
            )
    return body


def grpc_messages(body: bytes) -> tuple[list[bytes], bytes, int]:
    """Split a stream's DATA into gRPC messages: ``(messages, incomplete rest, compressed)``."""
    messages: list[bytes] = []
    compressed = 0
    position = 0
    while len(body) - position >= 5:
        flag, length = struct.unpack(">BI", body[position : position + 5])
        if flag not in (0, 1):
            raise FramingError(f"gRPC message flag {flag:#x} is neither 0 nor 1")
        message = body[position + 5 : position + 5 + length]
        if len(message) < length:
            break
        position += 5 + length
        if flag == 1:
            compressed += 1
            message = _inflate(message)
        messages.append(message)
    return messages, body[position:], compressed


def _unpad(payload: bytes, flags: int) -> bytes:
    if not flags & _PADDED:
        return payload
    pad = payload[0]
    if pad >= len(payload):
        raise FramingError(f"padding {pad} over a {len(payload)}-byte frame")
    return payload[1 : len(payload) - pad]


def _header_fragment(kind: int, flags: int, payload: bytes) -> bytes:
    body = _unpad(payload, flags) if kind != _CONTINUATION else payload
    if kind == _HEADERS and flags & _PRIORITY:
        body = body[5:]
    if kind == _PUSH_PROMISE:
        body = body[4:]
    return body


def _inflate(message: bytes) -> bytes:
    """A compressed gRPC message, inflated (gzip, then zlib deflate), or a loud failure."""
    errors: list[str] = []
    for name, inflate in _INFLATERS:
        try:
            return inflate(message)
        except (OSError, EOFError, zlib.error) as exc:
            errors.append(f"{name}: {exc}")
    raise FramingError(
        f"a compressed gRPC message ({len(message)} bytes) inflates with no known "
        f"encoding ({'; '.join(errors)}): it cannot be searched"
    )


_INFLATERS: tuple[tuple[str, Callable[[bytes], bytes]], ...] = (
    ("gzip", gzip.decompress),
    ("deflate", zlib.decompress),
    ("raw deflate", lambda raw: zlib.decompress(raw, -15)),
)
