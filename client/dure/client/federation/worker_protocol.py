"""The local socket between a factory's per-task ClientApp and its warm worker.

One factory, one machine: the per-task ``flwr-clientapp`` process that Flower's
SuperExec starts for every message (:mod:`~dure.client.federation.light`) hands
the Message to the factory's long-lived worker
(:mod:`~dure.client.federation.worker`) and returns the worker's reply.  This
is inter-process communication inside one site, not a transport between sites:
every byte between sites still travels through Flower.

Addressing and authentication:

- the worker listens on a Unix socket at ``address`` (mode 0600, in a folder it
  creates 0700), named to the ClientApp by the node config key ``dure-worker``;
- both sides authenticate with :mod:`multiprocessing.connection`'s HMAC
  challenge, keyed by 32 random bytes kept in ``<address>.key`` (mode 0600,
  created by the worker; a key file readable by others is refused).

Framing (only ``send_bytes``/``recv_bytes``, never pickle): a JSON header, then
one frame per Flower object of the message (Flower's own deflated encoding, the
bytes its SuperNode and SuperLink exchange), then the task's ``Context`` as
Flower's protobuf.  The reply has the same shape, or a header ``{"error": …}``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

from flwr.app import Context, Message
from flwr.common.serde import context_from_proto, context_to_proto
from flwr.proto.message_pb2 import Context as ProtoContext
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

__all__ = [
    "MAX_FRAME",
    "WorkerProtocolError",
    "authkey_path",
    "ensure_authkey",
    "read_authkey",
    "receive",
    "send",
    "send_error",
]

MAX_FRAME = 1 << 31
"""The largest frame either side accepts (bytes)."""
_VERSION = 1


class WorkerProtocolError(ValueError):
    """A peer broke the framing, or a key file is missing or too open."""


def authkey_path(address: Path) -> Path:
    """The key file that goes with the socket ``address``: ``<address>.key``."""
    return address.with_name(address.name + ".key")


def ensure_authkey(address: Path) -> bytes:
    """Create (0600, once) or read the worker's key; refuse a key others can read."""
    path = authkey_path(address)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_authkey(address)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return read_authkey(address)


def read_authkey(address: Path) -> bytes:
    """Read ``<address>.key``; raise :class:`WorkerProtocolError` if absent or too open."""
    path = authkey_path(address)
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except OSError as exc:
        raise WorkerProtocolError(f"{path}: cannot read the worker key ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WorkerProtocolError(f"{path}: the worker key must be mode 0600, is {mode & 0o777:o}")
    if len(key) < 16:
        raise WorkerProtocolError(f"{path}: the worker key is too short")
    return key


def send(connection: Connection, message: Message, context: Context, **extra: float) -> None:
    """Send ``message`` and ``context`` as frames (see the module docstring)."""
    objects = {oid: obj.deflate() for oid, obj in get_all_nested_objects(message).items()}
    header = {
        "v": _VERSION,
        "root": message.object_id,
        "message_id": message.metadata.message_id,
        "objects": list(objects),
        **extra,
    }
    connection.send_bytes(json.dumps(header).encode())
    for content in objects.values():
        connection.send_bytes(content)
    connection.send_bytes(context_to_proto(context).SerializeToString())


def send_error(connection: Connection, reason: str) -> None:
    """Tell the peer the work failed, with ``reason``."""
    connection.send_bytes(json.dumps({"v": _VERSION, "error": reason}).encode())


def receive(connection: Connection) -> tuple[Message, Context, dict[str, object]]:
    """Receive what :func:`send` sent: the message, the context and the header.

    Raises
    ------
    WorkerProtocolError
        If the frames do not follow the format, or the peer sent an error.
    EOFError, OSError
        If the connection broke.
    """
    header = _header(connection.recv_bytes(MAX_FRAME))
    ids = header.get("objects")
    root, message_id = header.get("root"), header.get("message_id")
    if not isinstance(ids, list) or not isinstance(root, str) or not isinstance(message_id, str):
        raise WorkerProtocolError("the header lacks root, message_id or objects")
    contents = {str(oid): connection.recv_bytes(MAX_FRAME) for oid in ids}
    try:
        message = cast(Message, inflate_object_from_contents(root, contents))
        context = context_from_proto(ProtoContext.FromString(connection.recv_bytes(MAX_FRAME)))
    except (KeyError, ValueError, DecodeError) as exc:
        raise WorkerProtocolError(f"undecodable message: {exc}") from exc
    if not isinstance(message, Message):
        raise WorkerProtocolError("the root object is not a Message")
    message.metadata.__dict__["_message_id"] = message_id  # not part of the encoding
    return message, context, header


def _header(raw: bytes) -> dict[str, object]:
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise WorkerProtocolError(f"the header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("v") != _VERSION:
        raise WorkerProtocolError(f"unknown header version (expected {_VERSION})")
    if "error" in header:
        raise WorkerProtocolError(str(header["error"]))
    return header
